// Scale-out: `promptlearn export` (DSJSON, JSON lines, CSV) and merging shard files (lifecycle/merge.hpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <nlohmann/json.hpp>

#include <Eigen/Cholesky>
#include <Eigen/LU>
#include <Eigen/Core>

#include "../src/cli/simulator.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/lifecycle/merge.hpp"
#include "promptlearn/lifecycle/policy_manager.hpp"
#include "promptlearn/monitor/metrics.hpp"
#include "promptlearn/select/factory.hpp"
#include "promptlearn/select/linear_bandit.hpp"
#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using namespace promptlearn;
using nlohmann::json;

namespace {

constexpr TimeMs kDay = 86400000;
const TimeMs kStart = *try_parse_rfc3339("2026-01-05T00:00:00Z");
constexpr const char* kKeyHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
constexpr int kShards = 3;

std::string bin() { return std::string(PROMPTLEARN_BIN_DIR) + "/promptlearn"; }

/// The fleet: kShards engines (users split by index) and one engine that sees every event.
struct Fleet {
  test::TempDir dir;
  std::vector<std::string> shard_paths;
  std::string all_path;
};

std::int64_t query(const std::string& db, const std::string& sql) {
  store::OpenOptions oo;
  oo.create = false;
  oo.read_only = true;
  store::Database d(db, oo);
  return d.query_int(sql);
}

/// Copies the decisions of `from` with decision_id > `after` into `to` as unlearned rows; returns the
/// largest id copied. The single file thereby logs exactly the decisions the shards made.
std::int64_t copy_new_decisions(const std::string& from, const std::string& to, std::int64_t after) {
  store::Database src(from);
  store::Store dst(to);
  store::Statement q(src, "SELECT decision_id, interaction_id, timestamp, policy_name, policy_version, action_set, "
                          "chosen_template, chosen_version, propensity, context FROM decisions WHERE decision_id > ?1 "
                          "ORDER BY decision_id");
  q.bind(1, after);
  store::Transaction tx(dst.db());
  while (q.step()) {
    store::DecisionRow d;
    after = q.column_int64(0);
    d.interaction_id = q.column_text(1);
    d.timestamp = *try_parse_rfc3339(q.column_text(2));
    d.policy_name = q.column_text(3);
    d.policy_version = q.column_int64(4);
    d.action_set = q.column_text(5);
    d.chosen_template = q.column_text(6);
    d.chosen_version = q.column_text(7);
    d.propensity = q.column_double(8);
    d.context = q.column_text(9);
    dst.insert_decision(d);
  }
  tx.commit();
  return after;
}

/// Runs `days` simulated days: each prompt goes to its user's shard (record, select, performance, outcome),
/// and the same documents to the single file; at each day's end the shards' new decisions are copied to
/// the single file and every engine runs its due jobs (learning, rollups, gate).
void build_fleet(Fleet& f, int days, int per_day) {
  ManualClock clock(kStart);
  EngineOptions eo;
  eo.clock = &clock;
  eo.privacy_key = kKeyHex;
  std::vector<std::unique_ptr<LearningEngine>> shards;
  for (int s = 0; s < kShards; ++s) {
    f.shard_paths.push_back(f.dir.file("shard" + std::to_string(s) + ".db"));
    shards.push_back(std::make_unique<LearningEngine>(f.shard_paths.back(), test::fast_config(), eo));
  }
  f.all_path = f.dir.file("all.db");
  LearningEngine all(f.all_path, test::fast_config(), eo);
  for (const char* t : sim::template_ids()) {
    for (auto& e : shards) e->register_template(t, "1", std::string("body of ") + t);
    all.register_template(t, "1", std::string("body of ") + t);
  }
  sim::HostSimulator host(7);
  std::vector<std::int64_t> copied(kShards, 0);
  for (int day = 0; day < days; ++day) {
    const TimeMs day_start = kStart + day * kDay;
    for (int i = 0; i < per_day; ++i) {
      clock.set(day_start + 8 * 3600000 + i * 97000);
      sim::SimPrompt p = host.prompt(clock.now_ms());
      LearningEngine& shard = *shards[p.user % kShards];
      REQUIRE(shard.record(p.interaction).accepted);
      REQUIRE(all.record(p.interaction).accepted);
      Decision d = shard.select_template(p.interaction);
      const int t = sim::template_index(d.chosen.template_id);
      json perf{{"interaction_id", p.interaction_id},
                {"performance_metrics",
                 {{"total_processing_time_ms", 40.0 + (i * 37) % 200},
                  {"template_selection_time_ms", 1.0 + (i % 7)},
                  {"resource_usage", {{"memory_peak_mb", 50.0 + i % 13}}},
                  {"cache_performance", {{"cache_hit_rate", (i % 10) / 10.0}}}}}};
      json outcome = host.outcome(p, t);
      for (const json* doc : {&perf, &outcome}) {
        REQUIRE(shard.record(*doc).accepted);
        REQUIRE(all.record(*doc).accepted);
      }
      if (i % 25 == 3) {  // an invalid report now and then: a failed request in the rollups
        json bad{{"interaction_id", p.interaction_id}, {"outcome_data", {{"response_quality_score", 11.5}}}};
        REQUIRE_FALSE(shard.record(bad).accepted);
        REQUIRE_FALSE(all.record(bad).accepted);
      }
    }
    for (int s = 0; s < kShards; ++s) copied[s] = copy_new_decisions(f.shard_paths[s], f.all_path, copied[s]);
    clock.set(day_start + kDay - 1);
    for (auto& e : shards) e->run_due_jobs(clock.now_ms());
    all.run_due_jobs(clock.now_ms());
  }
  clock.set(kStart + days * kDay + 2 * 3600000);  // roll up the last hours too
  for (auto& e : shards) {
    e->run_rollups(clock.now_ms());
    e->close();
  }
  all.run_rollups(clock.now_ms());
  all.close();
}

std::unique_ptr<select::Policy> checkpoint(const std::string& db, const std::string& status) {
  store::OpenOptions oo;
  oo.create = false;
  oo.read_only = true;
  store::Database d(db, oo);
  store::Statement q(d, "SELECT state FROM models WHERE name = 'template_selection' AND status = ?1 "
                        "ORDER BY version DESC LIMIT 1");
  q.bind(1, status);
  if (!q.step()) return nullptr;
  return select::make_policy_from_checkpoint(q.column_blob(0));
}

/// An arm's learned statistics in the raw symlog coordinates [s; 1], which do not depend on the feature
/// map in use: z = M [s; 1] with M = [diag(inv_scale), -inv_scale * shift; 0, 1], so the data part of A is
/// M S M^T and b = M sum r [s; 1]. Returns {S, sum r [s; 1], count}.
struct RawArm {
  Eigen::MatrixXd s;
  Eigen::VectorXd b;
  double count = 0;
};
std::map<std::string, RawArm> raw_statistics(const select::Policy& p) {
  const auto& lp = dynamic_cast<const select::LinearPolicy&>(p);
  const auto& m = lp.models();
  const Eigen::Index d = m.dimension();
  Eigen::MatrixXd map = Eigen::MatrixXd::Identity(d + 1, d + 1);
  if (m.scaling() == select::FeatureScaling::kSymlogStandardize) {
    for (Eigen::Index i = 0; i < d; ++i) {
      map(i, i) = m.inv_scale()(i);
      map(i, d) = -m.inv_scale()(i) * m.shift()(i);
    }
  }
  const Eigen::MatrixXd inv = map.inverse();
  std::map<std::string, RawArm> out;
  for (const auto& arm : m.arms()) {
    const Eigen::MatrixXd data = arm.gram() - m.lambda() * Eigen::MatrixXd::Identity(d + 1, d + 1);
    out[arm.key] = {inv * data * inv.transpose(), inv * arm.b, arm.count};
  }
  return out;
}

double max_abs_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) { return (a - b).cwiseAbs().maxCoeff(); }

