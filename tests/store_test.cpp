// The SQLite file (layer 3): schema and pragmas, reopen, refusal of files that are not ours (left
// byte-for-byte unchanged), corruption, transactions and locking, statement errors, the repositories,
// and readability with the plain sqlite3 tool. Real files in a temporary folder and :memory:.
#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/records.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/store/database.hpp"
#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using namespace promptlearn;
using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

const char* const kTables[] = {"interactions", "performance", "outcomes", "pending_events", "rejected_events",
                               "templates",    "decisions",   "models",   "audit_log",      "settings",
                               "corpus_stats"};

const std::string kSpecId = "550e8400-e29b-41d4-a716-446655440000";
constexpr TimeMs kReceived = 1736937000123LL;  // 2025-01-15T10:30:00.123Z

/// The one text value of a query (fails the test when there is no row).
std::string text_of(store::Database& db, const std::string& sql) {
  store::Statement st(db, sql);
  REQUIRE(st.step());
  return st.column_text(0);
}

/// Whether column `col` of the first row of `sql` is NULL.
bool null_of(store::Database& db, const std::string& sql) {
  store::Statement st(db, sql);
  REQUIRE(st.step());
  return st.is_null(0);
}

/// The StorageError thrown by fn (message and code), or nothing when it does not throw.
struct Thrown {
  bool thrown = false;
  std::string message;
  int code = 0;
};
Thrown storage_error_of(const std::function<void()>& fn) {
  Thrown t;
  try {
    fn();
  } catch (const StorageError& e) {
    t.thrown = true;
    t.message = e.what();
    t.code = e.code();
  }
  return t;
}

/// Whether the file at `path` holds exactly `bytes` (a bool, so a failure does not print the whole file).
bool unchanged(const std::string& path, const std::string& bytes) { return test::read_file(path) == bytes; }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// True when no -wal / -shm / -journal file was left next to `path`.
bool no_side_files(const std::string& path) {
  namespace fs = std::filesystem;
  return !fs::exists(path + "-wal") && !fs::exists(path + "-shm") && !fs::exists(path + "-journal");
}

/// A file holding `rows` interactions with long prompts (many pages), closed cleanly.
void make_populated(const std::string& path, int rows) {
  store::Store s(path);
  store::Transaction tx(s.db());
  for (int i = 0; i < rows; ++i) {
    Event e = parse_event(test::interaction_doc(test::uuid_for(static_cast<std::uint64_t>(i), 7),
                                                "Refactor module " + std::to_string(i) + " " + std::string(1500, 'x')));
    REQUIRE(s.insert_interaction(e, *e.timestamp, "{}", kReceived));
  }
  tx.commit();
}

}  // namespace

// ------------------------------------------------------------------------------------------ schema

