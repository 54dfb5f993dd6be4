// promptlearn_bench merge: merging shard files (lifecycle/merge.hpp) against its baselines.
//
//   promptlearn_bench merge [--shards 4] [--rows 50000] [--duplicates 0.1] [--seed 1] [--days 7] [--users 48]
//
// A fleet is simulated first: `--shards` LearningEngine files (one ManualClock, one privacy key) over `--days`
// days; `--rows` distinct interactions from the host simulator (src/cli/simulator.hpp), each routed to its
// user's shard: the interaction recorded (record_batch), the template selected, performance and outcome
// recorded (record_batch), an invalid report now and then; each shard runs its due jobs (learning, gate,
// rollups, ...) at every simulated day's end. A share `--duplicates` of the interactions is also sent to a
// second shard with the same documents and the same decision flow (as a host retrying against another
// shard), so the merge has duplicates to take out.
//
// Printed, one JSON object per line ({"bench": "merge", "metric", "value", "unit"[, "baseline", "ratio"]}):
//   build_s                     building the fleet (not a comparison)
//   merge_s                     merge_shards(shards, out), median of 3 (output deleted between runs); baseline
//                               sql_union_s: a fresh promptlearn file into which the shards' interactions,
//                               performance, outcomes and decisions (one shard's per interaction) are copied
//                               by plain SQL (ATTACH, INSERT OR IGNORE ... SELECT), median of 3: the lower
//                               bound of copying the event rows
//   merge_rows_per_s            interaction rows read from the shards (duplicates included) per second of merge
//   retrain_s                   what the merge avoids: every learned decision of the merged file (learned_into
//                               not null) replayed (Policy::update) into a fresh policy of the merged
//                               candidate's kind and parameters; the replay only, rows read and parsed before
//   candidate_merge_s           the checkpoint part of the merge for the candidate, redone with the library
//                               calls merge_shards makes (each shard's checkpoint decoded, its dropped
//                               duplicates downdated, Policy::merge, encode_checkpoint), median of 3;
//                               baseline retrain_s
//   merge_vs_copy_plus_retrain  merge_s against sql_union_s + retrain_s
//   interactions, duplicates, downdates, learned_decisions: correctness figures with their expected values
//                               (exit 1 when the merged interactions are not the distinct ones of the shards,
//                               when the duplicates found are not the planted ones, or when the merged
//                               candidate's update count is not the number of distinct learned decisions)
//   output_bytes                size of the merged file
// Every temporary file is removed at the end.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include "../src/cli/simulator.hpp"
#include "bench_util.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/core/clock.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/lifecycle/merge.hpp"
#include "promptlearn/select/factory.hpp"
#include "promptlearn/select/linear_bandit.hpp"
#include "promptlearn/store/store.hpp"

