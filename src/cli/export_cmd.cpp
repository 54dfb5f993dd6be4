// `promptlearn export` (decisions as Vowpal Wabbit DSJSON, interactions as JSON lines or CSV) and
// `promptlearn merge` (shard files into one). Formats and semantics: docs/scale-out.md.
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/lifecycle/merge.hpp"
#include "promptlearn/store/store.hpp"

namespace promptlearn::cli {
namespace {

using nlohmann::json;
/// Keeps the fields in the order written (DSJSON: the label first, as the decision service logs it).
using ojson = nlohmann::ordered_json;

/// The CSV columns, in order (also printed by --help).
const std::vector<std::string> kCsvColumns = {
    "interaction_id", "timestamp", "session_id", "user_id", "domain", "token_count", "complexity_score",
    "selected_template", "template_version", "enhancement_applied", "enhancement_time_ms",
    "total_processing_time_ms", "memory_peak_mb", "cache_hit_rate", "claude_response_time_ms",
    "response_quality_score", "user_satisfaction_rating", "acceptance_rate", "reward", "raw_prompt"};

/// Interactions joined with performance and outcome; column order used by both jsonl and csv.
constexpr const char* kInteractionSql = R"SQL(
SELECT i.interaction_id, i.timestamp, i.session_id, i.user_id,
       i.raw_prompt, i.processed_input, i.token_count, i.complexity_score, i.detected_keywords, i.domain,
       i.working_directory, i.recent_files, i.git_branch, i.ide_detected,
       i.selected_template, i.template_version, i.enhancement_applied, i.enhancement_time_ms, i.enhanced_prompt_length,
       p.interaction_id, p.total_processing_time_ms, p.template_selection_time_ms, p.enhancement_generation_time_ms,
       p.validation_time_ms, p.cleanup_time_ms, p.memory_peak_mb, p.cpu_usage_percent, p.disk_io_mb,
       p.template_cache_hit, p.analysis_cache_hit, p.cache_hit_rate,
       o.interaction_id, o.claude_response_time_ms, o.response_quality_score, o.user_satisfaction_rating,
       o.completeness, o.accuracy, o.relevance, o.structure, o.explicit_feedback, o.copy_action_count,
       o.edit_action_count, o.acceptance_rate, o.reward
FROM interactions i
LEFT JOIN performance p ON p.interaction_id = i.interaction_id
LEFT JOIN outcomes o ON o.interaction_id = i.interaction_id
ORDER BY i.timestamp, i.interaction_id
)SQL";

/// Column `c` as JSON (null when NULL); JSON-text columns parsed; 0/1 columns as booleans.
enum class Kind { text, number, integer, boolean, json_text };

json value(const store::Statement& q, int c, Kind k) {
  if (q.is_null(c)) return nullptr;
  switch (k) {
    case Kind::number: return q.column_double(c);
    case Kind::integer: return q.column_int64(c);
    case Kind::boolean: return q.column_int64(c) != 0;
    case Kind::json_text: return json::parse(q.column_view(c), nullptr, false);
    case Kind::text: break;
  }
  return q.column_text(c);
}

/// Adds `key` to `obj` unless the column is NULL.
void put(json& obj, const char* key, const store::Statement& q, int c, Kind k) {
  json v = value(q, c, k);
  if (!v.is_null() && !v.is_discarded()) obj[key] = std::move(v);
}

/// One interaction row as the wire document (DESIGN.md section 3; core/records.hpp).
json wire_document(const store::Statement& q) {
  json doc{{"interaction_id", q.column_text(0)}, {"timestamp", q.column_text(1)}};
  put(doc, "session_id", q, 2, Kind::text);
  put(doc, "user_id", q, 3, Kind::text);
  json in = json::object();
  put(in, "raw_prompt", q, 4, Kind::text);
  put(in, "processed_input", q, 5, Kind::text);
  put(in, "token_count", q, 6, Kind::integer);
  put(in, "complexity_score", q, 7, Kind::number);
  put(in, "detected_keywords", q, 8, Kind::json_text);
  put(in, "domain", q, 9, Kind::text);
  doc["input_data"] = std::move(in);
  json ctx = json::object();
  put(ctx, "working_directory", q, 10, Kind::text);
  put(ctx, "recent_files", q, 11, Kind::json_text);
  put(ctx, "git_branch", q, 12, Kind::text);
  put(ctx, "ide_detected", q, 13, Kind::text);
  if (!ctx.empty()) doc["context_data"] = std::move(ctx);
  json en = json::object();
  put(en, "selected_template", q, 14, Kind::text);
  put(en, "template_version", q, 15, Kind::text);
  put(en, "enhancement_applied", q, 16, Kind::boolean);
  put(en, "enhancement_time_ms", q, 17, Kind::number);
  put(en, "enhanced_prompt_length", q, 18, Kind::integer);
  if (!en.empty()) doc["enhancement_data"] = std::move(en);
  if (!q.is_null(19)) {
    json p = json::object();
    put(p, "total_processing_time_ms", q, 20, Kind::number);
    put(p, "template_selection_time_ms", q, 21, Kind::number);
    put(p, "enhancement_generation_time_ms", q, 22, Kind::number);
    put(p, "validation_time_ms", q, 23, Kind::number);
    put(p, "cleanup_time_ms", q, 24, Kind::number);
    json ru = json::object();
    put(ru, "memory_peak_mb", q, 25, Kind::number);
    put(ru, "cpu_usage_percent", q, 26, Kind::number);
    put(ru, "disk_io_mb", q, 27, Kind::number);
    if (!ru.empty()) p["resource_usage"] = std::move(ru);
    json cp = json::object();
    put(cp, "template_cache_hit", q, 28, Kind::boolean);
    put(cp, "analysis_cache_hit", q, 29, Kind::boolean);
    put(cp, "cache_hit_rate", q, 30, Kind::number);
    if (!cp.empty()) p["cache_performance"] = std::move(cp);
    doc["performance_metrics"] = std::move(p);
  }
  if (!q.is_null(31)) {
    json o = json::object();
    put(o, "claude_response_time_ms", q, 32, Kind::number);
    put(o, "response_quality_score", q, 33, Kind::number);
    put(o, "user_satisfaction_rating", q, 34, Kind::number);
    json qm = json::object();
    put(qm, "completeness", q, 35, Kind::number);
    put(qm, "accuracy", q, 36, Kind::number);
    put(qm, "relevance", q, 37, Kind::number);
    put(qm, "structure", q, 38, Kind::number);
    if (!qm.empty()) o["quality_metrics"] = std::move(qm);
    json fb = json::object();
    put(fb, "explicit_feedback", q, 39, Kind::text);
    json imp = json::object();
    put(imp, "copy_action_count", q, 40, Kind::integer);
    put(imp, "edit_action_count", q, 41, Kind::integer);
    put(imp, "acceptance_rate", q, 42, Kind::number);
    if (!imp.empty()) fb["implicit_feedback"] = std::move(imp);
    if (!fb.empty()) o["feedback_data"] = std::move(fb);
    put(o, "reward", q, 43, Kind::number);
    doc["outcome_data"] = std::move(o);
  }
  return doc;
}

/// RFC 4180 field: quoted when it holds a comma, quote, CR or LF (quotes doubled).
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_value(const store::Statement& q, int c) {
  switch (q.column_type(c)) {
    case 1: return std::to_string(q.column_int64(c));
    case 2: return fmt::format("{}", q.column_double(c));
    case 3: return csv_field(q.column_text(c));
    default: return "";
  }
}

std::size_t export_csv(store::Database& db, std::ostream& out) {
  // Columns of kInteractionSql, in kCsvColumns order.
  const int cols[] = {0, 1, 2, 3, 9, 6, 7, 14, 15, 16, 17, 20, 25, 30, 32, 33, 34, 42, 43, 4};
  static_assert(sizeof(cols) / sizeof(cols[0]) == 20, "one source column per CSV column");
  for (std::size_t i = 0; i < kCsvColumns.size(); ++i) out << (i ? "," : "") << kCsvColumns[i];
  out << "\r\n";
  store::Statement q(db, kInteractionSql);
  std::size_t rows = 0;
  while (q.step()) {
    for (std::size_t i = 0; i < kCsvColumns.size(); ++i) out << (i ? "," : "") << csv_value(q, cols[i]);
    out << "\r\n";
    ++rows;
  }
  return rows;
}

std::size_t export_jsonl(store::Database& db, std::ostream& out) {
  store::Statement q(db, kInteractionSql);
  std::size_t rows = 0;
  for (; q.step(); ++rows) out << wire_document(q).dump() << '\n';
  return rows;
}

// DSJSON, the JSON lines of Vowpal Wabbit's decision service, as read by `vw --dsjson --cb_explore_adf`.
// Followed: the VW wiki page "DSJSON" and VW's parser, vowpalwabbit/json_parser/src/parse_example_json.cc
// (DecisionServiceState for the top-level keys, DefaultState/ArrayState/MultiState for "c"); the rules it
// imposes and how this writer meets them are in docs/scale-out.md ("What VW's parser requires"):
// - "_label_cost", "_label_probability", "_label_Action" (1-based) and "_labelIndex" (0-based into "_multi")
//   come before "c": VW attaches the label to the action example when "c" closes, so a label written after
//   "c" would be lost, and without "_labelIndex" it would land on the shared example (cb_adf then throws);
// - every number is read as a 32-bit float and a null is silently dropped (a null "_label_cost" leaves the
//   cost unset, a null in "p" shifts it against "a"): no null is written, a reward that is not a finite
//   float makes the line unlabelled, a context value outside float range is left out;
// - keys VW does not know ("Version", "o", "VWState") are skipped by a raw scan that needs the ':' right
//   after the key: the line is nlohmann's compact dump, no whitespace between tokens;
// - inside "c" a key starting with '_' is a directive or ignored: the only one written is "_multi", an
//   array of objects (one example per action; MultiState marks the enclosing example as shared);
// - a line without actions in "a" is skipped by VW: a decision without a readable action set is not written.
// "a": 1-based action ids, the chosen action first, then the rest in the logged ranking; "p": probabilities
// aligned with "a"; "o": the outcome {"v", "EventId", "ActionTaken"} (ignored by VW, kept for joins).
// VW costs are minimised: cost = -reward.
// A decision whose reward is not known yet is written without the label fields and without "o", as the
// decision service logs an event before its outcome is joined; VW reads it as an unlabelled example.

/// True when VW keeps `v` as is: it reads every JSON number as a float, so a value beyond FLT_MAX would
/// become an infinity (and nlohmann writes NaN and infinities as null, which VW drops).
bool fits_vw_float(double v) { return std::isfinite(v) && std::abs(v) <= std::numeric_limits<float>::max(); }

/// The member `key` of an action-set entry as a string ("" when absent or not a string).
std::string text_member(const json& e, const char* key) {
  const auto it = e.find(key);
  return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// The logged probability of an action-set entry (0 when absent or not a finite float).
double probability_member(const json& e) {
  const auto it = e.find("probability");
  return it != e.end() && it->is_number() && fits_vw_float(it->get<double>()) ? it->get<double>() : 0.0;
}

std::size_t export_dsjson(store::Database& db, std::ostream& out) {
  store::Statement q(db, R"SQL(
SELECT d.interaction_id, d.timestamp, d.policy_name, d.policy_version, d.action_set, d.chosen_template,
       d.chosen_version, d.propensity, d.context, coalesce(d.reward, o.reward), i.domain
FROM decisions d
LEFT JOIN outcomes o ON o.interaction_id = d.interaction_id
LEFT JOIN interactions i ON i.interaction_id = d.interaction_id
ORDER BY d.decision_id
)SQL");
  std::size_t rows = 0;
  while (q.step()) {
    const std::string event_id = q.column_text(0);
    const json actions = json::parse(q.column_view(4), nullptr, false);
    if (!actions.is_array() || actions.empty()) continue;  // VW skips an event with no actions
    const std::string chosen_t = q.column_text(5), chosen_v = q.column_text(6);
    ojson multi = ojson::array();
    int chosen = -1;
    bool readable = true;
    for (std::size_t k = 0; k < actions.size() && readable; ++k) {
      readable = actions[k].is_object();
      const std::string t = readable ? text_member(actions[k], "template_id") : "";
      const std::string v = readable ? text_member(actions[k], "version") : "";
      multi.push_back({{"template", {{"id", t}, {"version", v}}}});
      if (t == chosen_t && v == chosen_v) chosen = static_cast<int>(k);
    }
    if (!readable || chosen < 0) continue;  // not an action set holding the chosen action (cannot happen)
    const double propensity = q.column_double(7);  // CHECK (propensity > 0 AND propensity <= 1)
    ojson a = ojson::array({chosen + 1}), p = ojson::array({propensity});
    for (std::size_t k = 0; k < actions.size(); ++k) {
      if (static_cast<int>(k) == chosen) continue;
      a.push_back(k + 1);
      p.push_back(probability_member(actions[k]));
    }
    ojson shared = ojson::object();
    const json x = q.is_null(8) ? json() : json::parse(q.column_view(8), nullptr, false);
    if (x.is_array()) {
      ojson ctx = ojson::object();
      for (std::size_t k = 0; k < x.size(); ++k)
        if (x[k].is_number() && fits_vw_float(x[k].get<double>())) ctx["x" + std::to_string(k)] = x[k];
      shared["ctx"] = std::move(ctx);
    }
    if (!q.is_null(10)) shared["meta"] = {{"domain", q.column_text(10)}};
    shared["_multi"] = std::move(multi);
    ojson line = ojson::object();  // insertion order: the label before "c" (see above)
    if (!q.is_null(9) && fits_vw_float(q.column_double(9))) {
      const double reward = q.column_double(9);
      line["_label_cost"] = reward == 0 ? 0.0 : -reward;  // not -0.0
      line["_label_probability"] = propensity;
      line["_label_Action"] = chosen + 1;
      line["_labelIndex"] = chosen;
      line["o"] = ojson::array({{{"v", reward}, {"EventId", event_id}, {"ActionTaken", false}}});
    }
    line["Timestamp"] = q.column_text(1);
    line["Version"] = "1";
    line["EventId"] = event_id;
    line["a"] = std::move(a);
    line["c"] = std::move(shared);
    line["p"] = std::move(p);
    line["VWState"] = {{"m", fmt::format("{}/{}", q.column_text(2), q.column_int64(3))}};
    out << line.dump() << '\n';  // compact: no whitespace between tokens (see above)
    ++rows;
  }
  return rows;
}

void export_help(std::ostream& out) {
  out << "usage: promptlearn export --db FILE --format dsjson|jsonl|csv [-o OUT [--human]]\n"
         "Writes the file's data for other tools (stdout without -o), streaming; the database is opened\n"
         "read-only. Identifiers and text are written as stored (keyed hashes, enc1: ciphertext), so\n"
         "--key-file is refused. With -o OUT, --human prints one line: the rows written, the format, the file.\n"
         "  dsjson  one line per logged decision in Vowpal Wabbit's decision-service JSON for\n"
         "          `vw --dsjson --cb_explore_adf`: _label_cost = -reward, _label_probability, _label_Action\n"
         "          (1-based), _labelIndex (all before c, where VW expects them), o, Timestamp, Version,\n"
         "          EventId = interaction_id, a (chosen first), c {ctx {x0, x1, ...}, meta {domain},\n"
         "          _multi [{template {id, version}}]}, p, VWState; compact, no nulls; decisions without a\n"
         "          (finite) reward yet have no label fields and no o (VW predicts on them, does not learn)\n"
         "  jsonl   one wire document per interaction with its performance_metrics and outcome_data\n"
         "          (re-ingestible with `promptlearn ingest`)\n"
         "  csv     RFC 4180, a header row, one row per interaction, columns:\n          ";
  for (std::size_t i = 0; i < kCsvColumns.size(); ++i) out << (i ? "," : "") << kCsvColumns[i];
  out << "\nSee docs/scale-out.md.\n";
}

}  // namespace

int run_export(const Args& args) {
  if (args.has("help")) {
    export_help(std::cout);
    return 0;
  }
  const std::string path = require_db(args);
  const auto format = args.get("format");
  if (!format) throw std::invalid_argument("--format dsjson|jsonl|csv is required");
  if (*format != "dsjson" && *format != "jsonl" && *format != "csv")
    throw std::invalid_argument(fmt::format("option '--format': unknown format '{}' (expected dsjson, jsonl or csv)", *format));
  if (args.has("key-file"))
    throw std::invalid_argument("option '--key-file': export writes identifiers and text as stored; it takes no key");
  if (args.has("human") && !args.has("o"))
    throw std::invalid_argument("option '--human': the export itself goes to stdout; give -o OUT for a readable summary");
  store::Database db = store::open_read_only(path);
  std::ofstream file;
  std::ostream* out = &std::cout;
  const std::string tmp = args.has("o") ? *args.get("o") + ".tmp" : "";
  if (!tmp.empty()) {
    file.open(tmp, std::ios::binary | std::ios::trunc);
    if (!file) throw Error(fmt::format("export: cannot write '{}'", tmp));
    out = &file;
  }
  db.exec("BEGIN");  // one consistent snapshot while other processes write
  std::size_t rows = 0;
  if (*format == "dsjson") rows = export_dsjson(db, *out);
  else if (*format == "jsonl") rows = export_jsonl(db, *out);
  else rows = export_csv(db, *out);
  db.exec("COMMIT");
  out->flush();
  if (!*out) throw Error("export: writing the output failed");
  if (!tmp.empty()) {
    file.close();
    if (std::rename(tmp.c_str(), args.get("o")->c_str()) != 0)
      throw Error(fmt::format("export: cannot rename '{}' to '{}'", tmp, *args.get("o")));
  }
  if (args.has("human"))
    std::cout << fmt::format("wrote {} {} as {} to {}\n", rows, *format == "dsjson" ? "decisions" : "interactions",
                             *format, *args.get("o"));
  return 0;
}

int run_merge(int argc, char** argv) {
  std::vector<std::string> inputs;
  std::string output;
  bool force = false, human = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << "usage: promptlearn merge A.db B.db ... -o OUT.db [--force] [--human]\n"
                   "Merges shard files of a fleet into a new file: events unioned by interaction_id (the first\n"
                   "shard given wins a duplicate), per-user statistics summed, the template_selection active and\n"
                   "candidate checkpoints merged (linear policies: A = A1 + A2 - prior, b = b1 + b2), metric\n"
                   "rollups and corpus statistics merged. An interaction found in several shards counts once:\n"
                   "the other copies' learned decisions are taken out of the merged checkpoints and user sums\n"
                   "(exact downdates), their hours re-rolled from the raw rows, and reports pending in one shard\n"
                   "for another shard's interaction applied. The shards must share the privacy key (their .key\n"
                   "files must be equal). OUT.db must not exist unless --force. Prints a JSON report (--human:\n"
                   "readable lines: the shards merged, then the rows and checkpoints written).\n"
                   "See docs/scale-out.md.\n";
      return 0;
    }
    if (a == "-o" || a == "--o") {
      if (i + 1 >= argc) throw std::invalid_argument("option '-o' needs a value");
      output = argv[++i];
    } else if (a == "--force") {
      force = true;
    } else if (a == "--human") {
      human = true;
    } else if (a.rfind("-", 0) == 0) {
      throw std::invalid_argument(fmt::format("unknown option '{}'", a));
    } else {
      inputs.push_back(a);
    }
  }
  if (output.empty()) throw std::invalid_argument("-o OUT.db is required");
  if (inputs.empty()) throw std::invalid_argument("no input files (promptlearn merge A.db B.db ... -o OUT.db)");
  MergeOptions mo;
  mo.overwrite = force;
  const json j = to_json(merge_shards(inputs, output, mo));
  if (!human) {
    std::cout << j.dump() << std::endl;
    return 0;
  }
  std::cout << fmt::format("merged {} shard{} ({}) into {}\n", inputs.size(), inputs.size() == 1 ? "" : "s",
                           fmt::join(inputs, ", "), output);
  json rest = j;
  rest.erase("inputs");
  rest.erase("output");
  std::cout << render_human(rest);
  return 0;
}

}  // namespace promptlearn::cli
