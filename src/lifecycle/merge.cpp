// Merging shard files into one (docs/scale-out.md): events unioned, learned statistics merged.
#include "promptlearn/lifecycle/merge.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <sstream>
#include <nlohmann/json.hpp>

#include <Eigen/Core>

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include "../engine/monitoring.hpp"
#include "../engine/setting_keys.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/core/records.hpp"
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
          {"dropped_decisions", r.dropped_decisions},
          {"duplicate_log_rows", r.duplicate_log_rows},
          {"downdates", r.downdates},
          {"pending_resolved", r.pending_resolved},
          {"rollup_hours_rebuilt", r.rollup_hours_rebuilt},
          {"rollup_hours_inexact", r.rollup_hours_inexact},
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
/// `on_ignored` sees each source row the insert did not write (an INSERT OR IGNORE's duplicate).
std::pair<std::int64_t, std::int64_t> copy_rows(
    store::Database& src, store::Database& out, const std::string& table, const std::vector<std::string>& cols,
    const std::string& insert_sql, const std::string& order = "",
    const std::function<void(const store::Statement&)>& on_ignored = nullptr) {
  store::Statement q(src, fmt::format("SELECT {} FROM {}{}", joined(cols), table, order));
  store::Statement ins(out, insert_sql);
  std::int64_t read = 0, written = 0;
  while (q.step()) {
    ++read;
    for (int c = 0; c < static_cast<int>(cols.size()); ++c) bind_column(ins, c + 1, q, c);
    ins.step();
    const auto changed = out.changes();
    written += changed;
    if (changed == 0 && on_ignored) on_ignored(q);
    ins.reset();
  }
  return {read, written};
}

/// A 128-bit digest of the first `n` columns of the current row (types and bytes).
std::string row_digest(const store::Statement& q, int n) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 16);
  for (int c = 0; c < n; ++c) {
    // Read in the column's own type: a conversion (sqlite3_column_blob of a REAL) would change what
    // bind_column copies afterwards.
    const int type = q.column_type(c);
    std::string bytes;
    if (type == 1) {
      const std::int64_t v = q.column_int64(c);
      bytes.assign(reinterpret_cast<const char*>(&v), sizeof v);
    } else if (type == 2) {
      const double v = q.column_double(c);
      bytes.assign(reinterpret_cast<const char*>(&v), sizeof v);
    } else if (type == 3 || type == 4) {
      bytes = q.column_blob(c);
    }
    const unsigned char head[2] = {static_cast<unsigned char>(type), 0};
    const std::uint64_t len = bytes.size();
    crypto_generichash_update(&st, head, sizeof head);
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(&len), sizeof len);
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  }
  unsigned char out[16];
  crypto_generichash_final(&st, out, sizeof out);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

std::string insert_sql(const std::string& verb, const std::string& table, const std::vector<std::string>& cols,
                       const std::string& tail = "") {
  return fmt::format("{} INTO {} ({}) VALUES ({}){}", verb, table, joined(cols), placeholders(cols.size()), tail);
}

