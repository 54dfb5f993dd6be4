// promptlearn purge / erase-user / export-user: the data lifecycle of a database file.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"

namespace promptlearn::cli {
namespace {

/// The configuration, with --key-file as learning.privacy.key_file when given.
Config config_with_key(const Args& args) {
  Config c = load_config(args);
  if (auto k = args.get("key-file")) c.learning.privacy.key_file = *k;
  return c;
}

std::string require_user(const Args& args) {
  auto u = args.get("user");
  if (!u || u->empty()) throw std::invalid_argument("--user ID is required");
  return *u;
}

}  // namespace

int run_purge(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn purge --db FILE [--config FILE] [--now RFC3339] [--human]\n"
                 "Deletes what is older than the configuration's data_retention (interactions and what hangs on\n"
                 "them, rejected events, hourly rollups, alerts, job runs, patterns, surplus checkpoints),\n"
                 "overwriting the deleted content (secure_delete) and returning free pages to the file system.\n"
                 "Prints what was deleted as JSON; the run is written to audit_log.\n";
    return 0;
  }
  std::optional<ManualClock> fixed;
  EngineOptions eo;
  fix_clock(args, fixed, eo);
  LearningEngine engine(require_db(args), load_config(args), eo);
  const RetentionReport r = engine.run_retention(engine.clock().now_ms());
  engine.close();
  std::cout << to_json(r).dump(args.has("human") ? 2 : -1) << std::endl;
  return 0;
}

int run_erase_user(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn erase-user --db FILE --user ID [--key-file FILE] [--config FILE] [--human]\n"
                 "Deletes every stored row of one user (ID as the host gave it, hashed with the file's key, or\n"
                 "the stored hash), takes their learned decisions out of every policy checkpoint, marks the\n"
                 "predictive models for retraining, and truncates the write-ahead log. Prints what was done.\n";
    return 0;
  }
  LearningEngine engine(require_db(args), config_with_key(args));
  const EraseReport r = engine.erase_user(require_user(args));
  engine.close();
  std::cout << to_json(r).dump(args.has("human") ? 2 : -1) << std::endl;
  return 0;
}

int run_export_user(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn export-user --db FILE --user ID [--key-file FILE] [--config FILE] [--human]\n"
                 "Prints every stored row of one user as one JSON document (encrypted text decrypted when the\n"
                 "key is available). The export is written to audit_log.\n";
    return 0;
  }
  LearningEngine engine(require_db(args), config_with_key(args));
  const nlohmann::json j = engine.export_user(require_user(args));
  engine.close();
  std::cout << j.dump(args.has("human") ? 2 : -1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  return 0;
}

}  // namespace promptlearn::cli
