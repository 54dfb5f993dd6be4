// Online backup and restore (store::backup_file / store::restore_file) on real files, with writer
// processes running during the copy, the engine's real schema, damaged backups and the CLI.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "promptlearn/core/error.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/store/backup.hpp"
#include "promptlearn/store/database.hpp"
#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using namespace promptlearn;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

store::OpenOptions read_only() {
  store::OpenOptions o;
  o.create = false;
  o.read_only = true;
  o.wal = false;
  return o;
}

/// Every row of every table (each row as the SQL quote() of its columns, sorted), plus the header pragmas.
std::map<std::string, std::vector<std::string>> dump(const std::string& path) {
  store::Database db(path, read_only());
  std::map<std::string, std::vector<std::string>> out;
  out["#pragmas"] = {std::to_string(db.query_int("PRAGMA application_id")),
                     std::to_string(db.query_int("PRAGMA user_version"))};
  std::vector<std::string> tables;
  {
    store::Statement t(db, "SELECT name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name");
    while (t.step()) {
      out["#schema"].push_back(t.column_text(0) + ": " + t.column_text(1));
      tables.push_back(t.column_text(0));
    }
  }
  for (const auto& table : tables) {
    std::string expr;
    {
      store::Statement cols(db, "SELECT name FROM pragma_table_info(?1)");
      cols.bind(1, table);
      while (cols.step()) expr += (expr.empty() ? "" : " || '|' || ") + std::string("quote(\"") + cols.column_text(0) + "\")";
    }
    if (expr.empty()) continue;  // an index or a view
    store::Statement rows(db, "SELECT " + expr + " FROM \"" + table + "\"");
    auto& v = out[table];
    while (rows.step()) v.push_back(rows.column_text(0));
    std::sort(v.begin(), v.end());
  }
  return out;
}

std::int64_t count_rows(const std::string& path, const std::string& table) {
  store::Database db(path, read_only());
  return db.query_int("SELECT count(*) FROM " + table);
}

/// The writer tables of the concurrency test: every transaction of writer w inserts (w, seq) into w_a and
/// w_b and sets w_last(w) = seq.
void create_writer_tables(const std::string& path, int ballast_mib) {
  store::Database db(path);
  db.exec(
      "CREATE TABLE w_a (writer INTEGER NOT NULL, seq INTEGER NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (writer, seq));"
      "CREATE TABLE w_b (writer INTEGER NOT NULL, seq INTEGER NOT NULL, check_value INTEGER NOT NULL, "
      "  PRIMARY KEY (writer, seq));"
      "CREATE TABLE w_last (writer INTEGER PRIMARY KEY, seq INTEGER NOT NULL);"
      "CREATE TABLE ballast (id INTEGER PRIMARY KEY, data BLOB NOT NULL);");
  store::Transaction tx(db);
  store::Statement ins(db, "INSERT INTO ballast (data) VALUES (randomblob(65536))");
  for (int i = 0; i < ballast_mib * 16; ++i) ins.run();
  tx.commit();
}

/// One writer process's loop: numbered two-table transactions until `stop_file` appears.
int writer_loop(const std::string& path, int writer, const std::string& stop_file) {
  store::OpenOptions o;
  o.synchronous_full = false;
  store::Database db(path, o);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  const std::string payload(300, static_cast<char>('a' + writer));
  for (std::int64_t seq = 1; std::chrono::steady_clock::now() < give_up; ++seq) {
    if (::access(stop_file.c_str(), F_OK) == 0) return 0;
    store::Transaction tx(db);
    db.cached("INSERT INTO w_a (writer, seq, payload) VALUES (?1, ?2, ?3)").bind(1, writer).bind(2, seq).bind(3, payload).run();
    db.cached("INSERT INTO w_b (writer, seq, check_value) VALUES (?1, ?2, ?3)").bind(1, writer).bind(2, seq).bind(3, seq * 7 + writer).run();
    db.cached("INSERT INTO w_last (writer, seq) VALUES (?1, ?2) ON CONFLICT (writer) DO UPDATE SET seq = excluded.seq")
        .bind(1, writer)
        .bind(2, seq)
        .run();
    tx.commit();
  }
  return 3;  // the parent never said stop
}

