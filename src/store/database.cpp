#include "promptlearn/store/database.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "promptlearn/core/error.hpp"

namespace promptlearn::store {

namespace {
std::string shorten(std::string_view sql) {
  std::string s(sql.substr(0, 200));
  for (char& c : s)
    if (c == '\n') c = ' ';
  return sql.size() > 200 ? s + "..." : s;
}
}  // namespace

// ---------------------------------------------------------------- Database

Database::Database(const std::string& path, OpenOptions options)
    : path_(path), busy_timeout_ms_(options.busy_timeout_ms) {
  int flags = options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (options.create && !options.read_only) flags |= SQLITE_OPEN_CREATE;
  flags |= SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw StorageError(rc, fmt::format("cannot open database '{}': {}", path, msg));
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, options.busy_timeout_ms);
  try {
    // The first read of the file: "file is not a database" surfaces here.
    query_int("PRAGMA schema_version");
    if (!options.read_only) {
      if (options.wal) enable_wal();
      exec(options.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
      // Deleted content is overwritten with zeros, not left in free pages (erase_user, retention).
      exec("PRAGMA secure_delete=ON");
    }
    exec("PRAGMA foreign_keys=ON");
    exec(fmt::format("PRAGMA cache_size=-{}", options.cache_kib));
  } catch (...) {
    cache_.clear();
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw;
  }
}

void Database::enable_wal() {
  // Switching to WAL needs a brief exclusive lock: retry while another process holds one.
  for (int attempt = 0;; ++attempt) {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db_, "PRAGMA journal_mode=WAL", -1, &st, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    std::string mode = rc == SQLITE_ROW ? reinterpret_cast<const char*>(sqlite3_column_text(st, 0)) : "";
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) {
      if (mode != "wal" && mode != "memory")
        throw StorageError(-1, fmt::format("cannot set WAL mode on '{}' (got '{}')", path_, mode));
      return;
    }
    if ((rc & 0xFF) != SQLITE_BUSY || attempt > 200) fail(rc, "PRAGMA journal_mode=WAL");
    std::this_thread::sleep_for(std::chrono::milliseconds(10 + attempt));
  }
}

Database::~Database() {
  cache_.clear();  // statements must be finalised before the connection closes
  if (db_) sqlite3_close_v2(db_);
}

Database::Database(Database&& other) noexcept
    : db_(other.db_), path_(std::move(other.path_)), busy_timeout_ms_(other.busy_timeout_ms_),
      cache_(std::move(other.cache_)) {
  other.db_ = nullptr;
}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    cache_.clear();
    if (db_) sqlite3_close_v2(db_);
    db_ = other.db_;
    path_ = std::move(other.path_);
    busy_timeout_ms_ = other.busy_timeout_ms_;
    cache_ = std::move(other.cache_);
    other.db_ = nullptr;
  }
  return *this;
}

void Database::fail(int rc, std::string_view context) const {
  const char* msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  if ((rc & 0xFF) == SQLITE_NOTADB)
    throw StorageError(rc, fmt::format("'{}' is not a database or is encrypted ({}); refusing to touch it", path_, msg));
  if ((rc & 0xFF) == SQLITE_CORRUPT)
    throw StorageError(rc, fmt::format("'{}' is corrupt ({}) while running: {}", path_, msg, shorten(context)));
  throw StorageError(rc, fmt::format("SQLite error {} on '{}': {} while running: {}", rc, path_, msg, shorten(context)));
}

void Database::exec(std::string_view sql) {
  char* err = nullptr;
  std::string s(sql);
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if ((rc & 0xFF) == SQLITE_NOTADB || (rc & 0xFF) == SQLITE_CORRUPT) fail(rc, sql);
    throw StorageError(rc, fmt::format("SQLite error {} on '{}': {} while running: {}", rc, path_, msg, shorten(sql)));
  }
}

Statement& Database::cached(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) it = cache_.emplace(std::string(sql), std::make_unique<Statement>(*this, sql)).first;
  it->second->reset();
  return *it->second;
}

std::int64_t Database::query_int(std::string_view sql, std::int64_t fallback) {
  Statement st(*this, sql);
  return st.step() ? st.column_int64(0) : fallback;
}

std::int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
int Database::changes() const { return sqlite3_changes(db_); }

// ---------------------------------------------------------------- Statement

Statement::Statement(Database& db, std::string_view sql) : db_(&db), sql_(sql) {
  int rc = sqlite3_prepare_v3(db.handle(), sql_.data(), static_cast<int>(sql_.size()), SQLITE_PREPARE_PERSISTENT,
                              &stmt_, nullptr);
  if (rc != SQLITE_OK) db.fail(rc, sql_);
}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement::Statement(Statement&& o) noexcept : db_(o.db_), stmt_(o.stmt_), sql_(std::move(o.sql_)) { o.stmt_ = nullptr; }

Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    if (stmt_) sqlite3_finalize(stmt_);
    db_ = o.db_;
    stmt_ = o.stmt_;
    sql_ = std::move(o.sql_);
    o.stmt_ = nullptr;
  }
  return *this;
}

Statement& Statement::bind(int index, std::int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) db_->fail(rc, sql_);
  return *this;
}
Statement& Statement::bind(int index, double value) {
  int rc = sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK) db_->fail(rc, sql_);
  return *this;
}
Statement& Statement::bind(int index, std::string_view text) {
  int rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) db_->fail(rc, sql_);
  return *this;
}
Statement& Statement::bind_blob(int index, std::string_view bytes) {
  int rc = sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) db_->fail(rc, sql_);
  return *this;
}
Statement& Statement::bind_null(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) db_->fail(rc, sql_);
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3_reset(stmt_);
  db_->fail(rc, sql_);
}

void Statement::run() {
  while (step()) {
  }
  reset();
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int Statement::column_count() const { return sqlite3_column_count(stmt_); }
int Statement::column_type(int col) const { return sqlite3_column_type(stmt_, col); }
std::string Statement::column_name(int col) const {
  const char* n = sqlite3_column_name(stmt_, col);
  return n ? n : "";
}
bool Statement::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
std::int64_t Statement::column_int64(int col) const { return sqlite3_column_int64(stmt_, col); }
double Statement::column_double(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Statement::column_text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}
std::string_view Statement::column_view(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  return p ? std::string_view(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string_view();
}
std::string Statement::column_blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}

// ---------------------------------------------------------------- Transaction

namespace {
/// Runs `sql`, retrying SQLITE_BUSY with a short backoff until the busy timeout has passed. The busy
/// handler normally absorbs contention; this covers the cases where SQLite returns SQLITE_BUSY without
/// calling it (e.g. while another connection runs WAL recovery).
int exec_retrying_busy(Database& db, const char* sql) {
  auto start = std::chrono::steady_clock::now();
  for (int attempt = 1;; ++attempt) {
    int rc = sqlite3_exec(db.handle(), sql, nullptr, nullptr, nullptr);
    if ((rc & 0xFF) != SQLITE_BUSY) return rc;
    auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    if (waited.count() >= db.busy_timeout_ms()) return rc;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(attempt, 20)));
  }
}
}  // namespace

Transaction::Transaction(Database& db) : db_(db) {
  int rc = exec_retrying_busy(db_, "BEGIN IMMEDIATE");
  if (rc != SQLITE_OK) db_.fail(rc, "BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
  if (!done_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
  int rc = exec_retrying_busy(db_, "COMMIT");
  if (rc != SQLITE_OK) db_.fail(rc, "COMMIT");
  done_ = true;
}

}  // namespace promptlearn::store
