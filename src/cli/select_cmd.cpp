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
#include "promptlearn/store/database.hpp"

namespace promptlearn::cli {

namespace {

/// select --human: the choice in one line, the policy, then every template ranked.
void print_decision_human(const Decision& d) {
  std::cout << fmt::format("interaction {}: chose {}@{} with probability {}{}\n", d.interaction_id,
                           d.chosen.template_id, d.chosen.version, human_number(d.propensity),
                           d.explored ? " (explored)" : "");
  std::cout << fmt::format("policy {} v{}, confidence {}, decision {}\n\n", d.policy_name, d.policy_version,
                           human_number(d.confidence),
                           d.decision_id ? std::to_string(d.decision_id) : std::string("not written yet"));
  TextTable t({"rank", "template", "version", "probability", "score", "chosen"});
  int rank = 0;
  for (const auto& r : d.ranked) {
    const bool chosen = r.template_id == d.chosen.template_id && r.version == d.chosen.version;
    t.add_row({++rank, r.template_id, r.version, r.probability, r.score, chosen ? "*" : ""});
  }
  std::cout << t.str();
}

/// templates --human: every template version in the file (active, candidate, retired) with the decisions
/// that chose it, read after the engine is closed.
void print_templates_human(const std::string& path, std::int64_t policy_version) {
  store::Database db = store::open_read_only(path);
  store::Statement q(db, R"SQL(
SELECT t.template_id, t.version, t.status, coalesce(t.parent_id || '@' || t.parent_version, ''), t.created_at,
       coalesce(d.n, 0)
FROM templates t
LEFT JOIN (SELECT chosen_template, chosen_version, count(*) AS n FROM decisions GROUP BY 1, 2) d
       ON d.chosen_template = t.template_id AND d.chosen_version = t.version
ORDER BY t.status = 'retired', t.template_id, t.version
)SQL");
  TextTable t({"template", "version", "status", "parent", "created", "decisions"});
  std::size_t active = 0;
  while (q.step()) {
    const std::string status = q.column_text(2);
    active += status == "active";
    t.add_row({q.column_text(0), q.column_text(1), status, q.column_text(3), q.column_text(4), q.column_int64(5)});
  }
  std::cout << fmt::format("{} active template{}, live policy version {}\n\n", active, active == 1 ? "" : "s",
                           policy_version);
  std::cout << t.str();
}

}  // namespace

int run_select(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn select --db FILE [--record] [--human] < interaction.json\n"
                 "Reads one interaction (a wire document with input_data) on stdin, chooses a template with the\n"
                 "live policy, logs the decision and prints it as JSON (--human: the choice and a table of the\n"
                 "ranked templates). With --record the interaction itself is recorded first.\n";
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
  if (args.has("human")) print_decision_human(d);
  else std::cout << to_json(d).dump() << std::endl;
  return 0;
}

int run_templates(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn templates --db FILE [--add ID@VERSION [--body TEXT] [--parent ID@VERSION]]\n"
                 "                           [--retire ID@VERSION] [--human]\n"
                 "Adds or retires a template version, then prints the active templates and the live policy\n"
                 "version as JSON (--human: a table of every template version with its status, parent,\n"
                 "creation time and the decisions that chose it).\n";
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
  if (args.has("human")) {
    const std::int64_t version = engine.policy().live_version();
    engine.close();
    print_templates_human(require_db(args), version);
    return 0;
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
  if (r.tuning) {
    if (!r.tuning->skipped.empty())
      std::cout << "  tuning     skipped: " << r.tuning->skipped << "\n";
    else
      std::cout << fmt::format("  tuning     {} evaluations: best {} -> {} (95% CI {} .. {}), configured {}\n",
                               r.tuning->evaluations, human_value(r.tuning->best_params),
                               human_number(r.tuning->best_value), human_number(r.tuning->best_ci_low),
                               human_number(r.tuning->best_ci_high), human_number(r.tuning->configured_value));
  }
  if (r.rollup_hours || r.alerts_fired)
    std::cout << fmt::format("  rollups    {} hours, {} alerts fired\n", r.rollup_hours, r.alerts_fired);
  if (r.retention) std::cout << "  retention  deleted " << human_value(to_json(*r.retention)["deleted"]) << "\n";
  for (const auto& job : r.leased_elsewhere) std::cout << "  " << job << ": running in another process\n";
  for (const auto& [job, error] : r.failed) std::cout << "  " << job << " FAILED: " << error << "\n";
  return 0;
}

int run_rollback(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn rollback --db FILE [--reason TEXT] [--human]\n"
                 "Restores the previous template-selection checkpoint (the live one is retired) and prints\n"
                 "{\"rolled_back_from\", \"live_version\"} as JSON (--human: one line). --reason is written to\n"
                 "audit_log.\n";
    return 0;
  }
  LearningEngine engine(require_db(args), Config::defaults());
  const std::int64_t from = engine.policy().live_version();
  if (!engine.rollback(args.get_or("reason", "requested from the command line")))
    throw Error("there is no deployed policy to roll back");
  const std::int64_t live = engine.policy().live_version();
  if (args.has("human"))
    std::cout << fmt::format("rolled back from policy version {}; live version now {}\n", from, live);
  else
    std::cout << nlohmann::json{{"rolled_back_from", from}, {"live_version", live}}.dump() << std::endl;
  return 0;
}

}  // namespace promptlearn::cli