/// Rows of writer w in w_a (the writer's committed transactions, when the file is consistent).
std::int64_t rows_of(store::Database& db, int writer) {
  store::Statement st(db, "SELECT count(*) FROM w_a WHERE writer = ?1");
  st.bind(1, writer);
  st.step();
  return st.column_int64(0);
}

/// Checks that writer w's rows in the file are exactly the transactions 1..k, each complete; returns k.
std::int64_t check_prefix(store::Database& db, int writer) {
  store::Statement st(db,
                      "SELECT (SELECT count(*) FROM w_a WHERE writer = ?1), (SELECT coalesce(min(seq), 0) FROM w_a WHERE writer = ?1),"
                      " (SELECT coalesce(max(seq), 0) FROM w_a WHERE writer = ?1), (SELECT count(*) FROM w_b WHERE writer = ?1),"
                      " (SELECT coalesce(max(seq), 0) FROM w_b WHERE writer = ?1), (SELECT coalesce(max(seq), 0) FROM w_last WHERE writer = ?1),"
                      " (SELECT count(*) FROM w_a a JOIN w_b b USING (writer, seq) WHERE writer = ?1 AND b.check_value = a.seq * 7 + a.writer)");
  st.bind(1, writer);
  REQUIRE(st.step());
  const std::int64_t n = st.column_int64(0), lo = st.column_int64(1), hi = st.column_int64(2), nb = st.column_int64(3),
                     hib = st.column_int64(4), last = st.column_int64(5), matched = st.column_int64(6);
  INFO("writer " << writer << ": w_a " << n << " rows seq " << lo << ".." << hi << ", w_b " << nb << " rows max " << hib
                 << ", w_last " << last << ", matched pairs " << matched);
  if (n > 0) CHECK(lo == 1);
  CHECK(hi == n);        // no gap
  CHECK(nb == n);        // every transaction's second row is there ...
  CHECK(hib == hi);
  CHECK(matched == n);   // ... and belongs to the same transaction
  CHECK(last == hi);     // the third statement of the transaction too
  return n;
}

std::string bin() { return std::string(PROMPTLEARN_BIN_DIR) + "/promptlearn"; }

std::vector<std::string> leftovers(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) names.push_back(e.path().filename().string());
  return names;
}

/// A small promptlearn file with `n` interactions, their performance and outcome rows.
void fill_engine(const std::string& path, int first, int n) {
  LearningEngine engine(path, test::fast_config());
  const json perf = test::fixture("spec_performance.json"), outcome = test::fixture("spec_outcome.json");
  for (int i = first; i < first + n; ++i) {
    const std::string id = test::uuid_for(static_cast<std::uint64_t>(i), 77);
    REQUIRE(engine.record(test::interaction_doc(id, "Refactor the parser module number " + std::to_string(i))).accepted);
    json p = perf, o = outcome;
    p["interaction_id"] = id;
    o["interaction_id"] = id;
    REQUIRE(engine.record(p).accepted);
    REQUIRE(engine.record(o).accepted);
  }
  engine.close();
}

}  // namespace

TEST_CASE("a backup of a quiet file holds the same rows as the source, in one self-contained file", "[store][backup]") {
  test::TempDir dir;
  const std::string src = dir.file("quiet.db"), out = dir.file("quiet-backup.db");
  create_writer_tables(src, 2);
  {
    store::Database db(src);
    db.exec("INSERT INTO w_a VALUES (1, 1, 'x'), (1, 2, 'y'); INSERT INTO w_b VALUES (1, 1, 8), (1, 2, 15);"
            "PRAGMA application_id = 1234; PRAGMA user_version = 3");
    // The source keeps a connection open, so its -wal holds recent commits when the backup runs.
    const store::BackupReport r = store::backup_file(src, out);
    CHECK(r.integrity == "ok");
    CHECK(r.attempts == 1);
    CHECK(r.restarts == 0);
    CHECK(r.page_size == db.query_int("PRAGMA page_size"));
    CHECK(r.pages == db.query_int("PRAGMA page_count"));
    CHECK(r.bytes == r.pages * r.page_size);
    CHECK(r.bytes == static_cast<std::int64_t>(fs::file_size(out)));
    CHECK(r.bytes > 2 * 1024 * 1024);
    CHECK(store::to_json(r).at("integrity") == "ok");
  }
  CHECK(dump(out) == dump(src));
  // Self-contained: no sidecar files, journal mode DELETE in the header (file format bytes 18/19 = 1).
  CHECK_FALSE(fs::exists(out + "-wal"));
  CHECK_FALSE(fs::exists(out + "-shm"));
  const std::string header = test::read_file(out).substr(0, 20);
  CHECK(static_cast<int>(header[18]) == 1);
  CHECK(static_cast<int>(header[19]) == 1);
  CHECK(leftovers(dir.path()).empty());

  SECTION("taking it again replaces the old backup") {
    { store::Database db(src); db.exec("DELETE FROM ballast WHERE id > 10"); }
    const auto r2 = store::backup_file(src, out);
    CHECK(r2.integrity == "ok");
    CHECK(dump(out) == dump(src));
    CHECK(count_rows(out, "ballast") == 10);
  }
}

