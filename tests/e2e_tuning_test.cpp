// End to end: tuning studies kept in the file (ask/tell across engine restarts and processes, the CLI) and
// the selector tuning job on a simulated host (lifecycle/tuning.hpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include <sys/wait.h>
#include <unistd.h>

#include "../src/cli/simulator.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using namespace promptlearn;
using nlohmann::json;

namespace {

constexpr TimeMs kDay = 86400000;
const TimeMs kStart = *try_parse_rfc3339("2026-01-05T00:00:00Z");

Config fast_config() { return test::fast_config(); }

const json kSpace = json::parse(R"({"parameters": [
  {"name": "x", "kind": "continuous", "low": 0, "high": 1},
  {"name": "n", "kind": "integer", "low": 1, "high": 9},
  {"name": "mode", "kind": "categorical", "choices": ["slow", "fast"]}]})");

/// A known objective with its minimum 0 at x = 0.3, n = 6, mode = fast.
double objective(const json& p) {
  const double x = p.at("x").get<double>();
  const double n = p.at("n").get<double>();
  return (x - 0.3) * (x - 0.3) + 0.01 * (n - 6) * (n - 6) + (p.at("mode") == "fast" ? 0.0 : 0.5);
}

}  // namespace

TEST_CASE("a study survives engine restarts: ask/tell through the file reaches the known optimum", "[e2e][tuning]") {
  test::TempDir dir;
  const std::string db = dir.file("tune.db");
  double best = 1e9;
  for (int round = 0; round < 6; ++round) {
    LearningEngine engine(db, fast_config());  // a new process's view each round
    for (int k = 0; k < 5; ++k) {
      const json a = engine.tuner().ask("toy", round == 0 && k == 0 ? std::optional<json>(kSpace) : std::nullopt);
      CHECK(a["trial"].get<int>() == round * 5 + k + 1);
      const json& p = a["params"];
      REQUIRE(p.at("x").is_number());
      CHECK(p.at("n").is_number_integer());
      CHECK((p.at("mode") == "slow" || p.at("mode") == "fast"));
      const double v = objective(p);
      best = std::min(best, v);
      engine.tuner().tell("toy", p, v);
    }
  }
  LearningEngine engine(db, fast_config());
  const json s = engine.tuner().status("toy");
  CHECK(s["evaluations"] == 30);
  CHECK(s["trials"].size() == 30);
  for (const auto& t : s["trials"]) CHECK(t["value"].is_number());
  REQUIRE(s.contains("best"));
  CHECK(s["best"]["value"].get<double>() == best);
  std::cout << "tuning e2e: toy study best after 30 evaluations " << best << " at " << s["best"]["params"].dump() << "\n";
  CHECK(best < 0.02);  // 10 random points rarely get below ~0.05 in the continuous part alone
  CHECK(s["best"]["params"]["mode"] == "fast");
  // Errors name what is wrong.
  CHECK_THROWS_WITH(engine.tuner().ask("other"), Catch::Contains("space"));
  CHECK_THROWS_WITH(engine.tuner().status("nope"), Catch::Contains("no study named 'nope'"));
  CHECK_THROWS_WITH(engine.tuner().tell("toy", json{{"x", 0.5}, {"n", 2}, {"mode", "slow"}}, 1.0),
                    Catch::Contains("was not asked"));
  CHECK_THROWS_WITH(engine.tuner().tell("toy", s["trials"][0]["params"], std::nan("")), Catch::Contains("value"));
}