TEST_CASE("store: a new file gets the schema and the application id and the pragmas", "[store]") {
  test::TempDir dir;
  auto check_schema = [](store::Store& s) {
    store::Database& db = s.db();
    CHECK(s.schema_version() == store::kSchemaVersion);
    CHECK(db.query_int("PRAGMA user_version") == store::kSchemaVersion);
    CHECK(db.query_int("PRAGMA application_id") == store::kApplicationId);
    CHECK(db.query_int("PRAGMA foreign_keys") == 1);
    for (const char* table : kTables) {
      INFO(table);
      CHECK(db.query_int(std::string("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '") + table +
                         "'") == 1);
    }
    CHECK(s.integrity_check() == "ok");
    store::TableCounts c = s.counts();
    CHECK(c.interactions + c.performance + c.outcomes + c.pending_events + c.rejected_events + c.decisions +
              c.templates + c.models + c.audit_log ==
          0);
  };

  SECTION("on a real file: WAL journal, FULL synchronous by default") {
    std::string path = dir.file("new.db");
    store::Store s(path);
    check_schema(s);
    CHECK(text_of(s.db(), "PRAGMA journal_mode") == "wal");
    CHECK(s.db().query_int("PRAGMA synchronous") == 2);  // FULL
    CHECK(std::filesystem::exists(path));
  }
  SECTION("synchronous NORMAL when asked") {
    store::OpenOptions o;
    o.synchronous_full = false;
    store::Store s(dir.file("normal.db"), o);
    CHECK(s.db().query_int("PRAGMA synchronous") == 1);
  }
  SECTION("in memory") {
    store::Store s(":memory:");
    check_schema(s);
    CHECK(text_of(s.db(), "PRAGMA journal_mode") == "memory");
  }
  SECTION("the application id spells 'Plrn' at offset 68 of the file header") {
    std::string path = dir.file("id.db");
    { store::Store s(path); }
    std::string bytes = test::read_file(path);
    REQUIRE(bytes.size() >= 100);
    CHECK(bytes.compare(0, 16, std::string("SQLite format 3\0", 16)) == 0);
    CHECK(bytes.substr(68, 4) == "Plrn");
    CHECK(no_side_files(path));  // the last connection checkpoints and removes the WAL
  }
  SECTION("opening twice (and migrating twice) is harmless") {
    std::string path = dir.file("twice.db");
    store::Store a(path);
    store::Store b(path);
    CHECK(b.schema_version() == store::kSchemaVersion);
    CHECK(b.db().query_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'interactions'") == 1);
  }
  SECTION("an empty (0-byte) file is accepted as new") {
    std::string path = dir.file("empty.db");
    write_bytes(path, "");
    REQUIRE(std::filesystem::file_size(path) == 0);
    store::Store s(path);
    check_schema(s);
  }
  SECTION("read-only open of a file that is not at this schema version is refused") {
    std::string path = dir.file("ro.db");
    write_bytes(path, "");
    store::OpenOptions o;
    o.read_only = true;
    Thrown t = storage_error_of([&] { store::Store s(path, o); });
    CHECK(t.thrown);
    CHECK(std::filesystem::file_size(path) == 0);
  }
}

// ------------------------------------------------------------------------------------------ reopen

TEST_CASE("store: reopening a file keeps every value with NULL for absent optionals and RFC 3339 text times", "[store]") {
  test::TempDir dir;
  std::string path = dir.file("keep.db");
  const std::string min_id = test::uuid_for(1);
  Event full = parse_event(test::fixture("spec_interaction.json"));
  Event minimal = parse_event(test::interaction_doc(min_id, "Fix the failing unit test"));
  Event perf = parse_event(test::fixture("spec_performance.json"));
  Event outcome = parse_event(test::fixture("spec_outcome.json"));
  const std::string blob("\x00\x01\xff\xfe binary \x00", 13);
  {
    store::Store s(path);
    store::Transaction tx(s.db());
    REQUIRE(s.insert_interaction(full, *full.timestamp, R"({"domain":"web_development"})", kReceived));
    REQUIRE(s.insert_interaction(minimal, *minimal.timestamp, "{}", kReceived + 1));
    s.upsert_performance(kSpecId, *perf.timestamp, *perf.performance_metrics, kReceived + 2);
    s.upsert_outcome(kSpecId, *outcome.timestamp, *outcome.outcome_data, kReceived + 3);
    Outcome reward_only;
    reward_only.reward = 0.25;
    s.upsert_outcome(min_id, *minimal.timestamp, reward_only, kReceived + 4);
    s.insert_pending(test::uuid_for(2), "outcome", R"({"x":1})", kReceived + 5);
    s.insert_rejected(kReceived + 6, "interaction_id: is required", "interaction_id", "{\"bad\":\x01}");
    s.audit(kReceived + 7, "test", "open", R"({"k":1})");
    s.put_setting("policy", "linucb", kReceived + 8);
    s.put_corpus_blob(blob, 42, kReceived + 9);
    tx.commit();
  }
  REQUIRE(no_side_files(path));

  store::Store s(path);
  store::Database& db = s.db();
  store::TableCounts c = s.counts();
  CHECK(c.interactions == 2);
  CHECK(c.performance == 1);
  CHECK(c.outcomes == 2);
  CHECK(c.pending_events == 1);
  CHECK(c.rejected_events == 1);
  CHECK(c.audit_log == 1);

  SECTION("the full interaction") {
    store::Statement st(db,
                        "SELECT timestamp, session_id, user_id, raw_prompt, processed_input, token_count, "
                        "complexity_score, detected_keywords, domain, working_directory, recent_files, git_branch, "
                        "ide_detected, selected_template, template_version, enhancement_applied, "
                        "enhancement_time_ms, enhanced_prompt_length, features, received_at, typeof(token_count), "
                        "typeof(complexity_score), typeof(enhancement_applied) "
                        "FROM interactions WHERE interaction_id = ?1");
    st.bind(1, kSpecId);
    REQUIRE(st.step());
    CHECK(st.column_text(0) == "2025-01-15T10:30:00.000Z");
    CHECK(st.column_text(1) == "session_abc123");
    CHECK(st.column_text(2) == "user_hash_456");
    CHECK(st.column_text(3) == "Create a REST API endpoint for user authentication");
    CHECK(st.column_text(4) == "create rest api endpoint user authentication");
    CHECK(st.column_int64(5) == 8);
    CHECK(st.column_double(6) == 6.5);
    CHECK(json::parse(st.column_text(7)) == json({"REST", "API", "authentication", "endpoint"}));
    CHECK(st.column_text(8) == "web_development");
    CHECK(st.column_text(9) == "/project/backend");
    CHECK(json::parse(st.column_text(10)) == json({"auth.py", "models.py", "routes.py"}));
    CHECK(st.column_text(11) == "feature/auth-system");
    CHECK(st.column_text(12) == "vscode");
    CHECK(st.column_text(13) == "api_development");
    CHECK(st.column_text(14) == "2.1");
    CHECK(st.column_int64(15) == 1);
    CHECK(st.column_double(16) == 145.0);
    CHECK(st.column_int64(17) == 450);
    CHECK(json::parse(st.column_text(18)) == json{{"domain", "web_development"}});
    CHECK(st.column_text(19) == "2025-01-15T10:30:00.123Z");
    CHECK(st.column_text(20) == "integer");
    CHECK(st.column_text(21) == "real");
    CHECK(st.column_text(22) == "integer");
    CHECK_FALSE(st.step());
  }
  SECTION("absent optionals are NULL, not zero or empty") {
    store::Statement st(db,
                        "SELECT session_id, user_id, processed_input, token_count, complexity_score, "
                        "detected_keywords, domain, working_directory, recent_files, git_branch, ide_detected, "
                        "selected_template, template_version, enhancement_applied, enhancement_time_ms, "
                        "enhanced_prompt_length, raw_prompt, timestamp, received_at "
                        "FROM interactions WHERE interaction_id = ?1");
    st.bind(1, min_id);
    REQUIRE(st.step());
    for (int col = 0; col <= 15; ++col) {
      INFO("column " << col);
      CHECK(st.is_null(col));
    }
    CHECK(st.column_text(16) == "Fix the failing unit test");
    CHECK(st.column_text(17) == "2026-02-01T12:00:00.000Z");
    CHECK(st.column_text(18) == "2025-01-15T10:30:00.124Z");
    // The reward-only outcome: every other measure NULL, revision 1.
    CHECK(text_of(db, "SELECT reward FROM outcomes WHERE interaction_id = '" + min_id + "'") == "0.25");
    for (const char* col : {"claude_response_time_ms", "response_quality_score", "user_satisfaction_rating",
                            "completeness", "accuracy", "relevance", "structure", "explicit_feedback",
                            "copy_action_count", "edit_action_count", "acceptance_rate"}) {
      INFO(col);
      CHECK(null_of(db, std::string("SELECT ") + col + " FROM outcomes WHERE interaction_id = '" + min_id + "'"));
    }
  }
  SECTION("performance and outcome") {
    store::Statement p(db,
                       "SELECT timestamp, total_processing_time_ms, template_selection_time_ms, "
                       "enhancement_generation_time_ms, validation_time_ms, cleanup_time_ms, memory_peak_mb, "
                       "cpu_usage_percent, disk_io_mb, template_cache_hit, analysis_cache_hit, cache_hit_rate, "
                       "received_at FROM performance WHERE interaction_id = ?1");
    p.bind(1, kSpecId);
    REQUIRE(p.step());
    CHECK(p.column_text(0) == "2025-01-15T10:30:00.000Z");
    CHECK(p.column_double(1) == 245.0);
    CHECK(p.column_double(2) == 45.0);
    CHECK(p.column_double(3) == 150.0);
    CHECK(p.column_double(4) == 30.0);
    CHECK(p.column_double(5) == 20.0);
    CHECK(p.column_double(6) == 12.5);
    CHECK(p.column_double(7) == 15.2);
    CHECK(p.column_double(8) == 0.8);
    CHECK(p.column_int64(9) == 1);
    CHECK(p.column_int64(10) == 0);
    CHECK_FALSE(p.is_null(10));
    CHECK(p.column_double(11) == 0.75);
    CHECK(p.column_text(12) == "2025-01-15T10:30:00.125Z");

    store::Statement o(db,
                       "SELECT timestamp, claude_response_time_ms, response_quality_score, user_satisfaction_rating, "
                       "completeness, accuracy, relevance, structure, explicit_feedback, copy_action_count, "
                       "edit_action_count, acceptance_rate, reward, revision FROM outcomes WHERE interaction_id = ?1");
    o.bind(1, kSpecId);
    REQUIRE(o.step());
    CHECK(o.column_text(0) == "2025-01-15T10:32:00.000Z");
    CHECK(o.column_double(1) == 3200.0);
    CHECK(o.column_double(2) == 8.5);
    CHECK(o.column_double(3) == 9.0);
    CHECK(o.column_double(4) == 0.9);
    CHECK(o.column_double(5) == 0.85);
    CHECK(o.column_double(6) == 0.95);
    CHECK(o.column_double(7) == 0.8);
    CHECK(o.column_text(8) == "Very helpful, exactly what I needed");
    CHECK(o.column_int64(9) == 3);
    CHECK(o.column_int64(10) == 1);
    CHECK(o.column_double(11) == 0.9);
    CHECK(o.is_null(12));  // no reward given
    CHECK(o.column_int64(13) == 1);
  }
  SECTION("the small tables") {
    CHECK(s.setting("policy") == std::optional<std::string>("linucb"));
    CHECK_FALSE(s.setting("missing").has_value());
    CHECK(s.corpus_blob() == std::optional<std::string>(blob));
    CHECK(db.query_int("SELECT documents FROM corpus_stats WHERE name = 'prompts'") == 42);
    CHECK(text_of(db, "SELECT updated_at FROM corpus_stats") == "2025-01-15T10:30:00.132Z");
    CHECK(text_of(db, "SELECT reason || '|' || field || '|' || received_at FROM rejected_events") ==
          "interaction_id: is required|interaction_id|2025-01-15T10:30:00.129Z");
    CHECK(text_of(db, "SELECT payload FROM rejected_events") == "{\"bad\":\x01}");
    CHECK(text_of(db, "SELECT timestamp || '|' || actor || '|' || action || '|' || details FROM audit_log") ==
          "2025-01-15T10:30:00.130Z|test|open|{\"k\":1}");
  }
  SECTION("timestamps are fixed-width text that sorts chronologically") {
    store::Statement st(db, "SELECT timestamp FROM interactions ORDER BY timestamp");
    std::vector<std::string> ts;
    while (st.step()) ts.push_back(st.column_text(0));
    REQUIRE(ts.size() == 2);
    CHECK(ts[0] == "2025-01-15T10:30:00.000Z");
    CHECK(ts[1] == "2026-02-01T12:00:00.000Z");
    CHECK(db.query_int("SELECT count(*) FROM interactions WHERE typeof(timestamp) = 'text' AND length(timestamp) = 24") == 2);
  }
}

// ------------------------------------------------------------------------- refusing foreign files

TEST_CASE("store: a file with a newer schema is refused and left unchanged", "[store]") {
  test::TempDir dir;
  std::string path = dir.file("newer.db");
  make_populated(path, 5);
  {
    store::Database db(path);
    db.exec("PRAGMA user_version = " + std::to_string(store::kSchemaVersion + 1));
  }
  REQUIRE(no_side_files(path));
  const std::string before = test::read_file(path);

  Thrown t = storage_error_of([&] { store::Store s(path); });
  CHECK(t.thrown);
  CHECK_THAT(t.message, Contains("newer"));
  CHECK(unchanged(path, before));
  CHECK(no_side_files(path));

  SECTION("also read-only") {
    store::OpenOptions o;
    o.read_only = true;
    CHECK(storage_error_of([&] { store::Store s(path, o); }).thrown);
    CHECK(unchanged(path, before));
  }
  SECTION("also through migrate() on an open connection") {
    store::Database db(path);
    Thrown m = storage_error_of([&] { store::migrate(db); });
    CHECK(m.thrown);
    CHECK_THAT(m.message, Contains("newer"));
    CHECK(db.query_int("PRAGMA user_version") == store::kSchemaVersion + 1);
  }
}

TEST_CASE("store: a file that is not a database is refused and left unchanged", "[store]") {
  test::TempDir dir;
  std::string path = dir.file("notadb.db");
  std::string bytes;
  SECTION("a short text file") { bytes = "hello, this is a text file\n"; }
  SECTION("a long text file") {
    for (int i = 0; i < 500; ++i) bytes += "line " + std::to_string(i) + ": the quick brown fox jumps over the dog\n";
  }
  SECTION("random bytes") {
    std::mt19937_64 rng(20260201);
    bytes.resize(3 * 4096 + 17);
    for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
  }
  SECTION("a JSON document") { bytes = test::fixture("spec_interaction.json").dump(2); }
  write_bytes(path, bytes);

  Thrown t = storage_error_of([&] { store::Store s(path); });
  CHECK(t.thrown);
  CHECK_THAT(t.message, Contains("not a database"));
  CHECK((t.code & 0xFF) == 26);  // SQLITE_NOTADB
  CHECK(unchanged(path, bytes));
  CHECK(no_side_files(path));
}

TEST_CASE("store: an SQLite database of another application is refused and left unchanged", "[store]") {
  test::TempDir dir;
  std::string path = dir.file("foreign.db");

  SECTION("in WAL mode") {
    {
      store::Database db(path);
      db.exec("CREATE TABLE foo (x INTEGER); INSERT INTO foo VALUES (1), (2);");
    }
  }
  SECTION("in rollback-journal mode, the default of every other SQLite user") {
    {
      store::Database db(path);
      db.exec("PRAGMA journal_mode=DELETE; CREATE TABLE foo (x INTEGER); INSERT INTO foo VALUES (1), (2);");
    }
    const std::string header = test::read_file(path);
    REQUIRE(header.size() >= 20);
    REQUIRE(header[18] == 1);  // file format write/read versions: 1 = rollback journal, 2 = WAL
    REQUIRE(header[19] == 1);
  }
  REQUIRE(no_side_files(path));
  const std::string before = test::read_file(path);

  Thrown t = storage_error_of([&] { store::Store s(path); });
  CHECK(t.thrown);
  CHECK_THAT(t.message, Contains("another application"));
  // Refusing must not write: switching the journal mode to WAL rewrites header bytes 18-19.
  const std::string after = test::read_file(path);
  CHECK(after.size() == before.size());
  if (after.size() >= 20 && before.size() >= 20) {
    CHECK(int(after[18]) == int(before[18]));
    CHECK(int(after[19]) == int(before[19]));
  }
  CHECK(unchanged(path, before));
  {
    store::Database db(path);
    CHECK(db.query_int("SELECT count(*) FROM foo") == 2);
    CHECK(db.query_int("SELECT count(*) FROM sqlite_schema WHERE name = 'interactions'") == 0);
  }
}

TEST_CASE("store: a newer-schema file in rollback-journal mode is not switched to WAL when refused", "[store]") {
  test::TempDir dir;
  std::string path = dir.file("newer_delete.db");
  make_populated(path, 3);
  {
    store::Database db(path);
    db.exec("PRAGMA journal_mode=DELETE; PRAGMA user_version = " + std::to_string(store::kSchemaVersion + 1));
  }
  const std::string before = test::read_file(path);
  REQUIRE(before.size() >= 20);
  REQUIRE(before[18] == 1);

  Thrown t = storage_error_of([&] { store::Store s(path); });
  CHECK(t.thrown);
  CHECK_THAT(t.message, Contains("newer"));
  const std::string after = test::read_file(path);
  REQUIRE(after.size() >= 20);
  CHECK(int(after[18]) == 1);
  CHECK(unchanged(path, before));
}

// ------------------------------------------------------------------------------------- corruption

TEST_CASE("store: a corrupted file is reported: never a crash and never a silent ok", "[store]") {
  test::TempDir dir;
  std::string path = dir.file("corrupt.db");
  make_populated(path, 300);
  REQUIRE(no_side_files(path));
  const std::string good = test::read_file(path);
  const std::size_t page = 4096;
  const std::size_t pages = good.size() / page;
  REQUIRE(pages > 20);

  std::string bad = good;
  std::mt19937_64 rng(1234);
  std::string what;
  SECTION("garbage over pages in the middle") {
    what = "middle pages";
    for (std::size_t p = pages / 2; p < pages / 2 + 3; ++p)
      for (std::size_t i = 0; i < page; ++i) bad[p * page + i] = static_cast<char>(rng() & 0xFF);
  }
  SECTION("garbage over the b-tree page headers of several pages") {
    what = "page headers";
    for (std::size_t p = 2; p < pages; p += 5)
      for (std::size_t i = 0; i < 12; ++i) bad[p * page + i] = static_cast<char>(rng() & 0xFF);
  }
  SECTION("zeroed b-tree pages in the middle") {
    // Only structure is checkable: SQLite keeps no checksums, so zeroed overflow (payload) pages whose
    // chain pointer was already 0 read back as NUL text without any error. Zero b-tree pages instead.
    what = "zeroed b-tree pages";
    int zeroed = 0;
    for (std::size_t p = pages / 3; p < pages && zeroed < 4; ++p) {
      unsigned char type = static_cast<unsigned char>(bad[p * page]);
      if (type != 0x02 && type != 0x05 && type != 0x0a && type != 0x0d) continue;
      std::fill(bad.begin() + static_cast<std::ptrdiff_t>(p * page),
                bad.begin() + static_cast<std::ptrdiff_t>((p + 1) * page), '\0');
      ++zeroed;
    }
    REQUIRE(zeroed == 4);
  }
  SECTION("the file cut in half") {
    what = "truncated";
    bad.resize(pages / 2 * page);
  }
  SECTION("garbage over the schema page (page 1 after the header)") {
    what = "schema page";
    for (std::size_t i = 100; i < page; ++i) bad[i] = static_cast<char>(rng() & 0xFF);
  }
  INFO(what);
  REQUIRE(bad != good);
  write_bytes(path, bad);

  bool reported = false;
  std::string report;
  try {
    store::Store s(path);
    std::string ic = s.integrity_check();
    if (ic != "ok") {
      reported = true;
      report = ic.substr(0, 200);
    }
    // Reading every row must either work or throw StorageError.
    try {
      s.db().query_int("SELECT sum(length(raw_prompt)) + count(*) FROM interactions");
    } catch (const StorageError& e) {
      reported = true;
      report = e.what();
    }
  } catch (const StorageError& e) {
    reported = true;
    report = e.what();
  }
  INFO(report);
  CHECK(reported);
}

// ------------------------------------------------------------------------------- transactions

TEST_CASE("store: a transaction rolls back in its destructor unless committed and never throws from it", "[store]") {
  STATIC_REQUIRE(std::is_nothrow_destructible<store::Transaction>::value);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible<store::Transaction>::value);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible<store::Database>::value);
  STATIC_REQUIRE(std::is_nothrow_move_constructible<store::Database>::value);
  test::TempDir dir;
  std::string path = GENERATE(as<std::string>{}, ":memory:", "file");
  if (path == "file") path = dir.file("tx.db");
  store::Store s(path);
  store::Database& db = s.db();

  SECTION("not committed: nothing is written") {
    {
      store::Transaction tx(db);
      s.put_setting("a", "1", kReceived);
      CHECK(s.setting("a").has_value());  // visible inside the transaction
    }
    CHECK_FALSE(s.setting("a").has_value());
  }
  SECTION("committed: kept") {
    {
      store::Transaction tx(db);
      s.put_setting("a", "1", kReceived);
      tx.commit();
    }
    CHECK(s.setting("a") == std::optional<std::string>("1"));
  }
  SECTION("an exception inside the scope rolls back") {
    try {
      store::Transaction tx(db);
      s.put_setting("b", "2", kReceived);
      throw std::runtime_error("host failure");
    } catch (const std::runtime_error&) {
    }
    CHECK_FALSE(s.setting("b").has_value());
    store::Transaction again(db);  // the connection is usable: no transaction was left open
    again.commit();
  }
  SECTION("the destructor swallows a failing ROLLBACK; commit after it was rolled back throws") {
    {
      store::Transaction tx(db);
      db.exec("ROLLBACK");  // the transaction is gone behind the wrapper's back
      Thrown t = storage_error_of([&] { tx.commit(); });
      CHECK(t.thrown);
      CHECK_THAT(t.message, Contains("COMMIT"));
    }  // ~Transaction runs ROLLBACK with no transaction active: must not throw
    SUCCEED("destructor did not throw");
    store::Transaction tx(db);
    s.put_setting("c", "3", kReceived);
    tx.commit();
    CHECK(s.setting("c").has_value());
  }
  SECTION("a nested BEGIN fails with StorageError and leaves the outer transaction intact") {
    store::Transaction outer(db);
    s.put_setting("d", "4", kReceived);
    CHECK(storage_error_of([&] { store::Transaction inner(db); }).thrown);
    outer.commit();
    CHECK(s.setting("d").has_value());
  }
}

