// Retention, export and erasure of one user's rows (see lifecycle/data_lifecycle.hpp).
#include "promptlearn/lifecycle/data_lifecycle.hpp"

#include <fmt/format.h>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/privacy/protector.hpp"
#include "promptlearn/store/store.hpp"

namespace promptlearn {

nlohmann::json to_json(const RetentionReport& r) {
  return {{"interactions_before", format_rfc3339(r.interactions_before)},
          {"performance_before", format_rfc3339(r.performance_before)},
          {"patterns_before", format_rfc3339(r.patterns_before)},
          {"deleted",
           {{"interactions", r.interactions}, {"decisions", r.decisions}, {"pending_events", r.pending_events},
            {"rejected_events", r.rejected_events}, {"ab_assignments", r.ab_assignments}, {"anomalies", r.anomalies},
            {"patterns", r.patterns}, {"user_rows", r.user_rows}, {"rollups", r.rollups}, {"alerts", r.alerts},
            {"job_runs", r.job_runs}, {"checkpoints", r.checkpoints}}},
          {"pages_freed", r.pages_freed}};
}

nlohmann::json to_json(const EraseReport& r) {
  return {{"deleted",
           {{"interactions", r.interactions}, {"decisions", r.decisions}, {"pending_events", r.pending_events},
            {"rejected_events", r.rejected_events}, {"ab_assignments", r.ab_assignments}, {"anomalies", r.anomalies},
            {"patterns", r.patterns}, {"user_rows", r.user_rows}}},
          {"policy",
           {{"checkpoints_rewritten", r.policy.checkpoints}, {"downdates", r.policy.downdates},
            {"not_exact", r.policy.not_exact}}},
          {"retrain", r.retrain},
          {"rollup_hours_rebuilt", r.rollup_hours},
          {"wal_cleared", r.wal_cleared}};
}

namespace lifecycle {
namespace {

constexpr TimeMs kDay = 86400000LL;

/// Runs a DELETE (or any statement) with text parameters; returns the rows it changed.
std::int64_t run(store::Store& st, const std::string& sql, const std::vector<std::string>& params = {}) {
  store::Statement q(st.db(), sql);
  for (std::size_t i = 0; i < params.size(); ++i) q.bind(static_cast<int>(i + 1), params[i]);
  q.run();
  return st.db().changes();
}

bool is_json_column(const std::string& name) {
  for (const char* c : {"features", "detected_keywords", "context", "action_set", "payload", "evidence", "recent_files"})
    if (name == c) return true;
  return false;
}

/// Every row of a query as a JSON object keyed by column name.
nlohmann::json rows(store::Store& st, const std::string& sql, const std::vector<std::string>& params,
                    const privacy::Protector* privacy, const std::string& table) {
  store::Statement q(st.db(), sql);
  for (std::size_t i = 0; i < params.size(); ++i) q.bind(static_cast<int>(i + 1), params[i]);
  nlohmann::json out = nlohmann::json::array();
  std::size_t n = 0;
  while (q.step()) {
    nlohmann::json row = nlohmann::json::object();
    for (int c = 0; c < q.column_count(); ++c) {
      const std::string name = q.column_name(c);
      switch (q.column_type(c)) {
        case 1: row[name] = q.column_int64(c); break;     // SQLITE_INTEGER
        case 2: row[name] = q.column_double(c); break;    // SQLITE_FLOAT
        case 5: row[name] = nullptr; break;               // SQLITE_NULL
        case 4: {                                          // SQLITE_BLOB
          const std::string blob = q.column_blob(c);
          row[name] = nlohmann::json::binary(std::vector<std::uint8_t>(blob.begin(), blob.end()));
          break;
        }
        default: {
          std::string text = q.column_text(c);
          if (privacy && privacy::TextCipher::is_encrypted(text)) {
            try {
              text = privacy->reveal(text, fmt::format("{}[{}].{}", table, n, name));
            } catch (const Error& e) {
              row[name + "_error"] = e.what();  // exported as stored, with the reason
            }
          }
          // Columns that hold JSON documents are exported as JSON, not as strings of JSON.
          nlohmann::json doc = is_json_column(name) ? nlohmann::json::parse(text, nullptr, false) : nlohmann::json();
          row[name] = doc.is_structured() ? std::move(doc) : nlohmann::json(std::move(text));
        }
      }
    }
    out.push_back(std::move(row));
    ++n;
  }
  return out;
}

/// The user's interactions, in a temporary table (not in the file: TEMP lives in the connection's own
/// temporary database).
void select_user_interactions(store::Store& st, const std::string& stored_id) {
  st.db().exec("CREATE TEMP TABLE IF NOT EXISTS lifecycle_ids (interaction_id TEXT PRIMARY KEY) WITHOUT ROWID");
  st.db().exec("DELETE FROM temp.lifecycle_ids");
  run(st, "INSERT INTO temp.lifecycle_ids SELECT interaction_id FROM interactions WHERE user_id = ?1", {stored_id});
}

}  // namespace

RetentionReport delete_expired(store::Store& st, const Config& config, TimeMs now) {
  const auto& r = config.learning.data_retention;
  RetentionReport out;
  out.interactions_before = now - static_cast<TimeMs>(r.interaction_data_days) * kDay;
  out.performance_before = now - static_cast<TimeMs>(r.performance_data_days) * kDay;
  out.patterns_before = now - static_cast<TimeMs>(r.pattern_data_days) * kDay;
  const std::string ib = format_rfc3339(out.interactions_before), pb = format_rfc3339(out.performance_before);
  st.db().exec("CREATE TEMP TABLE IF NOT EXISTS lifecycle_ids (interaction_id TEXT PRIMARY KEY) WITHOUT ROWID");
  st.db().exec("DELETE FROM temp.lifecycle_ids");
  run(st, "INSERT INTO temp.lifecycle_ids SELECT interaction_id FROM interactions WHERE timestamp < ?1", {ib});
  const char* in_ids = "interaction_id IN (SELECT interaction_id FROM temp.lifecycle_ids)";
  out.decisions = run(st, fmt::format("DELETE FROM decisions WHERE {}", in_ids));
  out.ab_assignments = run(st, fmt::format("DELETE FROM ab_assignments WHERE {} OR assigned_at < ?1", in_ids), {ib});
  out.anomalies = run(st, "DELETE FROM anomalies WHERE timestamp < ?1", {ib});
  out.interactions = run(st, "DELETE FROM interactions WHERE timestamp < ?1", {ib});  // performance, outcomes cascade
  out.pending_events = run(st, "DELETE FROM pending_events WHERE received_at < ?1", {ib});
  out.rejected_events = run(st, "DELETE FROM rejected_events WHERE received_at < ?1", {ib});
  out.user_rows = run(st, "DELETE FROM user_stats WHERE last_seen < ?1", {ib}) +
                  run(st, "DELETE FROM user_template_stats WHERE updated_at < ?1", {ib});
  out.rollups = run(st, "DELETE FROM metric_rollups WHERE granularity = 'hour' AND bucket_start < ?1", {pb});
  out.alerts = run(st, "DELETE FROM alerts WHERE fired_at < ?1", {pb});
  out.job_runs = run(st, "DELETE FROM job_runs WHERE started_at < ?1 AND status <> 'running'", {pb});
  out.patterns = st.prune_patterns(out.patterns_before);
  {
    std::vector<std::string> names;
    store::Statement q(st.db(), "SELECT DISTINCT name FROM models");
    while (q.step()) names.push_back(q.column_text(0));
    const std::int64_t before = st.db().query_int("SELECT count(*) FROM models");
    for (const auto& n : names) st.prune_models(n, r.model_checkpoints_kept);
    out.checkpoints = before - st.db().query_int("SELECT count(*) FROM models");
  }
  st.db().exec("DELETE FROM temp.lifecycle_ids");
  return out;
}

nlohmann::json export_user_rows(store::Store& st, const std::string& stored_id, const privacy::Protector* privacy) {
  select_user_interactions(st, stored_id);
  const std::string in_ids = "interaction_id IN (SELECT interaction_id FROM temp.lifecycle_ids)";
  nlohmann::json j;
  j["interactions"] = rows(st, "SELECT * FROM interactions WHERE user_id = ?1 ORDER BY timestamp", {stored_id}, privacy, "interactions");
  j["performance"] = rows(st, "SELECT * FROM performance WHERE " + in_ids + " ORDER BY timestamp", {}, privacy, "performance");
  j["outcomes"] = rows(st, "SELECT * FROM outcomes WHERE " + in_ids + " ORDER BY timestamp", {}, privacy, "outcomes");
  j["decisions"] = rows(st, "SELECT * FROM decisions WHERE " + in_ids + " ORDER BY decision_id", {}, privacy, "decisions");
  j["pending_events"] = rows(st, "SELECT * FROM pending_events WHERE " + in_ids + " OR instr(payload, ?1) > 0 ORDER BY id",
                             {stored_id}, privacy, "pending_events");
  j["ab_assignments"] = rows(st, "SELECT * FROM ab_assignments WHERE " + in_ids + " OR unit_id = ?1", {stored_id}, privacy, "ab_assignments");
  j["user_stats"] = rows(st, "SELECT * FROM user_stats WHERE user_id = ?1", {stored_id}, privacy, "user_stats");
  j["user_template_stats"] = rows(st, "SELECT * FROM user_template_stats WHERE user_id = ?1", {stored_id}, privacy, "user_template_stats");
  j["insights"] = rows(st, "SELECT * FROM patterns WHERE subject = ?1", {stored_id}, privacy, "patterns");
  st.db().exec("DELETE FROM temp.lifecycle_ids");
  return j;
}

std::vector<PolicyManager::ForgetRow> learned_rows_of_user(store::Store& st, const std::string& stored_id) {
  store::Statement q(st.db(),
                     "SELECT d.context, d.chosen_template || '@' || d.chosen_version, d.reward, d.learned_into FROM "
                     "decisions d JOIN interactions i USING (interaction_id) WHERE i.user_id = ?1 AND d.reward IS NOT "
                     "NULL AND d.learned_into IS NOT NULL ORDER BY d.decision_id");
  q.bind(1, stored_id);
  std::vector<PolicyManager::ForgetRow> out;
  while (q.step()) {
    PolicyManager::ForgetRow r;
    r.context = q.column_text(0);
    r.action = q.column_text(1);
    r.reward = q.column_double(2);
    r.learned_into = q.column_int64(3);
    out.push_back(std::move(r));
  }
  return out;
}

EraseReport delete_user_rows(store::Store& st, const std::string& stored_id, const std::string& raw_id) {
  EraseReport out;
  select_user_interactions(st, stored_id);
  const std::string in_ids = "interaction_id IN (SELECT interaction_id FROM temp.lifecycle_ids)";
  out.decisions = run(st, "DELETE FROM decisions WHERE " + in_ids);
  out.ab_assignments = run(st, "DELETE FROM ab_assignments WHERE " + in_ids + " OR unit_id = ?1", {stored_id});
  out.anomalies = run(st, "DELETE FROM anomalies WHERE " + in_ids);
  out.pending_events = run(st, "DELETE FROM pending_events WHERE " + in_ids + " OR instr(payload, ?1) > 0", {stored_id});
  out.rejected_events = run(st, "DELETE FROM rejected_events WHERE instr(payload, ?1) > 0", {stored_id});
  if (!raw_id.empty() && raw_id != stored_id)
    out.rejected_events += run(st, "DELETE FROM rejected_events WHERE instr(payload, ?1) > 0", {raw_id});
  // Patterns are derived from everyone's rows in a window: those whose window saw the user's interactions
  // can carry their words (a topic cluster of their prompts is labelled by its keywords). They go, and
  // the pattern job recomputes the recent ones without the user at its next run.
  std::string first, last;
  {
    store::Statement q(st.db(), "SELECT min(timestamp), max(timestamp) FROM interactions WHERE user_id = ?1");
    q.bind(1, stored_id);
    if (q.step() && !q.is_null(0)) {
      first = q.column_text(0);
      last = q.column_text(1);
    }
  }
  out.patterns = run(st, "DELETE FROM patterns WHERE subject = ?1 OR instr(evidence, ?1) > 0", {stored_id});
  if (!first.empty()) {
    out.patterns += run(st, "DELETE FROM patterns WHERE window_end > ?1 AND window_start <= ?2", {first, last});
    st.db().exec("DELETE FROM settings WHERE key = 'jobs.pattern_recognition.last_run'");
  }
  out.user_rows = run(st, "DELETE FROM user_stats WHERE user_id = ?1", {stored_id}) +
                  run(st, "DELETE FROM user_template_stats WHERE user_id = ?1", {stored_id});
  out.interactions = run(st, "DELETE FROM interactions WHERE user_id = ?1", {stored_id});  // cascades
  st.db().exec("DELETE FROM temp.lifecycle_ids");
  return out;
}

std::int64_t incremental_vacuum(store::Store& st) {
  const std::int64_t before = st.db().query_int("PRAGMA page_count");
  st.db().exec("PRAGMA incremental_vacuum");
  return before - st.db().query_int("PRAGMA page_count");
}

bool truncate_wal(store::Store& st) {
  store::Statement q(st.db(), "PRAGMA wal_checkpoint(TRUNCATE)");
  if (!q.step()) return false;
  return q.column_int64(0) == 0;  // busy = 0: the checkpoint completed and the log was truncated
}

}  // namespace lifecycle
}  // namespace promptlearn
