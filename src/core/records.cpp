#include "promptlearn/core/records.hpp"

#include <fmt/format.h>

#include <cmath>
#include <initializer_list>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"

namespace promptlearn {
namespace {

using nlohmann::json;

/// Short rendering of an offending value for messages (long strings are cut).
std::string show(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

std::string type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::discarded: return "nothing";
    default: return "a number";
  }
}

/// A key as it appears in an error path: control characters escaped (a NUL would cut the message short).
std::string printable_key(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F)
      out += fmt::format("\\u{:04x}", u);
    else
      out += c;
  }
  return out;
}

std::string join_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? printable_key(key) : parent + "." + printable_key(key);
}

/// True if `v` nests deeper than `limit` levels (the recursion itself stops at the limit).
bool nests_deeper(const json& v, int limit) {
  if (!v.is_structured()) return false;
  if (limit == 0) return true;
  for (const auto& child : v)
    if (nests_deeper(child, limit - 1)) return true;
  return false;
}

/// Reads one JSON object, tracking its path, and rejects keys it was not asked about.
class ObjectReader {
 public:
  ObjectReader(const json& obj, std::string path, std::initializer_list<const char*> allowed)
      : obj_(obj), path_(std::move(path)) {
    if (!obj_.is_object())
      throw ValidationError(path_, fmt::format("expected an object, got {} {}", type_name(obj_), show(obj_)));
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      bool known = false;
      for (const char* a : allowed) known = known || it.key() == a;
      if (!known) throw ValidationError(join_path(path_, it.key()), "unknown field");
    }
  }

  const std::string& path() const { return path_; }
  std::string path(std::string_view key) const { return join_path(path_, key); }

  /// The value at key, or nullptr when absent. JSON null counts as absent.
  const json* find(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  std::optional<std::string> str(const char* key, std::size_t max_len, bool allow_empty = true) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_string())
      throw ValidationError(path(key), fmt::format("expected a string, got {} {}", type_name(*v), show(*v)));
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > max_len)
      throw ValidationError(path(key), fmt::format("string of {} bytes exceeds the limit of {}", s.size(), max_len));
    if (!allow_empty && s.empty()) throw ValidationError(path(key), "must not be empty");
    return s;
  }

  std::optional<bool> boolean(const char* key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean())
      throw ValidationError(path(key), fmt::format("expected a boolean, got {} {}", type_name(*v), show(*v)));
    return v->get<bool>();
  }

  /// A number within [lo, hi] (hi may be infinity).
  std::optional<double> number(const char* key, double lo, double hi) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_number())
      throw ValidationError(path(key), fmt::format("expected a number, got {} {}", type_name(*v), show(*v)));
    double d = v->get<double>();
    if (!std::isfinite(d) || d < lo || d > hi) {
      if (std::isinf(hi))
        throw ValidationError(path(key), fmt::format("{} is below the minimum {}", show(*v), lo));
      throw ValidationError(path(key), fmt::format("{} is outside [{}, {}]", show(*v), lo, hi));
    }
    return d;
  }

  /// A non-negative integer (10.0 is accepted, 10.5 is not).
  std::optional<std::int64_t> count(const char* key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (v->is_number_integer()) {
      if (v->is_number_unsigned()) {
        auto u = v->get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(INT64_MAX))
          throw ValidationError(path(key), fmt::format("{} is too large", show(*v)));
        return static_cast<std::int64_t>(u);
      }
      auto i = v->get<std::int64_t>();
      if (i < 0) throw ValidationError(path(key), fmt::format("{} is below the minimum 0", show(*v)));
      return i;
    }
    if (v->is_number_float()) {
      double d = v->get<double>();
      if (!std::isfinite(d) || d != std::floor(d))
        throw ValidationError(path(key), fmt::format("expected an integer, got {}", show(*v)));
      if (d < 0) throw ValidationError(path(key), fmt::format("{} is below the minimum 0", show(*v)));
      if (d > 9.0e18) throw ValidationError(path(key), fmt::format("{} is too large", show(*v)));
      return static_cast<std::int64_t>(d);
    }
    throw ValidationError(path(key), fmt::format("expected an integer, got {} {}", type_name(*v), show(*v)));
  }

  std::optional<std::vector<std::string>> strings(const char* key, std::size_t max_items, std::size_t max_len) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_array())
      throw ValidationError(path(key), fmt::format("expected an array of strings, got {} {}", type_name(*v), show(*v)));
    if (v->size() > max_items)
      throw ValidationError(path(key), fmt::format("{} items exceed the limit of {}", v->size(), max_items));
    std::vector<std::string> out;
    out.reserve(v->size());
    for (std::size_t i = 0; i < v->size(); ++i) {
      const json& e = (*v)[i];
      std::string p = fmt::format("{}[{}]", path(key), i);
      if (!e.is_string()) throw ValidationError(p, fmt::format("expected a string, got {} {}", type_name(e), show(e)));
      const auto& s = e.get_ref<const std::string&>();
      if (s.size() > max_len)
        throw ValidationError(p, fmt::format("string of {} bytes exceeds the limit of {}", s.size(), max_len));
      out.push_back(s);
    }
    return out;
  }

 private:
  const json& obj_;
  std::string path_;
};

