// ExperimentManager: A/B experiments stored in the file (ab_tests, ab_assignments) and their reports.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "promptlearn/collect/collector.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/core/stats.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/lifecycle/experiments.hpp"
#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using namespace promptlearn;
using nlohmann::json;

namespace {

const TimeMs kStart = *try_parse_rfc3339("2026-02-01T12:00:00Z");

Config test_config() {
  Config c = Config::defaults();
  c.learning.data_collection.synchronous_commit = SynchronousCommit::normal;  // fsync is not the subject
  return c;
}

store::OpenOptions open_options() {
  store::OpenOptions o;
  o.synchronous_full = false;
  return o;
}

/// The layer stack a host process holds: store, collector, experiments (as LearningEngine wires them).
struct Stack {
  explicit Stack(const std::string& path)
      : config(test_config()), clock(kStart), st(path, open_options()), collector(st, config, clock),
        experiments(collector, config, clock) {}
  Config config;
  ManualClock clock;
  store::Store st;
  Collector collector;
  ExperimentManager experiments;
};

select::AbTestConfig two_arms(const std::string& id, std::uint64_t min_samples = 100, double weight_b = 1) {
  select::AbTestConfig c;
  c.experiment_id = id;
  c.arms = {{"A", 1}, {"B", weight_b}};
  c.min_samples_per_arm = min_samples;
  return c;
}

std::int64_t count(store::Store& st, const std::string& sql) { return st.db().query_int(sql); }

/// An interaction with its outcome in one wire document.
std::string interaction_with_quality(const std::string& id, double quality) {
  json doc = test::interaction_doc(id);
  doc["outcome_data"] = {{"response_quality_score", std::clamp(quality, 0.0, 10.0)}};
  return doc.dump();
}

/// The rewards the test fed per arm, computed here independently of the report.
using ArmMoments = std::map<std::string, RunningMoments>;

/// Assigns `units` new units (one interaction each) and records each interaction's outcome, quality drawn
/// from N(10 * mean_of[arm], 2^2) clipped to [0, 10]; the reward is then quality / 10.
void simulate(Stack& s, const std::string& experiment, int first_unit, int units, std::map<std::string, double> mean_of,
              Rng& rng, ArmMoments& fed) {
  std::vector<std::string> docs;
  for (int u = first_unit; u < first_unit + units; ++u) {
    const std::string id = test::uuid_for(static_cast<std::uint64_t>(u), select::fnv1a_64(experiment));
    const std::string arm = s.experiments.assign(experiment, "unit-" + std::to_string(u), id);
    const double q = std::clamp(rng.normal(10 * mean_of.at(arm), 2.0), 0.0, 10.0);
    fed[arm].add(q / 10);
    docs.push_back(interaction_with_quality(id, q));
  }
  for (const auto& r : s.collector.record_batch(docs)) REQUIRE(r.accepted);
}

}  // namespace

TEST_CASE("create validates, refuses a duplicate id and is audited", "[experiments]") {
  test::TempDir dir;
  Stack s(dir.file("create.db"));
  s.experiments.create(two_arms("greeting"));
  CHECK(s.experiments.experiments() == std::vector<std::string>{"greeting"});
  CHECK(count(s.st, "SELECT count(*) FROM ab_tests WHERE status = 'running' AND stopped_at IS NULL") == 1);
  CHECK(count(s.st, "SELECT count(*) FROM audit_log WHERE action = 'create_experiment' AND "
                    "json_extract(details, '$.experiment_id') = 'greeting'") == 1);

  // The stored config is the AbTestConfig as JSON and reads back field for field.
  store::Statement q(s.st.db(), "SELECT config, created_at FROM ab_tests");
  REQUIRE(q.step());
  select::AbTestConfig back = experiment_config_from_json(json::parse(q.column_text(0)));
  CHECK(q.column_text(1) == "2026-02-01T12:00:00.000Z");
  CHECK(back.experiment_id == "greeting");
  REQUIRE(back.arms.size() == 2);
  CHECK((back.arms[1].name == "B" && back.arms[1].weight == 1));
  CHECK(back.min_samples_per_arm == 100);
  CHECK(back.alpha == 0.05);

  try {
    s.experiments.create(two_arms("greeting", 50));
    FAIL("a duplicate experiment id was accepted");
  } catch (const ValidationError& e) {
    CHECK(e.path() == "experiment_id");
    CHECK(std::string(e.what()) == "experiment_id: experiment 'greeting' already exists");
  }
  select::AbTestConfig bad = two_arms("other");
  bad.arms[1].weight = -1;
  CHECK_THROWS_AS(s.experiments.create(bad), ConfigError);
  CHECK(count(s.st, "SELECT count(*) FROM ab_tests") == 1);
  CHECK(count(s.st, "SELECT count(*) FROM audit_log WHERE action = 'create_experiment'") == 1);

  try {
    s.experiments.assign("nope", "unit", test::uuid_for(1));
    FAIL("an unknown experiment assigned a unit");
  } catch (const ValidationError& e) {
    CHECK(std::string(e.what()) == "experiment_id: 'nope' is not a known experiment");
  }
  CHECK_THROWS_AS(s.experiments.report("nope"), ValidationError);
  CHECK_THROWS_AS(s.experiments.stop("nope"), ValidationError);
}

