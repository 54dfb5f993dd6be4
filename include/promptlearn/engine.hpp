#pragma once
/// @file LearningEngine: the one facade a host links against. It only wires modules together.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "promptlearn/collect/collector.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/core/clock.hpp"
#include "promptlearn/core/records.hpp"
#include "promptlearn/features/extractor.hpp"
#include "promptlearn/lifecycle/experiments.hpp"
#include "promptlearn/lifecycle/model_manager.hpp"
#include "promptlearn/lifecycle/tuning.hpp"
#include "promptlearn/lifecycle/policy_manager.hpp"
#include "promptlearn/lifecycle/data_lifecycle.hpp"

namespace promptlearn {

namespace patterns {
struct AnalysisReport;  // promptlearn/patterns/analysis.hpp (include it to use analyze()'s result)
}
namespace privacy {
class Protector;  // promptlearn/privacy/protector.hpp
}

/// What analyze() looks at.
struct AnalysisOptions {
  int days = 7;             ///< the window is [now - days, now); >= 1
  TimeMs from = 0, to = 0;  ///< an explicit window [from, to) when to > from (overrides days)
  bool persist = false;     ///< write the insights and patterns to `patterns`, the anomalies to `anomalies`
  std::size_t max_events = 2000000;  ///< the newest events of the window that are analysed; >= 1
  /// Threads that load and analyse (each load thread reads on a connection of its own); 0 = the
  /// machine's hardware threads, at most 4; 1 = all on the calling thread. The report does not depend
  /// on it. The scheduled pattern job uses 1 (it runs inside the host's run_due_jobs call).
  int threads = 0;
};

/// Options that are about this process, not about learning (those are in Config).
struct EngineOptions {
  /// Time source; nullptr = the system clock. Must outlive the engine.
  const Clock* clock = nullptr;
  /// How long a write waits for another process's lock before failing (ms).
  int busy_timeout_ms = 60000;
  /// Options of the feature extractor.
  features::FeatureOptions features{};
  /// The privacy master key (64 hex characters or 32 raw bytes) for identifier hashes and encryption at
  /// rest; empty = learning.privacy.key_file, else the automatic key file (config.hpp, PrivacyConfig).
  std::string privacy_key;
  /// Alert rules (JSON array of monitor::AlertRule objects, monitor/alerts.hpp) evaluated on each hour of
  /// metrics the rollup job completes; null = the defaults (docs/monitoring.md). Metrics: total_p95_ms,
  /// claude_response_p95_ms, error_rate, requests_per_hour. @throws ConfigError naming alert_rules[i].field
  nlohmann::json alert_rules;
  /// Called with each alert fired (its JSON) after it is stored in `alerts`, on the thread running the
  /// jobs. Exceptions it throws are caught and ignored.
  std::function<void(const nlohmann::json& alert)> on_alert;
  /// Open for analysts: nothing is written (record, select, jobs, erasure... throw Error), and the file
  /// is not migrated (an older schema is an error).
  bool read_only = false;
};

/// What run_due_jobs did.
struct JobsReport {
  std::vector<std::string> ran;          ///< names of the jobs that ran
  std::optional<LearnReport> learn;
  std::optional<GateReport> gate;
  bool rolled_back = false;
  std::size_t patterns_written = 0;  ///< rows written by the pattern job (0 when it did not run)
  std::optional<ModelTrainingReport> models;  ///< the model retraining job, when it ran
  std::optional<TuningReport> tuning;         ///< the selector tuning job, when it ran
  std::optional<RetentionReport> retention;   ///< the daily retention job, when it ran
  std::size_t rollup_hours = 0;               ///< hours of metrics rolled up by the hourly rollup job
  std::size_t alerts_fired = 0;               ///< alerts fired (stored in `alerts`, sent to on_alert)
  /// Jobs that failed: name and error (recorded in job_runs; the other jobs still ran).
  std::vector<std::pair<std::string, std::string>> failed;
  /// Jobs that were due but another process held their lease (it is running them).
  std::vector<std::string> leased_elsewhere;
};
nlohmann::json to_json(const JobsReport& r);

/// Everything stats() reports.
struct EngineStats {
  std::string path;
  int schema_version = 0;
  CollectorCounters collector;       ///< this engine's running totals
  store::TableCounts tables;         ///< rows in the file (all processes)
  std::uint64_t corpus_documents = 0;
};

/// JSON form of the stats (what `promptlearn stats` prints).
nlohmann::json to_json(const EngineStats& s);

/// The learning engine over one SQLite file.
///
///     promptlearn::LearningEngine engine("learn.db", promptlearn::Config::defaults());
///     engine.record(R"({"interaction_id": "...", "input_data": {"raw_prompt": "Fix the failing test"}})");
///     engine.flush();
///
/// Thread-safety: every member function may be called from several threads at once. Several
/// processes may open the same file at once.
class LearningEngine {
 public:
  /// Opens (creating if needed) and migrates the file. @throws StorageError, ConfigError
  LearningEngine(const std::string& path, Config config, EngineOptions options = {});
  /// Flushes buffered events (see close() to observe errors).
  ~LearningEngine();
  LearningEngine(const LearningEngine&) = delete;
  LearningEngine& operator=(const LearningEngine&) = delete;

