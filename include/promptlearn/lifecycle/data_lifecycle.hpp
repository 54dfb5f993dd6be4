#pragma once
/// @file
/// The data lifecycle of one file (layer 3, used by the engine): retention per data kind, one user's data
/// exported or erased, and the rows every run of it leaves in audit_log. Erasure of learned state (the
/// policy checkpoints) is PolicyManager::forget; the engine puts the two together (LearningEngine::erase_user).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "promptlearn/config.hpp"
#include "promptlearn/core/clock.hpp"
#include "promptlearn/lifecycle/policy_manager.hpp"

namespace promptlearn {
namespace store {
class Store;
}
namespace privacy {
class Protector;
}

/// What one retention run deleted.
struct RetentionReport {
  TimeMs interactions_before = 0;    ///< cut-off of interactions and what hangs on them
  TimeMs performance_before = 0;     ///< cut-off of hourly rollups, alerts and job runs
  TimeMs patterns_before = 0;
  std::int64_t interactions = 0, decisions = 0, pending_events = 0, rejected_events = 0, ab_assignments = 0,
               anomalies = 0, patterns = 0, user_rows = 0, rollups = 0, alerts = 0, job_runs = 0, checkpoints = 0;
  std::int64_t pages_freed = 0;      ///< pages returned to the file system by incremental vacuum
};
nlohmann::json to_json(const RetentionReport& r);

/// What erase_user removed.
struct EraseReport {
  std::int64_t interactions = 0, decisions = 0, pending_events = 0, rejected_events = 0, ab_assignments = 0,
               anomalies = 0, patterns = 0, user_rows = 0;
  PolicyManager::ForgetReport policy;  ///< the learned decisions taken out of the policy checkpoints
  std::vector<std::string> retrain;    ///< models that could not forget exactly: retrained at the next job run
  std::size_t rollup_hours = 0;        ///< hourly metric rollups rebuilt without the user's reports
  bool wal_cleared = false;            ///< the write-ahead log was checkpointed and truncated afterwards
};
nlohmann::json to_json(const EraseReport& r);

namespace lifecycle {

/// Deletes what is older than the configuration's retention (inside the caller's transaction):
/// interactions (with their performance and outcome rows, decisions, A/B assignments and anomalies),
/// pending and rejected events, per-user aggregates not seen since, hourly rollups, alerts and job runs
/// past performance_data_days (daily rollups stay: the cold tier), patterns past pattern_data_days,
/// model checkpoints beyond model_checkpoints_kept.
RetentionReport delete_expired(store::Store& st, const Config& config, TimeMs now);

/// Every stored row of one user (`stored_id`: the id as stored, i.e. its keyed hash) as JSON: interactions
/// with their performance, outcomes and decisions, pending events, per-user statistics, A/B assignments.
/// Encrypted text is decrypted when `privacy` has the key.
nlohmann::json export_user_rows(store::Store& st, const std::string& stored_id, const privacy::Protector* privacy);

/// The learned decisions of one user (to forget them from the policy checkpoints).
std::vector<PolicyManager::ForgetRow> learned_rows_of_user(store::Store& st, const std::string& stored_id);

/// Deletes every row of one user (inside the caller's transaction). `raw_id` (may be empty) is also
/// searched in the text of rejected events, which are stored as received.
EraseReport delete_user_rows(store::Store& st, const std::string& stored_id, const std::string& raw_id);

/// Returns freed pages to the file system (a file created with auto_vacuum=INCREMENTAL; 0 otherwise).
std::int64_t incremental_vacuum(store::Store& st);

/// Checkpoints the write-ahead log and truncates it to zero bytes (so no old page image outlives an
/// erasure in it); false when another connection's reader kept it from completing.
bool truncate_wal(store::Store& st);

}  // namespace lifecycle
}  // namespace promptlearn
