// promptlearn metrics: latency percentiles, throughput, errors and alerts of a window (LearningEngine::metrics).
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"

namespace promptlearn::cli {
namespace {

/// "90m", "24h", "7d", "2w" (or a bare number of hours) in milliseconds.
TimeMs parse_window(const std::string& text) {
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = used ? text.substr(used) : "";
  TimeMs ms = 0;
  if (unit == "m") ms = 60000LL;
  else if (unit == "h" || unit.empty()) ms = 3600000LL;
  else if (unit == "d") ms = 86400000LL;
  else if (unit == "w") ms = 7 * 86400000LL;
  if (!used || ms == 0 || n < 1 || n > 100000)
    throw std::invalid_argument(fmt::format("option '--window': '{}' is not a duration such as 90m, 24h, 7d or 2w", text));
  return n * ms;
}

void print_human(const nlohmann::json& j) {
  const auto& m = j["metrics"];
  std::cout << fmt::format("window {} .. {}: {} requests, {} errors\n", j["window"]["from"].get<std::string>(),
                           j["window"]["to"].get<std::string>(), m["requests"].get<std::uint64_t>(),
                           m["errors"].get<std::uint64_t>());
  auto num = [](const nlohmann::json& v) { return v.is_number() ? fmt::format("{:.1f}", v.get<double>()) : std::string("-"); };
  std::cout << fmt::format("{:<24} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "latency (ms)", "count", "p50", "p90", "p95",
                           "p99", "max");
  for (const auto& [stage, s] : m["latency_ms"].items())
    std::cout << fmt::format("{:<24} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}\n", stage, s["count"].get<std::uint64_t>(),
                             num(s["p50"]), num(s["p90"]), num(s["p95"]), num(s["p99"]), num(s["max"]));
  const auto& t = m["throughput"];
  std::cout << fmt::format("throughput: {} requests/s, {} enhancements/min, peak {} requests/min\n",
                           num(t["requests_per_second"]), num(t["enhancements_per_minute"]),
                           t["peak_requests_per_minute"].get<std::uint64_t>());
  const auto& r = m["reliability"];
  std::cout << fmt::format("errors: rate {}, by type {}\n", r["error_rate"].is_number() ? fmt::format("{:.4f}", r["error_rate"].get<double>()) : "-",
                           human_value(r["errors_by_type"]));
  std::cout << fmt::format("cache hit rate: {}\n", m["cache"]["hit_rate"].is_number() ? fmt::format("{:.3f}", m["cache"]["hit_rate"].get<double>()) : "-");
  std::cout << fmt::format("sources: {} hourly rollups, {} daily rollups, {} raw rows\n", j["sources"]["rollup_hours"].get<std::size_t>(),
                           j["sources"]["rollup_days"].get<std::size_t>(), j["sources"]["raw_rows"].get<std::size_t>());
  std::cout << fmt::format("alerts ({}):\n", j["alerts"].size());
  for (const auto& a : j["alerts"])
    std::cout << fmt::format("  {} [{}] {}\n", a["fired_at"].get<std::string>(), a["severity"].get<std::string>(),
                             a["message"].get<std::string>());
}

}  // namespace

int run_metrics(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn metrics --db FILE [--window 24h] [--now RFC3339] [--config FILE] [--human]\n"
                 "Latency percentiles per stage (P50/P90/P95/P99/max, from mergeable DDSketches with 1% relative\n"
                 "error), throughput, error rate and types, MTBF, cache hit rate and the alerts fired in the\n"
                 "last --window (90m, 24h, 7d, 2w) before --now. Whole hours come from the hourly rollups (days\n"
                 "from the daily ones once the hourly rows are past retention), the rest from raw rows. Opens\n"
                 "the file read-only. --config FILE: the configuration. JSON by default; --human prints a table.\n";
    return 0;
  }
  const TimeMs window = parse_window(args.get_or("window", "24h"));
  std::optional<ManualClock> fixed;
  EngineOptions eo;
  eo.read_only = true;
  fix_clock(args, fixed, eo);
  LearningEngine engine(require_db(args), load_config(args), eo);
  const TimeMs now = engine.clock().now_ms();
  const nlohmann::json j = engine.metrics(now - window, now + 1);
  if (args.has("human")) print_human(j);
  else std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace promptlearn::cli
