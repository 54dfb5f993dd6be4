// --help and --human of every promptlearn subcommand: help texts that name every accepted option and
// open no file, one-line usage errors, and readable (non-JSON) output that carries the JSON form's figures.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "promptlearn/store/database.hpp"
#include "test_util.hpp"

using nlohmann::json;
using namespace promptlearn;
namespace fs = std::filesystem;

namespace {

std::string bin() { return std::string(PROMPTLEARN_BIN_DIR) + "/promptlearn"; }

/// Exit status, stdout and stderr of a shell command line.
struct Run3 {
  int status;
  std::string out, err;
};

Run3 run(const test::TempDir& dir, const std::string& cmd) {
  static int n = 0;
  const std::string out = dir.file("out" + std::to_string(n)), err = dir.file("err" + std::to_string(n));
  ++n;
  // The inner group's redirections win over the 2>/dev/null that test::sh appends to the outer one.
  const test::Run r = test::sh("{ { " + cmd + " ; } >" + out + " 2>" + err + " ; }");
  return {r.status, test::read_file(out), test::read_file(err)};
}

/// A subcommand and every option it accepts (as main.cpp passes them to Args; merge parses its own).
struct Command {
  std::string name;
  std::vector<std::string> options;
  bool takes_db;  ///< has --db (the help must not open or create it)
};

const std::vector<Command> kCommands = {
    {"demo", {"--db", "--days", "--seed", "--per-day", "--prompts", "--quiet"}, true},
    {"ingest", {"--db", "--config", "--batch", "--human"}, true},
    {"stats", {"--db", "--config", "--human"}, true},
    {"features", {"--db", "--config", "--hash-dim", "--human"}, true},
    {"templates", {"--db", "--add", "--retire", "--body", "--parent", "--human"}, true},
    {"select", {"--db", "--record", "--human"}, true},
    {"jobs", {"--db", "--now", "--human"}, true},
    {"rollback", {"--db", "--reason", "--human"}, true},
    {"ab", {"--db", "--create", "--assign", "--unit", "--interaction", "--report", "--stop", "--human"}, true},
    {"analyze", {"--db", "--days", "--now", "--persist", "--human"}, true},
    {"tune", {"--db", "--study", "--space", "--params", "--value", "--ask", "--tell", "--status", "--maximize", "--human"},
     true},
    {"scrub", {"--kinds", "--stats", "--human"}, false},
    {"backup", {"--db", "-o", "--restore", "--human"}, true},
    {"report", {"--db", "-o", "--days", "--now", "--human"}, true},
    {"export", {"--db", "--format", "-o", "--key-file", "--human"}, true},
    {"merge", {"-o", "--force", "--human"}, false},
    {"metrics", {"--db", "--config", "--window", "--now", "--human"}, true},
    {"purge", {"--db", "--config", "--now", "--human"}, true},
    {"erase-user", {"--db", "--config", "--user", "--key-file", "--human"}, true},
    {"export-user", {"--db", "--config", "--user", "--key-file", "--human"}, true},
};

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string l;
  while (std::getline(ss, l)) v.push_back(l);
  return v;
}

/// Readable output: not empty, not a JSON document, and no line that starts like one.
void check_not_json(const std::string& out) {
  INFO(out);
  REQUIRE(!out.empty());
  CHECK(!json::accept(out));
  for (const auto& l : lines_of(out)) {
    CHECK(l.rfind('{', 0) != 0);
    CHECK(l.rfind('[', 0) != 0);
  }
}

/// No JSON punctuation at all (for outputs that hold no free text from the data).
void check_no_json_punctuation(const std::string& out) {
  INFO(out);
  CHECK(out.find_first_of("{}[]\"") == std::string::npos);
}

bool has_line(const std::string& out, const std::string& pattern) {
  const std::regex re(pattern);
  for (const auto& l : lines_of(out))
    if (std::regex_search(l, re)) return true;
  return false;
}

#define CHECK_LINE(out, pattern)                 \
  do {                                           \
    INFO("output:\n" << (out));                  \
    CHECK(has_line((out), (pattern)));           \
  } while (false)

