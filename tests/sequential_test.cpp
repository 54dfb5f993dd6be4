// The rollback test: false-alarm rates under no change and at the H0 boundary, detection of a 0.2 drop
// within the documented expected number of samples, hand-checked statistic, configuration and JSON state.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <iostream>

#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/core/stats.hpp"
#include "promptlearn/select/sequential.hpp"

using namespace promptlearn;
using namespace promptlearn::select;

namespace {

/// baseline 0.7, tolerance 0.02 (H0: mu >= 0.68), tuned to a drop of 0.2 (H1: mu = 0.5), alpha 0.01.
RollbackTestConfig config(RollbackMethod m) {
  RollbackTestConfig c;
  c.baseline = 0.7;
  c.tolerance = 0.02;
  c.detect_drop = 0.2;
  c.alpha = 0.01;
  c.beta = 0.05;
  c.method = m;
  c.horizon = 2000;
  return c;
}

using Draw = std::function<double(Rng&)>;
Draw bernoulli(double mean) {
  return [mean](Rng& r) { return r.bernoulli(mean) ? 1.0 : 0.0; };
}
Draw continuous(double mean) {  // uniform on [mean - 0.3, mean + 0.3], inside [0, 1] for the means used
  return [mean](Rng& r) { return r.uniform(mean - 0.3, mean + 0.3); };
}

struct Outcome {
  int alarms = 0, safes = 0;
  RunningMoments alarm_at;
};

/// Runs 200 seeded tests for up to max_n rewards each.
Outcome run(const RollbackTestConfig& c, const Draw& draw, std::uint64_t max_n, std::uint64_t seed0) {
  Outcome o;
  for (std::uint64_t seed = seed0; seed < seed0 + 200; ++seed) {
    Rng rng(seed);
    RollbackTest t(c);
    for (std::uint64_t i = 0; i < max_n && t.status() == RollbackStatus::monitoring; ++i) t.observe(draw(rng));
    if (t.status() == RollbackStatus::rollback) {
      ++o.alarms;
      o.alarm_at.add(static_cast<double>(t.decided_at()));
    }
    o.safes += t.status() == RollbackStatus::safe;
  }
  return o;
}

}  // namespace

TEST_CASE("rollback statistic on a hand-checked sequence", "[sequential]") {
  // p = 0.68, q = 0.5: llr(1) = log(0.5/0.68) = -0.30748, llr(0) = log(0.5/0.32) = 0.44629,
  // llr(0.5) = (llr(1) + llr(0)) / 2. Thresholds: log(1/0.01) = 4.60517, log(0.05/0.99) = -2.98568.
  RollbackTest t(config(RollbackMethod::sprt));
  CHECK(t.h0_mean() == Approx(0.68));
  CHECK(t.h1_mean() == Approx(0.5));
  CHECK(t.alarm_threshold() == Approx(std::log(100.0)));
  CHECK(t.safe_threshold() == Approx(std::log(0.05 / 0.99)));
  t.observe(1);
  t.observe(0);
  t.observe(0.5);
  double l1 = std::log(0.5 / 0.68), l0 = std::log(0.5 / 0.32);
  CHECK(t.statistic() == Approx(1.5 * (l1 + l0)));
  CHECK(t.live_mean() == Approx(0.5));
  // Then zeros: after nine, 0.20822 + 9 * 0.44629 = 4.2249 < 4.60517; after ten, 4.6712 >= 4.60517,
  // so the alarm comes at observation 3 + 10 = 13.
  for (int i = 0; i < 11; ++i) t.observe(0);
  CHECK(t.status() == RollbackStatus::rollback);
  CHECK(t.decided_at() == 13);
  double frozen = t.statistic();
  t.observe(1);  // latched
  CHECK(t.statistic() == frozen);
  CHECK(t.count() == 15);
  // KL(0.5 || 0.68) = 0.5 l1 + 0.5 l0 = 0.069404; Wald: (0.95 * 4.60517 + 0.05 * (-2.98568)) / KL.
  CHECK(t.kl_per_sample() == Approx(0.5 * l1 + 0.5 * l0));
  CHECK(t.expected_samples_to_detect() ==
        Approx((0.95 * std::log(100.0) + 0.05 * std::log(0.05 / 0.99)) / (0.5 * l1 + 0.5 * l0)));

  // CUSUM resets at 0: a run of ones cannot bank credit against a later drop.
  RollbackTest c(config(RollbackMethod::cusum));
  for (int i = 0; i < 100; ++i) c.observe(1);
  CHECK(c.statistic() == 0);
  c.observe(0);
  CHECK(c.statistic() == Approx(l0));
  CHECK(c.alarm_threshold() == Approx(std::log(2000 / 0.01)));
}

TEST_CASE("SPRT false-alarm rate under no change and at the H0 boundary", "[sequential]") {
  const RollbackTestConfig c = config(RollbackMethod::sprt);
  // No change (mu = baseline 0.7) and the worst case allowed by H0 (mu = 0.68), Bernoulli and continuous.
  Outcome none_b = run(c, bernoulli(0.7), 5000, 1000);
  Outcome none_c = run(c, continuous(0.7), 5000, 2000);
  Outcome edge_b = run(c, bernoulli(0.68), 5000, 3000);
  Outcome edge_c = run(c, continuous(0.68), 5000, 4000);
  std::cout << "[sequential] SPRT false alarms / 200 (alpha = 0.01): no change bernoulli " << none_b.alarms
            << ", continuous " << none_c.alarms << "; at mu = baseline - tolerance: bernoulli " << edge_b.alarms
            << ", continuous " << edge_c.alarms << "\n";
  CHECK(none_b.alarms <= 2);  // documented rate alpha: 0.01 * 200
  CHECK(none_c.alarms <= 2);
  // At the boundary the bound alpha still holds; allow the binomial sampling error of 200 runs at rate
  // alpha: 2 + 3 sqrt(200 * 0.01 * 0.99) = 6.2.
  CHECK(edge_b.alarms <= 6);
  CHECK(edge_c.alarms <= 6);
}

