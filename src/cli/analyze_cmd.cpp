// promptlearn analyze: the pattern analysis of a window of a database file (LearningEngine::analyze).
#include <fmt/format.h>

#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/patterns/analysis.hpp"

namespace promptlearn::cli {

namespace {

/// A short human summary: counts, the insights and the strongest findings.
void print_human(const patterns::AnalysisReport& r) {
  std::cout << fmt::format("window {} .. {}: {} interactions, {} with an outcome\n", format_rfc3339(r.from),
                           format_rfc3339(r.to), r.events, r.outcomes);
  const auto& peaks = r.frequency.temporal.peak_hours;
  if (!peaks.empty()) {
    std::cout << "peak hours (UTC):";
    for (const auto& h : peaks) std::cout << fmt::format(" {:02d}h ({:.1f}x)", h.hour, h.ratio_to_expected);
    std::cout << "\n";
  }
  if (r.template_effect)
    std::cout << fmt::format("template vs quality: Kruskal-Wallis p {:.3g}, epsilon^2 {:.3f}\n",
                             r.template_effect->kruskal_wallis.p_value, r.template_effect->kruskal_wallis.epsilon_squared);
  for (const auto& c : r.correlations)
    if (c.significant)
      std::cout << fmt::format("correlation: {} ({}) r {:.3f}, BH p {:.3g}\n", c.name, c.method, c.result.r, c.p_adjusted);
  std::cout << fmt::format("anomalies: {} (listed {}); drifts: {}; topic clusters: {} over {} prompts\n",
                           r.anomalies_total, r.anomalies.size(), r.drifts.size(), r.clusters.clusters.size(),
                           r.clustered_points);
  for (const auto& c : r.clusters.clusters)
    std::cout << fmt::format("  topic {} ({} prompts): {}\n", c.id, c.size, fmt::join(c.top_keywords, ", "));
  std::cout << fmt::format("insights ({}):\n", r.insights.size());
  for (const auto& i : r.insights)
    std::cout << fmt::format("  [{}{}] {}\n    -> {}\n", i.type, i.subject.empty() ? "" : " " + i.subject, i.description,
                             i.recommendation);
}

}  // namespace

int run_analyze(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn analyze --db FILE [--days 7] [--now RFC3339] [--persist] [--human]\n"
                 "Analyses the interactions of the last --days days before --now (default: the clock):\n"
                 "frequency, correlations, template effect, anomalies, drift, topic clusters, trends and\n"
                 "insights; prints the report as JSON (--human: a summary). --persist also writes the\n"
                 "insights and patterns to the `patterns` table and the anomalies to `anomalies`.\n";
    return 0;
  }
  const std::string db = require_db(args);
  AnalysisOptions o;
  const long long days = args.get_int("days", 7);
  if (days < 1 || days > 36500) throw std::invalid_argument(fmt::format("option '--days': {} is outside [1, 36500]", days));
  o.days = static_cast<int>(days);
  o.persist = args.has("persist");
  std::optional<ManualClock> fixed;
  EngineOptions eo;
  fix_clock(args, fixed, eo);
  LearningEngine engine(db, Config::defaults(), eo);
  const patterns::AnalysisReport r = engine.analyze(o);
  engine.close();
  if (args.has("human")) print_human(r);
  else std::cout << patterns::to_json(r).dump() << std::endl;
  return 0;
}

}  // namespace promptlearn::cli