/// Appends every shard's rows of a log table (columns `cols`, new ids). A row identical in every column to
/// one an earlier shard gave (up to as many times as one shard gave it) is the same event seen through a
/// copy of that shard (a replica, a restored backup): dropped, shown to `on_dropped`. Returns the drops.
std::int64_t append_log(std::vector<store::Database>& shards, store::Database& out, const std::string& table,
                        const std::vector<std::string>& cols,
                        const std::function<void(const store::Statement&)>& on_dropped = nullptr) {
  std::unordered_map<std::string, std::int64_t> earlier;  // row digest -> most copies in one earlier shard
  std::int64_t dropped = 0;
  store::Statement ins(out, insert_sql("INSERT", table, cols));
  const int n = static_cast<int>(cols.size());
  for (auto& s : shards) {
    std::unordered_map<std::string, std::int64_t> mine;
    store::Statement q(s, fmt::format("SELECT {} FROM {} ORDER BY id", joined(cols), table));
    while (q.step()) {
      const std::string key = row_digest(q, n);
      const std::int64_t copy = ++mine[key];
      if (auto it = earlier.find(key); it != earlier.end() && copy <= it->second) {
        ++dropped;
        if (on_dropped) on_dropped(q);
        continue;
      }
      for (int c = 0; c < n; ++c) bind_column(ins, c + 1, q, c);
      ins.run();
    }
    for (const auto& [key, copies] : mine) earlier[key] = std::max(earlier[key], copies);
  }
  return dropped;
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

/// A shard's decision that is not kept because another shard's decisions of the same interaction are: what
/// it taught its shard (the checkpoints that learned it, its user's statistics) comes out of the merge.
struct DroppedDecision {
  std::size_t shard = 0;
  std::int64_t decision_id = 0;
  std::string context, action, user_id;  ///< user_id empty: none
  double reward = 0;
  std::optional<std::int64_t> learned_into;  ///< the shard's candidate version that learned it
  double template_weight = 1;  ///< its weight in its shard's user_template_stats row (0.9^later updates)
};

/// One shard's template_selection checkpoints (newest active and candidate rows).
struct ShardPolicy {
  std::optional<store::ModelRow> active, candidate;
  std::set<std::int64_t> active_into, candidate_into;
};

/// One shard's checkpoint to merge and the dropped decisions it learned (to take out first).
struct CheckpointPart {
  std::string shard;
  const store::ModelRow* row = nullptr;
  std::vector<const DroppedDecision*> forget;
};

/// Merges checkpoints of several shards: Policy::merge for the state, the reward model's per-action
/// [n, sum] and trained_decisions added. Each part's dropped decisions are first taken out of its state
/// (exact rank-1 downdates, Policy::downdate) and out of its reward model and count; `downdates` counts them.
store::ModelRow merge_checkpoints(const std::vector<CheckpointPart>& parts, std::int64_t version,
                                  const std::string& status, const nlohmann::json& into, TimeMs now,
                                  std::int64_t& downdates) {
  std::unique_ptr<select::Policy> merged;
  nlohmann::json reward_model = nlohmann::json::object();
  std::int64_t trained = 0;
  for (const CheckpointPart& part : parts) {
    const std::string& shard = part.shard;
    const store::ModelRow* row = part.row;
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
    for (const DroppedDecision* d : part.forget) {
      bool ok = false;
      try {
        const Eigen::VectorXd x = select::context_from_json(d->context, p->dimension());
        ok = x.size() == p->dimension() && p->downdate(x, d->action, d->reward);
      } catch (const Error&) {
        ok = false;  // reported below
      }
      if (!ok)
        throw Error(fmt::format("merge: {}: decision {} (its interaction was decided in another shard too) cannot "
                                "be taken out of models {} version {}",
                                shard, d->decision_id, kPolicy, row->version));
      ++downdates;
    }
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
    trained += m.value("trained_decisions", std::int64_t{0}) - static_cast<std::int64_t>(part.forget.size());
    if (m.contains("reward_model") && m["reward_model"].is_object())
      for (auto it = m["reward_model"].begin(); it != m["reward_model"].end(); ++it) {
        if (!it.value().is_array() || it.value().size() != 2) continue;
        auto& cell = reward_model[it.key()];
        if (!cell.is_array()) cell = nlohmann::json::array({0, 0.0});
        cell[0] = cell[0].get<std::int64_t>() + it.value()[0].get<std::int64_t>();
        cell[1] = cell[1].get<double>() + it.value()[1].get<double>();
      }
    for (const DroppedDecision* d : part.forget)
      if (reward_model.contains(d->action) && reward_model[d->action].is_array()) {
        auto& cell = reward_model[d->action];
        cell[0] = std::max<std::int64_t>(0, cell[0].get<std::int64_t>() - 1);
        cell[1] = cell[1].get<double>() - d->reward;
      }
  }
  store::ModelRow out;
  out.name = kPolicy;
  out.version = version;
  out.state = select::encode_checkpoint(*merged);
  out.status = status;
  out.created_at = now;
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& part : parts) shards.push_back({{"file", part.shard}, {"version", part.row->version}});
  // gate / baseline_value / expected_value describe one shard's deployment and are not carried over: the
  // merged active has no rollback reference until its next deployment.
  out.metrics = nlohmann::json{{"reward_model", reward_model},
                               {"trained_decisions", trained},
                               {"learned_into", into},
                               {"merged_from", shards}}
                    .dump();
  return out;
}

/// The end of the hours a file has rolled up (nullopt: none yet).
std::optional<TimeMs> rolled_up_until(store::Database& db) {
  store::Statement q(db, "SELECT value FROM settings WHERE key = ?1");
  q.bind(1, setting_keys::kRolledUpUntil);
  if (!q.step()) return std::nullopt;
  return try_parse_rfc3339(q.column_view(0));
}

