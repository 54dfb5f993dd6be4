#pragma once
/// @file Off-policy evaluation (layer 2, header-only): the value of a target policy estimated from
/// decisions another (logging) policy made, with the logged propensity of each chosen action.
///
/// Notation: n logged decisions i = (x_i, a_i, r_i, p_i), target probabilities pi(a | x_i), importance
/// weight w_i = pi(a_i | x_i) / p_i. Estimators:
/// - IPS (Horvitz & Thompson 1952): V = (1/n) sum w_i r_i. Unbiased when p_i > 0 wherever pi > 0.
/// - Self-normalised IPS (Hesterberg 1995; Swaminathan & Joachims 2015, "The self-normalized estimator
///   for counterfactual learning"): V = sum w_i r_i / sum w_i. Slightly biased, much lower variance.
/// - Doubly robust (Dudik, Langford & Li 2011, "Doubly robust policy evaluation and learning"):
///   V = (1/n) sum [ sum_a pi(a | x_i) rhat(x_i, a) + w_i (r_i - rhat(x_i, a_i)) ]; unbiased if either
///   the propensities or the reward model rhat are correct, and low-variance when rhat is good.
///
/// Standard errors come from each estimator's per-decision influence terms psi_i (IPS, DR: the terms
/// minus V; SNIPS: the delta-method term w_i (r_i - V) / mean(w)): SE^2 = sum psi_i^2 / (n (n - 1)).
/// The interval is the normal approximation V +/- z_{(1+c)/2} SE (central limit theorem; its coverage is
/// measured in tests/ope_test.cpp and docs/evaluation.md). Intervals are not clipped to [0, 1].
///
/// Paired comparison: `compare` evaluates a live and a candidate policy on the same logged decisions and
/// estimates the improvement candidate - live from the per-decision differences psi_c,i - psi_l,i, so
/// the variance shared by both estimates (the same rewards and weights' noise) cancels. The deployment
/// gate should use `improvement.ci_low`.
///
/// Example:
///     std::vector<LoggedDecision> logged = ...;           // target = candidate's distribution
///     OpeEstimate est = snips(logged);                    // est.value, est.ci_low, est.ci_high
///     auto cmp = compare(live_logged, candidate_logged, Estimator::doubly_robust, reward_model);
///     bool deploy = cmp.improvement.ci_low > 0.05;
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>
#include <fmt/format.h>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/core/stats.hpp"
#include "promptlearn/select/policy.hpp"

namespace promptlearn::select {

/// One logged decision together with the target policy's distribution on its context.
struct LoggedDecision {
  Eigen::VectorXd context;  ///< The decision's context (may be empty when no reward model needs it).
  std::string chosen;       ///< The action the logging policy took.
  double reward = 0;        ///< Observed reward, in [0, 1].
  double propensity = 1;    ///< Logging probability of `chosen`, in (0, 1].
  Distribution target;      ///< Target policy's distribution on `context`; absent actions have probability 0.
};

/// A reward model rhat(x, a) for doubly robust estimation: the predicted reward of `action` on the
/// decision's context. Must return a finite number (normally in [0, 1]).
using RewardModel = std::function<double(const LoggedDecision& decision, const std::string& action)>;

/// Which estimator `evaluate` and `compare` use.
enum class Estimator { ips, snips, doubly_robust };

/// The estimator's name: "ips", "snips" or "dr".
inline const char* to_string(Estimator e) noexcept {
  switch (e) {
    case Estimator::ips: return "ips";
    case Estimator::snips: return "snips";
    case Estimator::doubly_robust: return "dr";
  }
  return "";
}

/// Options of every estimator. Thread-safety: plain value.
struct OpeOptions {
  /// Two-sided confidence level of the interval, in (0, 1).
  double confidence = 0.95;
  /// Propensity clipping (Strehl, Langford, Li & Kakade 2010): weights use max(p_i, min_propensity),
  /// which caps every weight at 1 / min_propensity. 0 disables clipping. With rewards >= 0 clipping can
  /// only lower IPS (a downward bias of at most E[sum_{a: p(a|x) < tau} pi(a|x) r(x, a)]) in exchange
  /// for bounded variance; a conservative bias for a deployment gate. In [0, 1).
  double min_propensity = 0.0;

