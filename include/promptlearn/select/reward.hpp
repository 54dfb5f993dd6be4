#pragma once
/// @file Outcome -> reward in [0, 1] (configuration `learning.reward`).
#include <algorithm>
#include <optional>

#include "promptlearn/config.hpp"
#include "promptlearn/core/records.hpp"

namespace promptlearn::select {

/// The reward of an outcome: the host-given `reward` when present, otherwise the weighted mean of the
/// components the outcome carries (see RewardConfig); std::nullopt when it carries none with a
/// positive weight. Example: quality 8/10 and satisfaction 10/10 with the default weights 0.4 and 0.3
/// give (0.4 * 0.8 + 0.3 * 1.0) / 0.7 = 0.8857.
inline std::optional<double> compute_reward(const Outcome& o, const RewardConfig& w) {
  if (o.reward) return std::clamp(*o.reward, 0.0, 1.0);
  double sum = 0, weight = 0;
  auto add = [&](double wk, std::optional<double> component) {
    if (component && wk > 0) {
      sum += wk * std::clamp(*component, 0.0, 1.0);
      weight += wk;
    }
  };
  add(w.quality_weight, o.response_quality_score ? std::optional<double>(*o.response_quality_score / 10.0)
                                                 : std::nullopt);
  add(w.satisfaction_weight, o.user_satisfaction_rating
                                 ? std::optional<double>((*o.user_satisfaction_rating - 1.0) / 9.0)
                                 : std::nullopt);
  std::optional<double> acceptance, edits;
  if (o.feedback_data && o.feedback_data->implicit_feedback) {
    const auto& im = *o.feedback_data->implicit_feedback;
    acceptance = im.acceptance_rate;
    if (im.edit_action_count)
      edits = 1.0 - std::min<double>(static_cast<double>(*im.edit_action_count), w.edits_cap) / w.edits_cap;
  }
  add(w.acceptance_weight, acceptance);
  add(w.edit_weight, edits);
  add(w.latency_weight, o.claude_response_time_ms
                            ? std::optional<double>(1.0 - std::min(*o.claude_response_time_ms / w.latency_budget_ms, 1.0))
                            : std::nullopt);
  if (weight <= 0) return std::nullopt;
  return sum / weight;
}

}  // namespace promptlearn::select
