// End to end through the `promptlearn` command: ingest, stats, features, demo, errors.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>

#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using nlohmann::json;
using namespace promptlearn;

namespace {

using test::Run;
using test::sh;

std::string bin() { return std::string(PROMPTLEARN_BIN_DIR) + "/promptlearn"; }

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string l;
  while (std::getline(ss, l))
    if (!l.empty()) v.push_back(l);
  return v;
}

}  // namespace

TEST_CASE("promptlearn ingest acknowledges committed batches and keeps bad lines aside", "[e2e][cli]") {
  test::TempDir dir;
  std::string db = dir.file("cli.db"), input = dir.file("events.jsonl");
  {
    std::ofstream f(input);
    for (int i = 0; i < 250; ++i) f << test::interaction_doc(test::uuid_for(i, 77)).dump() << "\n";
    f << "{broken\n";
    f << json{{"interaction_id", test::uuid_for(3, 77)}, {"outcome_data", {{"response_quality_score", 42}}}}.dump() << "\n";
    f << "\n";  // blank lines carry no document
  }
  Run r = sh(bin() + " ingest --db " + db + " --batch 100 < " + input);
  CHECK(r.status == 0);
  auto acks = lines_of(r.out);
  REQUIRE(acks.size() == 3);
  CHECK(json::parse(acks[0]) == json{{"acknowledged", 100}, {"rejected", 0}});
  CHECK(json::parse(acks[1]) == json{{"acknowledged", 200}, {"rejected", 0}});
  CHECK(json::parse(acks[2]) == json{{"acknowledged", 250}, {"rejected", 2}});

  Run s = sh(bin() + " stats --db " + db);
  CHECK(s.status == 0);
  json stats = json::parse(s.out);
  CHECK(stats["tables"]["interactions"] == 250);
  CHECK(stats["tables"]["rejected_events"] == 2);
  CHECK(stats["schema_version"] == store::kSchemaVersion);

  // The file is readable with the plain sqlite3 tool.
  if (sh("command -v sqlite3").status == 0) {
    Run q = sh("sqlite3 " + db + " \"SELECT reason FROM rejected_events ORDER BY id DESC LIMIT 1\"");
    CHECK(q.out == "outcome_data.response_quality_score: 42 is outside [0, 10]\n");
  } else {
    WARN("sqlite3 command-line tool not installed: skipped the sqlite3 query");
  }
}

TEST_CASE("promptlearn features prints one line per input line", "[e2e][cli]") {
  test::TempDir dir;
  std::string input = dir.file("prompts.jsonl");
  {
    std::ofstream f(input);
    f << json{{"prompt", "Write a Dockerfile for the Flask API. Use a non-root user."}}.dump() << "\n";
    f << "not json\n";
    f << json{{"prompt", "Fix the bug in parser.py"}, {"context_data", {{"recent_files", {"src/parser.py"}}}}}.dump()
      << "\n";
    f << json{{"prompt", "x"}, {"context_data", {{"git_branch", 5}}}}.dump() << "\n";
  }
  Run r = sh(bin() + " features < " + input);
  CHECK(r.status == 1);  // some lines could not be read
  auto out = lines_of(r.out);
  REQUIRE(out.size() == 4);
  json f0 = json::parse(out[0]);
  CHECK(f0["token_count"].get<int>() > 5);
  CHECK(f0.contains("domain"));
  CHECK(f0.contains("detected_keywords"));
  CHECK(json::parse(out[1]) == json{{"line", 2}, {"error", "malformed JSON"}});
  CHECK(json::parse(out[2])["languages"] == json::array({"python"}));
  CHECK(json::parse(out[3])["error"] == "context_data.git_branch: expected a string, got a number 5");
}

TEST_CASE("promptlearn exits non-zero with a one-line error", "[e2e][cli]") {
  test::TempDir dir;
  Run unknown = sh(bin() + " frobnicate", true);
  CHECK(unknown.status == 2);
  CHECK_THAT(unknown.out, Catch::Contains("unknown command 'frobnicate'"));
  Run nodb = sh(bin() + " ingest < /dev/null", true);
  CHECK(nodb.status == 2);
  CHECK(nodb.out == "promptlearn ingest: --db FILE is required\n");
  std::string junk = dir.file("junk.txt");
  std::ofstream(junk) << "these are not the bytes of an SQLite database, not at all, not even close....";
  Run bad = sh(bin() + " stats --db " + junk, true);
  CHECK(bad.status == 1);
  CHECK_THAT(bad.out, Catch::Contains("is not a database"));
  CHECK(test::read_file(junk).rfind("these are not", 0) == 0);  // untouched
  Run badopt = sh(bin() + " ingest --db x.db --batch zero", true);
  CHECK(badopt.status == 2);
  CHECK(badopt.out == "promptlearn ingest: option '--batch': 'zero' is not an integer\n");
  Run help = sh(bin() + " ingest --help");
  CHECK(help.status == 0);
  CHECK_THAT(help.out, Catch::StartsWith("usage: promptlearn ingest"));
}