  /// @throws ConfigError naming `confidence` or `min_propensity`.
  void validate() const {
    if (!(confidence > 0 && confidence < 1))
      throw ConfigError("confidence", fmt::format("{} is outside (0, 1)", confidence));
    if (!(min_propensity >= 0 && min_propensity < 1))
      throw ConfigError("min_propensity", fmt::format("{} is outside [0, 1)", min_propensity));
  }
};

/// An estimate with its normal-approximation confidence interval.
struct OpeEstimate {
  std::string estimator;  ///< "ips", "snips", "dr", or "<name> difference" for an improvement.
  double value = 0;       ///< Point estimate.
  double std_error = 0;   ///< Standard error (+infinity when n < 2 or the weights are all zero).
  double ci_low = 0;      ///< value - z SE.
  double ci_high = 0;     ///< value + z SE.
  std::size_t n = 0;      ///< Logged decisions used.
  /// Kish's effective sample size (sum w)^2 / sum w^2 of the importance weights: how many on-policy
  /// samples the estimate is worth (n when target == logging policy, small when they disagree).
  double effective_sample_size = 0;
  double confidence = 0.95;  ///< Level of [ci_low, ci_high].
};

/// A paired comparison of two policies on the same logged decisions.
struct OpeComparison {
  OpeEstimate live;         ///< The live policy's estimate.
  OpeEstimate candidate;    ///< The candidate's estimate.
  OpeEstimate improvement;  ///< candidate - live with the paired interval; ESS is the smaller of the two.
};

namespace detail {

/// Per-decision influence terms of an estimate: value and psi_i with SE^2 = sum psi^2 / (n (n - 1)).
struct OpeTerms {
  double value = 0;
  std::vector<double> psi;
  double ess = 0;
  bool degenerate = false;  ///< SNIPS with sum w = 0: the value is undefined.
};

inline double target_probability(const Distribution& target, const std::string& action) {
  for (const auto& ap : target)
    if (ap.action == action) return ap.probability;
  return 0.0;
}

inline void validate_logged(const std::vector<LoggedDecision>& logged, const char* name) {
  if (logged.empty()) throw ValidationError(name, "no logged decisions");
  for (std::size_t i = 0; i < logged.size(); ++i) {
    const LoggedDecision& d = logged[i];
    auto path = [&](const char* field) { return fmt::format("{}[{}].{}", name, i, field); };
    if (d.chosen.empty()) throw ValidationError(path("chosen"), "is empty");
    if (!(d.reward >= 0 && d.reward <= 1))
      throw ValidationError(path("reward"), fmt::format("{} is outside [0, 1]", d.reward));
    if (!(d.propensity > 0 && d.propensity <= 1))
      throw ValidationError(path("propensity"), fmt::format("{} is outside (0, 1]", d.propensity));
    double total = 0;
    for (std::size_t k = 0; k < d.target.size(); ++k) {
      double p = d.target[k].probability;
      if (!(p >= 0 && p <= 1))
        throw ValidationError(fmt::format("{}[{}].target[{}].probability", name, i, k),
                              fmt::format("{} is outside [0, 1]", p));
      total += p;
    }
    if (std::fabs(total - 1) > 1e-6)
      throw ValidationError(path("target"), fmt::format("probabilities sum to {}, expected 1", total));
  }
}

inline double clipped_weight(const LoggedDecision& d, const OpeOptions& o) {
  return target_probability(d.target, d.chosen) / std::fmax(d.propensity, o.min_propensity);
}

inline double kish_ess(const std::vector<double>& w) {
  double s = 0, s2 = 0;
  for (double x : w) {
    s += x;
    s2 += x * x;
  }
  return s2 > 0 ? s * s / s2 : 0.0;
}

inline OpeTerms ope_terms(Estimator e, const std::vector<LoggedDecision>& logged, const RewardModel& model,
                          const OpeOptions& o) {
  const std::size_t n = logged.size();
  std::vector<double> w(n), direct(n, 0.0), r(n);
  for (std::size_t i = 0; i < n; ++i) {
    const LoggedDecision& d = logged[i];
    w[i] = clipped_weight(d, o);
    r[i] = d.reward;
    if (e == Estimator::doubly_robust) {
      // Direct-method part sum_a pi(a|x) rhat(x, a) and the residual on the logged action.
      double dm = 0;
      for (const auto& ap : d.target) {
        if (ap.probability == 0) continue;
        double pred = model(d, ap.action);
        if (!std::isfinite(pred))
          throw ValidationError(fmt::format("reward_model[{}]", i), fmt::format("{} is not finite", pred));
        dm += ap.probability * pred;
      }
      double pred_chosen = model(d, d.chosen);
      if (!std::isfinite(pred_chosen))
        throw ValidationError(fmt::format("reward_model[{}]", i), fmt::format("{} is not finite", pred_chosen));
      direct[i] = dm;
      r[i] = d.reward - pred_chosen;
    }
  }
  OpeTerms t;
  t.ess = kish_ess(w);
  t.psi.resize(n);
  if (e == Estimator::snips) {
    double sw = 0, swr = 0;
    for (std::size_t i = 0; i < n; ++i) {
      sw += w[i];
      swr += w[i] * r[i];
    }
    if (sw <= 0) {
      t.degenerate = true;
      return t;
    }
    t.value = swr / sw;
    double mean_w = sw / static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i) t.psi[i] = w[i] * (r[i] - t.value) / mean_w;
    return t;
  }
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    t.psi[i] = direct[i] + w[i] * r[i];
    sum += t.psi[i];
  }
  t.value = sum / static_cast<double>(n);
  for (double& p : t.psi) p -= t.value;
  return t;
}

