// The `promptlearn` command: ingest, stats, features, demo.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"

namespace promptlearn::cli {

Args::Args(int argc, char** argv, int first, const std::vector<std::string>& with_value,
           const std::vector<std::string>& flags) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h") a = "--help";
    // One-letter short forms: -o FILE (output) wherever a command takes --o.
    if (a.size() == 2 && a[0] == '-' && a[1] != '-') a = "-" + a;
    if (a.rfind("--", 0) != 0) throw std::invalid_argument(fmt::format("unexpected argument '{}'", a));
    std::string key = a.substr(2);
    if (key == "help") {
      values_[key] = "1";
      continue;
    }
    bool takes_value = false, known = false;
    for (const auto& k : with_value) known = takes_value = takes_value || k == key;
    for (const auto& k : flags) known = known || k == key;
    if (!known) throw std::invalid_argument(fmt::format("unknown option '--{}'", key));
    if (takes_value) {
      if (i + 1 >= argc) throw std::invalid_argument(fmt::format("option '--{}' needs a value", key));
      values_[key] = argv[++i];
    } else {
      values_[key] = "1";
    }
  }
}

std::optional<std::string> Args::get(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}
std::string Args::get_or(const std::string& key, const std::string& fallback) const {
  return get(key).value_or(fallback);
}
long long Args::get_int(const std::string& key, long long fallback) const {
  auto v = get(key);
  if (!v) return fallback;
  try {
    std::size_t used = 0;
    long long n = std::stoll(*v, &used);
    if (used != v->size()) throw std::invalid_argument("");
    return n;
  } catch (const std::exception&) {
    throw std::invalid_argument(fmt::format("option '--{}': '{}' is not an integer", key, *v));
  }
}
bool Args::has(const std::string& key) const { return values_.count(key) > 0; }

std::string require_db(const Args& args) {
  auto db = args.get("db");
  if (!db) throw std::invalid_argument("--db FILE is required");
  return *db;
}

std::optional<TimeMs> now_option(const Args& args) {
  auto t = args.get("now");
  if (!t) return std::nullopt;
  auto parsed = try_parse_rfc3339(*t);
  if (!parsed) throw std::invalid_argument(fmt::format("option '--now': '{}' is not an RFC 3339 date-time", *t));
  return parsed;
}

void fix_clock(const Args& args, std::optional<ManualClock>& storage, EngineOptions& options) {
  if (auto now = now_option(args)) {
    storage.emplace(*now);
    options.clock = &*storage;
  }
}

Config load_config(const Args& args) {
  auto path = args.get("config");
  if (!path) return Config::defaults();
  std::ifstream in(*path);
  if (!in) throw ConfigError("config", fmt::format("cannot read the file '{}'", *path));
  std::stringstream ss;
  ss << in.rdbuf();
  return Config::from_string(ss.str());
}

namespace {

int run_ingest(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn ingest --db FILE [--config FILE] [--batch N] [--human] < events.jsonl\n"
                 "Reads wire documents as JSON lines on stdin and records them. After each committed batch\n"
                 "prints {\"acknowledged\": N, \"rejected\": M} (running totals; acknowledged = committed to\n"
                 "disk). Invalid lines are kept in the rejected_events table with their reason.\n"
                 "--batch N: documents per transaction (default: the configuration's batch_size); --config FILE:\n"
                 "the configuration; --human: \"acknowledged N, rejected M\" lines instead of JSON.\n";
    return 0;
  }
  Config config = load_config(args);
  long long batch = args.get_int("batch", config.learning.data_collection.batch_size);
  if (batch < 1) throw std::invalid_argument(fmt::format("option '--batch': {} is below the minimum 1", batch));
  const bool human = args.has("human");
  LearningEngine engine(require_db(args), config);
  std::uint64_t acknowledged = 0, rejected = 0;
  std::vector<std::string> lines;
  auto commit = [&] {
    if (lines.empty()) return;
    for (const auto& r : engine.record_batch(lines)) (r.accepted ? acknowledged : rejected)++;
    lines.clear();
    if (human) std::cout << fmt::format("acknowledged {}, rejected {}", acknowledged, rejected) << std::endl;
    else std::cout << nlohmann::json{{"acknowledged", acknowledged}, {"rejected", rejected}}.dump() << std::endl;
  };
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines carry no document
    lines.push_back(std::move(line));
    if (lines.size() >= static_cast<std::size_t>(batch)) commit();
  }
  commit();
  engine.close();
  return 0;
}

/// stats --human: the file, its schema version, then a table of row counts.
void print_stats_human(const EngineStats& s) {
  std::cout << fmt::format("file              {}\nschema version    {}\ncorpus documents  {}\n\n", s.path,
                           s.schema_version, s.corpus_documents);
  const auto& t = s.tables;
  TextTable table({"table", "rows"});
  const std::pair<const char*, std::int64_t> rows[] = {
      {"interactions", t.interactions},       {"performance", t.performance}, {"outcomes", t.outcomes},
      {"decisions", t.decisions},             {"pending_events", t.pending_events},
      {"rejected_events", t.rejected_events}, {"templates", t.templates},     {"models", t.models},
      {"audit_log", t.audit_log}};
  for (const auto& [name, n] : rows) table.add_row({name, n});
  std::cout << table.str();
  const auto& c = s.collector;
  if (c.received)  // this process only reads; shown when it ever records
    std::cout << fmt::format("\nthis process: received {}, accepted {}, rejected {}, committed {}, queued {}\n",
                             c.received, c.accepted, c.rejected, c.committed, c.queued);
}