using ojson = nlohmann::ordered_json;

/// VW reads every JSON number as a 32-bit float (VWReaderHandler: Int, Uint, Int64, Double -> Float(float)).
bool vw_float(const ojson& v) {
  return v.is_number() && std::isfinite(v.get<double>()) &&
         std::abs(v.get<double>()) <= static_cast<double>(std::numeric_limits<float>::max());
}

/// A JSON integer >= 0 (rapidjson reports it with Uint/Uint64; a negative one or 1.0 is not one).
bool vw_unsigned(const ojson& v) { return v.is_number_unsigned(); }

/// What VW would refuse or misread in `v`, the value of `key` at `depth` inside "c" (depth 1: c's members).
std::string dsjson_c_problem(const std::string& key, const ojson& v, int depth) {
  // VW (DefaultState::Key): in c a key starting with '_' is a directive (_label*, _text, _tag, _inc, _a, _p,
  // _slots, _slot_id, __aid, _original_label_cost; _multi in _multi is unsupported) or silently ignored.
  if (!key.empty() && key[0] == '_' && !(key == "_multi" && depth == 1))
    return "c holds a key starting with '_' that VW treats specially or drops: " + key;
  // VW (BaseState::Null): a null value is skipped without a word: the feature is lost.
  if (v.is_null()) return "c holds a null (VW drops it): " + key;
  // VW (DefaultState::Float): a number is a feature of that value, read as a float (beyond FLT_MAX: inf).
  if (v.is_number()) return vw_float(v) ? "" : "c holds a number outside float range: " + key;
  // VW (DefaultState::String, ::Bool): a string is the feature key+value, true the feature key, false none.
  if (v.is_string() || v.is_boolean()) return "";
  if (v.is_object()) {  // VW (DefaultState::StartObject): a namespace named by the key
    for (auto it = v.begin(); it != v.end(); ++it)
      if (auto p = dsjson_c_problem(it.key(), it.value(), depth + 1); !p.empty()) return p;
    return "";
  }
  if (key == "_multi") {
    // VW (MultiState): _multi is an array of objects, one action example each, after the shared example.
    if (v.empty()) return "c._multi holds no action";
    for (const auto& action : v) {
      if (!action.is_object()) return "c._multi holds something other than an object";
      for (auto it = action.begin(); it != action.end(); ++it)
        if (auto p = dsjson_c_problem(it.key(), it.value(), depth + 1); !p.empty()) return p;
    }
    return "";
  }
  // VW (ArrayState): an array holds numbers (anonymous features) or objects; a string, a bool or a nested
  // array is an error ("Unexpected token", "Nested arrays are not supported"), a null is dropped.
  for (const auto& e : v) {
    if (e.is_object()) {
      if (auto p = dsjson_c_problem(key, e, depth); !p.empty()) return p;
    } else if (!e.is_number()) {
      return "c holds an array with something other than numbers or objects: " + key;
    } else if (!vw_float(e)) {
      return "c holds a number outside float range: " + key;
    }
  }
  return "";
}

/// The first problem of one DSJSON line (VW decision-service JSON for cb_explore_adf), "" when none. The
/// VW rules come from vowpalwabbit/json_parser/src/parse_example_json.cc and cb_adf (see docs/scale-out.md);
/// the rest are this exporter's own invariants.
std::string dsjson_problem(const std::string& line) {
  // VW (parse_line_json): with --dsjson a line that does not start with '{' is skipped.
  if (line.empty() || line[0] != '{') return "the line does not start with '{'";
  // VW (DefaultState::Ignore): a key it skips (Version, o, VWState) is skipped by a raw scan that expects
  // ':' right after the key's closing quote and the key's raw length to be its decoded length: compact
  // JSON, no whitespace between tokens, no escape sequence in a key.
  bool in_string = false, escaped = false, escape_in_string = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char ch = line[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = escape_in_string = true;
      else if (ch == '"') {
        in_string = false;
        if (escape_in_string && i + 1 < line.size() && line[i + 1] == ':') return "a key holds an escape sequence";
      }
    } else if (ch == '"') {
      in_string = true;
      escape_in_string = false;
    } else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
      return "whitespace between tokens (VW's skip of unknown keys needs ':' right after the key)";
    }
  }
  const ojson l = ojson::parse(line, nullptr, false);
  if (l.is_discarded() || !l.is_object()) return "not a JSON object";
  std::size_t pos = 0, c_pos = 0, last_label_pos = 0;
  bool any_label = false;
  for (auto it = l.begin(); it != l.end(); ++it, ++pos) {
    const std::string& k = it.key();
    if (k == "c") c_pos = pos;
    if (k.empty() || k[0] != '_') continue;
    // VW (DecisionServiceState::Key): top-level '_' keys are _label*, _skipLearn (drops the event), _outcomes
    // (CCB), _p (replaces p), _ba, _original_label_cost: the only ones a CB line of ours may hold are these.
    if (k != "_label_cost" && k != "_label_probability" && k != "_label_Action" && k != "_labelIndex")
      return "a top-level key VW treats specially: " + k;
    any_label = true;
    last_label_pos = pos;
  }
  for (const char* k : {"Version", "EventId", "Timestamp", "a", "p", "c", "VWState"})
    if (!l.contains(k)) return std::string("missing ") + k;
  // VW (StringToStringState): EventId and Timestamp are read as strings only (a number is an error).
  if (!l["EventId"].is_string() || !l["Timestamp"].is_string()) return "EventId or Timestamp is not a string";
  // VW (DecisionServiceState "pdrop"): a float; pdrop == 1 is an error.
  if (l.contains("pdrop") && !(vw_float(l["pdrop"]) && l["pdrop"].get<double>() >= 0 && l["pdrop"].get<double>() < 1))
    return "pdrop is not in [0, 1)";
  const ojson &a = l["a"], &p = l["p"], &c = l["c"];
  // VW (parse_line_json): an event without actions in "a" is skipped (number_of_events_zero_actions);
  // VW (ArrayToVectorState<unsigned>): "a" is read as unsigned integers.
  if (!a.is_array() || a.empty()) return "a is not a non-empty array (VW skips the event)";
  for (const auto& id : a)
    if (!vw_unsigned(id)) return "a holds something other than an unsigned integer";
  // VW (ArrayToVectorState<float>): "p" holds numbers (or "NaN"); a null is dropped, shifting p against a.
  if (!p.is_array()) return "p is not an array";
  for (const auto& pk : p)
    if (!vw_float(pk)) return "p holds something other than a float";
  // VW (DecisionServiceState "c" -> DefaultState): c is the shared example's object of features.
  if (!c.is_object()) return "c is not an object";
  if (!c.contains("_multi")) return "c has no _multi (cb_explore_adf needs one example per action)";
  for (auto it = c.begin(); it != c.end(); ++it)
    if (auto problem = dsjson_c_problem(it.key(), it.value(), 1); !problem.empty()) return problem;
  const ojson& multi = c["_multi"];
  const std::size_t K = multi.size();
  // VW (DefaultState::EndObject of c): the label is attached when c closes; a _label_* key after c is lost.
  if (any_label && last_label_pos > c_pos) return "a _label_* key comes after c (VW would not apply it)";
  const bool labelled = l.contains("_label_cost");
  // VW: without _labelIndex the label lands on the shared example (cb_adf: "only one cost can be known");
  // without _label_cost or _label_probability the label's cost (FLT_MAX) or probability (-1) stays unset.
  for (const char* k : {"_label_probability", "_label_Action", "_labelIndex"})
    if (l.contains(k) != labelled) return std::string("label fields incomplete: ") + k;
  if (labelled) {
    // VW (LabelObjectState::Float): label values are numbers read as floats (a null is skipped silently).
    for (const char* k : {"_label_cost", "_label_probability", "_label_Action"})
      if (!vw_float(l[k])) return std::string("a label value is not a float: ") + k;
    // VW (LabelIndexState): only an unsigned integer, smaller than the number of actions ("Out of bounds").
    if (!vw_unsigned(l["_labelIndex"]) || l["_labelIndex"].get<std::size_t>() >= K)
      return "_labelIndex is not an unsigned integer below the number of actions";
    // VW (cb_adf, IPS): the cost is divided by the label's probability.
    const double lp = l["_label_probability"].get<double>();
    if (!(lp > 0) || lp > 1) return "_label_probability outside (0, 1]";
    // VW (LabelObjectState "Action"): cast to uint32; ours is 1-based.
    if (!vw_unsigned(l["_label_Action"]) || l["_label_Action"].get<std::size_t>() < 1)
      return "_label_Action is not a positive integer";
  }
  // Ours (the decision-service conventions this exporter follows):
  if (l["Version"] != "1") return "Version is not \"1\"";
  if (!try_parse_rfc3339(l["Timestamp"].get<std::string>())) return "Timestamp is not RFC 3339";
  if (!l["VWState"].is_object() || !l["VWState"].contains("m") || !l["VWState"]["m"].is_string())
    return "VWState.m is not a string";
  if (a.size() != K || p.size() != K) return "a, p and c._multi differ in length";
  std::set<std::size_t> ids;
  double sum = 0;
  for (std::size_t k = 0; k < K; ++k) {
    const std::size_t id = a[k].get<std::size_t>();
    if (id < 1 || id > K) return "a holds an id outside 1..K";
    ids.insert(id);
    const double pk = p[k].get<double>();
    if (pk < 0 || pk > 1 || (k == 0 && !(pk > 0))) return "p outside [0, 1] or p[0] (the propensity) not > 0";
    sum += pk;
  }
  if (ids.size() != K) return "a is not a permutation of 1..K";
  if (std::abs(sum - 1) > 1e-9) return "p does not sum to 1";
  for (const auto& ex : multi)
    if (!ex.contains("template") || !ex["template"].is_object() || !ex["template"].contains("id") ||
        !ex["template"]["id"].is_string())
      return "an action without template.id";
  if (l.contains("o") != labelled) return "label fields incomplete: o";
  if (!labelled) return "";
  const std::size_t action = l["_label_Action"].get<std::size_t>();
  if (action != l["_labelIndex"].get<std::size_t>() + 1) return "_label_Action != _labelIndex + 1";
  if (a[0].get<std::size_t>() != action) return "a[0] is not the chosen action";
  if (p[0].get<double>() != l["_label_probability"].get<double>()) return "p[0] != _label_probability";
  const ojson& o = l["o"];
  if (!o.is_array() || o.size() != 1 || !o[0].is_object() || !o[0].contains("EventId") ||
      o[0]["EventId"] != l["EventId"] || !o[0].contains("v") || !o[0]["v"].is_number())
    return "o does not name the event and its reward";
  if (l["_label_cost"].get<double>() != -o[0]["v"].get<double>()) return "_label_cost != -reward";
  return "";
}

