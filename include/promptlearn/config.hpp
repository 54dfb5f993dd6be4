#pragma once
/// @file Configuration: the specification's JSON document as plain structs whose member initialisers are the
/// defaults, parsed strictly (unknown keys, wrong types and out-of-range values throw ConfigError naming the
/// dotted key path) and written back out in full. Every key is listed in docs/configuration.md.
///
/// Example:
///     auto cfg = promptlearn::Config::from_string(R"({"learning": {"data_retention": {"pattern_data_days": 30}}})");
///     double alpha = cfg.learning_strategies.template_selection.parameters.at("alpha").get<double>();  // 1.0
// The full nlohmann header (not json_fwd.hpp) is needed because StrategyConfig holds a json by value.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace promptlearn {

/// How often a scheduled job runs (`run_due_jobs`); JSON spelling is the enumerator name.
enum class Frequency { hourly, daily, weekly, monthly, never };
/// How the collector writes events: before returning, or through a bounded queue flushed in batches.
enum class CollectionMode { synchronous, buffered };
/// SQLite `PRAGMA synchronous` level used for collector commits.
enum class SynchronousCommit { full, normal };

/// JSON spelling of a frequency, e.g. "monthly"; empty for a value outside the enumeration.
std::string_view to_string(Frequency value) noexcept;
/// JSON spelling of a collection mode; empty for a value outside the enumeration.
std::string_view to_string(CollectionMode value) noexcept;
/// JSON spelling of a commit level; empty for a value outside the enumeration.
std::string_view to_string(SynchronousCommit value) noexcept;
/// The frequency spelled `text` ("hourly", ...), or nullopt.
std::optional<Frequency> frequency_from_string(std::string_view text) noexcept;
/// The collection mode spelled `text` ("synchronous" or "buffered"), or nullopt.
std::optional<CollectionMode> collection_mode_from_string(std::string_view text) noexcept;
/// The commit level spelled `text` ("full" or "normal"), or nullopt.
std::optional<SynchronousCommit> synchronous_commit_from_string(std::string_view text) noexcept;

/// `learning.data_retention`: how long each kind of data is kept. Thread-safety: plain value.
struct DataRetention {
  int interaction_data_days = 90;   ///< Interactions older than this many days are deleted; >= 1.
  int performance_data_days = 365;  ///< Performance records kept this many days; >= 1.
  int pattern_data_days = 180;      ///< Learned patterns kept this many days; >= 1.
  int model_checkpoints_kept = 10;  ///< Deployed model versions kept for rollback; >= 1.
};

/// `learning.learning_parameters`: adaptation rates and deployment gates. Thread-safety: plain value.
struct LearningParameters {
  double learning_rate = 0.1;           ///< Step size of incremental updates; (0, 1].
  double discount_factor = 0.95;        ///< Discount of future reward (Q-learning); [0, 1].
  double exploration_rate = 0.1;        ///< Share of exploratory decisions; [0, 1].
  double adaptation_threshold = 0.05;   ///< Minimum estimated improvement to deploy a candidate; [0, 1].
  int min_samples_for_adaptation = 50;  ///< Logged decisions needed before a candidate is scored; >= 1.
  int max_adaptation_per_day = 5;       ///< Deployments allowed per day; >= 0 (0 freezes the policy).
};

/// `learning.model_training`: offline model training. Thread-safety: plain value.
struct ModelTraining {
  int batch_size = 100;                                   ///< Training mini-batch size; >= 1.
  double validation_split = 0.2;                          ///< Holdout share; (0, 1).
  int early_stopping_patience = 10;                       ///< Epochs without improvement before stopping; >= 1.
  int max_epochs = 100;                                   ///< Upper bound on training epochs; >= 1.
  Frequency model_retraining_frequency = Frequency::monthly;  ///< How often models are retrained.
  std::uint64_t random_seed = 42;                         ///< Seed of every Rng the training uses.
};

/// `learning.optimization`: schedule of the periodic optimisation jobs. Thread-safety: plain value.
struct OptimizationSchedule {
  Frequency pattern_update_frequency = Frequency::hourly;        ///< Pattern recognition refresh.
  Frequency template_optimization_frequency = Frequency::daily;  ///< Template (policy) optimisation.
  Frequency parameter_tuning_frequency = Frequency::weekly;      ///< Bayesian parameter tuning.
};

