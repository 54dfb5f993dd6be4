#pragma once
/// @file
/// The logs of the file as inputs of the multi-objective and rule optimisers (layer 4):
///
/// - template_pareto: each template's mean outcome quality, processing latency and enhanced prompt length
///   from the logged interactions, ranked by NSGA-II's non-dominated sorting over (quality up, latency
///   down, length down) with crowding distances inside each front (optimize/pareto.hpp);
/// - rule_observations: one optimize::RuleObservation per interaction with an outcome (numbers
///   complexity, token_count, hour; strings domain, template; action "bypass" when enhancement was not
///   applied, else "template:<id>"; reward = quality / 10), for optimize::rule_effectiveness,
///   rule_conflicts and refine_threshold. The effects are observational (no propensity weighting).
#include <string>
#include <vector>

#include "promptlearn/engine.hpp"
#include "promptlearn/optimize/rules.hpp"

namespace promptlearn {

/// One template's position in the quality / latency / length trade-off.
struct TemplateTradeoff {
  std::string template_id;
  std::size_t interactions = 0;      ///< with an outcome quality
  double mean_quality = 0;           ///< response_quality_score, 0..10
  double mean_latency_ms = 0;        ///< performance total_processing_time_ms (NaN when none reported)
  double mean_prompt_length = 0;     ///< enhanced_prompt_length (NaN when none reported)
  std::size_t front = 0;             ///< 0 = Pareto-optimal, 1 = optimal once front 0 is removed, ...
  double crowding = 0;               ///< crowding distance inside its front (infinite at the ends)
};

/// Templates with at least `min_interactions` outcomes, sorted by front, then quality descending. A
/// template without latency or length reports is compared on the objectives it has as if it were the
/// worst on the missing one. @throws StorageError
std::vector<TemplateTradeoff> template_pareto(LearningEngine& engine, std::size_t min_interactions = 20);

/// The newest `limit` interactions with an outcome quality as rule observations. @throws StorageError
std::vector<optimize::RuleObservation> rule_observations(LearningEngine& engine, std::size_t limit = 100000);

}  // namespace promptlearn
