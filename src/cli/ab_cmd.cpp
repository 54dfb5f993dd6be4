// `promptlearn ab`: A/B experiments from the command line.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/engine.hpp"

namespace promptlearn::cli {

int run_ab(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn ab --db FILE --create CONFIG_JSON\n"
                 "       promptlearn ab --db FILE --assign EXPERIMENT --unit UNIT_ID --interaction ID\n"
                 "       promptlearn ab --db FILE --report EXPERIMENT\n"
                 "       promptlearn ab --db FILE --stop EXPERIMENT\n"
                 "       promptlearn ab --db FILE            (lists the running experiments)\n"
                 "CONFIG_JSON: {\"experiment_id\": ..., \"arms\": [{\"name\": \"A\", \"weight\": 1}, ...],\n"
                 "              \"metric\": \"mean\"|\"proportion\", \"alpha\": 0.05, \"min_samples_per_arm\": 100}\n";
    return 0;
  }
  LearningEngine engine(require_db(args), Config::defaults());
  auto& ex = engine.experiments();
  if (auto cfg = args.get("create")) {
    nlohmann::json j = nlohmann::json::parse(*cfg, nullptr, false);
    if (j.is_discarded()) throw ConfigError("create", "is not valid JSON");
    ex.create(experiment_config_from_json(j));
    std::cout << nlohmann::json{{"created", j.value("experiment_id", "")}}.dump() << std::endl;
  } else if (auto id = args.get("assign")) {
    auto unit = args.get("unit"), interaction = args.get("interaction");
    if (!unit || !interaction) throw std::invalid_argument("--assign needs --unit and --interaction");
    std::cout << nlohmann::json{{"experiment_id", *id}, {"arm", ex.assign(*id, *unit, *interaction)}}.dump()
              << std::endl;
  } else if (auto id = args.get("report")) {
    std::cout << to_json(ex.report(*id)).dump(args.has("human") ? 2 : -1) << std::endl;
  } else if (auto id = args.get("stop")) {
    ex.stop(*id);
    std::cout << nlohmann::json{{"stopped", *id}}.dump() << std::endl;
  } else {
    std::cout << nlohmann::json{{"running", ex.experiments(true)}}.dump() << std::endl;
  }
  return 0;
}

}  // namespace promptlearn::cli