/// A demo database (2 days x 200 prompts), built once; tests work on copies.
const std::string& demo_db() {
  static test::TempDir dir;
  static const std::string db = [] {
    const std::string path = dir.file("demo.db");
    const test::Run r = test::sh(bin() + " demo --db " + path + " --days 2 --quiet");
    if (r.status != 0) throw std::runtime_error("promptlearn demo failed: " + r.out);
    return path;
  }();
  return db;
}

/// A copy of the demo database (with its key file) in `dir`.
std::string demo_copy(const test::TempDir& dir, const std::string& name) {
  const std::string src = demo_db(), dst = dir.file(name);
  for (const char* suffix : {"", ".key", "-wal"})
    if (fs::exists(src + suffix)) fs::copy_file(src + suffix, dst + suffix, fs::copy_options::overwrite_existing);
  return dst;
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

}  // namespace

TEST_CASE("cli: --help of every subcommand names every option, exits 0 and opens no file", "[cli][human]") {
  test::TempDir dir;
  const std::string db = dir.file("never.db");
  for (const auto& c : kCommands) {
    for (const char* flag : {"--help", "-h"}) {
      INFO(c.name << " " << flag);
      const std::string cmd = c.name == "merge" ? bin() + " merge " + dir.file("a.db") + " -o " + db + " " + flag
                                                : bin() + " " + c.name + (c.takes_db ? " --db " + db : "") + " " + flag;
      const Run3 r = run(dir, cmd + " < /dev/null");
      CHECK(r.status == 0);
      CHECK(r.err.empty());
      CHECK_THAT(r.out, Catch::StartsWith("usage: promptlearn " + c.name + " "));
      for (const auto& o : c.options) {
        INFO("option " << o);
        CHECK(r.out.find(o) != std::string::npos);
      }
      CHECK(!fs::exists(db));
      CHECK(!fs::exists(db + ".key"));
    }
    // promptlearn help CMD prints the same text.
    INFO(c.name);
    CHECK(run(dir, bin() + " help " + c.name).out == run(dir, bin() + " " + c.name + " --help").out);
  }
}

TEST_CASE("cli: promptlearn help lists every subcommand and --human", "[cli][human]") {
  test::TempDir dir;
  for (const char* h : {"help", "--help", "-h"}) {
    const Run3 r = run(dir, bin() + " " + h);
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::StartsWith("usage: promptlearn <command>"));
    CHECK_THAT(r.out, Catch::Contains("--human"));
    for (const auto& c : kCommands) {
      INFO(c.name);
      CHECK(has_line(r.out, "^  " + c.name + " +[a-zA-Z]"));
    }
  }
  const Run3 none = run(dir, bin());
  CHECK(none.status == 2);
  const Run3 unknown = run(dir, bin() + " frobnicate");
  CHECK(unknown.status == 2);
  CHECK(unknown.out.empty());
  CHECK(lines_of(unknown.err).size() == 1);
  CHECK_THAT(unknown.err, Catch::Contains("unknown command 'frobnicate'"));
  CHECK(run(dir, bin() + " help frobnicate").status == 2);
}

TEST_CASE("cli: an unknown option is a one-line usage error naming it", "[cli][human]") {
  test::TempDir dir;
  const std::string db = dir.file("never.db");
  for (const auto& c : kCommands) {
    INFO(c.name);
    const std::string args = c.name == "merge" ? " " + dir.file("a.db") + " -o " + db : (c.takes_db ? " --db " + db : "");
    const Run3 r = run(dir, bin() + " " + c.name + args + " --no-such-option < /dev/null");
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK(lines_of(r.err).size() == 1);
    CHECK_THAT(r.err, Catch::StartsWith("promptlearn " + c.name + ": "));
    CHECK_THAT(r.err, Catch::Contains("--no-such-option"));
    CHECK(!fs::exists(db));
  }
  // A missing value is a usage error too.
  const Run3 r = run(dir, bin() + " stats --db");
  CHECK(r.status == 2);
  CHECK(r.err == "promptlearn stats: option '--db' needs a value\n");
}

