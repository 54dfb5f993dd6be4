// Off-policy evaluation: hand-checked tiny logs for each estimator, and a simulation with a known true
// policy value (3 actions, 2-d contexts, Bernoulli rewards, known logging propensities) for coverage.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <iostream>
#include <vector>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/core/stats.hpp"
#include "promptlearn/select/ope.hpp"

using namespace promptlearn;
using namespace promptlearn::select;

namespace {

constexpr double kZ975 = 1.959963984540054;  // Phi^{-1}(0.975)

LoggedDecision decision(std::string chosen, double reward, double propensity, Distribution target) {
  LoggedDecision d;
  d.chosen = std::move(chosen);
  d.reward = reward;
  d.propensity = propensity;
  d.target = std::move(target);
  return d;
}

/// The tiny log used by the hand-checked cases; weights w = pi(chosen) / p = 1.6, 2, 0.4.
std::vector<LoggedDecision> tiny_log() {
  return {decision("a", 1.0, 0.5, {{"a", 0.8}, {"b", 0.2}}),   // w = 0.8 / 0.5 = 1.6
          decision("b", 0.0, 0.25, {{"a", 0.5}, {"b", 0.5}}),  // w = 0.5 / 0.25 = 2
          decision("a", 0.5, 1.0, {{"a", 0.4}, {"b", 0.6}})};  // w = 0.4 / 1 = 0.4
}

double tiny_model(const LoggedDecision&, const std::string& action) { return action == "a" ? 0.7 : 0.2; }

// ---- Simulation: contexts are 6 fixed 2-d points (uniform over them), so the true value is exact. ----

constexpr int kActions = 3;
const std::array<std::string, kActions> kNames = {"t1@1", "t2@1", "t3@1"};

struct World {
  std::vector<Eigen::Vector2d> contexts;
  double mu(int c, int a) const {  // Bernoulli reward mean: logistic in the context, per action.
    static const double w[kActions][3] = {{0.2, 1.0, -0.5}, {-0.3, -0.8, 1.2}, {0.4, 0.3, 0.3}};
    double z = w[a][0] + w[a][1] * contexts[c](0) + w[a][2] * contexts[c](1);
    return 1 / (1 + std::exp(-z));
  }
  /// Logging policy: softmax of fixed scores with a 0.1 exploration floor (propensities >= 0.1/3).
  std::array<double, kActions> logging(int c) const {
    return softmax({0.5 * contexts[c](0), 0.5 * contexts[c](1), 0.0}, 0.1);
  }
  /// Target policy: a sharper softmax that favours the action with the highest true mean.
  std::array<double, kActions> target(int c) const {
    std::array<double, kActions> s{};
    for (int a = 0; a < kActions; ++a) s[a] = 4 * mu(c, a);
    return softmax(s, 0.05);
  }
  /// An alternative (live) policy for paired comparisons: uniform.
  std::array<double, kActions> live(int) const { return {1.0 / 3, 1.0 / 3, 1.0 / 3}; }

  static std::array<double, kActions> softmax(std::array<double, kActions> s, double floor) {
    double m = std::max({s[0], s[1], s[2]}), z = 0;
    for (double& v : s) z += (v = std::exp(v - m));
    for (double& v : s) v = (1 - floor) * v / z + floor / kActions;
    return s;
  }
  template <class P>
  double true_value(P policy) const {
    double v = 0;
    for (int c = 0; c < static_cast<int>(contexts.size()); ++c) {
      auto pi = policy(c);
      for (int a = 0; a < kActions; ++a) v += pi[a] * mu(c, a);
    }
    return v / static_cast<double>(contexts.size());
  }
};

World make_world() {
  World w;
  Rng rng(2024);
  for (int i = 0; i < 6; ++i) w.contexts.emplace_back(rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5));
  return w;
}

Distribution to_distribution(const std::array<double, kActions>& p) {
  Distribution d;
  for (int a = 0; a < kActions; ++a) d.push_back({kNames[a], p[a], p[a]});
  return d;
}

int context_index(const World& w, const Eigen::VectorXd& x) {
  for (int c = 0; c < static_cast<int>(w.contexts.size()); ++c)
    if (w.contexts[c] == x) return c;
  return -1;
}

struct SimLogs {
  std::vector<LoggedDecision> target, live;
};