  /// Records one wire document (JSON text). Invalid documents are kept in rejected_events and
  /// reported in the result, never thrown. @throws StorageError when the file cannot be written.
  RecordResult record(std::string_view json_text);
  /// JSON text given as a string literal (would otherwise be ambiguous between text and a json value).
  RecordResult record(const char* json_text) { return record(std::string_view(json_text)); }
  RecordResult record(const std::string& json_text) { return record(std::string_view(json_text)); }
  RecordResult record(const nlohmann::json& document);
  RecordResult record(const Event& event);
  /// Records many documents in one transaction; all are committed before return.
  std::vector<RecordResult> record_batch(const std::vector<std::string>& json_lines);

  // ---- template selection
  /// Adds a template version as a valid action (warm-started from its parent when one is named);
  /// `metadata_json` (a JSON object) is stored with it, e.g. the genome and lineage of an evolved template.
  void register_template(const std::string& template_id, const std::string& version, const std::string& body,
                         const std::string& parent_id = "", const std::string& parent_version = "",
                         const std::string& metadata_json = "{}");
  /// Retires a template version; false if unknown.
  bool retire_template(const std::string& template_id, const std::string& version);
  /// Chooses the template for an interaction (a wire document with input_data) and logs the decision
  /// (with its propensity) before returning. Never waits for a writer.
  /// @throws ValidationError for a bad document, Error when no template is active, StorageError
  Decision select_template(const Event& interaction);
  Decision select_template(const nlohmann::json& interaction);
  Decision select_template(std::string_view interaction_json);
  Decision select_template(const char* interaction_json) { return select_template(std::string_view(interaction_json)); }
  Decision select_template(const std::string& interaction_json) {
    return select_template(std::string_view(interaction_json));
  }
  /// Runs the scheduled work that is due at `now` (virtual time in simulations): learning from
  /// rewards and the rollback watch every call, the deployment gate per
  /// optimization.template_optimization_frequency. @throws StorageError
  JobsReport run_due_jobs(TimeMs now);
  /// Restores the previous policy checkpoint. False when there is none.
  bool rollback(const std::string& reason = "requested by the host");
  /// The policy side: learn/gate/watch one by one, the live version, templates.
  PolicyManager& policy() { return *policy_; }
  /// A/B experiments over policies or templates: create, assign (deterministic by unit id), report
  /// (Welch t-test / two-proportion z-test, a verdict that waits for enough samples), stop.
  ExperimentManager& experiments() { return *experiments_; }

  /// Commits everything buffered. @throws StorageError
  void flush();
  /// Flushes and persists derived statistics; the engine stays usable. @throws StorageError
  void close();

  // ---- predictive models (lifecycle/model_manager.hpp)
  /// Trains the quality predictor, the template classifier and the success net on the newest logged
  /// decisions with outcomes, and checkpoints those with enough data. @throws StorageError
  ModelTrainingReport train_models();
  /// Expected outcome quality (0..10, with an interval) of a template for an interaction (its input_data
  /// is required, as for select_template); nullopt before the model is trained.
  /// @throws ValidationError (bad interaction)
  std::optional<QualityEstimate> predict_quality(const nlohmann::json& interaction, const std::string& template_id);
  /// Templates ranked by calibrated probability of being the one that succeeds for this interaction;
  /// empty before the classifier is trained. @throws ValidationError (bad interaction)
  std::vector<TemplateProbability> predict_template(const nlohmann::json& interaction);
  /// Probability that the interaction succeeds with the template; nullopt before the model is trained.
  std::optional<double> predict_success(const nlohmann::json& interaction, const std::string& template_id);
  ModelManager& models() { return *models_; }
  /// Ask/tell tuning studies kept in the file, and the selector tuning job (lifecycle/tuning.hpp).
  Tuner& tuner() { return *tuner_; }