TEST_CASE("cli --human: stats, ingest, features, scrub", "[cli][human]") {
  test::TempDir dir;
  const std::string db = demo_copy(dir, "s.db");
  const Run3 j = run(dir, bin() + " stats --db " + db);
  REQUIRE(j.status == 0);
  const json stats = json::parse(j.out);
  const Run3 h = run(dir, bin() + " stats --db " + db + " --human");
  REQUIRE(h.status == 0);
  check_not_json(h.out);
  check_no_json_punctuation(h.out);
  CHECK_LINE(h.out, "^schema version +" + std::to_string(stats["schema_version"].get<int>()) + "$");
  for (const auto& [table, n] : stats["tables"].items()) CHECK_LINE(h.out, "^" + table + " +" + std::to_string(n.get<long long>()) + "$");
  CHECK(stats["tables"]["interactions"].get<long long>() > 0);

  // ingest: one line per batch with the running totals.
  const std::string input = dir.file("events.jsonl");
  {
    std::ofstream f(input);
    for (int i = 0; i < 5; ++i) f << test::interaction_doc(test::uuid_for(i, 41)).dump() << "\n";
    f << "{broken\n";
  }
  const Run3 ih = run(dir, bin() + " ingest --db " + dir.file("i.db") + " --batch 3 --human < " + input);
  REQUIRE(ih.status == 0);
  CHECK(ih.out == "acknowledged 3, rejected 0\nacknowledged 5, rejected 1\n");
  const Run3 ij = run(dir, bin() + " ingest --db " + dir.file("i2.db") + " --batch 3 < " + input);
  REQUIRE(ij.status == 0);
  CHECK(ij.out == "{\"acknowledged\":3,\"rejected\":0}\n{\"acknowledged\":5,\"rejected\":1}\n");

  // features: a heading per line, the features as name / value lines.
  const std::string prompts = dir.file("prompts.jsonl");
  std::ofstream(prompts) << json{{"prompt", "Fix the bug in parser.py"}}.dump() << "\nnot json\n";
  const Run3 fj = run(dir, bin() + " features < " + prompts);
  CHECK(fj.status == 1);
  const json f0 = json::parse(lines_of(fj.out).at(0));
  const Run3 fh = run(dir, bin() + " features --human < " + prompts);
  CHECK(fh.status == 1);
  check_not_json(fh.out);
  CHECK_LINE(fh.out, "^line 1$");
  CHECK_LINE(fh.out, "^  token_count +" + std::to_string(f0["token_count"].get<int>()) + "$");
  CHECK_LINE(fh.out, "^  domain +" + f0["domain"].get<std::string>() + "$");
  CHECK_LINE(fh.out, "^  detected_keywords +fix, bug");
  CHECK_LINE(fh.out, "^line 2: error: malformed JSON$");

  // scrub --stats: the counts on stderr, as JSON or as one readable line.
  const std::string text = dir.file("text.txt");
  std::ofstream(text) << "mail bob@example.com now\nnothing here\n";
  const Run3 sj = run(dir, bin() + " scrub --stats < " + text);
  REQUIRE(sj.status == 0);
  CHECK(json::parse(sj.err)["email"] == 1);
  const Run3 sh = run(dir, bin() + " scrub --stats --human < " + text);
  REQUIRE(sh.status == 0);
  CHECK(sh.out == sj.out);
  check_not_json(sh.err);
  CHECK_THAT(sh.err, Catch::StartsWith("lines 2, email 1, "));
  CHECK_THAT(sh.err, Catch::EndsWith(", total 1\n"));
}

