#pragma once
/// @file A/B experiments (layer 2, header-only): stable hash assignment of units to arms, per-arm reward
/// statistics, Welch's t-test and the two-proportion z-test, and a verdict that refuses to name a winner
/// too early.
///
/// Assignment: u = mix64(FNV-1a-64(experiment_id, 0x1f, unit_id)) / 2^64 (top 53 bits) picks the arm whose
/// cumulative weight share first exceeds u. It depends only on the experiment id, the unit id and the
/// weights, never on std::hash, the platform or the process, so a unit keeps its arm across restarts, and
/// different experiments assign independently.
///
/// Verdict with k arms: the arm with the highest mean (mean metric) or success rate (proportion metric)
/// wins only if every arm has at least `min_samples_per_arm` rewards and it beats every other arm with a
/// two-sided p-value < alpha / (k - 1) (Bonferroni correction, Dunn 1961; for two arms: p < alpha).
///
/// Example:
///     AbTestConfig cfg;
///     cfg.experiment_id = "greeting-v2";
///     cfg.arms = {{"control", 1}, {"candidate", 1}};
///     AbTest test(cfg);
///     const std::string& arm = test.assign(session_id);
///     test.record(arm, reward);
///     AbVerdict v = test.verdict();   // v.winner == "none" until the evidence is in
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/stats.hpp"