TEST_CASE("backup refuses to overwrite the source, also through another path or a link", "[store][backup]") {
  test::TempDir dir;
  const std::string src = dir.file("self.db");
  create_writer_tables(src, 0);
  const auto before = dump(src);
  fs::create_hard_link(src, dir.file("hard.db"));
  fs::create_symlink(src, dir.file("soft.db"));
  for (const std::string& dest : {src, dir.path().string() + "/./self.db", dir.path().string() + "/../" +
                                                                                dir.path().filename().string() + "/self.db",
                                  dir.file("hard.db"), dir.file("soft.db")}) {
    INFO(dest);
    CHECK_THROWS_AS(store::backup_file(src, dest), StorageError);
    CHECK_THROWS_WITH(store::backup_file(src, dest), Catch::Contains("is the same file as the source") &&
                                                         Catch::Contains(dest));
  }
  CHECK(dump(src) == before);
  CHECK_THROWS_WITH(store::backup_file(dir.file("missing.db"), dir.file("out.db")),
                    Catch::Contains(dir.file("missing.db")) && Catch::Contains("does not exist"));
  {
    std::ofstream junk(dir.file("junk.db"));
    junk << std::string(8192, 'j');
  }
  CHECK_THROWS_WITH(store::backup_file(dir.file("junk.db"), dir.file("out.db")),
                    Catch::Contains(dir.file("junk.db")) && Catch::Contains("not a database"));
  CHECK_THROWS_WITH(store::backup_file(src, dir.file("no/such/folder/out.db")),
                    Catch::Contains(dir.file("no/such/folder/out.db")) && Catch::Contains("folder"));
  CHECK_FALSE(fs::exists(dir.file("out.db")));
  CHECK(leftovers(dir.path()).empty());
}

TEST_CASE("backup gives up after a bounded time while the source stays exclusively locked, naming the file",
          "[store][backup]") {
  test::TempDir dir;
  const std::string src = dir.file("locked.db"), out = dir.file("locked-backup.db");
  store::OpenOptions rollback;
  rollback.wal = false;  // in rollback-journal mode an exclusive lock keeps readers out (WAL never does)
  store::Database locker(src, rollback);
  locker.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1); BEGIN EXCLUSIVE; INSERT INTO t VALUES (2)");
  store::BackupOptions o;
  o.timeout_seconds = 0.6;
  o.max_attempts = 3;
  const auto start = std::chrono::steady_clock::now();
  try {
    store::backup_file(src, out, o);
    FAIL("the backup should have given up");
  } catch (const StorageError& e) {
    CHECK_THAT(e.what(), Catch::Contains(src) && Catch::Contains("gave up after 3 attempt(s)"));
    CHECK((e.code() & 0xFF) == 5);  // SQLITE_BUSY
  }
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(took >= 0.3);
  CHECK(took < 3.0);
  CHECK_FALSE(fs::exists(out));
  CHECK(leftovers(dir.path()).empty());
  locker.exec("COMMIT");
  const auto r = store::backup_file(src, out, o);
  CHECK(r.integrity == "ok");
  CHECK(count_rows(out, "t") == 2);
}