constexpr double kInf = std::numeric_limits<double>::infinity();

InputData read_input(const json& v, const ValidationLimits& lim) {
  ObjectReader r(v, "input_data",
                 {"raw_prompt", "processed_input", "token_count", "complexity_score", "detected_keywords", "domain"});
  InputData d;
  auto raw = r.str("raw_prompt", lim.max_prompt_chars);
  if (!raw) throw ValidationError(r.path("raw_prompt"), "is required");
  d.raw_prompt = std::move(*raw);
  d.processed_input = r.str("processed_input", lim.max_prompt_chars);
  d.token_count = r.count("token_count");
  d.complexity_score = r.number("complexity_score", 1, 10);
  d.detected_keywords = r.strings("detected_keywords", lim.max_list_items, lim.max_keyword_chars);
  d.domain = r.str("domain", lim.max_id_chars, false);
  return d;
}

ContextData read_context(const json& v, const ValidationLimits& lim) {
  ObjectReader r(v, "context_data", {"working_directory", "recent_files", "git_branch", "ide_detected"});
  ContextData d;
  d.working_directory = r.str("working_directory", lim.max_path_chars);
  d.recent_files = r.strings("recent_files", lim.max_list_items, lim.max_path_chars);
  d.git_branch = r.str("git_branch", lim.max_path_chars);
  d.ide_detected = r.str("ide_detected", lim.max_id_chars);
  return d;
}

EnhancementData read_enhancement(const json& v, const ValidationLimits& lim) {
  ObjectReader r(v, "enhancement_data", {"selected_template", "template_version", "enhancement_applied",
                                         "enhancement_time_ms", "enhanced_prompt_length"});
  EnhancementData d;
  d.selected_template = r.str("selected_template", lim.max_id_chars, false);
  if (const json* tv = r.find("template_version")) {
    if (tv->is_string()) {
      d.template_version = r.str("template_version", lim.max_id_chars, false);
    } else if (tv->is_number_integer()) {
      d.template_version = std::to_string(*r.count("template_version"));
    } else {
      throw ValidationError(r.path("template_version"),
                            fmt::format("expected a string or an integer, got {} {}", type_name(*tv), show(*tv)));
    }
  }
  d.enhancement_applied = r.boolean("enhancement_applied");
  d.enhancement_time_ms = r.number("enhancement_time_ms", 0, kInf);
  d.enhanced_prompt_length = r.count("enhanced_prompt_length");
  return d;
}

Performance read_performance(const json& v) {
  ObjectReader r(v, "performance_metrics",
                 {"total_processing_time_ms", "template_selection_time_ms", "enhancement_generation_time_ms",
                  "validation_time_ms", "cleanup_time_ms", "resource_usage", "cache_performance"});
  Performance d;
  d.total_processing_time_ms = r.number("total_processing_time_ms", 0, kInf);
  d.template_selection_time_ms = r.number("template_selection_time_ms", 0, kInf);
  d.enhancement_generation_time_ms = r.number("enhancement_generation_time_ms", 0, kInf);
  d.validation_time_ms = r.number("validation_time_ms", 0, kInf);
  d.cleanup_time_ms = r.number("cleanup_time_ms", 0, kInf);
  if (const json* ru = r.find("resource_usage")) {
    ObjectReader rr(*ru, r.path("resource_usage"), {"memory_peak_mb", "cpu_usage_percent", "disk_io_mb"});
    ResourceUsage u;
    u.memory_peak_mb = rr.number("memory_peak_mb", 0, kInf);
    // Percent of one core; a multi-threaded host may exceed 100 (up to 100 per core).
    u.cpu_usage_percent = rr.number("cpu_usage_percent", 0, 100000);
    u.disk_io_mb = rr.number("disk_io_mb", 0, kInf);
    d.resource_usage = u;
  }
  if (const json* cp = r.find("cache_performance")) {
    ObjectReader rc(*cp, r.path("cache_performance"), {"template_cache_hit", "analysis_cache_hit", "cache_hit_rate"});
    CachePerformance c;
    c.template_cache_hit = rc.boolean("template_cache_hit");
    c.analysis_cache_hit = rc.boolean("analysis_cache_hit");
    c.cache_hit_rate = rc.number("cache_hit_rate", 0, 1);
    d.cache_performance = c;
  }
  return d;
}