namespace {

namespace fs = std::filesystem;
namespace pl = promptlearn;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr pl::TimeMs kHour = 3600000, kDay = 24 * kHour;
constexpr const char* kKeyHex = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
constexpr const char* kPolicy = "template_selection";
constexpr int kRepeats = 3;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void emit(const std::string& metric, double value, const std::string& unit, std::optional<double> baseline = std::nullopt,
          const json& extra = json::object()) {
  json j = {{"bench", "merge"}, {"metric", metric}, {"value", value}, {"unit", unit}};
  if (baseline) {
    j["baseline"] = *baseline;
    j["ratio"] = *baseline != 0 ? value / *baseline : 0.0;
  }
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  std::cout << j.dump() << std::endl;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void remove_db(const std::string& p) {
  std::error_code ec;
  for (const char* s : {"", "-wal", "-shm", "-journal", ".key"}) fs::remove(p + s, ec);
}

/// The benchmark's temporary folder, removed with everything in it when the object goes.
struct TempDir {
  fs::path path;
  TempDir() : path(fs::temp_directory_path() / fmt::format("promptlearn_bench_merge_{}", ::getpid())) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

pl::store::Database open_read_only(const std::string& path) {
  pl::store::OpenOptions oo;
  oo.create = false;
  oo.read_only = true;
  oo.wal = false;
  return pl::store::Database(path, oo);
}

// ------------------------------------------------------------------------------------------- the fleet

struct Fleet {
  std::vector<std::string> paths;
  std::int64_t planted = 0;        ///< interactions also sent to a second shard
  std::int64_t stored_rows = 0;    ///< interaction rows over all shards (duplicates included)
};

/// One prompt of a chunk: where it goes and when.
struct Routed {
  pl::sim::SimPrompt prompt;
  pl::TimeMs at = 0;
  int shard = 0;
  int copy = -1;  ///< the second shard of a planted duplicate, -1: none
};

void require_accepted(const std::vector<pl::RecordResult>& results, const char* what) {
  for (const auto& r : results)
    if (!r.accepted)
      throw std::runtime_error(fmt::format("building the fleet: a {} document was rejected: {} {}", what, r.field, r.error));
}

Fleet build_fleet(const TempDir& dir, int shards, std::int64_t rows, double duplicates, std::uint64_t seed, int days,
                  int users) {
  const pl::TimeMs start = *pl::try_parse_rfc3339("2026-01-05T00:00:00Z");
  pl::ManualClock clock(start);
  pl::EngineOptions eo;
  eo.clock = &clock;
  eo.privacy_key = kKeyHex;
  pl::Config cfg = pl::Config::defaults();
  // The subject is the merge, not the shards' durability: commits without fsync, decisions buffered.
  cfg.learning.data_collection.synchronous_commit = pl::SynchronousCommit::normal;
  cfg.learning.data_collection.mode = pl::CollectionMode::buffered;  // decisions written with the next batch
  Fleet f;
  std::vector<std::unique_ptr<pl::LearningEngine>> engines;
  for (int s = 0; s < shards; ++s) {
    f.paths.push_back(dir.file(fmt::format("shard{}.db", s)));
    engines.push_back(std::make_unique<pl::LearningEngine>(f.paths.back(), cfg, eo));
    for (const char* t : pl::sim::template_ids()) engines.back()->register_template(t, "1", std::string("body of ") + t);
  }
  pl::sim::HostSimulator host(seed, users);
  pl::Rng route(seed * 0x9E3779B97F4A7C15ULL + 17);
  constexpr std::size_t kChunk = 100;
  std::int64_t made = 0;
  std::vector<std::vector<std::string>> lines(static_cast<std::size_t>(shards));
  auto flush_lines = [&](const char* what) {
    for (int s = 0; s < shards; ++s) {
      auto& l = lines[static_cast<std::size_t>(s)];
      if (l.empty()) continue;
      const auto results = engines[static_cast<std::size_t>(s)]->record_batch(l);
      if (std::string(what) == "interaction") require_accepted(results, what);
      l.clear();
    }
  };
  for (int day = 0; day < days; ++day) {
    const pl::TimeMs day_start = start + day * kDay;
    const std::int64_t today = rows / days + (day < rows % days ? 1 : 0);
    const pl::TimeMs spacing = std::max<pl::TimeMs>(1, 12 * kHour / std::max<std::int64_t>(1, today));
    for (std::int64_t i = 0; i < today;) {
      // A chunk of prompts in time order: interactions recorded in one batch per shard, each one selected,
      // then the performance and outcome reports in one batch per shard.
      std::vector<Routed> chunk;
      for (; i < today && chunk.size() < kChunk; ++i, ++made) {
        Routed r;
        r.at = day_start + 8 * kHour + i * spacing;
        r.prompt = host.prompt(r.at);
        r.shard = static_cast<int>(r.prompt.user % static_cast<std::size_t>(shards));
        if (shards > 1 && route.bernoulli(duplicates)) {
          r.copy = (r.shard + 1 + static_cast<int>(route.uniform_int(0, shards - 2))) % shards;
          ++f.planted;
        }
        chunk.push_back(std::move(r));
      }
      clock.set(chunk.front().at);
      for (const Routed& r : chunk) {
        const std::string doc = r.prompt.interaction.dump();
        lines[static_cast<std::size_t>(r.shard)].push_back(doc);
        if (r.copy >= 0) lines[static_cast<std::size_t>(r.copy)].push_back(doc);
      }
      flush_lines("interaction");
      for (const Routed& r : chunk) {
        clock.set(r.at + 50);
        const pl::Decision d = engines[static_cast<std::size_t>(r.shard)]->select_template(r.prompt.interaction);
        if (r.copy >= 0) engines[static_cast<std::size_t>(r.copy)]->select_template(r.prompt.interaction);
        const int t = pl::sim::template_index(d.chosen.template_id);
        const std::int64_t n = made - static_cast<std::int64_t>(chunk.size()) + (&r - chunk.data());
        const double total = 40.0 + static_cast<double>((n * 37) % 200);
        json perf{{"interaction_id", r.prompt.interaction_id},
                  {"timestamp", pl::format_rfc3339(r.at + 100)},
                  {"performance_metrics",
                   {{"total_processing_time_ms", total},
                    {"template_selection_time_ms", 1.0 + static_cast<double>(n % 7)},
                    {"resource_usage", {{"memory_peak_mb", 50.0 + static_cast<double>(n % 13)}}},
                    {"cache_performance", {{"cache_hit_rate", static_cast<double>(n % 10) / 10.0}}}}}};
        json outcome = host.outcome(r.prompt, t);
        outcome["timestamp"] = pl::format_rfc3339(r.at + 3000);
        for (int s : {r.shard, r.copy}) {
          if (s < 0) continue;
          auto& l = lines[static_cast<std::size_t>(s)];
          l.push_back(perf.dump());
          l.push_back(outcome.dump());
        }
        if (n % 200 == 3) {  // an invalid report now and then: a failed request in the rollups
          json bad{{"interaction_id", r.prompt.interaction_id}, {"outcome_data", {{"response_quality_score", 11.5}}}};
          lines[static_cast<std::size_t>(r.shard)].push_back(bad.dump());
        }
      }
      clock.set(chunk.back().at + 3000);
      flush_lines("report");
    }
    clock.set(day_start + kDay - 1);
    for (std::size_t s = 0; s < engines.size(); ++s) {
      const pl::JobsReport jr = engines[s]->run_due_jobs(clock.now_ms());
      for (const auto& [job, error] : jr.failed)
        std::cerr << fmt::format("bench merge: shard {} day {}: job {} failed: {}\n", s, day, job, error);
    }
  }
  clock.set(start + days * kDay + 2 * kHour);  // roll up the last hours too
  for (auto& e : engines) {
    e->run_rollups(clock.now_ms());
    e->close();
    f.stored_rows += e->stats().tables.interactions;
  }
  return f;
}

// ------------------------------------------------------------------------------------- the baselines

/// Plain SQL: the shards' event rows copied into a fresh promptlearn file.
void sql_union(const std::vector<std::string>& shards, const std::string& out) {
  pl::store::OpenOptions oo;
  oo.synchronous_full = false;  // as merge_shards writes its output
  pl::store::Store st(out, oo);
  pl::store::Database& db = st.db();
  std::vector<std::string> dc;
  {
    pl::store::Statement q(db, "PRAGMA table_info(decisions)");
    while (q.step())
      if (q.column_text(1) != "decision_id") dc.push_back(q.column_text(1));
  }
  std::string cols, d_cols;
  for (const auto& c : dc) cols += (cols.empty() ? "" : ", ") + c, d_cols += (d_cols.empty() ? "d." : ", d.") + c;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    pl::store::Statement attach(db, "ATTACH DATABASE ?1 AS " + fmt::format("s{}", i));
    attach.bind(1, shards[i]);
    attach.run();
  }
  {
    pl::store::Transaction tx(db);
    for (std::size_t i = 0; i < shards.size(); ++i) {
      const std::string s = fmt::format("s{}", i);
      for (const char* t : {"interactions", "performance", "outcomes"})
        db.exec(fmt::format("INSERT OR IGNORE INTO main.{0} SELECT * FROM {1}.{0}", t, s));
      // One shard's decisions per interaction (new decision ids), as the merge keeps them.
      db.exec(fmt::format("INSERT INTO main.decisions ({}) SELECT {} FROM {}.decisions d WHERE NOT EXISTS (SELECT 1 "
                          "FROM main.decisions m WHERE m.interaction_id = d.interaction_id) ORDER BY d.decision_id",
                          cols, d_cols, s));
    }
    tx.commit();
  }
  for (std::size_t i = 0; i < shards.size(); ++i) db.exec(fmt::format("DETACH DATABASE s{}", i));
}

/// A stored context (JSON array of numbers) as a vector of `n` (the library's own reader).
Eigen::VectorXd context_vector(const std::string& text, int n) {
  Eigen::VectorXd x = pl::select::context_from_json(text, n);
  if (x.size() != n) throw std::runtime_error("a stored context is not an array of " + std::to_string(n) + " numbers");
  return x;
}

std::set<std::int64_t> learned_into_of(const std::string& metrics) {
  std::set<std::int64_t> out;
  const json m = json::parse(metrics, nullptr, false);
  if (m.is_object() && m.contains("learned_into") && m["learned_into"].is_array())
    for (const auto& v : m["learned_into"])
      if (v.is_number_integer()) out.insert(v.get<std::int64_t>());
  return out;
}

/// The newest template_selection checkpoint of a status, with the versions its metrics say it learned.
struct Checkpoint {
  std::string state;
  std::set<std::int64_t> into;
};
std::optional<Checkpoint> checkpoint(pl::store::Database& db, const std::string& status) {
  pl::store::Statement q(db, "SELECT state, metrics FROM models WHERE name = ?1 AND status = ?2 ORDER BY version DESC "
                             "LIMIT 1");
  q.bind(1, kPolicy).bind(2, status);
  if (!q.step()) return std::nullopt;
  return Checkpoint{q.column_blob(0), q.is_null(1) ? std::set<std::int64_t>{} : learned_into_of(q.column_text(1))};
}

/// A learned decision of a shard that the merge does not keep (another shard's copy of its interaction is
/// kept): to be downdated out of its checkpoint.
struct Dropped {
  std::string context, action;
  double reward = 0;
};

/// Per shard, what the candidate part of the merge works on: its candidate (else active) checkpoint and
/// the dropped decisions it learned. Also the expected figures: learned decisions kept, downdates.
struct CheckpointWork {
  std::vector<std::string> states;
  std::vector<std::vector<Dropped>> dropped;
  std::int64_t expected_learned = 0;    ///< distinct interactions learned into a merged checkpoint's source
  std::int64_t expected_downdates = 0;  ///< dropped learned decisions, over active and candidate checkpoints
};

/// Reads the shards as merge_shards decides: for an interaction decided in several shards the decisions of
/// the shard with the highest rank (2 when a checkpoint being merged learned one, + 1 when it has its
/// reward; ties: the first shard) are kept; the others' learned decisions are downdated.
CheckpointWork checkpoint_work(const std::vector<std::string>& shards) {
  struct Row {
    std::size_t shard;
    std::optional<std::int64_t> learned_into;
    bool rewarded;
    std::string context, action;
    double reward;
  };
  CheckpointWork w;
  std::vector<std::optional<Checkpoint>> active(shards.size()), candidate(shards.size());
  std::unordered_map<std::string, std::vector<Row>> by_interaction;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    pl::store::Database db = open_read_only(shards[i]);
    active[i] = checkpoint(db, "active");
    candidate[i] = checkpoint(db, "candidate");
    const auto& source = candidate[i] ? candidate[i] : active[i];
    w.states.push_back(source ? source->state : "");
    pl::store::Statement q(db, "SELECT interaction_id, learned_into, reward, context, chosen_template || '@' || "
                               "chosen_version FROM decisions ORDER BY decision_id");
    while (q.step()) {
      Row r{i, std::nullopt, !q.is_null(2), q.is_null(3) ? "" : q.column_text(3), q.column_text(4),
            q.is_null(2) ? 0.0 : q.column_double(2)};
      if (!q.is_null(1)) r.learned_into = q.column_int64(1);
      by_interaction[q.column_text(0)].push_back(std::move(r));
    }
  }
  w.dropped.resize(shards.size());
  auto holds = [](const std::optional<Checkpoint>& c, const std::optional<std::int64_t>& v) {
    return c && v && c->into.count(*v) > 0;
  };
  for (const auto& [id, rows] : by_interaction) {
    std::vector<int> rank(shards.size(), -1);
    for (const Row& r : rows) {
      const int mine = (holds(active[r.shard], r.learned_into) || holds(candidate[r.shard], r.learned_into) ? 2 : 0) +
                       (r.rewarded ? 1 : 0);
      rank[r.shard] = std::max(rank[r.shard], mine);
    }
    const std::size_t kept = static_cast<std::size_t>(std::max_element(rank.begin(), rank.end()) - rank.begin());
    bool learned = false;
    for (const Row& r : rows) {
      const auto& source = candidate[r.shard] ? candidate[r.shard] : active[r.shard];
      if (r.shard == kept) {
        learned = learned || holds(source, r.learned_into);
        continue;
      }
      if (!r.rewarded) continue;
      if (holds(active[r.shard], r.learned_into)) ++w.expected_downdates;
      if (holds(source, r.learned_into)) {
        ++w.expected_downdates;
        w.dropped[r.shard].push_back({r.context, r.action, r.reward});
      }
    }
    if (learned) ++w.expected_learned;
  }
  return w;
}

/// The candidate part of merge_shards: decode, downdate the dropped decisions, merge, encode.
std::string merge_candidates(const CheckpointWork& w) {
  std::unique_ptr<pl::select::Policy> merged;
  for (std::size_t i = 0; i < w.states.size(); ++i) {
    if (w.states[i].empty()) continue;
    std::unique_ptr<pl::select::Policy> p = pl::select::make_policy_from_checkpoint(w.states[i]);
    for (const Dropped& d : w.dropped[i]) {
      const Eigen::VectorXd x = context_vector(d.context, p->dimension());
      if (!p->downdate(x, d.action, d.reward))
        throw std::runtime_error("a dropped decision cannot be downdated");
    }
    if (!merged) merged = std::move(p);
    else merged->merge(*p);
  }
  return merged ? pl::select::encode_checkpoint(*merged) : std::string();
}

double seen_of(const pl::select::Policy& p) {
  return dynamic_cast<const pl::select::LinearPolicy&>(p).models().seen();
}

std::int64_t interaction_rows(const std::string& path, std::unordered_set<std::string>* ids = nullptr) {
  pl::store::Database db = open_read_only(path);
  pl::store::Statement q(db, "SELECT interaction_id FROM interactions");
  std::int64_t n = 0;
  while (q.step()) {
    ++n;
    if (ids) ids->insert(q.column_text(0));
  }
  return n;
}

}  // namespace

