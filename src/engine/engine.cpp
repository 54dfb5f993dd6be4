#include "promptlearn/engine.hpp"

#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/store/store.hpp"

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
  store::OpenOptions open;
  open.busy_timeout_ms = options.busy_timeout_ms;
  open.synchronous_full = config_.learning.data_collection.synchronous_commit != SynchronousCommit::normal;
  store_ = std::make_unique<store::Store>(path_, open);
  collector_ = std::make_unique<Collector>(*store_, config_, *clock_, options.features);
  policy_ = std::make_unique<PolicyManager>(path_, *collector_, config_, *clock_);
  experiments_ = std::make_unique<ExperimentManager>(*collector_, config_, *clock_);
  models_ = std::make_unique<ModelManager>(*collector_, config_, *clock_);
  tuner_ = std::make_unique<Tuner>(*collector_, *policy_, config_, *clock_);
}

void LearningEngine::register_template(const std::string& template_id, const std::string& version,
                                       const std::string& body, const std::string& parent_id,
                                       const std::string& parent_version, const std::string& metadata_json) {
  policy_->register_template(template_id, version, body, parent_id, parent_version, metadata_json);
}

bool LearningEngine::retire_template(const std::string& template_id, const std::string& version) {
  return policy_->retire_template(template_id, version);
}

Decision LearningEngine::select_template(const Event& interaction) { return policy_->select(interaction); }
Decision LearningEngine::select_template(const nlohmann::json& interaction) {
  return policy_->select(parse_event(interaction));
}
Decision LearningEngine::select_template(std::string_view interaction_json) {
  return policy_->select(parse_event_text(interaction_json));
}

ModelTrainingReport LearningEngine::train_models() {
  flush();
  return models_->train(clock_->now_ms());
}
std::optional<QualityEstimate> LearningEngine::predict_quality(const nlohmann::json& interaction,
                                                               const std::string& template_id) {
  return models_->predict_quality(policy_->context_for(parse_event(interaction)), template_id);
}
std::vector<TemplateProbability> LearningEngine::predict_template(const nlohmann::json& interaction) {
  return models_->predict_template(policy_->context_for(parse_event(interaction)));
}
std::optional<double> LearningEngine::predict_success(const nlohmann::json& interaction, const std::string& template_id) {
  return models_->predict_success(policy_->context_for(parse_event(interaction)), template_id);
}

bool LearningEngine::rollback(const std::string& reason) { return policy_->rollback(clock_->now_ms(), reason); }

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

constexpr const char* kModelsLastRun = "jobs.model_retraining.last_run";
constexpr const char* kTuningLastRun = "jobs.parameter_tuning.last_run";

/// True (and the run recorded in settings under `key`) when a job of period `period` is due at `now`: its
/// last run is kept in the file, so the schedule holds across processes and restarts.
/// True when the job whose last run is kept in settings under `key` is due at `now`.
bool due_at(store::Store& st, const std::string& key, TimeMs period, TimeMs now) {
  auto last = st.setting(key);
  auto t = last ? try_parse_rfc3339(*last) : std::nullopt;
  return !t || now - *t >= period;
}

bool claim_due(Collector& collector, const std::string& key, TimeMs period, TimeMs now) {
  return collector.with_store([&](store::Store& st) {
    store::Transaction tx(st.db());
    if (!due_at(st, key, period, now)) return false;
    st.put_setting(key, format_rfc3339(now), now);
    tx.commit();
    return true;
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
  return j;
}

JobsReport LearningEngine::run_due_jobs(TimeMs now) {
  JobsReport report;
  flush();  // jobs read what this process recorded
  policy_->refresh();
  if (config_.learning.historical_learning_enabled) {
    report.learn = policy_->learn(now);
    report.ran.push_back("learn");
  }
  report.rolled_back = policy_->watch(now);
  report.ran.push_back("watch");
  // The gate runs once per template_optimization_frequency (its last run is kept in settings, so the
  // schedule holds across processes and restarts).
  if (auto period = period_of(config_.learning.optimization.template_optimization_frequency)) {
    if (claim_due(*collector_, "jobs.template_optimization.last_run", *period, now)) {
      report.gate = policy_->gate(now);
      report.ran.push_back("gate");
    }
  }
  // Pattern recognition per pattern_update_frequency: the last 7 days analysed, insights, patterns and
  // anomalies written, rows older than data_retention.pattern_data_days pruned.
  if (auto period = period_of(config_.learning.optimization.pattern_update_frequency);
      period && config_.learning.pattern_recognition_enabled) {
    if (claim_due(*collector_, "jobs.pattern_recognition.last_run", *period, now)) {
      report.patterns_written = run_pattern_job(now);
      report.ran.push_back("patterns");
    }
  }
  // Model retraining and selector tuning: a run is recorded only when it did something (a model trained,
  // enough held-out decisions to tune on), so a file without enough data yet is retried at the next call,
  // not a period later.
  auto due = [&](const char* key, TimeMs period) {
    return collector_->with_store([&](store::Store& st) { return due_at(st, key, period, now); });
  };
  auto record_run = [&](const char* key) {
    collector_->with_store([&](store::Store& st) { st.put_setting(key, format_rfc3339(now), now); });
  };
  const auto retrain = period_of(config_.learning.model_training.model_retraining_frequency);
  if (retrain && due(kModelsLastRun, *retrain)) {
    report.models = models_->train(now);
    report.ran.push_back("models");
    if (!report.models->trained.empty()) record_run(kModelsLastRun);
  } else {
    models_->refresh();  // another process may have trained
  }
  const auto tune = period_of(config_.learning.optimization.parameter_tuning_frequency);
  if (tune && config_.learning.adaptive_refinement_enabled && due(kTuningLastRun, *tune)) {
    report.tuning = tuner_->tune_selector(now);
    report.ran.push_back("tuning");
    if (report.tuning->skipped.empty()) record_run(kTuningLastRun);
  }
  return report;
}

LearningEngine::~LearningEngine() = default;  // the collector flushes in its destructor

RecordResult LearningEngine::record(std::string_view json_text) { return collector_->record(json_text); }
RecordResult LearningEngine::record(const nlohmann::json& document) { return collector_->record(document); }
RecordResult LearningEngine::record(const Event& event) { return collector_->record(event); }
std::vector<RecordResult> LearningEngine::record_batch(const std::vector<std::string>& lines) {
  return collector_->record_batch(lines);
}

void LearningEngine::flush() { collector_->flush(); }
void LearningEngine::close() { collector_->close(); }

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