TEST_CASE("a unit keeps its arm across managers on one file and across reopening", "[experiments]") {
  test::TempDir dir;
  const std::string path = dir.file("stable.db");
  select::AbTestConfig cfg;
  cfg.experiment_id = "three-way";
  cfg.arms = {{"control", 1}, {"short", 1}, {"long", 2}};
  const select::AbTest reference(cfg);  // the closed form: AbTest::assign on the unit id
  std::map<std::string, int> per_arm;
  {
    Stack a(path), b(path);  // two connections, as two processes would hold
    a.experiments.create(cfg);
    for (int u = 0; u < 300; ++u) {
      const std::string unit = "user-" + std::to_string(u);
      const std::string arm_a = a.experiments.assign("three-way", unit, test::uuid_for(static_cast<std::uint64_t>(u), 1));
      const std::string arm_b = b.experiments.assign("three-way", unit, test::uuid_for(static_cast<std::uint64_t>(u), 2));
      CHECK(arm_a == reference.assign(unit));
      CHECK(arm_b == arm_a);
      ++per_arm[arm_a];
    }
  }
  CHECK(per_arm.size() == 3);  // every arm is used
  Stack c(path);
  for (int u = 0; u < 300; ++u) {
    const std::string unit = "user-" + std::to_string(u);
    CHECK(c.experiments.assign("three-way", unit, test::uuid_for(static_cast<std::uint64_t>(u), 3)) ==
          reference.assign(unit));
  }
  CHECK(count(c.st, "SELECT count(*) FROM ab_assignments") == 900);
  // Every interaction of a unit carries the same arm.
  CHECK(count(c.st, "SELECT count(*) FROM (SELECT unit_id FROM ab_assignments GROUP BY unit_id "
                    "HAVING count(DISTINCT arm) > 1)") == 0);
}

TEST_CASE("the split over 20,000 units matches the weights within binomial tolerance", "[experiments]") {
  test::TempDir dir;
  Stack s(dir.file("split.db"));
  s.experiments.create(two_arms("split", 100, 3));  // A : B = 1 : 3
  constexpr int kUnits = 20000;
  int b = 0;
  for (int u = 0; u < kUnits; ++u)
    b += s.experiments.assign("split", "u" + std::to_string(u), test::uuid_for(static_cast<std::uint64_t>(u), 7)) == "B";
  // B ~ Binomial(20000, 3/4) if the hash is uniform: mean 15000, sd sqrt(20000 * 3/4 * 1/4) = 61.2;
  // 4 sd (two-sided p = 6e-5) is the tolerance.
  const double sd = std::sqrt(kUnits * 0.75 * 0.25);
  CHECK(std::fabs(b - 15000.0) < 4 * sd);
  CHECK(count(s.st, "SELECT count(*) FROM ab_assignments WHERE experiment_id = 'split' AND arm = 'B'") == b);
  ExperimentReport r = s.experiments.report("split");
  CHECK(r.assigned == kUnits);
  CHECK(r.with_outcome == 0);
  CHECK(r.arms["B"]["assigned"].get<std::int64_t>() == b);
  CHECK(r.arms["A"]["assigned"].get<std::int64_t>() == kUnits - b);
  CHECK(r.verdict.winner == "none");
  CHECK(r.comparisons.empty());  // no rewards yet
}