TEST_CASE("backups taken while two processes write hold a consistent prefix of each writer's transactions",
          "[store][backup][processes]") {
  test::TempDir dir;
  const std::string src = dir.file("busy.db"), stop = dir.file("stop");
  const int ballast_mib = 12;
  create_writer_tables(src, ballast_mib);

  std::vector<pid_t> pids;
  for (int w = 1; w <= 2; ++w) {
    std::cout.flush();
    std::cerr.flush();
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int code = 0;
      try {
        code = writer_loop(src, w, stop);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "writer %d: %s\n", w, e.what());
        code = 1;
      }
      ::_exit(code);
    }
    pids.push_back(pid);
  }
  struct StopWriters {  // also when a REQUIRE fails: the children must not outlive the test
    const std::string& stop;
    std::vector<pid_t>& pids;
    std::vector<int> status;
    void now() {
      if (!fs::exists(stop)) std::ofstream(stop) << "stop";
      for (pid_t pid : pids) {
        int st = 0;
        ::waitpid(pid, &st, 0);
        status.push_back(WIFEXITED(st) ? WEXITSTATUS(st) : -1);
      }
      pids.clear();
    }
    ~StopWriters() { now(); }
  } stopper{stop, pids, {}};

  store::Database watch(src, read_only());
  // Wait until both writers are well under way.
  for (int i = 0; i < 1000 && (rows_of(watch, 1) < 100 || rows_of(watch, 2) < 100); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(rows_of(watch, 1) >= 100);
  REQUIRE(rows_of(watch, 2) >= 100);

  // Page at a time (the case that restarts forever without the held read transaction), small and large
  // steps, and everything in one step.
  std::vector<std::int64_t> previous{0, 0, 0};
  int k = 0;
  for (int pages_per_step : {1, 16, -1, 1024, 1}) {
    ++k;
    const std::string out = dir.file("busy-backup-" + std::to_string(k) + ".db");
    const std::int64_t before1 = rows_of(watch, 1), before2 = rows_of(watch, 2);
    store::BackupOptions o;
    o.pages_per_step = pages_per_step;
    const store::BackupReport r = store::backup_file(src, out, o);
    const std::int64_t after1 = rows_of(watch, 1), after2 = rows_of(watch, 2);
    INFO("backup " << k << " with pages_per_step " << pages_per_step << ": " << store::to_json(r).dump());
    CHECK(r.integrity == "ok");
    CHECK(r.attempts == 1);
    CHECK(r.restarts == 0);
    store::Database copy(out, read_only());
    CHECK(copy.query_int("SELECT count(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'") == 0);
    CHECK(copy.query_int("SELECT count(*) FROM ballast") == ballast_mib * 16);
    const std::int64_t k1 = check_prefix(copy, 1), k2 = check_prefix(copy, 2);
    // The snapshot lies inside the backup's time window: at or after "before", at or before "after".
    CHECK(k1 >= before1);
    CHECK(k1 <= after1);
    CHECK(k2 >= before2);
    CHECK(k2 <= after2);
    CHECK(k1 >= previous[1]);
    CHECK(k2 >= previous[2]);
    previous = {0, k1, k2};
    // Writers were not blocked by the copy: they committed while it ran (the file is 12 MiB).
    if (pages_per_step == 1) CHECK(after1 + after2 > before1 + before2);
    std::cout << fmt::format("backup {}: {} MiB, pages_per_step {}: {:.3f} s, writers committed {} transactions "
                             "meanwhile; copy holds {} + {} of them\n",
                             k, r.bytes / (1024 * 1024), pages_per_step, r.seconds,
                             (after1 + after2) - (before1 + before2), k1, k2);
  }
  stopper.now();
  CHECK(stopper.status == std::vector<int>{0, 0});
  // The source itself is consistent too, and holds more than any backup.
  CHECK(check_prefix(watch, 1) >= previous[1]);
  CHECK(check_prefix(watch, 2) >= previous[2]);
  CHECK(leftovers(dir.path()).empty());
}

TEST_CASE("a backup of an engine's file opens with a new engine and reports the same stats", "[store][backup][engine]") {
  test::TempDir dir;
  const std::string src = dir.file("engine.db"), out = dir.file("engine-backup.db");
  fill_engine(src, 0, 25);
  LearningEngine live(src, test::fast_config());  // the source stays open, as in a running host
  const store::BackupReport r = store::backup_file(src, out);
  CHECK(r.integrity == "ok");
  const EngineStats a = live.stats();
  LearningEngine copy(out, test::fast_config());
  const EngineStats b = copy.stats();
  CHECK(b.tables.interactions == 25);
  CHECK(b.tables.performance == 25);
  CHECK(b.tables.outcomes == 25);
  json ja = to_json(a), jb = to_json(b);
  ja.erase("path");
  jb.erase("path");
  CHECK(ja == jb);
  CHECK(copy.integrity_check() == "ok");
  live.close();
  copy.close();
  CHECK(dump(out) == dump(src));
}

