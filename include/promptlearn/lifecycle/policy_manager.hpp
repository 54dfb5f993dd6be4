#pragma once
/// @file Template selection in production: the live policy snapshot, decisions with logged
/// propensities, learning from rewards, the off-policy deployment gate, checkpoints and rollback.
///
/// The loop (all state in the SQLite file, so several processes cooperate):
///   select()  -> the live snapshot's distribution, a sampled template, the decision logged
///   learn()   -> decisions whose outcome arrived (or whose wait expired: default reward) update the
///                candidate policy, exactly once across processes (inside one write transaction);
///                one decision in five (by a hash of its interaction id) is held out for evaluation
///   gate()    -> candidate vs live on the held-out decisions, paired doubly-robust estimate of the
///                improvement; deploy when its lower confidence bound exceeds adaptation_threshold with
///                >= min_samples_for_adaptation samples, at most max_adaptation_per_day times a day
///   watch()   -> after a deployment, a sequential test on the new version's rewards against the
///                previous version's; a significant drop rolls back automatically
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "promptlearn/collect/collector.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/core/clock.hpp"
#include "promptlearn/core/records.hpp"
#include "promptlearn/select/context.hpp"
#include "promptlearn/select/ope.hpp"
#include "promptlearn/select/policy.hpp"
#include "promptlearn/store/store.hpp"

namespace promptlearn {

/// One template's place in a decision.
struct RankedTemplate {
  std::string template_id;
  std::string version;
  double probability = 0;
  double score = 0;
};

/// What select_template returns.
struct Decision {
  std::string interaction_id;
  std::vector<RankedTemplate> ranked;  ///< every valid template, most probable first
  RankedTemplate chosen;
  double propensity = 0;               ///< probability with which `chosen` was drawn (logged)
  std::string policy_name;
  std::int64_t policy_version = 0;     ///< 0 = the initial policy, before any deployment
  bool explored = false;               ///< true when `chosen` is less probable than the top-ranked template
  double confidence = 0;               ///< probability of the top-ranked template
  std::int64_t decision_id = 0;        ///< row in `decisions` (0 when buffered, not yet written)
};
nlohmann::json to_json(const Decision& d);

/// What one learn() pass did.
struct LearnReport {
  std::int64_t learned = 0;    ///< decisions with an outcome learned from (training + held out)
  std::int64_t defaulted = 0;  ///< decisions past the reward wait, learned with the default reward
  std::int64_t held_out = 0;   ///< of those, kept for evaluation only
  std::int64_t waiting = 0;    ///< decisions still waiting for their outcome
};

/// What one gate() pass decided.
struct GateReport {
  bool deployed = false;
  std::string reason;
  std::int64_t samples = 0;
  double improvement = 0, ci_low = 0, ci_high = 0;
  std::int64_t live_version = 0;
  std::int64_t new_version = 0;
  nlohmann::json metrics = nlohmann::json::object();  ///< the estimates (ips, snips, dr of live and candidate, paired difference)
};
nlohmann::json to_json(const GateReport& g);

/// Template selection for one engine. Thread-safety: select() may run on any number of threads at
/// once and never waits for a writer (it reads an immutable snapshot and one primary-key row in WAL
/// mode); the jobs (learn, gate, watch, rollback, templates) serialise among themselves.
class PolicyManager {
 public:
  static constexpr const char* kModelName = "template_selection";
  /// policy_name of decisions made in apprentice mode (imitating the host's own choice).
  static constexpr const char* kApprenticeName = "apprentice";

  /// Loads the active checkpoint (or starts the configured policy) and the active templates.
  /// @throws StorageError, ConfigError
  PolicyManager(const std::string& path, Collector& collector, const Config& config, const Clock& clock);

  /// Adds a template version (status active) and makes it a valid action at once; `parent_id` /
  /// `parent_version` name the template it was derived from (its statistics warm-start the new one);
  /// `metadata_json` must be a JSON object (ValidationError "metadata" otherwise).
  void register_template(const std::string& template_id, const std::string& version, const std::string& body,
                         const std::string& parent_id = "", const std::string& parent_version = "",
                         const std::string& metadata_json = "{}");
  /// Retires a template version: it is never chosen again (its history is kept). False if unknown.
  bool retire_template(const std::string& template_id, const std::string& version);
  /// Active templates, as "id@version".
  std::vector<std::string> templates() const;

  /// Chooses a template for an interaction (its input_data is required) and logs the decision.
  /// @throws ValidationError (bad interaction), Error (no active template), StorageError (log write)
  Decision select(const Event& interaction);

