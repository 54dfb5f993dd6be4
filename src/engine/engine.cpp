#include "promptlearn/engine.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <random>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/privacy/protector.hpp"
#include "promptlearn/store/store.hpp"
#include "background.hpp"
#include "setting_keys.hpp"

namespace promptlearn {

nlohmann::json to_json(const EngineStats& s) {
  const auto& c = s.collector;
  const auto& t = s.tables;
  return {{"path", s.path},
          {"schema_version", s.schema_version},
          {"session", {{"received", c.received}, {"accepted", c.accepted}, {"rejected", c.rejected},
                       {"committed", c.committed}, {"queued", c.queued}}},
          {"tables", {{"interactions", t.interactions}, {"performance", t.performance}, {"outcomes", t.outcomes},
                      {"pending_events", t.pending_events}, {"rejected_events", t.rejected_events},
                      {"decisions", t.decisions}, {"templates", t.templates}, {"models", t.models},
                      {"audit_log", t.audit_log}}},
          {"corpus_documents", s.corpus_documents}};
}

LearningEngine::LearningEngine(const std::string& path, Config config, EngineOptions options)
    : path_(path), config_(std::move(config)), clock_(options.clock ? options.clock : &system_clock_) {
  config_.validate();
  options.features.validate();
  read_only_ = options.read_only;
  store::OpenOptions open;
  open.busy_timeout_ms = options.busy_timeout_ms;
  open.synchronous_full = config_.learning.data_collection.synchronous_commit != SynchronousCommit::normal;
  open.read_only = read_only_;
  store_ = std::make_unique<store::Store>(path_, open);
  {
    PrivacyConfig pc = config_.learning.privacy;
    struct stat key_stat {};
    if (read_only_ && ::stat((path_ + ".key").c_str(), &key_stat) != 0) pc.auto_key = false;  // never create it
    const privacy::SecretKey key = options.privacy_key.empty()
                                       ? privacy::SecretKey()
                                       : privacy::SecretKey::from_text(options.privacy_key, "EngineOptions::privacy_key");
    privacy_ = std::make_unique<privacy::Protector>(pc, key, path_);
  }
  {
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    holder_ = fmt::format("{}:{}:{:08x}", host, ::getpid(), std::random_device{}());
  }
  configure_monitoring(options.alert_rules, options.on_alert);
  if (!read_only_) audit_configuration();
  collector_ = std::make_unique<Collector>(*store_, config_, *clock_, options.features, privacy_.get());
  policy_ = std::make_unique<PolicyManager>(path_, *collector_, config_, *clock_);
  experiments_ = std::make_unique<ExperimentManager>(*collector_, config_, *clock_);
  models_ = std::make_unique<ModelManager>(*collector_, config_, *clock_);
  tuner_ = std::make_unique<Tuner>(*collector_, *policy_, config_, *clock_);
}

void LearningEngine::register_template(const std::string& template_id, const std::string& version,
                                       const std::string& body, const std::string& parent_id,
                                       const std::string& parent_version, const std::string& metadata_json) {
  require_writable("register_template");
  policy_->register_template(template_id, version, body, parent_id, parent_version, metadata_json);
}

bool LearningEngine::retire_template(const std::string& template_id, const std::string& version) {
  require_writable("retire_template");
  return policy_->retire_template(template_id, version);
}

void LearningEngine::audit_configuration() {
  // A configuration that differs from the one the file was last opened with is a change: written to
  // audit_log as a JSON patch (RFC 6902) from the previous document, in the same transaction as the new one.
  const nlohmann::json now_doc = config_.to_json();
  auto stored = [&] {
    const auto last = store_->setting("engine.configuration");
    return last ? nlohmann::json::parse(*last, nullptr, false) : nlohmann::json();
  };
  if (stored() == now_doc) return;  // the common case takes no write lock (a hook opens the file per prompt)
  store::Transaction tx(store_->db());
  const nlohmann::json before = stored();  // again under the lock: another process may have recorded it
  if (before == now_doc) return;
  const TimeMs now = clock_->now_ms();
  store_->audit(now, "engine", "configuration",
                nlohmann::json{{"first", before.is_discarded() || before.is_null()},
                               {"changes", before.is_object() ? nlohmann::json::diff(before, now_doc) : nlohmann::json::array()}}
                    .dump());
  store_->put_setting("engine.configuration", now_doc.dump(), now);
  tx.commit();
}

Event LearningEngine::with_stored_ids(Event e) const {
  privacy_->protect_ids(e);
  return e;
}
Event LearningEngine::with_stored_ids(const nlohmann::json& doc) const { return with_stored_ids(parse_event(doc)); }

void LearningEngine::require_writable(const char* what) const {
  if (read_only_) throw Error(fmt::format("{}: the engine was opened read-only (EngineOptions::read_only)", what));
}

Decision LearningEngine::select_template(const Event& interaction) {
  require_writable("select_template");
  return policy_->select(with_stored_ids(interaction));
}
Decision LearningEngine::select_template(const nlohmann::json& interaction) {
  require_writable("select_template");
  return policy_->select(with_stored_ids(interaction));
}
Decision LearningEngine::select_template(std::string_view interaction_json) {
  require_writable("select_template");
  return policy_->select(with_stored_ids(parse_event_text(interaction_json)));
}

ModelTrainingReport LearningEngine::train_models() {
  require_writable("train_models");
  flush();
  return models_->train(clock_->now_ms());
}
std::optional<QualityEstimate> LearningEngine::predict_quality(const nlohmann::json& interaction,
                                                               const std::string& template_id) {
  return models_->predict_quality(policy_->context_for(with_stored_ids(interaction)), template_id);
}
std::vector<TemplateProbability> LearningEngine::predict_template(const nlohmann::json& interaction) {
  return models_->predict_template(policy_->context_for(with_stored_ids(interaction)));
}
std::optional<double> LearningEngine::predict_success(const nlohmann::json& interaction, const std::string& template_id) {
  return models_->predict_success(policy_->context_for(with_stored_ids(interaction)), template_id);
}

bool LearningEngine::rollback(const std::string& reason) {
  require_writable("rollback");
  return policy_->rollback(clock_->now_ms(), reason);
}

namespace {
std::optional<TimeMs> period_of(Frequency f) {
  switch (f) {
    case Frequency::hourly: return 3600000LL;
    case Frequency::daily: return 86400000LL;
    case Frequency::weekly: return 7 * 86400000LL;
    case Frequency::monthly: return 30 * 86400000LL;
    case Frequency::never: return std::nullopt;
  }
  return std::nullopt;
}

using setting_keys::kModelsLastRun;
constexpr const char* kTuningLastRun = "jobs.parameter_tuning.last_run";
/// How long a job's lease holds: a process that died running a job blocks it this long (job's clock).
constexpr TimeMs kLeaseMs = 2 * 3600000LL;

/// True when the job whose last run is kept in settings under `key` is due at `now`: its last run is kept
/// in the file, so the schedule holds across processes and restarts, and a host that was off for a week
/// runs each due job once, not once per missed period.
bool due_at(store::Store& st, const std::string& key, TimeMs period, TimeMs now) {
  auto last = st.setting(key);
  auto t = last ? try_parse_rfc3339(*last) : std::nullopt;
  return !t || now - *t >= period;
}

enum class Claim { not_due, leased_elsewhere, claimed };

/// In one transaction: if the job is due and no other holder's lease on it is live, takes the lease and
/// starts a job_runs row (its id in `run_id`).
Claim claim_job(Collector& collector, const std::string& job, const std::string& key, TimeMs period, TimeMs now,
                const std::string& holder, std::int64_t& run_id) {
  return collector.with_store([&](store::Store& st) {
    store::Transaction tx(st.db());
    if (!due_at(st, key, period, now)) return Claim::not_due;
    {
      store::Statement q(st.db(), "SELECT holder, expires_at FROM job_leases WHERE job = ?1");
      q.bind(1, job);
      if (q.step() && q.column_text(0) != holder) {
        const auto expires = try_parse_rfc3339(q.column_view(1));
        if (expires && *expires > now) return Claim::leased_elsewhere;
      }
    }
    store::Statement lease(st.db(),
                           "INSERT OR REPLACE INTO job_leases (job, holder, acquired_at, expires_at) VALUES (?1, ?2, ?3, ?4)");
    lease.bind(1, job).bind(2, holder).bind(3, format_rfc3339(now)).bind(4, format_rfc3339(now + kLeaseMs));
    lease.run();
    store::Statement run(st.db(), "INSERT INTO job_runs (job, holder, started_at, status) VALUES (?1, ?2, ?3, 'running')");
    run.bind(1, job).bind(2, holder).bind(3, format_rfc3339(now));
    run.run();
    run_id = st.db().last_insert_rowid();
    tx.commit();
    return Claim::claimed;
  });
}

/// Ends a claimed run: its outcome in job_runs, the lease released, and (when `done`) the run recorded
/// as the job's last run, so the next one is a period later.
void finish_job(Collector& collector, const std::string& job, const std::string& key, TimeMs now,
                const std::string& holder, std::int64_t run_id, bool ok, bool done, const std::string& details) {
  collector.with_store([&](store::Store& st) {
    store::Transaction tx(st.db());
    store::Statement run(st.db(), "UPDATE job_runs SET finished_at = ?2, status = ?3, details = ?4 WHERE id = ?1");
    run.bind(1, run_id).bind(2, format_rfc3339(now)).bind(3, std::string(ok ? "ok" : "failed")).bind(4, details);
    run.run();
    store::Statement release(st.db(), "DELETE FROM job_leases WHERE job = ?1 AND holder = ?2");
    release.bind(1, job).bind(2, holder);
    release.run();
    if (ok && done) st.put_setting(key, format_rfc3339(now), now);
    tx.commit();
  });
}
}  // namespace

nlohmann::json to_json(const JobsReport& r) {
  nlohmann::json j = {{"ran", r.ran}, {"rolled_back", r.rolled_back}, {"patterns_written", r.patterns_written}};
  if (r.learn)
    j["learn"] = {{"learned", r.learn->learned}, {"defaulted", r.learn->defaulted},
                  {"held_out", r.learn->held_out}, {"waiting", r.learn->waiting}};
  if (r.gate) j["gate"] = to_json(*r.gate);
  if (r.models) j["models"] = to_json(*r.models);
  if (r.tuning) j["tuning"] = to_json(*r.tuning);
  if (r.retention) j["retention"] = to_json(*r.retention);
  j["rollup_hours"] = r.rollup_hours;
  j["alerts_fired"] = r.alerts_fired;
  if (!r.failed.empty()) {
    j["failed"] = nlohmann::json::array();
    for (const auto& [job, error] : r.failed) j["failed"].push_back({{"job", job}, {"error", error}});
  }
  if (!r.leased_elsewhere.empty()) j["leased_elsewhere"] = r.leased_elsewhere;
  return j;
}

JobsReport LearningEngine::run_due_jobs(TimeMs now) {
  require_writable("run_due_jobs");
  JobsReport report;
  flush();  // jobs read what this process recorded
  policy_->refresh();
  if (config_.learning.historical_learning_enabled) {
    report.learn = policy_->learn(now);
    report.ran.push_back("learn");
  }
  report.rolled_back = policy_->watch(now);
  report.ran.push_back("watch");
  // The periodic jobs: each claimed under a lease in the file (two processes never run the same job at
  // once), its outcome recorded in job_runs; a failure is reported and the other jobs still run. A job
  // returns whether its run counts as done (the models and tuning jobs only do when they had the data:
  // a file without enough yet is retried at the next call, not a period later).
  auto periodic = [&](const std::string& job, const char* key, std::optional<TimeMs> period, auto&& body) {
    if (!period) return;
    std::int64_t run_id = 0;
    const Claim c = claim_job(*collector_, job, key, *period, now, holder_, run_id);
    if (c == Claim::leased_elsewhere) report.leased_elsewhere.push_back(job);
    if (c != Claim::claimed) return;
    try {
      nlohmann::json details = nlohmann::json::object();
      const bool done = body(details);
      report.ran.push_back(job);
      finish_job(*collector_, job, key, now, holder_, run_id, true, done, details.dump());
    } catch (const std::exception& e) {
      report.failed.emplace_back(job, e.what());
      finish_job(*collector_, job, key, now, holder_, run_id, false, false, nlohmann::json{{"error", e.what()}}.dump());
    }
  };
  const auto& opt = config_.learning.optimization;
  periodic("gate", "jobs.template_optimization.last_run", period_of(opt.template_optimization_frequency),
           [&](nlohmann::json& d) {
             report.gate = policy_->gate(now);
             d = to_json(*report.gate);
             return true;
           });
  // Pattern recognition per pattern_update_frequency: the last 7 days analysed, insights, patterns and
  // anomalies written, rows older than data_retention.pattern_data_days pruned.
  if (config_.learning.pattern_recognition_enabled)
    periodic("patterns", "jobs.pattern_recognition.last_run", period_of(opt.pattern_update_frequency),
             [&](nlohmann::json& d) {
               report.patterns_written = run_pattern_job(now);
               d["rows_written"] = report.patterns_written;
               return true;
             });
  const auto retrain = period_of(config_.learning.model_training.model_retraining_frequency);
  bool models_ran = false;
  periodic("models", kModelsLastRun, retrain, [&](nlohmann::json& d) {
    models_ran = true;
    report.models = models_->train(now);
    d = to_json(*report.models);
    return !report.models->trained.empty();
  });
  if (!models_ran) models_->refresh();  // another process may have trained
  if (config_.learning.adaptive_refinement_enabled)
    periodic("tuning", kTuningLastRun, period_of(opt.parameter_tuning_frequency), [&](nlohmann::json& d) {
      report.tuning = tuner_->tune_selector(now);
      d = to_json(*report.tuning);
      return report.tuning->skipped.empty();
    });
  if (config_.learning.performance_tracking_enabled)
    periodic("rollups", "jobs.metric_rollups.last_run", std::optional<TimeMs>(3600000LL), [&](nlohmann::json& d) {
      report.rollup_hours = run_rollups(now);
      report.alerts_fired = last_alerts_fired_;
      d = {{"hours", report.rollup_hours}, {"alerts", report.alerts_fired}};
      return true;
    });
  periodic("retention", "jobs.retention.last_run", std::optional<TimeMs>(86400000LL), [&](nlohmann::json& d) {
    report.retention = run_retention(now);
    d = to_json(*report.retention);
    return true;
  });
  return report;
}


RecordResult LearningEngine::record(std::string_view json_text) {
  require_writable("record");
  return collector_->record(json_text);
}
RecordResult LearningEngine::record(const nlohmann::json& document) {
  require_writable("record");
  return collector_->record(document);
}
RecordResult LearningEngine::record(const Event& event) {
  require_writable("record");
  return collector_->record(event);
}
std::vector<RecordResult> LearningEngine::record_batch(const std::vector<std::string>& lines) {
  require_writable("record_batch");
  return collector_->record_batch(lines);
}

void LearningEngine::flush() {
  if (!read_only_) collector_->flush();
}
void LearningEngine::close() {
  if (!read_only_) collector_->close();
}

EngineStats LearningEngine::stats() {
  EngineStats s;
  s.path = path_;
  s.collector = collector_->counters();
  collector_->with_store([&](store::Store& st) {
    s.schema_version = st.schema_version();
    s.tables = st.counts();
  });
  s.corpus_documents = collector_->corpus().documents();
  return s;
}

features::PromptFeatures LearningEngine::extract_features(std::string_view prompt, const ContextData& context) const {
  // Under the collector's corpus lock: no copy of the corpus statistics per call.
  return collector_->extract(collector_->extractor(), prompt, context_input(context));
}

std::string LearningEngine::integrity_check() {
  return collector_->with_store([](store::Store& st) { return st.integrity_check(); });
}

}  // namespace promptlearn
