// `promptlearn demo`: a simulated prompt-enhancement host driving the engine on virtual time.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/store/store.hpp"
#include "simulator.hpp"

namespace promptlearn::cli {
namespace {

/// Removes a previous demo file, but only if it is a promptlearn database (never someone else's file).
void remove_previous(const std::string& path) {
  if (!std::filesystem::exists(path)) return;
  { store::Store check(path); }  // throws StorageError for a file that is not ours
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

void progress(int day, int days, bool quiet) {
  if (quiet) return;
  int width = 30, filled = days ? width * day / days : width;
  std::cerr << fmt::format("\r  simulating [{}{}] day {}/{}", std::string(filled, '#'), std::string(width - filled, '.'),
                           day, days)
            << std::flush;
  if (day == days) std::cerr << "\n";
}

}  // namespace

int run_demo(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn demo [--db demo.db] [--days 30] [--per-day 200] [--seed 1] [--quiet]\n"
                 "Simulates a prompt-enhancement host (users, domains, templates, outcomes from a hidden\n"
                 "reward model) on virtual time, records everything through the engine (outcomes sometimes\n"
                 "arrive before their interaction; some documents are invalid), and prints a summary.\n"
                 "The database file is recreated on each run.\n";
    return 0;
  }
  std::string db = args.get_or("db", "demo.db");
  long long days = args.get_int("days", 30), per_day = args.get_int("per-day", 200), seed = args.get_int("seed", 1);
  if (days < 1 || days > 3650) throw std::invalid_argument(fmt::format("option '--days': {} is outside [1, 3650]", days));
  if (per_day < 1 || per_day > 100000)
    throw std::invalid_argument(fmt::format("option '--per-day': {} is outside [1, 100000]", per_day));
  bool quiet = args.has("quiet");
  remove_previous(db);

  ManualClock clock(*try_parse_rfc3339("2026-01-05T00:00:00Z"));
  EngineOptions options;
  options.clock = &clock;
  Config config = Config::defaults();
  config.learning.data_collection.mode = CollectionMode::buffered;
  LearningEngine engine(db, config, options);
  sim::HostSimulator host(static_cast<std::uint64_t>(seed));

  std::map<std::string, std::map<std::string, std::pair<double, int>>> quality;  // domain -> template -> (sum, n)
  int early_outcomes = 0, invalid_sent = 0;
  std::cerr << fmt::format("promptlearn demo: {} days x {} prompts/day into {}\n", days, per_day, db);
  for (int day = 0; day < days; ++day) {
    TimeMs day_start = clock.now_ms();
    for (int i = 0; i < per_day; ++i) {
      // Office-hours-heavy arrival times.
      double hour = std::clamp(host.rng().normal(14, 3.5), 0.0, 23.99);
      clock.set(day_start + static_cast<TimeMs>(hour * 3600000.0) + i);
      sim::SimInteraction s = host.next(clock.now_ms());
      bool outcome_first = host.rng().bernoulli(0.05);
      if (outcome_first) {
        engine.record(s.outcome);
        ++early_outcomes;
      }
      engine.record(s.interaction);
      engine.record(s.performance);
      if (!outcome_first) engine.record(s.outcome);
      auto& q = quality[s.domain][s.template_id];
      q.first += s.quality;
      q.second += 1;
      if (host.rng().bernoulli(0.01)) {  // a misbehaving host: out-of-range score
        nlohmann::json bad = s.outcome;
        bad["outcome_data"]["response_quality_score"] = 11.5;
        engine.record(bad);
        ++invalid_sent;
      }
    }
    engine.flush();
    clock.set(day_start + 24 * 3600 * 1000);
    progress(day + 1, static_cast<int>(days), quiet);
  }
  engine.close();

  // Domain detection against the generator's ground truth, read back from the file.
  EngineStats st = engine.stats();
  store::Store reader(db);
  std::cout << "\n== promptlearn demo summary ==\n";
  std::cout << fmt::format("interactions recorded : {}\n", st.tables.interactions);
  std::cout << fmt::format("performance / outcomes: {} / {}\n", st.tables.performance, st.tables.outcomes);
  std::cout << fmt::format("outcomes sent before their interaction: {} (pending now: {})\n", early_outcomes,
                           st.tables.pending_events);
  std::cout << fmt::format("invalid documents sent: {} -> rejected_events: {}\n", invalid_sent,
                           st.tables.rejected_events);
  {
    store::Statement r(reader.db(), "SELECT reason FROM rejected_events ORDER BY id LIMIT 1");
    if (r.step()) std::cout << "  e.g. " << r.column_text(0) << "\n";
  }
  std::cout << "\nmean response quality by domain (rows) and template (columns), as logged:\n";
  std::cout << fmt::format("{:<15}", "");
  for (const char* t : sim::template_ids()) std::cout << fmt::format("{:>16}", t);
  std::cout << "\n";
  double logged_sum = 0, oracle_sum = 0;
  int logged_n = 0;
  for (const auto& [domain, row] : quality) {
    std::cout << fmt::format("{:<15}", domain);
    double best = 0;
    int n_dom = 0;
    for (const char* t : sim::template_ids()) {
      auto it = row.find(t);
      if (it == row.end()) {
        std::cout << fmt::format("{:>16}", "-");
        continue;
      }
      double mean = it->second.first / it->second.second;
      best = std::max(best, mean);
      logged_sum += it->second.first;
      logged_n += it->second.second;
      n_dom += it->second.second;
      std::cout << fmt::format("{:>16.2f}", mean);
    }
    oracle_sum += best * n_dom;
    std::cout << "\n";
  }
  std::cout << fmt::format(
      "\nthe logged (uniformly random) policy averaged {:.2f}; always using each domain's best template would "
      "average {:.2f}.\nThat gap is what template selection learns to close.\n",
      logged_sum / std::max(1, logged_n), oracle_sum / std::max(1, logged_n));

  // How well the feature extractor recovered the generator's domains.
  store::Statement dq(reader.db(),
                      "SELECT json_extract(features, '$.domain'), count(*) FROM interactions GROUP BY 1 ORDER BY 2 DESC");
  std::cout << "\ndetected domains (feature extractor):";
  while (dq.step()) std::cout << fmt::format(" {}={}", dq.column_text(0), dq.column_int64(1));
  std::cout << "\n";
  store::Statement kq(reader.db(),
                      "SELECT k.value, count(*) FROM interactions, json_each(interactions.detected_keywords) k "
                      "GROUP BY 1 ORDER BY 2 DESC LIMIT 8");
  std::cout << "most frequent top keywords:";
  while (kq.step()) std::cout << fmt::format(" {}({})", kq.column_text(0), kq.column_int64(1));
  std::cout << fmt::format("\n\nintegrity_check: {}\nthe database is {} — query it with: sqlite3 {} "
                           "'SELECT domain, count(*) FROM interactions GROUP BY 1'\n",
                           engine.integrity_check(), db, db);
  return 0;
}

}  // namespace promptlearn::cli
