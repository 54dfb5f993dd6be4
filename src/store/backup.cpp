// Online backup and restore through SQLite's backup API (see backup.hpp for the consistency argument).
#include "promptlearn/store/backup.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <system_error>
#include <thread>

#include "promptlearn/core/error.hpp"
#include "promptlearn/store/database.hpp"
#include "promptlearn/store/store.hpp"

namespace promptlearn::store {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

bool is_busy(int rc) { return (rc & 0xFF) == SQLITE_BUSY || (rc & 0xFF) == SQLITE_LOCKED; }

/// True when both paths name one existing file (also through links or different spellings).
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return fs::equivalent(a, b, ec) && !ec;
}

/// Finishes a backup object on every path out of a scope.
class BackupHandle {
 public:
  BackupHandle(Database& dest, Database& source) {
    handle_ = sqlite3_backup_init(dest.handle(), "main", source.handle(), "main");
    if (handle_ == nullptr) dest.fail(sqlite3_extended_errcode(dest.handle()), "sqlite3_backup_init");
  }
  ~BackupHandle() { finish(); }
  BackupHandle(const BackupHandle&) = delete;
  BackupHandle& operator=(const BackupHandle&) = delete;
  sqlite3_backup* get() const { return handle_; }
  /// sqlite3_backup_finish: SQLITE_OK, or the error of the last step.
  int finish() {
    int rc = SQLITE_OK;
    if (handle_ != nullptr) rc = sqlite3_backup_finish(handle_);
    handle_ = nullptr;
    return rc;
  }

 private:
  sqlite3_backup* handle_ = nullptr;
};

/// All rows of PRAGMA integrity_check joined by "; " ("ok" when sound), at most ~1000 characters so the
/// message stays one readable line.
std::string integrity_of(Database& db) {
  Statement st(db, "PRAGMA integrity_check");
  std::string out;
  while (st.step()) {
    if (!out.empty()) out += "; ";
    out += st.column_text(0);
    if (out.size() > 1000) {
      out += "; ...";
      break;
    }
  }
  for (char& c : out)
    if (c == '\n') c = ' ';
  return out;
}

/// fsync of a file or a directory; errors name the path.
void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) throw StorageError(-1, fmt::format("cannot open '{}' to fsync it: {}", path, std::strerror(errno)));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw StorageError(-1, fmt::format("fsync of '{}' failed: {}", path, std::strerror(err)));
}

/// Removes a temporary copy and the sidecar files SQLite may have made next to it.
void remove_temporary(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) fs::remove(path + suffix, ec);
}

/// A name next to `dest` that no other backup (of this or another process) uses at the same time.
std::string temporary_name(const std::string& dest) {
  std::random_device rd;
  return fmt::format("{}.tmp-{}-{:08x}{:08x}", dest, ::getpid(), rd(), rd());
}

/// One attempt to copy the source into `tmp` inside one read transaction. Returns SQLITE_DONE, or the
/// SQLITE_BUSY / SQLITE_LOCKED code when the source could not be read (the caller retries); throws on
/// any other error or when the deadline passes in the middle of the copy.
int copy_once(Database& source, Database& tmp, const BackupOptions& options, Clock::time_point deadline,
              BackupReport& report) {
  // The read transaction that pins one snapshot for every step below (see backup.hpp).
  int rc = sqlite3_exec(source.handle(), "BEGIN DEFERRED; SELECT count(*) FROM sqlite_schema", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_exec(source.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    if (is_busy(rc)) return rc;
    source.fail(rc, "BEGIN DEFERRED; SELECT count(*) FROM sqlite_schema");
  }
  struct EndRead {
    Database& db;
    ~EndRead() { sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr); }
  } end_read{source};

  BackupHandle backup(tmp, source);
  const int step = options.pages_per_step <= 0 ? -1 : options.pages_per_step;
  int previous_remaining = -1;
  for (;;) {
    rc = sqlite3_backup_step(backup.get(), step);
    const int remaining = sqlite3_backup_remaining(backup.get());
    if (rc == SQLITE_OK || rc == SQLITE_DONE) {
      // A step that copied pages but left as many (or more) to do went back to page 1: a restart.
      if (previous_remaining >= 0 && remaining > 0 && remaining >= previous_remaining) ++report.restarts;
      previous_remaining = remaining;
    }
    if (rc == SQLITE_DONE) break;
    if (rc == SQLITE_OK) {
      if (Clock::now() > deadline)
        throw StorageError(-1, fmt::format("backup of '{}': gave up after {:.1f} s with {} of {} pages still to "
                                                    "copy (BackupOptions::timeout_seconds)",
                                                    source.path(), options.timeout_seconds, remaining,
                                                    sqlite3_backup_pagecount(backup.get())));
      continue;
    }
    backup.finish();
    if (is_busy(rc)) return rc;
    if ((rc & 0xFF) == SQLITE_NOTADB || (rc & 0xFF) == SQLITE_CORRUPT || (rc & 0xFF) == SQLITE_IOERR)
      source.fail(rc, "sqlite3_backup_step");
    tmp.fail(rc, "sqlite3_backup_step");
  }
  report.pages = sqlite3_backup_pagecount(backup.get());
  rc = backup.finish();
  if (rc != SQLITE_OK) tmp.fail(rc, "sqlite3_backup_finish");
  return SQLITE_DONE;
}

}  // namespace