namespace promptlearn::select {

/// 64-bit FNV-1a of `data` continuing from `hash` (Fowler, Noll & Vo; offset basis 0xcbf29ce484222325,
/// prime 0x100000001b3).
constexpr std::uint64_t fnv1a_64(std::string_view data, std::uint64_t hash = 0xcbf29ce484222325ull) noexcept {
  for (char c : data) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

/// The SplitMix64 finaliser (Steele, Lea & Flood 2014; Stafford's "Mix13" constants): a bijection whose
/// output bits each depend on every input bit, fixing FNV's weak avalanche in the high bits.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// A uniform number in [0, 1) determined by (salt, unit): mix64(fnv1a(salt + '\x1f' + unit)) >> 11 / 2^53.
constexpr double stable_unit_interval(std::string_view salt, std::string_view unit) noexcept {
  std::uint64_t h = fnv1a_64(salt);
  h = fnv1a_64(std::string_view("\x1f", 1), h);
  h = fnv1a_64(unit, h);
  return static_cast<double>(mix64(h) >> 11) * (1.0 / 9007199254740992.0);
}

/// Which test decides the experiment.
enum class AbMetric {
  mean,       ///< Welch's t-test on the mean reward.
  proportion  ///< Two-proportion z-test on the success rate (reward >= success_threshold).
};

/// One arm: a name (e.g. a template key) and its traffic weight.
struct AbArm {
  std::string name;    ///< Unique, non-empty.
  double weight = 1;   ///< Traffic share numerator; finite, >= 0 (0 pauses the arm).
};

/// An experiment's configuration. Thread-safety: plain value.
struct AbTestConfig {
  std::string experiment_id;            ///< Salt of the assignment hash; non-empty.
  std::vector<AbArm> arms;              ///< At least two arms with a positive total weight.
  AbMetric metric = AbMetric::mean;     ///< Test used by the verdict.
  double alpha = 0.05;                  ///< Significance level of the verdict (family-wise); (0, 1).
  std::uint64_t min_samples_per_arm = 100;  ///< No winner before every arm has this many rewards; >= 2.
  double success_threshold = 0.5;       ///< A reward >= this counts as a success; (0, 1].

  /// @throws ConfigError naming the field, e.g. `ab_test.arms[1].weight: -1 is negative`.
  void validate() const {
    if (experiment_id.empty()) throw ConfigError("ab_test.experiment_id", "is empty");
    if (arms.size() < 2) throw ConfigError("ab_test.arms", fmt::format("has {} arms, expected at least 2", arms.size()));
    std::unordered_set<std::string> seen;
    double total = 0;
    for (std::size_t i = 0; i < arms.size(); ++i) {
      if (arms[i].name.empty()) throw ConfigError(fmt::format("ab_test.arms[{}].name", i), "is empty");
      if (!seen.insert(arms[i].name).second)
        throw ConfigError(fmt::format("ab_test.arms[{}].name", i), fmt::format("'{}' is repeated", arms[i].name));
      if (!std::isfinite(arms[i].weight) || arms[i].weight < 0)
        throw ConfigError(fmt::format("ab_test.arms[{}].weight", i),
                          fmt::format("{} is not a finite number >= 0", arms[i].weight));
      total += arms[i].weight;
    }
    if (!(total > 0)) throw ConfigError("ab_test.arms", "the weights sum to 0, expected a positive total");
    if (!(alpha > 0 && alpha < 1)) throw ConfigError("ab_test.alpha", fmt::format("{} is outside (0, 1)", alpha));
    if (min_samples_per_arm < 2)
      throw ConfigError("ab_test.min_samples_per_arm", fmt::format("{} is less than 2", min_samples_per_arm));
    if (!(success_threshold > 0 && success_threshold <= 1))
      throw ConfigError("ab_test.success_threshold", fmt::format("{} is outside (0, 1]", success_threshold));
  }
};

/// Rewards observed on one arm.
struct AbArmStats {
  std::string name;            ///< Arm name.
  RunningMoments rewards;      ///< Count, mean and variance of the rewards.
  std::uint64_t successes = 0; ///< Rewards >= success_threshold.
  /// Success rate successes / n (0 when empty).
  double success_rate() const noexcept {
    return rewards.count() == 0 ? 0.0 : static_cast<double>(successes) / static_cast<double>(rewards.count());
  }
};

/// A two-sided test of arm a against arm b.
struct AbTestResult {
  std::string arm_a, arm_b;  ///< Compared arms; the difference is a - b.
  double difference = 0;     ///< mean_a - mean_b, or rate_a - rate_b.
  double statistic = 0;      ///< t or z.
  double df = 0;             ///< Welch-Satterthwaite degrees of freedom; +infinity for the z-test.
  double p_value = 1;        ///< Two-sided.
  double ci_low = 0;         ///< Confidence interval for the difference.
  double ci_high = 0;
  double confidence = 0.95;  ///< Level of the interval.
};

/// The experiment's decision.
struct AbVerdict {
  std::string winner = "none";  ///< The winning arm, or "none".
  std::string reason;           ///< Why, in words (sample sizes, means, p-value vs the threshold).
  double p_value = 1;           ///< Largest p-value of the leader against the others (1 if not tested).
};

namespace detail {
/// Checks the confidence level and names the arms of a two-arm test result.
inline AbTestResult start_result(const AbArmStats& a, const AbArmStats& b, double confidence) {
  if (!(confidence > 0 && confidence < 1))
    throw ValidationError("confidence", fmt::format("{} is outside (0, 1)", confidence));
  AbTestResult r;
  r.arm_a = a.name;
  r.arm_b = b.name;
  r.confidence = confidence;
  return r;
}
}  // namespace detail

/// Welch's unequal-variance t-test (Welch 1947): t = (m_a - m_b) / sqrt(s_a^2/n_a + s_b^2/n_b),
/// df = (s_a^2/n_a + s_b^2/n_b)^2 / ((s_a^2/n_a)^2/(n_a - 1) + (s_b^2/n_b)^2/(n_b - 1)) (Satterthwaite 1946),
/// p = 2 P(T_df > |t|), interval d +/- t_{(1+c)/2, df} SE. With both variances 0 the test is decided by
/// the means alone (p = 1 if equal, else 0) and df = n_a + n_b - 2.
/// @throws ValidationError if either arm has fewer than 2 rewards or confidence is outside (0, 1).
inline AbTestResult welch_t_test(const AbArmStats& a, const AbArmStats& b, double confidence = 0.95) {
  for (const AbArmStats* s : {&a, &b})
    if (s->rewards.count() < 2)
      throw ValidationError(s->name, fmt::format("has {} rewards; Welch's test needs at least 2", s->rewards.count()));
  AbTestResult r = detail::start_result(a, b, confidence);
  double na = static_cast<double>(a.rewards.count()), nb = static_cast<double>(b.rewards.count());
  double va = a.rewards.variance() / na, vb = b.rewards.variance() / nb;
  double se = std::sqrt(va + vb);
  r.difference = a.rewards.mean() - b.rewards.mean();
  if (se == 0) {
    r.df = na + nb - 2;
    r.statistic = r.difference == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), r.difference);
    r.p_value = r.difference == 0 ? 1 : 0;
    r.ci_low = r.ci_high = r.difference;
    return r;
  }
  r.statistic = r.difference / se;
  r.df = (va + vb) * (va + vb) / (va * va / (na - 1) + vb * vb / (nb - 1));
  r.p_value = std::fmin(1.0, 2 * student_t_sf(std::fabs(r.statistic), r.df));
  double q = student_t_quantile(0.5 * (1 + confidence), r.df);
  r.ci_low = r.difference - q * se;
  r.ci_high = r.difference + q * se;
  return r;
}