int run_stats(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn stats --db FILE [--config FILE] [--human]\n"
                 "Prints row counts per table, the schema version and the corpus size as JSON (--human: a table).\n";
    return 0;
  }
  LearningEngine engine(require_db(args), load_config(args));
  const EngineStats s = engine.stats();
  if (args.has("human")) print_stats_human(s);
  else std::cout << to_json(s).dump() << std::endl;
  return 0;
}

/// One subcommand: its name, a one-line summary and the options Args accepts.
struct Command {
  const char* name;
  const char* summary;
  std::vector<std::string> with_value;  ///< options that take a value
  std::vector<std::string> flags;       ///< options that take none
  int (*run)(const Args&);              ///< nullptr: merge, which parses its own arguments
};

const std::vector<Command>& commands() {
  static const std::vector<Command> kCommands = {
      {"demo", "simulate a prompt-enhancement host on virtual time and summarise what was learned",
       {"db", "days", "seed", "per-day", "prompts"}, {"quiet"}, run_demo},
      {"ingest", "record JSON-lines events from stdin into a database file", {"db", "config", "batch"}, {"human"},
       run_ingest},
      {"stats", "print row counts and the schema version of a database file", {"db", "config"}, {"human"}, run_stats},
      {"features", "extract features of JSON-lines prompts from stdin", {"db", "config", "hash-dim"}, {"human"},
       run_features},
      {"templates", "add, retire and list template versions", {"db", "add", "retire", "body", "parent"}, {"human"},
       run_templates},
      {"select", "choose a template for one interaction on stdin and log the decision", {"db"}, {"record", "human"},
       run_select},
      {"jobs", "run the scheduled work that is due (learn, rollback watch, deployment gate)", {"db", "now"},
       {"human"}, run_jobs},
      {"rollback", "restore the previous template-selection policy", {"db", "reason"}, {"human"}, run_rollback},
      {"ab", "A/B experiments: create, assign, report, stop",
       {"db", "create", "assign", "unit", "interaction", "report", "stop"}, {"human"}, run_ab},
      {"analyze", "pattern analysis of a window: frequency, correlations, anomalies, drift, clusters, insights",
       {"db", "days", "now"}, {"persist", "human"}, run_analyze},
      {"tune", "Bayesian parameter tuning by ask and tell, the study kept in the file",
       {"db", "study", "space", "params", "value"}, {"ask", "tell", "status", "maximize", "human"}, run_tune},
      {"scrub", "replace PII and secrets in stdin's lines by typed placeholders (same line count out)", {"kinds"},
       {"stats", "human"}, run_scrub},
      {"backup", "copy a database file consistently while other processes write to it", {"db", "o", "restore"},
       {"human"}, run_backup},
      {"report", "a self-contained HTML report with charts (inline SVG)", {"db", "o", "days", "now"}, {"human"},
       run_report},
      {"export", "decisions as Vowpal Wabbit DSJSON, interactions as JSON lines or CSV",
       {"db", "format", "o", "key-file"}, {"human"}, run_export},
      {"merge", "merge shard files of a fleet into one", {"o"}, {"force", "human"}, nullptr},
      {"metrics", "latency percentiles, throughput, errors and alerts of a window", {"db", "config", "window", "now"},
       {"human"}, run_metrics},
      {"purge", "apply the retention policy now (what the daily retention job does)", {"db", "config", "now"},
       {"human"}, run_purge},
      {"erase-user", "delete every row of one user and take them out of the learned policy",
       {"db", "config", "user", "key-file"}, {"human"}, run_erase_user},
      {"export-user", "print every stored row of one user as JSON", {"db", "config", "user", "key-file"}, {"human"},
       run_export_user},
  };
  return kCommands;
}

void usage(std::ostream& out) {
  out << "usage: promptlearn <command> [options]   (promptlearn <command> --help, or promptlearn help <command>)\n"
         "commands:\n";
  for (const auto& c : commands()) out << fmt::format("  {:<12} {}\n", c.name, c.summary);
  out << "Results are JSON (one document per line) for programs; --human prints readable text instead, on\n"
         "every command that prints JSON. Errors: one line on stderr, exit status 2 for bad usage, 1 otherwise.\n";
}

}  // namespace
}  // namespace promptlearn::cli

namespace {
/// A library message that already starts with the command's name ("merge: ...") without it, so the
/// one-line error does not repeat it after "promptlearn merge: ".
std::string without_command(const std::string& cmd, const std::string& message) {
  return message.rfind(cmd + ": ", 0) == 0 ? message.substr(cmd.size() + 2) : message;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace promptlearn::cli;
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      if (argc == 2 || cmd != "help") {
        usage(std::cout);
        return 0;
      }
      // promptlearn help CMD: CMD's own help.
      cmd = argv[2];
      std::string help = "--help";
      char* help_argv[] = {argv[0], argv[2], help.data()};
      for (const auto& c : commands())
        if (c.name == cmd) return c.run ? c.run(Args(3, help_argv, 2, c.with_value, c.flags)) : run_merge(3, help_argv);
      std::cerr << "promptlearn: unknown command '" << cmd << "' (promptlearn help lists the commands)\n";
      return 2;
    }
    for (const auto& c : commands())
      if (c.name == cmd) return c.run ? c.run(Args(argc, argv, 2, c.with_value, c.flags)) : run_merge(argc, argv);
    std::cerr << "promptlearn: unknown command '" << cmd << "' (promptlearn help lists the commands)\n";
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "promptlearn " << cmd << ": " << without_command(cmd, e.what()) << "\n";
    return 2;
  } catch (const promptlearn::Error& e) {
    std::cerr << "promptlearn " << cmd << ": " << without_command(cmd, e.what()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "promptlearn " << cmd << ": unexpected error: " << e.what() << "\n";
    return 1;
  }
}
