#pragma once
/// @file The template-selection policy interface (layer 2: header-only, no I/O, no clock, no threads).
///
/// An action is a template version, named by its key "template_id@version". A context is an Eigen
/// vector (features::FeatureExtractor::vectorize plus per-user features). A policy returns the full
/// distribution over its currently valid actions; the caller samples from it with a seeded Rng and
/// logs the chosen action's probability as the propensity, so that off-policy evaluation is possible.
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"

namespace promptlearn::select {

/// A context as the decisions table stores it (a JSON array of numbers) as a vector of `dim`; an empty
/// vector when the text is not such an array (a context no policy of that dimension learned from).
inline Eigen::VectorXd context_from_json(const std::string& text, int dim) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array() || static_cast<int>(j.size()) != dim) return {};
  Eigen::VectorXd x(dim);
  for (int i = 0; i < dim; ++i) {
    if (!j[static_cast<std::size_t>(i)].is_number()) return {};
    x(i) = j[static_cast<std::size_t>(i)].get<double>();
  }
  return x;
}

/// One action's share of a decision.
struct ActionProbability {
  std::string action;      ///< "template_id@version"
  double probability = 0;  ///< in (0, 1]; over all valid actions they sum to 1
  double score = 0;        ///< the policy's own score (estimated reward, UCB, ...), for display and ranking
};

/// A decision's distribution, ranked by probability (ties by score, then action key).
using Distribution = std::vector<ActionProbability>;

/// A contextual-bandit policy over a changing set of actions.
/// Thread-safety: none; the engine gives each deployed snapshot to readers as const and updates a copy.
class Policy {
 public:
  virtual ~Policy() = default;

  /// Algorithm name, e.g. "linucb".
  virtual std::string name() const = 0;
  /// Dimension of the contexts it accepts.
  virtual int dimension() const = 0;

  /// Adds an action; when `parent` names a known action, the new one starts from the parent's
  /// statistics (transfer/warm start) with its confidence reduced. Adding a known action is a no-op.
  virtual void add_action(const std::string& action, const std::string& parent = "") = 0;
  /// Retires an action: it gets probability 0 from now on (its statistics are kept for a re-add).
  virtual void retire_action(const std::string& action) = 0;
  /// The currently valid actions, in the order they were added.
  virtual std::vector<std::string> actions() const = 0;

  /// The distribution over the valid actions for context `x` (every probability > 0 when the policy
  /// has an exploration floor). Randomised policies (Thompson sampling) draw from `rng`.
  /// @throws ValidationError if x has the wrong dimension or there is no valid action.
  virtual Distribution distribution(const Eigen::VectorXd& x, Rng& rng) const = 0;

  /// Learns from one logged decision: context, chosen action, reward in [0, 1], propensity in (0, 1].
  virtual void update(const Eigen::VectorXd& x, const std::string& action, double reward, double propensity) = 0;

  /// Removes one earlier update(x, action, reward) exactly, as if it had never been learned (erasing a
  /// user's data from learned state). Returns false, changing nothing, when the policy's state cannot be
  /// reversed exactly (it must then be retrained without the data). @throws ValidationError when the
  /// update cannot have been part of the state (unknown action, a statistic would turn invalid).
  virtual bool downdate(const Eigen::VectorXd& x, const std::string& action, double reward) {
    (void)x, (void)action, (void)reward;
    return false;
  }

  /// Full state, for checkpoints; `make_policy_from_json(p.to_json())` behaves identically.
  virtual nlohmann::json to_json() const = 0;
  /// The same state with large numeric blocks as JSON binary values (for CBOR checkpoints: no number
  /// parsing on load). `make_policy_from_json` reads both forms. Default: to_json().
  virtual nlohmann::json to_binary_json() const { return to_json(); }
  virtual std::unique_ptr<Policy> clone() const = 0;

  /// True if merge() is supported (the state is made of additive statistics).
  virtual bool mergeable() const { return false; }
  /// Adds another shard's learning: afterwards this equals a policy that saw both shards' updates
  /// (for additive statistics: A = A1 + A2 - prior, b = b1 + b2). @throws Error if not mergeable or
  /// the other policy differs in kind or dimension.
  virtual void merge(const Policy& other);
};

inline void Policy::merge(const Policy& other) {
  throw Error(name() + ": merge is not supported (with " + other.name() + ")");
}

}  // namespace promptlearn::select