/// Two-proportion z-test: z = (p_a - p_b) / sqrt(p (1 - p) (1/n_a + 1/n_b)) with the pooled rate
/// p = (x_a + x_b) / (n_a + n_b), p-value 2 (1 - Phi(|z|)); the interval is the unpooled Wald interval
/// (p_a - p_b) +/- z_{(1+c)/2} sqrt(p_a(1-p_a)/n_a + p_b(1-p_b)/n_b) (Agresti 2013, 6.2; it is
/// anti-conservative for rates near 0 or 1 with small n). Pooled rate 0 or 1: z = 0, p = 1.
/// @throws ValidationError if either arm has no rewards or confidence is outside (0, 1).
inline AbTestResult two_proportion_z_test(const AbArmStats& a, const AbArmStats& b, double confidence = 0.95) {
  for (const AbArmStats* s : {&a, &b})
    if (s->rewards.count() < 1) throw ValidationError(s->name, "has no rewards; the z-test needs at least 1");
  AbTestResult r = detail::start_result(a, b, confidence);
  r.df = std::numeric_limits<double>::infinity();
  double na = static_cast<double>(a.rewards.count()), nb = static_cast<double>(b.rewards.count());
  double pa = a.success_rate(), pb = b.success_rate();
  double pooled = (static_cast<double>(a.successes) + static_cast<double>(b.successes)) / (na + nb);
  r.difference = pa - pb;
  double se0 = std::sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb));
  if (se0 == 0) {
    r.statistic = 0;
    r.p_value = 1;
  } else {
    r.statistic = r.difference / se0;
    r.p_value = std::fmin(1.0, 2 * normal_sf(std::fabs(r.statistic)));
  }
  double se = std::sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb);
  double q = normal_quantile(0.5 * (1 + confidence));
  r.ci_low = r.difference - q * se;
  r.ci_high = r.difference + q * se;
  return r;
}

/// A running A/B experiment. Thread-safety: none for record(); assign() and the tests are const and may
/// run concurrently with each other but not with record().
class AbTest {
 public:
  /// @throws ConfigError from AbTestConfig::validate.
  explicit AbTest(AbTestConfig config) : config_(std::move(config)) {
    config_.validate();
    double total = 0;
    for (const auto& arm : config_.arms) total += arm.weight;
    double running = 0;
    for (const auto& arm : config_.arms) {
      running += arm.weight;
      cumulative_.push_back(running / total);
      stats_.push_back(AbArmStats{arm.name, {}, 0});
    }
  }

  /// The configuration.
  const AbTestConfig& config() const noexcept { return config_; }

