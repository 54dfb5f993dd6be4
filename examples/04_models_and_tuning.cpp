// 04: the predictive models and a tuning study on top of the learning loop of example 03.
// After a few simulated days, the quality predictor (trained on the logged decisions and outcomes)
// predicts which template serves a new prompt better, and a Bayesian-optimisation study, kept in the
// file, is driven by ask/tell as a host would over days of traffic.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "promptlearn/promptlearn.hpp"

int main() {
  const char* path = "example_04.db";
  for (const char* s : {"", "-wal", "-shm"}) std::remove((std::string(path) + s).c_str());

  promptlearn::ManualClock clock(*promptlearn::try_parse_rfc3339("2026-03-02T00:00:00Z"));
  promptlearn::EngineOptions options;
  options.clock = &clock;
  promptlearn::Config config = promptlearn::Config::defaults();
  config.learning.data_collection.mode = promptlearn::CollectionMode::buffered;
  promptlearn::LearningEngine engine(path, config, options);
  engine.register_template("plain", "1", "{prompt}");
  engine.register_template("structured_task", "1", "Task: {prompt}\nConstraints: ...\nOutput format: ...");

  // The loop of example 03: structured helps code prompts, hurts prose.
  promptlearn::Rng rng(11);
  const char* code[] = {"Fix the segfault in parser.cpp", "Refactor the async HTTP client in client.py",
                        "Write unit tests for the JSON decoder"};
  const char* prose[] = {"Write a short story about a lighthouse keeper", "Draft an email announcing our offsite",
                         "Proofread my essay on the printing press"};
  for (int i = 0; i < 600; ++i) {
    clock.advance(60000);
    const bool is_code = rng.bernoulli(0.5);
    nlohmann::json interaction = {{"interaction_id", rng.uuid_v4()},
                                  {"input_data", {{"raw_prompt", is_code ? code[i % 3] : prose[i % 3]}}}};
    const promptlearn::Decision d = engine.select_template(interaction);
    interaction["enhancement_data"] = {{"selected_template", d.chosen.template_id}, {"template_version", d.chosen.version}};
    engine.record(interaction);
    const bool good = (d.chosen.template_id == "structured_task") == is_code;
    engine.record(nlohmann::json{{"interaction_id", interaction["interaction_id"]},
                                 {"outcome_data", {{"response_quality_score", std::clamp(rng.normal(good ? 8.5 : 5.0, 1.0), 0.0, 10.0)}}}});
  }
  engine.run_due_jobs(clock.now_ms());  // learns the rewards; the model job trains (enough rows now)

  // 1. Predicted quality of each template for a new prompt, with its 90% interval.
  const nlohmann::json fresh = {{"interaction_id", rng.uuid_v4()}, {"input_data", {{"raw_prompt", "Fix the segfault in parser.cpp"}}}};
  double structured = 0, plain = 0;
  for (const char* t : {"plain", "structured_task"}) {
    const auto q = engine.predict_quality(fresh, t);
    if (!q) return 1;
    std::cout << t << ": predicted quality " << q->predicted_quality << " (90% interval " << q->ci_low << " .. "
              << q->ci_high << ")\n";
    (std::string(t) == "plain" ? plain : structured) = q->predicted_quality;
  }

  // 2. A study kept in the file: ask, run with the parameters (here: a formula standing in for a day of
  // traffic), tell; any process can continue it.
  const nlohmann::json space = nlohmann::json::parse(
      R"({"parameters": [{"name": "temperature", "kind": "continuous", "low": 0.1, "high": 2.0, "log_scale": true}]})");
  for (int k = 0; k < 15; ++k) {
    const nlohmann::json a = engine.tuner().ask("temperature", k == 0 ? std::optional<nlohmann::json>(space) : std::nullopt, true);
    const double t = a["params"]["temperature"].get<double>();
    engine.tuner().tell("temperature", a["params"], 0.8 - std::pow(std::log(t / 0.7), 2));  // best at 0.7
  }
  const nlohmann::json best = engine.tuner().status("temperature")["best"];
  std::cout << "best temperature after 15 days of trials: " << best["params"]["temperature"] << " (value "
            << best["value"] << ")\n";
  engine.close();
  const double found = best["params"]["temperature"].get<double>();
  return structured > plain && std::fabs(std::log(found / 0.7)) < 0.1 ? 0 : 1;
}