/// `learning.reward` (a promptlearn extension): how an outcome becomes a reward in [0, 1].
/// reward = sum_k w_k * c_k / sum_k w_k over the components c_k the outcome carries:
/// quality = response_quality_score / 10, satisfaction = (user_satisfaction_rating - 1) / 9,
/// acceptance = implicit acceptance_rate, edits = 1 - min(edit_action_count, edits_cap) / edits_cap,
/// latency = 1 - min(claude_response_time_ms / latency_budget_ms, 1). A host-given `reward` wins.
/// Thread-safety: plain value.
struct RewardConfig {
  double quality_weight = 0.4;          ///< weight of response_quality_score; >= 0
  double satisfaction_weight = 0.3;     ///< weight of user_satisfaction_rating; >= 0
  double acceptance_weight = 0.2;       ///< weight of implicit acceptance_rate; >= 0
  double edit_weight = 0.05;            ///< weight of (few) edits; >= 0
  double latency_weight = 0.05;         ///< weight of (low) response latency; >= 0
  int edits_cap = 5;                    ///< edit count at which the edit component reaches 0; >= 1
  double latency_budget_ms = 30000;     ///< response time at which the latency component reaches 0; > 0
  double default_reward = 0.0;          ///< reward of a decision whose outcome has not come within the wait; [0, 1]
  int reward_wait_hours = 24;           ///< how long to wait for an outcome; >= 1
};

/// `learning.selection` (a promptlearn extension): how the engine starts.
/// Thread-safety: plain value.
struct SelectionConfig {
  /// Apprentice mode: until a learned policy has been deployed (shown better off-policy than the host's
  /// own choice), select_template imitates the template the host names in enhancement_data
  /// (selected_template / template_version), exploring the others with `apprentice_exploration`.
  bool apprentice_mode = false;
  double apprentice_exploration = 0.2;  ///< share spread uniformly over all templates; (0, 1)
};

/// `learning.data_collection` (a promptlearn extension of the specification): how events are written.
/// Thread-safety: plain value.
struct DataCollection {
  int batch_size = 100;                               ///< Events per write transaction; 1..100000.
  int buffer_capacity = 10000;                        ///< Buffered-mode queue bound; >= batch_size.
  CollectionMode mode = CollectionMode::synchronous;  ///< Write before returning, or buffer.
  int max_prompt_chars = 200000;                      ///< Longer prompts (UTF-8 bytes) are rejected; 1..10000000.
  bool store_raw_prompt = true;                       ///< Store the prompt text (false: features only).
  SynchronousCommit synchronous_commit = SynchronousCommit::full;  ///< SQLite durability of each commit.
};

/// `learning.privacy` (a promptlearn extension): what is stored, and how. Thread-safety: plain value.
struct PrivacyConfig {
  /// user_id and session_id are stored only as keyed hashes (privacy/crypto.hpp). The key: the host's
  /// (EngineOptions::privacy_key), else `key_file`, else (auto_key) the file "<database>.key" beside the
  /// database, created with mode 0600 when missing. With no key at all the ids are not stored.
  bool hash_identifiers = true;
  std::string key_file;                     ///< A file holding the 32-byte master key (64 hex characters).
  bool auto_key = true;                     ///< Create "<database>.key" when no other key is given.
  bool scrub_pii = false;                   ///< Replace PII and secrets in stored text by typed placeholders.
  /// The kinds scrubbed: email, phone, card, ip, secret, home_user.
  std::vector<std::string> scrub_kinds = {"email", "phone", "card", "ip", "secret", "home_user"};
  bool encrypt_text = false;                ///< Encrypt raw_prompt and explicit feedback at rest (needs a key).
  int timestamp_granularity_seconds = 0;    ///< Stored timestamps truncated to this; 0 = exact; 0..86400.
  /// Fields never stored: raw_prompt, processed_input, explicit_feedback, working_directory, recent_files,
  /// git_branch (features are still derived from them before they are dropped).
  std::vector<std::string> omit_fields;
};

/// `learning_strategies.<slot>`: an algorithm name and its parameters.
/// `parameters` is an object holding every parameter of `algorithm` (defaults filled in by from_json and
/// for_algorithm): numbers as JSON floats, integers as JSON integers, choices as strings.
/// Thread-safety: plain value.
struct StrategyConfig {
  std::string algorithm;                                  ///< E.g. "linucb"; allowed names depend on the slot.
  nlohmann::json parameters = nlohmann::json::object();  ///< Validated parameters of `algorithm`.

  /// `algorithm` with all its default parameters, e.g. for_algorithm("softmax") -> {"temperature": 0.1}.
  /// @throws ConfigError (key "algorithm") if no slot knows `algorithm`.
  static StrategyConfig for_algorithm(std::string_view algorithm);
};

