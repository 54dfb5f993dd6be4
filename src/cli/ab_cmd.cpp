// `promptlearn ab`: A/B experiments from the command line.
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/engine.hpp"

namespace promptlearn::cli {

namespace {

/// ab --report --human: the experiment, a table of arms, the comparisons and the verdict.
void print_report_human(const nlohmann::json& j) {
  const auto& cfg = j["config"];
  std::cout << fmt::format("experiment {} ({}): metric {}, alpha {}, at least {} rewards per arm\n",
                           j.value("experiment_id", ""), j.value("status", ""), human_value(cfg.value("metric", nlohmann::json())),
                           human_value(cfg.value("alpha", nlohmann::json())),
                           human_value(cfg.value("min_samples_per_arm", nlohmann::json())));
  std::cout << fmt::format("{} assigned, {} with an outcome\n\n", human_value(j["assigned"]),
                           human_value(j["with_outcome"]));
  TextTable arms({"arm", "weight", "assigned", "n", "mean", "stddev", "successes", "success_rate"});
  const auto& stats = j["arms"];
  auto add = [&](const std::string& name) {
    const auto& a = stats[name];
    arms.add_row({name, a.value("weight", nlohmann::json()), a.value("assigned", nlohmann::json()),
                  a.value("n", nlohmann::json()), a.value("mean", nlohmann::json()), a.value("stddev", nlohmann::json()),
                  a.value("successes", nlohmann::json()), a.value("success_rate", nlohmann::json())});
  };
  std::vector<std::string> seen;
  for (const auto& arm : cfg.value("arms", nlohmann::json::array()))  // configuration order
    if (arm.contains("name") && stats.contains(arm["name"].get<std::string>())) {
      seen.push_back(arm["name"].get<std::string>());
      add(seen.back());
    }
  for (const auto& [name, a] : stats.items())
    if (std::find(seen.begin(), seen.end(), name) == seen.end()) add(name);
  std::cout << arms.str() << "\n";
  const auto& comparisons = j["comparisons"];
  if (comparisons.empty()) {
    std::cout << "comparisons: none yet (too few rewards)\n";
  } else {
    TextTable c({"comparison", "difference", "ci_low", "ci_high", "p_value", "statistic", "df"});
    for (const auto& r : comparisons)
      c.add_row({fmt::format("{} - {}", r.value("arm_a", ""), r.value("arm_b", "")), r["difference"], r["ci_low"],
                 r["ci_high"], r["p_value"], r["statistic"], r["df"]});
    std::cout << c.str();
  }
  const auto& v = j["verdict"];
  std::cout << fmt::format("\nverdict: winner {}, p {}: {}\n", v.value("winner", ""), human_value(v["p_value"]),
                           v.value("reason", ""));
}

}  // namespace

int run_ab(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn ab --db FILE --create CONFIG_JSON\n"
                 "       promptlearn ab --db FILE --assign EXPERIMENT --unit UNIT_ID --interaction ID\n"
                 "       promptlearn ab --db FILE --report EXPERIMENT\n"
                 "       promptlearn ab --db FILE --stop EXPERIMENT\n"
                 "       promptlearn ab --db FILE            (lists the running experiments)\n"
                 "CONFIG_JSON: {\"experiment_id\": ..., \"arms\": [{\"name\": \"A\", \"weight\": 1}, ...],\n"
                 "              \"metric\": \"mean\"|\"proportion\", \"alpha\": 0.05, \"min_samples_per_arm\": 100}\n"
                 "Prints the result as JSON; --human prints readable text instead (--report: a table of arms, the\n"
                 "comparisons and the verdict).\n";
    return 0;
  }
  LearningEngine engine(require_db(args), Config::defaults());
  auto& ex = engine.experiments();
  const bool human = args.has("human");
  if (auto cfg = args.get("create")) {
    nlohmann::json j = nlohmann::json::parse(*cfg, nullptr, false);
    if (j.is_discarded()) throw ConfigError("create", "is not valid JSON");
    ex.create(experiment_config_from_json(j));
    if (human) std::cout << "created experiment " << j.value("experiment_id", "") << "\n";
    else std::cout << nlohmann::json{{"created", j.value("experiment_id", "")}}.dump() << std::endl;
  } else if (auto id = args.get("assign")) {
    auto unit = args.get("unit"), interaction = args.get("interaction");
    if (!unit || !interaction) throw std::invalid_argument("--assign needs --unit and --interaction");
    const std::string arm = ex.assign(*id, *unit, *interaction);
    if (human)
      std::cout << fmt::format("experiment {}: unit {} is in arm {} (interaction {})\n", *id, *unit, arm, *interaction);
    else std::cout << nlohmann::json{{"experiment_id", *id}, {"arm", arm}}.dump() << std::endl;
  } else if (auto id = args.get("report")) {
    const nlohmann::json j = to_json(ex.report(*id));
    if (human) print_report_human(j);
    else std::cout << j.dump() << std::endl;
  } else if (auto id = args.get("stop")) {
    ex.stop(*id);
    if (human) std::cout << "stopped experiment " << *id << "\n";
    else std::cout << nlohmann::json{{"stopped", *id}}.dump() << std::endl;
  } else {
    const auto running = ex.experiments(true);
    if (!human) std::cout << nlohmann::json{{"running", running}}.dump() << std::endl;
    else if (running.empty()) std::cout << "no running experiments\n";
    else std::cout << fmt::format("running experiments ({}): {}\n", running.size(), fmt::join(running, ", "));
  }
  return 0;
}

}  // namespace promptlearn::cli
