// 00: the README's usage example, verbatim (built and run by ctest so that it stays true).
#include <promptlearn/promptlearn.hpp>
#include <iostream>

int main() {
  promptlearn::LearningEngine engine("learn.db", promptlearn::Config::defaults());
  // 1. The host records the interaction (derived fields are filled in when absent).
  auto r = engine.record(R"({"interaction_id": "8f14e45f-ceea-4e7a-9b3c-2b1d4c6a7e90",
      "timestamp": "2026-03-02T09:15:00Z", "session_id": "s-1", "user_id": "alice",
      "input_data": {"raw_prompt": "Refactor the HTTP client. Keep the API unchanged."},
      "enhancement_data": {"selected_template": "structured_task", "template_version": "1"}})");
  // 2. Later, the outcome (it may even arrive first: it is kept pending).
  engine.record(R"({"interaction_id": "8f14e45f-ceea-4e7a-9b3c-2b1d4c6a7e90",
      "outcome_data": {"response_quality_score": 8.5, "user_satisfaction_rating": 9}})");
  // 3. Bad input never throws: the result says why, and the document is kept in rejected_events.
  auto bad = engine.record(R"({"interaction_id": "8f14e45f-ceea-4e7a-9b3c-2b1d4c6a7e90",
      "outcome_data": {"quality_metrics": {"accuracy": 1.7}}})");
  std::cout << bad.error << "\n";  // outcome_data.quality_metrics.accuracy: 1.7 is outside [0, 1]
  engine.flush();
  std::cout << promptlearn::to_json(engine.stats()).dump(2) << "\n";
}
