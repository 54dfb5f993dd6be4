#pragma once
// Keys of the settings table that more than one part of the library reads or writes (private to src/).

namespace promptlearn::setting_keys {

/// The end (exclusive) of the hours the rollups job has rolled up and evaluated alerts on (RFC 3339).
inline constexpr const char* kRolledUpUntil = "monitor.rolled_up_until";
/// When the predictive models were last retrained; deleting it makes the retraining job due at once.
inline constexpr const char* kModelsLastRun = "jobs.model_retraining.last_run";

}  // namespace promptlearn::setting_keys