/// RFC 4180 parser: records of fields (quoted fields may hold commas, quotes and line breaks).
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
      else if (c == '"') quoted = false;
      else field += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(field), field.clear();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      row.push_back(field), field.clear();
      rows.push_back(row), row.clear();
      ++i;
    } else {
      field += c;
    }
  }
  if (!field.empty() || !row.empty()) row.push_back(field), rows.push_back(row);
  return rows;
}

Fleet& fleet() {
  static Fleet f;  // built once for the test cases below (a few seconds)
  static bool built = false;
  if (!built) {
    build_fleet(f, 6, 60);
    built = true;
  }
  return f;
}

}  // namespace

TEST_CASE("merging shards equals one file built from all the events", "[merge]") {
  Fleet& f = fleet();
  const std::string merged = f.dir.file("merged.db");
  MergeReport r = merge_shards(f.shard_paths, merged);
  CHECK(r.duplicate_interactions == 0);
  CHECK(r.active_version + r.candidate_version > 0);
  CHECK(query(merged, "PRAGMA integrity_check") == 0);  // "ok" is not an integer: 0
  for (const char* t : {"interactions", "performance", "outcomes", "decisions", "templates", "user_stats",
                        "rejected_events"}) {
    INFO(t);
    CHECK(query(merged, std::string("SELECT count(*) FROM ") + t) ==
          query(f.all_path, std::string("SELECT count(*) FROM ") + t));
  }
  CHECK(query(merged, "SELECT count(*) FROM decisions WHERE reward IS NOT NULL") ==
        query(f.all_path, "SELECT count(*) FROM decisions WHERE reward IS NOT NULL"));
  CHECK(query(merged, "SELECT count(*) FROM audit_log WHERE action = 'merge'") == 1);

  // Per-user counts (same keyed hashes: the shards share the privacy key).
  {
    store::Database m(merged), a(f.all_path);
    store::Statement qa(a, "SELECT user_id, interactions, reward_count, reward_sum FROM user_stats ORDER BY user_id");
    store::Statement qm(m, "SELECT user_id, interactions, reward_count, reward_sum FROM user_stats ORDER BY user_id");
    int users = 0;
    while (qa.step()) {
      REQUIRE(qm.step());
      CHECK(qm.column_text(0) == qa.column_text(0));
      CHECK(qm.column_text(0).rfind("h1:", 0) == 0);
      CHECK(qm.column_int64(1) == qa.column_int64(1));
      CHECK(qm.column_int64(2) == qa.column_int64(2));
      CHECK(qm.column_double(3) == Approx(qa.column_double(3)).epsilon(1e-12));
      ++users;
    }
    CHECK_FALSE(qm.step());
    CHECK(users == 12);
  }

  // Rollups: the same buckets with the same request counts and sketch quantiles.
  {
    store::Database m(merged), a(f.all_path);
    store::Statement qa(a, "SELECT granularity, bucket_start, requests, window FROM metric_rollups ORDER BY 1, 2");
    store::Statement qm(m, "SELECT granularity, bucket_start, requests, window FROM metric_rollups ORDER BY 1, 2");
    int buckets = 0;
    while (qa.step()) {
      REQUIRE(qm.step());
      CHECK(qm.column_text(0) == qa.column_text(0));
      CHECK(qm.column_text(1) == qa.column_text(1));
      CHECK(qm.column_int64(2) == qa.column_int64(2));
      auto wm = monitor::MetricsWindow::from_bytes(qm.column_blob(3));
      auto wa = monitor::MetricsWindow::from_bytes(qa.column_blob(3));
      json jm = wm.summary().to_json(), ja = wa.summary().to_json();
      CHECK(jm["latency_ms"] == ja["latency_ms"]);
      CHECK(jm["requests"] == ja["requests"]);
      ++buckets;
    }
    CHECK_FALSE(qm.step());
    CHECK(buckets > 6);
  }

  // The merged candidate is exactly the shard candidates merged with Policy::merge ...
  auto merged_cand = checkpoint(merged, "candidate");
  REQUIRE(merged_cand);
  std::unique_ptr<select::Policy> direct;
  for (const auto& s : f.shard_paths) {
    auto c = checkpoint(s, "candidate");
    REQUIRE(c);
    if (!direct) direct = std::move(c);
    else direct->merge(*c);
  }
  const auto& mm = dynamic_cast<const select::LinearPolicy&>(*merged_cand).models();
  const auto& dm = dynamic_cast<const select::LinearPolicy&>(*direct).models();
  REQUIRE(mm.arms().size() == dm.arms().size());
  for (std::size_t k = 0; k < mm.arms().size(); ++k) {
    CHECK(mm.arms()[k].key == dm.arms()[k].key);
    CHECK(max_abs_diff(mm.arms()[k].a_inv, dm.arms()[k].a_inv) < 1e-12);
    CHECK(max_abs_diff(mm.arms()[k].theta, dm.arms()[k].theta) < 1e-12);
  }
  // ... and, since the single file learned the same decisions, equals its candidate in everything that does
  // not depend on when the feature map was re-estimated: the update count, the pooled moments, and each
  // arm's count and data statistics expressed in the raw symlog coordinates. (A^-1 and theta themselves
  // differ: the ridge prior lambda I sits in the coordinates of the map in use, which the merge re-estimates
  // from the pooled moments while the single file re-estimated it at its own update-count doublings.)
  auto all_cand = checkpoint(f.all_path, "candidate");
  REQUIRE(all_cand);
  const auto& am = dynamic_cast<const select::LinearPolicy&>(*all_cand).models();
  CHECK(mm.seen() == am.seen());
  CHECK(mm.seen() > 100);
  auto raw_m = raw_statistics(*merged_cand), raw_a = raw_statistics(*all_cand);
  REQUIRE(raw_m.size() == raw_a.size());
  for (const auto& [key, arm] : raw_a) {
    INFO(key);
    REQUIRE(raw_m.count(key));
    CHECK(raw_m[key].count == arm.count);
    const double scale = 1.0 + arm.s.cwiseAbs().maxCoeff();
    CHECK(max_abs_diff(raw_m[key].s, arm.s) < 1e-6 * scale);
    CHECK(max_abs_diff(raw_m[key].b, arm.b) < 1e-6 * scale);
  }
  // The reward model (DR's regression term) is summed.
  {
    store::Database m(merged), a(f.all_path);
    auto metrics = [](store::Database& d) {
      store::Statement q(d, "SELECT metrics FROM models WHERE name = 'template_selection' AND status = 'candidate'");
      REQUIRE(q.step());
      return json::parse(q.column_text(0));
    };
    json jm = metrics(m), ja = metrics(a);
    CHECK(jm["reward_model"].size() == ja["reward_model"].size());
    for (auto it = ja["reward_model"].begin(); it != ja["reward_model"].end(); ++it) {
      CHECK(jm["reward_model"][it.key()][0] == it.value()[0]);
      CHECK(jm["reward_model"][it.key()][1].get<double>() == Approx(it.value()[1].get<double>()));
    }
  }
  // Decisions learned into a shard checkpoint point at the merged checkpoint that holds them.
  CHECK(query(merged, fmt::format("SELECT count(*) FROM decisions WHERE learned_into IS NOT NULL AND learned_into "
                                  "NOT IN ({}, {})",
                                  r.active_version, r.candidate_version)) == 0);
  CHECK(query(merged, "SELECT count(*) FROM decisions WHERE learned_into IS NOT NULL") ==
        query(f.all_path, "SELECT count(*) FROM decisions WHERE learned_into IS NOT NULL"));

  // The predictive models are not merged: listed, and due for retraining.
  CHECK_FALSE(r.dropped_models.empty());
  CHECK(query(merged, "SELECT count(*) FROM models WHERE name <> 'template_selection'") == 0);
  CHECK(query(merged, "SELECT count(*) FROM settings WHERE key = 'jobs.model_retraining.last_run'") == 0);
  // The merged file works as an engine's file: it learns and selects.
  {
    EngineOptions eo;
    eo.privacy_key = kKeyHex;
    LearningEngine e(merged, test::fast_config(), eo);
    json doc = test::interaction_doc(test::uuid_for(99, 5), "Refactor the HTTP client");
    Decision d = e.select_template(doc);
    CHECK(d.propensity > 0);
  }
  // The output is refused when it exists.
  CHECK_THROWS_WITH(merge_shards(f.shard_paths, merged), Catch::Contains("already exists"));
  auto rerun = test::sh(bin() + " merge " + f.shard_paths[0] + " " + f.shard_paths[1] + " -o " + merged, true);
  CHECK(rerun.status == 1);
  CHECK_THAT(rerun.out, Catch::Contains("already exists"));
  auto forced = test::sh(bin() + " merge " + f.shard_paths[0] + " " + f.shard_paths[1] + " -o " + merged + " --force");
  CHECK(forced.status == 0);
  CHECK(json::parse(forced.out)["interactions"].get<std::int64_t>() < r.interactions);
}

