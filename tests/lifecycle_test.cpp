// The data lifecycle on real files: erasure of one user (rows, free pages, the write-ahead log, learned
// state by exact downdates), export, retention, the job scheduler's leases across processes, the background
// thread, and the read-only mode.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <Eigen/LU>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/select/factory.hpp"
#include "promptlearn/select/linear_bandit.hpp"
#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using namespace promptlearn;
using nlohmann::json;

namespace {

constexpr TimeMs kDay = 86400000;
const TimeMs kStart = *try_parse_rfc3339("2026-01-05T00:00:00Z");
const char* kTemplates[] = {"concise", "detailed", "stepwise"};

std::int64_t count(const std::string& db, const std::string& sql) {
  store::Store st(db);
  return st.db().query_int(sql);
}

/// `n` interactions of `user` from `t0`, one a minute, each selected for and rewarded.
void interact(LearningEngine& engine, ManualClock& clock, const std::string& user, const std::string& prompt_tag,
              int n, std::uint64_t salt, TimeMs t0) {
  for (int i = 0; i < n; ++i) {
    clock.set(t0 + i * 60000);
    const std::string id = test::uuid_for(static_cast<std::uint64_t>(i), salt);
    json doc = test::interaction_doc(id, "Please review " + prompt_tag + " module number " + std::to_string(i));
    doc["timestamp"] = format_rfc3339(clock.now_ms());
    doc["user_id"] = user;
    doc["session_id"] = user + "-s" + std::to_string(i / 10);
    REQUIRE(engine.record(doc).accepted);
    Decision d = engine.select_template(doc);
    const double q = d.chosen.template_id == "stepwise" ? 8.0 : (i % 3 == 0 ? 6.0 : 4.0);
    REQUIRE(engine.record(json{{"interaction_id", id}, {"outcome_data", {{"response_quality_score", q}}}}).accepted);
    REQUIRE(engine.record(json{{"interaction_id", id}, {"performance_metrics", {{"total_processing_time_ms", 40 + i}}}})
                .accepted);
  }
}

bool file_contains(const std::string& path, const std::string& needle) {
  if (!std::filesystem::exists(path)) return false;
  return test::read_file(path).find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("a linear policy forgets one update exactly (rank-1 downdate)", "[lifecycle][downdate]") {
  // The downdated statistics equal ridge regression on the remaining updates, expressed in the
  // coordinates in force (rescales happened while the forgotten updates were in).
  const int dim = 6;
  auto p = select::make_policy("linucb", json::object(), dim);
  for (const char* t : kTemplates) p->add_action(t);
  Rng rng(7);
  struct U {
    Eigen::VectorXd x;
    std::string a;
    double r;
  };
  std::vector<U> updates;
  for (int i = 0; i < 300; ++i) {
    Eigen::VectorXd x(dim);
    for (int j = 0; j < dim; ++j) x(j) = rng.normal() * (1 + j) + (j == 0 ? 50 : 0);
    updates.push_back({x, kTemplates[i % 3], rng.uniform()});
    p->update(updates.back().x, updates.back().a, updates.back().r, 0.5);
  }
  auto* lp = dynamic_cast<select::LinearPolicy*>(p.get());
  REQUIRE(lp);
  std::vector<bool> keep(updates.size(), true);
  for (std::size_t i = 0; i < updates.size(); i += 7) {
    REQUIRE(p->downdate(updates[i].x, updates[i].a, updates[i].r));
    keep[i] = false;
  }
  const auto& m = lp->models();
  for (const auto& arm : m.arms()) {
    const Eigen::Index n = dim + 1;
    Eigen::MatrixXd a = m.lambda() * Eigen::MatrixXd::Identity(n, n);
    Eigen::VectorXd b = Eigen::VectorXd::Zero(n);
    for (std::size_t i = 0; i < updates.size(); ++i)
      if (keep[i] && updates[i].a == arm.key) {
        const Eigen::VectorXd z = m.transform(updates[i].x);
        a += z * z.transpose();
        b += updates[i].r * z;
      }
    const Eigen::VectorXd theta = a.ldlt().solve(b);
    CHECK((arm.theta - theta).norm() < 1e-8 * (1 + theta.norm()));
    CHECK((arm.a_inv - a.inverse()).norm() < 1e-8);
  }
  // Forgetting what was never learned is refused when it cannot be in the statistics.
  auto fresh = select::make_policy("linucb", json::object(), dim);
  fresh->add_action("concise");
  Eigen::VectorXd big = Eigen::VectorXd::Constant(dim, 1e6);
  CHECK_THROWS_AS(fresh->downdate(big, "concise", 1.0), ValidationError);
  CHECK_THROWS_AS(p->downdate(updates[1].x, "unknown", 0.5), ValidationError);
  // A tabular Q-learning policy cannot forget exactly: it says so and changes nothing.
  auto q = select::make_policy("q_learning", json::object(), dim);
  q->add_action("concise");
  q->update(updates[0].x, "concise", 1.0, 1.0);
  const json before = q->to_json();
  CHECK_FALSE(q->downdate(updates[0].x, "concise", 1.0));
  CHECK(q->to_json() == before);
}

TEST_CASE("erase_user removes every row, byte and learned decision of one user", "[lifecycle][erase]") {
  test::TempDir dir;
  const std::string db = dir.file("erase.db");
  ManualClock clock(kStart);
  EngineOptions eo;
  eo.clock = &clock;
  LearningEngine engine(db, test::fast_config(), eo);
  for (const char* t : kTemplates) engine.register_template(t, "1", std::string("body ") + t);
  interact(engine, clock, "alice", "zebracorn", 40, 1, kStart);
  interact(engine, clock, "bob", "quokkaflux", 40, 2, kStart + kDay / 2);
  clock.set(kStart + kDay);
  engine.run_due_jobs(clock.now_ms());  // learns both users' decisions into the candidate
  const std::string alice = engine.export_user("alice")["user_id"];
  REQUIRE(count(db, "SELECT count(*) FROM decisions WHERE learned_into IS NOT NULL") > 40);
  json exported = engine.export_user("alice");
  CHECK(exported["interactions"].size() == 40);
  CHECK(exported["decisions"].size() == 40);
  CHECK(exported["interactions"][0]["raw_prompt"].get<std::string>().find("zebracorn") != std::string::npos);
  store::ModelRow cand_before = *store::Store(db).latest_model(PolicyManager::kModelName, "candidate");

  EraseReport r = engine.erase_user("alice");
  CHECK(r.interactions == 40);
  CHECK(r.decisions == 40);
  CHECK(r.user_rows >= 1);
  CHECK(r.policy.downdates > 0);
  CHECK(r.policy.checkpoints >= 1);
  CHECK(r.policy.not_exact == 0);
  CHECK(r.wal_cleared);
  // The metric rollups of the hours she was active are rebuilt from the remaining rows (bob's).
  CHECK(r.rollup_hours > 0);
  CHECK(count(db, "SELECT sum(requests) FROM metric_rollups WHERE granularity = 'hour'") == 40);
  CHECK(count(db, "SELECT sum(requests) FROM metric_rollups WHERE granularity = 'day'") == 40);
  CHECK(count(db, "SELECT count(*) FROM interactions") == 40);  // bob's
  CHECK(count(db, "SELECT count(*) FROM outcomes") == 40);
  CHECK(count(db, "SELECT count(*) FROM user_stats") == 1);
  CHECK(engine.export_user("alice")["interactions"].empty());
  CHECK(store::Store(db).latest_model(PolicyManager::kModelName, "candidate")->state != cand_before.state);
  // The audit row says what was erased, without the id.
  {
    store::Store st(db);
    store::Statement q(st.db(), "SELECT details FROM audit_log WHERE action = 'erase_user'");
    REQUIRE(q.step());
    CHECK(q.column_text(0).find(alice) == std::string::npos);
    CHECK(json::parse(q.column_text(0))["deleted"]["interactions"] == 40);
  }
  engine.close();
  // No page of the file (rows, free pages, indexes) and no write-ahead log holds her hash or text.
  for (const std::string& f : {db, db + "-wal"}) {
    INFO(f);
    CHECK_FALSE(file_contains(f, alice));
    CHECK_FALSE(file_contains(f, "zebracorn"));
  }
  CHECK(file_contains(db, "quokkaflux"));  // bob's prompts are still there (the check can find text)
  // The learned policy still works and still learns.
  clock.set(kStart + 2 * kDay);
  interact(engine, clock, "carol", "pangolin", 5, 3, clock.now_ms());
  CHECK(engine.run_due_jobs(clock.now_ms()).learn->learned == 5);
  CHECK(engine.integrity_check() == "ok");
}

TEST_CASE("retention deletes what is past each kind's days, keeps daily rollups, and is audited", "[lifecycle][retention]") {
  test::TempDir dir;
  const std::string db = dir.file("ret.db");
  ManualClock clock(kStart);
  EngineOptions eo;
  eo.clock = &clock;
  Config c = test::fast_config();
  c.learning.data_retention.interaction_data_days = 30;
  LearningEngine engine(db, c, eo);
  for (const char* t : kTemplates) engine.register_template(t, "1", "b");
  interact(engine, clock, "erin", "old", 10, 1, kStart);
  interact(engine, clock, "frank", "new", 10, 2, kStart + 40 * kDay);
  {
    store::Store st(db);
    st.db().exec("INSERT INTO metric_rollups VALUES ('hour', '2025-01-01T00:00:00.000Z', 1, x'00', '2025-01-01T00:00:00.000Z')");
    st.db().exec("INSERT INTO metric_rollups VALUES ('day', '2025-01-01T00:00:00.000Z', 1, x'00', '2025-01-01T00:00:00.000Z')");
  }
  RetentionReport r = engine.run_retention(kStart + 45 * kDay);
  CHECK(r.interactions == 10);
  CHECK(r.decisions == 10);
  CHECK(r.rollups == 1);
  CHECK(count(db, "SELECT count(*) FROM interactions") == 10);
  CHECK(count(db, "SELECT count(*) FROM outcomes") == 10);
  CHECK(count(db, "SELECT count(*) FROM metric_rollups WHERE granularity = 'day'") == 1);
  CHECK(count(db, "SELECT count(*) FROM user_stats") == 1);
  CHECK(count(db, "SELECT count(*) FROM audit_log WHERE action = 'retention'") == 1);
  CHECK(count(db, "PRAGMA auto_vacuum") == 2);  // incremental: freed pages go back to the file system
  // As a job: daily, once per day however often the host calls.
  clock.set(kStart + 46 * kDay);
  CHECK(engine.run_due_jobs(clock.now_ms()).retention);
  CHECK_FALSE(engine.run_due_jobs(clock.now_ms() + 3600000).retention);
  CHECK(engine.run_due_jobs(clock.now_ms() + kDay).retention);
}

TEST_CASE("two processes never run the same job at once, and a host back after a week runs each job once",
          "[lifecycle][scheduler]") {
  test::TempDir dir;
  const std::string db = dir.file("jobs.db");
  ManualClock clock(kStart);
  {
    EngineOptions eo;
    eo.clock = &clock;
    LearningEngine engine(db, test::fast_config(), eo);
    for (const char* t : kTemplates) engine.register_template(t, "1", "b");
  }
  // Four processes call run_due_jobs at the same moment, many times.
  std::vector<pid_t> kids;
  for (int k = 0; k < 4; ++k) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int rc = 0;
      try {
        ManualClock c(kStart + kDay);
        EngineOptions eo;
        eo.clock = &c;
        LearningEngine engine(db, test::fast_config(), eo);
        for (int i = 0; i < 5; ++i) engine.run_due_jobs(kStart + kDay);
      } catch (...) {
        rc = 1;
      }
      ::_exit(rc);
    }
    kids.push_back(pid);
  }
  for (pid_t p : kids) {
    int status = 0;
    ::waitpid(p, &status, 0);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  }
  for (const char* job : {"gate", "patterns", "retention"}) {
    INFO(job);
    CHECK(count(db, std::string("SELECT count(*) FROM job_runs WHERE status = 'ok' AND job = '") + job + "'") == 1);
  }
  CHECK(count(db, "SELECT count(*) FROM job_runs WHERE status = 'running'") == 0);
  CHECK(count(db, "SELECT count(*) FROM job_leases") == 0);

