#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/store/store.hpp"

namespace promptlearn::store {
namespace {

std::optional<std::string> json_list(const std::optional<std::vector<std::string>>& v) {
  if (!v) return std::nullopt;
  return nlohmann::json(*v).dump();
}

}  // namespace

namespace {
OpenOptions without_wal(OpenOptions o) {
  o.wal = false;  // switched on only once the file is known to be ours
  return o;
}
}  // namespace

Store::Store(const std::string& path, OpenOptions options) : db_(path, without_wal(options)) {
  if (!options.read_only) {
    check_ownership(db_);
    // A new file reclaims the pages the retention job and erase_user free (PRAGMA incremental_vacuum).
    // The mode can only be set before the first page is written (the switch to WAL writes it); an older
    // file keeps its mode (changing it needs a full VACUUM) and reuses free pages instead.
    if (db_.query_int("PRAGMA page_count") == 0) db_.exec("PRAGMA auto_vacuum=INCREMENTAL");
    if (options.wal) db_.enable_wal();
    migrate(db_);
  } else {
    check_current(db_);
  }
}

Statement& Store::statement(Slot slot, const char* sql) {
  auto& st = statements_[slot];
  if (!st) st = std::make_unique<Statement>(db_, sql);
  st->reset();
  return *st;
}

int Store::schema_version() { return static_cast<int>(db_.query_int("PRAGMA user_version")); }

bool Store::insert_interaction(const Event& e, TimeMs timestamp, const std::string& features_json, TimeMs received) {
  auto& st = statement(kInsertInteraction, 
      "INSERT INTO interactions (interaction_id, timestamp, session_id, user_id, raw_prompt, processed_input, "
      "token_count, complexity_score, detected_keywords, domain, working_directory, recent_files, git_branch, "
      "ide_detected, selected_template, template_version, enhancement_applied, enhancement_time_ms, "
      "enhanced_prompt_length, features, received_at) "
      "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21) "
      "ON CONFLICT(interaction_id) DO NOTHING");
  st.bind(1, e.interaction_id).bind(2, format_rfc3339(timestamp)).bind(3, e.session_id).bind(4, e.user_id);
  const InputData& in = *e.input_data;
  st.bind(5, in.raw_prompt).bind(6, in.processed_input).bind(7, in.token_count).bind(8, in.complexity_score);
  st.bind(9, json_list(in.detected_keywords)).bind(10, in.domain);
  if (e.context_data) {
    const auto& c = *e.context_data;
    st.bind(11, c.working_directory).bind(12, json_list(c.recent_files)).bind(13, c.git_branch).bind(14, c.ide_detected);
  }
  if (e.enhancement_data) {
    const auto& h = *e.enhancement_data;
    st.bind(15, h.selected_template).bind(16, h.template_version).bind(17, h.enhancement_applied);
    st.bind(18, h.enhancement_time_ms).bind(19, h.enhanced_prompt_length);
  }
  st.bind(20, features_json).bind(21, format_rfc3339(received));
  st.run();
  return db_.changes() == 1;
}

bool Store::interaction_exists(const std::string& interaction_id) {
  auto& st = statement(kInteractionExists, "SELECT 1 FROM interactions WHERE interaction_id = ?1");
  st.bind(1, interaction_id);
  bool found = st.step();
  st.reset();
  return found;
}

void Store::upsert_performance(const std::string& id, TimeMs timestamp, const Performance& p, TimeMs received) {
  auto& st = statement(kUpsertPerformance, 
      "INSERT OR REPLACE INTO performance (interaction_id, timestamp, total_processing_time_ms, "
      "template_selection_time_ms, enhancement_generation_time_ms, validation_time_ms, cleanup_time_ms, "
      "memory_peak_mb, cpu_usage_percent, disk_io_mb, template_cache_hit, analysis_cache_hit, cache_hit_rate, "
      "received_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)");
  st.bind(1, id).bind(2, format_rfc3339(timestamp)).bind(3, p.total_processing_time_ms);
  st.bind(4, p.template_selection_time_ms).bind(5, p.enhancement_generation_time_ms).bind(6, p.validation_time_ms);
  st.bind(7, p.cleanup_time_ms);
  if (p.resource_usage) {
    st.bind(8, p.resource_usage->memory_peak_mb).bind(9, p.resource_usage->cpu_usage_percent);
    st.bind(10, p.resource_usage->disk_io_mb);
  }
  if (p.cache_performance) {
    st.bind(11, p.cache_performance->template_cache_hit).bind(12, p.cache_performance->analysis_cache_hit);
    st.bind(13, p.cache_performance->cache_hit_rate);
  }
  st.bind(14, format_rfc3339(received));
  st.run();
}

void Store::upsert_outcome(const std::string& id, TimeMs timestamp, const Outcome& o, TimeMs received) {
  auto& st = statement(kUpsertOutcome, 
      "INSERT INTO outcomes (interaction_id, timestamp, claude_response_time_ms, response_quality_score, "
      "user_satisfaction_rating, completeness, accuracy, relevance, structure, explicit_feedback, "
      "copy_action_count, edit_action_count, acceptance_rate, reward, revision, received_at) "
      "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,1,?15) "
      "ON CONFLICT(interaction_id) DO UPDATE SET timestamp=excluded.timestamp, "
      "claude_response_time_ms=excluded.claude_response_time_ms, response_quality_score=excluded.response_quality_score, "
      "user_satisfaction_rating=excluded.user_satisfaction_rating, completeness=excluded.completeness, "
      "accuracy=excluded.accuracy, relevance=excluded.relevance, structure=excluded.structure, "
      "explicit_feedback=excluded.explicit_feedback, copy_action_count=excluded.copy_action_count, "
      "edit_action_count=excluded.edit_action_count, acceptance_rate=excluded.acceptance_rate, "
      "reward=excluded.reward, revision=outcomes.revision+1, received_at=excluded.received_at");
  st.bind(1, id).bind(2, format_rfc3339(timestamp)).bind(3, o.claude_response_time_ms);
  st.bind(4, o.response_quality_score).bind(5, o.user_satisfaction_rating);
  if (o.quality_metrics) {
    const auto& q = *o.quality_metrics;
    st.bind(6, q.completeness).bind(7, q.accuracy).bind(8, q.relevance).bind(9, q.structure);
  }
  if (o.feedback_data) {
    st.bind(10, o.feedback_data->explicit_feedback);
    if (o.feedback_data->implicit_feedback) {
      const auto& i = *o.feedback_data->implicit_feedback;
      st.bind(11, i.copy_action_count).bind(12, i.edit_action_count).bind(13, i.acceptance_rate);
    }
  }
  st.bind(14, o.reward).bind(15, format_rfc3339(received));
  st.run();
}

void Store::insert_pending(const std::string& id, const std::string& kind, const std::string& payload,
                           TimeMs received) {
  auto& st = statement(kInsertPending, 
      "INSERT INTO pending_events (interaction_id, kind, payload, received_at) VALUES (?1, ?2, ?3, ?4)");
  st.bind(1, id).bind(2, kind).bind(3, payload).bind(4, format_rfc3339(received));
  st.run();
}

std::vector<PendingRow> Store::take_pending(const std::string& id) {
  std::vector<PendingRow> rows;
  {
    auto& st = statement(kSelectPending, "SELECT id, kind, payload FROM pending_events WHERE interaction_id = ?1 ORDER BY id");
    st.bind(1, id);
    while (st.step()) rows.push_back({st.column_int64(0), st.column_text(1), st.column_text(2)});
    st.reset();
  }
  if (!rows.empty()) {
    auto& del = statement(kDeletePending, "DELETE FROM pending_events WHERE interaction_id = ?1");
    del.bind(1, id);
    del.run();
  }
  return rows;
}

void Store::insert_rejected(TimeMs received, const std::string& reason, const std::string& field,
                            const std::string& payload) {
  auto& st = statement(kInsertRejected, "INSERT INTO rejected_events (received_at, reason, field, payload) VALUES (?1, ?2, ?3, ?4)");
  st.bind(1, format_rfc3339(received)).bind(2, reason).bind(3, field).bind(4, payload);
  st.run();
}

void Store::audit(TimeMs when, const std::string& actor, const std::string& action, const std::string& details) {
  auto& st = statement(kAudit, "INSERT INTO audit_log (timestamp, actor, action, details) VALUES (?1, ?2, ?3, ?4)");
  st.bind(1, format_rfc3339(when)).bind(2, actor).bind(3, action).bind(4, details);
  st.run();
}

std::optional<std::string> Store::setting(const std::string& key) {
  auto& st = statement(kSelectSetting, "SELECT value FROM settings WHERE key = ?1");
  st.bind(1, key);
  std::optional<std::string> v;
  if (st.step()) v = st.column_text(0);
  st.reset();
  return v;
}

void Store::put_setting(const std::string& key, const std::string& value, TimeMs when) {
  auto& st = statement(kPutSetting, "INSERT OR REPLACE INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)");
  st.bind(1, key).bind(2, value).bind(3, format_rfc3339(when));
  st.run();
}

std::optional<std::string> Store::corpus_blob() {
  auto& st = statement(kSelectCorpus, "SELECT buckets FROM corpus_stats WHERE name = 'prompts'");
  std::optional<std::string> v;
  if (st.step()) v = st.column_blob(0);
  st.reset();
  return v;
}

void Store::put_corpus_blob(const std::string& blob, std::int64_t documents, TimeMs when) {
  auto& st = statement(kPutCorpus, 
      "INSERT OR REPLACE INTO corpus_stats (name, documents, buckets, updated_at) VALUES ('prompts', ?1, ?2, ?3)");
  st.bind(1, documents).bind_blob(2, blob).bind(3, format_rfc3339(when));
  st.run();
}

std::int64_t Store::insert_decision(const DecisionRow& d) {
  auto& st = db_.cached(
      "INSERT INTO decisions (interaction_id, timestamp, policy_name, policy_version, action_set, chosen_template, "
      "chosen_version, propensity, context, reward) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)");
  st.bind(1, d.interaction_id).bind(2, format_rfc3339(d.timestamp)).bind(3, d.policy_name);
  st.bind(4, d.policy_version).bind(5, d.action_set).bind(6, d.chosen_template).bind(7, d.chosen_version);
  st.bind(8, d.propensity).bind(9, d.context).bind(10, d.reward);
  st.run();
  return db_.last_insert_rowid();
}

namespace {
DecisionRow read_decision(const Statement& st) {
  DecisionRow d;
  d.decision_id = st.column_int64(0);
  d.interaction_id = st.column_text(1);
  d.timestamp = try_parse_rfc3339(st.column_text(2)).value_or(0);
  d.policy_name = st.column_text(3);
  d.policy_version = st.column_int64(4);
  d.action_set = st.column_text(5);
  d.chosen_template = st.column_text(6);
  d.chosen_version = st.column_text(7);
  d.propensity = st.column_double(8);
  d.context = st.column_text(9);
  if (!st.is_null(10)) d.reward = st.column_double(10);
  return d;
}

std::optional<double> opt_double(const Statement& st, int col) {
  return st.is_null(col) ? std::nullopt : std::optional<double>(st.column_double(col));
}
}  // namespace

Outcome read_reward_outcome(const Statement& st, int first) {
  auto opt = [&](int col) { return opt_double(st, col); };
  Outcome o;
  o.claude_response_time_ms = opt(first);
  o.response_quality_score = opt(first + 1);
  o.user_satisfaction_rating = opt(first + 2);
  if (!st.is_null(first + 3) || !st.is_null(first + 4)) {
    ImplicitFeedback im;
    im.acceptance_rate = opt(first + 3);
    if (!st.is_null(first + 4)) im.edit_action_count = st.column_int64(first + 4);
    o.feedback_data = FeedbackData{std::nullopt, im};
  }
  o.reward = opt(first + 5);
  return o;
}

std::vector<TrainingRow> Store::unlearned_decisions(std::size_t limit) {
  auto& st = db_.cached(
      "SELECT d.decision_id, d.interaction_id, d.timestamp, d.policy_name, d.policy_version, d.action_set, "
      "d.chosen_template, d.chosen_version, d.propensity, d.context, d.reward, o.interaction_id, "
      "o.claude_response_time_ms, o.response_quality_score, o.user_satisfaction_rating, o.acceptance_rate, "
      "o.edit_action_count, o.reward, i.user_id, i.session_id FROM decisions d LEFT JOIN outcomes o USING (interaction_id) "
      "LEFT JOIN interactions i USING (interaction_id) "
      "WHERE d.reward IS NULL ORDER BY d.decision_id LIMIT ?1");
  st.bind(1, static_cast<std::int64_t>(limit));
  std::vector<TrainingRow> rows;
  while (st.step()) {
    TrainingRow r;
    r.decision = read_decision(st);
    if (!st.is_null(11)) r.outcome = read_reward_outcome(st, 12);
    if (!st.is_null(18)) r.user_id = st.column_text(18);
    if (!st.is_null(19)) r.session_id = st.column_text(19);
    rows.push_back(std::move(r));
  }
  st.reset();
  return rows;
}

std::optional<std::string> Store::next_decision_context(const std::string& session_id, std::int64_t decision_id) {
  auto& st = db_.cached(
      "SELECT d.context FROM decisions d JOIN interactions i USING (interaction_id) WHERE i.session_id = ?1 AND "
      "d.decision_id > ?2 ORDER BY d.decision_id LIMIT 1");
  st.bind(1, session_id).bind(2, decision_id);
  std::optional<std::string> out;
  if (st.step()) out = st.column_text(0);
  st.reset();
  return out;
}

void Store::set_decision_reward(std::int64_t decision_id, double reward, std::optional<std::int64_t> learned_into) {
  auto& st = db_.cached("UPDATE decisions SET reward = ?2, learned_into = ?3 WHERE decision_id = ?1");
  st.bind(1, decision_id).bind(2, reward);
  if (learned_into) st.bind(3, *learned_into);
  else st.bind_null(3);
  st.run();
}

std::vector<DecisionRow> Store::learned_decisions(std::int64_t after_id, std::size_t limit) {
  auto& st = db_.cached(
      "SELECT decision_id, interaction_id, timestamp, policy_name, policy_version, action_set, chosen_template, "
      "chosen_version, propensity, context, reward FROM decisions WHERE reward IS NOT NULL AND decision_id > ?1 "
      "ORDER BY decision_id LIMIT ?2");
  st.bind(1, after_id).bind(2, static_cast<std::int64_t>(limit));
  std::vector<DecisionRow> rows;
  while (st.step()) rows.push_back(read_decision(st));
  st.reset();
  return rows;
}

void Store::count_user_interaction(const std::string& user_id, TimeMs when) {
  auto& st = statement(kCountUser,
                       "INSERT INTO user_stats (user_id, interactions, last_seen) VALUES (?1, 1, ?2) "
                       "ON CONFLICT(user_id) DO UPDATE SET interactions = interactions + 1, "
                       "last_seen = max(last_seen, excluded.last_seen)");
  st.bind(1, user_id).bind(2, format_rfc3339(when));
  st.run();
}

void Store::add_user_reward(const std::string& user_id, double reward) {
  auto& st = db_.cached(
      "UPDATE user_stats SET reward_sum = reward_sum + ?2, reward_count = reward_count + 1 WHERE user_id = ?1");
  st.bind(1, user_id).bind(2, reward);
  st.run();
}

std::pair<std::int64_t, double> Store::user_summary(const std::string& user_id) {
  auto& st = db_.cached("SELECT interactions, reward_sum, reward_count FROM user_stats WHERE user_id = ?1");
  st.bind(1, user_id);
  std::pair<std::int64_t, double> out{0, -1.0};
  if (st.step()) {
    out.first = st.column_int64(0);
    std::int64_t n = st.column_int64(2);
    if (n > 0) out.second = st.column_double(1) / static_cast<double>(n);
  }
  st.reset();
  return out;
}

void Store::add_user_template_reward(const std::string& user_id, const std::string& template_key, double reward,
                                     TimeMs when) {
  auto& st = db_.cached(
      "INSERT INTO user_template_stats (user_id, template_key, weight, reward_sum, updated_at) "
      "VALUES (?1, ?2, 1, ?3, ?4) ON CONFLICT(user_id, template_key) DO UPDATE SET "
      "weight = 0.9 * weight + 1, reward_sum = 0.9 * reward_sum + excluded.reward_sum, updated_at = excluded.updated_at");
  st.bind(1, user_id).bind(2, template_key).bind(3, reward).bind(4, format_rfc3339(when));
  st.run();
}

std::vector<std::pair<std::string, double>> Store::user_template_means(const std::string& user_id) {
  auto& st = db_.cached("SELECT template_key, reward_sum / weight FROM user_template_stats WHERE user_id = ?1");
  st.bind(1, user_id);
  std::vector<std::pair<std::string, double>> out;
  while (st.step()) out.emplace_back(st.column_text(0), st.column_double(1));
  st.reset();
  return out;
}

void Store::put_template(const TemplateRow& t) {
  auto& st = db_.cached(
      "INSERT OR REPLACE INTO templates (template_id, version, body, status, parent_id, parent_version, metadata, "
      "created_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)");
  st.bind(1, t.template_id).bind(2, t.version).bind(3, t.body).bind(4, t.status).bind(5, t.parent_id);
  st.bind(6, t.parent_version).bind(7, t.metadata).bind(8, format_rfc3339(t.created_at));
  st.run();
}

std::vector<TemplateRow> Store::templates(const std::string& status) {
  auto& st = db_.cached(
      "SELECT template_id, version, body, status, parent_id, parent_version, metadata, created_at FROM templates "
      "WHERE status = ?1 ORDER BY created_at, template_id, version");
  st.bind(1, status);
  std::vector<TemplateRow> rows;
  while (st.step()) {
    TemplateRow t;
    t.template_id = st.column_text(0);
    t.version = st.column_text(1);
    t.body = st.column_text(2);
    t.status = st.column_text(3);
    if (!st.is_null(4)) t.parent_id = st.column_text(4);
    if (!st.is_null(5)) t.parent_version = st.column_text(5);
    t.metadata = st.column_text(6);
    t.created_at = try_parse_rfc3339(st.column_text(7)).value_or(0);
    rows.push_back(std::move(t));
  }
  st.reset();
  return rows;
}

bool Store::set_template_status(const std::string& id, const std::string& version, const std::string& status) {
  auto& st = db_.cached("UPDATE templates SET status = ?3 WHERE template_id = ?1 AND version = ?2");
  st.bind(1, id).bind(2, version).bind(3, status);
  st.run();
  return db_.changes() == 1;
}

namespace {
ModelRow read_model(const Statement& st) {
  ModelRow m;
  m.name = st.column_text(0);
  m.version = st.column_int64(1);
  m.state = st.column_blob(2);
  m.metrics = st.column_text(3);
  m.status = st.column_text(4);
  m.created_at = try_parse_rfc3339(st.column_text(5)).value_or(0);
  return m;
}
}  // namespace

void Store::put_model(const ModelRow& m) {
  auto& st = db_.cached(
      "INSERT OR REPLACE INTO models (name, version, state, metrics, status, created_at) VALUES (?1,?2,?3,?4,?5,?6)");
  st.bind(1, m.name).bind(2, m.version).bind_blob(3, m.state).bind(4, m.metrics).bind(5, m.status);
  st.bind(6, format_rfc3339(m.created_at));
  st.run();
}

std::optional<std::string> Store::study_state(const std::string& name) {
  auto& st = db_.cached("SELECT state FROM studies WHERE name = ?1");
  st.bind(1, name);
  std::optional<std::string> out;
  if (st.step()) out = st.column_text(0);
  st.reset();
  return out;
}

void Store::put_study(const std::string& name, const std::string& state, TimeMs now) {
  auto& st = db_.cached(
      "INSERT INTO studies (name, state, created_at, updated_at) VALUES (?1, ?2, ?3, ?3) "
      "ON CONFLICT(name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at");
  st.bind(1, name).bind(2, state).bind(3, format_rfc3339(now));
  st.run();
}

std::int64_t Store::insert_trial(const std::string& study, const std::string& params, TimeMs asked_at) {
  auto& next = db_.cached("SELECT coalesce(max(trial), 0) + 1 FROM study_trials WHERE study = ?1");
  next.bind(1, study);
  next.step();
  const std::int64_t trial = next.column_int64(0);
  next.reset();
  auto& st = db_.cached("INSERT INTO study_trials (study, trial, params, asked_at) VALUES (?1, ?2, ?3, ?4)");
  st.bind(1, study).bind(2, trial).bind(3, params).bind(4, format_rfc3339(asked_at));
  st.run();
  return trial;
}

bool Store::tell_trial(const std::string& study, const std::string& params, double value, TimeMs told_at) {
  auto& st = db_.cached(
      "UPDATE study_trials SET value = ?3, told_at = ?4 WHERE study = ?1 AND trial = "
      "(SELECT min(trial) FROM study_trials WHERE study = ?1 AND params = ?2 AND value IS NULL)");
  st.bind(1, study).bind(2, params).bind(3, value).bind(4, format_rfc3339(told_at));
  st.run();
  return db_.changes() > 0;
}

std::vector<TrialRow> Store::trials(const std::string& study) {
  auto& st = db_.cached("SELECT trial, params, value, asked_at, told_at FROM study_trials WHERE study = ?1 ORDER BY trial");
  st.bind(1, study);
  std::vector<TrialRow> out;
  while (st.step()) {
    TrialRow& t = out.emplace_back();
    t.study = study;
    t.trial = st.column_int64(0);
    t.params = st.column_text(1);
    if (!st.is_null(2)) t.value = st.column_double(2);
    t.asked_at = try_parse_rfc3339(st.column_view(3)).value_or(0);
    if (!st.is_null(4)) t.told_at = try_parse_rfc3339(st.column_view(4));
  }
  st.reset();
  return out;
}

void Store::delete_trials(const std::string& study) {
  auto& st = db_.cached("DELETE FROM study_trials WHERE study = ?1");
  st.bind(1, study);
  st.run();
}

std::int64_t Store::active_model_version(const std::string& name) {
  auto& st = db_.cached("SELECT max(version) FROM models WHERE name = ?1 AND status = 'active'");
  st.bind(1, name);
  std::int64_t v = 0;
  if (st.step() && !st.is_null(0)) v = st.column_int64(0);
  st.reset();
  return v;
}

std::vector<ModelDataRow> Store::model_training_rows(std::size_t limit) {
  Statement q(db_,
              "SELECT d.context, d.chosen_template, o.response_quality_score, o.acceptance_rate FROM decisions d "
              "JOIN outcomes o ON o.interaction_id = d.interaction_id WHERE d.context IS NOT NULL "
              "ORDER BY d.decision_id DESC LIMIT ?1");
  q.bind(1, static_cast<std::int64_t>(limit));
  std::vector<ModelDataRow> out;
  while (q.step()) {
    ModelDataRow& r = out.emplace_back();
    r.context = q.column_text(0);
    r.template_id = q.column_text(1);
    if (!q.is_null(2)) r.quality = q.column_double(2);
    if (!q.is_null(3)) r.acceptance = q.column_double(3);
  }
  return out;
}

std::optional<ModelRow> Store::latest_model(const std::string& name, const std::string& status) {
  auto& st = db_.cached(
      "SELECT name, version, state, metrics, status, created_at FROM models WHERE name = ?1 AND status = ?2 "
      "ORDER BY version DESC LIMIT 1");
  st.bind(1, name).bind(2, status);
  std::optional<ModelRow> m;
  if (st.step()) m = read_model(st);
  st.reset();
  return m;
}

std::optional<ModelRow> Store::model(const std::string& name, std::int64_t version) {
  auto& st = db_.cached(
      "SELECT name, version, state, metrics, status, created_at FROM models WHERE name = ?1 AND version = ?2");
  st.bind(1, name).bind(2, version);
  std::optional<ModelRow> m;
  if (st.step()) m = read_model(st);
  st.reset();
  return m;
}

std::int64_t Store::max_model_version(const std::string& name) {
  auto& st = db_.cached("SELECT coalesce(max(version), 0) FROM models WHERE name = ?1");
  st.bind(1, name);
  std::int64_t v = st.step() ? st.column_int64(0) : 0;
  st.reset();
  return v;
}

void Store::set_model_status(const std::string& name, std::int64_t version, const std::string& status) {
  auto& st = db_.cached("UPDATE models SET status = ?3 WHERE name = ?1 AND version = ?2");
  st.bind(1, name).bind(2, version).bind(3, status);
  st.run();
}

void Store::delete_model(const std::string& name, std::int64_t version) {
  auto& st = db_.cached("DELETE FROM models WHERE name = ?1 AND version = ?2");
  st.bind(1, name).bind(2, version);
  st.run();
}

void Store::prune_models(const std::string& name, int keep) {
  auto& st = db_.cached(
      "DELETE FROM models WHERE name = ?1 AND status = 'retired' AND version NOT IN (SELECT version FROM models "
      "WHERE name = ?1 AND status IN ('active', 'retired') ORDER BY version DESC LIMIT ?2)");
  st.bind(1, name).bind(2, static_cast<std::int64_t>(keep));
  st.run();
}

std::vector<ModelRow> Store::checkpoints(const std::string& name) {
  auto& st = db_.cached(
      "SELECT name, version, state, metrics, status, created_at FROM models WHERE name = ?1 AND status IN "
      "('active', 'retired') ORDER BY version DESC");
  st.bind(1, name);
  std::vector<ModelRow> rows;
  while (st.step()) rows.push_back(read_model(st));
  st.reset();
  return rows;
}

std::vector<ModelRow> Store::all_checkpoints(const std::string& name) {
  Statement st(db_, "SELECT name, version, state, metrics, status, created_at FROM models WHERE name = ?1 ORDER BY version DESC");
  st.bind(1, name);
  std::vector<ModelRow> rows;
  while (st.step()) rows.push_back(read_model(st));
  return rows;
}

TableCounts Store::counts() {
  TableCounts c;
  c.interactions = db_.query_int("SELECT count(*) FROM interactions");
  c.performance = db_.query_int("SELECT count(*) FROM performance");
  c.outcomes = db_.query_int("SELECT count(*) FROM outcomes");
  c.pending_events = db_.query_int("SELECT count(*) FROM pending_events");
  c.rejected_events = db_.query_int("SELECT count(*) FROM rejected_events");
  c.decisions = db_.query_int("SELECT count(*) FROM decisions");
  c.templates = db_.query_int("SELECT count(*) FROM templates");
  c.models = db_.query_int("SELECT count(*) FROM models");
  c.audit_log = db_.query_int("SELECT count(*) FROM audit_log");
  return c;
}

std::string Store::integrity_check() {
  Statement st(db_, "PRAGMA integrity_check");
  std::string out;
  while (st.step()) {
    if (!out.empty()) out += "\n";
    out += st.column_text(0);
  }
  return out;
}

}  // namespace promptlearn::store