TEST_CASE("cli --human: templates, select, rollback", "[cli][human]") {
  test::TempDir dir;
  const std::string db = demo_copy(dir, "t.db");
  const json active = json::parse(run(dir, bin() + " templates --db " + db).out)["active"];
  REQUIRE(active.size() >= 2);
  const Run3 t = run(dir, bin() + " templates --db " + db + " --add concise@2 --body 'Be brief.' --human");
  REQUIRE(t.status == 0);
  check_not_json(t.out);
  check_no_json_punctuation(t.out);
  CHECK_LINE(t.out, "^" + std::to_string(active.size() + 1) + " active templates, live policy version 0$");
  CHECK_LINE(t.out, "^template +version +status +parent +created +decisions$");
  CHECK_LINE(t.out, "^concise +2 +active +20[0-9-]+T.* +0$");
  for (const auto& a : active) {
    const std::string key = a.get<std::string>();
    CHECK_LINE(t.out, "^" + key.substr(0, key.find('@')) + " +" + key.substr(key.find('@') + 1) + " +active .* [1-9][0-9]*$");
  }
  const Run3 retired = run(dir, bin() + " templates --db " + db + " --retire concise@2 --human");
  REQUIRE(retired.status == 0);
  CHECK_LINE(retired.out, "^concise +2 +retired ");

  // select: the choice, the policy and a ranked table.
  const std::string doc1 = dir.file("i1.json"), doc2 = dir.file("i2.json");
  std::ofstream(doc1) << test::interaction_doc(test::uuid_for(1, 5), "Fix the bug in parser.py").dump();
  std::ofstream(doc2) << test::interaction_doc(test::uuid_for(2, 5), "Write a haiku").dump();
  const Run3 sj = run(dir, bin() + " select --db " + db + " --record < " + doc1);
  REQUIRE(sj.status == 0);
  const json d = json::parse(sj.out);
  const Run3 sh = run(dir, bin() + " select --db " + db + " --record --human < " + doc2);
  REQUIRE(sh.status == 0);
  check_not_json(sh.out);
  check_no_json_punctuation(sh.out);
  CHECK_LINE(sh.out, "^interaction " + test::uuid_for(2, 5) + ": chose [a-z_]+@[0-9]+ with probability 0\\.[0-9]{3}");
  CHECK_LINE(sh.out, "decision " + std::to_string(d["decision_id"].get<long long>() + 1) + "$");
  CHECK_LINE(sh.out, "^rank +template +version +probability +score +chosen$");
  CHECK_LINE(sh.out, "^ *1 +[a-z_]+ +[0-9]+ +0\\.[0-9]{3} +-?[0-9.]+");
  int stars = 0;
  for (const auto& l : lines_of(sh.out)) stars += !l.empty() && l.back() == '*';
  CHECK(stars == 1);
  CHECK(lines_of(sh.out).size() == 3 + d["ranked"].size() + 1);

  // rollback: promote the candidate as if the gate had deployed it, then roll back.
  const Run3 none = run(dir, bin() + " rollback --db " + db + " --human");
  CHECK(none.status == 1);
  CHECK(none.err == "promptlearn rollback: there is no deployed policy to roll back\n");
  std::int64_t deployed = 0;
  {
    store::Database conn(db);
    conn.exec("UPDATE models SET status = 'active' WHERE name = 'template_selection' AND status = 'candidate'");
    deployed = conn.query_int("SELECT max(version) FROM models WHERE name = 'template_selection' AND status = 'active'");
  }
  REQUIRE(deployed > 0);
  const Run3 rb = run(dir, bin() + " rollback --db " + db + " --reason test --human");
  REQUIRE(rb.status == 0);
  CHECK(rb.out == "rolled back from policy version " + std::to_string(deployed) + "; live version now 0\n");
}