  // ---- analysis
  /// Pattern analysis of a window of stored interactions (frequency, correlations, template effect,
  /// anomalies, drift, topic clusters, trends, insights; patterns/analysis.hpp). Reads a consistent
  /// snapshot; with options.persist also writes `patterns` and `anomalies`.
  /// @throws ConfigError for bad options, StorageError
  patterns::AnalysisReport analyze(const AnalysisOptions& options = {});

  // ---- data lifecycle (lifecycle/data_lifecycle.hpp)

  /// Every stored row of one user as JSON (encrypted text decrypted). `user_id` as the host knows it (it
  /// is hashed with the engine's key) or as stored (a hash). Written to audit_log. @throws Error when ids
  /// are hashed and there is no key (nothing can be found), StorageError
  nlohmann::json export_user(const std::string& user_id);
  /// Deletes every row of one user, takes their learned decisions out of every policy checkpoint (rank-1
  /// downdates; policies that cannot forget exactly are marked for retraining, as are the predictive
  /// models, retrained at the next run_due_jobs), then checkpoints and truncates the write-ahead log so no
  /// old page image keeps the data (deleted content is zeroed: PRAGMA secure_delete). Written to
  /// audit_log without the id. @throws Error (read-only, no key), StorageError
  EraseReport erase_user(const std::string& user_id);
  /// The retention job now (also run daily by run_due_jobs). @throws StorageError
  RetentionReport run_retention(TimeMs now);

  /// Runs run_due_jobs(clock.now_ms()) every `interval` on a background thread until
  /// stop_background_jobs() or destruction. Errors are recorded in job_runs and in last_background_error().
  /// @throws Error if already started or read-only.
  void start_background_jobs(std::chrono::milliseconds interval);
  void stop_background_jobs();
  std::string last_background_error() const;

  /// The event with its user and session ids as the engine stores them (keyed hashes with
  /// learning.privacy.hash_identifiers): what select_template and the predictions see, e.g. for
  /// PolicyManager::context_for. @throws ValidationError for an invalid document
  Event with_stored_ids(Event e) const;
  Event with_stored_ids(const nlohmann::json& doc) const;

  // ---- monitoring (monitor/metrics.hpp, monitor/alerts.hpp; docs/monitoring.md)

  /// Latency percentiles per stage, throughput, error rate and types, MTBF, cache hit rate over [from, to)
  /// as JSON, from the hourly rollups where they cover the window (daily ones past the hourly retention)
  /// and raw rows for the rest; plus this process's resource use and the alerts fired in the window.
  nlohmann::json metrics(TimeMs from, TimeMs to);
  /// The rollup job now (also hourly in run_due_jobs): every complete hour since the last run (the last
  /// two again, for late data) written to metric_rollups, the days they touch re-merged, the alert rules
  /// evaluated on each newly completed hour. Returns the hours written. @throws StorageError
  std::size_t run_rollups(TimeMs now);

  /// Counters and table sizes.
  EngineStats stats();
  /// Features of a prompt as the collector would extract them now (TF-IDF against the current corpus).
  features::PromptFeatures extract_features(std::string_view prompt, const ContextData& context = {}) const;
  /// PRAGMA integrity_check of the file: "ok" when sound.
  std::string integrity_check();

  const Config& config() const { return config_; }
  const std::string& path() const { return path_; }
  const Clock& clock() const { return *clock_; }

 private:
  /// The scheduled pattern job at `now`; returns the rows written.
  std::size_t run_pattern_job(TimeMs now);
  patterns::AnalysisReport analyze_window(TimeMs from, TimeMs to, std::size_t max_events, int threads);

  std::string path_;
  Config config_;
  SystemClock system_clock_;
  const Clock* clock_;
  std::unique_ptr<privacy::Protector> privacy_;  // before the collector that points to it (destroyed after)
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Collector> collector_;
  std::unique_ptr<PolicyManager> policy_;
  std::unique_ptr<ExperimentManager> experiments_;
  std::unique_ptr<ModelManager> models_;
  std::unique_ptr<Tuner> tuner_;
  bool read_only_ = false;
  std::string holder_;  ///< this engine's name in job leases: host, pid and a random part
  struct Background;
  std::unique_ptr<Background> background_;

  void require_writable(const char* what) const;
  void audit_configuration();
  nlohmann::json alert_rules_;                       ///< validated (EngineOptions::alert_rules or defaults)
  std::function<void(const nlohmann::json&)> on_alert_;
  std::size_t last_alerts_fired_ = 0;
  void configure_monitoring(const nlohmann::json& rules, std::function<void(const nlohmann::json&)> on_alert);
  /// The id as stored (hashed with the engine's key when hashing is on). @throws Error without a key.
  std::string stored_user_id(const std::string& id) const;
};

}  // namespace promptlearn