  /// Index of the arm `unit_id` is assigned to (stable, see the file comment).
  std::size_t assign_index(std::string_view unit_id) const noexcept {
    double u = stable_unit_interval(config_.experiment_id, unit_id);
    std::size_t last_positive = 0;
    for (std::size_t i = 0; i < cumulative_.size(); ++i) {
      if (config_.arms[i].weight <= 0) continue;
      last_positive = i;
      if (u < cumulative_[i]) return i;
    }
    return last_positive;  // only if rounding left the last cumulative share below 1
  }
  /// Name of the arm `unit_id` is assigned to.
  const std::string& assign(std::string_view unit_id) const noexcept {
    return config_.arms[assign_index(unit_id)].name;
  }

  /// Records one reward of `arm`.
  /// @throws ValidationError if the arm is unknown or the reward is outside [0, 1].
  void record(std::string_view arm, double reward) {
    if (!(reward >= 0 && reward <= 1))
      throw ValidationError("reward", fmt::format("{} is outside [0, 1]", reward));
    AbArmStats& s = stats_.at(index_of(arm));
    s.rewards.add(reward);
    if (reward >= config_.success_threshold) ++s.successes;
  }
  /// Non-throwing twin of record(): false (and nothing recorded) for an unknown arm or invalid reward.
  bool try_record(std::string_view arm, double reward) noexcept {
    if (!(reward >= 0 && reward <= 1)) return false;
    for (auto& s : stats_)
      if (s.name == arm) {
        s.rewards.add(reward);
        if (reward >= config_.success_threshold) ++s.successes;
        return true;
      }
    return false;
  }

  /// Statistics of every arm, in configuration order.
  const std::vector<AbArmStats>& arms() const noexcept { return stats_; }
  /// Statistics of one arm. @throws ValidationError if unknown.
  const AbArmStats& arm(std::string_view name) const { return stats_.at(index_of(name)); }

  /// The configured metric's test of arm a against arm b at confidence 1 - alpha.
  /// @throws ValidationError for an unknown arm or too few rewards.
  AbTestResult test(std::string_view a, std::string_view b) const {
    const AbArmStats& sa = arm(a);
    const AbArmStats& sb = arm(b);
    return config_.metric == AbMetric::mean ? welch_t_test(sa, sb, 1 - config_.alpha)
                                            : two_proportion_z_test(sa, sb, 1 - config_.alpha);
  }

  /// The verdict: a winner only with enough samples on every arm and a significant lead over each other
  /// arm (p < alpha / (k - 1)); otherwise "none" with the reason.
  AbVerdict verdict() const {
    AbVerdict v;
    for (const auto& s : stats_) {
      if (s.rewards.count() < config_.min_samples_per_arm) {
        v.reason = fmt::format("arm '{}' has {} rewards, fewer than min_samples_per_arm {}", s.name,
                               s.rewards.count(), config_.min_samples_per_arm);
        return v;
      }
    }
    auto level = [&](const AbArmStats& s) {
      return config_.metric == AbMetric::mean ? s.rewards.mean() : s.success_rate();
    };
    std::size_t lead = 0;
    for (std::size_t i = 1; i < stats_.size(); ++i)
      if (level(stats_[i]) > level(stats_[lead])) lead = i;
    const double threshold = config_.alpha / static_cast<double>(stats_.size() - 1);
    double worst = 0;
    std::string worst_against;
    for (std::size_t i = 0; i < stats_.size(); ++i) {
      if (i == lead) continue;
      AbTestResult r = test(stats_[lead].name, stats_[i].name);
      if (r.p_value >= worst) {
        worst = r.p_value;
        worst_against = stats_[i].name;
      }
    }
    v.p_value = worst;
    const char* what = config_.metric == AbMetric::mean ? "mean" : "success rate";
    const AbArmStats& other = arm(worst_against);
    if (worst >= threshold) {
      v.reason = fmt::format("no significant difference: '{}' {} {:.4g} vs '{}' {:.4g}, p = {:.4g} >= {:.4g}",
                             stats_[lead].name, what, level(stats_[lead]), other.name, level(other), worst, threshold);
      return v;
    }
    v.winner = stats_[lead].name;
    v.reason = fmt::format("'{}' wins: {} {:.4g} vs '{}' {:.4g}, p = {:.4g} < {:.4g}", v.winner, what,
                           level(stats_[lead]), other.name, level(other), worst, threshold);
    return v;
  }