Outcome read_outcome(const json& v, const ValidationLimits& lim) {
  ObjectReader r(v, "outcome_data", {"claude_response_time_ms", "response_quality_score", "user_satisfaction_rating",
                                     "quality_metrics", "feedback_data", "reward"});
  Outcome d;
  d.claude_response_time_ms = r.number("claude_response_time_ms", 0, kInf);
  d.response_quality_score = r.number("response_quality_score", 0, 10);
  d.user_satisfaction_rating = r.number("user_satisfaction_rating", 1, 10);
  d.reward = r.number("reward", 0, 1);
  if (const json* qm = r.find("quality_metrics")) {
    ObjectReader rq(*qm, r.path("quality_metrics"), {"completeness", "accuracy", "relevance", "structure"});
    QualityMetrics q;
    q.completeness = rq.number("completeness", 0, 1);
    q.accuracy = rq.number("accuracy", 0, 1);
    q.relevance = rq.number("relevance", 0, 1);
    q.structure = rq.number("structure", 0, 1);
    d.quality_metrics = q;
  }
  if (const json* fb = r.find("feedback_data")) {
    ObjectReader rf(*fb, r.path("feedback_data"), {"explicit_feedback", "implicit_feedback"});
    FeedbackData f;
    f.explicit_feedback = rf.str("explicit_feedback", lim.max_text_chars);
    if (const json* im = rf.find("implicit_feedback")) {
      ObjectReader ri(*im, rf.path("implicit_feedback"), {"copy_action_count", "edit_action_count", "acceptance_rate"});
      ImplicitFeedback i;
      i.copy_action_count = ri.count("copy_action_count");
      i.edit_action_count = ri.count("edit_action_count");
      i.acceptance_rate = ri.number("acceptance_rate", 0, 1);
      f.implicit_feedback = i;
    }
    d.feedback_data = f;
  }
  return d;
}

template <typename T>
void put(json& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
}

}  // namespace

bool is_uuid_v4(std::string_view s) noexcept {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < 36; ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
      continue;
    }
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  if (s[14] != '4') return false;
  char v = s[19];
  return v == '8' || v == '9' || v == 'a' || v == 'b' || v == 'A' || v == 'B';
}

bool json_text_nests_deeper(std::string_view text, int limit) noexcept {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

bool json_nests_deeper(const json& doc, int limit) { return nests_deeper(doc, limit); }

Event parse_event(const json& doc, const ValidationLimits& lim) {
  if (nests_deeper(doc, kMaxJsonDepth))
    throw ValidationError("", fmt::format("the document nests deeper than {} levels", kMaxJsonDepth));
  ObjectReader r(doc, "", {"interaction_id", "timestamp", "session_id", "user_id", "input_data", "context_data",
                           "enhancement_data", "performance_metrics", "outcome_data"});
  Event e;
  auto id = r.str("interaction_id", 64);
  if (!id) throw ValidationError("interaction_id", "is required");
  if (!is_uuid_v4(*id)) throw ValidationError("interaction_id", fmt::format("\"{}\" is not a UUID v4", *id));
  e.interaction_id = std::move(*id);
  if (auto ts = r.str("timestamp", 64)) {
    auto t = try_parse_rfc3339(*ts);
    if (!t) throw ValidationError("timestamp", fmt::format("\"{}\" is not an RFC 3339 date-time", *ts));
    e.timestamp = *t;
  }
  e.session_id = r.str("session_id", lim.max_id_chars, false);
  e.user_id = r.str("user_id", lim.max_id_chars, false);
  if (const json* v = r.find("input_data")) e.input_data = read_input(*v, lim);
  if (const json* v = r.find("context_data")) e.context_data = read_context(*v, lim);
  if (const json* v = r.find("enhancement_data")) e.enhancement_data = read_enhancement(*v, lim);
  if (const json* v = r.find("performance_metrics")) e.performance_metrics = read_performance(*v);
  if (const json* v = r.find("outcome_data")) e.outcome_data = read_outcome(*v, lim);
  if (!e.input_data && !e.context_data && !e.enhancement_data && !e.performance_metrics && !e.outcome_data)
    throw ValidationError("", "the document has none of the sections input_data, context_data, enhancement_data, "
                              "performance_metrics, outcome_data");
  if (!e.input_data && (e.context_data || e.enhancement_data))
    throw ValidationError("input_data", "is required when context_data or enhancement_data is given");
  return e;
}

Event parse_event_text(std::string_view text, const ValidationLimits& lim) {
  if (json_text_nests_deeper(text, kMaxJsonDepth))
    throw ValidationError("", fmt::format("the document nests deeper than {} levels", kMaxJsonDepth));
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::exception& ex) {
    throw ValidationError("", fmt::format("malformed JSON: {}", ex.what()));
  }
  return parse_event(doc, lim);
}