TEST_CASE("duplicate interactions across shards are kept once; different keys are refused", "[merge]") {
  test::TempDir dir;
  ManualClock clock(kStart);
  EngineOptions eo;
  eo.clock = &clock;
  eo.privacy_key = kKeyHex;
  const std::string a = dir.file("a.db"), b = dir.file("b.db");
  {
    LearningEngine ea(a, test::fast_config(), eo), eb(b, test::fast_config(), eo);
    json shared = test::interaction_doc(test::uuid_for(1, 9), "Explain the cache");
    shared["user_id"] = "alice";
    REQUIRE(ea.record(shared).accepted);
    REQUIRE(eb.record(shared).accepted);
    REQUIRE(ea.record(test::interaction_doc(test::uuid_for(2, 9), "Write a test")).accepted);
    REQUIRE(eb.record(test::interaction_doc(test::uuid_for(3, 9), "Fix the bug")).accepted);
    for (auto* e : {&ea, &eb}) e->register_template("plain", "1", "body");
    ea.select_template(shared);
    eb.select_template(shared);
    ea.close();
    eb.close();
  }
  MergeReport r = merge_shards({a, b}, dir.file("m.db"));
  CHECK(r.interactions == 3);
  CHECK(r.duplicate_interactions == 1);
  CHECK(r.decisions == 1);  // the interaction decided in both: the first shard's decision
  CHECK(r.templates == 1);
  CHECK(query(dir.file("m.db"), "SELECT count(*) FROM interactions WHERE interaction_id = '" + test::uuid_for(1, 9) +
                                    "'") == 1);

  // Key files that differ: refused, nothing written.
  {
    std::ofstream(a + ".key") << std::string(64, 'a') << "\n";
    std::ofstream(b + ".key") << std::string(64, 'b') << "\n";
  }
  CHECK_THROWS_WITH(merge_shards({a, b}, dir.file("m2.db")), Catch::Contains("differs"));
  CHECK_FALSE(std::filesystem::exists(dir.file("m2.db")));
  // Equal key files: accepted, and the key goes with the merged file.
  std::ofstream(b + ".key") << std::string(64, 'a') << "\n";
  merge_shards({a, b}, dir.file("m3.db"));
  CHECK(test::read_file(dir.file("m3.db.key")) == std::string(64, 'a') + "\n");
  CHECK_THROWS_WITH(merge_shards({a, a}, dir.file("m4.db")), Catch::Contains("given twice"));
  CHECK_THROWS_WITH(merge_shards({a, dir.file("none.db")}, dir.file("m4.db")), Catch::Contains("does not exist"));
}

TEST_CASE("a non-mergeable policy is a clear error", "[merge]") {
  test::TempDir dir;
  const std::string a = dir.file("a.db"), b = dir.file("b.db");
  for (const auto& path : {a, b}) {
    store::Store st(path);
    auto q = select::make_policy("q_learning", json::object(), 4);
    q->add_action("plain@1");
    store::ModelRow m;
    m.name = PolicyManager::kModelName;
    m.version = 1;
    m.state = select::encode_checkpoint(*q);
    m.status = "candidate";
    store::Transaction tx(st.db());
    st.put_model(m);
    tx.commit();
  }
  CHECK_THROWS_WITH(merge_shards({a, b}, dir.file("m.db")), Catch::Contains("cannot be merged"));
  CHECK_FALSE(std::filesystem::exists(dir.file("m.db")));
}