nlohmann::json to_json(const BackupReport& r) {
  return {{"source", r.source},       {"destination", r.destination}, {"pages", r.pages},
          {"page_size", r.page_size}, {"bytes", r.bytes},             {"seconds", r.seconds},
          {"attempts", r.attempts},   {"restarts", r.restarts},       {"integrity", r.integrity}};
}

BackupReport backup_file(const std::string& source_path, const std::string& dest_path, const BackupOptions& options) {
  const auto start = Clock::now();
  BackupReport report;
  report.source = source_path;
  report.destination = dest_path;

  std::error_code ec;
  if (!fs::is_regular_file(source_path, ec))
    throw StorageError(SQLITE_CANTOPEN, fmt::format("cannot back up '{}': it does not exist or is not a file", source_path));
  if (same_file(source_path, dest_path))
    throw StorageError(-1, fmt::format("cannot back up '{}' to '{}': the destination is the same file as the source "
                                       "(refusing to overwrite the database with its own copy)",
                                       source_path, dest_path));
  for (const char* suffix : {"-wal", "-shm", "-journal"})
    if (same_file(source_path + suffix, dest_path))
      throw StorageError(-1, fmt::format("cannot back up '{}' to '{}': the destination is the source's {} file",
                                         source_path, dest_path, suffix + 1));
  if (fs::is_directory(dest_path, ec))
    throw StorageError(-1, fmt::format("cannot back up '{}' to '{}': the destination is a folder; give a file name", source_path, dest_path));
  const fs::path dest_folder = fs::absolute(dest_path).parent_path();
  if (!fs::is_directory(dest_folder, ec))
    throw StorageError(SQLITE_CANTOPEN, fmt::format("cannot back up '{}' to '{}': the destination's folder does not exist", source_path, dest_path));
  if (options.max_attempts < 1)
    throw StorageError(-1, fmt::format("cannot back up '{}': BackupOptions::max_attempts is {}, expected at least 1", source_path, options.max_attempts));

  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::max(0.0, options.timeout_seconds)));
  const std::string tmp_path = temporary_name(dest_path);
  try {
    int last_rc = SQLITE_OK;
    std::string last_message;
    bool done = false;
    while (!done) {
      ++report.attempts;
      // Each attempt waits for locks at most its share of the time that is left.
      const double left_ms = std::chrono::duration<double, std::milli>(deadline - Clock::now()).count();
      const int attempts_left = options.max_attempts - report.attempts + 1;
      OpenOptions src_options;
      src_options.create = false;
      src_options.read_only = true;
      src_options.wal = false;
      src_options.busy_timeout_ms = static_cast<int>(std::max(10.0, left_ms / attempts_left));
      remove_temporary(tmp_path);
      try {
        Database source(source_path, src_options);
        OpenOptions tmp_options;
        tmp_options.wal = false;
        tmp_options.synchronous_full = options.sync;
        Database tmp(tmp_path, tmp_options);
        last_rc = copy_once(source, tmp, options, deadline, report);
        if (last_rc == SQLITE_DONE) {
          // One self-contained file: the copy inherits the source's WAL flag in its header; DELETE mode
          // clears it, so the copy opens without -wal / -shm (also read-only, also with the sqlite3 tool).
          Statement mode(tmp, "PRAGMA journal_mode=DELETE");
          const std::string got = mode.step() ? mode.column_text(0) : std::string();
          if (got != "delete")
            throw StorageError(-1, fmt::format("cannot back up '{}': cannot set journal mode DELETE on the copy '{}' (got '{}')",
                                               source_path, tmp_path, got));
          report.page_size = tmp.query_int("PRAGMA page_size");
          report.integrity = integrity_of(tmp);
          if (report.integrity != "ok")
            throw StorageError(SQLITE_CORRUPT, fmt::format("backup of '{}': the copy fails PRAGMA integrity_check: {}",
                                                           source_path, report.integrity));
          done = true;
        } else {
          last_message = sqlite3_errstr(last_rc);
        }
      } catch (const StorageError& e) {
        if (!is_busy(e.code())) throw;
        last_rc = e.code();
        last_message = e.what();
      }
      if (done) break;
      if (report.attempts >= options.max_attempts || Clock::now() >= deadline)
        throw StorageError(last_rc, fmt::format("backup of '{}': gave up after {} attempt(s) in {:.2f} s; the source "
                                                "stayed locked by another process (last error: {})",
                                                source_path, report.attempts, seconds_since(start), last_message));
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(5 * report.attempts, 100)));
    }
    if (options.sync) fsync_path(tmp_path, false);
    if (::rename(tmp_path.c_str(), dest_path.c_str()) != 0)
      throw StorageError(-1, fmt::format("cannot back up '{}': cannot rename the copy '{}' to '{}': {}", source_path, tmp_path,
                                         dest_path, std::strerror(errno)));
    if (options.sync) fsync_path(dest_folder.string(), true);
  } catch (...) {
    remove_temporary(tmp_path);
    throw;
  }
  report.bytes = static_cast<std::int64_t>(fs::file_size(dest_path, ec));
  report.seconds = seconds_since(start);
  return report;
}

