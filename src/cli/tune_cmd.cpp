// promptlearn tune: ask/tell parameter tuning studies kept in a database file (lifecycle/tuning.hpp).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "promptlearn/engine.hpp"

namespace promptlearn::cli {

namespace {

nlohmann::json parse_json_option(const Args& args, const char* name) {
  const auto text = args.get(name);
  if (!text) throw std::invalid_argument(fmt::format("option '--{}' is required here", name));
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) throw std::invalid_argument(fmt::format("option '--{}': '{}' is not JSON", name, *text));
  return j;
}

/// tune --ask --human: the trial and its parameters, and how to tell its value.
void print_ask_human(const nlohmann::json& j) {
  std::cout << fmt::format("study {}, trial {}: try\n", j.value("study", ""), human_value(j["trial"]));
  std::cout << render_human(j["params"], "  ");
  std::cout << "tell its value with: --tell --params '" << j["params"].dump() << "' --value NUMBER\n";
}

/// tune --status/--tell --human: the study, the best so far and a table of the trials.
void print_status_human(const nlohmann::json& j) {
  std::cout << fmt::format("study {}: {} evaluations{}\n", j.value("study", ""), human_value(j["evaluations"]),
                           j.value("done", false) ? ", done" : "");
  const nlohmann::json best = j.value("best", nlohmann::json());
  if (best.is_object() && best.contains("value"))
    std::cout << fmt::format("best {} at {}\n", human_value(best["value"]), human_value(best.value("params", nlohmann::json::object())));
  else
    std::cout << "best: none yet\n";
  const nlohmann::json trials = j.value("trials", nlohmann::json::array());
  if (trials.empty()) return;
  // Columns: trial, each parameter (in the order of the first trial that has them), value, times.
  std::vector<std::string> params;
  for (const auto& t : trials) {
    const nlohmann::json p = t.value("params", nlohmann::json::object());
    for (const auto& [k, v] : p.items())
      if (std::find(params.begin(), params.end(), k) == params.end()) params.push_back(k);
  }
  std::vector<std::string> header{"trial"};
  header.insert(header.end(), params.begin(), params.end());
  for (const char* h : {"value", "asked_at", "told_at"}) header.emplace_back(h);
  TextTable table(header);
  for (const auto& t : trials) {
    std::vector<nlohmann::json> row{t.value("trial", nlohmann::json())};
    const auto p = t.value("params", nlohmann::json::object());
    for (const auto& k : params) row.push_back(p.value(k, nlohmann::json("")));
    for (const char* h : {"value", "asked_at", "told_at"}) row.push_back(t.value(h, nlohmann::json()));
    table.add_row(row);
  }
  std::cout << "\n" << table.str();
}

}  // namespace

int run_tune(const Args& args) {
  if (args.has("help")) {
    std::cout
        << "usage: promptlearn tune --db FILE --study NAME --ask [--space JSON] [--maximize] [--human]\n"
           "       promptlearn tune --db FILE --study NAME --tell --params JSON --value NUMBER [--human]\n"
           "       promptlearn tune --db FILE --study NAME --status [--human]\n"
           "Bayesian optimisation by ask and tell, the study kept in the file (tables studies, study_trials).\n"
           "--ask prints {\"study\", \"trial\", \"params\"}: the parameters to try next. The first ask creates the\n"
           "study from --space, e.g. '{\"parameters\": [{\"name\": \"alpha\", \"kind\": \"continuous\", \"low\": 0.01,\n"
           "\"high\": 3, \"log_scale\": true}, {\"name\": \"mode\", \"kind\": \"categorical\", \"choices\": [\"a\", \"b\"]}]}'\n"
           "(kinds: continuous, integer, categorical); the study minimises the values told unless --maximize.\n"
           "--tell reports the value of parameters asked before (--params: the \"params\" object printed by --ask).\n"
           "--status prints the trials and the best so far (so does --tell, after recording the value).\n"
           "--human: readable text instead of JSON (--status: a table of the trials).\n";
    return 0;
  }
  const std::string db = require_db(args);
  const auto study = args.get("study");
  if (!study || study->empty()) throw std::invalid_argument("option '--study' is required");
  const int modes = (args.has("ask") ? 1 : 0) + (args.has("tell") ? 1 : 0) + (args.has("status") ? 1 : 0);
  if (modes != 1) throw std::invalid_argument("give exactly one of --ask, --tell, --status");
  LearningEngine engine(db, Config::defaults());
  if (args.has("ask")) {
    std::optional<nlohmann::json> space;
    if (args.get("space")) space = parse_json_option(args, "space");
    const nlohmann::json j = engine.tuner().ask(*study, space, args.has("maximize"));
    if (args.has("human")) print_ask_human(j);
    else std::cout << j.dump() << std::endl;
  } else if (args.has("tell")) {
    const nlohmann::json params = parse_json_option(args, "params");
    const auto text = args.get("value");
    if (!text) throw std::invalid_argument("option '--value' is required with --tell");
    double value = 0;
    try {
      std::size_t used = 0;
      value = std::stod(*text, &used);
      if (used != text->size()) throw std::invalid_argument("trailing characters");
    } catch (const std::exception&) {
      throw std::invalid_argument(fmt::format("option '--value': '{}' is not a number", *text));
    }
    engine.tuner().tell(*study, params, value);
  }
  if (!args.has("ask")) {
    const nlohmann::json j = engine.tuner().status(*study);
    if (args.has("human")) print_status_human(j);
    else std::cout << j.dump() << std::endl;
  }
  engine.close();
  return 0;
}

}  // namespace promptlearn::cli