  ManualClock clock2(kStart + kDay);
  EngineOptions eo;
  eo.clock = &clock2;
  LearningEngine engine(db, test::fast_config(), eo);
  // A live lease of another holder blocks the job; an expired one does not.
  {
    store::Store st(db);
    st.db().exec("INSERT INTO job_leases VALUES ('patterns', 'other-host:1:0', '2026-01-06T00:00:00.000Z', '2026-01-06T03:00:00.000Z')");
  }
  JobsReport r = engine.run_due_jobs(kStart + kDay + 2 * 3600000);
  CHECK(std::find(r.leased_elsewhere.begin(), r.leased_elsewhere.end(), "patterns") != r.leased_elsewhere.end());
  r = engine.run_due_jobs(kStart + kDay + 4 * 3600000);
  CHECK(std::find(r.ran.begin(), r.ran.end(), "patterns") != r.ran.end());
  // Off for a week: each due job runs once, not once per missed hour or day.
  const auto before = count(db, "SELECT count(*) FROM job_runs");
  r = engine.run_due_jobs(kStart + 9 * kDay);
  CHECK(count(db, "SELECT count(*) FROM job_runs WHERE job = 'patterns'") == 3);
  CHECK(count(db, "SELECT count(*) FROM job_runs") - before == static_cast<std::int64_t>(r.ran.size()) - 2);  // learn, watch unrecorded
}