TEST_CASE("assignment is idempotent per interaction", "[experiments]") {
  test::TempDir dir;
  Stack s(dir.file("idempotent.db"));
  s.experiments.create(two_arms("idem"));
  const std::string id = test::uuid_for(42);
  const std::string arm = s.experiments.assign("idem", "ann", id);
  s.clock.advance(60000);
  CHECK(s.experiments.assign("idem", "ann", id) == arm);
  CHECK(s.experiments.assign("idem", "ann", id) == arm);
  CHECK(count(s.st, "SELECT count(*) FROM ab_assignments") == 1);
  store::Statement q(s.st.db(), "SELECT unit_id, arm, assigned_at FROM ab_assignments");
  REQUIRE(q.step());
  CHECK(q.column_text(0) == "ann");
  CHECK(q.column_text(1) == arm);
  CHECK(q.column_text(2) == "2026-02-01T12:00:00.000Z");  // the first assignment stands
  q.reset();

  try {
    s.experiments.assign("idem", "bob", id);
    FAIL("an interaction was assigned to a second unit");
  } catch (const ValidationError& e) {
    CHECK(e.path() == "interaction_id");
  }
  CHECK_THROWS_AS(s.experiments.assign("idem", "", test::uuid_for(43)), ValidationError);
  CHECK_THROWS_AS(s.experiments.assign("idem", "ann", ""), ValidationError);
  CHECK(count(s.st, "SELECT count(*) FROM ab_assignments") == 1);
}

TEST_CASE("the report names B when its mean reward is higher by 0.1, not before min_samples_per_arm",
          "[experiments]") {
  test::TempDir dir;
  Stack s(dir.file("report.db"));
  s.experiments.create(two_arms("lift", 100));
  Rng rng(2026);
  ArmMoments fed;
  const std::map<std::string, double> means{{"A", 0.5}, {"B", 0.6}};

  // About 40 rewards per arm: a difference may already show, but the verdict waits for 100 per arm.
  simulate(s, "lift", 0, 80, means, rng, fed);
  ExperimentReport early = s.experiments.report("lift");
  CHECK(early.assigned == 80);
  CHECK(early.with_outcome == 80);
  CHECK(early.verdict.winner == "none");
  CHECK_THAT(early.verdict.reason, Catch::Contains("fewer than min_samples_per_arm 100"));
  REQUIRE(early.comparisons.size() == 1);  // the test itself is reported

  // 600 units in all: about 300 rewards per arm. Reward sd ~0.2, so the standard error of the difference
  // is 0.2 sqrt(2 / 300) = 0.016 and a lift of 0.1 is about 6 standard errors.
  simulate(s, "lift", 80, 520, means, rng, fed);
  for (int u = 600; u < 610; ++u)  // assigned, outcome not yet reported
    s.experiments.assign("lift", "unit-" + std::to_string(u), test::uuid_for(static_cast<std::uint64_t>(u), 99));
  ExperimentReport r = s.experiments.report("lift");
  CHECK(r.status == "running");
  CHECK(r.assigned == 610);
  CHECK(r.with_outcome == 600);
  for (const char* arm : {"A", "B"}) {
    CAPTURE(arm);
    CHECK(r.arms[arm]["n"].get<std::uint64_t>() == fed[arm].count());
    CHECK(r.arms[arm]["mean"].get<double>() == Approx(fed[arm].mean()).epsilon(1e-12));
    CHECK(r.arms[arm]["stddev"].get<double>() == Approx(fed[arm].stddev()).epsilon(1e-9));
    CHECK(r.arms[arm]["n"].get<std::uint64_t>() >= 100);
  }
  CHECK(r.arms["A"]["assigned"].get<std::int64_t>() + r.arms["B"]["assigned"].get<std::int64_t>() == 610);
  REQUIRE(r.comparisons.size() == 1);
  const auto& c = r.comparisons[0];
  CHECK((c.arm_a == "A" && c.arm_b == "B"));
  CHECK(c.difference == Approx(fed["A"].mean() - fed["B"].mean()).epsilon(1e-12));
  CHECK(c.difference == Approx(-0.1).margin(4 * 0.2 * std::sqrt(2.0 / 300)));
  CHECK(c.p_value < 0.05);
  CHECK((c.ci_low < -0.05 && c.ci_high < 0));
  CHECK(r.verdict.winner == "B");
  CHECK(r.verdict.p_value == Approx(c.p_value));

  json j = to_json(r);
  CHECK(j["verdict"]["winner"] == "B");
  CHECK(j["comparisons"][0]["arm_a"] == "A");
  CHECK(j["config"]["min_samples_per_arm"] == 100);
  CHECK(j["assigned"] == 610);
  CHECK(json::parse(j.dump()) == j);
}