/// `learning`: switches and the learning subsections. Thread-safety: plain value.
struct LearningConfig {
  bool historical_learning_enabled = true;   ///< Learn from stored interactions.
  bool adaptive_refinement_enabled = true;   ///< Deploy improved policies automatically.
  bool performance_tracking_enabled = true;  ///< Record performance metrics.
  bool pattern_recognition_enabled = true;   ///< Run pattern recognition jobs.
  DataRetention data_retention;              ///< Retention per data kind.
  LearningParameters learning_parameters;    ///< Rates and deployment gates.
  ModelTraining model_training;              ///< Offline training.
  OptimizationSchedule optimization;         ///< Job schedule.
  DataCollection data_collection;            ///< Event writing (extension).
  RewardConfig reward;                       ///< Outcome -> reward (extension).
  SelectionConfig selection;                 ///< Apprentice mode (extension).
  PrivacyConfig privacy;                     ///< Identifier hashing, scrubbing, encryption (extension).
};

/// `learning_strategies`: the algorithm used for each learning task. Thread-safety: plain value.
struct LearningStrategies {
  /// linucb | thompson | epsilon_greedy | softmax | q_learning.
  StrategyConfig template_selection = StrategyConfig::for_algorithm("linucb");
  /// bayesian_optimization.
  StrategyConfig parameter_optimization = StrategyConfig::for_algorithm("bayesian_optimization");
  /// dbscan.
  StrategyConfig pattern_recognition = StrategyConfig::for_algorithm("dbscan");
};

/// The whole configuration document. A default-constructed Config holds the specification's defaults.
/// Thread-safety: plain value; concurrent const use is safe, mutation needs external synchronisation.
struct Config {
  LearningConfig learning;                  ///< `learning` section.
  LearningStrategies learning_strategies;  ///< `learning_strategies` section.

  /// The specification's defaults (same as `Config{}`).
  static Config defaults();
  /// Parses a document in which every key is optional (missing = default).
  /// @throws ConfigError naming the dotted key path of an unknown key, a wrong type or an out-of-range value.
  static Config from_json(const nlohmann::json& doc);
  /// Parses JSON text strictly (no comments, no duplicate keys), then as from_json.
  /// @throws ConfigError with key "config" and the parser's message (line, column) for malformed text.
  static Config from_string(std::string_view json_text);
  /// The full document with every key; `from_json(c.to_json()) == c`.
  nlohmann::json to_json() const;
  /// Checks every range and choice of a Config built in C++, with the same messages as from_json.
  /// @throws ConfigError naming the dotted key path.
  void validate() const;
};

/// Member-wise equality of each configuration struct (doubles compared exactly, parameters as JSON values).
bool operator==(const DataRetention& a, const DataRetention& b);
bool operator==(const LearningParameters& a, const LearningParameters& b);
bool operator==(const ModelTraining& a, const ModelTraining& b);
bool operator==(const OptimizationSchedule& a, const OptimizationSchedule& b);
bool operator==(const DataCollection& a, const DataCollection& b);
bool operator==(const RewardConfig& a, const RewardConfig& b);
bool operator==(const SelectionConfig& a, const SelectionConfig& b);
bool operator==(const StrategyConfig& a, const StrategyConfig& b);
bool operator==(const LearningConfig& a, const LearningConfig& b);
bool operator==(const LearningStrategies& a, const LearningStrategies& b);
bool operator==(const Config& a, const Config& b);
/// Negations of the above.
inline bool operator!=(const DataRetention& a, const DataRetention& b) { return !(a == b); }
inline bool operator!=(const LearningParameters& a, const LearningParameters& b) { return !(a == b); }
inline bool operator!=(const ModelTraining& a, const ModelTraining& b) { return !(a == b); }
inline bool operator!=(const OptimizationSchedule& a, const OptimizationSchedule& b) { return !(a == b); }
inline bool operator!=(const DataCollection& a, const DataCollection& b) { return !(a == b); }
bool operator==(const PrivacyConfig& a, const PrivacyConfig& b);
inline bool operator!=(const PrivacyConfig& a, const PrivacyConfig& b) { return !(a == b); }
inline bool operator!=(const RewardConfig& a, const RewardConfig& b) { return !(a == b); }
inline bool operator!=(const SelectionConfig& a, const SelectionConfig& b) { return !(a == b); }
inline bool operator!=(const StrategyConfig& a, const StrategyConfig& b) { return !(a == b); }
inline bool operator!=(const LearningConfig& a, const LearningConfig& b) { return !(a == b); }
inline bool operator!=(const LearningStrategies& a, const LearningStrategies& b) { return !(a == b); }
inline bool operator!=(const Config& a, const Config& b) { return !(a == b); }

/// nlohmann hook: `json j = config;` (same as config.to_json()).
void to_json(nlohmann::json& j, const Config& config);
/// nlohmann hook: `j.get<Config>()` (same as Config::from_json).
void from_json(const nlohmann::json& j, Config& config);

}  // namespace promptlearn