TEST_CASE("store: a second writer waits for the first one's BEGIN IMMEDIATE and then succeeds", "[store]") {
  test::TempDir dir;
  std::string path = dir.file("busy.db");
  { store::Store init(path); }
  store::OpenOptions o;
  o.busy_timeout_ms = 10000;
  store::Database first(path, o);
  store::Database second(path, o);

  std::promise<void> begun;
  std::exception_ptr writer_error;
  std::thread writer([&] {
    try {
      store::Transaction tx(first);
      first.exec("INSERT INTO settings (key, value, updated_at) VALUES ('first', '1', '2025-01-15T10:30:00.000Z')");
      begun.set_value();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      tx.commit();
    } catch (...) {
      writer_error = std::current_exception();
      try {
        begun.set_value();
      } catch (...) {
      }
    }
  });
  begun.get_future().wait();
  auto t0 = std::chrono::steady_clock::now();
  std::chrono::milliseconds waited{0};
  Thrown t = storage_error_of([&] {
    store::Transaction tx(second);
    waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    second.exec("INSERT INTO settings (key, value, updated_at) VALUES ('second', '2', '2025-01-15T10:30:00.000Z')");
    tx.commit();
  });
  writer.join();
  REQUIRE_FALSE(writer_error);
  INFO(t.message);
  CHECK_FALSE(t.thrown);
  INFO("waited " << waited.count() << " ms");
  CHECK(waited.count() >= 150);
  CHECK(waited.count() < 5000);
  CHECK(second.query_int("SELECT count(*) FROM settings WHERE key IN ('first', 'second')") == 2);
  CHECK(first.query_int("SELECT count(*) FROM settings WHERE key IN ('first', 'second')") == 2);
}

