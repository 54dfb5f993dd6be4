#pragma once
/// @file Online backup and restore of a promptlearn file with SQLite's backup API, while other processes
/// keep writing to it. `<sqlite3.h>` stays in src/store/.
///
/// How the snapshot stays consistent under writers: sqlite3_backup_step() restarts the copy from page 1
/// whenever another connection commits between two steps (it notices when it opens its next read
/// transaction), so a page-at-a-time copy of a busy file may never finish. backup_file() therefore opens
/// one read transaction on its own source connection and runs every step inside it: in WAL mode that pins
/// one snapshot (the WAL end mark at the first read), every page is read from that snapshot, no restart can
/// happen, and writers are not blocked (they append to the WAL; only checkpoints cannot pass our mark until
/// the copy ends, so the WAL may grow meanwhile). The copy is therefore exactly the database as of one
/// committed transaction: a transaction's rows are all in it or all absent. Steps of
/// BackupOptions::pages_per_step pages inside that one transaction give the same result as one step of
/// all pages, and let the deadline be checked between steps.
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace promptlearn::store {

/// How backup_file() copies.
struct BackupOptions {
  /// Pages per sqlite3_backup_step() inside the one read transaction; -1 copies all pages in one step.
  int pages_per_step = 1024;
  /// Give up (StorageError) when the copy has not succeeded after this long, waiting for locks included.
  double timeout_seconds = 60;
  /// Give up after this many starts of the copy (a start fails when the source cannot be read: SQLITE_BUSY
  /// while another process holds an exclusive lock, e.g. a rollback-journal writer or WAL recovery).
  int max_attempts = 8;
  /// fsync the copy and its directory before and after the rename (off only for tests and benchmarks).
  bool sync = true;
};

/// How restore_file() waits for the target.
struct RestoreOptions {
  /// How long the restore waits for other processes' write transactions on the target to end (ms).
  int busy_timeout_ms = 60000;
};

/// What a backup or a restore did.
struct BackupReport {
  std::string source;            ///< the file read
  std::string destination;       ///< the file written
  std::int64_t pages = 0;        ///< pages copied
  std::int64_t page_size = 0;    ///< bytes per page
  std::int64_t bytes = 0;        ///< size of the written database (pages * page_size)
  double seconds = 0;            ///< wall time, integrity check and fsync included
  int attempts = 0;              ///< starts of the copy (1 when nothing got in the way)
  int restarts = 0;              ///< times SQLite restarted the copy from page 1 (0 under the held snapshot)
  std::string integrity;         ///< PRAGMA integrity_check of the written file: "ok" when sound
};

/// JSON form: {"source", "destination", "pages", "page_size", "bytes", "seconds", "attempts", "restarts",
/// "integrity"}.
nlohmann::json to_json(const BackupReport& r);

/// Copies the database `source_path` into `dest_path` consistently while other processes write to it.
///
///     auto r = promptlearn::store::backup_file("learn.db", "learn-2026-02-01.db");
///     // r.integrity == "ok"; the copy is one self-contained file (journal mode DELETE, no -wal)
///
/// Opens its own read-only connection, copies into a temporary file next to `dest_path`, checks
/// `PRAGMA integrity_check` of the copy, switches it to journal mode DELETE (so the one file is complete),
/// fsyncs it and renames it over `dest_path` atomically (then fsyncs the directory). `dest_path` is
/// replaced as a file: a process that has the old `dest_path` open keeps the old inode (restore a live
/// file with restore_file()). Nothing is left behind on failure.
/// @throws StorageError naming the file: source missing or not a database, `dest_path` the same file as
///         the source (also through another path or a link), the copy failing integrity_check, or no
///         successful copy within options.timeout_seconds / options.max_attempts.
BackupReport backup_file(const std::string& source_path, const std::string& dest_path, const BackupOptions& options = {});

/// Replaces the content of `target_path` by the backup `backup_path`, through the backup API on a
/// connection to the target, so that other processes that have the target open see either the old or the
/// restored content, never a mixture.
///
///     promptlearn::store::restore_file("learn-2026-02-01.db", "learn.db");
///
/// Checks first, without touching the target, that the backup passes `PRAGMA integrity_check` and is a
/// promptlearn file (application_id kApplicationId, schema version 1 .. kSchemaVersion), and that the
/// target is missing, empty or a promptlearn file. The copy is one write transaction on the target: it
/// waits (options.busy_timeout_ms) for other processes' write transactions to commit, and then replaces
/// what they wrote. In WAL mode a reader whose read transaction is open during the restore keeps seeing
/// the old content until that transaction ends; its next transaction sees the restored file (the schema
/// cookie changes, so prepared statements are re-prepared). Other processes' in-memory state (e.g. a
/// LearningEngine's live policy) is not reloaded. The target is left in WAL mode.
/// @throws StorageError naming the file that is at fault.
BackupReport restore_file(const std::string& backup_path, const std::string& target_path, const RestoreOptions& options = {});

}  // namespace promptlearn::store
