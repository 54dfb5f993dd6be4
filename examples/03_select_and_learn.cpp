// 03: the learning loop on virtual time: select -> apply -> record -> outcome -> run_due_jobs.
// Two templates; for code prompts "structured_task" is better, for prose "plain" is. After a few
// simulated days the gate deploys a learned policy and the choices follow the prompt.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "promptlearn/promptlearn.hpp"

int main() {
  const char* path = "example_03.db";
  for (const char* s : {"", "-wal", "-shm"}) std::remove((std::string(path) + s).c_str());

  promptlearn::ManualClock clock(*promptlearn::try_parse_rfc3339("2026-03-02T00:00:00Z"));
  promptlearn::EngineOptions options;
  options.clock = &clock;  // virtual time: jobs and timestamps follow it
  promptlearn::Config config = promptlearn::Config::defaults();
  config.learning.data_collection.mode = promptlearn::CollectionMode::buffered;
  promptlearn::LearningEngine engine(path, config, options);
  engine.register_template("plain", "1", "{prompt}");
  engine.register_template("structured_task", "1", "Task: {prompt}\nConstraints: ...\nOutput format: ...");

  promptlearn::Rng rng(7);
  const char* code[] = {"Fix the segfault in parser.cpp", "Refactor the async HTTP client in client.py",
                        "Write unit tests for the JSON decoder"};
  const char* prose[] = {"Write a short story about a lighthouse keeper", "Draft an email announcing our offsite",
                         "Proofread my essay on the printing press"};
  for (int day = 0; day < 6; ++day) {
    for (int i = 0; i < 120; ++i) {
      clock.advance(60000);
      const bool is_code = rng.bernoulli(0.5);
      nlohmann::json interaction = {
          {"interaction_id", rng.uuid_v4()},
          {"input_data", {{"raw_prompt", is_code ? code[i % 3] : prose[i % 3]}}}};
      promptlearn::Decision d = engine.select_template(interaction);
      interaction["enhancement_data"] = {{"selected_template", d.chosen.template_id},
                                         {"template_version", d.chosen.version}};
      engine.record(interaction);
      // The hidden truth of this example: structured helps code, hurts prose.
      const bool good = (d.chosen.template_id == "structured_task") == is_code;
      const double quality = std::clamp(rng.normal(good ? 8.5 : 5.0, 1.0), 0.0, 10.0);
      engine.record(nlohmann::json{{"interaction_id", interaction["interaction_id"]},
                                   {"outcome_data", {{"response_quality_score", quality}}}});
    }
    promptlearn::JobsReport jobs = engine.run_due_jobs(clock.now_ms());
    std::cout << "day " << day + 1 << ": live policy v" << engine.policy().live_version();
    if (jobs.gate) std::cout << " — gate: " << jobs.gate->reason;
    std::cout << "\n";
    clock.advance(24 * 3600 * 1000 - 120 * 60000);
  }
  auto show = [&](const char* prompt) {
    nlohmann::json doc = {{"interaction_id", rng.uuid_v4()}, {"input_data", {{"raw_prompt", prompt}}}};
    promptlearn::Decision d = engine.select_template(doc);
    std::cout << "  \"" << prompt << "\" -> " << d.chosen.template_id << " (top: " << d.ranked[0].template_id
              << ", p = " << d.ranked[0].probability << ")\n";
    return d.ranked[0].template_id;
  };
  std::cout << "after learning:\n";
  bool ok = show("Fix the segfault in parser.cpp") == "structured_task";
  ok = show("Write a short story about a lighthouse keeper") == "plain" && ok;
  engine.close();
  return ok && engine.policy().live_version() > 0 ? 0 : 1;
}