TEST_CASE("SPRT detects a drop of 0.2 within the expected number of samples", "[sequential]") {
  const RollbackTestConfig c = config(RollbackMethod::sprt);
  const double wald = RollbackTest(c).expected_samples_to_detect();  // 60.9
  Outcome b = run(c, bernoulli(0.5), 5000, 5000);
  Outcome u = run(c, continuous(0.5), 5000, 6000);
  std::cout << "[sequential] SPRT drop 0.2 (0.7 -> 0.5): detected bernoulli " << b.alarms << "/200 (mean "
            << b.alarm_at.mean() << " samples), continuous " << u.alarms << "/200 (mean " << u.alarm_at.mean()
            << "); Wald E[N] = " << wald << "\n";
  // Miss probability at q is about beta = 0.05: allow 0.05 * 200 + 3 sqrt(200 * 0.05 * 0.95) = 19 misses.
  CHECK(b.alarms >= 181);
  CHECK(u.alarms >= 181);
  // Wald's identity ignores the overshoot (at most one llr step, 0.45, against a threshold of 4.6): allow
  // 25% above the approximation for the mean delay.
  CHECK(b.alarm_at.mean() <= 1.25 * wald);
  CHECK(u.alarm_at.mean() <= 1.25 * wald);
}

TEST_CASE("CUSUM false alarms within the horizon and detection delay", "[sequential]") {
  const RollbackTestConfig c = config(RollbackMethod::cusum);  // horizon 2000
  Outcome none = run(c, bernoulli(0.7), 2000, 7000);
  Outcome edge = run(c, bernoulli(0.68), 2000, 8000);
  const double approx = RollbackTest(c).expected_samples_to_detect();  // (h + e^-h - 1) / KL ~ 161
  Outcome drop = run(c, bernoulli(0.5), 5000, 9000);
  std::cout << "[sequential] CUSUM (horizon 2000, alpha 0.01) false alarms / 200: no change " << none.alarms
            << ", at H0 boundary " << edge.alarms << "; drop 0.2 detected " << drop.alarms << "/200, mean delay "
            << drop.alarm_at.mean() << " (approximation " << approx << ")\n";
  CHECK(none.alarms <= 2);
  CHECK(edge.alarms <= 6);
  CHECK(drop.alarms == 200);
  CHECK(drop.alarm_at.mean() <= 1.25 * approx);
  CHECK(none.safes == 0);  // CUSUM never declares safe
}

TEST_CASE("rollback configuration errors name the field", "[sequential]") {
  auto error_of = [](RollbackTestConfig c) -> std::string {
    try {
      c.validate();
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  RollbackTestConfig c;
  CHECK(error_of(c).empty());
  c.baseline = 0.05;
  CHECK(error_of(c) == "rollback.detect_drop: 0.1 leaves no mean below baseline 0.05; expected < baseline");
  c = {};
  c.detect_drop = 0.01;
  CHECK(error_of(c) == "rollback.detect_drop: 0.01 is not greater than tolerance 0.02");
  c = {};
  c.alpha = 0.5;
  CHECK(error_of(c) == "rollback.alpha: 0.5 is outside (0, 0.5)");
  c = {};
  c.baseline = 1.2;
  CHECK(error_of(c) == "rollback.baseline: 1.2 is outside (0, 1]");
  c = {};
  c.baseline = 1;
  c.tolerance = 0;
  CHECK(error_of(c).rfind("rollback.tolerance:", 0) == 0);
  RollbackTest t(RollbackTestConfig{});
  CHECK_THROWS_WITH(t.observe(1.5), "reward: 1.5 is outside [0, 1]");
  CHECK_FALSE(t.try_observe(std::nan("")));
  CHECK(t.count() == 0);
}

TEST_CASE("rollback state round-trips through JSON", "[sequential]") {
  for (RollbackMethod m : {RollbackMethod::sprt, RollbackMethod::cusum}) {
    RollbackTest a(config(m));
    Rng rng(77);
    for (int i = 0; i < 20; ++i) a.observe(rng.uniform(0.3, 0.9));
    RollbackTest b = RollbackTest::from_json(nlohmann::json::parse(a.to_json().dump()));
    CHECK(b.to_json() == a.to_json());
    for (int i = 0; i < 300; ++i) {
      double x = rng.uniform(0.0, 0.8);
      a.observe(x);
      b.observe(x);
    }
    CHECK(b.to_json() == a.to_json());
    CHECK(b.status() == a.status());
  }
  nlohmann::json bad = RollbackTest(config(RollbackMethod::sprt)).to_json();
  bad["method"] = "bayes";
  CHECK_THROWS_WITH(RollbackTest::from_json(bad), "rollback.method: 'bayes' is not one of sprt, cusum");
  bad = RollbackTest(config(RollbackMethod::sprt)).to_json();
  bad["state"].erase("sum");
  CHECK_THROWS_WITH(RollbackTest::from_json(bad), "rollback.state.sum: is missing");
  bad = RollbackTest(config(RollbackMethod::sprt)).to_json();
  bad["state"]["sum"] = 5.0;
  CHECK_THROWS_AS(RollbackTest::from_json(bad), ConfigError);
}
