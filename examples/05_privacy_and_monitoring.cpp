// 05: privacy, monitoring and the data lifecycle. Users are stored only as keyed hashes, prompts encrypted
// at rest and scrubbed of PII; the hourly rollup job keeps latency percentiles that outlive the raw rows; an
// alert reaches the host when the pipeline slows down; one user's data is exported, then erased -- from
// the rows and from what the policy learned.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "promptlearn/promptlearn.hpp"

int main() {
  const char* path = "example_05.db";
  for (const char* s : {"", "-wal", "-shm", ".key"}) std::remove((std::string(path) + s).c_str());

  promptlearn::ManualClock clock(*promptlearn::try_parse_rfc3339("2026-03-02T00:00:00Z"));
  promptlearn::EngineOptions options;
  options.clock = &clock;
  // The host's master key (in production: from a secret store; here a fixed one for the example).
  options.privacy_key = "8f1c2a4b6d8e0f1a3c5e7092b4d6f8a0c2e4f6a8b0d2f4a6c8e0a2c4e6f8a0b2";
  int alerts = 0;
  options.on_alert = [&alerts](const nlohmann::json& a) {
    ++alerts;
    std::cout << "ALERT " << a["severity"] << ": " << a["message"].get<std::string>() << "\n";
  };
  promptlearn::Config config = promptlearn::Config::defaults();
  config.learning.privacy.encrypt_text = true;
  config.learning.privacy.scrub_pii = true;
  promptlearn::LearningEngine engine(path, config, options);
  engine.register_template("plain", "1", "{prompt}");
  engine.register_template("structured_task", "1", "Task: {prompt}\nConstraints: ...");

  // Two days of traffic from three users; from 10:00 to 12:00 on the second day the pipeline is slow.
  promptlearn::Rng rng(5);
  const char* users[] = {"ana@example.org", "ben@example.org", "chen@example.org"};
  for (int hour = 0; hour < 48; ++hour) {
    for (int i = 0; i < 20; ++i) {
      clock.set(*promptlearn::try_parse_rfc3339("2026-03-02T00:00:00Z") + hour * 3600000LL + i * 170000LL);
      const std::string user = users[i % 3];
      nlohmann::json interaction = {
          {"interaction_id", rng.uuid_v4()},
          {"user_id", user},
          {"input_data", {{"raw_prompt", "Review the deploy script, and mail the result to " + user}}}};
      const promptlearn::Decision d = engine.select_template(interaction);
      interaction["enhancement_data"] = {{"selected_template", d.chosen.template_id}, {"template_version", d.chosen.version}};
      engine.record(interaction);
      const bool slow = hour >= 34 && hour < 36;
      engine.record(nlohmann::json{{"interaction_id", interaction["interaction_id"]},
                                   {"performance_metrics", {{"total_processing_time_ms", rng.normal(slow ? 2500 : 180, 30)}}},
                                   {"outcome_data", {{"response_quality_score", rng.normal(7, 1)}}}});
    }
    clock.set(*promptlearn::try_parse_rfc3339("2026-03-02T00:00:00Z") + (hour + 1) * 3600000LL);
    engine.run_due_jobs(clock.now_ms());  // learning, patterns, the hourly metric rollups and alert rules...
  }

  // What is stored: a keyed hash for the user, ciphertext for the prompt.
  const nlohmann::json ana = engine.export_user("ana@example.org");
  std::cout << "ana is stored as " << ana["user_id"].get<std::string>() << "; " << ana["interactions"].size()
            << " interactions; her first prompt, decrypted and scrubbed: "
            << ana["interactions"][0]["raw_prompt"].get<std::string>() << "\n";

  // Latency percentiles of the second day, from the hourly rollups.
  const nlohmann::json m = engine.metrics(*promptlearn::try_parse_rfc3339("2026-03-03T00:00:00Z"), clock.now_ms());
  const auto& total = m["metrics"]["latency_ms"]["total"];
  std::cout << "day 2: " << m["metrics"]["requests"] << " requests, total latency p50 " << total["p50"] << " ms, p99 "
            << total["p99"] << " ms (from " << m["sources"]["rollup_hours"] << " hourly rollups)\n";

  // Ana asks to be forgotten: her rows go, and the policy forgets her decisions by exact downdates.
  const promptlearn::EraseReport erased = engine.erase_user("ana@example.org");
  std::cout << "erased: " << erased.interactions << " interactions, " << erased.policy.downdates
            << " policy downdates over " << erased.policy.checkpoints << " checkpoint(s)\n";
  const bool ok = alerts >= 1 && erased.interactions == 336 && engine.export_user("ana@example.org")["interactions"].empty() &&
                  ana["interactions"][0]["raw_prompt"].get<std::string>().find("[EMAIL]") != std::string::npos &&
                  engine.integrity_check() == "ok";
  std::cout << (ok ? "ok" : "FAILED") << "\n";
  return ok ? 0 : 1;
}
