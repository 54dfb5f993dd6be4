#pragma once
/// @file The specification's tabular Q-learning baseline (Watkins & Dayan 1992, "Q-learning").
///
/// State: a discretised encoding of the context. The `top_features` (default 2) coordinates of largest
/// |x_i| are listed in decreasing order as (index, sign) pairs, hashed with 64-bit FNV-1a and reduced modulo
/// `num_states` (default 4096). The encoding depends only on the ranking of |x_i|, so it is unchanged by any
/// common rescaling of the context (it is, however, dominated by features of large raw scale).
///
/// Update, for a transition (s, a, r, s'):  Q(s, a) <- Q(s, a) + lr (r + gamma max_a' Q(s', a') - Q(s, a)),
/// the max over the currently valid actions; update() is a terminal transition (target r), and
/// update_transition() takes the next interaction of the same session as s'. Q starts at 0.
/// Decisions: epsilon-greedy on Q(s, .), p_a = (1 - eps) [a maximises Q] / #maximisers + eps / K.
/// Defaults: learning_rate 0.1, discount_factor 0.95, exploration_rate 0.1 (the specification's).
/// Warm start: a child action copies its parent's Q values in every state (a table has no confidence to
/// reduce; the child's values move away from the parent's at rate lr with its own rewards).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "promptlearn/select/linear_bandit.hpp"

namespace promptlearn::select {

/// Q-learning parameters (config keys `learning_rate`, `discount_factor`, `exploration_rate`).
struct QLearningParams {
  double learning_rate = 0.1;     ///< step size; (0, 1]
  double discount_factor = 0.95;  ///< gamma; [0, 1]
  double exploration_rate = 0.1;  ///< epsilon; [0, 1]
  int num_states = 4096;          ///< hashed state space size; [1, 2^30]
  int top_features = 2;           ///< coordinates in the state encoding; [1, 64]
  /// @throws ConfigError naming the key.
  void validate() const {
    if (!(learning_rate > 0.0 && learning_rate <= 1.0))
      throw ConfigError("learning_rate", detail::num(learning_rate) + " is outside (0, 1]");
    if (!(discount_factor >= 0.0 && discount_factor <= 1.0))
      throw ConfigError("discount_factor", detail::num(discount_factor) + " is outside [0, 1]");
    if (!(exploration_rate >= 0.0 && exploration_rate <= 1.0))
      throw ConfigError("exploration_rate", detail::num(exploration_rate) + " is outside [0, 1]");
    if (num_states < 1 || num_states > (1 << 30))
      throw ConfigError("num_states", std::to_string(num_states) + " is outside [1, 1073741824]");
    if (top_features < 1 || top_features > 64)
      throw ConfigError("top_features", std::to_string(top_features) + " is outside [1, 64]");
  }
};

/// Tabular Q-learning with epsilon-greedy decisions. Thread-safety: none; const members may be called
/// concurrently.
class QLearningPolicy final : public Policy {
 public:
  explicit QLearningPolicy(int dimension, QLearningParams params = {}) : dimension_(dimension), params_(params) {
    if (dimension < 1) throw ValidationError("dimension", std::to_string(dimension) + " is outside [1, int max]");
    params_.validate();
  }

  std::string name() const override { return "q_learning"; }
  int dimension() const override { return dimension_; }
  const QLearningParams& params() const { return params_; }

  void add_action(const std::string& action, const std::string& parent = "") override {
    if (action.empty()) throw ValidationError("action", "is empty");
    if (auto it = index_.find(action); it != index_.end()) {
      valid_[it->second] = true;
      return;
    }
    const std::size_t id = keys_.size();
    auto p = parent.empty() ? index_.end() : index_.find(parent);
    for (auto& [state, row] : q_) {
      row.resize(id + 1, 0.0);
      if (p != index_.end()) row[id] = row[p->second];
    }
    index_.emplace(action, id);
    keys_.push_back(action);
    valid_.push_back(true);
  }

  void retire_action(const std::string& action) override {
    if (auto it = index_.find(action); it != index_.end()) valid_[it->second] = false;
  }

  std::vector<std::string> actions() const override {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < keys_.size(); ++i)
      if (valid_[i]) out.push_back(keys_[i]);
    return out;
  }