SimLogs simulate(const World& w, int n, std::uint64_t seed) {
  Rng rng(seed);
  SimLogs logs;
  for (int i = 0; i < n; ++i) {
    int c = static_cast<int>(rng.uniform_int(0, static_cast<int>(w.contexts.size()) - 1));
    auto pl = w.logging(c);
    double u = rng.uniform();
    int a = u < pl[0] ? 0 : (u < pl[0] + pl[1] ? 1 : 2);
    double r = rng.bernoulli(w.mu(c, a)) ? 1.0 : 0.0;
    LoggedDecision d;
    d.context = w.contexts[c];
    d.chosen = kNames[a];
    d.reward = r;
    d.propensity = pl[a];
    d.target = to_distribution(w.target(c));
    logs.target.push_back(d);
    d.target = to_distribution(w.live(c));
    logs.live.push_back(std::move(d));
  }
  return logs;
}

}  // namespace

TEST_CASE("IPS on a hand-checked log", "[ope]") {
  // V = (1.6 * 1 + 2 * 0 + 0.4 * 0.5) / 3 = 1.8 / 3 = 0.6
  // psi = (1.6 - 0.6, 0 - 0.6, 0.2 - 0.6) = (1, -0.6, -0.4); sum psi^2 = 1 + 0.36 + 0.16 = 1.52
  // SE = sqrt(1.52 / (3 * 2)); ESS = (1.6 + 2 + 0.4)^2 / (2.56 + 4 + 0.16) = 16 / 6.72
  OpeEstimate e = ips(tiny_log());
  CHECK(e.estimator == "ips");
  CHECK(e.value == Approx(0.6));
  CHECK(e.std_error == Approx(std::sqrt(1.52 / 6)));
  CHECK(e.ci_low == Approx(0.6 - kZ975 * std::sqrt(1.52 / 6)));
  CHECK(e.ci_high == Approx(0.6 + kZ975 * std::sqrt(1.52 / 6)));
  CHECK(e.n == 3);
  CHECK(e.effective_sample_size == Approx(16 / 6.72));
  // 90% interval: z = 1.644853627
  OpeOptions o;
  o.confidence = 0.90;
  CHECK(ips(tiny_log(), o).ci_high == Approx(0.6 + 1.6448536269514722 * std::sqrt(1.52 / 6)));
}

TEST_CASE("self-normalised IPS on a hand-checked log", "[ope]") {
  // V = sum w r / sum w = 1.8 / 4 = 0.45; mean w = 4/3
  // psi_i = w_i (r_i - 0.45) / (4/3) = (1.6 * 0.55, 2 * -0.45, 0.4 * 0.05) * 0.75 = (0.66, -0.675, 0.015)
  // sum psi^2 = 0.4356 + 0.455625 + 0.000225 = 0.89145; SE = sqrt(0.89145 / 6)
  OpeEstimate e = snips(tiny_log());
  CHECK(e.value == Approx(0.45));
  CHECK(e.std_error == Approx(std::sqrt(0.89145 / 6)));
  CHECK(e.effective_sample_size == Approx(16 / 6.72));
}

TEST_CASE("doubly robust on a hand-checked log", "[ope]") {
  // rhat(a) = 0.7, rhat(b) = 0.2.
  // 1: DM = 0.8*0.7 + 0.2*0.2 = 0.60; residual 1 - 0.7 = 0.3, * 1.6 = 0.48  -> 1.08
  // 2: DM = 0.5*0.7 + 0.5*0.2 = 0.45; residual 0 - 0.2 = -0.2, * 2 = -0.4  -> 0.05
  // 3: DM = 0.4*0.7 + 0.6*0.2 = 0.40; residual 0.5 - 0.7 = -0.2, * 0.4 = -0.08 -> 0.32
  // V = 1.45 / 3; psi = terms - V
  OpeEstimate e = doubly_robust(tiny_log(), tiny_model);
  double v = 1.45 / 3;
  double ss = std::pow(1.08 - v, 2) + std::pow(0.05 - v, 2) + std::pow(0.32 - v, 2);
  CHECK(e.estimator == "dr");
  CHECK(e.value == Approx(v));
  CHECK(e.std_error == Approx(std::sqrt(ss / 6)));
  // A perfect-on-the-log model with pi == logging policy makes DR equal the direct method.
  std::vector<LoggedDecision> on_policy = {decision("a", 1, 0.5, {{"a", 0.5}, {"b", 0.5}}),
                                           decision("b", 0, 0.5, {{"a", 0.5}, {"b", 0.5}})};
  auto model = [](const LoggedDecision&, const std::string& a) { return a == "a" ? 1.0 : 0.0; };
  CHECK(doubly_robust(on_policy, model).value == Approx(0.5));
  CHECK(doubly_robust(on_policy, model).std_error == Approx(0.0).margin(1e-15));
}

