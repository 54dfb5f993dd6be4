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
    std::cout << "usage: promptlearn ingest --db FILE [--config FILE] [--batch N]\n"
                 "Reads wire documents as JSON lines on stdin and records them. After each committed batch\n"
                 "prints {\"acknowledged\": N, \"rejected\": M} (running totals; acknowledged = committed to\n"
                 "disk). Invalid lines are kept in the rejected_events table with their reason.\n";
    return 0;
  }
  Config config = load_config(args);
  long long batch = args.get_int("batch", config.learning.data_collection.batch_size);
  if (batch < 1) throw std::invalid_argument(fmt::format("option '--batch': {} is below the minimum 1", batch));
  LearningEngine engine(require_db(args), config);
  std::uint64_t acknowledged = 0, rejected = 0;
  std::vector<std::string> lines;
  auto commit = [&] {
    if (lines.empty()) return;
    for (const auto& r : engine.record_batch(lines)) (r.accepted ? acknowledged : rejected)++;
    lines.clear();
    std::cout << nlohmann::json{{"acknowledged", acknowledged}, {"rejected", rejected}}.dump() << std::endl;
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

int run_stats(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn stats --db FILE\nPrints row counts and the schema version as JSON.\n";
    return 0;
  }
  LearningEngine engine(require_db(args), load_config(args));
  std::cout << to_json(engine.stats()).dump(args.has("human") ? 2 : -1) << std::endl;
  return 0;
}

void usage(std::ostream& out) {
  out << "usage: promptlearn <command> [options]   (promptlearn <command> --help for details)\n"
         "commands:\n"
         "  demo      simulate a prompt-enhancement host on virtual time and summarise what was learned\n"
         "  ingest    record JSON-lines events from stdin into a database file\n"
         "  stats     print counts of a database file as JSON\n"
         "  features  extract features of JSON-lines prompts from stdin\n"
         "  templates add, retire and list template versions\n"
         "  select    choose a template for one interaction on stdin and log the decision\n"
         "  jobs      run the scheduled work that is due (learn, rollback watch, deployment gate)\n"
         "  rollback  restore the previous template-selection policy\n"
         "  ab        A/B experiments: create, assign, report, stop\n"
         "  analyze   pattern analysis of a window: frequency, correlations, anomalies, drift, clusters, insights\n"
         "  tune      Bayesian parameter tuning by ask and tell, the study kept in the file\n"
         "  scrub     replace PII and secrets in stdin's lines by typed placeholders (same line count out)\n"
         "  backup    copy a database file consistently while other processes write to it\n"
         "  report    a self-contained HTML report with charts (inline SVG)\n"
         "  export    decisions as Vowpal Wabbit DSJSON, interactions as JSON lines or CSV\n"
         "  merge     merge shard files of a fleet into one\n"
         "  metrics   latency percentiles, throughput, errors and alerts of a window\n"
         "  purge     apply the retention policy now (what the daily retention job does)\n"
         "  erase-user   delete every row of one user and take them out of the learned policy\n"
         "  export-user  print every stored row of one user as JSON\n";
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
      usage(std::cout);
      return 0;
    }
    if (cmd == "ingest") return run_ingest(Args(argc, argv, 2, {"db", "config", "batch"}, {}));
    if (cmd == "stats") return run_stats(Args(argc, argv, 2, {"db", "config"}, {"human"}));
    if (cmd == "features") return run_features(Args(argc, argv, 2, {"db", "config", "hash-dim"}, {}));
    if (cmd == "select") return run_select(Args(argc, argv, 2, {"db"}, {"record", "human"}));
    if (cmd == "templates") return run_templates(Args(argc, argv, 2, {"db", "add", "retire", "body", "parent"}, {}));
    if (cmd == "jobs") return run_jobs(Args(argc, argv, 2, {"db", "now"}, {"human"}));
    if (cmd == "rollback") return run_rollback(Args(argc, argv, 2, {"db", "reason"}, {}));
    if (cmd == "ab")
      return run_ab(Args(argc, argv, 2, {"db", "create", "assign", "unit", "interaction", "report", "stop"}, {"human"}));
    if (cmd == "analyze") return run_analyze(Args(argc, argv, 2, {"db", "days", "now"}, {"persist", "human"}));
    if (cmd == "tune")
      return run_tune(Args(argc, argv, 2, {"db", "study", "space", "params", "value"}, {"ask", "tell", "status", "maximize"}));
    if (cmd == "scrub") return run_scrub(Args(argc, argv, 2, {"kinds"}, {"stats"}));
    if (cmd == "backup") return run_backup(Args(argc, argv, 2, {"db", "o", "restore"}, {"human"}));
    if (cmd == "report") return run_report(Args(argc, argv, 2, {"db", "o", "days", "now"}, {}));
    if (cmd == "export") return run_export(Args(argc, argv, 2, {"db", "format", "o", "key-file"}, {}));
    if (cmd == "merge") return run_merge(argc, argv);
    if (cmd == "metrics") return run_metrics(Args(argc, argv, 2, {"db", "config", "window", "now"}, {"human"}));
    if (cmd == "purge") return run_purge(Args(argc, argv, 2, {"db", "config", "now"}, {"human"}));
    if (cmd == "erase-user") return run_erase_user(Args(argc, argv, 2, {"db", "config", "user", "key-file"}, {"human"}));
    if (cmd == "export-user") return run_export_user(Args(argc, argv, 2, {"db", "config", "user", "key-file"}, {"human"}));
    if (cmd == "demo") return run_demo(Args(argc, argv, 2, {"db", "days", "seed", "per-day", "config", "prompts"}, {"quiet"}));
    std::cerr << "promptlearn: unknown command '" << cmd << "'\n";
    usage(std::cerr);
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
