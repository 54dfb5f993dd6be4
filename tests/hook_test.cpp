// End to end through build/bin/promptlearn-hook: recorded Claude Code hook payloads through a shell pipe.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "promptlearn/store/database.hpp"
#include "test_util.hpp"

using nlohmann::json;
using namespace promptlearn;
namespace fs = std::filesystem;

namespace {

const std::string kHook = std::string(PROMPTLEARN_BIN_DIR) + "/promptlearn-hook";
const std::string kData = std::string(PROMPTLEARN_TEST_DATA) + "/hook/";

/// A recorded payload with its placeholders (transcript paths, cwd) filled in, written to `dir`.
std::string payload(const test::TempDir& dir, const std::string& name) {
  std::string text = test::read_file(kData + name);
  auto fill = [&](const std::string& key, const std::string& value) {
    for (std::size_t at; (at = text.find(key)) != std::string::npos;) text.replace(at, key.size(), value);
  };
  fill("TRANSCRIPT_S1", kData + "transcript_s1.jsonl");
  fill("TRANSCRIPT_S2", kData + "transcript_s2.jsonl");
  fill("CWD", PROMPTLEARN_TEST_DATA);
  const std::string path = dir.file("in_" + name);
  std::ofstream(path) << text;
  return path;
}

struct Timed {
  test::Run run;
  double ms;
};

Timed hook(const std::string& command, const std::string& input_file, const std::string& db,
           const std::string& prefix = "") {
  const auto t0 = std::chrono::steady_clock::now();
  test::Run r = test::sh("cat '" + input_file + "' | " + prefix + kHook + " " + command + " --jobs-every 0" +
                         (db.empty() ? "" : " --db '" + db + "'"));
  return {r, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count()};
}

std::size_t lines_in(const std::string& path) {
  const std::string text = test::read_file(path);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

std::string body_of(const std::string& db, const std::string& interaction_id) {
  store::Database raw(db);
  store::Statement q(raw,
                     "SELECT t.body FROM interactions i JOIN templates t ON t.template_id = i.selected_template "
                     "AND t.version = i.template_version WHERE i.interaction_id = ?1");
  q.bind(1, interaction_id);
  return q.step() ? q.column_text(0) : "<none>";
}

std::int64_t count(const std::string& db, const std::string& sql) {
  store::Database raw(db);
  store::Statement q(raw, sql);
  return q.step() ? q.column_int64(0) : -1;
}

/// The newest interaction of the file (by timestamp).
std::string newest_interaction(const std::string& db) {
  store::Database raw(db);
  store::Statement q(raw, "SELECT interaction_id FROM interactions ORDER BY timestamp DESC, received_at DESC LIMIT 1");
  return q.step() ? q.column_text(0) : "";
}

double reward_of(const std::string& db, const std::string& interaction_id) {
  store::Database raw(db);
  store::Statement q(raw, "SELECT reward FROM outcomes WHERE interaction_id = ?1");
  q.bind(1, interaction_id);
  return q.step() ? q.column_double(0) : -1;
}

}  // namespace

TEST_CASE("two sessions of submit/stop: guidance printed, interactions, decisions and outcomes stored", "[hook]") {
  test::TempDir dir;
  const std::string db = dir.file("learn.db");
  std::vector<double> latencies;
  auto run = [&](const std::string& command, const std::string& name) {
    Timed t = hook(command, payload(dir, name), db);
    latencies.push_back(t.ms);
    CHECK(t.run.status == 0);
    return t;
  };

  Timed a = run("user-prompt-submit", "submit_s1_a.json");
  const std::string s1_first = newest_interaction(db);
  REQUIRE(!s1_first.empty());
  {
    const std::string body = body_of(db, s1_first);
    CHECK(a.run.out == (body.empty() ? "" : body + "\n"));  // the chosen template's guidance, or nothing (plain)
  }
  CHECK(count(db, "SELECT count(*) FROM templates WHERE status = 'active'") == 6);
  CHECK(count(db, "SELECT count(*) FROM decisions WHERE interaction_id = '" + s1_first + "'") == 1);
  CHECK(count(db, "SELECT count(*) FROM interactions WHERE interaction_id = '" + s1_first +
                      "' AND session_id LIKE 'h1:%' AND user_id LIKE 'h1:%' "
                      "AND working_directory IS NOT NULL AND selected_template IS NOT NULL") == 1);

  Timed stop = run("stop", "stop_s1.json");
  CHECK(stop.run.out.empty());
  // transcript_s1: two tool calls, one failed, then an answer: 0.75 - 0.35 * 1/2.
  CHECK(reward_of(db, s1_first) == Approx(0.575));
  CHECK(count(db, "SELECT count(*) FROM outcomes WHERE claude_response_time_ms >= 0") == 1);

  run("user-prompt-submit", "submit_s2_a.json");
  const std::string s2_first = newest_interaction(db);
  run("stop", "stop_s2.json");
  CHECK(reward_of(db, s2_first) == Approx(0.75));  // a plain answer, no tools

  // Session 1 complains and retries: its previous outcome is lowered.
  Timed retry = run("user-prompt-submit", "submit_s1_retry.json");
  CHECK(retry.run.status == 0);
  CHECK(reward_of(db, s1_first) == Approx(0.3 * 0.575));
  CHECK(count(db, "SELECT revision FROM outcomes WHERE interaction_id = '" + s1_first + "'") == 2);
  // Session 2 thanks and moves on: its previous outcome goes up.
  run("user-prompt-submit", "submit_s2_b.json");
  CHECK(reward_of(db, s2_first) == Approx(0.75 + 0.6 * 0.25));

  CHECK(count(db, "SELECT count(*) FROM interactions") == 4);
  CHECK(count(db, "SELECT count(*) FROM decisions") == 4);
  CHECK(count(db, "SELECT count(*) FROM outcomes") == 2);
  CHECK(count(db, "SELECT count(*) FROM rejected_events") == 0);
  CHECK(count(db, "SELECT count(DISTINCT session_id) FROM interactions") == 2);
  CHECK((!fs::exists(dir.file("hook.log")) || lines_in(dir.file("hook.log")) == 0));
  // The state file holds no prompt text.
  CHECK(test::read_file(dir.file("hook-state.json")).find("verbose") == std::string::npos);

  // Latency per call, warm file, 20 more calls.
  for (int i = 0; i < 10; ++i) {
    run("user-prompt-submit", "submit_s2_a.json");
    run("stop", "stop_s2.json");
  }
  std::sort(latencies.begin(), latencies.end());
  const double median = latencies[latencies.size() / 2], worst = latencies.back();
  WARN("promptlearn-hook per call (incl. shell and cat): median " << median << " ms, max " << worst << " ms over "
                                                                  << latencies.size() << " calls");
  CHECK(median < 150);
}

TEST_CASE("the due jobs run in the foreground on request without disturbing the hook", "[hook]") {
  test::TempDir dir;
  const std::string db = dir.file("learn.db");
  REQUIRE(hook("user-prompt-submit", payload(dir, "submit_s2_a.json"), db).run.status == 0);
  test::Run r = test::sh("cat '" + payload(dir, "stop_s2.json") + "' | " + kHook + " stop --jobs-foreground --db '" +
                         db + "'");
  CHECK(r.status == 0);
  CHECK(r.out.empty());
  CHECK(count(db, "SELECT count(*) FROM job_runs") > 0);
  CHECK((!fs::exists(dir.file("hook.log")) || lines_in(dir.file("hook.log")) == 0));
}

TEST_CASE("bad input and unusable files: exit 0, nothing printed, one log line, bounded time", "[hook]") {
  test::TempDir dir;
  const std::string db = dir.file("learn.db");
  const std::string log = dir.file("hook.log");
  auto expect_quiet_failure = [&](const std::string& command, const std::string& input, const std::string& db_arg,
                                  const std::string& log_path, const std::string& prefix = "") {
    const std::size_t before = fs::exists(log_path) ? lines_in(log_path) : 0;
    Timed t = hook(command, input, db_arg, prefix);
    CHECK(t.run.status == 0);
    CHECK(t.run.out.empty());
    CHECK(t.ms < 8000);
    CHECK(lines_in(log_path) == before + 1);
    return t;
  };

  SECTION("garbage and empty stdin") {
    const std::string garbage = dir.file("garbage.txt");
    std::ofstream(garbage) << "{\"session_id\": \"x\", \"prompt\": ";
    expect_quiet_failure("user-prompt-submit", garbage, db, log);
    const std::string empty = dir.file("empty.txt");
    std::ofstream(empty) << "";
    expect_quiet_failure("user-prompt-submit", empty, db, log);
    expect_quiet_failure("stop", empty, db, log);
    const std::string wrong_type = dir.file("wrong.json");
    std::ofstream(wrong_type) << R"({"session_id": "s", "prompt": 42, "hook_event_name": "UserPromptSubmit"})";
    expect_quiet_failure("user-prompt-submit", wrong_type, db, log);
  }
  SECTION("a directory as --db") {
    fs::create_directories(dir.file("adir"));
    expect_quiet_failure("user-prompt-submit", payload(dir, "submit_s1_a.json"), dir.file("adir"), log);
  }
  SECTION("a read-only database file") {
    REQUIRE(hook("user-prompt-submit", payload(dir, "submit_s1_a.json"), db).run.status == 0);
    const std::string in = payload(dir, "submit_s2_a.json");
    for (const char* s : {"", "-wal", "-shm"})
      if (fs::exists(db + s)) ::chmod((db + s).c_str(), 0444);
    // root ignores file modes: run the hook as nobody then, with a log file it may append to.
    std::string prefix;
    if (::geteuid() == 0) {
      std::ofstream(log, std::ios::app).flush();
      ::chmod(log.c_str(), 0666);
      ::chmod(dir.path().c_str(), 0755);
      ::chmod(in.c_str(), 0644);
      prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
    }
    const std::int64_t before = count(db, "SELECT count(*) FROM interactions");
    expect_quiet_failure("user-prompt-submit", in, db, log, prefix);
    CHECK(count(db, "SELECT count(*) FROM interactions") == before);
  }
  SECTION("a database locked by another process's write transaction") {
    REQUIRE(hook("user-prompt-submit", payload(dir, "submit_s1_a.json"), db).run.status == 0);
    store::Database blocker(db);
    blocker.exec("BEGIN IMMEDIATE");
    blocker.exec("UPDATE templates SET body = body WHERE 0");
    Timed t = expect_quiet_failure("user-prompt-submit", payload(dir, "submit_s2_a.json"), db, log);
    WARN("with the file locked the hook gave up after " << t.ms << " ms");
    CHECK(t.ms >= 1500);  // it did wait (busy timeout 2 s) ...
    blocker.exec("ROLLBACK");
    // ... and works again once the lock is gone.
    Timed ok = hook("user-prompt-submit", payload(dir, "submit_s2_a.json"), db);
    CHECK(ok.run.status == 0);
    CHECK(count(db, "SELECT count(*) FROM interactions") == 2);
  }
}

TEST_CASE("without HOME the file goes under the current directory; unknown sessions are ignored", "[hook]") {
  test::TempDir dir;
  const std::string in = payload(dir, "submit_s2_a.json");
  test::Run r = test::sh("cd '" + dir.path().string() + "' && cat '" + in + "' | env -u HOME " + kHook +
                         " user-prompt-submit --jobs-every 0");
  CHECK(r.status == 0);
  const std::string db = dir.file(".promptlearn/learn.db");
  REQUIRE(fs::exists(db));
  CHECK(count(db, "SELECT count(*) FROM interactions") == 1);
  CHECK(fs::exists(dir.file(".promptlearn/learn.db.key")));

  // A Stop for a session the hook never saw (installed mid-session): nothing recorded, nothing logged.
  Timed stop = hook("stop", payload(dir, "stop_s1.json"), db);
  CHECK(stop.run.status == 0);
  CHECK(stop.run.out.empty());
  CHECK(count(db, "SELECT count(*) FROM outcomes") == 0);
  CHECK((!fs::exists(dir.file(".promptlearn/hook.log")) || lines_in(dir.file(".promptlearn/hook.log")) == 0));
}

TEST_CASE("fuzz: mutated hook payloads and transcripts never break the prompt or the file", "[hook][fuzz]") {
  // The recorded payloads and transcripts, mutated (bytes flipped, spans cut, junk and invalid UTF-8
  // inserted, fields retyped): every run exits 0, prints nothing or one template's guidance, and the
  // database stays whole.
  test::TempDir dir;
  const std::string db = dir.file("learn.db");
  std::mt19937_64 g(0x5EED0888);
  auto below = [&](std::size_t n) { return n == 0 ? std::size_t{0} : static_cast<std::size_t>(g() % n); };
  const std::vector<std::string> names = {"submit_s1_a.json", "submit_s1_retry.json", "submit_s2_a.json",
                                          "submit_s2_b.json", "stop_s1.json", "stop_s2.json"};
  const std::vector<std::string> transcripts = {test::read_file(kData + "transcript_s1.jsonl"),
                                                test::read_file(kData + "transcript_s2.jsonl")};
  auto mutate = [&](std::string s) {
    static const char* const kBits[] = {"\"", "{", "}", "[", "]", ",", ":", "\n", "\xff", "\xc3", "null", "42",
                                        "\"prompt\":", "\\u0000", "{\"a\":[[[[[[1]]]]]]}"};
    for (std::size_t k = 0, n = 1 + below(3); k < n; ++k) {
      const std::size_t pos = below(s.size() + 1);
      switch (below(4)) {
        case 0: s.insert(pos, kBits[below(sizeof kBits / sizeof *kBits)]); break;
        case 1: if (!s.empty()) s.erase(pos, 1 + below(24)); break;
        case 2: if (pos < s.size()) s[pos] = static_cast<char>(g() & 0xFF); break;
        default: s.resize(pos); break;
      }
    }
    return s;
  };
  // Body texts of the templates, to tell guidance from anything else on stdout.
  std::set<std::string> bodies;
  int ran = 0, printed = 0;
  for (int i = 0; i < 120; ++i) {
    const std::string transcript = dir.file("t" + std::to_string(i % 3) + ".jsonl");
    std::ofstream(transcript, std::ios::trunc) << (below(2) ? mutate(transcripts[below(2)]) : transcripts[below(2)]);
    std::string text = test::read_file(kData + names[below(names.size())]);
    for (const char* key : {"TRANSCRIPT_S1", "TRANSCRIPT_S2"})
      for (std::size_t at; (at = text.find(key)) != std::string::npos;) text.replace(at, std::string(key).size(), transcript);
    for (std::size_t at; (at = text.find("CWD")) != std::string::npos;) text.replace(at, 3, PROMPTLEARN_TEST_DATA);
    if (below(4) != 0) text = mutate(text);
    const std::string in = dir.file("in.json");
    std::ofstream(in, std::ios::trunc) << text;
    const std::string command = text.find("UserPromptSubmit") != std::string::npos ? "user-prompt-submit" : "stop";
    Timed t = hook(command, in, db);
    INFO("run " << i << " (" << command << "): " << text.substr(0, 300));
    REQUIRE(t.run.status == 0);
    CHECK(t.ms < 8000);
    ++ran;
    if (!t.run.out.empty()) {
      ++printed;
      if (bodies.empty()) {
        store::Database raw(db);
        store::Statement q(raw, "SELECT body FROM templates");
        while (q.step()) bodies.insert(q.column_text(0) + "\n");
      }
      CHECK(bodies.count(t.run.out) == 1);
    }
  }
  CHECK(ran == 120);
  CHECK(printed > 5);  // the mutations leave many payloads usable: the hook did work, not only refuse
  store::Database raw(db);
  store::Statement q(raw, "PRAGMA integrity_check");
  REQUIRE(q.step());
  CHECK(q.column_text(0) == "ok");
}
