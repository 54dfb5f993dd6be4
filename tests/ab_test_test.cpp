// A/B experiments: stable assignment and split, Welch t and two-proportion z tests on hand-computed
// samples, the verdict's refusals, configuration errors and JSON state.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/select/ab_test.hpp"

using namespace promptlearn;
using namespace promptlearn::select;

namespace {

AbTestConfig two_arms(std::string id = "exp") {
  AbTestConfig c;
  c.experiment_id = std::move(id);
  c.arms = {{"control", 1}, {"candidate", 1}};
  return c;
}

AbArmStats arm_of(std::string name, const std::vector<double>& rewards, double threshold = 0.5) {
  AbArmStats s;
  s.name = std::move(name);
  for (double r : rewards) {
    s.rewards.add(r);
    if (r >= threshold) ++s.successes;
  }
  return s;
}

std::string config_error(const AbTestConfig& c) {
  try {
    c.validate();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("hash primitives match their reference values", "[abtest]") {
  // FNV-1a 64 test vectors (Fowler/Noll/Vo) and the first SplitMix64 output for seed 0.
  CHECK(fnv1a_64("") == 0xcbf29ce484222325ull);
  CHECK(fnv1a_64("a") == 0xaf63dc4c8601ec8cull);
  CHECK(fnv1a_64("foobar") == 0x85944171f73967e8ull);
  CHECK(mix64(0x9e3779b97f4a7c15ull) == 0xe220a8397b1dcdafull);
  // mix64(fnv1a("exp" "\x1f" "user-42")) = 0x20d10bc5f5158259 (computed in Python), >> 11 / 2^53:
  CHECK(stable_unit_interval("exp", "user-42") == Approx(0.12818978865569441).epsilon(1e-15));
  static_assert(fnv1a_64("a") == 0xaf63dc4c8601ec8cull, "constexpr");
}

TEST_CASE("assignment is deterministic and follows the split", "[abtest]") {
  AbTestConfig c;
  c.experiment_id = "split";
  c.arms = {{"a", 1}, {"b", 2}, {"paused", 0}, {"c", 7}};
  AbTest t1(c), t2(c);
  const int n = 100000;
  std::vector<int> counts(4, 0);
  int mismatches = 0;
  for (int i = 0; i < n; ++i) {
    std::string id = "user-" + std::to_string(i);
    std::size_t k = t1.assign_index(id);
    mismatches += k != t2.assign_index(id) || t1.assign(id) != c.arms[k].name || k != t1.assign_index(id);
    ++counts[k];
  }
  CHECK(mismatches == 0);
  CHECK(counts[2] == 0);
  // Binomial tolerance: |count - n p| <= 4.5 sqrt(n p (1 - p)) (two-sided miss chance ~7e-6 per arm).
  const double share[4] = {0.1, 0.2, 0.0, 0.7};
  for (int k : {0, 1, 3}) {
    INFO("arm " << k << ": " << counts[k]);
    CHECK(std::fabs(counts[k] - n * share[k]) <= 4.5 * std::sqrt(n * share[k] * (1 - share[k])));
  }
  // A different experiment id re-randomises: about half the units change arm in a 50/50 split.
  AbTest e1(two_arms("exp-1")), e2(two_arms("exp-2"));
  int changed = 0;
  for (int i = 0; i < 10000; ++i) changed += e1.assign_index(std::to_string(i)) != e2.assign_index(std::to_string(i));
  CHECK(std::fabs(changed - 5000) <= 4.5 * 50);
}

TEST_CASE("Welch's t-test on a hand-computed sample", "[abtest]") {
  // a = {0.2, 0.4, 0.6, 0.8}: mean 0.5, M2 = 0.09 + 0.01 + 0.01 + 0.09 = 0.2, s^2 = 0.2 / 3
  // b = {0.1, 0.2, 0.3}:      mean 0.2, M2 = 0.01 + 0 + 0.01 = 0.02,       s^2 = 0.01
  // va = s_a^2 / 4 = 1/60, vb = s_b^2 / 3 = 1/300, SE^2 = 1/60 + 1/300 = 1/50
  // t = 0.3 / sqrt(1/50) = 3 / sqrt(2) = 2.1213203
  // df = (1/50)^2 / ((1/60)^2 / 3 + (1/300)^2 / 2) = (1/2500) / (53/540000) = 216/53 = 4.0754717
  // p = 2 P(T_{216/53} > 2.1213203) = 0.0999128643118 (mpmath); t_{0.975, 216/53} = 2.7562848743596
  AbTestResult r = welch_t_test(arm_of("a", {0.2, 0.4, 0.6, 0.8}), arm_of("b", {0.1, 0.2, 0.3}));
  CHECK(r.difference == Approx(0.3));
  CHECK(r.statistic == Approx(3 / std::sqrt(2.0)));
  CHECK(r.df == Approx(216.0 / 53));
  CHECK(r.p_value == Approx(0.0999128643118008750).epsilon(1e-10));
  CHECK(r.ci_low == Approx(-0.0897975451083129438).epsilon(1e-10));
  CHECK(r.ci_high == Approx(0.6897975451083129438).epsilon(1e-10));
  // Reversed arms: same p, negated difference and interval.
  AbTestResult s = welch_t_test(arm_of("b", {0.1, 0.2, 0.3}), arm_of("a", {0.2, 0.4, 0.6, 0.8}));
  CHECK(s.p_value == Approx(r.p_value));
  CHECK(s.ci_low == Approx(-r.ci_high));
  // Zero variance in both arms: decided by the means.
  CHECK(welch_t_test(arm_of("x", {1, 1}), arm_of("y", {0, 0})).p_value == 0);
  CHECK(welch_t_test(arm_of("x", {1, 1}), arm_of("y", {1, 1})).p_value == 1);
  CHECK_THROWS_WITH(welch_t_test(arm_of("x", {1}), arm_of("y", {1, 0})),
                    "x: has 1 rewards; Welch's test needs at least 2");
}

TEST_CASE("two-proportion z-test on a hand-computed sample", "[abtest]") {
  // a: 45 / 100 successes, b: 30 / 100. Pooled p = 75 / 200 = 0.375.
  // SE0 = sqrt(0.375 * 0.625 * (1/100 + 1/100)) = sqrt(0.0046875); z = 0.15 / SE0 = 2.19089023002066
  // p = 2 (1 - Phi(z)) = 0.0284597369163106 (mpmath)
  // Wald SE = sqrt(0.45 * 0.55 / 100 + 0.3 * 0.7 / 100) = sqrt(0.004575); CI = 0.15 +/- 1.959964 SE
  std::vector<double> a(100, 0.0), b(100, 0.0);
  for (int i = 0; i < 45; ++i) a[i] = 1;
  for (int i = 0; i < 30; ++i) b[i] = 1;
  AbTestResult r = two_proportion_z_test(arm_of("a", a), arm_of("b", b));
  CHECK(r.difference == Approx(0.15));
  CHECK(r.statistic == Approx(2.1908902300206644538).epsilon(1e-12));
  CHECK(r.p_value == Approx(0.0284597369163105770).epsilon(1e-10));
  CHECK(r.ci_low == Approx(0.15 - 1.959963984540054 * std::sqrt(0.004575)));
  CHECK(r.ci_high == Approx(0.15 + 1.959963984540054 * std::sqrt(0.004575)));
  CHECK(std::isinf(r.df));
  // All successes in both arms: no evidence either way.
  CHECK(two_proportion_z_test(arm_of("a", {1, 1, 1}), arm_of("b", {1, 1})).p_value == 1);
}

TEST_CASE("the verdict refuses a winner below the minimum samples and when p >= alpha", "[abtest]") {
  AbTestConfig c = two_arms();
  c.min_samples_per_arm = 100;
  AbTest t(c);
  // A huge, obvious difference but only 99 rewards on the candidate.
  for (int i = 0; i < 100; ++i) t.record("control", 0.1);
  for (int i = 0; i < 99; ++i) t.record("candidate", 0.9);
  AbVerdict v = t.verdict();
  CHECK(v.winner == "none");
  CHECK(v.reason == "arm 'candidate' has 99 rewards, fewer than min_samples_per_arm 100");
  t.record("candidate", 0.9);
  v = t.verdict();
  CHECK(v.winner == "candidate");
  CHECK(v.p_value == 0);

  // Enough samples, no real difference: p >= alpha, so no winner.
  AbTest same(two_arms());
  Rng rng(5);
  for (int i = 0; i < 200; ++i) {
    same.record("control", rng.uniform());
    same.record("candidate", rng.uniform());
  }
  AbTestResult r = same.test("candidate", "control");
  v = same.verdict();
  INFO(v.reason);
  REQUIRE(r.p_value >= 0.05);
  CHECK(v.winner == "none");
  CHECK(v.reason.rfind("no significant difference", 0) == 0);
  CHECK(v.p_value == Approx(r.p_value));
}

TEST_CASE("verdict on simulated data, proportion metric and three arms", "[abtest]") {
  AbTestConfig c = two_arms();
  c.metric = AbMetric::proportion;
  AbTest t(c);
  Rng rng(9);
  for (int i = 0; i < 2000; ++i) {
    t.record("control", rng.bernoulli(0.30) ? 1.0 : 0.0);
    t.record("candidate", rng.bernoulli(0.40) ? 1.0 : 0.0);
  }
  CHECK(t.verdict().winner == "candidate");
  CHECK(t.arm("candidate").success_rate() == Approx(0.4).margin(0.05));

  // Three arms: Bonferroni threshold alpha / 2. The leader must beat both others.
  AbTestConfig c3;
  c3.experiment_id = "three";
  c3.arms = {{"a", 1}, {"b", 1}, {"c", 1}};
  AbTest t3(c3);
  for (int i = 0; i < 500; ++i) {
    t3.record("a", rng.uniform(0.0, 0.6));
    t3.record("b", rng.uniform(0.0, 0.6));
    t3.record("c", rng.uniform(0.2, 0.8));
  }
  AbVerdict v = t3.verdict();
  CHECK(v.winner == "c");
  CHECK(v.reason.find("< 0.025") != std::string::npos);
}

TEST_CASE("A/B configuration errors name the field", "[abtest]") {
  AbTestConfig c = two_arms();
  c.arms[1].weight = -1;
  CHECK(config_error(c) == "ab_test.arms[1].weight: -1 is not a finite number >= 0");
  c = two_arms();
  c.arms[1].name = "control";
  CHECK(config_error(c) == "ab_test.arms[1].name: 'control' is repeated");
  c = two_arms();
  c.arms.pop_back();
  CHECK(config_error(c) == "ab_test.arms: has 1 arms, expected at least 2");
  c = two_arms();
  c.arms[0].weight = c.arms[1].weight = 0;
  CHECK(config_error(c) == "ab_test.arms: the weights sum to 0, expected a positive total");
  c = two_arms();
  c.alpha = 0;
  CHECK(config_error(c) == "ab_test.alpha: 0 is outside (0, 1)");
  c = two_arms();
  c.min_samples_per_arm = 1;
  CHECK(config_error(c) == "ab_test.min_samples_per_arm: 1 is less than 2");
  c = two_arms("");
  CHECK(config_error(c) == "ab_test.experiment_id: is empty");
  CHECK_THROWS_AS(AbTest(c), ConfigError);

  AbTest t(two_arms());
  CHECK_THROWS_WITH(t.record("nope", 0.5), "arm: 'nope' is not an arm of experiment 'exp'");
  CHECK_THROWS_WITH(t.record("control", 1.5), "reward: 1.5 is outside [0, 1]");
  CHECK_FALSE(t.try_record("nope", 0.5));
  CHECK_FALSE(t.try_record("control", -0.1));
  CHECK(t.try_record("control", 0.5));
  CHECK(t.arm("control").rewards.count() == 1);
}

TEST_CASE("A/B state round-trips through JSON", "[abtest]") {
  AbTestConfig c = two_arms("persist");
  c.metric = AbMetric::proportion;
  c.alpha = 0.01;
  c.min_samples_per_arm = 30;
  c.arms[1].weight = 3;
  AbTest t(c);
  Rng rng(3);
  for (int i = 0; i < 50; ++i) t.record(t.assign(std::to_string(i)), rng.uniform());
  AbTest back = AbTest::from_json(nlohmann::json::parse(t.to_json().dump()));
  CHECK(back.to_json() == t.to_json());
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(back.arms()[i].rewards == t.arms()[i].rewards);
    CHECK(back.arms()[i].successes == t.arms()[i].successes);
  }
  for (int i = 0; i < 100; ++i) CHECK(back.assign(std::to_string(i)) == t.assign(std::to_string(i)));
  CHECK(back.verdict().reason == t.verdict().reason);

  nlohmann::json bad = t.to_json();
  bad["arms"][0]["successes"] = 1000;
  CHECK_THROWS_WITH(AbTest::from_json(bad), "ab_test.arms[0].successes: exceeds the number of rewards");
  bad = t.to_json();
  bad.erase("alpha");
  CHECK_THROWS_WITH(AbTest::from_json(bad), "ab_test.alpha: is missing");
  bad = t.to_json();
  bad["metric"] = "median";
  CHECK_THROWS_WITH(AbTest::from_json(bad), "ab_test.metric: 'median' is not one of mean, proportion");
}
