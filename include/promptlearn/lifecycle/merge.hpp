#pragma once
/// @file Merging the shard files of a fleet into one file (docs/scale-out.md).
///
///     promptlearn::MergeReport r = promptlearn::merge_shards({"a.db", "b.db"}, "fleet.db");
///
/// Events are unioned (by interaction_id, the first shard in argument order wins), learned statistics are
/// merged rather than retrained: the template_selection checkpoints with select::Policy::merge, the
/// reward model's per-action sums added, hourly/daily metric rollups merged bucket by bucket with
/// monitor::MetricsWindow::merge, the TF-IDF corpus statistics with features::CorpusStats::merge.
/// An interaction found in several shards counts once: the decisions of one shard are kept and what the
/// others' decisions taught their shard is taken out (exact downdates of the checkpoints, the users'
/// counts and sums); the rollup hours holding duplicates, and hours a lagging shard had not rolled up
/// yet, are rebuilt from the raw rows; reports pending in one shard for an interaction recorded in
/// another are applied.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace promptlearn {

/// What merge_shards wrote.
struct MergeReport {
  std::vector<std::string> inputs;
  std::string output;
  std::int64_t interactions = 0;            ///< rows in the output
  std::int64_t duplicate_interactions = 0;  ///< interactions found in more than one shard (kept once)
  std::int64_t decisions = 0;               ///< rows in the output
  std::int64_t rollups = 0;                 ///< metric_rollups rows in the output
  std::int64_t templates = 0;
  std::int64_t users = 0;                   ///< user_stats rows in the output
  std::int64_t active_version = 0;          ///< template_selection active checkpoint written (0: none)
  std::int64_t candidate_version = 0;       ///< template_selection candidate checkpoint written (0: none)
  /// Decisions not kept: their interaction was decided in another shard too, whose decisions were kept
  /// (the shard whose merged checkpoint learned it, else one with its reward, else the first).
  std::int64_t dropped_decisions = 0;
  std::int64_t downdates = 0;            ///< dropped learned decisions taken out of the merged checkpoints
  /// Rows of the appended logs (pending and rejected events, audit_log, patterns, anomalies, alerts)
  /// identical in every column to a row of an earlier shard: one event seen through a copy, kept once.
  std::int64_t duplicate_log_rows = 0;
  std::int64_t pending_resolved = 0;     ///< reports that waited for an interaction recorded in another shard
  std::int64_t rollup_hours_rebuilt = 0; ///< hours re-rolled from the raw rows (duplicates, lagging shards)
  std::int64_t rollup_hours_inexact = 0; ///< such hours left as merged: a shard no longer has their raw rows
  std::vector<std::string> dropped_models;  ///< models not merged (predictive models: retrained by the next job)
};

/// JSON form of the report (what `promptlearn merge` prints).
nlohmann::json to_json(const MergeReport& r);

/// Options of merge_shards.
struct MergeOptions {
  bool overwrite = false;  ///< replace an existing output file (otherwise it is an error)
};

/// Merges the promptlearn files `inputs` (opened read-only, never changed) into the new file `output`,
/// written under a temporary name beside it and renamed into place when complete. Shards must share the
/// privacy key: the `<input>.key` files that exist must be equal (the first one is copied to
/// `<output>.key` when that does not exist).
/// @throws Error when there are no inputs, the output exists (without overwrite) or is one of the inputs,
///   the key files differ, a policy checkpoint is not mergeable or the policies differ in kind;
///   StorageError for unreadable files, files of another application or another schema version.
MergeReport merge_shards(const std::vector<std::string>& inputs, const std::string& output,
                         const MergeOptions& options = {});

}  // namespace promptlearn