TEST_CASE("the DSJSON checker rejects a line for each rule of VW's parser it knows", "[export]") {
  // A good line as the exporter writes it (labelled, three actions), then one broken copy per rule.
  const ojson good = ojson::parse(
      R"({"_label_cost":-0.5,"_label_probability":0.5,"_label_Action":2,"_labelIndex":1,)"
      R"("o":[{"v":0.5,"EventId":"e1","ActionTaken":false}],"Timestamp":"2026-01-05T08:01:37.000Z",)"
      R"("Version":"1","EventId":"e1","a":[2,1,3],"c":{"ctx":{"x0":0.5,"x1":0.0},"meta":{"domain":"code"},)"
      R"("_multi":[{"template":{"id":"plain","version":"1"}},{"template":{"id":"role_expert","version":"1"}},)"
      R"({"template":{"id":"few_shot","version":"1"}}]},"p":[0.5,0.25,0.25],"VWState":{"m":"linucb/2"}})");
  const std::string line = good.dump();
  REQUIRE(dsjson_problem(line) == "");
  ojson unlabelled = good;
  for (const char* k : {"_label_cost", "_label_probability", "_label_Action", "_labelIndex", "o"}) unlabelled.erase(k);
  CHECK(dsjson_problem(unlabelled.dump()) == "");

  const auto edit = [&](const auto& f) {
    ojson l = good;
    f(l);
    return l.dump();
  };
  const auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = line;
    REQUIRE(s.find(from) != std::string::npos);
    return s.replace(s.find(from), from.size(), to);
  };
  ojson c_first = ojson::object();  // the label after c
  c_first["c"] = good["c"];
  for (auto it = good.begin(); it != good.end(); ++it)
    if (it.key() != "c") c_first[it.key()] = it.value();

  const std::vector<std::pair<std::string, std::string>> broken = {
      // VW rules
      {" " + line, "start with '{'"},
      {replace("\"Version\":", "\"Version\" :"), "whitespace"},
      {replace("\"VWState\"", "\"VWSt\\u0061te\""), "escape sequence"},
      {line.substr(0, line.size() - 1), "not a JSON object"},
      {edit([](ojson& l) { l["_skipLearn"] = true; }), "top-level key VW treats specially"},
      {edit([](ojson& l) { l["EventId"] = 7; }), "EventId or Timestamp"},
      {edit([](ojson& l) { l["pdrop"] = 1; }), "pdrop"},
      {edit([](ojson& l) { l["a"] = ojson::array(); }), "a is not a non-empty array"},
      {edit([](ojson& l) { l["a"][1] = -1; }), "unsigned integer"},
      {edit([](ojson& l) { l["p"][1] = nullptr; }), "p holds something other than a float"},
      {edit([](ojson& l) { l["c"] = ojson::array(); }), "c is not an object"},
      {edit([](ojson& l) { l["c"].erase("_multi"); }), "c has no _multi"},
      {edit([](ojson& l) { l["c"]["meta"]["_tag"] = "x"; }), "key starting with '_'"},
      {edit([](ojson& l) { l["c"]["_multi"][0]["_multi"] = ojson::array(); }), "key starting with '_'"},
      {edit([](ojson& l) { l["c"]["meta"]["domain"] = nullptr; }), "null"},
      {edit([](ojson& l) { l["c"]["ctx"]["x0"] = 1e39; }), "float range"},
      {edit([](ojson& l) { l["c"]["meta"]["tags"] = {"a", "b"}; }), "array with something other"},
      {edit([](ojson& l) { l["c"]["ctx"]["v"] = ojson::array({ojson::array({1})}); }), "array with something other"},
      {edit([](ojson& l) { l["c"]["_multi"] = ojson::array(); }), "_multi holds no action"},
      {edit([](ojson& l) { l["c"]["_multi"][2] = 3; }), "_multi holds something other"},
      {c_first.dump(), "after c"},
      {edit([](ojson& l) { l.erase("_labelIndex"); }), "label fields incomplete"},
      {edit([](ojson& l) { l["_label_cost"] = nullptr; }), "label value is not a float"},
      {edit([](ojson& l) { l["_labelIndex"] = 3; }), "_labelIndex"},
      {edit([](ojson& l) { l["_labelIndex"] = 1.0; }), "_labelIndex"},
      {edit([](ojson& l) { l["_label_probability"] = 0; }), "_label_probability outside"},
      {edit([](ojson& l) { l["_label_Action"] = 0; }), "_label_Action"},
      // ours
      {edit([](ojson& l) { l.erase("VWState"); }), "missing VWState"},
      {edit([](ojson& l) { l["Version"] = "2"; }), "Version"},
      {edit([](ojson& l) { l["Timestamp"] = "yesterday"; }), "RFC 3339"},
      {edit([](ojson& l) { l["a"] = {2, 1}; }), "differ in length"},
      {edit([](ojson& l) { l["a"] = {2, 2, 3}; }), "permutation"},
      {edit([](ojson& l) { l["a"] = {2, 1, 4}; }), "outside 1..K"},
      {edit([](ojson& l) { l["p"] = {0.5, 0.25, 0.5}; }), "sum to 1"},
      {edit([](ojson& l) { l["p"] = {0.0, 0.5, 0.5}; }), "propensity"},
      {edit([](ojson& l) { l["c"]["_multi"][0] = {{"template", {{"version", "1"}}}}; }), "template.id"},
      {edit([](ojson& l) { l.erase("o"); }), "incomplete: o"},
      {edit([](ojson& l) { l["_label_Action"] = 3; }), "_labelIndex + 1"},
      {edit([](ojson& l) { l["a"] = {1, 2, 3}; }), "a[0] is not the chosen action"},
      {edit([](ojson& l) { l["_label_probability"] = 0.25; }), "p[0] != _label_probability"},
      {edit([](ojson& l) { l["o"][0]["EventId"] = "e2"; }), "o does not name"},
      {edit([](ojson& l) { l["o"][0]["v"] = 0.25; }), "-reward"},
  };
  for (const auto& [bad, why] : broken) {
    INFO(bad);
    CHECK_THAT(dsjson_problem(bad), Catch::Contains(why));
  }
}