int bench_merge(int argc, char** argv) {
  namespace b = pl::bench;
  const int shards = static_cast<int>(b::arg_int(argc, argv, "shards", 4));
  const std::int64_t rows = b::arg_int(argc, argv, "rows", 50000);
  const double duplicates = std::stod(b::arg(argc, argv, "duplicates", "0.1"));
  const auto seed = static_cast<std::uint64_t>(b::arg_int(argc, argv, "seed", 1));
  const int days = static_cast<int>(b::arg_int(argc, argv, "days", 7));
  const int users = static_cast<int>(b::arg_int(argc, argv, "users", 48));
  if (shards < 1 || rows < 1 || days < 1 || users < 1 || !(duplicates >= 0 && duplicates <= 1)) {
    std::cerr << "usage: promptlearn_bench merge [--shards 4] [--rows 50000] [--duplicates 0.1] [--seed 1] "
                 "[--days 7] [--users 48]\n(shards, rows, days, users >= 1; duplicates in [0, 1])\n";
    return 2;
  }
  TempDir dir;

  // 1. The fleet.
  auto t0 = Clock::now();
  const Fleet fleet = build_fleet(dir, shards, rows, duplicates, seed, days, users);
  const double build_s = seconds_since(t0);
  emit("build_s", build_s, "s", std::nullopt,
       {{"shards", shards}, {"rows", rows}, {"stored_rows", fleet.stored_rows}, {"planted_duplicates", fleet.planted},
        {"days", days}, {"users", users}, {"seed", seed}});

  // 2. merge_shards, median of 3.
  const std::string out = dir.file("merged.db");
  pl::MergeReport report;
  std::vector<double> merge_times;
  for (int r = 0; r < kRepeats; ++r) {
    remove_db(out);
    t0 = Clock::now();
    report = pl::merge_shards(fleet.paths, out);
    merge_times.push_back(seconds_since(t0));
  }
  const double merge_s = median(merge_times);
  const auto output_bytes = static_cast<double>(fs::file_size(out));

  // 3a. Plain SQL union of the event rows, median of 3.
  const std::string uni = dir.file("union.db");
  std::vector<double> union_times;
  for (int r = 0; r < kRepeats; ++r) {
    remove_db(uni);
    t0 = Clock::now();
    sql_union(fleet.paths, uni);
    union_times.push_back(seconds_since(t0));
  }
  const double union_s = median(union_times);
  const std::int64_t union_rows = interaction_rows(uni);
  remove_db(uni);

  // 4. Correctness: interactions, duplicates.
  std::unordered_set<std::string> distinct;
  for (const auto& p : fleet.paths) interaction_rows(p, &distinct);
  const auto distinct_n = static_cast<std::int64_t>(distinct.size());
  const std::int64_t merged_rows = interaction_rows(out);

  // 3b. Retraining: the merged file's learned decisions replayed into a fresh policy of the same kind.
  pl::store::Database merged_db = open_read_only(out);
  const auto merged_candidate = checkpoint(merged_db, "candidate");
  if (!merged_candidate) {
    std::cerr << "bench merge: the merged file has no candidate checkpoint (nothing was learned)\n";
    return 1;
  }
  const std::unique_ptr<pl::select::Policy> merged_policy = pl::select::make_policy_from_checkpoint(merged_candidate->state);
  struct Replay {
    Eigen::VectorXd x;
    std::string action;
    double reward, propensity;
  };
  std::vector<Replay> replay;
  {
    pl::store::Statement q(merged_db, "SELECT context, chosen_template || '@' || chosen_version, reward, propensity FROM "
                                      "decisions WHERE learned_into IS NOT NULL ORDER BY decision_id");
    while (q.step())
      replay.push_back({context_vector(q.column_text(0), merged_policy->dimension()), q.column_text(1),
                        q.column_double(2), q.column_double(3)});
  }
  std::unique_ptr<pl::select::Policy> fresh =
      pl::select::make_policy(merged_policy->name(), merged_policy->to_json()["parameters"], merged_policy->dimension());
  const std::vector<std::string> actions = merged_policy->actions();
  for (const auto& a : actions) fresh->add_action(a);
  const std::set<std::string> known(actions.begin(), actions.end());
  std::int64_t replayed = 0;
  t0 = Clock::now();
  for (const Replay& r : replay) {
    if (r.x.size() != fresh->dimension() || !known.count(r.action)) continue;
    fresh->update(r.x, r.action, r.reward, r.propensity);
    ++replayed;
  }
  const double retrain_s = seconds_since(t0);

  // The candidate part of the merge, redone alone.
  const CheckpointWork work = checkpoint_work(fleet.paths);
  std::vector<double> part_times;
  std::size_t part_bytes = 0;
  for (int r = 0; r < kRepeats; ++r) {
    t0 = Clock::now();
    part_bytes = merge_candidates(work).size();
    part_times.push_back(seconds_since(t0));
  }
  const double candidate_merge_s = median(part_times);
  std::int64_t part_downdates = 0;
  for (const auto& d : work.dropped) part_downdates += static_cast<std::int64_t>(d.size());

  // 5. The figures.
  const double merge_input_rows = static_cast<double>(fleet.stored_rows);
  emit("merge_s", merge_s, "s", union_s,
       {{"baseline_impl", "sql_union: ATTACH + INSERT OR IGNORE ... SELECT of interactions, performance, outcomes, "
                          "decisions into a fresh promptlearn file"},
        {"runs", merge_times},
        {"baseline_runs", union_times},
        {"baseline_rows", union_rows},
        {"decisions", report.decisions},
        {"dropped_decisions", report.dropped_decisions},
        {"rollups", report.rollups},
        {"rollup_hours_rebuilt", report.rollup_hours_rebuilt},
        {"duplicate_log_rows", report.duplicate_log_rows},
        {"users", report.users}});
  emit("sql_union_s", union_s, "s");
  emit("merge_rows_per_s", merge_input_rows / merge_s, "rows/s", merge_input_rows / union_s,
       {{"input_rows", fleet.stored_rows}, {"baseline_impl", "sql_union"}});
  emit("retrain_s", retrain_s, "s", std::nullopt,
       {{"decisions", replayed}, {"policy", merged_policy->name()}, {"dimension", merged_policy->dimension()}});
  emit("candidate_merge_s", candidate_merge_s, "s", retrain_s,
       {{"baseline_impl", "retrain"}, {"shards", shards}, {"downdates", part_downdates}, {"checkpoint_bytes", part_bytes}});
  emit("merge_vs_copy_plus_retrain", merge_s, "s", union_s + retrain_s,
       {{"baseline_impl", "sql_union_s + retrain_s"}});
  emit("interactions", static_cast<double>(merged_rows), "rows", std::nullopt,
       {{"expected", distinct_n}, {"report", report.interactions}, {"generated", rows}});
  emit("duplicates", static_cast<double>(report.duplicate_interactions), "interactions", std::nullopt,
       {{"expected", fleet.planted}});
  emit("downdates", static_cast<double>(report.downdates), "downdates", std::nullopt,
       {{"expected", work.expected_downdates}});
  const double merged_seen = seen_of(*merged_policy), fresh_seen = seen_of(*fresh);
  const std::int64_t kept_learned = merged_db.query_int("SELECT count(*) FROM decisions WHERE learned_into IS NOT NULL");
  emit("learned_decisions", merged_seen, "updates", std::nullopt,
       {{"expected", work.expected_learned}, {"merged_file_learned_rows", kept_learned}, {"retrained_seen", fresh_seen}});
  emit("output_bytes", output_bytes, "bytes");

  int status = 0;
  if (merged_rows != distinct_n || report.interactions != distinct_n || distinct_n != rows) {
    std::cerr << fmt::format("bench merge: the merged file has {} interactions (report: {}), the shards {} distinct ones "
                             "({} generated)\n",
                             merged_rows, report.interactions, distinct_n, rows);
    status = 1;
  }
  if (report.duplicate_interactions != fleet.planted) {
    std::cerr << fmt::format("bench merge: the merge found {} duplicate interactions, {} were planted\n",
                             report.duplicate_interactions, fleet.planted);
    status = 1;
  }
  if (merged_seen != static_cast<double>(work.expected_learned) || merged_seen != static_cast<double>(kept_learned)) {
    std::cerr << fmt::format("bench merge: the merged candidate learned {} updates; {} distinct learned decisions were "
                             "kept ({} learned rows in the merged file)\n",
                             merged_seen, work.expected_learned, kept_learned);
    status = 1;
  }
  if (report.downdates != work.expected_downdates)
    std::cerr << fmt::format("bench merge: warning: {} downdates, {} expected\n", report.downdates, work.expected_downdates);
  return status;
}