TEST_CASE("equal arms: the verdict's false-positive rate is alpha", "[experiments]") {
  // Under the null hypothesis an experiment names a winner with probability alpha = 0.05 (Welch's test is
  // close to exact at ~125 rewards per arm): 2.5 false positives expected in 50 experiments.
  // Bound from the binomial tail, not from a lucky seed: P(Binomial(50, 0.05) >= 9) = 0.00076, so at most 8
  // (84% without a winner). "At most 5" (90%) would fail a correct verdict with probability
  // P(Binomial(50, 0.05) >= 6) = 0.038; these seeds, fixed before the first run, give 7 (p = 0.012).
  test::TempDir dir;
  Stack s(dir.file("null.db"));
  int winners = 0;
  for (int seed = 0; seed < 50; ++seed) {
    const std::string id = "null-" + std::to_string(seed);
    s.experiments.create(two_arms(id, 100));
    Rng rng(static_cast<std::uint64_t>(1000 + seed));
    ArmMoments fed;
    simulate(s, id, 0, 250, {{"A", 0.6}, {"B", 0.6}}, rng, fed);
    ExperimentReport r = s.experiments.report(id);
    // The report's verdict is the AbTest verdict on the fed rewards (recomputed here from the same data).
    if (fed["A"].count() >= 100 && fed["B"].count() >= 100) {
      CHECK(r.verdict.reason.find("min_samples") == std::string::npos);
      select::AbArmStats a{"A", fed["A"], 0}, b{"B", fed["B"], 0};
      CHECK(r.verdict.p_value == Approx(select::welch_t_test(a, b, 0.95).p_value).epsilon(1e-9));
      CHECK((r.verdict.winner != "none") == (r.verdict.p_value < 0.05));
    }
    if (r.verdict.winner != "none") ++winners;
  }
  INFO("false positives: " << winners << " of 50 (expected 2.5 at alpha = 0.05)");
  CHECK(winners <= 8);

  // The rate itself, on 2,000 simulated experiments of the same shape (no file: AbTest is what the report
  // feeds): within 4 standard errors of alpha, sqrt(0.05 * 0.95 / 2000) = 0.0049.
  int positives = 0;
  constexpr int kRuns = 2000;
  for (int seed = 0; seed < kRuns; ++seed) {
    select::AbTest t(two_arms("calibration-" + std::to_string(seed), 100));
    Rng rng(static_cast<std::uint64_t>(500000 + seed));
    for (int u = 0; u < 250; ++u)
      t.record(t.assign("unit-" + std::to_string(u)), std::clamp(rng.normal(6.0, 2.0), 0.0, 10.0) / 10);
    positives += t.verdict().winner != "none";
  }
  const double rate = static_cast<double>(positives) / kRuns;
  INFO("false-positive rate " << rate << " over " << kRuns << " experiments");
  CHECK(std::fabs(rate - 0.05) < 4 * std::sqrt(0.05 * 0.95 / kRuns));
}