TEST_CASE("restore replaces a live file's content consistently and refuses bad backups, naming them",
          "[store][backup][restore]") {
  test::TempDir dir;
  const std::string live = dir.file("live.db"), snap = dir.file("snap.db");
  fill_engine(live, 0, 20);
  REQUIRE(store::backup_file(live, snap).integrity == "ok");
  fill_engine(live, 100, 15);
  REQUIRE(count_rows(live, "interactions") == 35);
  const auto snapshot = dump(snap);

  SECTION("round trip while other connections have the target open") {
    store::Database other(live);    // another process's connection, between transactions
    store::Database reader(live);   // another process's connection, inside a read transaction
    reader.exec("BEGIN");
    CHECK(reader.query_int("SELECT count(*) FROM interactions") == 35);
    const store::BackupReport r = store::restore_file(snap, live);
    CHECK(r.integrity == "ok");
    CHECK(r.source == snap);
    CHECK(r.destination == live);
    CHECK(r.pages > 0);
    CHECK(reader.query_int("SELECT count(*) FROM interactions") == 35);  // its snapshot is older than the restore
    reader.exec("COMMIT");
    CHECK(reader.query_int("SELECT count(*) FROM interactions") == 20);  // its next transaction sees the restore
    CHECK(other.query_int("SELECT count(*) FROM interactions") == 20);
    {
      store::Statement mode(other, "PRAGMA journal_mode");
      REQUIRE(mode.step());
      CHECK(mode.column_text(0) == "wal");
    }
    CHECK(dump(live) == snapshot);
    LearningEngine engine(live, test::fast_config());
    CHECK(engine.stats().tables.interactions == 20);
    CHECK(engine.integrity_check() == "ok");
    // The restored file keeps working: new events land on top of it.
    CHECK(engine.record(test::interaction_doc(test::uuid_for(500, 77))).accepted);
    CHECK(engine.stats().tables.interactions == 21);
  }

  SECTION("restore waits for another connection's write transaction, then replaces what it wrote") {
    store::Database writer(live);
    writer.exec("BEGIN IMMEDIATE; DELETE FROM outcomes");
    std::thread commit_later([&writer] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      writer.exec("COMMIT");
    });
    const auto start = std::chrono::steady_clock::now();
    const store::BackupReport r = store::restore_file(snap, live);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    commit_later.join();
    CHECK(r.integrity == "ok");
    CHECK(waited >= 0.25);
    CHECK(dump(live) == snapshot);
    CHECK(writer.query_int("SELECT count(*) FROM outcomes") == 20);

    writer.exec("BEGIN IMMEDIATE");
    store::RestoreOptions impatient;
    impatient.busy_timeout_ms = 200;
    CHECK_THROWS_WITH(store::restore_file(snap, live, impatient),
                      Catch::Contains("'" + live + "' stayed locked by another process for 200 ms"));
    writer.exec("ROLLBACK");
  }

  SECTION("restore into a new file") {
    const std::string fresh = dir.file("fresh.db");
    CHECK(store::restore_file(snap, fresh).integrity == "ok");
    CHECK(dump(fresh) == snapshot);
    CHECK_THROWS_WITH(store::restore_file(snap, snap), Catch::Contains("same file"));
  }

  SECTION("a non-promptlearn file, a truncated copy and an overwritten copy are refused; the target is untouched") {
    const auto target_before = dump(live);
    const std::string foreign = dir.file("foreign.db");
    {
      store::Database db(foreign);
      db.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hello')");
    }
    CHECK_THROWS_AS(store::restore_file(foreign, live), StorageError);
    CHECK_THROWS_WITH(store::restore_file(foreign, live),
                      Catch::Contains("'" + foreign + "' is not a promptlearn backup (application_id 0"));

    const std::uintmax_t size = fs::file_size(snap);
    const std::string truncated = dir.file("truncated.db");
    fs::copy_file(snap, truncated);
    fs::resize_file(truncated, size / 2);
    CHECK_THROWS_AS(store::restore_file(truncated, live), StorageError);
    CHECK_THROWS_WITH(store::restore_file(truncated, live), Catch::Contains("'" + truncated + "'"));

    const std::string overwritten = dir.file("overwritten.db");
    fs::copy_file(snap, overwritten);
    {
      std::fstream f(overwritten, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(4096 * 2));
      const std::string garbage(static_cast<std::size_t>(size) - 4096 * 3, '\x5a');
      f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    }
    CHECK_THROWS_AS(store::restore_file(overwritten, live), StorageError);
    CHECK_THROWS_WITH(store::restore_file(overwritten, live),
                      Catch::Contains("'" + overwritten + "'") &&
                          (Catch::Contains("integrity_check") || Catch::Contains("corrupt") || Catch::Contains("malformed")));

    const std::string bad_header = dir.file("bad-header.db");
    fs::copy_file(snap, bad_header);
    {
      std::fstream f(bad_header, std::ios::in | std::ios::out | std::ios::binary);
      f.write("not an sqlite db", 16);
    }
    CHECK_THROWS_WITH(store::restore_file(bad_header, live),
                      Catch::Contains("'" + bad_header + "'") && Catch::Contains("not a database"));
    CHECK_THROWS_WITH(store::restore_file(dir.file("nothing.db"), live), Catch::Contains(dir.file("nothing.db")));
    // A target that belongs to another application is not overwritten either.
    CHECK_THROWS_WITH(store::restore_file(snap, foreign), Catch::Contains("'" + foreign + "'") &&
                                                              Catch::Contains("another application"));
    CHECK(count_rows(foreign, "notes") == 1);
    CHECK(dump(live) == target_before);
  }
}