TEST_CASE("promptlearn demo runs end to end", "[e2e][cli]") {
  test::TempDir dir;
  std::string db = dir.file("demo.db");
  Run r = sh(bin() + " demo --db " + db + " --days 3 --per-day 60 --quiet");
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("interactions recorded : 180"));
  CHECK_THAT(r.out, Catch::Contains("integrity_check: ok"));
  // Re-running recreates the file instead of failing on duplicate ids.
  Run again = sh(bin() + " demo --db " + db + " --days 1 --per-day 10 --quiet");
  CHECK(again.status == 0);
  CHECK_THAT(again.out, Catch::Contains("interactions recorded : 10"));
}

TEST_CASE("promptlearn demo plants latency anomalies and a drift and reports what it caught", "[e2e][cli]") {
  test::TempDir dir;
  const std::string db = dir.file("demo.db");
  Run r = sh(bin() + " demo --db " + db + " --days 12 --per-day 200 --quiet");
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("the hidden reward model changed on day 7"));
  CHECK_THAT(r.out, Catch::Contains("latency anomalies injected: 2 hours"));
  CHECK_THAT(r.out, Catch::Contains("latency drift injected on day 9"));
  // The planted drift is found by the pattern job's change-point detectors within a day.
  CHECK_THAT(r.out, Catch::Contains("after it began by the pattern job's drift detector"));
  CHECK_THAT(r.out, Catch::Contains("p95"));
  // Every performance report and rejected document of the completed hours reached the rollups.
  store::Store st(db);
  CHECK(st.db().query_int("SELECT count(*) FROM performance") == 2400);
  CHECK(st.db().query_int("SELECT sum(requests) FROM metric_rollups WHERE granularity = 'day'") ==
        st.db().query_int("SELECT (SELECT count(*) FROM performance WHERE timestamp < s.value) + (SELECT count(*) FROM "
                          "rejected_events WHERE received_at < s.value) FROM settings s WHERE s.key = 'monitor.rolled_up_until'"));
  // The slow injected hours raised the threshold alert at least once.
  CHECK(st.db().query_int("SELECT count(*) FROM alerts WHERE rule = 'slow_enhancement'") >= 1);
}

TEST_CASE("promptlearn demo --prompts reads real prompts from CSV or JSON lines, naming bad files", "[e2e][cli]") {
  test::TempDir dir;
  const std::string csv = dir.file("p.csv"), jsonl = dir.file("p.jsonl");
  {
    std::ofstream c(csv);
    c << "act,prompt\n\"Reviewer\",\"Review my Python function, \"\"parse_config\"\", for bugs\nand style\"\n"
      << "Writer,Write a haiku about autumn rain\nEmpty,\n";
    std::ofstream j(jsonl);
    j << R"({"question_id": 1, "turns": ["Explain the CAP theorem with an example"]})" << "\n"
      << R"({"task_id": "x", "prompt": "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n"})" << "\n";
  }
  for (const std::string& f : {csv, jsonl}) {
    INFO(f);
    Run r = sh(bin() + " demo --db " + dir.file("d.db") + " --days 1 --per-day 20 --quiet --prompts " + f);
    REQUIRE(r.status == 0);
    store::Store st(dir.file("d.db"));
    store::Statement q(st.db(), "SELECT count(DISTINCT raw_prompt) FROM interactions");
    REQUIRE(q.step());
    CHECK(q.column_int64(0) == 2);  // the file's prompts, cycled (the empty one skipped)
  }
  {
    store::Store st(dir.file("d.db"));
    CHECK(st.db().query_int("SELECT count(*) FROM interactions WHERE raw_prompt LIKE 'Explain the CAP theorem%'") >= 1);
  }
  {
    std::ofstream bad(dir.file("bad.jsonl"));
    bad << R"({"prompt": "fine"})" << "\n" << "not json\n";
    std::ofstream nocol(dir.file("nocol.csv"));
    nocol << "a,b\n1,2\n";
    std::ofstream open_quote(dir.file("quote.csv"));
    open_quote << "prompt\n\"never closed\n";
  }
  Run r = sh(bin() + " demo --db " + dir.file("e.db") + " --days 1 --quiet --prompts " + dir.file("bad.jsonl"), true);
  CHECK(r.status == 2);
  CHECK_THAT(r.out, Catch::Contains("bad.jsonl:2: not a JSON object"));
  r = sh(bin() + " demo --db " + dir.file("e.db") + " --days 1 --quiet --prompts " + dir.file("nocol.csv"), true);
  CHECK(r.status == 2);
  CHECK_THAT(r.out, Catch::Contains("no prompt column"));
  r = sh(bin() + " demo --db " + dir.file("e.db") + " --days 1 --quiet --prompts " + dir.file("quote.csv"), true);
  CHECK(r.status == 2);
  CHECK_THAT(r.out, Catch::Contains("quote.csv:2: a quoted CSV field is never closed"));
  r = sh(bin() + " demo --db " + dir.file("e.db") + " --days 1 --quiet --prompts " + dir.file("missing.csv"), true);
  CHECK(r.status == 2);
  CHECK_THAT(r.out, Catch::Contains("missing.csv"));
}

