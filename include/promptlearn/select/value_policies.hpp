#pragma once
/// @file Epsilon-greedy and softmax (Boltzmann) selection over the per-action ridge estimates of
/// linear_bandit.hpp (same statistics, scaling, warm start, merge and checkpoint format).
///
///  - Epsilon-greedy (Sutton & Barto 2018, sec. 2.2; Langford & Zhang 2008 for the contextual form):
///    p_a = (1 - epsilon) [a maximises theta_a^T z] / #maximisers + epsilon / K.
///  - Softmax / Boltzmann exploration (Sutton & Barto 2018, sec. 2.8; Cesa-Bianchi et al. 2017 on its
///    tuning): p_a = exp(theta_a^T z / T) / sum_b exp(theta_b^T z / T), rewards being in [0, 1]; every
///    action keeps p_a >= exp(-range / T) / K, where range is the spread of the estimates.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "promptlearn/select/linear_bandit.hpp"

namespace promptlearn::select {

/// Epsilon-greedy parameters (config key `epsilon`; the ridge prior is not a config key).
struct EpsilonGreedyParams {
  double epsilon = 0.1;       ///< probability of a uniformly random action; [0, 1]
  double ridge_lambda = 0.1;  ///< ridge prior; (0, inf)
  FeatureScaling scaling = FeatureScaling::kSymlogStandardize;
  /// @throws ConfigError naming the key.
  void validate() const {
    if (!(epsilon >= 0.0 && epsilon <= 1.0)) throw ConfigError("epsilon", detail::num(epsilon) + " is outside [0, 1]");
    detail::check_positive(ridge_lambda, "ridge_lambda");
  }
};

/// Epsilon-greedy over ridge estimates. Thread-safety: none; const members may be called concurrently.
class EpsilonGreedyPolicy final : public LinearPolicy {
 public:
  explicit EpsilonGreedyPolicy(int dimension, EpsilonGreedyParams params = {})
      : LinearPolicy(detail::RidgeModels(dimension, params.ridge_lambda, params.scaling)), params_(params) {
    params_.validate();
  }
  std::string name() const override { return "epsilon_greedy"; }
  const EpsilonGreedyParams& params() const { return params_; }

  Distribution distribution(const Eigen::VectorXd& x, Rng& /*rng*/) const override {
    const auto arms = models_.valid_arms();
    const std::vector<double> s = estimates(x);
    std::vector<double> p = detail::greedy_split(s);
    detail::apply_floor(p, params_.epsilon);
    return make_distribution(arms, p, s);
  }

  nlohmann::json parameters_json() const override {
    return {{"epsilon", params_.epsilon}, {"ridge_lambda", params_.ridge_lambda}};
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<EpsilonGreedyPolicy>(*this); }

  /// Restores a policy from to_json() output. @throws ValidationError naming the field.
  static std::unique_ptr<EpsilonGreedyPolicy> from_json(const nlohmann::json& j) {
    detail::RidgeModels models = detail::RidgeModels::from_json(j);
    EpsilonGreedyParams p;
    p.epsilon = detail::number_field(detail::field(j, "", "parameters"), "parameters", "epsilon");
    p.ridge_lambda = models.lambda();
    p.scaling = models.scaling();
    detail::validate_as_state(p);
    return std::unique_ptr<EpsilonGreedyPolicy>(new EpsilonGreedyPolicy(std::move(models), p));
  }

 private:
  EpsilonGreedyPolicy(detail::RidgeModels models, EpsilonGreedyParams params)
      : LinearPolicy(std::move(models)), params_(params) {}
  EpsilonGreedyParams params_;
};

/// Softmax parameters (config key `temperature`).
struct SoftmaxParams {
  double temperature = 0.1;   ///< Boltzmann temperature over estimated rewards in [0, 1]; (0, inf)
  double ridge_lambda = 0.1;  ///< ridge prior; (0, inf)
  FeatureScaling scaling = FeatureScaling::kSymlogStandardize;
  /// @throws ConfigError naming the key.
  void validate() const {
    detail::check_positive(temperature, "temperature");
    detail::check_positive(ridge_lambda, "ridge_lambda");
  }
};

/// Softmax (Boltzmann) over ridge estimates. Thread-safety: none; const members may be called concurrently.
class SoftmaxPolicy final : public LinearPolicy {
 public:
  explicit SoftmaxPolicy(int dimension, SoftmaxParams params = {})
      : LinearPolicy(detail::RidgeModels(dimension, params.ridge_lambda, params.scaling)), params_(params) {
    params_.validate();
  }
  std::string name() const override { return "softmax"; }
  const SoftmaxParams& params() const { return params_; }

  Distribution distribution(const Eigen::VectorXd& x, Rng& /*rng*/) const override {
    const auto arms = models_.valid_arms();
    const std::vector<double> s = estimates(x);
    double best = s[0];
    for (double v : s) best = std::max(best, v);
    std::vector<double> p(s.size());
    double total = 0;
    for (std::size_t i = 0; i < s.size(); ++i) total += p[i] = std::exp((s[i] - best) / params_.temperature);
    for (double& v : p) v /= total;
    return make_distribution(arms, p, s);
  }

  nlohmann::json parameters_json() const override {
    return {{"temperature", params_.temperature}, {"ridge_lambda", params_.ridge_lambda}};
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<SoftmaxPolicy>(*this); }

  /// Restores a policy from to_json() output. @throws ValidationError naming the field.
  static std::unique_ptr<SoftmaxPolicy> from_json(const nlohmann::json& j) {
    detail::RidgeModels models = detail::RidgeModels::from_json(j);
    SoftmaxParams p;
    p.temperature = detail::number_field(detail::field(j, "", "parameters"), "parameters", "temperature");
    p.ridge_lambda = models.lambda();
    p.scaling = models.scaling();
    detail::validate_as_state(p);
    return std::unique_ptr<SoftmaxPolicy>(new SoftmaxPolicy(std::move(models), p));
  }

 private:
  SoftmaxPolicy(detail::RidgeModels models, SoftmaxParams params) : LinearPolicy(std::move(models)), params_(params) {}
  SoftmaxParams params_;
};

}  // namespace promptlearn::select
