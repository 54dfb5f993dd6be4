#pragma once
/// @file The automatic-rollback test (layer 2, header-only): after a deployment, a one-sided sequential
/// test that the live mean reward has dropped below the pre-deployment baseline by more than a tolerance.
///
/// Hypotheses, for rewards in [0, 1] with live mean mu:
///   H0: mu >= p = baseline - tolerance        (no harmful drop: keep the deployment)
///   H1: mu <= q = baseline - detect_drop      (a drop worth rolling back; detect_drop > tolerance)
/// Each reward x adds the log-likelihood ratio of Bernoulli(q) against Bernoulli(p), extended linearly to
/// x in [0, 1]:  llr(x) = x log(q/p) + (1 - x) log((1 - q)/(1 - p)).
/// Because exp(llr(x)) is convex in x, E[exp(llr(X))] <= (1 - mu)(1-q)/(1-p) + mu q/p <= 1 for ANY reward
/// distribution on [0, 1] with mean mu >= p, so exp(sum llr) is a nonnegative supermartingale under H0 and
/// Ville's inequality (1939) bounds P(sup_n sum llr >= log(1/alpha)) <= alpha. The guarantee needs no
/// Gaussian or Bernoulli assumption and holds however long monitoring lasts.
///
/// Methods:
/// - `sprt` (Wald 1945, "Sequential tests of statistical hypotheses"): S_n = sum llr; alarm (rollback) when
///   S_n >= log(1/alpha); when beta > 0, declare the deployment safe when S_n <= log(beta / (1 - alpha)).
///   False-alarm probability <= alpha (Ville; the safe boundary only lowers it). Miss probability at
///   mu = q: about beta (Wald's approximation, exact up to the overshoot for Bernoulli rewards; smaller for
///   less variable rewards with the same mean). Expected samples to alarm at mu = q (Wald's identity):
///   E[N] ~ ((1 - beta) log(1/alpha) + beta log(beta/(1 - alpha))) / KL(q || p).
/// - `cusum` (Page 1954): S_n = max(0, S_{n-1} + llr), alarm when S_n >= h = log(horizon / alpha); never
///   declares safe, so it also catches drops that begin later. A union bound over the start points, each
///   a Ville bound e^{-h}, gives P(false alarm within `horizon` observations) <= alpha (after that the bound
///   grows as n alpha / horizon). Detection delay at mu = q from the start: about (h + e^{-h} - 1) / KL(q || p).
/// Measured rates (tests/sequential_test.cpp, docs/evaluation.md) are well inside these bounds.
///
/// The baseline is taken as exact; pass a conservative one (e.g. the pre-deployment mean's lower
/// confidence bound) or widen `tolerance` by its standard error.
///
/// Example:
///     RollbackTestConfig cfg;  cfg.baseline = 0.7;  cfg.detect_drop = 0.2;
///     RollbackTest test(cfg);
///     if (test.observe(reward) == RollbackStatus::rollback) engine.rollback();
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"

namespace promptlearn::select {

/// Which sequential procedure the rollback test runs.
enum class RollbackMethod {
  sprt,  ///< Wald's SPRT from the deployment: stops with rollback or safe.
  cusum  ///< Page's CUSUM: keeps monitoring until an alarm.
};

/// Where a rollback test stands.
enum class RollbackStatus {
  monitoring,  ///< No decision yet.
  rollback,    ///< The live mean dropped: roll back (latched).
  safe         ///< SPRT accepted H0: the deployment is not harmful (latched).
};

/// JSON / display spelling: "monitoring", "rollback", "safe".
inline const char* to_string(RollbackStatus s) noexcept {
  switch (s) {
    case RollbackStatus::monitoring: return "monitoring";
    case RollbackStatus::rollback: return "rollback";
    case RollbackStatus::safe: return "safe";
  }
  return "";
}

/// Configuration of a rollback test. Thread-safety: plain value.
struct RollbackTestConfig {
  double baseline = 0.5;     ///< Pre-deployment mean reward; (0, 1].
  double tolerance = 0.02;   ///< Acceptable drop: H0 is mu >= baseline - tolerance; [0, detect_drop).
  double detect_drop = 0.1;  ///< Drop the test is tuned to detect: H1 is mu = baseline - detect_drop; < baseline.
  double alpha = 0.01;       ///< Bound on the false-alarm (needless rollback) probability; (0, 0.5).
  double beta = 0.05;        ///< SPRT: miss probability at detect_drop; 0 = never declare safe; [0, 0.5).
  RollbackMethod method = RollbackMethod::sprt;  ///< sprt | cusum.
  std::uint64_t horizon = 10000;  ///< CUSUM: observations over which the alpha bound holds; >= 1.