  /// The hashed state of context x, in [0, num_states).
  std::uint64_t state_of(const Eigen::VectorXd& x) const {
    detail::check_context(x, dimension_);
    std::vector<Eigen::Index> order(static_cast<std::size_t>(x.size()));
    for (Eigen::Index i = 0; i < x.size(); ++i) order[static_cast<std::size_t>(i)] = i;
    const std::size_t top = std::min(order.size(), static_cast<std::size_t>(params_.top_features));
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top), order.end(),
                      [&](Eigen::Index a, Eigen::Index b) {
                        const double fa = std::abs(x(a)), fb = std::abs(x(b));
                        return fa != fb ? fa > fb : a < b;
                      });
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a offset basis
    auto mix = [&h](std::uint64_t v) {
      for (int byte = 0; byte < 8; ++byte) {
        h ^= (v >> (8 * byte)) & 0xFF;
        h *= 1099511628211ull;  // FNV prime
      }
    };
    for (std::size_t i = 0; i < top; ++i) {
      const Eigen::Index j = order[i];
      const int sign = x(j) > 0 ? 1 : (x(j) < 0 ? 2 : 0);  // an all-zero context hashes to its own state
      mix(static_cast<std::uint64_t>(j) * 3 + static_cast<std::uint64_t>(sign));
    }
    return h % static_cast<std::uint64_t>(params_.num_states);
  }

  /// Q(state, action) (0 for a state never updated). @throws ValidationError for an unknown action.
  double q(std::uint64_t state, const std::string& action) const { return value(state, id_of(action)); }

  Distribution distribution(const Eigen::VectorXd& x, Rng& /*rng*/) const override {
    const std::uint64_t s = state_of(x);
    std::vector<std::size_t> ids = valid_ids();
    std::vector<double> scores;
    for (std::size_t id : ids) scores.push_back(value(s, id));
    std::vector<double> p = detail::greedy_split(scores);
    detail::apply_floor(p, params_.exploration_rate);
    Distribution d;
    for (std::size_t i = 0; i < ids.size(); ++i) d.push_back({keys_[ids[i]], p[i], scores[i]});
    detail::rank(d);
    return d;
  }

  /// Terminal transition: Q(s, a) += lr (r - Q(s, a)). The propensity is validated but unused.
  void update(const Eigen::VectorXd& x, const std::string& action, double reward, double propensity) override {
    detail::check_reward(reward, propensity);
    learn(state_of(x), id_of(action), reward);
  }

  /// Transition to the next interaction of the same session:
  /// Q(s, a) += lr (r + gamma max_a' Q(s', a') - Q(s, a)), the max over the valid actions.
  void update_transition(const Eigen::VectorXd& x, const std::string& action, double reward,
                         const Eigen::VectorXd& x_next) {
    detail::check_reward(reward, 1.0);
    const std::uint64_t s = state_of(x), s_next = state_of(x_next);
    const std::size_t a = id_of(action);
    double best = 0;
    bool any = false;
    for (std::size_t id : valid_ids()) {
      const double v = value(s_next, id);
      best = any ? std::max(best, v) : v;
      any = true;
    }
    learn(s, a, reward + params_.discount_factor * best);
  }

  nlohmann::json to_json() const override {
    nlohmann::json acts = nlohmann::json::array();
    for (std::size_t i = 0; i < keys_.size(); ++i) acts.push_back({{"action", keys_[i]}, {"valid", static_cast<bool>(valid_[i])}});
    std::map<std::uint64_t, const std::vector<double>*> sorted;  // deterministic output order
    for (const auto& [state, row] : q_) sorted.emplace(state, &row);
    nlohmann::json table = nlohmann::json::array();
    for (const auto& [state, row] : sorted) {
      std::vector<double> padded = *row;
      padded.resize(keys_.size(), 0.0);
      table.push_back({{"state", state}, {"q", padded}});
    }
    return {{"algorithm", name()},
            {"format", 1},
            {"dimension", dimension_},
            {"parameters",
             {{"learning_rate", params_.learning_rate},
              {"discount_factor", params_.discount_factor},
              {"exploration_rate", params_.exploration_rate},
              {"num_states", params_.num_states},
              {"top_features", params_.top_features}}},
            {"actions", acts},
            {"table", table}};
  }

  std::unique_ptr<Policy> clone() const override { return std::make_unique<QLearningPolicy>(*this); }

  /// Restores a policy from to_json() output. @throws ValidationError naming the field.
  static std::unique_ptr<QLearningPolicy> from_json(const nlohmann::json& j) {
    auto integer = [](const nlohmann::json& obj, const std::string& path, const std::string& key, double lo, double hi) {
      const double v = detail::number_field(obj, path, key);
      if (v != std::floor(v) || v < lo || v > hi)
        throw ValidationError(path.empty() ? key : path + "." + key, detail::num(v) + " is not an integer in [" +
                                                                         detail::num(lo) + ", " + detail::num(hi) + "]");
      return v;
    };
    const int dim = static_cast<int>(integer(j, "", "dimension", 1, 100000));
    const nlohmann::json& pj = detail::field(j, "", "parameters");
    QLearningParams p;
    p.learning_rate = detail::number_field(pj, "parameters", "learning_rate");
    p.discount_factor = detail::number_field(pj, "parameters", "discount_factor");
    p.exploration_rate = detail::number_field(pj, "parameters", "exploration_rate");
    p.num_states = static_cast<int>(integer(pj, "parameters", "num_states", 1, 1 << 30));
    p.top_features = static_cast<int>(integer(pj, "parameters", "top_features", 1, 64));
    detail::validate_as_state(p);
    auto policy = std::make_unique<QLearningPolicy>(dim, p);
    const nlohmann::json& acts = detail::field(j, "", "actions");
    if (!acts.is_array()) throw ValidationError("actions", "expected an array");
    for (std::size_t i = 0; i < acts.size(); ++i) {
      const std::string path = "actions[" + std::to_string(i) + "]";
      const nlohmann::json& key = detail::field(acts[i], path, "action");
      const nlohmann::json& valid = detail::field(acts[i], path, "valid");
      if (!key.is_string() || key.get<std::string>().empty()) throw ValidationError(path + ".action", "expected a non-empty string");
      if (!valid.is_boolean()) throw ValidationError(path + ".valid", "expected a boolean");
      if (policy->index_.count(key.get<std::string>())) throw ValidationError(path + ".action", "duplicate action");
      policy->add_action(key.get<std::string>());
      if (!valid.get<bool>()) policy->retire_action(key.get<std::string>());
    }
    const nlohmann::json& table = detail::field(j, "", "table");
    if (!table.is_array()) throw ValidationError("table", "expected an array");
    for (std::size_t i = 0; i < table.size(); ++i) {
      const std::string path = "table[" + std::to_string(i) + "]";
      const auto state = static_cast<std::uint64_t>(integer(table[i], path, "state", 0, p.num_states - 1));
      Eigen::VectorXd row = detail::vector_from_json(detail::field(table[i], path, "q"), path + ".q",
                                                     static_cast<Eigen::Index>(policy->keys_.size()));
      if (!policy->q_.emplace(state, std::vector<double>(row.data(), row.data() + row.size())).second)
        throw ValidationError(path + ".state", "duplicate state");
    }
    return policy;
  }

 private:
  std::size_t id_of(const std::string& action) const {
    auto it = index_.find(action);
    if (it == index_.end()) throw ValidationError("action", "\"" + action + "\" is not a known action");
    return it->second;
  }

  std::vector<std::size_t> valid_ids() const {
    std::vector<std::size_t> ids;
    for (std::size_t i = 0; i < keys_.size(); ++i)
      if (valid_[i]) ids.push_back(i);
    if (ids.empty()) throw ValidationError("actions", "no valid action");
    return ids;
  }

  double value(std::uint64_t state, std::size_t id) const {
    auto it = q_.find(state);
    return it == q_.end() || id >= it->second.size() ? 0.0 : it->second[id];
  }

  void learn(std::uint64_t state, std::size_t id, double target) {
    std::vector<double>& row = q_[state];
    if (row.size() < keys_.size()) row.resize(keys_.size(), 0.0);
    row[id] += params_.learning_rate * (target - row[id]);
  }

  int dimension_;
  QLearningParams params_;
  std::vector<std::string> keys_;
  std::vector<char> valid_;
  std::unordered_map<std::string, std::size_t> index_;
  std::unordered_map<std::uint64_t, std::vector<double>> q_;
};

}  // namespace promptlearn::select