TEST_CASE("export: DSJSON lines, JSON lines that re-ingest, CSV that parses back", "[export]") {
  Fleet& f = fleet();
  const std::string db = f.shard_paths[0];
  const std::int64_t interactions = query(db, "SELECT count(*) FROM interactions");
  const std::int64_t decisions = query(db, "SELECT count(*) FROM decisions");

  SECTION("dsjson") {
    const std::string out = f.dir.file("decisions.dsjson");
    REQUIRE(test::sh(bin() + " export --db " + db + " --format dsjson -o " + out).status == 0);
    std::ifstream in(out);
    std::string line;
    std::int64_t n = 0, labelled = 0;
    while (std::getline(in, line)) {
      INFO(line);
      CHECK(dsjson_problem(line) == "");
      labelled += line.rfind("{\"_label_cost\":", 0) == 0;  // the label first, where VW expects it
      ++n;
    }
    CHECK(n == decisions);
    CHECK(labelled == query(db, "SELECT count(*) FROM decisions WHERE reward IS NOT NULL"));
    if (test::sh("command -v vw").status == 0) {
      // --strict_parse: without it VW logs a malformed line, skips it and still exits with status 0.
      auto vw = test::sh("vw --dsjson --cb_explore_adf --strict_parse --quiet -d " + out, true);
      INFO(vw.out);
      CHECK(vw.status == 0);
      CHECK_THAT(vw.out, !Catch::Contains("parser error"));
    } else {
      WARN("vw is not on PATH: the DSJSON lines were checked structurally only");
    }
  }
  SECTION("jsonl re-ingested into a fresh file") {
    auto jl = test::sh(bin() + " export --db " + db + " --format jsonl");
    REQUIRE(jl.status == 0);
    const std::string lines = f.dir.file("events.jsonl"), fresh = f.dir.file("fresh.db");
    std::ofstream(lines) << jl.out;
    auto ing = test::sh(bin() + " ingest --db " + fresh + " < " + lines);
    REQUIRE(ing.status == 0);
    CHECK(query(fresh, "SELECT count(*) FROM interactions") == interactions);
    CHECK(query(fresh, "SELECT count(*) FROM rejected_events") == 0);
    store::Database a(db), b(fresh);
    const char* sql =
        "SELECT i.interaction_id, i.timestamp, i.user_id, i.session_id, i.domain, i.token_count, o.response_quality_score, "
        "o.user_satisfaction_rating, o.acceptance_rate, o.accuracy, p.total_processing_time_ms FROM interactions i "
        "LEFT JOIN outcomes o USING (interaction_id) LEFT JOIN performance p USING (interaction_id) "
        "ORDER BY i.interaction_id";
    store::Statement qa(a, sql), qb(b, sql);
    std::int64_t rows = 0;
    while (qa.step()) {
      REQUIRE(qb.step());
      for (int c = 0; c < qa.column_count(); ++c) {
        INFO(qa.column_name(c));
        CHECK(qa.column_text(c) == qb.column_text(c));
      }
      ++rows;
    }
    CHECK_FALSE(qb.step());
    CHECK(rows == interactions);
  }
  SECTION("csv") {
    auto csv = test::sh(bin() + " export --db " + db + " --format csv");
    REQUIRE(csv.status == 0);
    auto rows = parse_csv(csv.out);
    REQUIRE(rows.size() == static_cast<std::size_t>(interactions) + 1);
    CHECK(rows[0][0] == "interaction_id");
    for (const auto& r : rows) CHECK(r.size() == rows[0].size());
    CHECK(rows[0].size() == 20);
    auto help = test::sh(bin() + " export --help");
    CHECK_THAT(help.out, Catch::Contains("interaction_id,timestamp,session_id"));
    // Quoting: a field with a comma, a quote and a line break round-trips.
    CHECK(parse_csv("a,\"x, \"\"y\"\"\r\nz\"\r\n") == std::vector<std::vector<std::string>>{{"a", "x, \"y\"\r\nz"}});
  }
  SECTION("errors name the value") {
    auto bad = test::sh(bin() + " export --db " + db + " --format parquet", true);
    CHECK(bad.status == 2);
    CHECK_THAT(bad.out, Catch::Contains("'parquet'"));
    auto missing = test::sh(bin() + " export --db " + f.dir.file("nope.db") + " --format csv", true);
    CHECK(missing.status != 0);
    CHECK_FALSE(std::filesystem::exists(f.dir.file("nope.db")));  // read-only: never created
  }
}

TEST_CASE("active and candidate checkpoints merge separately; learned_into follows them", "[merge]") {
  test::TempDir dir;
  const std::vector<std::string> paths = {dir.file("a.db"), dir.file("b.db")};
  Rng rng(11);
  std::vector<std::unique_ptr<select::Policy>> actives, candidates;
  for (std::size_t s = 0; s < paths.size(); ++s) {
    store::Store st(paths[s]);
    auto p = select::make_policy("linucb", json::object(), 3);
    p->add_action("plain@1");
    p->add_action("role_expert@1");
    store::Transaction tx(st.db());
    auto decide = [&](int i, std::optional<std::int64_t> into) {
      Eigen::VectorXd x = Eigen::VectorXd::Random(3);
      const std::string action = i % 2 ? "plain@1" : "role_expert@1";
      const double r = rng.uniform(0, 1);
      p->update(x, action, r, 0.5);
      store::DecisionRow d;
      d.interaction_id = test::uuid_for(100 * s + i, 17);
      d.timestamp = kStart + i;
      d.policy_name = "linucb";
      d.action_set = R"([{"template_id":"plain","version":"1","probability":0.5,"score":0},)"
                     R"({"template_id":"role_expert","version":"1","probability":0.5,"score":0}])";
      d.chosen_template = action.substr(0, action.find('@'));
      d.chosen_version = "1";
      d.propensity = 0.5;
      d.context = json(std::vector<double>(x.data(), x.data() + 3)).dump();
      const std::int64_t id = st.insert_decision(d);
      st.set_decision_reward(id, r, into);
    };
    for (int i = 0; i < 10; ++i) decide(i, 3);  // learned into the shard's version 3, now active
    store::ModelRow m;
    m.name = PolicyManager::kModelName;
    m.version = 3;
    m.state = select::encode_checkpoint(*p);
    m.metrics = json{{"learned_into", {3}}, {"reward_model", {{"plain@1", {5, 2.5}}}}, {"baseline_value", 0.4}}.dump();
    m.status = "active";
    st.put_model(m);
    actives.push_back(p->clone());
    for (int i = 10; i < 16; ++i) decide(i, 4);  // learned into the candidate, version 4
    decide(16, std::nullopt);                   // held out
    m.version = 4;
    m.state = select::encode_checkpoint(*p);
    m.metrics = json{{"learned_into", {3, 4}}, {"reward_model", {{"plain@1", {8, 4.0}}}}}.dump();
    m.status = "candidate";
    st.put_model(m);
    candidates.push_back(p->clone());
    tx.commit();
  }
  const std::string out = dir.file("m.db");
  MergeReport r = merge_shards(paths, out);
  CHECK(r.active_version == 1);
  CHECK(r.candidate_version == 2);
  CHECK(query(out, "SELECT count(*) FROM decisions WHERE learned_into = 1") == 20);
  CHECK(query(out, "SELECT count(*) FROM decisions WHERE learned_into = 2") == 12);
  CHECK(query(out, "SELECT count(*) FROM decisions WHERE learned_into IS NULL") == 2);
  for (auto [status, expected] : {std::pair{"active", &actives}, std::pair{"candidate", &candidates}}) {
    INFO(status);
    auto merged = checkpoint(out, status);
    REQUIRE(merged);
    auto direct = (*expected)[0]->clone();
    direct->merge(*(*expected)[1]);
    const auto& mm = dynamic_cast<const select::LinearPolicy&>(*merged).models();
    const auto& dm = dynamic_cast<const select::LinearPolicy&>(*direct).models();
    REQUIRE(mm.arms().size() == 2);
    for (std::size_t k = 0; k < 2; ++k) {
      CHECK(mm.arms()[k].count == dm.arms()[k].count);
      CHECK(max_abs_diff(mm.arms()[k].a_inv, dm.arms()[k].a_inv) < 1e-12);
      CHECK(max_abs_diff(mm.arms()[k].theta, dm.arms()[k].theta) < 1e-12);
    }
  }
  store::Database d(out);
  store::Statement q(d, "SELECT status, metrics FROM models ORDER BY version");
  REQUIRE(q.step());
  json active = json::parse(q.column_text(1));
  CHECK(active["reward_model"]["plain@1"] == json::array({10, 5.0}));
  CHECK(active["learned_into"] == json::array({1}));
  CHECK_FALSE(active.contains("baseline_value"));
  REQUIRE(q.step());
  json cand = json::parse(q.column_text(1));
  CHECK(cand["reward_model"]["plain@1"] == json::array({16, 8.0}));
  CHECK(cand["learned_into"] == json::array({1, 2}));
}

namespace {

/// A byte copy of a closed database file (and its WAL, if one is left): a replica of a shard.
void copy_db(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to);
  if (std::filesystem::exists(from + "-wal")) std::filesystem::copy_file(from + "-wal", to + "-wal");
}

