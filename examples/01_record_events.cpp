// 01: record an interaction, its performance and its outcome; see a bad document kept aside.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "promptlearn/promptlearn.hpp"

int main() {
  const char* path = "example_01.db";
  for (const char* s : {"", "-wal", "-shm"}) std::remove((std::string(path) + s).c_str());

  promptlearn::LearningEngine engine(path, promptlearn::Config::defaults());
  const std::string id = "8f14e45f-ceea-4e7a-9b3c-2b1d4c6a7e90";

  // The interaction: derived fields (token_count, complexity_score, keywords, domain) are filled in.
  auto r1 = engine.record(nlohmann::json{
      {"interaction_id", id},
      {"timestamp", "2026-03-02T09:15:00Z"},
      {"session_id", "s-1"},
      {"user_id", "alice"},
      {"input_data", {{"raw_prompt", "Refactor the async HTTP client in src/client.py. Keep the API unchanged."}}},
      {"context_data", {{"recent_files", {"src/client.py"}}, {"git_branch", "feature/retry"}}},
      {"enhancement_data", {{"selected_template", "structured_task"}, {"template_version", "1"},
                            {"enhancement_applied", true}}}});
  // Its outcome, later.
  auto r2 = engine.record(nlohmann::json{
      {"interaction_id", id},
      {"outcome_data", {{"response_quality_score", 8.5}, {"user_satisfaction_rating", 9}}}});
  // A host bug: the error names the field and the value; the document is kept in rejected_events.
  auto r3 = engine.record(nlohmann::json{
      {"interaction_id", id}, {"outcome_data", {{"quality_metrics", {{"accuracy", 1.7}}}}}});

  std::cout << "interaction accepted: " << r1.accepted << ", outcome accepted: " << r2.accepted << "\n";
  std::cout << "bad outcome rejected: " << r3.error << "\n";
  engine.flush();
  std::cout << promptlearn::to_json(engine.stats()).dump(2) << "\n";
  return r1.accepted && r2.accepted && !r3.accepted ? 0 : 1;
}