TEST_CASE("propensity clipping caps the weights", "[ope]") {
  // min_propensity 0.5: decision 2's weight becomes 0.5 / max(0.25, 0.5) = 1.
  // IPS = (1.6 + 0 + 0.2) / 3 = 0.6 (unchanged, r = 0); SNIPS = 1.8 / (1.6 + 1 + 0.4) = 0.6.
  OpeOptions o;
  o.min_propensity = 0.5;
  CHECK(ips(tiny_log(), o).value == Approx(0.6));
  CHECK(snips(tiny_log(), o).value == Approx(0.6));
  CHECK(snips(tiny_log(), o).effective_sample_size == Approx(9 / (2.56 + 1 + 0.16)));
}

TEST_CASE("paired comparison on a hand-checked log", "[ope]") {
  // Live policy: always 50/50. Live IPS terms: w = (1, 2, 0.5) -> w r = (1, 0, 0.25), V_l = 1.25 / 3.
  // Candidate = tiny_log targets: terms (1.6, 0, 0.2), V_c = 0.6.
  // Differences d = (0.6, 0, -0.05), mean 0.55 / 3; SE = sd(d) / sqrt(3).
  auto cand = tiny_log();
  auto live = tiny_log();
  for (auto& d : live) d.target = {{"a", 0.5}, {"b", 0.5}};
  OpeComparison c = compare(live, cand, Estimator::ips);
  CHECK(c.live.value == Approx(1.25 / 3));
  CHECK(c.candidate.value == Approx(0.6));
  CHECK(c.improvement.value == Approx(0.6 - 1.25 / 3));
  double m = 0.55 / 3;
  double ss = std::pow(0.6 - m, 2) + std::pow(0 - m, 2) + std::pow(-0.05 - m, 2);
  CHECK(c.improvement.std_error == Approx(std::sqrt(ss / 6)));
  CHECK(c.improvement.estimator == "ips difference");
  // A policy compared with itself: improvement exactly 0 with zero standard error.
  OpeComparison same = compare(cand, cand, Estimator::snips);
  CHECK(same.improvement.value == 0);
  CHECK(same.improvement.std_error == 0);
  // The logs must describe the same decisions.
  live[1].reward = 1;
  CHECK_THROWS_WITH(compare(live, cand, Estimator::ips),
                    "candidate[1]: is not the same logged decision as live (chosen, reward and propensity must match)");
}

TEST_CASE("OPE input validation names the field", "[ope]") {
  auto log = tiny_log();
  CHECK_THROWS_WITH(ips({}), "logged: no logged decisions");
  log[2].propensity = 0;
  CHECK_THROWS_WITH(ips(log), "logged[2].propensity: 0 is outside (0, 1]");
  log = tiny_log();
  log[0].reward = 1.5;
  CHECK_THROWS_WITH(ips(log), "logged[0].reward: 1.5 is outside [0, 1]");
  log = tiny_log();
  log[1].target[0].probability = 0.9;
  CHECK_THROWS_WITH(ips(log), "logged[1].target: probabilities sum to 1.4, expected 1");
  CHECK_THROWS_WITH(evaluate(Estimator::doubly_robust, tiny_log()),
                    "reward_model: doubly robust estimation needs a reward model");
  OpeOptions o;
  o.confidence = 1;
  CHECK_THROWS_AS(ips(tiny_log(), o), ConfigError);
  CHECK_THROWS_WITH(ips(tiny_log(), o), "confidence: 1 is outside (0, 1)");
  auto nan_model = [](const LoggedDecision&, const std::string&) { return std::nan(""); };
  CHECK_THROWS_AS(doubly_robust(tiny_log(), nan_model), ValidationError);
}

TEST_CASE("degenerate logs: one decision, no target mass", "[ope]") {
  std::vector<LoggedDecision> one = {decision("a", 1, 0.5, {{"a", 1.0}})};
  CHECK(ips(one).value == Approx(2.0));
  CHECK(std::isinf(ips(one).std_error));
  std::vector<LoggedDecision> none = {decision("a", 1, 0.5, {{"b", 1.0}}), decision("a", 0, 0.5, {{"b", 1.0}})};
  OpeEstimate s = snips(none);
  CHECK(s.value == 0);
  CHECK(std::isinf(s.std_error));
  CHECK(s.ci_low == -std::numeric_limits<double>::infinity());
  CHECK(s.effective_sample_size == 0);
}

