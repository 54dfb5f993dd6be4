// promptlearn tune: ask/tell parameter tuning studies kept in a database file (lifecycle/tuning.hpp).
#include <fmt/format.h>

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

}  // namespace

int run_tune(const Args& args) {
  if (args.has("help")) {
    std::cout
        << "usage: promptlearn tune --db FILE --study NAME --ask [--space JSON] [--maximize]\n"
           "       promptlearn tune --db FILE --study NAME --tell --params JSON --value NUMBER\n"
           "       promptlearn tune --db FILE --study NAME --status\n"
           "Bayesian optimisation by ask and tell, the study kept in the file (tables studies, study_trials).\n"
           "--ask prints {\"study\", \"trial\", \"params\"}: the parameters to try next. The first ask creates the\n"
           "study from --space, e.g. '{\"parameters\": [{\"name\": \"alpha\", \"kind\": \"continuous\", \"low\": 0.01,\n"
           "\"high\": 3, \"log_scale\": true}, {\"name\": \"mode\", \"kind\": \"categorical\", \"choices\": [\"a\", \"b\"]}]}'\n"
           "(kinds: continuous, integer, categorical); the study minimises the values told unless --maximize.\n"
           "--tell reports the value of parameters asked before (--params: the \"params\" object printed by --ask).\n"
           "--status prints the trials and the best so far.\n";
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
    std::cout << engine.tuner().ask(*study, space, args.has("maximize")).dump() << std::endl;
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
    std::cout << engine.tuner().status(*study).dump() << std::endl;
  } else {
    std::cout << engine.tuner().status(*study).dump() << std::endl;
  }
  engine.close();
  return 0;
}

}  // namespace promptlearn::cli
