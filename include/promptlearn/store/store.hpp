#pragma once
/// @file The promptlearn SQLite file: schema, migrations and one small repository per table.
/// Table and column names are a contract a host may query with the plain sqlite3 tool
/// (see docs/schema.md). Timestamps are RFC 3339 UTC text with milliseconds ("...T10:30:00.000Z"),
/// fixed width so they sort and compare as text; JSON is stored as JSON text.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "promptlearn/core/clock.hpp"
#include "promptlearn/core/records.hpp"
#include "promptlearn/patterns/event.hpp"
#include "promptlearn/store/database.hpp"

namespace promptlearn::store {

/// The schema version this library writes (PRAGMA user_version).
inline constexpr int kSchemaVersion = 7;
/// PRAGMA application_id of a promptlearn file ("Plrn").
inline constexpr std::int64_t kApplicationId = 0x506C726E;

/// Refuses (without writing anything) a file with a newer schema or one that belongs to another
/// application. A new, empty file passes. @throws StorageError
void check_ownership(Database& db);

/// Refuses a file that is not a promptlearn file at kSchemaVersion (check_ownership, then the version):
/// what a reader that must not migrate checks. @throws StorageError
void check_current(Database& db);

/// An existing promptlearn file opened read-only as it is (no WAL switch, no migration), checked by
/// check_current. @throws StorageError when it does not exist, is not ours or is at another version
Database open_read_only(const std::string& path);

/// Brings the file to kSchemaVersion: creates a new file's schema, runs forward migrations on an older
/// one (never destructive), refuses a newer schema or a foreign SQLite file without touching it.
/// @throws StorageError
void migrate(Database& db);

/// A performance or outcome section that arrived before its interaction.
struct PendingRow {
  std::int64_t id;
  std::string kind;        ///< "performance" or "outcome"
  std::string payload;     ///< the full wire document (JSON text)
};

/// One logged template decision (table `decisions`).
struct DecisionRow {
  std::int64_t decision_id = 0;        ///< assigned on insert
  std::string interaction_id;
  TimeMs timestamp = 0;
  std::string policy_name;
  std::int64_t policy_version = 0;
  std::string action_set;              ///< JSON array of {template_id, version, probability, score}
  std::string chosen_template, chosen_version;
  double propensity = 1;
  std::string context;                 ///< JSON array: the context vector the policy saw
  std::optional<double> reward;        ///< set once, when the decision is learned from
};

/// A decision waiting to be learned from, with the outcome of its interaction if one arrived.
struct TrainingRow {
  DecisionRow decision;
  std::optional<std::string> user_id;   ///< of the interaction, when it has arrived
  std::optional<std::string> session_id;
  std::optional<Outcome> outcome;
};

/// One template version (table `templates`).
struct TemplateRow {
  std::string template_id, version, body, status;   ///< status: candidate | active | retired
  std::optional<std::string> parent_id, parent_version;
  std::string metadata = "{}";                       ///< JSON object
  TimeMs created_at = 0;
};

/// One row of `patterns`: an insight or a detected pattern (schema v5).
struct PatternRow {
  std::string kind;            ///< "insight" or "pattern"
  std::string type;            ///< e.g. peak_hours, dominant_template, skill_progression, bottleneck
  std::string subject;         ///< user id, template, domain; "" for the population
  double confidence = 0;       ///< 0..1
  std::string description;
  std::string recommendation;
  std::string evidence = "{}";  ///< JSON object
  TimeMs window_start = 0, window_end = 0, created_at = 0;
};

/// One row of `anomalies` (schema v5).
struct AnomalyRow {
  std::string metric;
  std::string subject;
  std::string interaction_id;
  TimeMs timestamp = 0;
  double value = 0;
  double score = 0;
  std::string detector;
  TimeMs created_at = 0;
};

/// One model checkpoint (table `models`).
struct ModelRow {
  std::string name;
  std::int64_t version = 0;
  std::string state;                   ///< serialised state (a blob: CBOR for policies, select::encode_checkpoint)
  std::string metrics = "{}";          ///< JSON object
  std::string status;                  ///< candidate | active | retired
  TimeMs created_at = 0;
};

/// A logged decision with its outcome: one training row of the predictive models.
struct ModelDataRow {
  std::string context;                 ///< JSON array: the context vector the policy saw
  std::string template_id;             ///< the chosen template
  std::optional<double> quality;       ///< outcome response_quality_score (0..10)
  std::optional<double> acceptance;    ///< outcome acceptance_rate (0..1)
};

/// One trial of a tuning study (table `study_trials`, schema v6).
struct TrialRow {
  std::string study;
  std::int64_t trial = 0;
  std::string params;                  ///< JSON object
  std::optional<double> value;         ///< set when told
  TimeMs asked_at = 0;
  std::optional<TimeMs> told_at;
};

/// Row counts of the main tables.
struct TableCounts {
  std::int64_t interactions = 0, performance = 0, outcomes = 0, pending_events = 0, rejected_events = 0,
               decisions = 0, templates = 0, models = 0, audit_log = 0;
};

/// The outcome an interaction's reward is computed from, read from the current row of `st` at columns
/// first .. first + 5, which must be the `outcomes` columns claude_response_time_ms,
/// response_quality_score, user_satisfaction_rating, acceptance_rate, edit_action_count, reward
/// (in this order; NULL = absent).
Outcome read_reward_outcome(const Statement& st, int first);

/// Repositories over one connection. Writers expect the caller to hold a Transaction.
/// Thread-safety: none; the owner serialises use.
class Store {
 public:
  /// Opens the file and migrates it. @throws StorageError
  explicit Store(const std::string& path, OpenOptions options = {});