TEST_CASE("cli --human: ab create, assign, report, stop, list", "[cli][human]") {
  test::TempDir dir;
  const std::string db = demo_copy(dir, "ab.db");
  const std::string cfg = quote(json{{"experiment_id", "tone"},
                                     {"arms", {{{"name", "A"}, {"weight", 1}}, {{"name", "B"}, {"weight", 3}}}},
                                     {"min_samples_per_arm", 2}}
                                    .dump());
  const Run3 c = run(dir, bin() + " ab --db " + db + " --create " + cfg + " --human");
  REQUIRE(c.status == 0);
  CHECK(c.out == "created experiment tone\n");
  CHECK(run(dir, bin() + " ab --db " + db + " --human").out == "running experiments (1): tone\n");
  CHECK(json::parse(run(dir, bin() + " ab --db " + db).out) == json{{"running", {"tone"}}});
  // Assign some of the demo's interactions (they have outcomes) to arms.
  std::vector<std::string> ids;
  {
    store::Database conn(db);
    store::Statement q(conn, "SELECT interaction_id FROM outcomes ORDER BY interaction_id LIMIT 12");
    while (q.step()) ids.push_back(q.column_text(0));
  }
  REQUIRE(ids.size() == 12);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::string human = i == 0 ? " --human" : "";
    const Run3 a = run(dir, bin() + " ab --db " + db + " --assign tone --unit u" + std::to_string(i) + " --interaction " +
                                ids[i] + human);
    REQUIRE(a.status == 0);
    if (i == 0) CHECK_LINE(a.out, "^experiment tone: unit u0 is in arm [AB] \\(interaction " + ids[0] + "\\)$");
    else CHECK(json::parse(a.out)["experiment_id"] == "tone");
  }
  const Run3 rj = run(dir, bin() + " ab --db " + db + " --report tone");
  REQUIRE(rj.status == 0);
  const json rep = json::parse(rj.out);
  const Run3 rh = run(dir, bin() + " ab --db " + db + " --report tone --human");
  REQUIRE(rh.status == 0);
  check_not_json(rh.out);
  check_no_json_punctuation(rh.out);
  CHECK_LINE(rh.out, "^experiment tone \\(running\\): metric mean, alpha 0\\.050, at least 2 rewards per arm$");
  CHECK_LINE(rh.out, "^12 assigned, " + std::to_string(rep["with_outcome"].get<long long>()) + " with an outcome$");
  CHECK_LINE(rh.out, "^arm +weight +assigned +n +mean +stddev +successes +success_rate$");
  for (const std::string arm : {"A", "B"})
    CHECK_LINE(rh.out, "^" + arm + " +[0-9.]+ +" + std::to_string(rep["arms"][arm]["assigned"].get<long long>()) + " +" +
                           std::to_string(rep["arms"][arm]["n"].get<long long>()) + " ");
  CHECK_LINE(rh.out, "^verdict: winner " + rep["verdict"]["winner"].get<std::string>() + ", p ");
  REQUIRE(!rep["comparisons"].empty());  // 5 and 7 rewards: the arms are compared
  CHECK_LINE(rh.out, "^comparison +difference +ci_low +ci_high +p_value +statistic +df$");
  CHECK_LINE(rh.out, "^A - B +-?[0-9]");
  const Run3 s = run(dir, bin() + " ab --db " + db + " --stop tone --human");
  REQUIRE(s.status == 0);
  CHECK(s.out == "stopped experiment tone\n");
  CHECK(run(dir, bin() + " ab --db " + db + " --human").out == "no running experiments\n");
}

