// `promptlearn demo`: a simulated prompt-enhancement host driving the engine on virtual time.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <vector>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/patterns/analysis.hpp"
#include "promptlearn/store/store.hpp"
#include "prompt_file.hpp"
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
    std::cout << "usage: promptlearn demo [--db demo.db] [--days 30] [--per-day 200] [--seed 1] [--prompts FILE]\n"
                 "                        [--quiet]\n"
                 "Simulates a prompt-enhancement host (users with their own habits, domains, templates, outcomes\n"
                 "from a hidden reward model that changes half-way through) on virtual time, with latency\n"
                 "anomalies injected into a few hours and a latency drift in the last third; records everything\n"
                 "through the engine (outcomes sometimes arrive before their interaction; some documents are\n"
                 "invalid), runs the scheduled jobs every simulated day, and prints a summary: learned vs random\n"
                 "vs oracle per week, deployments and rollbacks, anomalies caught vs injected, percentiles,\n"
                 "insights. --prompts takes real prompts from a CSV (a 'prompt' column) or JSON-lines file\n"
                 "instead of the built-in generator. The database file is recreated on each run.\n";
    return 0;
  }
  std::string db = args.get_or("db", "demo.db");
  long long days = args.get_int("days", 30), per_day = args.get_int("per-day", 200), seed = args.get_int("seed", 1);
  if (days < 1 || days > 3650) throw std::invalid_argument(fmt::format("option '--days': {} is outside [1, 3650]", days));
  if (per_day < 1 || per_day > 100000)
    throw std::invalid_argument(fmt::format("option '--per-day': {} is outside [1, 100000]", per_day));
  bool quiet = args.has("quiet");
  std::vector<std::string> real_prompts;
  if (auto f = args.get("prompts")) real_prompts = load_prompts(*f, 200000);
  remove_previous(db);

  ManualClock clock(*try_parse_rfc3339("2026-01-05T00:00:00Z"));
  EngineOptions options;
  options.clock = &clock;
  Config config = Config::defaults();
  config.learning.data_collection.mode = CollectionMode::buffered;
  // The weekly tuning job with a smaller budget than the default 10 + 50 evaluations (each replays the
  // whole log): the demo stays a few seconds long.
  config.learning_strategies.parameter_optimization.parameters["initial_points"] = 8;
  config.learning_strategies.parameter_optimization.parameters["n_iterations"] = 16;
  // Alerts the engine raises (the hourly rollup job evaluates its rules on every completed hour).
  struct SeenAlert {
    std::string rule;
    TimeMs time;
    std::string message;
  };
  std::vector<SeenAlert> alerts_seen;
  options.on_alert = [&alerts_seen](const nlohmann::json& a) {
    alerts_seen.push_back({a["rule"].get<std::string>(), a["time_ms"].get<TimeMs>(), a["message"].get<std::string>()});
  };
  LearningEngine engine(db, config, options);
  for (const char* t : sim::template_ids()) engine.register_template(t, "1", std::string("template body: ") + t);
  sim::HostSimulator host(static_cast<std::uint64_t>(seed));
  Rng perf_rng(static_cast<std::uint64_t>(seed) * 7919 + 17);  // latencies (a stream of its own)

  // What the demo plants, to compare with what the engine finds: the hidden reward model changes at
  // shift_day; the pipeline is 8x slower during a few injected hours; from drift_day on it is 60% slower.
  const int shift_day = static_cast<int>(days) / 2;
  const int drift_day = days >= 6 ? static_cast<int>(days) * 2 / 3 : static_cast<int>(days);
  std::set<std::pair<int, int>> injected;  // (day, hour) of the latency anomalies
  for (int d = 2; d < days; d += 5) injected.insert({d, static_cast<int>(perf_rng.uniform_int(10, 16))});
  std::size_t prompt_cursor = 0;
  std::vector<std::size_t> prompt_order(real_prompts.size());
  for (std::size_t i = 0; i < prompt_order.size(); ++i) prompt_order[i] = i;
  for (std::size_t i = prompt_order.size(); i > 1; --i)
    std::swap(prompt_order[i - 1], prompt_order[static_cast<std::size_t>(perf_rng.uniform_int(0, static_cast<std::int64_t>(i) - 1))]);

  struct Week {
    double chosen = 0, random = 0, oracle = 0;
    int n = 0;
  };
  std::vector<Week> weeks;
  int early_outcomes = 0, invalid_sent = 0, explored = 0, decisions = 0;
  std::map<int, int> domain_hits, domain_total;  // generated domain -> correctly detected / all
  std::cerr << fmt::format("promptlearn demo: {} days x {} prompts/day into {}{}\n", days, per_day, db,
                           real_prompts.empty() ? "" : fmt::format(" ({} real prompts from --prompts)", real_prompts.size()));
  for (int day = 0; day < days; ++day) {
    if (day == shift_day && day > 0) host.shift_reward_model();
    if (day % 7 == 0) weeks.emplace_back();
    Week& week = weeks.back();
    TimeMs day_start = clock.now_ms();
    for (int i = 0; i < per_day; ++i) {
      // Office-hours-heavy arrival times.
      double hour = std::clamp(host.rng().normal(14, 3.5), 0.0, 23.99);
      clock.set(day_start + static_cast<TimeMs>(hour * 3600000.0) + i);
      // The host's loop: ask for a template, apply it, record the interaction, later the outcome.
      sim::SimPrompt p = host.prompt(clock.now_ms());
      if (!real_prompts.empty()) {
        // A real prompt; its domain (for the hidden reward model) as the feature extractor sees it.
        const std::string& text = real_prompts[prompt_order[prompt_cursor++ % prompt_order.size()]];
        const std::string dom = engine.extract_features(text).domain;
        int d = -1;
        for (std::size_t k = 0; k < sim::domains().size(); ++k)
          if (dom == sim::domains()[k].name) d = static_cast<int>(k);
        p = host.prompt_with_text(clock.now_ms(), text, d >= 0 ? d : static_cast<int>(perf_rng.uniform_int(0, 4)));
      }
      Decision d = engine.select_template(p.interaction);
      int t = 0;
      while (sim::template_ids()[static_cast<std::size_t>(t)] != d.chosen.template_id) ++t;
      ++decisions;
      explored += d.explored;
      week.chosen += host.expected_quality(p, t);
      week.random += host.random_quality(p);
      week.oracle += host.oracle(p).second;
      ++week.n;
      nlohmann::json interaction = p.interaction;
      interaction["enhancement_data"] = {{"selected_template", d.chosen.template_id},
                                         {"template_version", d.chosen.version},
                                         {"enhancement_applied", true},
                                         {"enhancement_time_ms", host.rng().uniform(5, 40)}};
      nlohmann::json outcome = host.outcome(p, t);
      bool outcome_first = host.rng().bernoulli(0.05);
      if (outcome_first) {
        engine.record(outcome);
        ++early_outcomes;
      }
      engine.record(interaction);
      if (!outcome_first) engine.record(outcome);
      // The pipeline's own timings: lognormal around 120 ms, slower in the injected hours and after the drift.
      const bool anomalous = injected.count({day, static_cast<int>(hour)}) > 0;
      const double total = std::exp(perf_rng.normal(std::log(120.0), 0.3)) * (day >= drift_day ? 1.6 : 1.0) *
                           (anomalous ? 8.0 : 1.0);
      engine.record(nlohmann::json{
          {"interaction_id", p.interaction_id},
          {"performance_metrics",
           {{"total_processing_time_ms", total},
            {"template_selection_time_ms", total * 0.1},
            {"enhancement_generation_time_ms", total * 0.6},
            {"validation_time_ms", total * 0.2},
            {"cleanup_time_ms", total * 0.1},
            {"cache_performance", {{"template_cache_hit", perf_rng.bernoulli(0.8)}, {"analysis_cache_hit", perf_rng.bernoulli(0.6)}}}}}});
      auto f = engine.extract_features(p.interaction["input_data"]["raw_prompt"].get<std::string>());
      domain_total[p.domain]++;
      domain_hits[p.domain] += f.domain == sim::domains()[static_cast<std::size_t>(p.domain)].name;
      if (host.rng().bernoulli(0.01)) {  // a misbehaving host: out-of-range score
        nlohmann::json bad = outcome;
        bad["outcome_data"]["response_quality_score"] = 11.5;
        engine.record(bad);
        ++invalid_sent;
      }
    }
    clock.set(day_start + 24 * 3600 * 1000 - 1);
    engine.run_due_jobs(clock.now_ms());  // learn from the day's outcomes; the gate may deploy
    clock.set(day_start + 24 * 3600 * 1000);
    progress(day + 1, static_cast<int>(days), quiet);
  }
  engine.close();

  EngineStats st = engine.stats();
  store::Store reader(db);
  std::cout << "\n== promptlearn demo summary ==\n";
  std::cout << fmt::format("interactions recorded : {}   decisions logged: {} ({} exploratory)\n",
                           st.tables.interactions, st.tables.decisions, explored);
  std::cout << fmt::format("outcomes: {} ({} sent before their interaction, pending now: {})\n", st.tables.outcomes,
                           early_outcomes, st.tables.pending_events);
  std::cout << fmt::format("invalid documents sent: {} -> rejected_events: {}\n", invalid_sent,
                           st.tables.rejected_events);
  {
    store::Statement r(reader.db(), "SELECT reason FROM rejected_events ORDER BY id LIMIT 1");
    if (r.step()) std::cout << "  e.g. " << r.column_text(0) << "\n";
  }

  std::cout << "\nexpected response quality (0-10) of the templates chosen, per week:\n";
  std::cout << fmt::format("{:>6} {:>10} {:>10} {:>10} {:>12}\n", "week", "learned", "random", "oracle", "gap closed");
  for (std::size_t w = 0; w < weeks.size(); ++w) {
    const Week& k = weeks[w];
    if (k.n == 0) continue;
    double c = k.chosen / k.n, r = k.random / k.n, o = k.oracle / k.n;
    std::cout << fmt::format("{:>6} {:>10.2f} {:>10.2f} {:>10.2f} {:>11.0f}%\n", w + 1, c, r, o,
                             o > r ? 100.0 * (c - r) / (o - r) : 0.0);
  }
  std::cout << "(learned = the engine's choices; random = a uniformly random template; oracle = the best template\n"
               " for each prompt's domain and user under the simulator's hidden reward model)\n";

  std::cout << "\ndeployments and rollbacks (audit_log):\n";
  {
    store::Statement a(reader.db(),
                       "SELECT timestamp, action, details FROM audit_log WHERE action IN ('deploy', 'rollback') "
                       "ORDER BY id");
    int n = 0;
    while (a.step()) {
      auto j = nlohmann::json::parse(a.column_text(2));
      if (a.column_text(1) == "deploy")
        std::cout << fmt::format("  {} deploy v{} (from v{}): improvement {:.3f}, 95% lower bound {:.3f}, {} held-out decisions\n",
                                 a.column_text(0).substr(0, 10), j.value("version", 0), j.value("from", 0),
                                 j.value("improvement", 0.0), j.value("ci_low", 0.0), j.value("samples", 0));
      else
        std::cout << fmt::format("  {} rollback v{} -> v{}: {}\n", a.column_text(0).substr(0, 10), j.value("from", 0),
                                 j.value("to", 0), j.value("reason", std::string()));
      ++n;
    }
    if (n == 0) std::cout << "  none yet (the gate needs enough held-out evidence of an improvement)\n";
  }

  std::cout << fmt::format("\nthe hidden reward model changed on day {}: on programming prompts structured_task lost 2.5 "
                           "quality points and step_by_step gained 1.5 (see the weeks after it above)\n",
                           shift_day + 1);

  // Latency: percentiles from the hourly rollups, and what the engine caught of what was planted.
  {
    const TimeMs start = *try_parse_rfc3339("2026-01-05T00:00:00Z");
    const nlohmann::json all = engine.metrics(start, clock.now_ms());
    const nlohmann::json last = engine.metrics(clock.now_ms() - 7 * 86400000LL, clock.now_ms());
    auto row = [](const char* label, const nlohmann::json& m) {
      const auto& t = m["metrics"]["latency_ms"]["total"];
      auto v = [](const nlohmann::json& x) { return x.is_number() ? x.get<double>() : std::nan(""); };
      return fmt::format("  {:<14} {:>8} requests  p50 {:>6.0f}  p90 {:>6.0f}  p95 {:>6.0f}  p99 {:>6.0f}  max {:>6.0f} ms\n", label,
                         m["metrics"]["requests"].get<std::uint64_t>(), v(t["p50"]), v(t["p90"]), v(t["p95"]),
                         v(t["p99"]), v(t["max"]));
    };
    std::cout << "\nenhancement latency (total processing time; DDSketch rollups, 1% relative error):\n"
              << row("whole run", all) << row("last 7 days", last);
    std::cout << fmt::format("  ingest error rate {:.2f}% ({} rejected documents), cache hit rate {:.0f}%\n",
                             100 * all["metrics"]["reliability"]["error_rate"].get<double>(),
                             all["metrics"]["errors"].get<std::uint64_t>(),
                             100 * all["metrics"]["cache"]["hit_rate"].get<double>());
    const TimeMs hour = 3600000LL, day_ms = 24 * hour;
    int caught_alert = 0, caught_anomaly = 0;
    for (const auto& [d, h] : injected) {
      const TimeMs from = start + d * day_ms + h * hour, to = from + hour;
      bool by_alert = false;
      for (const auto& a : alerts_seen) by_alert = by_alert || (a.time > from && a.time <= to + hour);
      store::Statement q(reader.db(), "SELECT count(*) FROM anomalies WHERE metric LIKE '%processing%' AND timestamp >= ?1 AND timestamp < ?2");
      q.bind(1, format_rfc3339(from)).bind(2, format_rfc3339(to));
      const bool by_anomaly = q.step() && q.column_int64(0) > 0;
      caught_alert += by_alert;
      caught_anomaly += by_anomaly;
    }
    std::cout << fmt::format("latency anomalies injected: {} hours (8x slower); caught by an alert: {}, flagged by the "
                             "pattern job's anomaly detector: {}\n",
                             injected.size(), caught_alert, caught_anomaly);
    if (drift_day < days) {
      std::vector<std::string> found;
      for (const auto& a : alerts_seen)
        if (a.rule == "latency_shift" && a.time >= start + drift_day * day_ms) {
          found.push_back(fmt::format("detected {:.0f} h after it began by the '{}' alert",
                                      static_cast<double>(a.time - (start + drift_day * day_ms)) / hour, a.rule));
          break;
        }
      // The pattern job's change-point detectors (Page-Hinkley, ADWIN): the first upward change of the
      // processing time found after the drift began, with the change point it estimated.
      const TimeMs began = start + drift_day * day_ms;
      store::Statement q(reader.db(), "SELECT created_at, evidence FROM patterns WHERE type = 'drift' AND subject = "
                                      "'total_processing_time_ms' AND created_at >= ?1 ORDER BY created_at, id");
      q.bind(1, format_rfc3339(began));
      while (q.step()) {
        const nlohmann::json ev = nlohmann::json::parse(q.column_text(1), nullptr, false);
        if (!ev.is_object() || !ev.contains("time") || !ev["time"].is_string()) continue;
        const auto at = try_parse_rfc3339(q.column_text(0));
        const auto change = try_parse_rfc3339(ev["time"].get<std::string>());
        if (!at || !change || *change < began - day_ms || ev.value("mean_after", 0.0) <= ev.value("mean_before", 0.0))
          continue;
        found.push_back(fmt::format("detected {:.0f} h after it began by the pattern job's drift detector ({}), "
                                    "change point estimated {:+.1f} h from the true one",
                                    static_cast<double>(*at - began) / hour, ev.value("detector", std::string("drift")),
                                    static_cast<double>(*change - began) / hour));
        break;
      }
      std::cout << fmt::format("latency drift injected on day {} (60% slower from then on): {}\n", drift_day + 1,
                               found.empty() ? std::string("not detected") : fmt::format("{}", fmt::join(found, "; ")));
    }
    int shown = 0;
    std::cout << fmt::format("alerts raised: {}", alerts_seen.size());
    for (const auto& a : alerts_seen)
      if (shown++ < 3) std::cout << "\n  " << format_rfc3339(a.time).substr(0, 16) << " " << a.message;
    std::cout << "\n";
  }

  std::cout << "\nweekly parameter tuning (Bayesian optimisation over an off-policy replay of the log; audit_log):\n";
  {
    store::Statement a(reader.db(), "SELECT timestamp, details FROM audit_log WHERE action = 'tuning' ORDER BY id");
    int n = 0;
    while (a.step()) {
      const auto j = nlohmann::json::parse(a.column_text(1));
      std::cout << fmt::format("  {} {} evaluations: best {} -> estimated reward {:.3f} (95% CI {:.3f} .. {:.3f}); "
                               "configured parameters {:.3f}\n",
                               a.column_text(0).substr(0, 10), j.value("evaluations", 0), j["best_params"].dump(),
                               j.value("best_value", 0.0), j.value("best_ci_low", 0.0), j.value("best_ci_high", 0.0),
                               j.value("configured_value", 0.0));
      ++n;
    }
    if (n == 0) std::cout << "  none yet (the job waits for 200 held-out decisions with a reward)\n";
  }

  std::cout << "\nfeature extractor vs the generator's domains:";
  for (const auto& [d, n] : domain_total)
    std::cout << fmt::format(" {}={:.0f}%", sim::domains()[static_cast<std::size_t>(d)].name, 100.0 * domain_hits[d] / n);
  store::Statement kq(reader.db(),
                      "SELECT k.value, count(*) FROM interactions, json_each(interactions.detected_keywords) k "
                      "GROUP BY 1 ORDER BY 2 DESC LIMIT 8");
  std::cout << "\nmost frequent keywords:";
  while (kq.step()) std::cout << fmt::format(" {}({})", kq.column_text(0), kq.column_int64(1));
  // The pattern analysis of the last week (LearningEngine::analyze; the hourly job wrote the same kind
  // of rows to `patterns` every simulated day).
  {
    AnalysisOptions ao;
    ao.days = 7;
    const patterns::AnalysisReport a = engine.analyze(ao);
    std::cout << fmt::format("\n\npattern analysis of the last 7 days ({} interactions): {} insights, {} anomalies, "
                             "{} drifts, {} topic clusters; `promptlearn analyze --db {} --now {} --human` for all\n",
                             a.events, a.insights.size(), a.anomalies_total, a.drifts.size(), a.clusters.clusters.size(),
                             db, format_rfc3339(clock.now_ms()));
    int shown = 0;
    for (const auto& i : a.insights)
      if (i.type == "dominant_template" && i.description.find("better") != std::string::npos && shown < 3) {
        std::cout << "  " << i.description << "\n    -> " << i.recommendation << "\n";
        ++shown;
      }
    std::cout << fmt::format("  rows in `patterns`: {}", reader.db().query_int("SELECT count(*) FROM patterns"));
  }
  // The predictive models, retrained on everything logged (the monthly job trained them on the first
  // day's decisions): held-out metrics, then one new prompt scored for every template.
  {
    const ModelTrainingReport m = engine.train_models();
    std::cout << fmt::format("\n\npredictive models, trained on the newest {} logged decisions (80% fit, 20% held out):\n", m.rows);
    if (m.metrics.contains("quality_predictor")) {
      const auto& q = m.metrics["quality_predictor"];
      std::cout << fmt::format("  quality_predictor   held-out RMSE {:.2f}, R2 {:.2f}, 90% interval coverage {:.0f}%\n",
                               q["heldout_rmse"].get<double>(), q["heldout_r2"].get<double>(),
                               100 * q["heldout_interval_coverage"].get<double>());
    }
    if (m.metrics.contains("template_classifier")) {
      const auto& c = m.metrics["template_classifier"];
      std::cout << fmt::format("  template_classifier held-out accuracy {:.2f} over {} templates (log loss {:.2f})\n",
                               c["heldout_accuracy"].get<double>(), c["templates"].get<int>(), c["heldout_log_loss"].get<double>());
    }
    if (m.metrics.contains("success_net")) {
      const auto& n = m.metrics["success_net"];
      std::cout << fmt::format("  success_net         held-out accuracy {:.2f}, log loss {:.3f} (base rate {:.3f})\n",
                               n["heldout_accuracy"].get<double>(), n["heldout_log_loss"].get<double>(),
                               n["heldout_log_loss_of_base_rate"].get<double>());
    }
    for (const auto& why : m.skipped) std::cout << "  not trained: " << why << "\n";
    const sim::SimPrompt p = host.prompt(clock.now_ms());
    std::cout << fmt::format("  a new prompt (\"{}\"):\n", p.interaction["input_data"]["raw_prompt"].get<std::string>());
    for (std::size_t t = 0; t < sim::template_ids().size(); ++t) {
      const auto q = engine.predict_quality(p.interaction, sim::template_ids()[t]);
      if (!q) break;
      std::cout << fmt::format("    {:<18} predicted quality {:.1f} (90% interval {:.1f} .. {:.1f}), true mean {:.1f}\n",
                               sim::template_ids()[t], q->predicted_quality, q->ci_low, q->ci_high,
                               host.expected_quality(p, static_cast<int>(t)));
    }
  }
  const std::string html = std::filesystem::path(db).replace_extension(".html").string();
  const nlohmann::json report = write_report(db, html, static_cast<int>(days), clock.now_ms());
  std::cout << fmt::format("\n\nthe HTML report (reward per policy version with deployments, template share, latency "
                           "percentiles with anomalies, usage heat map, correlations, insights; {} KB, no network): {}\n"
                           "  open it in a browser, or `promptlearn report --db {} -o FILE --now {}` again\n",
                           report["bytes"].get<std::size_t>() / 1024, html, db, format_rfc3339(clock.now_ms()));
  std::cout << fmt::format("\nintegrity_check: {}\nthe database is {} — query it with: sqlite3 {} "
                           "'SELECT selected_template, count(*) FROM interactions GROUP BY 1'\n",
                           engine.integrity_check(), db, db);
  return 0;
}

}  // namespace promptlearn::cli