/// Raw rows (performance reports and rejected events: the requests of a rollup) of [from, from + 1 h).
std::int64_t raw_requests(store::Database& db, TimeMs from) {
  store::Statement q(db, "SELECT (SELECT count(*) FROM performance WHERE timestamp >= ?1 AND timestamp < ?2) + "
                         "(SELECT count(*) FROM rejected_events WHERE received_at >= ?1 AND received_at < ?2)");
  q.bind(1, format_rfc3339(from)).bind(2, format_rfc3339(from + monitoring::kHourMs));
  return q.step() ? q.column_int64(0) : 0;
}

/// The requests of one rolled-up hour of a file (0: no row).
std::int64_t rolled_requests(store::Database& db, TimeMs hour) {
  store::Statement q(db, "SELECT requests FROM metric_rollups WHERE granularity = 'hour' AND bucket_start = ?1");
  q.bind(1, format_rfc3339(hour));
  return q.step() ? q.column_int64(0) : 0;
}

/// The hourly rollups merged bucket by bucket are wrong in three cases: an hour with duplicate performance
/// reports (counted in each shard), an hour one shard had rolled up and another had not yet (the merged
/// file's rolled_up_until is the latest shard's, so the rollups job would never add the other's rows), and
/// an hour whose pending reports the merge applied. Those hours are rebuilt from the merged raw rows when
/// every shard still holds the raw rows of what it rolled up (retention deletes raw rows before their
/// rollups); the others stay as merged and are counted in rollup_hours_inexact.
void rebuild_rollups(std::vector<store::Database>& shards, store::Store& out,
                     const std::map<TimeMs, std::int64_t>& duplicate_hours, const std::set<TimeMs>& resolved_hours,
                     TimeMs now, MergeReport& report) {
  std::vector<std::optional<TimeMs>> until(shards.size());
  std::optional<TimeMs> latest;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    until[i] = rolled_up_until(shards[i]);
    if (until[i]) latest = latest ? std::max(*latest, *until[i]) : *until[i];
  }
  if (!latest) return;  // no shard has rolled anything up: the rollups job starts from the raw rows
  std::set<TimeMs> hours;
  for (const auto& [h, n] : duplicate_hours)
    if (h < *latest) hours.insert(h);
  for (TimeMs h : resolved_hours)
    if (h < *latest) hours.insert(h);
  // Hours before `latest` that a shard has not rolled up: from its rolled_up_until (or its first raw row).
  for (std::size_t i = 0; i < shards.size(); ++i) {
    std::optional<TimeMs> from = until[i];
    if (!from) {
      store::Statement q(shards[i], "SELECT min(t) FROM (SELECT min(timestamp) AS t FROM performance UNION ALL SELECT "
                                    "min(received_at) FROM rejected_events)");
      if (q.step() && !q.is_null(0))
        if (auto t = try_parse_rfc3339(q.column_view(0))) from = monitoring::hour_of(*t);
    }
    if (!from) continue;
    // Only hours with raw rows in the shard need it (an idle shard's gap can be long).
    store::Statement q(shards[i], "SELECT DISTINCT substr(t, 1, 13) FROM (SELECT timestamp AS t FROM performance WHERE "
                                  "timestamp >= ?1 AND timestamp < ?2 UNION ALL SELECT received_at FROM "
                                  "rejected_events WHERE received_at >= ?1 AND received_at < ?2)");
    q.bind(1, format_rfc3339(*from)).bind(2, format_rfc3339(*latest));
    while (q.step())
      if (auto t = try_parse_rfc3339(q.column_text(0) + ":00:00Z"); t && *t >= *from && *t < *latest) hours.insert(*t);
  }
  std::vector<TimeMs> rebuild;
  for (TimeMs h : hours) {
    bool complete = true;
    for (std::size_t i = 0; i < shards.size() && complete; ++i)
      if (until[i] && h < *until[i]) complete = raw_requests(shards[i], h) >= rolled_requests(shards[i], h);
    if (complete)
      rebuild.push_back(h);
    else
      ++report.rollup_hours_inexact;
  }
  if (!rebuild.empty()) monitoring::roll_up_hours(out, rebuild, now);
  report.rollup_hours_rebuilt = static_cast<std::int64_t>(rebuild.size());
  out.put_setting(setting_keys::kRolledUpUntil, format_rfc3339(*latest), now);
}

}  // namespace

