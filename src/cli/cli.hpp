#pragma once
// Small helpers shared by the promptlearn command's subcommands.
#include <cstddef>
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

// ---- readable output (--human; human.cpp)

/// One JSON value as one line of text: null "-", booleans "yes" / "no", doubles by human_number, strings
/// with control characters as spaces, arrays of scalars as a comma list (at most `max_list` items, then
/// "... (N more)"), other arrays as "N items", empty arrays and objects as "none", objects as
/// "key value, key value".
///
///     human_value(nlohmann::json::array({1, 2.5, "x"}))  // "1, 2.500, x"
std::string human_value(const nlohmann::json& v, std::size_t max_list = 12);
/// A double with a precision that suits its magnitude: "0", "0.050", "42.125", "1234.6", "1.23e-05".
std::string human_number(double v);
/// Width of `s` on a terminal, counted in UTF-8 code points.
std::size_t display_width(const std::string& s);
/// `s` cut to `max` code points, ending in "..." when it was longer.
std::string elide(const std::string& s, std::size_t max);

/// A plain-text table: a header line, then one line per row; columns aligned, numbers right-aligned
/// (a column is numeric when its non-blank cells are all numbers; "-" for null does not count), cells
/// longer than `max_cell` elided.
///
///     TextTable t({"table", "rows"});
///     t.add_row({"interactions", 400});
///     std::cout << t.str("  ");
///
/// Thread-safety: none (a value type).
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header);
  /// Adds a row; each value is shown as human_value shows it. Missing trailing cells are blank; an
  /// empty string is a blank cell.
  TextTable& add_row(const std::vector<nlohmann::json>& cells);
  std::size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  /// The table, each line prefixed by `indent`, without trailing spaces.
  std::string str(const std::string& indent = "", std::size_t max_cell = 40) const;

 private:
  struct Cell {
    std::string text;
    bool number = false;
  };
  std::vector<std::string> header_;
  std::vector<std::vector<Cell>> rows_;
};

/// A table of an array of objects: one row per element, the union of their keys as columns (in order of
/// first appearance; nested objects flattened to "parent.child" columns).
TextTable table_of(const nlohmann::json& rows);

/// Any JSON result as readable text without JSON punctuation: scalar fields as aligned `key  value`
/// lines, arrays of scalars as comma lists, nested objects as indented sections (objects whose values
/// are all objects as a table with a "name" column), arrays of objects as tables under a
/// "key (N rows)" heading. Each line starts with `indent`.
std::string render_human(const nlohmann::json& j, const std::string& indent = "");

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