  Database& db() { return db_; }
  int schema_version();

  /// Inserts the interaction row; false if the interaction_id is already recorded (nothing written).
  bool insert_interaction(const Event& e, TimeMs timestamp, const std::string& features_json, TimeMs received);
  bool interaction_exists(const std::string& interaction_id);
  /// Inserts or replaces the performance row (later reports of the same interaction win).
  void upsert_performance(const std::string& interaction_id, TimeMs timestamp, const Performance& p, TimeMs received);
  /// Inserts or replaces the outcome row; `revision` counts the reports received.
  void upsert_outcome(const std::string& interaction_id, TimeMs timestamp, const Outcome& o, TimeMs received);
  void insert_pending(const std::string& interaction_id, const std::string& kind, const std::string& payload,
                      TimeMs received);
  /// Returns and deletes the pending rows of an interaction, oldest first.
  std::vector<PendingRow> take_pending(const std::string& interaction_id);
  void insert_rejected(TimeMs received, const std::string& reason, const std::string& field,
                       const std::string& payload);
  void audit(TimeMs when, const std::string& actor, const std::string& action, const std::string& details_json);

  // --- decisions
  /// Inserts a decision; returns its decision_id.
  std::int64_t insert_decision(const DecisionRow& d);
  /// Decisions not yet learned from (reward IS NULL), oldest first, with their interaction's outcome.
  std::vector<TrainingRow> unlearned_decisions(std::size_t limit);
  /// The context of the next decision in the same session after `decision_id`, if any (Q-learning's next state).
  std::optional<std::string> next_decision_context(const std::string& session_id, std::int64_t decision_id);
  /// Marks a decision as learned from, with the reward used.
  /// The reward of a decision, and the template_selection candidate version it was learned into (none:
  /// held out, or not learnable); a checkpoint of version v holds the decisions learned into v or before.
  void set_decision_reward(std::int64_t decision_id, double reward, std::optional<std::int64_t> learned_into);
  /// Learned decisions (reward set) with decision_id > after_id, oldest first.
  std::vector<DecisionRow> learned_decisions(std::int64_t after_id, std::size_t limit);

  // --- users
  /// Counts an interaction of `user_id` (table user_stats).
  void count_user_interaction(const std::string& user_id, TimeMs when);
  /// Adds a learned reward to the user's statistics.
  void add_user_reward(const std::string& user_id, double reward);
  /// {interactions, mean reward or -1 when none} of a user; {0, -1} when unknown.
  std::pair<std::int64_t, double> user_summary(const std::string& user_id);
  /// Adds a learned reward to the user's recent outcomes with a template (decay 0.9 per outcome:
  /// about the last ten outcomes with that template count).
  void add_user_template_reward(const std::string& user_id, const std::string& template_key, double reward,
                                TimeMs when);
  /// The user's recent mean reward per template key (templates the user has outcomes with).
  std::vector<std::pair<std::string, double>> user_template_means(const std::string& user_id);

  // --- templates
  /// Inserts or replaces a template version.
  void put_template(const TemplateRow& t);
  std::vector<TemplateRow> templates(const std::string& status);
  /// Sets a template version's status; false if it does not exist.
  bool set_template_status(const std::string& id, const std::string& version, const std::string& status);