inline OpeEstimate finish(std::string name, double value, const std::vector<double>& psi, double ess,
                          bool degenerate, const OpeOptions& o) {
  OpeEstimate est;
  est.estimator = std::move(name);
  est.n = psi.size();
  est.effective_sample_size = ess;
  est.confidence = o.confidence;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (degenerate) {
    // No logged decision carries target mass: the value is undefined; an infinite interval passes no gate.
    est.value = 0;
    est.std_error = kInf;
    est.ci_low = -kInf;
    est.ci_high = kInf;
    return est;
  }
  est.value = value;
  if (est.n < 2) {
    est.std_error = kInf;
  } else {
    double ss = 0;
    for (double p : psi) ss += p * p;
    est.std_error = std::sqrt(ss / (static_cast<double>(est.n) * static_cast<double>(est.n - 1)));
  }
  double z = normal_quantile(0.5 * (1 + o.confidence));
  est.ci_low = std::isinf(est.std_error) ? -kInf : value - z * est.std_error;
  est.ci_high = std::isinf(est.std_error) ? kInf : value + z * est.std_error;
  return est;
}

}  // namespace detail

/// Estimates the target policy's value with `estimator` (doubly_robust needs `model`).
/// @throws ValidationError for an empty log, a reward outside [0, 1], a propensity outside (0, 1], a
///   target probability outside [0, 1] or not summing to 1 (path `logged[i].field`), a missing or
///   non-finite reward model; ConfigError for invalid options.
inline OpeEstimate evaluate(Estimator estimator, const std::vector<LoggedDecision>& logged,
                            const RewardModel& model = {}, const OpeOptions& options = {}) {
  options.validate();
  detail::validate_logged(logged, "logged");
  if (estimator == Estimator::doubly_robust && !model)
    throw ValidationError("reward_model", "doubly robust estimation needs a reward model");
  detail::OpeTerms t = detail::ope_terms(estimator, logged, model, options);
  return detail::finish(to_string(estimator), t.value, t.psi, t.ess, t.degenerate, options);
}

