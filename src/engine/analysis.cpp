// LearningEngine::analyze and the scheduled pattern job: load a window of events from the file, run the
// pattern analysis (patterns/analysis.hpp), and persist insights, patterns and anomalies.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/patterns/analysis.hpp"
#include "promptlearn/store/store.hpp"

namespace promptlearn {
namespace {

constexpr TimeMs kDay = 86400000LL;
/// The pattern job analyses this many days back.
constexpr int kPatternJobDays = 7;

patterns::AnalysisParams params_from(const Config& config) {
  patterns::AnalysisParams p;
  const nlohmann::json& pr = config.learning_strategies.pattern_recognition.parameters;
  if (pr.contains("eps")) p.clustering.eps = pr["eps"].get<double>();
  if (pr.contains("min_samples")) p.clustering.min_samples = pr["min_samples"].get<int>();
  return p;
}

store::PatternRow pattern_row(const std::string& kind, const std::string& type, const std::string& subject,
                              double confidence, std::string description, std::string recommendation,
                              const nlohmann::json& evidence, const patterns::AnalysisReport& r, TimeMs now) {
  store::PatternRow row;
  row.kind = kind;
  row.type = type;
  row.subject = subject;
  row.confidence = std::clamp(confidence, 0.0, 1.0);
  row.description = std::move(description);
  row.recommendation = std::move(recommendation);
  row.evidence = evidence.dump();
  row.window_start = r.from;
  row.window_end = r.to;
  row.created_at = now;
  return row;
}

/// The rows one analysis writes: every insight, and the population patterns (peak hours, the best
/// template per domain, significant correlations, drifts, topic clusters).
std::vector<store::PatternRow> pattern_rows(const patterns::AnalysisReport& r, TimeMs now) {
  std::vector<store::PatternRow> rows;
  for (const auto& i : r.insights)
    rows.push_back(pattern_row("insight", i.type, i.subject, i.confidence, i.description, i.recommendation, i.evidence, r, now));
  const auto& t = r.frequency.temporal;
  if (!t.peak_hours.empty() && t.hourly_test.p_value == t.hourly_test.p_value) {
    std::vector<int> hours;
    for (const auto& h : t.peak_hours) hours.push_back(h.hour);
    nlohmann::json ev = t.peak_hours;
    rows.push_back(pattern_row("pattern", "peak_hours", "", 1 - t.hourly_test.p_value,
                               fmt::format("peak hours (UTC) {}", fmt::join(hours, ", ")),
                               "Schedule retraining and other heavy jobs outside these hours.",
                               {{"peak_hours", ev}, {"chi_square", t.hourly_test.statistic}, {"p_value", t.hourly_test.p_value}},
                               r, now));
  }
  if (r.template_effect && r.template_effect->kruskal_wallis.p_value < 0.05) {
    // The best template of each domain (rows are sorted by domain, then mean descending).
    std::string last;
    for (const auto& e : r.template_effect->by_domain) {
      if (e.domain == last) continue;
      last = e.domain;
      if (e.n < 5) continue;
      rows.push_back(pattern_row(
          "pattern", "template_effectiveness", e.domain, 1 - r.template_effect->kruskal_wallis.p_value,
          fmt::format("in {}, {} has the highest mean quality: {:.2f} (95% CI {:.2f} .. {:.2f}, n {})", e.domain,
                      e.template_id, e.mean, e.ci_low, e.ci_high, e.n),
          fmt::format("Prefer {} for {} prompts unless a user's own history says otherwise.", e.template_id, e.domain),
          {{"template", e.template_id}, {"mean", e.mean}, {"ci_low", e.ci_low}, {"ci_high", e.ci_high}, {"n", e.n}}, r,
          now));
    }
  }
  for (const auto& c : r.correlations)
    if (c.significant)
      rows.push_back(pattern_row("pattern", "correlation", c.name, 1 - c.p_adjusted,
                                 fmt::format("{} ({}): r = {:.3f} (95% CI {:.3f} .. {:.3f}, n {}, BH-adjusted p {:.3g})",
                                             c.name, c.method, c.result.r, c.result.ci_low, c.result.ci_high, c.result.n,
                                             c.p_adjusted),
                                 "An association, not a cause: check it with an A/B test before acting on it.",
                                 {{"r", c.result.r}, {"p_adjusted", c.p_adjusted}, {"method", c.method}}, r, now));
  for (const auto& d : r.drifts)
    rows.push_back(pattern_row("pattern", "drift", d.metric, 1.0,
                               fmt::format("{} changed at {} ({}): mean {:.3g} before, {:.3g} after", d.metric,
                                           format_rfc3339(d.time), d.detector, d.mean_before, d.mean_after),
                               "Look for a deployment, template or traffic change at that time.",
                               {{"detector", d.detector}, {"time", format_rfc3339(d.time)}, {"mean_before", d.mean_before},
                                {"mean_after", d.mean_after}},
                               r, now));
  for (const auto& c : r.clusters.clusters)
    rows.push_back(pattern_row("pattern", "topic_cluster", fmt::format("{}", fmt::join(c.top_keywords, " ")), 1.0,
                               fmt::format("topic of {} prompts: {}", c.size, fmt::join(c.top_keywords, ", ")),
                               "Consider a template specialised for this topic if it is large and its quality is low.",
                               {{"size", c.size}, {"top_keywords", c.top_keywords}}, r, now));
  return rows;
}

/// Writes the rows of one analysis and its listed anomalies (inside the caller's transaction).
void write_analysis(store::Store& st, const std::vector<store::PatternRow>& rows, const patterns::AnalysisReport& r,
                    TimeMs now) {
  for (const auto& row : rows) st.insert_pattern(row);
  for (const auto& a : r.anomalies)
    st.insert_anomaly({a.metric, a.subject, a.interaction_id, a.time, a.value, a.score, a.detector, now});
}

/// Runs the tasks on `threads` threads (the caller's and threads - 1 more), handing them out in order;
/// rethrows the first exception once all have finished.
void run_tasks(const std::vector<std::function<void()>>& tasks, int threads) {
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < tasks.size();) {
      try {
        tasks[i]();
      } catch (...) {
        const std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  const std::size_t extra = std::min<std::size_t>(tasks.size(), static_cast<std::size_t>(std::max(threads, 1))) - (tasks.empty() ? 0 : 1);
  for (std::size_t t = 0; t < extra; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

/// AnalysisOptions::threads resolved: 0 = hardware threads, at most 4.
int resolve_threads(int threads) {
  if (threads > 0) return threads;
  return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
}

}  // namespace

patterns::AnalysisReport LearningEngine::analyze_window(TimeMs from, TimeMs to, std::size_t max_events, int threads) {
  flush();  // what this process recorded is part of the analysis
  // Connections of its own: one SELECT is one consistent snapshot (WAL), and recording in this process
  // is not held up while a large window is read. With several threads the interactions are split into
  // interaction_id ranges, each read on its own connection (its own snapshot: a row committed meanwhile
  // may be seen by one part and not by another, as if read a moment later).
  // Memory-mapped reads: a million interactions are a ~2 GB scan, and copying every page out of the OS
  // cache through read() took more time than the whole analysis. The library never shrinks the file (no
  // VACUUM), which is what makes a mapping unsafe.
  auto open_reader = [&] {
    auto st = std::make_unique<store::Store>(path_);
    st->db().exec("PRAGMA mmap_size = 2147418112");
    return st;
  };
  const std::unique_ptr<store::Store> reader = open_reader();
  const std::vector<std::string> splits = reader->interaction_key_splits(threads, from, to);
  std::vector<std::vector<patterns::EventRecord>> parts(splits.size() + 1);
  std::vector<std::function<void()>> loads;
  for (std::size_t i = 0; i < parts.size(); ++i)
    loads.emplace_back([&, i] {
      const std::string lo = i == 0 ? "" : splits[i - 1], hi = i < splits.size() ? splits[i] : "";
      if (i == 0) parts[i] = reader->analysis_events_in_keys(from, to, lo, hi);
      else parts[i] = open_reader()->analysis_events_in_keys(from, to, lo, hi);
    });
  run_tasks(loads, threads);
  const std::vector<patterns::EventRecord> events = store::Store::time_ordered(std::move(parts), max_events);
  return patterns::analyze(events, from, to, params_from(config_),
                           [threads](const std::vector<std::function<void()>>& tasks) { run_tasks(tasks, threads); });
}

patterns::AnalysisReport LearningEngine::analyze(const AnalysisOptions& options) {
  if (options.days < 1) throw ConfigError("analysis.days", fmt::format("{} is less than 1", options.days));
  if (options.max_events < 1) throw ConfigError("analysis.max_events", "must be >= 1");
  if (options.threads < 0) throw ConfigError("analysis.threads", fmt::format("{} is negative", options.threads));
  const TimeMs now = clock_->now_ms();
  const bool explicit_window = options.to > options.from;
  const TimeMs to = explicit_window ? options.to : now + 1;
  const TimeMs from = explicit_window ? options.from : now - static_cast<TimeMs>(options.days) * kDay;
  patterns::AnalysisReport r = analyze_window(from, to, options.max_events, resolve_threads(options.threads));
  if (options.persist) {
    const auto rows = pattern_rows(r, now);
    collector_->with_store([&](store::Store& st) {
      store::Transaction tx(st.db());
      write_analysis(st, rows, r, now);
      tx.commit();
    });
  }
  return r;
}

std::size_t LearningEngine::run_pattern_job(TimeMs now) {
  patterns::AnalysisReport r = analyze_window(now - kPatternJobDays * kDay, now + 1, 2000000, 1);
  const auto rows = pattern_rows(r, now);
  const TimeMs keep_from = now - static_cast<TimeMs>(config_.learning.data_retention.pattern_data_days) * kDay;
  return collector_->with_store([&](store::Store& st) {
    store::Transaction tx(st.db());
    st.prune_patterns(keep_from);
    write_analysis(st, rows, r, now);
    st.audit(now, "engine", "patterns",
             nlohmann::json{{"events", r.events}, {"patterns", rows.size()}, {"anomalies", r.anomalies.size()},
                            {"window_start", format_rfc3339(r.from)}}
                 .dump());
    tx.commit();
    return rows.size() + r.anomalies.size();
  });
}

}  // namespace promptlearn
