#pragma once
/// @file The context vector a selection policy sees: prompt features plus per-user features.
///
/// Layout: [ FeatureExtractor::vectorize(features, hour)  (kDenseDim + hash_dim)
///         | user block (kUserDim):  signed-hashed user id in slots 0..7,
///                                   the user's recent outcome with each template, signed-hashed by
///                                   template key into slots 8..13 (value: mean reward - 0.5),
///                                   experience = min(1, log1p(interactions) / log(1000)),
///                                   the user's mean learned reward (0.5 when unknown) ]
/// The hashed user id gives each action's linear model a per-user offset, and the user's own template
/// outcomes tell every action's model how this person fared with each template: personalisation
/// (users whose best templates differ get different choices once their data arrives).
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "promptlearn/features/extractor.hpp"

namespace promptlearn::select {

/// What the engine knows about the user at decision time.
struct UserContext {
  std::string user_id;               ///< "" when anonymous
  std::int64_t interactions = 0;     ///< interactions recorded so far
  double mean_reward = -1;           ///< mean learned reward, or -1 when none yet
  /// Recent mean reward with each template ("id@version"), for templates the user has outcomes with.
  std::vector<std::pair<std::string, double>> template_means;
};

/// Builds context vectors. Thread-safety: immutable after construction; const members are safe.
class ContextBuilder {
 public:
  static constexpr int kUserDim = 16;
  static constexpr int kUserIdSlots = 8;     ///< hashed user id
  static constexpr int kTemplateSlots = 6;   ///< hashed per-template outcomes of the user

  /// `options.hash_dim` sets the hashed prompt part (the selector uses a small one, see LearningEngine).
  explicit ContextBuilder(features::FeatureOptions options = small_options()) : extractor_(options) {}

  /// The selector's default: 32 hashed prompt slots, so the context has 24 + 32 + 16 = 72 dimensions.
  static features::FeatureOptions small_options() {
    features::FeatureOptions o;
    o.hash_dim = 32;
    return o;
  }

  int dimension() const { return extractor_.dimension() + kUserDim; }
  const features::FeatureExtractor& extractor() const { return extractor_; }

  /// The context of one decision. `hour_of_day` 0..23 or -1.
  Eigen::VectorXd build(const features::PromptFeatures& f, int hour_of_day, const UserContext& user) const {
    Eigen::VectorXd x(dimension());
    const int base = extractor_.dimension();
    x.head(base) = extractor_.vectorize(f, hour_of_day);
    x.tail(kUserDim).setZero();
    if (!user.user_id.empty()) {
      const std::uint64_t h = features::stable_hash("user:" + user.user_id);
      x(base + static_cast<int>(h % kUserIdSlots)) = (h >> 63) ? -1.0 : 1.0;
    }
    for (const auto& [key, mean] : user.template_means) {
      const std::uint64_t h = features::stable_hash("user_template:" + key);
      x(base + kUserIdSlots + static_cast<int>(h % kTemplateSlots)) += ((h >> 63) ? -1.0 : 1.0) * (mean - 0.5);
    }
    x(base + kUserDim - 2) =
        std::min(1.0, std::log1p(static_cast<double>(std::max<std::int64_t>(0, user.interactions))) / std::log(1000.0));
    x(base + kUserDim - 1) = user.mean_reward < 0 ? 0.5 : user.mean_reward;
    return x;
  }

 private:
  features::FeatureExtractor extractor_;
};

}  // namespace promptlearn::select