  /// The context vector select() gives the policy for this interaction (prompt features, hour, user).
  Eigen::VectorXd context_for(const Event& interaction) const;

  /// Learns from decisions whose outcome arrived or whose wait expired. @throws StorageError
  LearnReport learn(TimeMs now);
  /// Scores the candidate against the live policy and deploys it when the gate passes.
  GateReport gate(TimeMs now);
  /// Runs the rollback test on the live version; true if it rolled back.
  bool watch(TimeMs now);
  /// Off-policy value of the configured algorithm with `overrides` merged into its parameters (e.g.
  /// {"alpha": 0.3}): a fresh policy trained on the learned training decisions (in order), scored by
  /// the doubly robust estimator on the newest held-out decisions (never trained on). This is the
  /// objective of parameter tuning: one call replays the log instead of waiting for a day of traffic.
  /// @throws ConfigError for a bad parameter (naming it), StorageError
  select::OpeEstimate evaluate_parameters(const nlohmann::json& overrides) const;
  /// The learned decisions as evaluate_parameters replays them (contexts parsed once): the training ones
  /// in order, the newest held-out ones, and the active actions.
  struct ReplayLog {
    std::vector<select::LoggedDecision> train, held;
    std::vector<std::string> actions;
  };
  ReplayLog replay_log() const;
  /// evaluate_parameters on a log read once: a tuning run evaluates many parameter sets on one log.
  select::OpeEstimate evaluate_parameters(const nlohmann::json& overrides, const ReplayLog& log) const;
  /// Restores the previous checkpoint (the live version is retired). False when there is none.
  bool rollback(TimeMs now, const std::string& reason);

  /// One learned decision to forget: the context the policy saw, the chosen action, the reward learned
  /// and the candidate version it was learned into.
  struct ForgetRow {
    std::string context;  ///< JSON array
    std::string action;   ///< "template_id@version"
    double reward = 0;
    std::int64_t learned_into = 0;
  };
  struct ForgetReport {
    std::size_t checkpoints = 0;     ///< checkpoints rewritten without the decisions
    std::size_t downdates = 0;       ///< rank-1 downdates applied (over all checkpoints)
    std::size_t not_exact = 0;       ///< checkpoints whose policy cannot forget exactly (to retrain)
  };
  /// Removes the decisions' contributions from every template_selection checkpoint that holds them
  /// (rank-1 downdates of the linear policies' statistics, Policy::downdate), inside the caller's
  /// transaction on `st`; the live policy is reloaded by refresh().
  ForgetReport forget(store::Store& st, const std::vector<ForgetRow>& rows);
  /// Re-reads the active checkpoint and templates from the file (another process may have deployed).
  void refresh();

  std::int64_t live_version() const;
  std::string policy_name() const;
  const select::ContextBuilder& context_builder() const { return context_; }

 private:
  struct Snapshot {
    std::shared_ptr<const select::Policy> policy;
    std::int64_t version = 0;
  };
  std::shared_ptr<const Snapshot> snapshot() const { return std::atomic_load(&live_); }
  void publish(std::shared_ptr<select::Policy> policy, std::int64_t version);
  std::unique_ptr<select::Policy> fresh_policy() const;
  /// Learned decisions by the held-out hash: `held` gets the newest kEvaluateLast held-out ones, `train`
  /// (when given) the others, both in decision order.
  void learned_split(store::Store& st, std::vector<store::DecisionRow>* train, std::vector<store::DecisionRow>& held) const;
  /// The apprentice's distribution when apprentice mode applies to this interaction.
  std::optional<select::Distribution> apprentice_distribution(const Event& e, const std::vector<std::string>& actions,
                                                              std::int64_t live_version) const;
  std::unique_ptr<select::Policy> load_state(const std::string& state) const;
  /// Active template keys, in registration order.
  std::vector<std::string> load_templates(store::Store& st) const;
  void sync_actions(select::Policy& p, const std::vector<std::string>& keys) const;

  std::string path_;
  Collector& collector_;
  Config config_;
  const Clock& clock_;
  select::ContextBuilder context_;

  std::shared_ptr<const Snapshot> live_;     // swapped atomically
  mutable std::mutex reader_mu_;
  std::unique_ptr<store::Store> reader_;      // second connection: selection-time reads (WAL, never blocked)
  std::mutex jobs_mu_;
};

/// Splits "id@version" (the last '@' separates them).
std::pair<std::string, std::string> split_action(const std::string& key);
/// "id@version".
std::string action_key(const std::string& template_id, const std::string& version);
/// True for the one decision in five held out for evaluation (stable hash of the interaction id).
bool is_held_out(const std::string& interaction_id);

}  // namespace promptlearn
