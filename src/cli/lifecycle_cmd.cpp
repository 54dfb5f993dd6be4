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

/// The "deleted" object of a retention or erasure report as a table of (table, rows), with a total.
void print_deleted(const nlohmann::json& deleted) {
  TextTable t({"table", "rows deleted"});
  std::int64_t total = 0;
  for (const auto& [table, n] : deleted.items()) {
    t.add_row({table, n});
    if (n.is_number_integer()) total += n.get<std::int64_t>();
  }
  t.add_row({"total", total});
  std::cout << t.str();
}

/// purge --human: the cut-offs and the pages freed, then a table of what was deleted.
void print_retention_human(const nlohmann::json& j) {
  nlohmann::json rest = j;
  rest.erase("deleted");
  std::cout << render_human(rest) << "\n";
  print_deleted(j["deleted"]);
}

/// erase-user --human: what was deleted, then the rest of the report (policy downdates, retraining...).
void print_erase_human(const nlohmann::json& j) {
  print_deleted(j["deleted"]);
  nlohmann::json rest = j;
  rest.erase("deleted");
  std::cout << "\n" << render_human(rest);
}

/// export-user --human: the user and the export's time, then per table its row count and its rows.
void print_export_human(const nlohmann::json& j) {
  nlohmann::json scalars = nlohmann::json::object();
  for (const auto& [k, v] : j.items())
    if (!v.is_array() && !v.is_object()) scalars[k] = v;
  std::cout << render_human(scalars);
  for (const auto& [k, v] : j.items()) {
    if (v.is_object()) {
      std::cout << "\n" << k << "\n" << render_human(v, "  ");
    } else if (v.is_array()) {
      std::cout << fmt::format("\n{} ({} {})\n", k, v.size(), v.size() == 1 ? "row" : "rows");
      if (!v.empty()) std::cout << table_of(v).str("  ");
    }
  }
}

}  // namespace

int run_purge(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn purge --db FILE [--config FILE] [--now RFC3339] [--human]\n"
                 "Deletes what is older than the configuration's data_retention (interactions and what hangs on\n"
                 "them, rejected events, hourly rollups, alerts, job runs, patterns, surplus checkpoints),\n"
                 "overwriting the deleted content (secure_delete) and returning free pages to the file system.\n"
                 "Prints what was deleted as JSON (--human: a table); the run is written to audit_log. --now sets\n"
                 "the time the retention periods count back from; --config FILE: the configuration.\n";
    return 0;
  }
  std::optional<ManualClock> fixed;
  EngineOptions eo;
  fix_clock(args, fixed, eo);
  LearningEngine engine(require_db(args), load_config(args), eo);
  const RetentionReport r = engine.run_retention(engine.clock().now_ms());
  engine.close();
  if (args.has("human")) print_retention_human(to_json(r));
  else std::cout << to_json(r).dump() << std::endl;
  return 0;
}

int run_erase_user(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn erase-user --db FILE --user ID [--key-file FILE] [--config FILE] [--human]\n"
                 "Deletes every stored row of one user (ID as the host gave it, hashed with the file's key, or\n"
                 "the stored hash), takes their learned decisions out of every policy checkpoint, marks the\n"
                 "predictive models for retraining, and truncates the write-ahead log. Prints what was done as\n"
                 "JSON (--human: a table of the rows deleted per table, then the rest). --key-file FILE: the\n"
                 "privacy key (default: the configuration's, else FILE.key beside the database).\n";
    return 0;
  }
  LearningEngine engine(require_db(args), config_with_key(args));
  const EraseReport r = engine.erase_user(require_user(args));
  engine.close();
  if (args.has("human")) print_erase_human(to_json(r));
  else std::cout << to_json(r).dump() << std::endl;
  return 0;
}

int run_export_user(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn export-user --db FILE --user ID [--key-file FILE] [--config FILE] [--human]\n"
                 "Prints every stored row of one user as one JSON document (encrypted text decrypted when the\n"
                 "key is available; --key-file FILE: the privacy key). The export is written to audit_log.\n"
                 "--human: per table, its row count and its rows as a table (long cells cut short).\n";
    return 0;
  }
  LearningEngine engine(require_db(args), config_with_key(args));
  const nlohmann::json j = engine.export_user(require_user(args));
  engine.close();
  if (args.has("human")) print_export_human(j);
  else std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  return 0;
}

}  // namespace promptlearn::cli
