// Merging shard files into one (docs/scale-out.md): events unioned, learned statistics merged.
#include "promptlearn/lifecycle/merge.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/features/keywords.hpp"
#include "promptlearn/lifecycle/policy_manager.hpp"
#include "promptlearn/monitor/metrics.hpp"
#include "promptlearn/select/factory.hpp"
#include "promptlearn/store/store.hpp"

namespace promptlearn {

nlohmann::json to_json(const MergeReport& r) {
  return {{"inputs", r.inputs},
          {"output", r.output},
          {"interactions", r.interactions},
          {"duplicate_interactions", r.duplicate_interactions},
          {"decisions", r.decisions},
          {"rollups", r.rollups},
          {"templates", r.templates},
          {"users", r.users},
          {"active_version", r.active_version},
          {"candidate_version", r.candidate_version},
          {"dropped_models", r.dropped_models}};
}

namespace {

namespace fs = std::filesystem;
constexpr const char* kPolicy = PolicyManager::kModelName;

std::optional<std::string> read_key_file(const std::string& db) {
  const std::string path = db + ".key";
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("merge: cannot read the key file '{}'", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string key = ss.str();
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) key.pop_back();
  return key;
}

/// The columns of `table` in the output file, without the rowid alias `skip` (re-numbered on insert).
std::vector<std::string> columns(store::Database& db, const std::string& table, const std::string& skip = "") {
  std::vector<std::string> out;
  store::Statement q(db, fmt::format("PRAGMA table_info({})", table));
  while (q.step())
    if (q.column_text(1) != skip) out.push_back(q.column_text(1));
  return out;
}

std::string joined(const std::vector<std::string>& cols, const std::string& prefix = "") {
  std::string s;
  for (std::size_t i = 0; i < cols.size(); ++i) s += (i ? ", " : "") + prefix + cols[i];
  return s;
}

std::string placeholders(std::size_t n) {
  std::string s;
  for (std::size_t i = 1; i <= n; ++i) s += (i > 1 ? ", ?" : "?") + std::to_string(i);
  return s;
}

/// Binds column `col` of the current row of `from` to parameter `index` of `to`, keeping its type.
void bind_column(store::Statement& to, int index, const store::Statement& from, int col) {
  switch (from.column_type(col)) {
    case 1: to.bind(index, from.column_int64(col)); break;
    case 2: to.bind(index, from.column_double(col)); break;
    case 3: to.bind(index, from.column_view(col)); break;
    case 4: to.bind_blob(index, from.column_blob(col)); break;
    default: to.bind_null(index); break;
  }
}

/// Copies every row of `table` (columns `cols`) from `src` with `insert` (an INSERT of the same columns,
/// in that order). Streams row by row. Returns {rows read, rows written}.
std::pair<std::int64_t, std::int64_t> copy_rows(store::Database& src, store::Database& out, const std::string& table,
                                                const std::vector<std::string>& cols, const std::string& insert_sql,
                                                const std::string& order = "") {
  store::Statement q(src, fmt::format("SELECT {} FROM {}{}", joined(cols), table, order));
  store::Statement ins(out, insert_sql);
  std::int64_t read = 0, written = 0;
  while (q.step()) {
    ++read;
    for (int c = 0; c < static_cast<int>(cols.size()); ++c) bind_column(ins, c + 1, q, c);
    ins.step();
    written += out.changes();
    ins.reset();
  }
  return {read, written};
}

std::string insert_sql(const std::string& verb, const std::string& table, const std::vector<std::string>& cols,
                       const std::string& tail = "") {
  return fmt::format("{} INTO {} ({}) VALUES ({}){}", verb, table, joined(cols), placeholders(cols.size()), tail);
}

nlohmann::json parse_object(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

std::set<std::int64_t> learned_into(const nlohmann::json& metrics) {
  std::set<std::int64_t> out;
  if (metrics.contains("learned_into") && metrics["learned_into"].is_array())
    for (const auto& v : metrics["learned_into"])
      if (v.is_number_integer()) out.insert(v.get<std::int64_t>());
  return out;
}

/// One shard's template_selection checkpoints (newest active and candidate rows).
struct ShardPolicy {
  std::optional<store::ModelRow> active, candidate;
  std::set<std::int64_t> active_into, candidate_into;
};

/// Merges checkpoints of several shards: Policy::merge for the state, the reward model's per-action
/// [n, sum] and trained_decisions added.
store::ModelRow merge_checkpoints(const std::vector<std::pair<std::string, const store::ModelRow*>>& rows,
                                  std::int64_t version, const std::string& status, const nlohmann::json& into,
                                  TimeMs now) {
  std::unique_ptr<select::Policy> merged;
  nlohmann::json reward_model = nlohmann::json::object();
  std::int64_t trained = 0;
  for (const auto& [shard, row] : rows) {
    std::unique_ptr<select::Policy> p;
    try {
      p = select::make_policy_from_checkpoint(row->state);
    } catch (const Error& e) {
      throw Error(fmt::format("merge: {}: models {} version {} is unreadable: {}", shard, kPolicy, row->version,
                              e.what()));
    }
    if (!p->mergeable())
      throw Error(fmt::format("merge: {}: models {} version {} holds a '{}' policy, which cannot be merged (only "
                              "the linear policies linucb, thompson, epsilon_greedy and softmax add up); retrain "
                              "the merged file instead",
                              shard, kPolicy, row->version, p->name()));
    if (!merged) {
      merged = std::move(p);
    } else {
      try {
        merged->merge(*p);
      } catch (const Error& e) {
        throw Error(fmt::format("merge: {}: models {} version {} cannot be merged with the earlier shards': {}", shard,
                                kPolicy, row->version, e.what()));
      }
    }
    nlohmann::json m = parse_object(row->metrics);
    trained += m.value("trained_decisions", std::int64_t{0});
    if (m.contains("reward_model") && m["reward_model"].is_object())
      for (auto it = m["reward_model"].begin(); it != m["reward_model"].end(); ++it) {
        if (!it.value().is_array() || it.value().size() != 2) continue;
        auto& cell = reward_model[it.key()];
        if (!cell.is_array()) cell = nlohmann::json::array({0, 0.0});
        cell[0] = cell[0].get<std::int64_t>() + it.value()[0].get<std::int64_t>();
        cell[1] = cell[1].get<double>() + it.value()[1].get<double>();
      }
  }
  store::ModelRow out;
  out.name = kPolicy;
  out.version = version;
  out.state = select::encode_checkpoint(*merged);
  out.status = status;
  out.created_at = now;
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& r : rows) shards.push_back({{"file", r.first}, {"version", r.second->version}});
  // gate / baseline_value / expected_value describe one shard's deployment and are not carried over: the
  // merged active has no rollback reference until its next deployment.
  out.metrics = nlohmann::json{{"reward_model", reward_model},
                               {"trained_decisions", trained},
                               {"learned_into", into},
                               {"merged_from", shards}}
                    .dump();
  return out;
}

}  // namespace

MergeReport merge_shards(const std::vector<std::string>& inputs, const std::string& output,
                         const MergeOptions& options) {
  if (inputs.empty()) throw Error("merge: no input files");
  if (output.empty()) throw Error("merge: no output file");
  std::error_code ec;
  for (const auto& in : inputs) {
    if (!fs::exists(in, ec)) throw Error(fmt::format("merge: input '{}' does not exist", in));
    if (fs::exists(output, ec) && fs::equivalent(in, output, ec))
      throw Error(fmt::format("merge: the output '{}' is also an input", output));
  }
  for (std::size_t i = 0; i < inputs.size(); ++i)
    for (std::size_t j = i + 1; j < inputs.size(); ++j)
      if (fs::equivalent(inputs[i], inputs[j], ec))
        throw Error(fmt::format("merge: '{}' is given twice (as '{}')", inputs[i], inputs[j]));
  if (fs::exists(output, ec) && !options.overwrite)
    throw Error(fmt::format("merge: the output '{}' already exists (use --force to replace it)", output));

  // Same keyed-hash ids across shards need the same privacy key.
  std::optional<std::string> key;
  std::string key_from;
  for (const auto& in : inputs) {
    auto k = read_key_file(in);
    if (!k) continue;
    if (!key) {
      key = k;
      key_from = in;
    } else if (*k != *key) {
      throw Error(fmt::format("merge: '{}.key' differs from '{}.key': shards hashed with different privacy keys "
                              "cannot be merged (the same user would have different ids)",
                              in, key_from));
    }
  }

  // Open the shards read-only and check they are promptlearn files of this schema version.
  std::vector<store::Database> shards;
  for (const auto& in : inputs) {
    store::OpenOptions oo;
    oo.create = false;
    oo.read_only = true;
    oo.wal = false;
    store::Database db(in, oo);
    store::check_ownership(db);
    const std::int64_t v = db.query_int("PRAGMA user_version");
    if (v != store::kSchemaVersion)
      throw Error(fmt::format("merge: '{}' has schema version {}, expected {} (open it once with this version of "
                              "promptlearn to migrate it)",
                              in, v, store::kSchemaVersion));
    shards.push_back(std::move(db));
  }

  const std::string tmp = fmt::format("{}.merge-tmp-{}", output, ::getpid());
  auto remove_tmp = [&] {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(tmp + suffix, ec);
  };
  remove_tmp();
  MergeReport report;
  report.inputs = inputs;
  report.output = output;
  const TimeMs now = SystemClock().now_ms();
  try {
    store::OpenOptions oo;
    oo.synchronous_full = false;  // durability comes from the rename after a complete, closed file
    store::Store out(tmp, oo);
    store::Database& o = out.db();
    store::Transaction tx(o);

    // --- events: union by interaction_id (the first shard wins), logs appended
    const auto ic = columns(o, "interactions");
    const auto pc = columns(o, "performance");
    const auto oc = columns(o, "outcomes");
    const auto pendc = columns(o, "pending_events", "id");
    const auto rejc = columns(o, "rejected_events", "id");
    for (auto& s : shards) {
      auto [read, written] = copy_rows(s, o, "interactions", ic, insert_sql("INSERT OR IGNORE", "interactions", ic));
      report.duplicate_interactions += read - written;
      copy_rows(s, o, "performance", pc, insert_sql("INSERT OR IGNORE", "performance", pc));
      copy_rows(s, o, "outcomes", oc, insert_sql("INSERT OR IGNORE", "outcomes", oc));
      copy_rows(s, o, "pending_events", pendc, insert_sql("INSERT", "pending_events", pendc), " ORDER BY id");
      copy_rows(s, o, "rejected_events", rejc, insert_sql("INSERT", "rejected_events", rejc), " ORDER BY id");
    }

    // --- templates: union; a version active in any shard is active
    const auto tc = columns(o, "templates");
    for (auto& s : shards)
      copy_rows(s, o, "templates", tc,
                insert_sql("INSERT", "templates", tc,
                           " ON CONFLICT (template_id, version) DO UPDATE SET status = CASE WHEN excluded.status = "
                           "'active' THEN 'active' ELSE templates.status END"));

    // --- template_selection checkpoints of each shard
    std::vector<ShardPolicy> policies(shards.size());
    for (std::size_t i = 0; i < shards.size(); ++i) {
      store::Statement q(shards[i], "SELECT version, state, metrics, status, created_at FROM models WHERE name = ?1 "
                                    "AND status IN ('active', 'candidate') ORDER BY version");
      q.bind(1, kPolicy);
      while (q.step()) {
        store::ModelRow m;
        m.name = kPolicy;
        m.version = q.column_int64(0);
        m.state = q.column_blob(1);
        m.metrics = q.is_null(2) ? "{}" : q.column_text(2);
        m.status = q.column_text(3);
        m.created_at = try_parse_rfc3339(q.column_text(4)).value_or(now);
        (m.status == "active" ? policies[i].active : policies[i].candidate) = std::move(m);  // newest wins
      }
      if (policies[i].active) policies[i].active_into = learned_into(parse_object(policies[i].active->metrics));
      if (policies[i].candidate)
        policies[i].candidate_into = learned_into(parse_object(policies[i].candidate->metrics));
    }
    const bool any_active = std::any_of(policies.begin(), policies.end(), [](auto& p) { return p.active.has_value(); });
    const bool any_candidate = std::any_of(policies.begin(), policies.end(),
                                           [](auto& p) { return p.candidate || p.active; });
    report.active_version = any_active ? 1 : 0;
    report.candidate_version = any_candidate ? (any_active ? 2 : 1) : 0;

    // --- decisions: new decision_ids; a decision is learned into the merged checkpoint that holds it
    const auto dc = columns(o, "decisions", "decision_id");
    const int learned_col = static_cast<int>(std::find(dc.begin(), dc.end(), "learned_into") - dc.begin());
    const int interaction_col = static_cast<int>(std::find(dc.begin(), dc.end(), "interaction_id") - dc.begin());
    o.exec("CREATE TEMP TABLE merge_seen (interaction_id TEXT PRIMARY KEY) WITHOUT ROWID");
    for (std::size_t i = 0; i < shards.size(); ++i) {
      // Interactions decided in an earlier shard are not taken again (duplicates across shards).
      o.exec("INSERT OR IGNORE INTO temp.merge_seen SELECT DISTINCT interaction_id FROM main.decisions");
      store::Statement seen(o, "SELECT 1 FROM temp.merge_seen WHERE interaction_id = ?1");
      store::Statement q(shards[i], fmt::format("SELECT {} FROM decisions ORDER BY decision_id", joined(dc)));
      store::Statement ins(o, insert_sql("INSERT", "decisions", dc));
      while (q.step()) {
        seen.bind(1, q.column_view(interaction_col));
        const bool dup = seen.step();
        seen.reset();
        if (dup) continue;
        for (int c = 0; c < static_cast<int>(dc.size()); ++c) {
          if (c == learned_col && !q.is_null(c)) {
            const std::int64_t v = q.column_int64(c);
            if (policies[i].active_into.count(v) && report.active_version)
              ins.bind(c + 1, report.active_version);
            else if ((policies[i].candidate_into.count(v) || policies[i].active_into.count(v)) &&
                     report.candidate_version)
              ins.bind(c + 1, report.candidate_version);
            else
              ins.bind_null(c + 1);
            continue;
          }
          bind_column(ins, c + 1, q, c);
        }
        ins.run();
      }
    }
    o.exec("DROP TABLE temp.merge_seen");

    // --- learned statistics, merged (not retrained)
    if (report.active_version) {
      std::vector<std::pair<std::string, const store::ModelRow*>> rows;
      for (std::size_t i = 0; i < shards.size(); ++i)
        if (policies[i].active) rows.emplace_back(inputs[i], &*policies[i].active);
      out.put_model(merge_checkpoints(rows, report.active_version, "active", nlohmann::json::array({1}), now));
    }
    if (report.candidate_version) {
      std::vector<std::pair<std::string, const store::ModelRow*>> rows;
      for (std::size_t i = 0; i < shards.size(); ++i) {
        const auto& p = policies[i];
        if (p.candidate || p.active) rows.emplace_back(inputs[i], p.candidate ? &*p.candidate : &*p.active);
      }
      nlohmann::json into = nlohmann::json::array();
      if (report.active_version) into.push_back(report.active_version);
      into.push_back(report.candidate_version);
      out.put_model(merge_checkpoints(rows, report.candidate_version, "candidate", into, now));
    }
    for (auto& s : shards) {
      store::Statement q(s, "SELECT DISTINCT name FROM models WHERE name <> ?1 ORDER BY name");
      q.bind(1, kPolicy);
      while (q.step()) {
        std::string n = q.column_text(0);
        if (std::find(report.dropped_models.begin(), report.dropped_models.end(), n) == report.dropped_models.end())
          report.dropped_models.push_back(n);
      }
    }

    // Per-user statistics: sums (decayed sums of user_template_stats too), latest time.
    const auto uc = columns(o, "user_stats");
    for (auto& s : shards)
      copy_rows(s, o, "user_stats", uc,
                insert_sql("INSERT", "user_stats", uc,
                           " ON CONFLICT (user_id) DO UPDATE SET interactions = interactions + excluded.interactions, "
                           "reward_sum = reward_sum + excluded.reward_sum, reward_count = reward_count + "
                           "excluded.reward_count, last_seen = max(last_seen, excluded.last_seen)"));
    const auto utc = columns(o, "user_template_stats");
    for (auto& s : shards)
      copy_rows(s, o, "user_template_stats", utc,
                insert_sql("INSERT", "user_template_stats", utc,
                           " ON CONFLICT (user_id, template_key) DO UPDATE SET weight = weight + excluded.weight, "
                           "reward_sum = reward_sum + excluded.reward_sum, updated_at = max(updated_at, "
                           "excluded.updated_at)"));

    // Metric rollups: the same bucket's windows merged (exact: counts add, sketches merge).
    {
      store::Statement get(o, "SELECT window FROM metric_rollups WHERE granularity = ?1 AND bucket_start = ?2");
      store::Statement put(o, "INSERT OR REPLACE INTO metric_rollups (granularity, bucket_start, requests, window, "
                              "updated_at) VALUES (?1, ?2, ?3, ?4, ?5)");
      for (std::size_t i = 0; i < shards.size(); ++i) {
        store::Statement q(shards[i], "SELECT granularity, bucket_start, window, updated_at FROM metric_rollups");
        while (q.step()) {
          const std::string g = q.column_text(0), bucket = q.column_text(1);
          auto read = [&](const std::string& blob, const std::string& file) {
            try {
              return monitor::MetricsWindow::from_bytes(blob);
            } catch (const Error& e) {
              throw Error(fmt::format("merge: {}: metric_rollups {} {} is unreadable: {}", file, g, bucket, e.what()));
            }
          };
          monitor::MetricsWindow w = read(q.column_blob(2), inputs[i]);
          std::string updated = q.column_text(3);
          get.bind(1, g).bind(2, bucket);
          if (get.step()) {
            monitor::MetricsWindow have = read(get.column_blob(0), output);
            have.merge(w);
            w = std::move(have);
          }
          get.reset();
          put.bind(1, g).bind(2, bucket).bind(3, static_cast<std::int64_t>(w.requests())).bind_blob(4, w.to_bytes());
          put.bind(5, format_rfc3339(now));
          put.run();
        }
      }
    }

    // Corpus statistics (TF-IDF document frequencies): merged.
    {
      std::optional<features::CorpusStats> corpus;
      for (std::size_t i = 0; i < shards.size(); ++i) {
        store::Statement q(shards[i], "SELECT buckets FROM corpus_stats WHERE name = 'prompts'");
        if (!q.step()) continue;
        features::CorpusStats c = features::CorpusStats::from_blob(q.column_blob(0));
        if (!corpus)
          corpus = std::move(c);
        else
          corpus->merge(c);
      }
      if (corpus) out.put_corpus_blob(corpus->to_blob(), static_cast<std::int64_t>(corpus->documents()), now);
    }

    // Experiments, studies, settings: the first shard's row wins; history (audit, analysis results,
    // alerts) appended. job_runs and job_leases belong to the processes of a shard: not copied.
    for (const char* t : {"ab_tests", "ab_assignments", "studies", "study_trials", "settings"}) {
      const auto cols = columns(o, t);
      for (auto& s : shards) copy_rows(s, o, t, cols, insert_sql("INSERT OR IGNORE", t, cols));
    }
    // The predictive models were not carried over: the retraining job runs at the next run_due_jobs (as
    // after erase_user, src/engine/lifecycle.cpp).
    if (!report.dropped_models.empty()) o.exec("DELETE FROM settings WHERE key = 'jobs.model_retraining.last_run'");
    for (const char* t : {"audit_log", "patterns", "anomalies", "alerts"}) {
      const auto cols = columns(o, t, "id");
      for (auto& s : shards) copy_rows(s, o, t, cols, insert_sql("INSERT", t, cols), " ORDER BY id");
    }

    report.interactions = o.query_int("SELECT count(*) FROM interactions");
    report.decisions = o.query_int("SELECT count(*) FROM decisions");
    report.rollups = o.query_int("SELECT count(*) FROM metric_rollups");
    report.templates = o.query_int("SELECT count(*) FROM templates");
    report.users = o.query_int("SELECT count(*) FROM user_stats");
    nlohmann::json details = to_json(report);
    details.erase("output");
    out.audit(now, "cli", "merge", details.dump());
    tx.commit();
  } catch (...) {
    remove_tmp();
    throw;
  }
  shards.clear();
  if (options.overwrite)
    for (const char* suffix : {"-wal", "-shm"}) fs::remove(output + suffix, ec);
  fs::rename(tmp, output, ec);
  if (ec) {
    remove_tmp();
    throw Error(fmt::format("merge: cannot rename '{}' to '{}': {}", tmp, output, ec.message()));
  }
  if (key && !fs::exists(output + ".key", ec)) {
    // The shards' key, so the merged file's ids stay erasable (mode 0600 from creation on).
    const std::string kp = output + ".key";
    const int fd = ::open(kp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw Error(fmt::format("merge: cannot create the key file '{}'", kp));
    const std::string text = *key + "\n";
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    if (!ok) throw Error(fmt::format("merge: cannot write the key file '{}'", kp));
  }
  return report;
}

}  // namespace promptlearn