// ----------------------------------------------------------------------------- statement errors

TEST_CASE("store: statement errors name the SQL and carry SQLite's code", "[store]") {
  store::Store s(":memory:");
  store::Database& db = s.db();

  SECTION("bad SQL at prepare") {
    const std::string sql = "SELEC interaction_id FROM interactions";
    Thrown t = storage_error_of([&] { store::Statement st(db, sql); });
    REQUIRE(t.thrown);
    CHECK_THAT(t.message, Contains(sql));
    CHECK(t.code == 1);  // SQLITE_ERROR
    CHECK_THAT(t.message, Contains(std::to_string(t.code)));
    CHECK_THAT(t.message, Contains("syntax error"));
  }
  SECTION("bad SQL through exec and query_int") {
    Thrown e = storage_error_of([&] { db.exec("DROP TABLE no_such_table"); });
    REQUIRE(e.thrown);
    CHECK_THAT(e.message, Contains("DROP TABLE no_such_table"));
    CHECK_THAT(e.message, Contains(std::to_string(e.code)));
    Thrown q = storage_error_of([&] { db.query_int("SELECT nope FROM interactions"); });
    REQUIRE(q.thrown);
    CHECK_THAT(q.message, Contains("SELECT nope FROM interactions"));
    CHECK_THAT(q.message, Contains("no such column"));
  }
  SECTION("a UNIQUE violation carries SQLITE_CONSTRAINT") {
    db.exec("CREATE TEMP TABLE uniq (v TEXT UNIQUE)");
    store::Statement ins(db, "INSERT INTO uniq (v) VALUES (?1)");
    ins.bind(1, "x");
    ins.run();
    ins.bind(1, "x");
    Thrown t = storage_error_of([&] { ins.step(); });
    REQUIRE(t.thrown);
    CHECK((t.code & 0xFF) == 19);  // SQLITE_CONSTRAINT
    CHECK(t.code == 2067);         // SQLITE_CONSTRAINT_UNIQUE (extended codes are on)
    CHECK_THAT(t.message, Contains("INSERT INTO uniq"));
    CHECK_THAT(t.message, Contains("UNIQUE"));
    // The statement is usable again after the error.
    ins.reset();
    ins.bind(1, "y");
    ins.run();
    CHECK(db.query_int("SELECT count(*) FROM uniq") == 2);
  }
  SECTION("a PRIMARY KEY violation through exec") {
    db.exec("INSERT INTO settings (key, value, updated_at) VALUES ('k', 'v', 't')");
    Thrown t = storage_error_of([&] { db.exec("INSERT INTO settings (key, value, updated_at) VALUES ('k', 'w', 't')"); });
    REQUIRE(t.thrown);
    CHECK((t.code & 0xFF) == 19);
  }
  SECTION("a CHECK constraint (pending kind) and a foreign key (performance without interaction)") {
    store::Transaction tx(db);
    Thrown c = storage_error_of([&] { s.insert_pending(test::uuid_for(1), "bogus", "{}", kReceived); });
    CHECK(c.thrown);
    CHECK((c.code & 0xFF) == 19);
    Performance p;
    p.total_processing_time_ms = 1.0;
    Thrown f = storage_error_of([&] { s.upsert_performance(test::uuid_for(99), kReceived, p, kReceived); });
    CHECK(f.thrown);
    CHECK((f.code & 0xFF) == 19);  // foreign_keys is on
    CHECK(s.counts().performance == 0);
  }
  SECTION("cached statements are reused and reset") {
    store::Statement& a = db.cached("SELECT count(*) FROM interactions");
    store::Statement& b = db.cached("SELECT count(*) FROM interactions");
    CHECK(&a == &b);
    REQUIRE(b.step());
    CHECK(b.column_int64(0) == 0);
    store::Statement& c = db.cached("SELECT count(*) FROM interactions");  // reset on return
    REQUIRE(c.step());
    CHECK(c.column_int64(0) == 0);
    c.reset();
  }
}