/// Rows of `sql` as text, one string per row (columns joined by '|'), for comparing two files.
std::vector<std::string> rows_of(const std::string& db, const std::string& sql) {
  store::OpenOptions oo;
  oo.create = false;
  oo.read_only = true;
  store::Database d(db, oo);
  store::Statement q(d, sql);
  std::vector<std::string> out;
  while (q.step()) {
    std::string row;
    for (int c = 0; c < q.column_count(); ++c) row += (c ? "|" : "") + (q.is_null(c) ? "NULL" : q.column_text(c));
    out.push_back(row);
  }
  return out;
}

/// Every hourly and daily rollup of two files: same buckets, request counts, latency quantiles.
void check_same_rollups(const std::string& a, const std::string& b) {
  store::OpenOptions oo;
  oo.create = false;
  oo.read_only = true;
  store::Database da(a, oo), db(b, oo);
  store::Statement qa(da, "SELECT granularity, bucket_start, requests, window FROM metric_rollups ORDER BY 1, 2");
  store::Statement qb(db, "SELECT granularity, bucket_start, requests, window FROM metric_rollups ORDER BY 1, 2");
  int buckets = 0;
  while (qa.step()) {
    REQUIRE(qb.step());
    INFO(qa.column_text(0) << " " << qa.column_text(1));
    CHECK(qb.column_text(1) == qa.column_text(1));
    CHECK(qb.column_int64(2) == qa.column_int64(2));
    json ja = monitor::MetricsWindow::from_bytes(qa.column_blob(3)).summary().to_json();
    json jb = monitor::MetricsWindow::from_bytes(qb.column_blob(3)).summary().to_json();
    CHECK(jb["latency_ms"] == ja["latency_ms"]);
    ++buckets;
  }
  CHECK_FALSE(qb.step());
  CHECK(buckets > 6);
}

}  // namespace

TEST_CASE("a replica of a shard merged in adds nothing: duplicates are learned once", "[merge]") {
  Fleet& f = fleet();
  const std::string plain = f.dir.file("plain-merge.db"), replica = f.dir.file("replica.db");
  copy_db(f.shard_paths[1], replica);
  MergeReport base = merge_shards(f.shard_paths, plain);
  // The replica listed before its original: its decisions win the ties, the original's are dropped.
  const std::string with_replica = f.dir.file("replica-merge.db");
  MergeReport r = merge_shards({f.shard_paths[0], replica, f.shard_paths[1], f.shard_paths[2]}, with_replica);
  const std::int64_t shard_interactions = query(f.shard_paths[1], "SELECT count(*) FROM interactions");
  CHECK(r.duplicate_interactions == shard_interactions);
  CHECK(r.dropped_decisions == query(f.shard_paths[1], "SELECT count(*) FROM decisions"));
  CHECK(r.downdates > 0);
  CHECK(r.rollup_hours_rebuilt > 0);
  CHECK(r.rollup_hours_inexact == 0);
  for (const char* t : {"interactions", "performance", "outcomes", "decisions", "user_stats", "templates",
                        "rejected_events", "pending_events", "audit_log", "patterns", "anomalies", "alerts"}) {
    INFO(t);
    CHECK(query(with_replica, std::string("SELECT count(*) FROM ") + t) ==
          query(plain, std::string("SELECT count(*) FROM ") + t));
  }
  CHECK(query(plain, "SELECT count(*) FROM rejected_events") > 0);
  // Every log row of the original is the replica's too. (The merge without the replica drops a few rows
  // as well: this test's shards share one virtual clock and wrote some identical audit rows at one time.)
  CHECK(r.duplicate_log_rows - base.duplicate_log_rows ==
        query(f.shard_paths[1], "SELECT (SELECT count(*) FROM rejected_events) + (SELECT count(*) FROM pending_events) "
                                "+ (SELECT count(*) FROM audit_log) + (SELECT count(*) FROM patterns) + (SELECT "
                                "count(*) FROM anomalies) + (SELECT count(*) FROM alerts)"));
  CHECK(query(with_replica, "PRAGMA integrity_check") == 0);
  // Users: the same counts; sums to rounding.
  CHECK(rows_of(with_replica, "SELECT user_id, interactions, reward_count, last_seen FROM user_stats ORDER BY 1") ==
        rows_of(plain, "SELECT user_id, interactions, reward_count, last_seen FROM user_stats ORDER BY 1"));
  {
    auto sums = [](const std::string& db) {
      std::map<std::string, std::pair<double, double>> m;
      store::Database d(db);
      store::Statement q(d, "SELECT user_id || ' ' || template_key, weight, reward_sum FROM user_template_stats");
      while (q.step()) m[q.column_text(0)] = {q.column_double(1), q.column_double(2)};
      store::Statement u(d, "SELECT user_id, reward_sum, 0 FROM user_stats");
      while (u.step()) m["user " + u.column_text(0)] = {u.column_double(1), 0};
      return m;
    };
    auto a = sums(plain), b = sums(with_replica);
    REQUIRE(a.size() == b.size());
    REQUIRE(a.size() > 12);
    for (const auto& [k, v] : a) {
      INFO(k);
      REQUIRE(b.count(k));
      CHECK(b[k].first == Approx(v.first).margin(1e-9));
      CHECK(b[k].second == Approx(v.second).margin(1e-9));
    }
  }
  check_same_rollups(plain, with_replica);
  // The learned policies: the same updates (count, pooled moments, each arm's raw statistics), the same
  // reward model and the same number of trained decisions.
  for (const char* status : {"active", "candidate"}) {
    INFO(status);
    auto pa = checkpoint(plain, status), pb = checkpoint(with_replica, status);
    CHECK(static_cast<bool>(pa) == static_cast<bool>(pb));
    if (!pa || !pb) {
      CHECK(std::string(status) == "active");  // the fleet's shards may not have deployed yet
      continue;
    }
    const auto& ma = dynamic_cast<const select::LinearPolicy&>(*pa).models();
    const auto& mb = dynamic_cast<const select::LinearPolicy&>(*pb).models();
    CHECK(mb.seen() == ma.seen());
    auto ra = raw_statistics(*pa), rb = raw_statistics(*pb);
    REQUIRE(ra.size() == rb.size());
    for (const auto& [key, arm] : ra) {
      INFO(key);
      CHECK(rb[key].count == arm.count);
      const double scale = 1.0 + arm.s.cwiseAbs().maxCoeff();
      CHECK(max_abs_diff(rb[key].s, arm.s) < 1e-6 * scale);
      CHECK(max_abs_diff(rb[key].b, arm.b) < 1e-6 * scale);
    }
    auto metrics = [&](const std::string& db) {
      store::Database d(db);
      store::Statement q(d, "SELECT metrics FROM models WHERE name = 'template_selection' AND status = ?1");
      q.bind(1, status);
      REQUIRE(q.step());
      return json::parse(q.column_text(0));
    };
    json ja = metrics(plain), jb = metrics(with_replica);
    CHECK(jb["trained_decisions"] == ja["trained_decisions"]);
    for (auto it = ja["reward_model"].begin(); it != ja["reward_model"].end(); ++it) {
      CHECK(jb["reward_model"][it.key()][0] == it.value()[0]);
      CHECK(jb["reward_model"][it.key()][1].get<double>() == Approx(it.value()[1].get<double>()).margin(1e-9));
    }
  }

  // A replica whose raw performance rows of one hour are gone (retention ran there): that hour cannot be
  // rebuilt, is left as merged and is reported.
  const std::string purged = f.dir.file("purged-replica.db");
  copy_db(f.shard_paths[1], purged);
  std::string hour;
  {
    store::Database d(purged);
    hour = rows_of(purged, "SELECT substr(timestamp, 1, 13) FROM performance ORDER BY timestamp LIMIT 1").at(0);
    d.exec("DELETE FROM performance WHERE substr(timestamp, 1, 13) = '" + hour + "'");
  }
  MergeReport rp = merge_shards({f.shard_paths[0], purged, f.shard_paths[1], f.shard_paths[2]},
                                f.dir.file("purged-merge.db"));
  CHECK(rp.rollup_hours_inexact == 1);
  CHECK(rp.rollup_hours_rebuilt == r.rollup_hours_rebuilt - 1);
}

