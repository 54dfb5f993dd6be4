/// @file Configuration parsing, validation and serialisation.
///
/// One description of the document drives three visitors, so the key names, ranges and messages cannot drift
/// apart: `visit_*` functions list each section's fields with their range, and
///   Reader    reads them from JSON (type, range, unknown-key checks; missing keys keep the default),
///   Writer    writes them to JSON,
///   Validator checks a struct built in C++.
/// Strategy parameters are described by tables (kSlots) and checked by normalize_parameters.
#include "promptlearn/config.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "promptlearn/core/error.hpp"

namespace promptlearn {
namespace {

using nlohmann::json;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kIntMax = static_cast<double>(std::numeric_limits<int>::max());

// ---------------------------------------------------------------------------------------------------------------
// Messages

/// An interval of allowed values; integer fields use it too (their bounds are exact in a double).
struct Range {
  double lo;
  double hi;
  bool lo_open;
  bool hi_open;

  bool contains(double v) const {  // false for NaN
    return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  }
  std::string text() const {
    return fmt::format("{}{}, {}{}", lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
  }
};

constexpr Range closed(double lo, double hi) { return {lo, hi, false, false}; }
constexpr Range open_closed(double lo, double hi) { return {lo, hi, true, false}; }
constexpr Range closed_open(double lo, double hi) { return {lo, hi, false, true}; }
constexpr Range open_open(double lo, double hi) { return {lo, hi, true, true}; }
constexpr Range positive() { return {0.0, kInf, true, true}; }
constexpr Range int_at_least(int lo) { return {static_cast<double>(lo), kIntMax, false, false}; }

std::string join(const std::string& path, std::string_view key) {
  if (key.empty()) return path;
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

/// The offending value as JSON text, shortened so a message stays one line.
std::string describe(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  constexpr std::size_t kMax = 60;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

[[noreturn]] void type_error(const std::string& path, std::string_view expected, const json& got) {
  throw ConfigError(path, fmt::format("expected {}, got {}", expected, describe(got)));
}

[[noreturn]] void range_error(const std::string& path, const std::string& value, const Range& range) {
  throw ConfigError(path, fmt::format("{} is outside {}", value, range.text()));
}

void check_number(const std::string& path, double value, const Range& range) {
  if (!range.contains(value)) range_error(path, fmt::format("{}", value), range);
}

void check_integer(const std::string& path, std::int64_t value, const Range& range) {
  if (!range.contains(static_cast<double>(value))) range_error(path, fmt::format("{}", value), range);
}

/// A field that must be at least another field of the same section.
void check_not_less(const std::string& path, int value, std::string_view other, int other_value) {
  if (value < other_value) throw ConfigError(path, fmt::format("{} is less than {} ({})", value, other, other_value));
}

template <class Names>
std::string join_names(const Names& names) {
  return fmt::format("{}", fmt::join(names.begin(), names.end(), ", "));
}

template <class Names>
[[noreturn]] void choice_error(const std::string& path, const std::string& given, const Names& names) {
  throw ConfigError(path, fmt::format("{} is not one of {}", given, join_names(names)));
}

// ---------------------------------------------------------------------------------------------------------------
// JSON scalar readers (type and representability; ranges are checked by the caller)

bool read_bool(const std::string& path, const json& j) {
  if (!j.is_boolean()) type_error(path, "a boolean", j);
  return j.get<bool>();
}

double read_double(const std::string& path, const json& j) {
  if (!j.is_number()) type_error(path, "a number", j);
  return j.get<double>();
}

bool is_integral(const json& j) {
  if (j.is_number_integer()) return true;  // also true for number_unsigned
  if (!j.is_number_float()) return false;
  const double d = j.get<double>();
  return std::isfinite(d) && std::floor(d) == d;
}

/// An integer (10 and 10.0 accepted, 10.5 not) inside `range`, whose bounds fit an int64.
std::int64_t read_integer(const std::string& path, const json& j, const Range& range) {
  if (!is_integral(j)) type_error(path, "an integer", j);
  if (j.is_number_unsigned()) {
    const auto u = j.get<std::uint64_t>();
    if (!range.contains(static_cast<double>(u)) ||
        u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      range_error(path, fmt::format("{}", u), range);
    return static_cast<std::int64_t>(u);
  }
  if (j.is_number_integer()) {
    const auto i = j.get<std::int64_t>();
    check_integer(path, i, range);
    return i;
  }
  const double d = j.get<double>();
  if (!range.contains(d)) range_error(path, fmt::format("{}", d), range);
  return static_cast<std::int64_t>(d);
}

/// Any integer in [0, 2^64 - 1] (10 and 10.0 accepted, 10.5 not).
std::uint64_t read_uint64(const std::string& path, const json& j) {
  if (!is_integral(j)) type_error(path, "an integer", j);
  constexpr std::string_view kRange = "[0, 18446744073709551615]";
  if (j.is_number_unsigned()) return j.get<std::uint64_t>();
  if (j.is_number_integer()) {  // only negative values arrive here: the parser stores the others as unsigned
    const auto i = j.get<std::int64_t>();
    if (i < 0) throw ConfigError(path, fmt::format("{} is outside {}", i, kRange));
    return static_cast<std::uint64_t>(i);
  }
  const double d = j.get<double>();
  if (!(d >= 0.0 && d < 18446744073709551616.0)) throw ConfigError(path, fmt::format("{} is outside {}", d, kRange));
  return static_cast<std::uint64_t>(d);
}

const std::string& read_string(const std::string& path, const json& j) {
  if (!j.is_string()) type_error(path, "a string", j);
  return j.get_ref<const std::string&>();
}

// ---------------------------------------------------------------------------------------------------------------
// Enumerations

template <class E>
struct EnumNames;
template <>
struct EnumNames<Frequency> {
  static constexpr std::array<std::string_view, 5> names{"hourly", "daily", "weekly", "monthly", "never"};
};
template <>
struct EnumNames<CollectionMode> {
  static constexpr std::array<std::string_view, 2> names{"synchronous", "buffered"};
};
template <>
struct EnumNames<SynchronousCommit> {
  static constexpr std::array<std::string_view, 2> names{"full", "normal"};
};

template <class E>
std::string_view enum_to_string(E value) noexcept {
  const auto& names = EnumNames<E>::names;
  const auto index = static_cast<std::size_t>(value);
  return index < names.size() ? names[index] : std::string_view{};
}

template <class E>
std::optional<E> enum_from_string(std::string_view text) noexcept {
  const auto& names = EnumNames<E>::names;
  const auto it = std::find(names.begin(), names.end(), text);
  if (it == names.end()) return std::nullopt;
  return static_cast<E>(it - names.begin());
}

// ---------------------------------------------------------------------------------------------------------------
// Strategy parameter tables

enum class ParamKind { number, integer, choice };

struct ParamSpec {
  std::string_view name;
  ParamKind kind;
  Range range;                               // number, integer
  double default_value;                      // number, integer
  std::vector<std::string_view> choices{};  // choice; the first is the default
};

/// A parameter that must not exceed another one of the same algorithm.
struct NotGreater {
  std::string_view name;
  std::string_view bound;
};

struct AlgorithmSpec {
  std::string_view name;
  std::vector<ParamSpec> params;
  std::vector<NotGreater> not_greater{};
};

struct SlotSpec {
  std::string_view key;
  std::vector<AlgorithmSpec> algorithms;  // the first is the default
};

ParamSpec number_param(std::string_view name, double def, Range range) {
  return {name, ParamKind::number, range, def};
}
ParamSpec integer_param(std::string_view name, int def, Range range) {
  return {name, ParamKind::integer, range, static_cast<double>(def)};
}
ParamSpec choice_param(std::string_view name, std::vector<std::string_view> choices) {
  return {name, ParamKind::choice, closed(0, 0), 0.0, std::move(choices)};
}

const std::vector<SlotSpec>& slots() {
  static const std::vector<SlotSpec> kSlots{
      {"template_selection",
       {
           {"linucb",
            {number_param("alpha", 0.5, positive()), number_param("epsilon_floor", 0.05, closed_open(0, 1)),
             number_param("ridge_lambda", 1.0, positive())}},
           {"thompson",
            {number_param("v", 0.15, positive()), number_param("epsilon_floor", 0.05, closed_open(0, 1)),
             number_param("ridge_lambda", 1.0, positive())}},
           {"epsilon_greedy", {number_param("epsilon", 0.1, closed(0, 1))}},
           {"softmax", {number_param("temperature", 0.1, positive())}},
           {"q_learning",
            {number_param("learning_rate", 0.1, open_closed(0, 1)),
             number_param("discount_factor", 0.95, closed(0, 1)),
             number_param("exploration_rate", 0.1, closed(0, 1))}},
       }},
      {"parameter_optimization",
       {
           {"bayesian_optimization",
            {choice_param("acquisition_function", {"expected_improvement", "upper_confidence_bound"}),
             integer_param("n_iterations", 50, int_at_least(1)),
             integer_param("initial_points", 10, int_at_least(1))},
            {{"initial_points", "n_iterations"}}},
       }},
      {"pattern_recognition",
       {
           {"dbscan",
            {number_param("eps", 0.3, open_closed(0, 2)), integer_param("min_samples", 5, int_at_least(1))}},
       }},
  };
  return kSlots;
}

const SlotSpec& slot(std::string_view key) {
  for (const auto& s : slots())
    if (s.key == key) return s;
  throw std::logic_error("promptlearn: no strategy slot " + std::string(key));
}

const AlgorithmSpec* find_algorithm(const SlotSpec& slot, std::string_view name) {
  for (const auto& a : slot.algorithms)
    if (a.name == name) return &a;
  return nullptr;
}

std::vector<std::string_view> algorithm_names(const SlotSpec& slot) {
  std::vector<std::string_view> names;
  for (const auto& a : slot.algorithms) names.push_back(a.name);
  return names;
}

const AlgorithmSpec& checked_algorithm(const std::string& path, const SlotSpec& slot, const std::string& name) {
  const AlgorithmSpec* spec = find_algorithm(slot, name);
  if (spec == nullptr) choice_error(path, describe(json(name)), algorithm_names(slot));
  return *spec;
}

json default_parameters(const AlgorithmSpec& algorithm) {
  json params = json::object();
  for (const auto& p : algorithm.params) {
    switch (p.kind) {
      case ParamKind::number: params[std::string(p.name)] = p.default_value; break;
      case ParamKind::integer: params[std::string(p.name)] = static_cast<std::int64_t>(p.default_value); break;
      case ParamKind::choice: params[std::string(p.name)] = std::string(p.choices.front()); break;
    }
  }
  return params;
}

/// Checks `given_or_null` (nullptr when the key is absent) against `algorithm`; returns the normalised parameters.
/// With fill_defaults, missing parameters take their defaults; otherwise a missing parameter is an error.
json normalize_parameters(const std::string& path, const AlgorithmSpec& algorithm, const json* given_or_null,
                          bool fill_defaults) {
  if (given_or_null != nullptr && !given_or_null->is_object()) type_error(path, "an object", *given_or_null);
  const json absent = json::object();
  const json& given = given_or_null != nullptr ? *given_or_null : absent;
  for (const auto& item : given.items()) {
    const bool known = std::any_of(algorithm.params.begin(), algorithm.params.end(),
                                   [&](const ParamSpec& p) { return p.name == item.key(); });
    if (!known) {
      std::vector<std::string_view> names;
      for (const auto& p : algorithm.params) names.push_back(p.name);
      throw ConfigError(join(path, item.key()), fmt::format("unknown key for algorithm \"{}\" (known keys: {})",
                                                            algorithm.name, join_names(names)));
    }
  }
  const json defaults = default_parameters(algorithm);
  json out = json::object();
  for (const auto& p : algorithm.params) {
    const std::string key(p.name);
    const std::string key_path = join(path, key);
    if (!given.contains(key)) {
      if (!fill_defaults) throw ConfigError(key_path, "missing key");
      out[key] = defaults.at(key);
      continue;
    }
    const json& value = given[key];
    switch (p.kind) {
      case ParamKind::number: {
        const double d = read_double(key_path, value);
        check_number(key_path, d, p.range);
        out[key] = d;
        break;
      }
      case ParamKind::integer: out[key] = read_integer(key_path, value, p.range); break;
      case ParamKind::choice: {
        const std::string& s = read_string(key_path, value);
        if (std::find(p.choices.begin(), p.choices.end(), s) == p.choices.end())
          choice_error(key_path, describe(value), p.choices);
        out[key] = s;
        break;
      }
    }
  }
  for (const auto& c : algorithm.not_greater) {
    const auto value = out[std::string(c.name)].get<std::int64_t>();
    const auto bound = out[std::string(c.bound)].get<std::int64_t>();
    if (value > bound)
      throw ConfigError(join(path, c.name), fmt::format("{} is greater than {} ({})", value, c.bound, bound));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Visitors

/// Every name in `names` is one of `allowed`, and none is repeated.
void check_names(const std::string& path, const std::vector<std::string>& names, const std::vector<std::string_view>& allowed) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (std::find(allowed.begin(), allowed.end(), names[i]) == allowed.end())
      throw ConfigError(fmt::format("{}[{}]", path, i),
                        fmt::format("\"{}\" is not one of: {}", names[i], fmt::join(allowed, ", ")));
    if (std::find(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(i), names[i]) != names.begin() + static_cast<std::ptrdiff_t>(i))
      throw ConfigError(fmt::format("{}[{}]", path, i), fmt::format("\"{}\" is listed twice", names[i]));
  }
}

/// Reads fields from a JSON object; keys it was not asked about are reported by finish().
class Reader {
 public:
  Reader(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  void boolean(std::string_view key, bool& field) {
    if (const json* j = find(key)) field = read_bool(join(path_, key), *j);
  }
  void number(std::string_view key, double& field, const Range& range) {
    if (const json* j = find(key)) {
      const std::string path = join(path_, key);
      field = read_double(path, *j);
      check_number(path, field, range);
    }
  }
  void integer(std::string_view key, int& field, const Range& range) {
    if (const json* j = find(key)) field = static_cast<int>(read_integer(join(path_, key), *j, range));
  }
  void integer(std::string_view key, std::uint64_t& field) {
    if (const json* j = find(key)) field = read_uint64(join(path_, key), *j);
  }
  void text(std::string_view key, std::string& field) {
    if (const json* j = find(key)) field = read_string(join(path_, key), *j);
  }
  void names(std::string_view key, std::vector<std::string>& field, const std::vector<std::string_view>& allowed) {
    if (const json* j = find(key)) {
      const std::string path = join(path_, key);
      if (!j->is_array()) type_error(path, "an array of strings", *j);
      std::vector<std::string> out;
      for (std::size_t i = 0; i < j->size(); ++i) out.push_back(read_string(fmt::format("{}[{}]", path, i), (*j)[i]));
      check_names(path, out, allowed);
      field = std::move(out);
    }
  }
  template <class E>
  void choice(std::string_view key, E& field) {
    if (const json* j = find(key)) {
      const std::string path = join(path_, key);
      const auto parsed = enum_from_string<E>(read_string(path, *j));
      if (!parsed) choice_error(path, describe(*j), EnumNames<E>::names);
      field = *parsed;
    }
  }
  template <class S, class F>
  void section(std::string_view key, S& field, F&& visit) {
    if (const json* j = find(key)) {
      const std::string path = join(path_, key);
      if (!j->is_object()) type_error(path, "an object", *j);
      Reader child(*j, path);
      visit(child, field);
      child.finish();
    }
  }
  void strategy(std::string_view key, StrategyConfig& field) {
    const json* j = find(key);
    if (j == nullptr) return;
    const std::string path = join(path_, key);
    if (!j->is_object()) type_error(path, "an object", *j);
    Reader child(*j, path);
    std::string algorithm = field.algorithm;
    if (const json* a = child.find("algorithm")) algorithm = read_string(join(path, "algorithm"), *a);
    const AlgorithmSpec& spec = checked_algorithm(join(path, "algorithm"), slot(key), algorithm);
    const json* given = child.find("parameters");  // missing parameters take the defaults of `algorithm`
    const json params = normalize_parameters(join(path, "parameters"), spec, given, true);
    child.finish();
    field.algorithm = algorithm;
    field.parameters = params;
  }
  void not_less(std::string_view key, int value, std::string_view other, int other_value) {
    check_not_less(join(path_, key), value, other, other_value);
  }

  /// Throws for the first (alphabetical) key that no field asked for.
  void finish() const {
    for (const auto& item : object_.items()) {
      if (std::find(seen_.begin(), seen_.end(), item.key()) == seen_.end())
        throw ConfigError(join(path_, item.key()), "unknown key");
    }
  }

 private:
  const json* find(std::string_view key) {
    seen_.emplace_back(key);
    const auto it = object_.find(std::string(key));
    return it == object_.end() ? nullptr : &*it;
  }

  const json& object_;
  std::string path_;
  std::vector<std::string> seen_;
};

/// Writes every field into a JSON object.
class Writer {
 public:
  explicit Writer(json& out) : out_(out) {}

  void boolean(std::string_view key, bool field) { out_[std::string(key)] = field; }
  void number(std::string_view key, double field, const Range&) { out_[std::string(key)] = field; }
  void integer(std::string_view key, int field, const Range&) { out_[std::string(key)] = field; }
  void integer(std::string_view key, std::uint64_t field) { out_[std::string(key)] = field; }
  void text(std::string_view key, const std::string& field) { out_[std::string(key)] = field; }
  void names(std::string_view key, const std::vector<std::string>& field, const std::vector<std::string_view>&) {
    out_[std::string(key)] = field;
  }
  template <class E>
  void choice(std::string_view key, E field) {
    out_[std::string(key)] = std::string(enum_to_string(field));
  }
  template <class S, class F>
  void section(std::string_view key, const S& field, F&& visit) {
    json& child = out_[std::string(key)] = json::object();
    Writer writer(child);
    visit(writer, field);
  }
  void strategy(std::string_view key, const StrategyConfig& field) {
    out_[std::string(key)] = json{{"algorithm", field.algorithm}, {"parameters", field.parameters}};
  }
  void not_less(std::string_view, int, std::string_view, int) {}

 private:
  json& out_;
};

/// Checks the fields of a struct built in C++, with the Reader's messages.
class Validator {
 public:
  explicit Validator(std::string path) : path_(std::move(path)) {}

  void boolean(std::string_view, bool) {}
  void number(std::string_view key, double field, const Range& range) {
    check_number(join(path_, key), field, range);
  }
  void integer(std::string_view key, int field, const Range& range) {
    check_integer(join(path_, key), field, range);
  }
  void integer(std::string_view, std::uint64_t) {}
  void text(std::string_view, const std::string&) {}
  void names(std::string_view key, const std::vector<std::string>& field, const std::vector<std::string_view>& allowed) {
    check_names(join(path_, key), field, allowed);
  }
  template <class E>
  void choice(std::string_view key, E field) {
    if (enum_to_string(field).empty())
      choice_error(join(path_, key), fmt::format("{}", static_cast<long long>(field)), EnumNames<E>::names);
  }
  template <class S, class F>
  void section(std::string_view key, const S& field, F&& visit) {
    Validator child(join(path_, key));
    visit(child, field);
  }
  void strategy(std::string_view key, const StrategyConfig& field) {
    const std::string path = join(path_, key);
    const AlgorithmSpec& spec = checked_algorithm(join(path, "algorithm"), slot(key), field.algorithm);
    normalize_parameters(join(path, "parameters"), spec, &field.parameters, false);
  }
  void not_less(std::string_view key, int value, std::string_view other, int other_value) {
    check_not_less(join(path_, key), value, other, other_value);
  }

 private:
  std::string path_;
};

// ---------------------------------------------------------------------------------------------------------------
// The document (S is the struct or its const version; V is one of the visitors)

template <class V, class S>
void visit_retention(V& v, S& s) {
  v.integer("interaction_data_days", s.interaction_data_days, int_at_least(1));
  v.integer("performance_data_days", s.performance_data_days, int_at_least(1));
  v.integer("pattern_data_days", s.pattern_data_days, int_at_least(1));
  v.integer("model_checkpoints_kept", s.model_checkpoints_kept, int_at_least(1));
}

template <class V, class S>
void visit_privacy(V& v, S& s) {
  v.boolean("hash_identifiers", s.hash_identifiers);
  v.text("key_file", s.key_file);
  v.boolean("auto_key", s.auto_key);
  v.boolean("scrub_pii", s.scrub_pii);
  v.names("scrub_kinds", s.scrub_kinds, {"email", "phone", "card", "ip", "secret", "home_user"});
  v.boolean("encrypt_text", s.encrypt_text);
  v.integer("timestamp_granularity_seconds", s.timestamp_granularity_seconds, closed(0, 86400));
  v.names("omit_fields", s.omit_fields,
          {"raw_prompt", "processed_input", "explicit_feedback", "working_directory", "recent_files", "git_branch"});
}

template <class V, class S>
void visit_learning_parameters(V& v, S& s) {
  v.number("learning_rate", s.learning_rate, open_closed(0, 1));
  v.number("discount_factor", s.discount_factor, closed(0, 1));
  v.number("exploration_rate", s.exploration_rate, closed(0, 1));
  v.number("adaptation_threshold", s.adaptation_threshold, closed(0, 1));
  v.integer("min_samples_for_adaptation", s.min_samples_for_adaptation, int_at_least(1));
  v.integer("max_adaptation_per_day", s.max_adaptation_per_day, int_at_least(0));
}

template <class V, class S>
void visit_model_training(V& v, S& s) {
  v.integer("batch_size", s.batch_size, int_at_least(1));
  v.number("validation_split", s.validation_split, open_open(0, 1));
  v.integer("early_stopping_patience", s.early_stopping_patience, int_at_least(1));
  v.integer("max_epochs", s.max_epochs, int_at_least(1));
  v.choice("model_retraining_frequency", s.model_retraining_frequency);
  v.integer("random_seed", s.random_seed);
}

template <class V, class S>
void visit_optimization(V& v, S& s) {
  v.choice("pattern_update_frequency", s.pattern_update_frequency);
  v.choice("template_optimization_frequency", s.template_optimization_frequency);
  v.choice("parameter_tuning_frequency", s.parameter_tuning_frequency);
}

template <class V, class S>
void visit_collection(V& v, S& s) {
  v.integer("batch_size", s.batch_size, closed(1, 100000));
  v.integer("buffer_capacity", s.buffer_capacity, int_at_least(1));
  v.choice("mode", s.mode);
  v.integer("max_prompt_chars", s.max_prompt_chars, closed(1, 10000000));
  v.boolean("store_raw_prompt", s.store_raw_prompt);
  v.choice("synchronous_commit", s.synchronous_commit);
  v.not_less("buffer_capacity", s.buffer_capacity, "batch_size", s.batch_size);
}

template <class V, class S>
void visit_reward(V& v, S& s) {
  v.number("quality_weight", s.quality_weight, closed(0, 1e9));
  v.number("satisfaction_weight", s.satisfaction_weight, closed(0, 1e9));
  v.number("acceptance_weight", s.acceptance_weight, closed(0, 1e9));
  v.number("edit_weight", s.edit_weight, closed(0, 1e9));
  v.number("latency_weight", s.latency_weight, closed(0, 1e9));
  v.integer("edits_cap", s.edits_cap, int_at_least(1));
  v.number("latency_budget_ms", s.latency_budget_ms, open_closed(0, 1e12));
  v.number("default_reward", s.default_reward, closed(0, 1));
  v.integer("reward_wait_hours", s.reward_wait_hours, int_at_least(1));
}

template <class V, class S>
void visit_selection(V& v, S& s) {
  v.boolean("apprentice_mode", s.apprentice_mode);
  v.number("apprentice_exploration", s.apprentice_exploration, open_open(0, 1));
}

template <class V, class S>
void visit_learning(V& v, S& s) {
  v.boolean("historical_learning_enabled", s.historical_learning_enabled);
  v.boolean("adaptive_refinement_enabled", s.adaptive_refinement_enabled);
  v.boolean("performance_tracking_enabled", s.performance_tracking_enabled);
  v.boolean("pattern_recognition_enabled", s.pattern_recognition_enabled);
  v.section("data_retention", s.data_retention, [](auto& sub, auto& f) { visit_retention(sub, f); });
  v.section("learning_parameters", s.learning_parameters,
            [](auto& sub, auto& f) { visit_learning_parameters(sub, f); });
  v.section("model_training", s.model_training, [](auto& sub, auto& f) { visit_model_training(sub, f); });
  v.section("optimization", s.optimization, [](auto& sub, auto& f) { visit_optimization(sub, f); });
  v.section("data_collection", s.data_collection, [](auto& sub, auto& f) { visit_collection(sub, f); });
  v.section("reward", s.reward, [](auto& sub, auto& f) { visit_reward(sub, f); });
  v.section("selection", s.selection, [](auto& sub, auto& f) { visit_selection(sub, f); });
  v.section("privacy", s.privacy, [](auto& sub, auto& f) { visit_privacy(sub, f); });
}

template <class V, class S>
void visit_strategies(V& v, S& s) {
  v.strategy("template_selection", s.template_selection);
  v.strategy("parameter_optimization", s.parameter_optimization);
  v.strategy("pattern_recognition", s.pattern_recognition);
}

template <class V, class S>
void visit_config(V& v, S& s) {
  v.section("learning", s.learning, [](auto& sub, auto& f) { visit_learning(sub, f); });
  v.section("learning_strategies", s.learning_strategies, [](auto& sub, auto& f) { visit_strategies(sub, f); });
}

/// Parser callback state that rejects a key repeated in one object (nlohmann would keep the last silently).
class DuplicateKeyCheck {
 public:
  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        frames_.push_back({frames_.empty() ? std::string() : join(frames_.back().path, frames_.back().key), {}, {}});
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
      case json::parse_event_t::key: {
        Frame& top = frames_.back();
        const std::string& key = parsed.get_ref<const std::string&>();
        if (std::find(top.keys.begin(), top.keys.end(), key) != top.keys.end())
          throw ConfigError(join(top.path, key), "duplicate key");
        top.keys.push_back(key);
        top.key = key;
        break;
      }
      case json::parse_event_t::value: break;
    }
    return true;
  }

 private:
  struct Frame {
    std::string path;
    std::vector<std::string> keys;
    std::string key;  // the key whose value is being parsed
  };
  std::vector<Frame> frames_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Public API

std::string_view to_string(Frequency value) noexcept { return enum_to_string(value); }
std::string_view to_string(CollectionMode value) noexcept { return enum_to_string(value); }
std::string_view to_string(SynchronousCommit value) noexcept { return enum_to_string(value); }
std::optional<Frequency> frequency_from_string(std::string_view text) noexcept {
  return enum_from_string<Frequency>(text);
}
std::optional<CollectionMode> collection_mode_from_string(std::string_view text) noexcept {
  return enum_from_string<CollectionMode>(text);
}
std::optional<SynchronousCommit> synchronous_commit_from_string(std::string_view text) noexcept {
  return enum_from_string<SynchronousCommit>(text);
}

StrategyConfig StrategyConfig::for_algorithm(std::string_view algorithm) {
  std::vector<std::string_view> all;
  for (const auto& s : slots()) {
    if (const AlgorithmSpec* spec = find_algorithm(s, algorithm))
      return {std::string(algorithm), default_parameters(*spec)};
    for (const auto& a : s.algorithms) all.push_back(a.name);
  }
  choice_error("algorithm", describe(json(std::string(algorithm))), all);
}

Config Config::defaults() { return Config{}; }

Config Config::from_json(const json& doc) {
  if (!doc.is_object()) type_error("config", "an object", doc);
  Config config;
  Reader reader(doc, "");
  visit_config(reader, config);
  reader.finish();
  config.validate();
  return config;
}

Config Config::from_string(std::string_view json_text) {
  json doc;
  try {
    doc = json::parse(json_text.begin(), json_text.end(), DuplicateKeyCheck{}, /*allow_exceptions=*/true,
                      /*ignore_comments=*/false);
  } catch (const json::parse_error& e) {
    std::string message = e.what();  // "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
    const auto prefix_end = message.find("] ");
    if (message.rfind("[json.exception.", 0) == 0 && prefix_end != std::string::npos)
      message.erase(0, prefix_end + 2);
    throw ConfigError("config", message);
  }
  return from_json(doc);
}

json Config::to_json() const {
  json out = json::object();
  Writer writer(out);
  visit_config(writer, *this);
  return out;
}

void Config::validate() const {
  Validator validator("");
  visit_config(validator, *this);
}

bool operator==(const DataRetention& a, const DataRetention& b) {
  return a.interaction_data_days == b.interaction_data_days && a.performance_data_days == b.performance_data_days &&
         a.pattern_data_days == b.pattern_data_days && a.model_checkpoints_kept == b.model_checkpoints_kept;
}
bool operator==(const LearningParameters& a, const LearningParameters& b) {
  return a.learning_rate == b.learning_rate && a.discount_factor == b.discount_factor &&
         a.exploration_rate == b.exploration_rate && a.adaptation_threshold == b.adaptation_threshold &&
         a.min_samples_for_adaptation == b.min_samples_for_adaptation &&
         a.max_adaptation_per_day == b.max_adaptation_per_day;
}
bool operator==(const ModelTraining& a, const ModelTraining& b) {
  return a.batch_size == b.batch_size && a.validation_split == b.validation_split &&
         a.early_stopping_patience == b.early_stopping_patience && a.max_epochs == b.max_epochs &&
         a.model_retraining_frequency == b.model_retraining_frequency && a.random_seed == b.random_seed;
}
bool operator==(const OptimizationSchedule& a, const OptimizationSchedule& b) {
  return a.pattern_update_frequency == b.pattern_update_frequency &&
         a.template_optimization_frequency == b.template_optimization_frequency &&
         a.parameter_tuning_frequency == b.parameter_tuning_frequency;
}
bool operator==(const DataCollection& a, const DataCollection& b) {
  return a.batch_size == b.batch_size && a.buffer_capacity == b.buffer_capacity && a.mode == b.mode &&
         a.max_prompt_chars == b.max_prompt_chars && a.store_raw_prompt == b.store_raw_prompt &&
         a.synchronous_commit == b.synchronous_commit;
}
bool operator==(const RewardConfig& a, const RewardConfig& b) {
  return a.quality_weight == b.quality_weight && a.satisfaction_weight == b.satisfaction_weight &&
         a.acceptance_weight == b.acceptance_weight && a.edit_weight == b.edit_weight &&
         a.latency_weight == b.latency_weight && a.edits_cap == b.edits_cap &&
         a.latency_budget_ms == b.latency_budget_ms && a.default_reward == b.default_reward &&
         a.reward_wait_hours == b.reward_wait_hours;
}
bool operator==(const SelectionConfig& a, const SelectionConfig& b) {
  return a.apprentice_mode == b.apprentice_mode && a.apprentice_exploration == b.apprentice_exploration;
}
bool operator==(const StrategyConfig& a, const StrategyConfig& b) {
  return a.algorithm == b.algorithm && a.parameters == b.parameters;
}
bool operator==(const LearningConfig& a, const LearningConfig& b) {
  return a.historical_learning_enabled == b.historical_learning_enabled &&
         a.adaptive_refinement_enabled == b.adaptive_refinement_enabled &&
         a.performance_tracking_enabled == b.performance_tracking_enabled &&
         a.pattern_recognition_enabled == b.pattern_recognition_enabled && a.data_retention == b.data_retention &&
         a.learning_parameters == b.learning_parameters && a.model_training == b.model_training &&
         a.optimization == b.optimization && a.data_collection == b.data_collection && a.reward == b.reward &&
         a.selection == b.selection && a.privacy == b.privacy;
}
bool operator==(const PrivacyConfig& a, const PrivacyConfig& b) {
  return a.hash_identifiers == b.hash_identifiers && a.key_file == b.key_file && a.auto_key == b.auto_key &&
         a.scrub_pii == b.scrub_pii && a.scrub_kinds == b.scrub_kinds && a.encrypt_text == b.encrypt_text &&
         a.timestamp_granularity_seconds == b.timestamp_granularity_seconds && a.omit_fields == b.omit_fields;
}
bool operator==(const LearningStrategies& a, const LearningStrategies& b) {
  return a.template_selection == b.template_selection && a.parameter_optimization == b.parameter_optimization &&
         a.pattern_recognition == b.pattern_recognition;
}
bool operator==(const Config& a, const Config& b) {
  return a.learning == b.learning && a.learning_strategies == b.learning_strategies;
}

void to_json(json& j, const Config& config) { j = config.to_json(); }
void from_json(const json& j, Config& config) { config = Config::from_json(j); }

}  // namespace promptlearn