TEST_CASE("cli --human: tune ask, tell, status", "[cli][human]") {
  test::TempDir dir;
  const std::string db = dir.file("tune.db");
  const std::string space = quote(
      R"({"parameters": [{"name": "alpha", "kind": "continuous", "low": 0.01, "high": 3}, {"name": "mode", "kind": "categorical", "choices": ["a", "b"]}]})");
  const Run3 a1 = run(dir, bin() + " tune --db " + db + " --study s --ask --space " + space + " --human");
  REQUIRE(a1.status == 0);
  check_not_json(a1.out);
  CHECK_LINE(a1.out, "^study s, trial 1: try$");
  CHECK_LINE(a1.out, "^  alpha +[0-9]\\.[0-9]{3}$");
  CHECK_LINE(a1.out, "^  mode +[ab]$");
  // The last line says how to tell the value, with the exact parameters.
  const std::string last = lines_of(a1.out).back();
  const std::regex tell_re("^tell its value with: --tell --params '(.*)' --value NUMBER$");
  std::smatch m;
  REQUIRE(std::regex_match(last, m, tell_re));
  const json params = json::parse(m[1].str());
  const Run3 t1 = run(dir, bin() + " tune --db " + db + " --study s --tell --params " + quote(params.dump()) +
                               " --value 0.25 --human");
  REQUIRE(t1.status == 0);
  check_not_json(t1.out);
  CHECK_LINE(t1.out, "^study s: 1 evaluations$");
  CHECK_LINE(t1.out, "^best 0\\.250 at alpha [0-9.]+, mode [ab]$");
  CHECK_LINE(t1.out, "^trial +alpha +mode +value +asked_at +told_at$");
  CHECK_LINE(t1.out, "^ *1 +[0-9]\\.[0-9]{3} +[ab] +0\\.250 +20");
  const Run3 a2 = run(dir, bin() + " tune --db " + db + " --study s --ask");
  REQUIRE(a2.status == 0);
  CHECK(json::parse(a2.out)["trial"] == 2);
  const Run3 sj = run(dir, bin() + " tune --db " + db + " --study s --status");
  REQUIRE(sj.status == 0);
  CHECK(json::parse(sj.out)["trials"].size() == 2);
  const Run3 sh = run(dir, bin() + " tune --db " + db + " --study s --status --human");
  REQUIRE(sh.status == 0);
  check_not_json(sh.out);
  check_no_json_punctuation(sh.out);
  CHECK_LINE(sh.out, "^ *2 +[0-9]\\.[0-9]{3} +[ab] +- +20[-0-9T:.]+Z +-$");  // asked, not told yet
}

TEST_CASE("cli --human: purge, erase-user, export-user", "[cli][human]") {
  test::TempDir dir;
  const std::string now = " --now 2026-09-01T00:00:00Z";  // past the retention of the demo's interactions
  const std::string p1 = demo_copy(dir, "p1.db"), p2 = demo_copy(dir, "p2.db");
  const Run3 pj = run(dir, bin() + " purge --db " + p1 + now);
  REQUIRE(pj.status == 0);
  const json purged = json::parse(pj.out);
  const Run3 ph = run(dir, bin() + " purge --db " + p2 + now + " --human");
  REQUIRE(ph.status == 0);
  check_not_json(ph.out);
  check_no_json_punctuation(ph.out);
  CHECK(purged["deleted"]["interactions"].get<long long>() > 0);
  long long total = 0;
  for (const auto& [table, n] : purged["deleted"].items()) {
    CHECK_LINE(ph.out, "^" + table + " +" + std::to_string(n.get<long long>()) + "$");
    total += n.get<long long>();
  }
  CHECK_LINE(ph.out, "^total +" + std::to_string(total) + "$");
  CHECK_LINE(ph.out, "^interactions_before +" + purged["interactions_before"].get<std::string>() + "$");
  CHECK_LINE(ph.out, "^pages_freed +[0-9]+$");

  // export-user and erase-user of one user of the demo.
  const std::string e1 = demo_copy(dir, "e1.db"), e2 = demo_copy(dir, "e2.db");
  std::string user;
  {
    store::Database conn(e1);
    store::Statement q(conn, "SELECT user_id FROM interactions WHERE user_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1");
    REQUIRE(q.step());
    user = q.column_text(0);
  }
  const Run3 xj = run(dir, bin() + " export-user --db " + e1 + " --user " + quote(user));
  REQUIRE(xj.status == 0);
  const json exported = json::parse(xj.out);
  const Run3 xh = run(dir, bin() + " export-user --db " + e1 + " --user " + quote(user) + " --human");
  REQUIRE(xh.status == 0);
  check_not_json(xh.out);
  CHECK_LINE(xh.out, "^user_id +" + user + "$");
  int tables = 0;
  for (const auto& [table, rows] : exported.items()) {
    if (!rows.is_array()) continue;
    ++tables;
    const auto n = rows.size();
    CHECK_LINE(xh.out, "^" + table + " \\(" + std::to_string(n) + (n == 1 ? " row" : " rows") + "\\)$");
  }
  CHECK(tables >= 5);
  REQUIRE(exported["interactions"].size() > 1);
  CHECK_LINE(xh.out, "^  complexity_score +detected_keywords +domain ");
  // Nested rows in a cell are counted, long lists elided.
  CHECK_LINE(xh.out, "^  " + std::to_string(exported["decisions"][0]["action_set"].size()) + " items +");
  CHECK_LINE(xh.out, " [-0-9., ]+\\.\\.\\. ");

  const Run3 ej = run(dir, bin() + " erase-user --db " + e1 + " --user " + quote(user));
  REQUIRE(ej.status == 0);
  const json erased = json::parse(ej.out);
  const Run3 eh = run(dir, bin() + " erase-user --db " + e2 + " --user " + quote(user) + " --human");
  REQUIRE(eh.status == 0);
  check_not_json(eh.out);
  check_no_json_punctuation(eh.out);
  CHECK(erased["deleted"]["interactions"] == exported["interactions"].size());
  for (const auto& [table, n] : erased["deleted"].items())
    CHECK_LINE(eh.out, "^" + table + " +" + std::to_string(n.get<long long>()) + "$");
  CHECK_LINE(eh.out, "^wal_cleared +yes$");
  CHECK_LINE(eh.out, "^policy$");
  CHECK_LINE(eh.out, "^  downdates +" + std::to_string(erased["policy"]["downdates"].get<long long>()) + "$");
}