json to_json(const InputData& v) {
  json j = json::object();
  j["raw_prompt"] = v.raw_prompt;
  put(j, "processed_input", v.processed_input);
  put(j, "token_count", v.token_count);
  put(j, "complexity_score", v.complexity_score);
  put(j, "detected_keywords", v.detected_keywords);
  put(j, "domain", v.domain);
  return j;
}

json to_json(const ContextData& v) {
  json j = json::object();
  put(j, "working_directory", v.working_directory);
  put(j, "recent_files", v.recent_files);
  put(j, "git_branch", v.git_branch);
  put(j, "ide_detected", v.ide_detected);
  return j;
}

json to_json(const EnhancementData& v) {
  json j = json::object();
  put(j, "selected_template", v.selected_template);
  put(j, "template_version", v.template_version);
  put(j, "enhancement_applied", v.enhancement_applied);
  put(j, "enhancement_time_ms", v.enhancement_time_ms);
  put(j, "enhanced_prompt_length", v.enhanced_prompt_length);
  return j;
}

json to_json(const Performance& v) {
  json j = json::object();
  put(j, "total_processing_time_ms", v.total_processing_time_ms);
  put(j, "template_selection_time_ms", v.template_selection_time_ms);
  put(j, "enhancement_generation_time_ms", v.enhancement_generation_time_ms);
  put(j, "validation_time_ms", v.validation_time_ms);
  put(j, "cleanup_time_ms", v.cleanup_time_ms);
  if (v.resource_usage) {
    json r = json::object();
    put(r, "memory_peak_mb", v.resource_usage->memory_peak_mb);
    put(r, "cpu_usage_percent", v.resource_usage->cpu_usage_percent);
    put(r, "disk_io_mb", v.resource_usage->disk_io_mb);
    j["resource_usage"] = std::move(r);
  }
  if (v.cache_performance) {
    json c = json::object();
    put(c, "template_cache_hit", v.cache_performance->template_cache_hit);
    put(c, "analysis_cache_hit", v.cache_performance->analysis_cache_hit);
    put(c, "cache_hit_rate", v.cache_performance->cache_hit_rate);
    j["cache_performance"] = std::move(c);
  }
  return j;
}

json to_json(const Outcome& v) {
  json j = json::object();
  put(j, "claude_response_time_ms", v.claude_response_time_ms);
  put(j, "response_quality_score", v.response_quality_score);
  put(j, "user_satisfaction_rating", v.user_satisfaction_rating);
  if (v.quality_metrics) {
    json q = json::object();
    put(q, "completeness", v.quality_metrics->completeness);
    put(q, "accuracy", v.quality_metrics->accuracy);
    put(q, "relevance", v.quality_metrics->relevance);
    put(q, "structure", v.quality_metrics->structure);
    j["quality_metrics"] = std::move(q);
  }
  if (v.feedback_data) {
    json f = json::object();
    put(f, "explicit_feedback", v.feedback_data->explicit_feedback);
    if (v.feedback_data->implicit_feedback) {
      const auto& i = *v.feedback_data->implicit_feedback;
      json ij = json::object();
      put(ij, "copy_action_count", i.copy_action_count);
      put(ij, "edit_action_count", i.edit_action_count);
      put(ij, "acceptance_rate", i.acceptance_rate);
      f["implicit_feedback"] = std::move(ij);
    }
    j["feedback_data"] = std::move(f);
  }
  put(j, "reward", v.reward);
  return j;
}

json to_json(const Event& e) {
  json j = json::object();
  j["interaction_id"] = e.interaction_id;
  if (e.timestamp) j["timestamp"] = format_rfc3339(*e.timestamp);
  put(j, "session_id", e.session_id);
  put(j, "user_id", e.user_id);
  if (e.input_data) j["input_data"] = to_json(*e.input_data);
  if (e.context_data) j["context_data"] = to_json(*e.context_data);
  if (e.enhancement_data) j["enhancement_data"] = to_json(*e.enhancement_data);
  if (e.performance_metrics) j["performance_metrics"] = to_json(*e.performance_metrics);
  if (e.outcome_data) j["outcome_data"] = to_json(*e.outcome_data);
  return j;
}

}  // namespace promptlearn