TEST_CASE("two processes asking at once get distinct trials of one study", "[e2e][tuning]") {
  test::TempDir dir;
  const std::string db = dir.file("tune2.db");
  {
    LearningEngine engine(db, fast_config());
    engine.tuner().ask("shared", kSpace);
  }
  std::vector<pid_t> kids;
  for (int c = 0; c < 2; ++c) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int rc = 0;
      try {
        LearningEngine engine(db, fast_config());
        for (int k = 0; k < 6; ++k) {
          const json a = engine.tuner().ask("shared");
          engine.tuner().tell("shared", a["params"], objective(a["params"]));
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child: %s\n", e.what());
        rc = 1;
      }
      std::_Exit(rc);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  store::Store st(db);
  const auto trials = st.trials("shared");
  REQUIRE(trials.size() == 13);
  std::set<std::int64_t> numbers;
  for (const auto& t : trials) numbers.insert(t.trial);
  CHECK(numbers.size() == 13);
  std::size_t told = 0;
  for (const auto& t : trials) told += t.value.has_value();
  CHECK(told == 12);  // the first ask was never told
  LearningEngine engine(db, fast_config());
  CHECK(engine.tuner().status("shared")["evaluations"] == 12);
}

TEST_CASE("promptlearn tune asks, tells and reports a study", "[e2e][tuning][cli]") {
  test::TempDir dir;
  const std::string db = dir.file("cli.db");
  const std::string bin = std::string(PROMPTLEARN_BIN_DIR) + "/promptlearn";
  const std::string space = R"('{"parameters": [{"name": "alpha", "kind": "continuous", "low": 0.01, "high": 3, "log_scale": true}]}')";
  test::Run ask = test::sh(bin + " tune --db " + db + " --study s1 --ask --maximize --space " + space);
  REQUIRE(ask.status == 0);
  const json a = json::parse(ask.out);
  CHECK(a["trial"] == 1);
  const double alpha = a["params"]["alpha"].get<double>();
  CHECK((alpha >= 0.01 && alpha <= 3));
  test::Run tell = test::sh(bin + " tune --db " + db + " --study s1 --tell --params '" + a["params"].dump() + "' --value 0.75");
  REQUIRE(tell.status == 0);
  CHECK(json::parse(tell.out)["best"]["value"] == 0.75);
  test::Run status = test::sh(bin + " tune --db " + db + " --study s1 --status");
  CHECK(json::parse(status.out)["trials"][0]["value"] == 0.75);
  test::Run bad = test::sh(bin + " tune --db " + db + " --study s1 --tell --params '{}' --value abc", true);
  CHECK(bad.status == 2);
  CHECK(bad.out.find("'abc' is not a number") != std::string::npos);
  test::Run none = test::sh(bin + " tune --db " + db + " --study s2 --ask", true);
  CHECK(none.status == 1);
  CHECK(none.out.find("space") != std::string::npos);
}

TEST_CASE("the weekly selector tuning job replays the log and records its recommendation", "[e2e][tuning]") {
  test::TempDir dir;
  const std::string db = dir.file("job.db");
  ManualClock clock(kStart);
  EngineOptions eo;
  eo.clock = &clock;
  Config cfg = fast_config();
  cfg.learning_strategies.parameter_optimization.parameters["initial_points"] = 6;
  cfg.learning_strategies.parameter_optimization.parameters["n_iterations"] = 10;
  LearningEngine engine(db, cfg, eo);
  for (const char* t : sim::template_ids()) engine.register_template(t, "1", std::string("body of ") + t);
  sim::HostSimulator host(8, 30);
  std::optional<TuningReport> ran;
  for (int day = 0; day < 6 && !ran; ++day) {
    const TimeMs day_start = clock.now_ms();
    for (int i = 0; i < 400; ++i) {
      clock.set(day_start + 8 * 3600000 + i * 60000);
      sim::SimPrompt p = host.prompt(clock.now_ms());
      REQUIRE(engine.record(p.interaction).accepted);
      const Decision d = engine.select_template(p.interaction);
      REQUIRE(engine.record(host.outcome(p, sim::template_index(d.chosen.template_id))).accepted);
    }
    clock.set(day_start + kDay - 1);
    const JobsReport r = engine.run_due_jobs(clock.now_ms());
    REQUIRE(r.tuning);  // due until it runs
    if (r.tuning->skipped.empty()) ran = r.tuning;
    else CHECK(r.tuning->skipped.find("held-out") != std::string::npos);
    clock.set(day_start + kDay);
  }
  REQUIRE(ran);
  std::cout << "tuning e2e: selector job " << to_json(*ran).dump() << "\n";
  CHECK(ran->study == "selector.linucb");
  CHECK(ran->evaluations == 16);
  CHECK(ran->best_params.contains("alpha"));
  CHECK(ran->best_params.contains("epsilon_floor"));
  // The replay is deterministic: evaluating the best parameters again gives the value the job recorded,
  // and it is the best of the study's trials.
  CHECK(engine.policy().evaluate_parameters(ran->best_params).value == ran->best_value);
  store::Store st(db);
  const auto trials = st.trials("selector.linucb");
  REQUIRE(trials.size() == 16);
  double best = -1e9;
  for (const auto& t : trials) best = std::max(best, *t.value);
  CHECK(best == ran->best_value);
  CHECK(st.db().query_int("SELECT count(*) FROM audit_log WHERE action = 'tuning'") == 1);
  // Not due again within the week.
  clock.set(clock.now_ms() + kDay);
  CHECK_FALSE(engine.run_due_jobs(clock.now_ms()).tuning);
  CHECK_THROWS_AS(engine.policy().evaluate_parameters(json{{"alpha", -1}}), ConfigError);
}