TEST_CASE("the promptlearn backup command backs up and restores, with exit codes and one-line errors",
          "[store][backup][cli]") {
  test::TempDir dir;
  const std::string db = dir.file("cli.db"), out = dir.file("cli-backup.db");
  fill_engine(db, 0, 10);

  const test::Run b = test::sh(bin() + " backup --db " + db + " -o " + out);
  REQUIRE(b.status == 0);
  const json j = json::parse(b.out);
  CHECK(j.at("integrity") == "ok");
  CHECK(j.at("pages").get<std::int64_t>() > 0);
  CHECK(j.at("bytes").get<std::int64_t>() == static_cast<std::int64_t>(fs::file_size(out)));
  CHECK(j.at("seconds").get<double>() >= 0);
  CHECK(j.at("attempts") == 1);
  CHECK(dump(out) == dump(db));

  const test::Run h = test::sh(bin() + " backup --db " + db + " --o " + out + " --human");
  CHECK(h.status == 0);
  CHECK_THAT(h.out, Catch::StartsWith("backed up '" + db + "' to '" + out + "'") && Catch::Contains("integrity ok"));

  fill_engine(db, 50, 5);
  const test::Run r = test::sh(bin() + " backup --db " + db + " --restore " + out);
  REQUIRE(r.status == 0);
  CHECK(json::parse(r.out).at("integrity") == "ok");
  CHECK(count_rows(db, "interactions") == 10);

  const std::string missing = dir.file("no/such/dir/x.db");
  const test::Run bad = test::sh(bin() + " backup --db " + missing + " --o " + out, true);
  CHECK(bad.status == 1);
  CHECK_THAT(bad.out, Catch::StartsWith("promptlearn backup: ") && Catch::Contains(missing));
  CHECK(std::count(bad.out.begin(), bad.out.end(), '\n') == 1);

  const test::Run refused = test::sh(bin() + " backup --db " + db + " --restore " + db + "-nope", true);
  CHECK(refused.status == 1);
  CHECK_THAT(refused.out, Catch::Contains(db + "-nope"));
  CHECK(std::count(refused.out.begin(), refused.out.end(), '\n') == 1);

  CHECK(test::sh(bin() + " backup --db " + db, true).status == 2);
  CHECK(test::sh(bin() + " backup --db " + db + " --o " + out + " --restore " + out, true).status == 2);
  const test::Run help = test::sh(bin() + " backup --help");
  CHECK(help.status == 0);
  CHECK_THAT(help.out, Catch::Contains("--restore BACKUP"));
}