TEST_CASE("OPE simulation: 95% intervals cover the true value, DR beats IPS", "[ope]") {
  const World w = make_world();
  const double truth = w.true_value([&](int c) { return w.target(c); });
  const double live_truth = w.true_value([&](int c) { return w.live(c); });
  const RewardModel correct = [&](const LoggedDecision& d, const std::string& action) {
    int a = action == kNames[0] ? 0 : (action == kNames[1] ? 1 : 2);
    return w.mu(context_index(w, d.context), a);
  };
  const RewardModel constant = [](const LoggedDecision&, const std::string&) { return 0.5; };

  constexpr int kSeeds = 100, kN = 1000;
  int cover_ips = 0, cover_snips = 0, cover_dr = 0, cover_dr_const = 0, cover_diff = 0;
  RunningMoments est_ips, est_dr, se_paired, se_unpaired;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    SimLogs logs = simulate(w, kN, static_cast<std::uint64_t>(seed));
    OpeEstimate a = ips(logs.target), b = snips(logs.target);
    OpeEstimate c = doubly_robust(logs.target, correct), d = doubly_robust(logs.target, constant);
    cover_ips += a.ci_low <= truth && truth <= a.ci_high;
    cover_snips += b.ci_low <= truth && truth <= b.ci_high;
    cover_dr += c.ci_low <= truth && truth <= c.ci_high;
    cover_dr_const += d.ci_low <= truth && truth <= d.ci_high;
    est_ips.add(a.value);
    est_dr.add(c.value);
    OpeComparison cmp = compare(logs.live, logs.target, Estimator::snips);
    double diff_truth = truth - live_truth;
    cover_diff += cmp.improvement.ci_low <= diff_truth && diff_truth <= cmp.improvement.ci_high;
    se_paired.add(cmp.improvement.std_error);
    se_unpaired.add(std::hypot(cmp.live.std_error, cmp.candidate.std_error));
  }
  std::cout << "[ope] true value " << truth << " (live " << live_truth << "); 95% CI coverage over " << kSeeds
            << " seeds of n = " << kN << ": ips " << cover_ips << ", snips " << cover_snips << ", dr(correct) "
            << cover_dr << ", dr(constant 0.5) " << cover_dr_const << ", snips paired difference " << cover_diff
            << "\n[ope] sd of estimates: ips " << est_ips.stddev() << ", dr(correct) " << est_dr.stddev()
            << "; mean SE of difference: paired " << se_paired.mean() << ", unpaired " << se_unpaired.mean()
            << "\n";
  CHECK(cover_ips >= 90);
  CHECK(cover_snips >= 90);
  CHECK(cover_dr >= 90);
  CHECK(cover_dr_const >= 90);
  CHECK(cover_diff >= 90);
  // Unbiasedness of IPS and DR: the mean over seeds is within 4 standard errors of the mean.
  CHECK(std::fabs(est_ips.mean() - truth) < 4 * est_ips.standard_error());
  CHECK(std::fabs(est_dr.mean() - truth) < 4 * est_dr.standard_error());
  // DR with the true reward model removes the reward-noise-times-weight term: lower variance than IPS.
  CHECK(est_dr.variance() < est_ips.variance());
  // Pairing cancels shared noise.
  CHECK(se_paired.mean() < se_unpaired.mean());
}

TEST_CASE("retarget fills the targets from a policy", "[ope]") {
  struct Uniform : Policy {
    std::string name() const override { return "uniform"; }
    int dimension() const override { return 2; }
    void add_action(const std::string&, const std::string&) override {}
    void retire_action(const std::string&) override {}
    std::vector<std::string> actions() const override { return {"a", "b"}; }
    Distribution distribution(const Eigen::VectorXd&, Rng&) const override { return {{"a", 0.5}, {"b", 0.5}}; }
    void update(const Eigen::VectorXd&, const std::string&, double, double) override {}
    nlohmann::json to_json() const override { return {}; }
    std::unique_ptr<Policy> clone() const override { return std::make_unique<Uniform>(); }
  } uniform;
  Rng rng(1);
  auto log = retarget(tiny_log(), uniform, rng);
  CHECK(ips(log).value == Approx(1.25 / 3));
}