TEST_CASE("cli --human: merge, report, export", "[cli][human]") {
  test::TempDir dir;
  const std::string a = demo_copy(dir, "a.db");
  const Run3 mj = run(dir, bin() + " merge " + a + " -o " + dir.file("m1.db"));
  REQUIRE(mj.status == 0);
  const json merged = json::parse(mj.out);
  const Run3 mh = run(dir, bin() + " merge " + a + " -o " + dir.file("m2.db") + " --human");
  REQUIRE(mh.status == 0);
  check_not_json(mh.out);
  check_no_json_punctuation(mh.out);
  CHECK_LINE(mh.out, "^merged 1 shard \\(" + a + "\\) into " + dir.file("m2.db") + "$");
  CHECK_LINE(mh.out, "^interactions +" + std::to_string(merged["interactions"].get<long long>()) + "$");
  CHECK_LINE(mh.out, "^decisions +" + std::to_string(merged["decisions"].get<long long>()) + "$");
  CHECK(fs::exists(dir.file("m2.db")));

  const Run3 rj = run(dir, bin() + " report --db " + a + " -o " + dir.file("r1.html") + " --days 3 --now 2026-01-07T12:00:00Z");
  REQUIRE(rj.status == 0);
  const json rep = json::parse(rj.out);
  const Run3 rh = run(dir, bin() + " report --db " + a + " -o " + dir.file("r2.html") + " --days 3 --now 2026-01-07T12:00:00Z --human");
  REQUIRE(rh.status == 0);
  check_not_json(rh.out);
  check_no_json_punctuation(rh.out);
  CHECK(rep["interactions"].get<long long>() > 0);
  CHECK(rh.out == "wrote " + dir.file("r2.html") + " (" + std::to_string(rep["bytes"].get<long long>()) + " bytes): 4 charts (" +
                      std::to_string(rep["charts_with_data"].get<int>()) + " with data), 2 tables\n"
                  "window " + rep["window"]["from"].get<std::string>() + " .. " + rep["window"]["to"].get<std::string>() +
                      ", charted per hour\n" +
                  std::to_string(rep["interactions"].get<long long>()) + " interactions, " +
                  std::to_string(rep["decisions"].get<long long>()) + " decisions, " +
                  std::to_string(rep["insights"].get<long long>()) + " insights, " +
                  std::to_string(rep["correlations"].get<long long>()) + " correlations\n");
  CHECK(fs::exists(dir.file("r2.html")));

  // export: the data goes to stdout or to -o (JSON lines that parse); --human needs -o.
  const Run3 xj = run(dir, bin() + " export --db " + a + " --format jsonl");
  REQUIRE(xj.status == 0);
  const auto docs = lines_of(xj.out);
  REQUIRE(!docs.empty());
  for (const auto& l : docs) CHECK(json::accept(l));
  const Run3 xh = run(dir, bin() + " export --db " + a + " --format jsonl -o " + dir.file("x.jsonl") + " --human");
  REQUIRE(xh.status == 0);
  CHECK(xh.out == "wrote " + std::to_string(docs.size()) + " interactions as jsonl to " + dir.file("x.jsonl") + "\n");
  CHECK(test::read_file(dir.file("x.jsonl")) == xj.out);
  const Run3 xd = run(dir, bin() + " export --db " + a + " --format dsjson -o " + dir.file("x.dsjson") + " --human");
  REQUIRE(xd.status == 0);
  CHECK(xd.out == "wrote " + std::to_string(lines_of(test::read_file(dir.file("x.dsjson"))).size()) + " decisions as dsjson to " +
                      dir.file("x.dsjson") + "\n");
  const Run3 xq = run(dir, bin() + " export --db " + a + " --format csv -o " + dir.file("x.csv"));
  REQUIRE(xq.status == 0);
  CHECK(xq.out.empty());  // without --human, -o prints nothing (as before)
  const Run3 bad = run(dir, bin() + " export --db " + a + " --format csv --human");
  CHECK(bad.status == 2);
  CHECK(bad.out.empty());
  CHECK_THAT(bad.err, Catch::StartsWith("promptlearn export: option '--human': "));
}