TEST_CASE("a failing job is recorded and the others still run", "[lifecycle][scheduler]") {
  test::TempDir dir;
  const std::string db = dir.file("fail.db");
  ManualClock clock(kStart);
  EngineOptions eo;
  eo.clock = &clock;
  Config c = test::fast_config();
  LearningEngine engine(db, c, eo);
  for (const char* t : kTemplates) engine.register_template(t, "1", "b");
  interact(engine, clock, "gina", "x", 3, 1, kStart);
  // A corrupt stored interaction timestamp breaks the pattern job's read.
  {
    store::Store st(db);
    st.db().exec("UPDATE interactions SET timestamp = '2026-01-05T00:00:00.000Z-garbage' WHERE interaction_id IN (SELECT interaction_id FROM interactions LIMIT 1)");
  }
  JobsReport r = engine.run_due_jobs(kStart + kDay);
  bool patterns_failed = false;
  for (const auto& [job, error] : r.failed) patterns_failed = patterns_failed || job == "patterns";
  CHECK(patterns_failed);
  CHECK(std::find(r.ran.begin(), r.ran.end(), "retention") != r.ran.end());
  CHECK(count(db, "SELECT count(*) FROM job_runs WHERE job = 'patterns' AND status = 'failed'") == 1);
  CHECK(count(db, "SELECT count(*) FROM job_leases") == 0);
}