/// Inverse propensity scoring: V = (1/n) sum w_i r_i. @throws as evaluate.
inline OpeEstimate ips(const std::vector<LoggedDecision>& logged, const OpeOptions& options = {}) {
  return evaluate(Estimator::ips, logged, {}, options);
}

/// Self-normalised IPS: V = sum w_i r_i / sum w_i (value 0 with an infinite interval if sum w = 0).
/// @throws as evaluate.
inline OpeEstimate snips(const std::vector<LoggedDecision>& logged, const OpeOptions& options = {}) {
  return evaluate(Estimator::snips, logged, {}, options);
}

/// Doubly robust: V = (1/n) sum [ sum_a pi(a|x_i) rhat(x_i, a) + w_i (r_i - rhat(x_i, a_i)) ].
/// @throws as evaluate.
inline OpeEstimate doubly_robust(const std::vector<LoggedDecision>& logged, const RewardModel& model,
                                 const OpeOptions& options = {}) {
  return evaluate(Estimator::doubly_robust, logged, model, options);
}

/// Paired comparison of two target policies on the same logged decisions: `live` and `candidate` hold
/// the same decisions (same chosen action, reward and propensity at each index) with each policy's
/// distribution as `target`. improvement.value = V_candidate - V_live; its SE comes from the per-decision
/// differences of the influence terms, so noise common to both estimates cancels.
/// @throws ValidationError if the two logs differ in length or in a decision (path `candidate[i]...`),
///   or as evaluate.
inline OpeComparison compare(const std::vector<LoggedDecision>& live, const std::vector<LoggedDecision>& candidate,
                             Estimator estimator, const RewardModel& model = {}, const OpeOptions& options = {}) {
  options.validate();
  detail::validate_logged(live, "live");
  detail::validate_logged(candidate, "candidate");
  if (live.size() != candidate.size())
    throw ValidationError("candidate", fmt::format("has {} decisions, live has {}", candidate.size(), live.size()));
  for (std::size_t i = 0; i < live.size(); ++i) {
    if (live[i].chosen != candidate[i].chosen || live[i].reward != candidate[i].reward ||
        live[i].propensity != candidate[i].propensity)
      throw ValidationError(fmt::format("candidate[{}]", i),
                            "is not the same logged decision as live (chosen, reward and propensity must match)");
  }
  if (estimator == Estimator::doubly_robust && !model)
    throw ValidationError("reward_model", "doubly robust estimation needs a reward model");
  detail::OpeTerms tl = detail::ope_terms(estimator, live, model, options);
  detail::OpeTerms tc = detail::ope_terms(estimator, candidate, model, options);
  OpeComparison out;
  std::string name = to_string(estimator);
  out.live = detail::finish(name, tl.value, tl.psi, tl.ess, tl.degenerate, options);
  out.candidate = detail::finish(name, tc.value, tc.psi, tc.ess, tc.degenerate, options);
  std::vector<double> diff(live.size());
  for (std::size_t i = 0; i < diff.size(); ++i) diff[i] = tc.psi[i] - tl.psi[i];
  out.improvement = detail::finish(name + " difference", tc.value - tl.value, diff, std::fmin(tl.ess, tc.ess),
                                   tl.degenerate || tc.degenerate, options);
  return out;
}

/// A copy of `logged` whose targets are `policy`'s distributions on each context (for scoring a
/// candidate on the live log). Randomised policies draw from `rng`.
/// @throws ValidationError from Policy::distribution (e.g. wrong context dimension).
inline std::vector<LoggedDecision> retarget(std::vector<LoggedDecision> logged, const Policy& policy, Rng& rng) {
  for (auto& d : logged) d.target = policy.distribution(d.context, rng);
  return logged;
}

}  // namespace promptlearn::select
