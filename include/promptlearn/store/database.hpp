#pragma once
/// @file RAII wrappers over one SQLite connection. `<sqlite3.h>` stays in src/store/: only
/// `sqlite3` and `sqlite3_stmt` are forward-declared here.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace promptlearn::store {

/// How a connection is opened.
struct OpenOptions {
  bool create = true;               ///< create the file if it does not exist
  bool read_only = false;
  int busy_timeout_ms = 60000;      ///< how long a writer waits for another process's lock
  bool synchronous_full = true;     ///< PRAGMA synchronous=FULL (durable on power loss) or NORMAL (durable on process kill)
  int cache_kib = 16384;            ///< page cache of this connection (grows on demand up to this size)
  bool wal = true;                  ///< switch the file to WAL when opening (Store does it after checking the file is its own)
};

class Database;

/// A prepared statement: bind, step, read columns, reset. Move-only.
/// Thread-safety: none; used under its connection's owner's lock.
class Statement {
 public:
  Statement(Database& db, std::string_view sql);
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  /// Binds by 1-based index. @throws StorageError
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, const std::string& text) { return bind(index, std::string_view(text)); }
  Statement& bind_blob(int index, std::string_view bytes);
  Statement& bind_null(int index);
  /// Binds an optional: null when absent.
  template <typename T>
  Statement& bind(int index, const std::optional<T>& v) {
    return v ? bind(index, *v) : bind_null(index);
  }
  Statement& bind(int index, const std::optional<bool>& v) {
    return v ? bind(index, static_cast<std::int64_t>(*v ? 1 : 0)) : bind_null(index);
  }

  /// Steps once; true while a row is available. @throws StorageError naming the statement
  bool step();
  /// Runs to completion (for statements that return no rows) and resets.
  void run();
  /// Resets and clears bindings so the statement can be reused.
  void reset();

  int column_count() const;
  /// SQLite's storage class of a column of the current row: 1 integer, 2 real, 3 text, 4 blob, 5 null.
  int column_type(int col) const;
  std::string column_name(int col) const;
  bool is_null(int col) const;
  std::int64_t column_int64(int col) const;
  double column_double(int col) const;
  std::string column_text(int col) const;
  /// The text of a column without copying: valid until the next step(), reset() or column call on it.
  std::string_view column_view(int col) const;
  std::string column_blob(int col) const;
  const std::string& sql() const { return sql_; }

 private:
  Database* db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

/// One SQLite connection with a per-connection cache of prepared statements. Move-only.
/// Thread-safety: none; the owner serialises use (the engine holds it under its writer lock).
class Database {
 public:
  /// Opens (and with options.create, creates) the file; sets WAL, foreign keys, busy timeout.
  /// @throws StorageError when the file cannot be opened or is not a database.
  explicit Database(const std::string& path, OpenOptions options = {});
  ~Database();
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  /// Switches the file to WAL journal mode (retrying while another process holds a lock). @throws StorageError
  void enable_wal();
  /// Runs one or more statements that return no rows. @throws StorageError
  void exec(std::string_view sql);
  /// A statement prepared once per connection and reused (reset before it is returned).
  Statement& cached(std::string_view sql);
  /// Runs a query returning one integer (first column of the first row); `fallback` when no row.
  std::int64_t query_int(std::string_view sql, std::int64_t fallback = 0);
  std::int64_t last_insert_rowid() const;
  int changes() const;
  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }
  /// The busy timeout this connection was opened with (ms).
  int busy_timeout_ms() const { return busy_timeout_ms_; }
  /// Throws StorageError for result code `rc` with SQLite's message and `context` (usually the SQL).
  [[noreturn]] void fail(int rc, std::string_view context) const;

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
  int busy_timeout_ms_ = 0;
  std::map<std::string, std::unique_ptr<Statement>, std::less<>> cache_;
};

/// BEGIN IMMEDIATE ... COMMIT; rolls back in its destructor unless committed, never throws from it.
/// SQLITE_BUSY at BEGIN or COMMIT that SQLite's busy handler did not absorb is retried with backoff
/// until the connection's busy timeout has passed.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  /// Commits; @throws StorageError (the transaction is then rolled back by the destructor).
  void commit();

 private:
  Database& db_;
  bool done_ = false;
};

}  // namespace promptlearn::store
