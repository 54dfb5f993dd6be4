// `promptlearn select`, `templates`, `jobs`, `rollback`: template selection from the command line.
#include <fmt/format.h>

#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"

namespace promptlearn::cli {

int run_select(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn select --db FILE < interaction.json\n"
                 "Reads one interaction (a wire document with input_data) on stdin, chooses a template with the\n"
                 "live policy, logs the decision and prints it as JSON. With --record the interaction itself is\n"
                 "recorded first.\n";
    return 0;
  }
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  LearningEngine engine(require_db(args), Config::defaults());
  if (args.has("record")) {
    auto r = engine.record(std::string_view(text));
    if (!r.accepted) throw ValidationError(r.field, r.error.substr(r.field.empty() ? 0 : r.field.size() + 2));
  }
  Decision d = engine.select_template(std::string_view(text));
  engine.close();
  std::cout << to_json(d).dump(args.has("human") ? 2 : -1) << std::endl;
  return 0;
}

int run_templates(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn templates --db FILE [--add ID@VERSION [--body TEXT] [--parent ID@VERSION]]\n"
                 "                                      [--retire ID@VERSION]\n"
                 "Adds or retires a template version, then prints the active templates as JSON.\n";
    return 0;
  }
  LearningEngine engine(require_db(args), Config::defaults());
  auto split = [](const std::string& key, const char* option) {
    auto at = key.rfind('@');
    if (at == std::string::npos || at == 0 || at + 1 == key.size())
      throw std::invalid_argument(fmt::format("option '--{}': '{}' is not ID@VERSION", option, key));
    return std::make_pair(key.substr(0, at), key.substr(at + 1));
  };
  if (auto add = args.get("add")) {
    auto [id, version] = split(*add, "add");
    std::string pid, pversion;
    if (auto parent = args.get("parent")) std::tie(pid, pversion) = split(*parent, "parent");
    engine.register_template(id, version, args.get_or("body", ""), pid, pversion);
  }
  if (auto retire = args.get("retire")) {
    auto [id, version] = split(*retire, "retire");
    if (!engine.retire_template(id, version))
      throw ValidationError("retire", fmt::format("template \"{}\" is not known", *retire));
  }
  std::cout << nlohmann::json{{"active", engine.policy().templates()},
                              {"policy_version", engine.policy().live_version()}}
                   .dump()
            << std::endl;
  return 0;
}

int run_jobs(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn jobs --db FILE [--now RFC3339] [--human]\n"
                 "Runs the scheduled work that is due (learning from rewards, the rollback watch, the\n"
                 "deployment gate, patterns, model retraining, tuning, metric rollups and alerts, retention)\n"
                 "and prints what ran as JSON (--human: one line per job).\n";
    return 0;
  }
  LearningEngine engine(require_db(args), Config::defaults());
  const TimeMs now = now_option(args).value_or(engine.clock().now_ms());
  const JobsReport r = engine.run_due_jobs(now);
  if (!args.has("human")) {
    std::cout << to_json(r).dump() << std::endl;
    return 0;
  }
  std::cout << "ran: " << fmt::format("{}", fmt::join(r.ran, ", ")) << "\n";
  if (r.learn)
    std::cout << fmt::format("  learn      {} learned, {} defaulted, {} held out, {} waiting for an outcome\n",
                             r.learn->learned, r.learn->defaulted, r.learn->held_out, r.learn->waiting);
  if (r.rolled_back) std::cout << "  watch      rolled back to the previous policy\n";
  if (r.gate) std::cout << "  gate       " << r.gate->reason << "\n";
  if (r.patterns_written) std::cout << fmt::format("  patterns   {} rows written\n", r.patterns_written);
  if (r.models) std::cout << fmt::format("  models     trained: {}\n", fmt::join(r.models->trained, ", "));
  if (r.tuning) std::cout << "  tuning     " << to_json(*r.tuning).dump() << "\n";
  if (r.rollup_hours || r.alerts_fired)
    std::cout << fmt::format("  rollups    {} hours, {} alerts fired\n", r.rollup_hours, r.alerts_fired);
  if (r.retention) std::cout << "  retention  " << to_json(*r.retention)["deleted"].dump() << "\n";
  for (const auto& job : r.leased_elsewhere) std::cout << "  " << job << ": running in another process\n";
  for (const auto& [job, error] : r.failed) std::cout << "  " << job << " FAILED: " << error << "\n";
  return 0;
}

int run_rollback(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn rollback --db FILE [--reason TEXT]\n"
                 "Restores the previous template-selection checkpoint (the live one is retired).\n";
    return 0;
  }
  LearningEngine engine(require_db(args), Config::defaults());
  const std::int64_t from = engine.policy().live_version();
  if (!engine.rollback(args.get_or("reason", "requested from the command line")))
    throw Error("there is no deployed policy to roll back");
  std::cout << nlohmann::json{{"rolled_back_from", from}, {"live_version", engine.policy().live_version()}}.dump()
            << std::endl;
  return 0;
}

}  // namespace promptlearn::cli