TEST_CASE("cli --human: the specialised printers of analyze, metrics, backup, jobs", "[cli][human]") {
  test::TempDir dir;
  const std::string db = demo_copy(dir, "x.db");
  const std::string now = " --now 2026-01-07T00:00:00Z";
  const Run3 aj = run(dir, bin() + " analyze --db " + db + " --days 3" + now);
  REQUIRE(aj.status == 0);
  const json an = json::parse(aj.out);
  const Run3 ah = run(dir, bin() + " analyze --db " + db + " --days 3" + now + " --human");
  REQUIRE(ah.status == 0);
  check_not_json(ah.out);
  CHECK_LINE(ah.out, ": " + std::to_string(an["events"].get<long long>()) + " interactions, ");

  const Run3 mj = run(dir, bin() + " metrics --db " + db + " --window 3d" + now);
  REQUIRE(mj.status == 0);
  const json met = json::parse(mj.out);
  const Run3 mh = run(dir, bin() + " metrics --db " + db + " --window 3d" + now + " --human");
  REQUIRE(mh.status == 0);
  check_not_json(mh.out);
  check_no_json_punctuation(mh.out);
  CHECK_LINE(mh.out, ": " + std::to_string(met["metrics"]["requests"].get<long long>()) + " requests, ");

  const Run3 bh = run(dir, bin() + " backup --db " + db + " -o " + dir.file("b.db") + " --human");
  REQUIRE(bh.status == 0);
  check_not_json(bh.out);
  CHECK_LINE(bh.out, "^backed up '" + db + "' to '" + dir.file("b.db") + "': [0-9]+ pages");
  const Run3 bj = run(dir, bin() + " backup --db " + db + " -o " + dir.file("b2.db"));
  REQUIRE(bj.status == 0);
  CHECK(json::parse(bj.out)["integrity"] == "ok");

  const Run3 jh = run(dir, bin() + " jobs --db " + db + now + " --human");
  REQUIRE(jh.status == 0);
  check_not_json(jh.out);
  check_no_json_punctuation(jh.out);
  CHECK_THAT(jh.out, Catch::StartsWith("ran: learn"));
  const Run3 jj = run(dir, bin() + " jobs --db " + db + " --now 2026-01-07T00:01:00Z");
  REQUIRE(jj.status == 0);
  CHECK(json::parse(jj.out).contains("ran"));
}