BackupReport restore_file(const std::string& backup_path, const std::string& target_path, const RestoreOptions& options) {
  const auto start = Clock::now();
  BackupReport report;
  report.source = backup_path;
  report.destination = target_path;
  report.attempts = 1;
  const std::string refused = fmt::format("cannot restore '{}' into '{}'", backup_path, target_path);

  std::error_code ec;
  if (!fs::is_regular_file(backup_path, ec))
    throw StorageError(SQLITE_CANTOPEN, fmt::format("{}: the backup '{}' does not exist or is not a file", refused, backup_path));
  if (same_file(backup_path, target_path))
    throw StorageError(-1, fmt::format("{}: they are the same file", refused));

  // 1. The backup: a sound promptlearn file, checked before the target is touched.
  OpenOptions bk_options;
  bk_options.create = false;
  bk_options.read_only = true;
  bk_options.wal = false;
  bk_options.busy_timeout_ms = options.busy_timeout_ms;
  std::optional<Database> backup;
  try {
    backup.emplace(backup_path, bk_options);
    Statement st(*backup,
                 "SELECT (SELECT application_id FROM pragma_application_id), (SELECT user_version FROM pragma_user_version)");
    st.step();
    const std::int64_t app = st.column_int64(0), version = st.column_int64(1);
    st.reset();
    if (app != kApplicationId)
      throw StorageError(-1, fmt::format("'{}' is not a promptlearn backup (application_id {}, expected {})", backup_path,
                                         app, kApplicationId));
    if (version < 1 || version > kSchemaVersion)
      throw StorageError(-1, fmt::format("'{}' has schema version {}, expected 1 .. {}", backup_path, version, kSchemaVersion));
    const std::string integrity = integrity_of(*backup);
    if (integrity != "ok")
      throw StorageError(SQLITE_CORRUPT,
                         fmt::format("the backup '{}' fails PRAGMA integrity_check: {}", backup_path, integrity));
  } catch (const StorageError& e) {
    throw StorageError(e.code(), fmt::format("{}: {}", refused, e.what()));
  }

  // 2. The target: missing, empty or a promptlearn file (never another application's database).
  OpenOptions tg_options;
  tg_options.wal = false;  // keep its journal mode: a WAL target stays WAL, a new one is switched after the copy
  tg_options.busy_timeout_ms = options.busy_timeout_ms;
  std::optional<Database> target;
  try {
    target.emplace(target_path, tg_options);
    check_ownership(*target);
  } catch (const StorageError& e) {
    throw StorageError(e.code(), fmt::format("{}: {}", refused, e.what()));
  }

  // 3. The copy: one write transaction on the target through its own connection. The busy handler waits
  // for other writers; SQLITE_BUSY that it did not absorb is retried until the busy timeout has passed.
  try {
    BackupHandle copy(*target, *backup);
    for (int attempt = 1;; ++attempt) {
      const int rc = sqlite3_backup_step(copy.get(), -1);
      if (rc == SQLITE_DONE) break;
      if (is_busy(rc) && seconds_since(start) * 1000 < options.busy_timeout_ms) {
        report.attempts = attempt + 1;
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(attempt, 20)));
        continue;
      }
      copy.finish();
      if (is_busy(rc))
        throw StorageError(rc, fmt::format("'{}' stayed locked by another process for {} ms (RestoreOptions::busy_timeout_ms)",
                                           target_path, options.busy_timeout_ms));
      if ((rc & 0xFF) == SQLITE_READONLY)
        throw StorageError(rc, fmt::format("'{}' cannot be written: {} (a WAL target must have the backup's page size)",
                                           target_path, sqlite3_errstr(rc)));
      target->fail(rc, "sqlite3_backup_step");
    }
    report.pages = sqlite3_backup_pagecount(copy.get());
    const int rc = copy.finish();
    if (rc != SQLITE_OK) target->fail(rc, "sqlite3_backup_finish");
    target->enable_wal();
    report.page_size = target->query_int("PRAGMA page_size");
    report.integrity = integrity_of(*target);
  } catch (const StorageError& e) {
    throw StorageError(e.code(), fmt::format("{}: {}", refused, e.what()));
  }
  report.bytes = report.pages * report.page_size;
  report.seconds = seconds_since(start);
  return report;
}

}  // namespace promptlearn::store