  /// @throws ConfigError naming the field, e.g. `rollback.detect_drop: 0.6 leaves no mean below baseline 0.5`.
  void validate() const {
    if (!(baseline > 0 && baseline <= 1))
      throw ConfigError("rollback.baseline", fmt::format("{} is outside (0, 1]", baseline));
    if (!(tolerance >= 0 && tolerance < 1))
      throw ConfigError("rollback.tolerance", fmt::format("{} is outside [0, 1)", tolerance));
    if (!(detect_drop > tolerance))
      throw ConfigError("rollback.detect_drop", fmt::format("{} is not greater than tolerance {}", detect_drop, tolerance));
    if (!(detect_drop < baseline))
      throw ConfigError("rollback.detect_drop",
                        fmt::format("{} leaves no mean below baseline {}; expected < baseline", detect_drop, baseline));
    if (!(baseline - tolerance < 1))
      throw ConfigError("rollback.tolerance", "must be > 0 when baseline is 1 (H0 would allow only rewards of 1)");
    if (!(alpha > 0 && alpha < 0.5)) throw ConfigError("rollback.alpha", fmt::format("{} is outside (0, 0.5)", alpha));
    if (!(beta >= 0 && beta < 0.5)) throw ConfigError("rollback.beta", fmt::format("{} is outside [0, 0.5)", beta));
    if (horizon < 1) throw ConfigError("rollback.horizon", "0 is less than 1");
  }
};

/// A streaming one-sided rollback test; O(1) time and memory per observation.
/// Thread-safety: none; one writer, or external synchronisation.
class RollbackTest {
 public:
  /// @throws ConfigError from RollbackTestConfig::validate.
  explicit RollbackTest(RollbackTestConfig config) : config_(config) {
    config_.validate();
    p_ = config_.baseline - config_.tolerance;
    q_ = config_.baseline - config_.detect_drop;
    log_q_p_ = std::log(q_ / p_);
    log_1q_1p_ = std::log1p(-q_) - std::log1p(-p_);
    if (config_.method == RollbackMethod::sprt) {
      upper_ = -std::log(config_.alpha);
      lower_ = config_.beta > 0 ? std::log(config_.beta / (1 - config_.alpha))
                                : -std::numeric_limits<double>::infinity();
    } else {
      upper_ = std::log(static_cast<double>(config_.horizon) / config_.alpha);
      lower_ = -std::numeric_limits<double>::infinity();
    }
  }

  /// The configuration.
  const RollbackTestConfig& config() const noexcept { return config_; }

  /// Adds one live reward and returns the status. After a decision the status is latched; rewards are
  /// still counted in live_mean() but no longer move the statistic.
  /// @throws ValidationError if the reward is outside [0, 1] or NaN.
  RollbackStatus observe(double reward) {
    if (!try_observe(reward)) throw ValidationError("reward", fmt::format("{} is outside [0, 1]", reward));
    return status_;
  }
  /// Non-throwing twin of observe(): false (and nothing recorded) for a reward outside [0, 1].
  bool try_observe(double reward) noexcept {
    if (!(reward >= 0 && reward <= 1)) return false;
    ++n_;
    sum_ += reward;
    if (status_ != RollbackStatus::monitoring) return true;
    double llr = reward * log_q_p_ + (1 - reward) * log_1q_1p_;
    statistic_ += llr;
    if (config_.method == RollbackMethod::cusum && statistic_ < 0) statistic_ = 0;
    if (statistic_ >= upper_) {
      status_ = RollbackStatus::rollback;
      decided_at_ = n_;
    } else if (statistic_ <= lower_) {
      status_ = RollbackStatus::safe;
      decided_at_ = n_;
    }
    return true;
  }

  /// Current status.
  RollbackStatus status() const noexcept { return status_; }
  /// Observations so far.
  std::uint64_t count() const noexcept { return n_; }
  /// Mean of the observed rewards (0 when none).
  double live_mean() const noexcept { return n_ == 0 ? 0.0 : sum_ / static_cast<double>(n_); }
  /// The observation count at which the status changed (0 while monitoring).
  std::uint64_t decided_at() const noexcept { return decided_at_; }
  /// The log-likelihood-ratio statistic (SPRT sum or CUSUM S_n).
  double statistic() const noexcept { return statistic_; }
  /// Alarm threshold: log(1/alpha) (SPRT) or log(horizon/alpha) (CUSUM).
  double alarm_threshold() const noexcept { return upper_; }
  /// Safe threshold log(beta/(1-alpha)), or -infinity when the test never declares safe.
  double safe_threshold() const noexcept { return lower_; }
  /// Boundary mean of H0, baseline - tolerance.
  double h0_mean() const noexcept { return p_; }
  /// Mean the test is tuned to detect, baseline - detect_drop.
  double h1_mean() const noexcept { return q_; }
  /// KL(Bernoulli(q) || Bernoulli(p)): the expected llr per reward when mu = q.
  double kl_per_sample() const noexcept { return q_ * log_q_p_ + (1 - q_) * log_1q_1p_; }