  // --- models (checkpoints)
  void put_model(const ModelRow& m);
  /// The model `name` with the given status and the highest version, if any.
  std::optional<ModelRow> latest_model(const std::string& name, const std::string& status);
  std::optional<ModelRow> model(const std::string& name, std::int64_t version);
  std::int64_t max_model_version(const std::string& name);
  void set_model_status(const std::string& name, std::int64_t version, const std::string& status);
  /// Deletes the oldest retired checkpoints of `name` beyond `keep` (active and candidate rows are kept).
  void prune_models(const std::string& name, int keep);
  // --- tuning studies (schema v6; src/store/repositories.cpp)
  /// A study's optimiser state (JSON text), or nullopt when there is no such study.
  std::optional<std::string> study_state(const std::string& name);
  /// Creates or replaces a study's state.
  void put_study(const std::string& name, const std::string& state, TimeMs now);
  /// Records an asked trial; returns its number (1, 2, ...).
  std::int64_t insert_trial(const std::string& study, const std::string& params, TimeMs asked_at);
  /// Records the value of the oldest untold trial with exactly these params; false when there is none.
  bool tell_trial(const std::string& study, const std::string& params, double value, TimeMs told_at);
  std::vector<TrialRow> trials(const std::string& study);
  /// Deletes a study's trials (the state row is kept).
  void delete_trials(const std::string& study);
  /// The newest version of `name` with status active (0 when none).
  std::int64_t active_model_version(const std::string& name);
  /// The newest `limit` decisions that have a context and an outcome, newest first.
  std::vector<ModelDataRow> model_training_rows(std::size_t limit);
  /// Deletes one checkpoint row (e.g. a candidate re-numbered on deployment).
  void delete_model(const std::string& name, std::int64_t version);
  // --- analysis (schema v5; src/store/analysis_repository.cpp)
  /// The interactions with timestamp in [from, to), in time order, joined with their performance and
  /// outcome rows, as the pattern detectors read them (at most `limit`, the newest ones).
  std::vector<patterns::EventRecord> analysis_events(TimeMs from, TimeMs to, std::size_t limit);
  /// The same rows restricted to interaction_id in [key_lo, key_hi) ("" = unbounded on that side), in
  /// interaction_id order: one part of a load split across connections (see interaction_key_splits).
  std::vector<patterns::EventRecord> analysis_events_in_keys(TimeMs from, TimeMs to, const std::string& key_lo,
                                                             const std::string& key_hi);
  /// Up to `parts - 1` increasing interaction_id boundaries that cut the interactions of [from, to) into
  /// `parts` key ranges of about equal size (quantiles of a sample of the window's ids); none when the
  /// window has too few interactions.
  std::vector<std::string> interaction_key_splits(int parts, TimeMs from, TimeMs to);
  /// Parts of events, each in interaction_id order and the parts in key order -> one list in time order
  /// (ties in id order), the newest `limit`.
  static std::vector<patterns::EventRecord> time_ordered(std::vector<std::vector<patterns::EventRecord>>&& parts,
                                                         std::size_t limit);
  void insert_pattern(const PatternRow& p);
  void insert_anomaly(const AnomalyRow& a);
  /// The patterns rows created at or after `since`, newest first.
  std::vector<PatternRow> patterns_since(TimeMs since);
  /// Deletes patterns and anomalies created before `before`; returns the rows deleted.
  std::int64_t prune_patterns(TimeMs before);

  /// Versions of `name` with status active or retired, newest first.
  std::vector<ModelRow> checkpoints(const std::string& name);
  /// Every row of a model: candidate, active and retired, newest first.
  std::vector<ModelRow> all_checkpoints(const std::string& name);

  std::optional<std::string> setting(const std::string& key);
  void put_setting(const std::string& key, const std::string& value, TimeMs when);
  /// Stored corpus statistics blob (document frequencies for TF-IDF), if any.
  std::optional<std::string> corpus_blob();
  void put_corpus_blob(const std::string& blob, std::int64_t documents, TimeMs when);

  TableCounts counts();
  /// PRAGMA integrity_check: "ok" or SQLite's list of problems.
  std::string integrity_check();

 private:
  /// The repository statements, each prepared once on first use and then reused.
  enum Slot : std::size_t {
    kInsertInteraction, kInteractionExists, kUpsertPerformance, kUpsertOutcome, kInsertPending, kSelectPending,
    kDeletePending, kInsertRejected, kAudit, kSelectSetting, kPutSetting, kSelectCorpus, kPutCorpus, kCountUser,
    kSlotCount
  };
  Statement& statement(Slot slot, const char* sql);

  Database db_;
  std::array<std::unique_ptr<Statement>, kSlotCount> statements_;
};

}  // namespace promptlearn::store
