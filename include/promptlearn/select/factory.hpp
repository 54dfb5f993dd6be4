#pragma once
/// @file Builds a template-selection policy from its configured algorithm and parameters, or from a
/// checkpoint (Policy::to_json()).
///
/// Example:
///     auto policy = promptlearn::select::make_policy("linucb", {{"alpha", 0.5}}, 64);
///     auto copy = promptlearn::select::make_policy_from_json(policy->to_json());
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/select/linear_bandit.hpp"
#include "promptlearn/select/policy.hpp"
#include "promptlearn/select/q_learning.hpp"
#include "promptlearn/select/value_policies.hpp"

namespace promptlearn::select {

namespace detail {

inline const std::string kParametersPath = "learning_strategies.template_selection.parameters";

/// Reads number `key` of `parameters` into `out` if present, checking its type and that it is known.
class ParameterReader {
 public:
  ParameterReader(const std::string& algorithm, const nlohmann::json& parameters,
                  std::initializer_list<const char*> known)
      : algorithm_(algorithm), parameters_(parameters), known_(known) {
    if (!parameters.is_null() && !parameters.is_object())
      throw ConfigError(kParametersPath, "expected an object, got " + parameters.dump());
    if (parameters.is_object()) {
      for (auto it = parameters.begin(); it != parameters.end(); ++it) {
        bool ok = false;
        for (const char* k : known_) ok = ok || it.key() == k;
        if (!ok) {
          std::string list;
          for (const char* k : known_) list += (list.empty() ? "" : ", ") + std::string(k);
          throw ConfigError(kParametersPath + "." + it.key(),
                            "unknown key for algorithm \"" + algorithm_ + "\" (known keys: " + list + ")");
        }
      }
    }
  }

  void read(const char* key, double& out) const {
    if (!parameters_.is_object()) return;
    auto it = parameters_.find(key);
    if (it == parameters_.end()) return;
    if (!it->is_number()) throw ConfigError(kParametersPath + "." + key, "expected a number, got " + it->dump());
    out = it->get<double>();
  }

 private:
  std::string algorithm_;
  const nlohmann::json& parameters_;
  std::initializer_list<const char*> known_;
};

/// Runs `validate` and re-throws its ConfigError under the full key path.
template <class Params>
void validate_as_config(const Params& p) {
  try {
    p.validate();
  } catch (const ConfigError& e) {
    std::string message = e.what();
    message.erase(0, e.key().size() + 2);
    throw ConfigError(kParametersPath + "." + e.key(), message);
  }
}

}  // namespace detail

/// A fresh policy for `algorithm` (linucb | thompson | epsilon_greedy | softmax | q_learning) with the
/// given parameters (config keys; a missing key takes the config default) over contexts of `dimension`.
/// `seed` is accepted for policies with their own randomness; the current ones draw only from the Rng given
/// to distribution(), so it does not change them.
/// @throws ConfigError naming `learning_strategies.template_selection.algorithm` for an unknown algorithm,
///         or the parameter's key path for an unknown key, wrong type or out-of-range value;
///         ValidationError if dimension < 1.
inline std::unique_ptr<Policy> make_policy(const std::string& algorithm, const nlohmann::json& parameters,
                                           int dimension, std::uint64_t seed = 42) {
  (void)seed;
  if (algorithm == "linucb") {
    detail::ParameterReader r(algorithm, parameters, {"alpha", "epsilon_floor", "ridge_lambda"});
    LinUcbParams p;
    r.read("alpha", p.alpha);
    r.read("epsilon_floor", p.epsilon_floor);
    r.read("ridge_lambda", p.ridge_lambda);
    detail::validate_as_config(p);
    return std::make_unique<LinUcbPolicy>(dimension, p);
  }
  if (algorithm == "thompson") {
    detail::ParameterReader r(algorithm, parameters, {"v", "epsilon_floor", "ridge_lambda"});
    ThompsonParams p;
    r.read("v", p.v);
    r.read("epsilon_floor", p.epsilon_floor);
    r.read("ridge_lambda", p.ridge_lambda);
    detail::validate_as_config(p);
    return std::make_unique<ThompsonPolicy>(dimension, p);
  }
  if (algorithm == "epsilon_greedy") {
    detail::ParameterReader r(algorithm, parameters, {"epsilon"});
    EpsilonGreedyParams p;
    r.read("epsilon", p.epsilon);
    detail::validate_as_config(p);
    return std::make_unique<EpsilonGreedyPolicy>(dimension, p);
  }
  if (algorithm == "softmax") {
    detail::ParameterReader r(algorithm, parameters, {"temperature"});
    SoftmaxParams p;
    r.read("temperature", p.temperature);
    detail::validate_as_config(p);
    return std::make_unique<SoftmaxPolicy>(dimension, p);
  }
  if (algorithm == "q_learning") {
    detail::ParameterReader r(algorithm, parameters, {"learning_rate", "discount_factor", "exploration_rate"});
    QLearningParams p;
    r.read("learning_rate", p.learning_rate);
    r.read("discount_factor", p.discount_factor);
    r.read("exploration_rate", p.exploration_rate);
    detail::validate_as_config(p);
    return std::make_unique<QLearningPolicy>(dimension, p);
  }
  throw ConfigError("learning_strategies.template_selection.algorithm",
                    nlohmann::json(algorithm).dump() + " is not one of linucb, thompson, epsilon_greedy, softmax, q_learning");
}

/// The policy a checkpoint (Policy::to_json()) describes; it behaves identically to the one saved.
/// @throws ValidationError naming the offending field (e.g. `actions[0].A_inv`).
inline std::unique_ptr<Policy> make_policy_from_json(const nlohmann::json& state) {
  const nlohmann::json& algorithm = detail::field(state, "", "algorithm");
  if (!algorithm.is_string()) throw ValidationError("algorithm", "expected a string, got " + algorithm.dump());
  const nlohmann::json& format = detail::field(state, "", "format");
  if (format != 1) throw ValidationError("format", format.dump() + " is not a supported format (expected 1)");
  const std::string name = algorithm.get<std::string>();
  if (name == "linucb") return LinUcbPolicy::from_json(state);
  if (name == "thompson") return ThompsonPolicy::from_json(state);
  if (name == "epsilon_greedy") return EpsilonGreedyPolicy::from_json(state);
  if (name == "softmax") return SoftmaxPolicy::from_json(state);
  if (name == "q_learning") return QLearningPolicy::from_json(state);
  throw ValidationError("algorithm", algorithm.dump() + " is not one of linucb, thompson, epsilon_greedy, softmax, q_learning");
}

}  // namespace promptlearn::select
