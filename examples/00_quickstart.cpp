// 00: the README's usage example, verbatim (built and run by ctest so that it stays true).
#include <promptlearn/promptlearn.hpp>
#include <iostream>

int main() {
  promptlearn::LearningEngine engine("learn.db", promptlearn::Config::defaults());
  engine.register_template("plain", "1", "{prompt}");
  engine.register_template("structured_task", "1", "Task: {prompt}\nConstraints: ...\nOutput: ...");
  // 1. The host asks which template to apply (the decision and its propensity are logged).
  const char* interaction = R"({"interaction_id": "8f14e45f-ceea-4e7a-9b3c-2b1d4c6a7e90",
      "timestamp": "2026-03-02T09:15:00Z", "session_id": "s-1", "user_id": "alice",
      "input_data": {"raw_prompt": "Refactor the HTTP client. Keep the API unchanged."}})";
  promptlearn::Decision d = engine.select_template(interaction);
  std::cout << "apply " << d.chosen.template_id << " (p = " << d.propensity << ")\n";
  // 2. It records the interaction (derived fields are filled in) and, later, the outcome.
  engine.record(interaction);
  engine.record(R"({"interaction_id": "8f14e45f-ceea-4e7a-9b3c-2b1d4c6a7e90",
      "outcome_data": {"response_quality_score": 8.5, "user_satisfaction_rating": 9}})");
  // 3. Bad input never throws: the result says why, and the document is kept in rejected_events.
  auto bad = engine.record(R"({"interaction_id": "8f14e45f-ceea-4e7a-9b3c-2b1d4c6a7e90",
      "outcome_data": {"quality_metrics": {"accuracy": 1.7}}})");
  std::cout << bad.error << "\n";  // outcome_data.quality_metrics.accuracy: 1.7 is outside [0, 1]
  // 4. Scheduled work: learn from rewards, deploy a better policy only when the off-policy gate passes.
  std::cout << promptlearn::to_json(engine.run_due_jobs(engine.clock().now_ms())).dump() << "\n";
}