MergeReport merge_shards(const std::vector<std::string>& inputs, const std::string& output,
                         const MergeOptions& options) {
  if (inputs.empty()) throw Error("merge: no input files");
  if (sodium_init() < 0) throw Error("merge: libsodium cannot be initialised (row digests)");
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
  for (const auto& in : inputs) shards.push_back(store::open_read_only(in));

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
    // Duplicates (kept from the first shard) were counted in their own shard too: their users' interaction
    // counts and the hours their performance reports were rolled up into are corrected below.
    const int ic_user = static_cast<int>(std::find(ic.begin(), ic.end(), "user_id") - ic.begin());
    const int pc_time = static_cast<int>(std::find(pc.begin(), pc.end(), "timestamp") - pc.begin());
    const int ic_id = static_cast<int>(std::find(ic.begin(), ic.end(), "interaction_id") - ic.begin());
    std::vector<std::string> duplicate_users;  // one entry per duplicate interaction with a user
    std::vector<std::string> duplicate_ids;
    std::map<TimeMs, std::int64_t> duplicate_hours;  // hour start -> duplicate performance reports
    for (auto& s : shards) {
      auto [read, written] =
          copy_rows(s, o, "interactions", ic, insert_sql("INSERT OR IGNORE", "interactions", ic), "",
                    [&](const store::Statement& row) {
                      duplicate_ids.push_back(row.column_text(ic_id));
                      if (!row.is_null(ic_user)) duplicate_users.push_back(row.column_text(ic_user));
                    });
      report.duplicate_interactions += read - written;
      copy_rows(s, o, "performance", pc, insert_sql("INSERT OR IGNORE", "performance", pc), "",
                [&](const store::Statement& row) {
                  if (auto t = try_parse_rfc3339(row.column_view(pc_time)))
                    ++duplicate_hours[monitoring::hour_of(*t)];
                });
      copy_rows(s, o, "outcomes", oc, insert_sql("INSERT OR IGNORE", "outcomes", oc));
    }
    report.duplicate_log_rows += append_log(shards, o, "pending_events", pendc);
    const int rej_time = static_cast<int>(std::find(rejc.begin(), rejc.end(), "received_at") - rejc.begin());
    report.duplicate_log_rows += append_log(shards, o, "rejected_events", rejc, [&](const store::Statement& row) {
      if (auto t = try_parse_rfc3339(row.column_view(rej_time))) ++duplicate_hours[monitoring::hour_of(*t)];
    });

    // A duplicate's hour counts it twice in the merged rollups even where a shard no longer has its raw
    // performance row (retention): the hour of the row that is kept.
    {
      store::Statement q(o, "SELECT timestamp FROM performance WHERE interaction_id = ?1");
      for (const auto& id : duplicate_ids) {
        q.bind(1, id);
        if (q.step())
          if (auto t = try_parse_rfc3339(q.column_view(0))) duplicate_hours.emplace(monitoring::hour_of(*t), 0);
        q.reset();
      }
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

    // --- decisions: new decision_ids; a decision is learned into the merged checkpoint that holds it. An
    // interaction decided in several shards keeps the decisions of one of them: the shard that learned from
    // it, else one that has its reward, else the first. What the others' decisions taught their shard is
    // taken out of the merged statistics below (dropped).
    const auto dc = columns(o, "decisions", "decision_id");
    auto col = [&](const char* name) { return static_cast<int>(std::find(dc.begin(), dc.end(), name) - dc.begin()); };
    const int learned_col = col("learned_into"), interaction_col = col("interaction_id"), reward_col = col("reward");
    const int context_col = col("context"), template_col = col("chosen_template"), version_col = col("chosen_version");
    o.exec("CREATE TEMP TABLE merge_choice (interaction_id TEXT PRIMARY KEY, shard INTEGER NOT NULL, rank INTEGER NOT "
           "NULL) WITHOUT ROWID");
    {
      store::Statement put(o, "INSERT INTO temp.merge_choice VALUES (?1, ?2, ?3) ON CONFLICT (interaction_id) DO "
                              "UPDATE SET shard = excluded.shard, rank = excluded.rank WHERE excluded.rank > rank");
      // Rank of a shard's decisions of one interaction: 2 when a checkpoint being merged learned one of
      // them (a decision learned into a retired version only is history), + 1 when one has its reward.
      for (std::size_t i = 0; i < shards.size(); ++i) {
        const auto& pol = policies[i];
        auto held = [&](std::int64_t v) { return pol.active_into.count(v) > 0 || pol.candidate_into.count(v) > 0; };
        store::Statement q(shards[i], "SELECT interaction_id, learned_into, reward IS NOT NULL FROM decisions ORDER "
                                      "BY interaction_id");
        std::string current;
        std::int64_t rank = -1;
        auto flush = [&] {
          if (rank < 0) return;
          put.bind(1, current).bind(2, static_cast<std::int64_t>(i)).bind(3, rank);
          put.run();
        };
        while (q.step()) {
          if (rank < 0 || q.column_view(0) != current) {
            flush();
            current = q.column_text(0);
            rank = 0;
          }
          const std::int64_t r = (!q.is_null(1) && held(q.column_int64(1)) ? 2 : 0) + (q.column_int64(2) != 0 ? 1 : 0);
          rank = std::max(rank, r);
        }
        flush();
      }
    }
    std::vector<DroppedDecision> dropped;  // those with a reward (the others taught nothing)
    for (std::size_t i = 0; i < shards.size(); ++i) {
      store::Statement choice(o, "SELECT shard FROM temp.merge_choice WHERE interaction_id = ?1");
      store::Statement q(shards[i], fmt::format("SELECT {}, d.decision_id, i.user_id FROM decisions d LEFT JOIN "
                                                "interactions i ON i.interaction_id = d.interaction_id ORDER BY "
                                                "d.decision_id",
                                                joined(dc, "d.")));
      const int id_col = static_cast<int>(dc.size()), user_col = id_col + 1;
      store::Statement ins(o, insert_sql("INSERT", "decisions", dc));
      while (q.step()) {
        choice.bind(1, q.column_view(interaction_col));
        const bool keep = choice.step() && choice.column_int64(0) == static_cast<std::int64_t>(i);
        choice.reset();
        if (!keep) {
          ++report.dropped_decisions;
          if (q.is_null(reward_col)) continue;
          DroppedDecision d;
          d.shard = i;
          d.decision_id = q.column_int64(id_col);
          d.context = q.column_text(context_col);
          d.action = q.column_text(template_col) + "@" + q.column_text(version_col);
          d.user_id = q.is_null(user_col) ? "" : q.column_text(user_col);
          d.reward = q.column_double(reward_col);
          if (!q.is_null(learned_col)) d.learned_into = q.column_int64(learned_col);
          dropped.push_back(std::move(d));
          continue;
        }
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
    o.exec("DROP TABLE temp.merge_choice");
    // The dropped decisions a shard's checkpoint learned (those learned into a version it lists).
    auto forget_of = [&](std::size_t shard, const std::set<std::int64_t>& into) {
      std::vector<const DroppedDecision*> out;
      for (const auto& d : dropped)
        if (d.shard == shard && d.learned_into && into.count(*d.learned_into)) out.push_back(&d);
      return out;
    };

    // --- learned statistics, merged (not retrained)
    if (report.active_version) {
      std::vector<CheckpointPart> parts;
      for (std::size_t i = 0; i < shards.size(); ++i)
        if (policies[i].active) parts.push_back({inputs[i], &*policies[i].active, forget_of(i, policies[i].active_into)});
      out.put_model(merge_checkpoints(parts, report.active_version, "active", nlohmann::json::array({1}), now,
                                      report.downdates));
    }
    if (report.candidate_version) {
      std::vector<CheckpointPart> parts;
      for (std::size_t i = 0; i < shards.size(); ++i) {
        const auto& p = policies[i];
        if (p.candidate)
          parts.push_back({inputs[i], &*p.candidate, forget_of(i, p.candidate_into)});
        else if (p.active)
          parts.push_back({inputs[i], &*p.active, forget_of(i, p.active_into)});
      }
      nlohmann::json into = nlohmann::json::array();
      if (report.active_version) into.push_back(report.active_version);
      into.push_back(report.candidate_version);
      out.put_model(merge_checkpoints(parts, report.candidate_version, "candidate", into, now, report.downdates));
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
    // Duplicates were counted in their own shard: a duplicate interaction once more in its user's count, a
    // dropped decision's reward once more in its user's sums. user_template_stats holds decayed sums (each
    // update multiplies the earlier ones by 0.9): a dropped reward weighs 0.9^k there, k = the updates of
    // that user and template after it in its shard (in decision order, the order the learning job takes).
    {
      store::Statement fix(o, "UPDATE user_stats SET interactions = max(0, interactions - 1) WHERE user_id = ?1");
      for (const auto& u : duplicate_users) {
        fix.bind(1, u);
        fix.run();
      }
      store::Statement fix_reward(o, "UPDATE user_stats SET reward_sum = reward_sum - ?2, reward_count = max(0, "
                                     "reward_count - 1) WHERE user_id = ?1");
      store::Statement fix_template(o, "UPDATE user_template_stats SET weight = weight - ?3, reward_sum = reward_sum - "
                                       "?4 WHERE user_id = ?1 AND template_key = ?2");
      // The weights: one pass over each shard's rewarded decisions, newest first, counting per
      // (user, template) the updates seen so far.
      for (std::size_t i = 0; i < shards.size(); ++i) {
        std::map<std::int64_t, DroppedDecision*> of_shard;
        for (auto& d : dropped)
          if (d.shard == i && !d.user_id.empty()) of_shard[d.decision_id] = &d;
        if (of_shard.empty()) continue;
        std::map<std::pair<std::string, std::string>, std::int64_t> later;
        store::Statement q(shards[i], "SELECT d.decision_id, i.user_id, d.chosen_template || '@' || d.chosen_version "
                                      "FROM decisions d JOIN interactions i ON i.interaction_id = d.interaction_id "
                                      "WHERE d.reward IS NOT NULL AND i.user_id IS NOT NULL ORDER BY d.decision_id DESC");
        while (q.step()) {
          std::int64_t& n = later[{q.column_text(1), q.column_text(2)}];
          if (auto it = of_shard.find(q.column_int64(0)); it != of_shard.end())
            it->second->template_weight = std::pow(0.9, static_cast<double>(n));
          ++n;
        }
      }
      for (const auto& d : dropped) {
        if (d.user_id.empty()) continue;
        fix_reward.bind(1, d.user_id).bind(2, d.reward);
        fix_reward.run();
        const double w = d.template_weight;
        fix_template.bind(1, d.user_id).bind(2, d.action).bind(3, w).bind(4, w * d.reward);
        fix_template.run();
      }
      o.exec("DELETE FROM user_template_stats WHERE weight < 1e-9");
    }

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
    if (!report.dropped_models.empty()) {
      store::Statement del(o, "DELETE FROM settings WHERE key = ?1");
      del.bind(1, setting_keys::kModelsLastRun);
      del.run();
    }
    for (const char* t : {"audit_log", "patterns", "anomalies", "alerts"})
      report.duplicate_log_rows += append_log(shards, o, t, columns(o, t, "id"));

    // Reports that waited in one shard for an interaction recorded in another are applied now.
    std::set<TimeMs> resolved_hours;
    {
      store::Statement q(o, "SELECT p.id, p.kind, p.payload, i.timestamp, p.interaction_id FROM pending_events p JOIN "
                            "interactions i ON i.interaction_id = p.interaction_id ORDER BY p.id");
      store::Statement del(o, "DELETE FROM pending_events WHERE id = ?1");
      store::Statement perf_time(o, "SELECT timestamp FROM performance WHERE interaction_id = ?1");
      std::vector<std::int64_t> done;
      while (q.step()) {
        Event e;
        try {
          e = parse_event_text(q.column_view(2));
        } catch (const Error&) {
          continue;  // a payload this version does not read: it stays pending, as it was in its shard
        }
        const std::string kind = q.column_text(1), id = q.column_text(4);
        const TimeMs ts = e.timestamp.value_or(try_parse_rfc3339(q.column_view(3)).value_or(now));
        if (kind == "performance" && e.performance_metrics) {
          out.upsert_performance(id, ts, *e.performance_metrics, now);
          resolved_hours.insert(monitoring::hour_of(ts));
        } else if (kind == "outcome" && e.outcome_data) {
          out.upsert_outcome(id, ts, *e.outcome_data, now);
          perf_time.bind(1, id);
          if (perf_time.step())  // its response time is part of the performance report's hour
            if (auto t = try_parse_rfc3339(perf_time.column_view(0))) resolved_hours.insert(monitoring::hour_of(*t));
          perf_time.reset();
        } else {
          continue;
        }
        done.push_back(q.column_int64(0));
      }
      for (std::int64_t id : done) {
        del.bind(1, id);
        del.run();
      }
      report.pending_resolved = static_cast<std::int64_t>(done.size());
    }

    // Rollups: hours the merged sums got wrong are rebuilt from the raw rows, where those are complete.
    rebuild_rollups(shards, out, duplicate_hours, resolved_hours, now, report);

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