TEST_CASE("the background thread runs the due jobs until stopped", "[lifecycle][scheduler]") {
  test::TempDir dir;
  const std::string db = dir.file("bg.db");
  LearningEngine engine(db, test::fast_config());
  engine.register_template("concise", "1", "b");
  engine.start_background_jobs(std::chrono::milliseconds(20));
  CHECK_THROWS_AS(engine.start_background_jobs(std::chrono::milliseconds(20)), Error);
  for (int i = 0; i < 200 && count(db, "SELECT count(*) FROM job_runs WHERE status = 'ok'") < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(engine.record(test::interaction_doc(test::uuid_for(1))).accepted);  // the host keeps working meanwhile
  engine.stop_background_jobs();
  CHECK(count(db, "SELECT count(*) FROM job_runs WHERE status = 'ok'") >= 3);
  CHECK(engine.last_background_error().empty());
  CHECK_THROWS_AS(engine.start_background_jobs(std::chrono::milliseconds(0)), ConfigError);
}

TEST_CASE("read-only mode: analysts read, nothing is written", "[lifecycle][read_only]") {
  test::TempDir dir;
  const std::string db = dir.file("ro.db");
  ManualClock clock(kStart);
  {
    EngineOptions eo;
    eo.clock = &clock;
    LearningEngine engine(db, test::fast_config(), eo);
    for (const char* t : kTemplates) engine.register_template(t, "1", "b");
    interact(engine, clock, "hana", "x", 5, 1, kStart);
  }
  const auto audit = count(db, "SELECT count(*) FROM audit_log");
  EngineOptions ro;
  ro.read_only = true;
  ro.clock = &clock;
  LearningEngine engine(db, test::fast_config(), ro);
  CHECK_THROWS_WITH(engine.record(test::interaction_doc(test::uuid_for(9))), Catch::Contains("read-only"));
  CHECK_THROWS_WITH(engine.run_due_jobs(kStart), Catch::Contains("read-only"));
  CHECK_THROWS_WITH(engine.erase_user("hana"), Catch::Contains("read-only"));
  CHECK_THROWS_AS(engine.select_template(test::interaction_doc(test::uuid_for(9))), Error);
  CHECK(engine.export_user("hana")["interactions"].size() == 5);
  CHECK(engine.stats().tables.interactions == 5);
  engine.close();
  CHECK(count(db, "SELECT count(*) FROM audit_log") == audit);
  // A file that does not exist is not created.
  CHECK_THROWS_AS(LearningEngine(dir.file("missing.db"), test::fast_config(), ro), StorageError);
  CHECK_FALSE(std::filesystem::exists(dir.file("missing.db")));
}

TEST_CASE("a configuration change is written to audit_log as a patch, once", "[lifecycle][audit]") {
  test::TempDir dir;
  const std::string db = dir.file("cfg.db");
  { LearningEngine engine(db, test::fast_config()); }
  { LearningEngine engine(db, test::fast_config()); }  // the same configuration: no new row
  CHECK(count(db, "SELECT count(*) FROM audit_log WHERE action = 'configuration'") == 1);
  Config c = test::fast_config();
  c.learning.data_retention.interaction_data_days = 30;
  { LearningEngine engine(db, c); }
  CHECK(count(db, "SELECT count(*) FROM audit_log WHERE action = 'configuration'") == 2);
  store::Store st(db);
  store::Statement q(st.db(), "SELECT details FROM audit_log WHERE action = 'configuration' ORDER BY id DESC LIMIT 1");
  REQUIRE(q.step());
  const json d = json::parse(q.column_text(0));
  REQUIRE(d["changes"].size() == 1);
  CHECK(d["changes"][0]["path"] == "/learning/data_retention/interaction_data_days");
  CHECK(d["changes"][0]["value"] == 30);
}

