#pragma once
/// @file
/// Parameter tuning in the engine (layer 4) with the Bayesian optimiser (optimize/bayesian.hpp).
///
/// Studies: named ask/tell optimisations whose whole state lives in the file (`studies`, and each trial
/// in `study_trials`, schema v6), because in the product one evaluation can be a day of live traffic: a
/// host process asks for parameters, runs with them, and tells the result days later, possibly from
/// another process; ask and tell are each one write transaction, so concurrent processes see a
/// consistent study.
///
/// The selector tuning job (parameter_tuning_frequency, weekly by default) tunes the exploration
/// parameters of the configured selection algorithm (LinUCB: alpha and epsilon_floor; Thompson: v and
/// epsilon_floor; epsilon-greedy: epsilon; softmax: temperature; Q-learning: learning_rate and
/// exploration_rate) with the off-policy value of the logged decisions as the objective
/// (PolicyManager::evaluate_parameters: a fresh policy replays the training decisions and is scored by
/// the doubly robust estimator on held-out ones), so a whole optimisation runs inside the job. The result
/// is a recommendation (best parameters, their estimated value and the configured parameters' value,
/// written to the study and to audit_log); applying it is the host's configuration change. The replay
/// values only logged rewards, so it always prefers less exploration: the exploration parameters are
/// bounded below by 0.01, the floor that keeps later off-policy estimates valid.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "promptlearn/config.hpp"
#include "promptlearn/core/clock.hpp"

namespace promptlearn {

class Collector;
class PolicyManager;

/// What the selector tuning job found.
struct TuningReport {
  std::string study;                   ///< "selector.<algorithm>"
  std::size_t evaluations = 0;
  nlohmann::json best_params = nlohmann::json::object();
  double best_value = 0;               ///< estimated reward per decision with best_params (doubly robust)
  double best_ci_low = 0, best_ci_high = 0;
  double configured_value = 0;         ///< the same estimate for the configured parameters
  std::string skipped;                 ///< why it did not run ("" when it ran)
};
nlohmann::json to_json(const TuningReport& r);

/// Ask/tell studies and the selector tuning job. Thread-safety: calls may come from several threads
/// and processes (each call is one transaction on the file).
class Tuner {
 public:
  /// Held-out decisions with a reward needed before the selector is tuned.
  static constexpr std::size_t kMinHeldOut = 200;

  Tuner(Collector& collector, const PolicyManager& policy, const Config& config, const Clock& clock);

  /// The next parameters of `study`: {"study", "trial", "params"}. The first ask creates the study from
  /// `space` (optimize::SearchSpace JSON: {"parameters": [{"name", "kind", "low", "high", "log_scale",
  /// "choices"}]}); `maximize` sets the direction at creation. The optimiser's budget and acquisition
  /// come from learning_strategies.parameter_optimization.
  /// @throws ValidationError (no such study and no space, bad space), StorageError
  nlohmann::json ask(const std::string& study, const std::optional<nlohmann::json>& space = std::nullopt,
                     bool maximize = false);
  /// Reports the value of parameters asked before. @throws ValidationError (unknown study, params that
  /// were not asked, non-finite value), StorageError
  void tell(const std::string& study, const nlohmann::json& params, double value);
  /// The study's space, direction, trials and best so far. @throws ValidationError (unknown study)
  nlohmann::json status(const std::string& study);

  /// The selector tuning job (see the file comment).
  TuningReport tune_selector(TimeMs now);

 private:
  Collector& collector_;
  const PolicyManager& policy_;
  Config config_;
  const Clock& clock_;
};

}  // namespace promptlearn
