#pragma once
/// @file A/B experiments in production (layer 4): experiments and their assignments live in the SQLite
/// file (tables `ab_tests`, `ab_assignments`), so every process sharing the file assigns a unit to the
/// same arm and the report sees every process's assignments.
///
/// The loop:
///   create()  -> the experiment (an AbTestConfig) is stored with status 'running'
///   assign()  -> the unit's arm (select::AbTest::assign: a stable hash of experiment id and unit id, no
///                state), logged once per interaction in ab_assignments
///   (the host records the interaction's outcome as usual)
///   report()  -> assignments joined with outcomes; reward = select::compute_reward(outcome,
///                learning.reward); per-arm statistics, every pairwise test, and the verdict, which names a
///                winner only with min_samples_per_arm rewards on every arm and p < alpha / (k - 1)
///   stop()    -> status 'stopped': no further assignments; the report stays available
///
/// Statistical unit: rewards are counted per interaction. When a unit (e.g. a user) contributes many
/// interactions these are correlated and the tests' p-values are optimistic; use a unit with one or few
/// interactions (a session, an interaction) when that matters.
///
/// Example:
///     select::AbTestConfig cfg;
///     cfg.experiment_id = "greeting-v2";
///     cfg.arms = {{"control", 1}, {"candidate", 1}};
///     ExperimentManager experiments(collector, config, clock);
///     experiments.create(cfg);
///     std::string arm = experiments.assign("greeting-v2", user_id, interaction_id);
///     ...
///     ExperimentReport r = experiments.report("greeting-v2");   // r.verdict.winner == "none" until decided
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "promptlearn/collect/collector.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/core/clock.hpp"
#include "promptlearn/select/ab_test.hpp"

namespace promptlearn {

/// The state of one experiment, computed from the file.
struct ExperimentReport {
  std::string experiment_id;
  std::string status;                                ///< "running" or "stopped"
  select::AbTestConfig config;                       ///< as created
  /// Per arm name: {"weight", "assigned" (interactions), "n" (rewards), "mean", "stddev" (sample),
  /// "successes" (rewards >= success_threshold), "success_rate"}.
  nlohmann::json arms = nlohmann::json::object();
  /// The configured metric's two-sided test for every arm pair (a, b) with a before b in configuration
  /// order; pairs whose arms have too few rewards for the test (Welch: 2, z-test: 1) are left out.
  std::vector<select::AbTestResult> comparisons;
  select::AbVerdict verdict;
  std::int64_t assigned = 0;       ///< assignments logged
  std::int64_t with_outcome = 0;   ///< of those, with an outcome row (one without any reward component is
                                   ///< counted here but in no arm's n)
};

/// JSON form of a report (what a CLI prints); non-finite statistics (e.g. the z-test's df) are null.
nlohmann::json to_json(const ExperimentReport& r);

/// The AbTestConfig as stored in `ab_tests.config`: the fields of select::AbTest::to_json without the
/// statistics.
nlohmann::json experiment_config_to_json(const select::AbTestConfig& c);
/// Reads experiment_config_to_json's form (validated). @throws ConfigError naming the field
select::AbTestConfig experiment_config_from_json(const nlohmann::json& j);

/// A/B experiments over one file. Thread-safety: every member function may be called from several
/// threads at once (they serialise on one mutex); the file is only touched through
/// Collector::with_store, and several processes may share it.
class ExperimentManager {
 public:
  /// Nothing is read or written here. `collector`, `clock` must outlive the manager; `config` is copied
  /// (its learning.reward turns outcomes into rewards).
  ExperimentManager(Collector& collector, const Config& config, const Clock& clock);

  /// Starts an experiment (status running) and writes an audit_log row (action 'create_experiment').
  /// @throws ConfigError from AbTestConfig::validate; ValidationError naming experiment_id when an
  ///   experiment with that id exists (running or stopped); StorageError
  void create(const select::AbTestConfig& config);

  /// The arm of `unit_id` (select::AbTest::assign: deterministic in experiment id, unit id and weights),
  /// logged for `interaction_id`. Idempotent per interaction: calling again returns the same arm and
  /// writes nothing.
  /// @throws ValidationError for an empty unit or interaction id, an unknown or stopped experiment, or an
  ///   interaction already assigned in this experiment to another unit; StorageError
  std::string assign(const std::string& experiment_id, const std::string& unit_id,
                     const std::string& interaction_id);

  /// The experiment's statistics from the file. Flushes the collector first, so every outcome this
  /// process accepted is counted. Works on running and stopped experiments.
  /// @throws ValidationError for an unknown experiment; StorageError
  ExperimentReport report(const std::string& experiment_id);

  /// Stops assignments (status stopped, stopped_at now) and writes an audit_log row (action
  /// 'stop_experiment'). Stopping a stopped experiment changes nothing.
  /// @throws ValidationError for an unknown experiment; StorageError
  void stop(const std::string& experiment_id);

  /// Experiment ids, oldest first: only the running ones, or all.
  std::vector<std::string> experiments(bool running_only = true);

 private:
  struct Loaded {
    std::string config_text;   // what the file holds (to notice a changed row)
    select::AbTest test;       // empty statistics: used to assign
  };
  /// The experiment's config and status (under mutex_ and the writer lock). @throws ValidationError
  const Loaded& load(store::Store& st, const std::string& experiment_id, std::string& status);

  Collector& collector_;
  RewardConfig reward_;
  const Clock& clock_;
  std::mutex mu_;
  std::map<std::string, Loaded, std::less<>> cache_;  // parsed configs, by experiment id
};

}  // namespace promptlearn