TEST_CASE("promptlearn templates, select, jobs, rollback and ab from the command line", "[e2e][cli]") {
  test::TempDir dir;
  std::string db = dir.file("sel.db");
  Run t1 = sh(bin() + " templates --db " + db + " --add plain@1 --body 'x'");
  CHECK(t1.status == 0);
  Run t2 = sh(bin() + " templates --db " + db + " --add structured@1");
  CHECK(json::parse(t2.out)["active"] == json::array({"plain@1", "structured@1"}));
  Run bad = sh(bin() + " templates --db " + db + " --add nover", true);
  CHECK(bad.status == 2);
  CHECK_THAT(bad.out, Catch::Contains("'nover' is not ID@VERSION"));

  std::string doc = dir.file("interaction.json");
  std::ofstream(doc) << test::interaction_doc(test::uuid_for(1, 88), "Fix the bug in parser.py").dump();
  Run sel = sh(bin() + " select --db " + db + " --record < " + doc);
  REQUIRE(sel.status == 0);
  json d = json::parse(sel.out);
  CHECK(d["ranked"].size() == 2);
  CHECK(d["propensity"].get<double>() > 0);
  CHECK(d["decision_id"].get<int>() == 1);
  CHECK(json::parse(sh(bin() + " stats --db " + db).out)["tables"]["decisions"] == 1);

  Run jobs = sh(bin() + " jobs --db " + db + " --now 2026-02-02T00:00:00Z");
  CHECK(jobs.status == 0);
  CHECK(json::parse(jobs.out)["ran"] == json::array({"learn", "watch", "gate", "patterns", "models", "tuning", "rollups", "retention"}));
  // --human: one line per job; a second call a minute later runs only what is due every call.
  Run human = sh(bin() + " jobs --db " + db + " --now 2026-02-02T00:01:00Z --human");
  CHECK(human.status == 0);
  CHECK_THAT(human.out, Catch::StartsWith("ran: learn, watch"));
  CHECK_THAT(human.out, Catch::Contains("  learn "));
  CHECK(json::parse(jobs.out)["tuning"]["skipped"].get<std::string>().find("held-out decisions") != std::string::npos);
  // One decision is too little to train on: the job says why, per model.
  CHECK(json::parse(jobs.out)["models"]["trained"].empty());
  CHECK(json::parse(jobs.out)["models"]["skipped"].size() == 3);
  Run rb = sh(bin() + " rollback --db " + db, true);
  CHECK(rb.status == 1);
  CHECK(rb.out == "promptlearn rollback: there is no deployed policy to roll back\n");

  Run create = sh(bin() + " ab --db " + db +
                  " --create '{\"experiment_id\": \"tone\", \"arms\": [{\"name\": \"A\", \"weight\": 1}, "
                  "{\"name\": \"B\", \"weight\": 1}]}'");
  CHECK(create.status == 0);
  Run assign = sh(bin() + " ab --db " + db + " --assign tone --unit alice --interaction " + test::uuid_for(1, 88));
  REQUIRE(assign.status == 0);
  std::string arm = json::parse(assign.out)["arm"];
  CHECK((arm == "A" || arm == "B"));
  Run again = sh(bin() + " ab --db " + db + " --assign tone --unit alice --interaction " + test::uuid_for(1, 88));
  CHECK(json::parse(again.out)["arm"] == arm);  // deterministic
  Run report = sh(bin() + " ab --db " + db + " --report tone");
  CHECK(report.status == 0);
  CHECK(json::parse(report.out)["verdict"]["winner"] == "none");
}