  /// The configuration and every arm's statistics; `AbTest::from_json(t.to_json())` continues identically.
  nlohmann::json to_json() const {
    nlohmann::json arms = nlohmann::json::array();
    for (std::size_t i = 0; i < stats_.size(); ++i)
      arms.push_back({{"name", config_.arms[i].name},
                      {"weight", config_.arms[i].weight},
                      {"rewards", stats_[i].rewards},
                      {"successes", stats_[i].successes}});
    return {{"experiment_id", config_.experiment_id},
            {"metric", config_.metric == AbMetric::mean ? "mean" : "proportion"},
            {"alpha", config_.alpha},
            {"min_samples_per_arm", config_.min_samples_per_arm},
            {"success_threshold", config_.success_threshold},
            {"arms", arms}};
  }

  /// Restores an experiment written by to_json.
  /// @throws ConfigError naming the field for a missing or ill-typed configuration value;
  ///   ValidationError for inconsistent statistics (e.g. more successes than rewards).
  static AbTest from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw ConfigError("ab_test", "expected an object");
    auto field = [&](const char* key) -> const nlohmann::json& {
      if (!j.contains(key)) throw ConfigError(std::string("ab_test.") + key, "is missing");
      return j.at(key);
    };
    AbTestConfig cfg;
    try {
      cfg.experiment_id = field("experiment_id").get<std::string>();
      std::string metric = field("metric").get<std::string>();
      if (metric == "mean") cfg.metric = AbMetric::mean;
      else if (metric == "proportion") cfg.metric = AbMetric::proportion;
      else throw ConfigError("ab_test.metric", fmt::format("'{}' is not one of mean, proportion", metric));
      cfg.alpha = field("alpha").get<double>();
      cfg.min_samples_per_arm = field("min_samples_per_arm").get<std::uint64_t>();
      cfg.success_threshold = field("success_threshold").get<double>();
      const auto& arms = field("arms");
      if (!arms.is_array()) throw ConfigError("ab_test.arms", "expected an array");
      for (const auto& a : arms) cfg.arms.push_back({a.at("name").get<std::string>(), a.at("weight").get<double>()});
    } catch (const nlohmann::json::exception& e) {
      throw ConfigError("ab_test", e.what());
    }
    AbTest t(cfg);
    const auto& arms = j.at("arms");
    for (std::size_t i = 0; i < arms.size(); ++i) {
      const auto& a = arms[i];
      std::string path = fmt::format("ab_test.arms[{}]", i);
      if (!a.contains("rewards") || !a.contains("successes") || !a.at("successes").is_number_integer() ||
          (!a.at("successes").is_number_unsigned() && a.at("successes").get<std::int64_t>() < 0))
        throw ValidationError(path, "expected \"rewards\" and unsigned \"successes\"");
      t.stats_[i].rewards = a.at("rewards").get<RunningMoments>();
      t.stats_[i].successes = a.at("successes").get<std::uint64_t>();
      if (t.stats_[i].successes > t.stats_[i].rewards.count())
        throw ValidationError(path + ".successes", "exceeds the number of rewards");
    }
    return t;
  }

 private:
  std::size_t index_of(std::string_view name) const {
    for (std::size_t i = 0; i < stats_.size(); ++i)
      if (stats_[i].name == name) return i;
    throw ValidationError("arm", fmt::format("'{}' is not an arm of experiment '{}'", name, config_.experiment_id));
  }

  AbTestConfig config_;
  std::vector<double> cumulative_;
  std::vector<AbArmStats> stats_;
};

}  // namespace promptlearn::select