// ----------------------------------------------------------------------------- repositories

TEST_CASE("store: repositories take pending rows oldest first and count outcome revisions and keep the first of duplicate interactions", "[store]") {
  test::TempDir dir;
  std::string path = GENERATE(as<std::string>{}, ":memory:", "file");
  if (path == "file") path = dir.file("repo.db");
  store::Store s(path);
  const std::string a = test::uuid_for(10), b = test::uuid_for(11);

  SECTION("take_pending returns rows oldest first and deletes them") {
    {
      store::Transaction tx(s.db());
      s.insert_pending(a, "performance", R"({"n":1})", kReceived + 30);  // received times deliberately out of order
      s.insert_pending(b, "outcome", R"({"n":2})", kReceived);
      s.insert_pending(a, "outcome", R"({"n":3})", kReceived + 10);
      s.insert_pending(a, "performance", R"({"n":4})", kReceived + 20);
      tx.commit();
    }
    CHECK(s.counts().pending_events == 4);
    store::Transaction tx(s.db());
    auto rows = s.take_pending(a);
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].kind == "performance");
    CHECK(rows[0].payload == R"({"n":1})");
    CHECK(rows[1].kind == "outcome");
    CHECK(rows[1].payload == R"({"n":3})");
    CHECK(rows[2].kind == "performance");
    CHECK(rows[2].payload == R"({"n":4})");
    CHECK(rows[0].id < rows[1].id);
    CHECK(rows[1].id < rows[2].id);
    CHECK(s.take_pending(a).empty());
    CHECK(s.counts().pending_events == 1);
    auto other = s.take_pending(b);
    REQUIRE(other.size() == 1);
    CHECK(other[0].payload == R"({"n":2})");
    CHECK(s.take_pending(test::uuid_for(12)).empty());
    tx.commit();
    CHECK(s.counts().pending_events == 0);
  }
  SECTION("upsert_outcome increments revision and keeps the latest values") {
    Event e = parse_event(test::interaction_doc(a));
    store::Transaction tx(s.db());
    REQUIRE(s.insert_interaction(e, *e.timestamp, "{}", kReceived));
    for (int i = 1; i <= 3; ++i) {
      Outcome o;
      o.reward = 0.1 * i;
      o.response_quality_score = static_cast<double>(i);
      s.upsert_outcome(a, kReceived + i, o, kReceived + 100 + i);
      CHECK(s.db().query_int("SELECT revision FROM outcomes WHERE interaction_id = '" + a + "'") == i);
    }
    tx.commit();
    CHECK(s.counts().outcomes == 1);
    CHECK(text_of(s.db(), "SELECT response_quality_score FROM outcomes") == "3.0");
    CHECK(text_of(s.db(), "SELECT timestamp || '|' || received_at FROM outcomes") ==
          "2025-01-15T10:30:00.126Z|2025-01-15T10:30:00.226Z");
  }
  SECTION("upsert_performance replaces: later reports win") {
    Event e = parse_event(test::interaction_doc(a));
    store::Transaction tx(s.db());
    REQUIRE(s.insert_interaction(e, *e.timestamp, "{}", kReceived));
    Performance p1, p2;
    p1.total_processing_time_ms = 100;
    p1.validation_time_ms = 5;
    p2.total_processing_time_ms = 200;
    s.upsert_performance(a, kReceived, p1, kReceived);
    s.upsert_performance(a, kReceived, p2, kReceived + 1);
    tx.commit();
    CHECK(s.counts().performance == 1);
    CHECK(text_of(s.db(), "SELECT total_processing_time_ms FROM performance") == "200.0");
    CHECK(null_of(s.db(), "SELECT validation_time_ms FROM performance"));
  }
  SECTION("insert_interaction returns false for a duplicate id and keeps the first row") {
    Event first = parse_event(test::interaction_doc(a, "the first prompt"));
    json second_doc = test::interaction_doc(a, "the second prompt");
    second_doc["session_id"] = "s2";
    Event second = parse_event(second_doc);
    store::Transaction tx(s.db());
    CHECK(s.insert_interaction(first, *first.timestamp, R"({"n":1})", kReceived));
    CHECK(s.interaction_exists(a));
    CHECK_FALSE(s.interaction_exists(b));
    CHECK_FALSE(s.insert_interaction(second, *second.timestamp + 1000, R"({"n":2})", kReceived + 1));
    tx.commit();
    CHECK(s.counts().interactions == 1);
    CHECK(text_of(s.db(), "SELECT raw_prompt FROM interactions") == "the first prompt");
    CHECK(null_of(s.db(), "SELECT session_id FROM interactions"));
    CHECK(text_of(s.db(), "SELECT features || received_at FROM interactions") == "{\"n\":1}2025-01-15T10:30:00.123Z");
  }
  SECTION("deleting an interaction cascades to its performance and outcome") {
    Event e = parse_event(test::interaction_doc(a));
    store::Transaction tx(s.db());
    REQUIRE(s.insert_interaction(e, *e.timestamp, "{}", kReceived));
    Performance p;
    p.total_processing_time_ms = 1;
    Outcome o;
    o.reward = 1;
    s.upsert_performance(a, kReceived, p, kReceived);
    s.upsert_outcome(a, kReceived, o, kReceived);
    s.db().exec("DELETE FROM interactions WHERE interaction_id = '" + a + "'");
    tx.commit();
    store::TableCounts c = s.counts();
    CHECK(c.interactions == 0);
    CHECK(c.performance == 0);
    CHECK(c.outcomes == 0);
  }
}