  /// Approximate expected number of rewards to an alarm when the live mean is h1_mean() from the start
  /// (Wald's identity, ignoring overshoot; CUSUM: (h + e^-h - 1) / KL).
  double expected_samples_to_detect() const noexcept {
    double kl = kl_per_sample();
    if (config_.method == RollbackMethod::cusum) return (upper_ + std::exp(-upper_) - 1) / kl;
    double b = config_.beta;
    return ((1 - b) * upper_ + (b > 0 ? b * lower_ : 0.0)) / kl;
  }

  /// Configuration and state; `RollbackTest::from_json(t.to_json())` continues identically.
  nlohmann::json to_json() const {
    return {{"baseline", config_.baseline},
            {"tolerance", config_.tolerance},
            {"detect_drop", config_.detect_drop},
            {"alpha", config_.alpha},
            {"beta", config_.beta},
            {"method", config_.method == RollbackMethod::sprt ? "sprt" : "cusum"},
            {"horizon", config_.horizon},
            {"state",
             {{"n", n_}, {"sum", sum_}, {"statistic", statistic_}, {"status", to_string(status_)},
              {"decided_at", decided_at_}}}};
  }

  /// Restores a test written by to_json.
  /// @throws ConfigError naming the field for a missing, ill-typed or out-of-range value.
  static RollbackTest from_json(const nlohmann::json& j) {
    RollbackTestConfig c;
    auto at = [&](const nlohmann::json& obj, const std::string& path, const char* key) -> const nlohmann::json& {
      if (!obj.is_object() || !obj.contains(key)) throw ConfigError(path + key, "is missing");
      return obj.at(key);
    };
    try {
      c.baseline = at(j, "rollback.", "baseline").get<double>();
      c.tolerance = at(j, "rollback.", "tolerance").get<double>();
      c.detect_drop = at(j, "rollback.", "detect_drop").get<double>();
      c.alpha = at(j, "rollback.", "alpha").get<double>();
      c.beta = at(j, "rollback.", "beta").get<double>();
      std::string method = at(j, "rollback.", "method").get<std::string>();
      if (method == "sprt") c.method = RollbackMethod::sprt;
      else if (method == "cusum") c.method = RollbackMethod::cusum;
      else throw ConfigError("rollback.method", fmt::format("'{}' is not one of sprt, cusum", method));
      c.horizon = at(j, "rollback.", "horizon").get<std::uint64_t>();
      RollbackTest t(c);
      const auto& s = at(j, "rollback.", "state");
      t.n_ = at(s, "rollback.state.", "n").get<std::uint64_t>();
      t.sum_ = at(s, "rollback.state.", "sum").get<double>();
      t.statistic_ = at(s, "rollback.state.", "statistic").get<double>();
      t.decided_at_ = at(s, "rollback.state.", "decided_at").get<std::uint64_t>();
      std::string status = at(s, "rollback.state.", "status").get<std::string>();
      if (status == "monitoring") t.status_ = RollbackStatus::monitoring;
      else if (status == "rollback") t.status_ = RollbackStatus::rollback;
      else if (status == "safe") t.status_ = RollbackStatus::safe;
      else throw ConfigError("rollback.state.status", fmt::format("'{}' is not one of monitoring, rollback, safe", status));
      if (!(t.sum_ >= 0 && t.sum_ <= static_cast<double>(t.n_)) || !std::isfinite(t.statistic_) ||
          t.decided_at_ > t.n_)
        throw ConfigError("rollback.state", "is inconsistent (sum outside [0, n], non-finite statistic or decided_at > n)");
      return t;
    } catch (const nlohmann::json::exception& e) {
      throw ConfigError("rollback", e.what());
    }
  }

 private:
  RollbackTestConfig config_;
  double p_ = 0, q_ = 0, log_q_p_ = 0, log_1q_1p_ = 0, upper_ = 0, lower_ = 0;
  std::uint64_t n_ = 0, decided_at_ = 0;
  double sum_ = 0, statistic_ = 0;
  RollbackStatus status_ = RollbackStatus::monitoring;
};

}  // namespace promptlearn::select
