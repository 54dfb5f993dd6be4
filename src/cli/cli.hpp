#pragma once
// Small helpers shared by the promptlearn command's subcommands.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "promptlearn/config.hpp"
#include "promptlearn/core/clock.hpp"
#include "promptlearn/engine.hpp"

namespace promptlearn::cli {

/// Parsed `--key value` / `--flag` arguments of one subcommand.
class Args {
 public:
  /// `flags` are the options that take no value. @throws std::invalid_argument on unknown options.
  Args(int argc, char** argv, int first, const std::vector<std::string>& with_value,
       const std::vector<std::string>& flags);
  std::optional<std::string> get(const std::string& key) const;
  std::string get_or(const std::string& key, const std::string& fallback) const;
  long long get_int(const std::string& key, long long fallback) const;
  bool has(const std::string& key) const;

 private:
  std::map<std::string, std::string> values_;
};

/// The --db option's value. @throws std::invalid_argument when it is missing.
std::string require_db(const Args& args);
/// The --config file's configuration (defaults without it). @throws ConfigError
Config load_config(const Args& args);
/// The --now option as a time (nullopt without it). @throws std::invalid_argument when it is not RFC 3339
std::optional<TimeMs> now_option(const Args& args);
/// Points options.clock at a clock fixed at --now (kept in `storage`) when the option is given.
void fix_clock(const Args& args, std::optional<ManualClock>& storage, EngineOptions& options);

int run_demo(const Args& args);
int run_features(const Args& args);
int run_select(const Args& args);
int run_templates(const Args& args);
int run_jobs(const Args& args);
int run_rollback(const Args& args);
int run_ab(const Args& args);
int run_analyze(const Args& args);
int run_tune(const Args& args);
int run_scrub(const Args& args);
int run_backup(const Args& args);
int run_purge(const Args& args);
int run_metrics(const Args& args);
int run_report(const Args& args);
/// Writes the HTML report of `db` for the `days` days before `at` (default: the clock) to `out`; returns
/// what run_report prints ({"report", "bytes", "charts", ...}). @throws Error, StorageError
nlohmann::json write_report(const std::string& db, const std::string& out, int days, std::optional<TimeMs> at);
int run_export(const Args& args);
/// promptlearn merge A.db B.db ... -o OUT.db (positional inputs: its own argument parsing).
int run_merge(int argc, char** argv);
int run_erase_user(const Args& args);
int run_export_user(const Args& args);

}  // namespace promptlearn::cli