TEST_CASE("merge applies reports pending for an interaction of another shard and rolls up a lagging shard",
          "[merge]") {
  test::TempDir dir;
  ManualClock clock(kStart + 9 * 3600000);
  EngineOptions eo;
  eo.clock = &clock;
  eo.privacy_key = kKeyHex;
  const std::string a = dir.file("a.db"), b = dir.file("b.db");
  const std::string x = test::uuid_for(1, 21), y = test::uuid_for(2, 21);
  auto perf = [](const std::string& id, double ms) {
    return json{{"interaction_id", id}, {"performance_metrics", {{"total_processing_time_ms", ms}}}};
  };
  {
    LearningEngine ea(a, test::fast_config(), eo), eb(b, test::fast_config(), eo);
    REQUIRE(ea.record(test::interaction_doc(x, "Explain the cache")).accepted);
    // B saw X's performance report and outcome only (the host's next call went to another shard).
    REQUIRE(eb.record(perf(x, 120)).accepted);
    REQUIRE(eb.record(json{{"interaction_id", x}, {"outcome_data", {{"response_quality_score", 0.8},
                                                                       {"claude_response_time_ms", 900}}}})
                .accepted);
    REQUIRE(eb.record(test::interaction_doc(y, "Write a test")).accepted);
    REQUIRE(eb.record(perf(y, 80)).accepted);
    ea.flush();
    eb.flush();
    clock.set(kStart + 12 * 3600000);
    ea.run_rollups(clock.now_ms());  // A rolls up; B never did (it was not opened at the hour's end)
    ea.close();
    eb.close();
  }
  CHECK(query(b, "SELECT count(*) FROM pending_events") == 2);
  const std::string out = dir.file("m.db");
  MergeReport r = merge_shards({a, b}, out);
  CHECK(r.pending_resolved == 2);
  CHECK(query(out, "SELECT count(*) FROM pending_events") == 0);
  CHECK(query(out, "SELECT count(*) FROM performance") == 2);
  CHECK(query(out, "SELECT count(*) FROM outcomes WHERE interaction_id = '" + x + "'") == 1);
  // The hour holds both requests, X's response time included (merged, not only A's empty hour).
  CHECK(r.rollup_hours_rebuilt >= 1);
  CHECK(query(out, "SELECT sum(requests) FROM metric_rollups WHERE granularity = 'hour'") == 2);
  CHECK(query(out, "SELECT sum(requests) FROM metric_rollups WHERE granularity = 'day'") == 2);
  // The merged file's engine computes the same rollups from its raw rows: nothing left to add.
  {
    LearningEngine e(out, test::fast_config(), eo);
    e.run_rollups(clock.now_ms());
    e.close();
  }
  CHECK(query(out, "SELECT sum(requests) FROM metric_rollups WHERE granularity = 'hour'") == 2);
}

TEST_CASE("an interaction decided in two shards keeps the decisions a merged checkpoint learned", "[merge]") {
  const std::string x_id = test::uuid_for(1, 31);
  const Eigen::VectorXd x = (Eigen::VectorXd(3) << 0.2, -0.4, 0.9).finished();
  // A shard with one decision of interaction X, learned into its candidate (version 2) or not at all.
  auto make_shard = [&](const std::string& path, bool learned, double reward) {
    store::Store st(path);
    auto p = select::make_policy("linucb", json::object(), 3);
    p->add_action("plain@1");
    p->add_action("role_expert@1");
    store::Transaction tx(st.db());
    store::DecisionRow d;
    d.interaction_id = x_id;
    d.timestamp = kStart;
    d.policy_name = "linucb";
    d.action_set = R"([{"template_id":"plain","version":"1","probability":0.5,"score":0},)"
                   R"({"template_id":"role_expert","version":"1","probability":0.5,"score":0}])";
    d.chosen_template = "plain";
    d.chosen_version = "1";
    d.propensity = 0.5;
    d.context = json(std::vector<double>(x.data(), x.data() + 3)).dump();
    const std::int64_t id = st.insert_decision(d);
    if (learned) {
      p->update(x, "plain@1", reward, 0.5);
      st.set_decision_reward(id, reward, 2);
    }
    store::ModelRow m;
    m.name = PolicyManager::kModelName;
    m.version = 2;
    m.state = select::encode_checkpoint(*p);
    m.metrics = json{{"learned_into", {2}}, {"trained_decisions", learned ? 1 : 0},
                     {"reward_model", {{"plain@1", {learned ? 1 : 0, learned ? reward : 0.0}}}}}
                    .dump();
    m.status = "candidate";
    st.put_model(m);
    tx.commit();
  };
  auto merged_seen = [&](const std::string& db) {
    auto c = checkpoint(db, "candidate");
    REQUIRE(c);
    return dynamic_cast<const select::LinearPolicy&>(*c).models().seen();
  };
  test::TempDir dir;
  SECTION("the shard that learned it wins over the first one") {
    make_shard(dir.file("a.db"), false, 0);
    make_shard(dir.file("b.db"), true, 0.75);
    MergeReport r = merge_shards({dir.file("a.db"), dir.file("b.db")}, dir.file("m.db"));
    CHECK(r.decisions == 1);
    CHECK(r.dropped_decisions == 1);
    CHECK(r.downdates == 0);
    CHECK(query(dir.file("m.db"), "SELECT count(*) FROM decisions WHERE reward = 0.75 AND learned_into = 1") == 1);
    CHECK(merged_seen(dir.file("m.db")) == 1);
  }
  SECTION("both learned it: the first is kept and the second taken out of the merged statistics") {
    make_shard(dir.file("a.db"), true, 0.25);
    make_shard(dir.file("b.db"), true, 0.75);
    MergeReport r = merge_shards({dir.file("a.db"), dir.file("b.db")}, dir.file("m.db"));
    CHECK(r.decisions == 1);
    CHECK(r.downdates == 1);
    CHECK(query(dir.file("m.db"), "SELECT count(*) FROM decisions WHERE reward = 0.25 AND learned_into = 1") == 1);
    CHECK(merged_seen(dir.file("m.db")) == 1);
    store::Database d(dir.file("m.db"));
    store::Statement q(d, "SELECT metrics FROM models WHERE status = 'candidate'");
    REQUIRE(q.step());
    const json m = json::parse(q.column_text(0));
    CHECK(m["trained_decisions"] == 1);
    CHECK(m["reward_model"]["plain@1"][0] == 1);
    CHECK(m["reward_model"]["plain@1"][1].get<double>() == Approx(0.25));
    // The merged arm is exactly the single update the kept decision made.
    auto c = checkpoint(dir.file("m.db"), "candidate");
    auto single = select::make_policy("linucb", json::object(), 3);
    single->add_action("plain@1");
    single->add_action("role_expert@1");
    single->update(x, "plain@1", 0.25, 0.5);
    const auto& mm = dynamic_cast<const select::LinearPolicy&>(*c).models();
    const auto& sm = dynamic_cast<const select::LinearPolicy&>(*single).models();
    for (std::size_t k = 0; k < 2; ++k) {
      CHECK(mm.arms()[k].count == sm.arms()[k].count);
      CHECK(max_abs_diff(mm.arms()[k].theta, sm.arms()[k].theta) < 1e-9);
    }
  }
}