// ----------------------------------------------------------------------------- the sqlite3 tool

TEST_CASE("store: the file is readable with the plain sqlite3 command-line tool", "[store]") {
  const char* tool = "/usr/bin/sqlite3";
  if (!std::filesystem::exists(tool)) {
    WARN("/usr/bin/sqlite3 is not installed: skipping the command-line check");
    return;
  }
  test::TempDir dir;
  std::string path = dir.file("cli.db");
  {
    store::Store s(path);
    store::Transaction tx(s.db());
    Event e = parse_event(test::fixture("spec_interaction.json"));
    REQUIRE(s.insert_interaction(e, *e.timestamp, "{}", kReceived));
    Event o = parse_event(test::fixture("spec_outcome.json"));
    s.upsert_outcome(kSpecId, *o.timestamp, *o.outcome_data, kReceived);
    tx.commit();
  }
  auto run = [&](const std::string& sql) {
    std::string cmd = std::string(tool) + " '" + path + "' \"" + sql + "\"";
    const test::Run r = test::sh(cmd, true);
    INFO(cmd << "\n" << r.out);
    CHECK(r.status == 0);
    return r.out;
  };
  CHECK(run("SELECT interaction_id, json_extract(detected_keywords,'$[0]') FROM interactions") ==
        kSpecId + "|REST\n");
  CHECK(run("SELECT timestamp, accuracy, revision FROM outcomes") == "2025-01-15T10:32:00.000Z|0.85|1\n");
  CHECK(run("PRAGMA integrity_check") == "ok\n");
  CHECK(run("PRAGMA user_version") == std::to_string(store::kSchemaVersion) + "\n");
  // The tool left the file usable for the library.
  store::Store s(path);
  CHECK(s.counts().interactions == 1);
}

TEST_CASE("store: a version-1 file is migrated forward to version 2 without losing rows", "[store]") {
  test::TempDir dir;
  const std::string path = dir.file("v1.db");
  {
    store::Store st(path);
    store::Transaction tx(st.db());
    for (int i = 0; i < 3; ++i) {
      promptlearn::Event e = promptlearn::parse_event(test::interaction_doc(test::uuid_for(static_cast<std::uint64_t>(i), 61)));
      e.user_id = i < 2 ? "ann" : "bob";
      st.insert_interaction(e, 1736937000000LL + i, "{}", 1736937000000LL);
    }
    tx.commit();
  }
  {  // make it a version-1 file: what version 1 had, nothing more
    store::Database raw(path);
    raw.exec("DROP TABLE user_stats; DROP TABLE ab_assignments; DROP TABLE ab_tests; "
             "DROP TABLE user_template_stats; PRAGMA user_version = 1");
  }
  store::Store st(path);
  CHECK(st.schema_version() == store::kSchemaVersion);
  CHECK(st.counts().interactions == 3);
  CHECK(st.user_summary("ann") == std::pair<std::int64_t, double>{2, -1.0});
  CHECK(st.user_summary("bob").first == 1);
  CHECK(st.user_summary("nobody").first == 0);
}