TEST_CASE("a stopped experiment refuses assignments and keeps its report", "[experiments]") {
  test::TempDir dir;
  const std::string path = dir.file("stop.db");
  Stack a(path), b(path);
  a.experiments.create(two_arms("first"));
  a.clock.advance(1000);
  a.experiments.create(two_arms("second"));
  const std::string id = test::uuid_for(5);
  const std::string arm = b.experiments.assign("first", "ann", id);  // b has the config cached now
  REQUIRE(a.collector.record(interaction_with_quality(id, 7)).accepted);

  a.clock.advance(60000);
  a.experiments.stop("first");
  a.experiments.stop("first");  // no change
  CHECK(count(a.st, "SELECT count(*) FROM audit_log WHERE action = 'stop_experiment'") == 1);
  store::Statement q(a.st.db(), "SELECT status, stopped_at FROM ab_tests WHERE experiment_id = 'first'");
  REQUIRE(q.step());
  CHECK(q.column_text(0) == "stopped");
  CHECK(q.column_text(1) == "2026-02-01T12:01:01.000Z");
  q.reset();

  for (Stack* s : {&a, &b}) {  // the other process sees the stop too
    try {
      s->experiments.assign("first", "bob", test::uuid_for(6));
      FAIL("a stopped experiment assigned a unit");
    } catch (const ValidationError& e) {
      CHECK(std::string(e.what()) == "experiment_id: experiment 'first' is stopped; it assigns no more units");
    }
  }
  CHECK(count(a.st, "SELECT count(*) FROM ab_assignments") == 1);
  CHECK(b.experiments.assign("second", "bob", test::uuid_for(6)) != "");
  CHECK(a.experiments.experiments() == std::vector<std::string>{"second"});
  CHECK(a.experiments.experiments(false) == std::vector<std::string>{"first", "second"});

  ExperimentReport r = b.experiments.report("first");
  CHECK(r.status == "stopped");
  CHECK(r.assigned == 1);
  CHECK(r.with_outcome == 1);
  CHECK(r.arms[arm]["n"] == 1);
  CHECK(r.arms[arm]["mean"].get<double>() == Approx(0.7));
}

TEST_CASE("the proportion metric reports the z-test; its infinite df is null in JSON", "[experiments]") {
  test::TempDir dir;
  Stack s(dir.file("proportion.db"));
  select::AbTestConfig cfg = two_arms("rate", 2);
  cfg.metric = select::AbMetric::proportion;
  cfg.success_threshold = 0.7;
  s.experiments.create(cfg);
  Rng rng(7);
  ArmMoments fed;
  simulate(s, "rate", 0, 40, {{"A", 0.6}, {"B", 0.6}}, rng, fed);
  ExperimentReport r = s.experiments.report("rate");
  REQUIRE(r.comparisons.size() == 1);
  CHECK(std::isinf(r.comparisons[0].df));
  json j = to_json(r);
  CHECK(j["comparisons"][0]["df"].is_null());
  CHECK(j["config"]["metric"] == "proportion");
  // successes counted against success_threshold 0.7
  CHECK(r.arms["A"]["successes"].get<std::uint64_t>() <= r.arms["A"]["n"].get<std::uint64_t>());
  CHECK(r.arms["A"]["success_rate"].get<double>() ==
        Approx(r.arms["A"]["successes"].get<double>() / r.arms["A"]["n"].get<double>()));
}

TEST_CASE("a version-2 file migrates forward (ab tables of version 3) with its data kept", "[experiments]") {
  test::TempDir dir;
  const std::string path = dir.file("v2.db");
  {
    Stack s(path);
    REQUIRE(s.collector.record(interaction_with_quality(test::uuid_for(1), 8)).accepted);
    s.experiments.create(two_arms("old"));
    s.experiments.assign("old", "ann", test::uuid_for(1));
  }
  {  // make it a version-2 file: what version 2 had, nothing more
    store::Database raw(path);
    raw.exec("DROP TABLE ab_assignments; DROP TABLE ab_tests; DROP TABLE user_template_stats; "
             "PRAGMA user_version = 2");
    CHECK(raw.query_int("SELECT count(*) FROM sqlite_schema WHERE name LIKE 'ab_%'") == 0);
  }
  Stack s(path);
  CHECK(s.st.schema_version() == store::kSchemaVersion);
  for (const char* name : {"ab_tests", "ab_assignments", "ab_assignments_arm"}) {
    CAPTURE(name);
    CHECK(count(s.st, std::string("SELECT count(*) FROM sqlite_schema WHERE name = '") + name + "'") == 1);
  }
  CHECK(s.st.counts().interactions == 1);
  CHECK(s.st.counts().outcomes == 1);
  CHECK(s.experiments.experiments(false).empty());
  s.experiments.create(two_arms("new"));
  s.experiments.assign("new", "ann", test::uuid_for(1));
  ExperimentReport r = s.experiments.report("new");
  CHECK(r.with_outcome == 1);
  CHECK(s.st.integrity_check() == "ok");
  CHECK(count(s.st, "SELECT count(*) FROM pragma_foreign_key_check") == 0);
}
