#pragma once
/// @file
/// The pattern analysis of a set of events: every detector of patterns/ run over one window and gathered
/// into one JSON-serialisable AnalysisReport (frequency, correlations, template effectiveness, anomalies,
/// drift, topic clusters, trend and seasonality, insights). Layer 2: a pure function of in-memory events;
/// the engine loads the events from the SQLite file and persists the insights
/// (LearningEngine::analyze, src/engine/analysis.cpp).
///
///     promptlearn::patterns::AnalysisReport r = promptlearn::patterns::analyze(events, from, to, {});
///     std::cout << promptlearn::patterns::to_json(r).dump(2);
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/features/tokenizer.hpp"
#include "promptlearn/patterns/anomaly.hpp"
#include "promptlearn/patterns/clustering.hpp"
#include "promptlearn/patterns/event.hpp"
#include "promptlearn/patterns/frequency.hpp"
#include "promptlearn/patterns/insights.hpp"
#include "promptlearn/patterns/statistics.hpp"

namespace promptlearn::patterns {

/// Knobs of analyze(); the member initialisers are the defaults.
struct AnalysisParams {
  FrequencyParams frequency;              ///< temporal, sessions, content, behaviour
  InsightParams insights;                 ///< user and performance insights
  DbscanParams clustering;                ///< topic clusters (config: learning_strategies.pattern_recognition)
  std::size_t max_cluster_points = 20000; ///< the newest events with keywords that are clustered; >= 1
  int cluster_hash_dim = 64;              ///< keywords are hashed into this many dimensions; >= 2
  double significance = 0.05;             ///< false discovery rate of the correlation tests (BH); (0, 1)
  /// FusedAnomalyDetector score (-log10 tail p) counted as an anomaly; > 0. 5, the detector's own default:
  /// each of its 8 components false-alarms at ~10^-s, so 3 gave 23-76 false findings per 5000 values.
  double anomaly_score = 5.0;
  double contextual_z = 3.5;              ///< robust z of a value against its template|domain|hour baseline; > 0
  /// Robust z (|x - rolling median| / (1.4826 MAD) over the previous 100 values) counted as an anomaly
  /// whatever the fused score; > 0. At 6 a normal value exceeds it with probability ~2e-9. It catches
  /// spikes that recur often (say 1% of values, like GC pauses in latency): the fused detector calibrates
  /// every component on the stream's own past, so by the tenth such spike it rates them ~2 (p ~ 1%).
  double robust_z = 6.0;
  std::size_t max_anomalies_listed = 200; ///< the report lists the highest-scoring ones; all are counted
  /// The newest values of each stream given to the anomaly and drift detectors; >= 30. The fused detector
  /// scores ~380k values/s, so two streams of a million values would cost ~5 s of an interactive call.
  std::size_t max_stream_points = 200000;
  /// @throws ConfigError naming the key.
  void validate() const {
    frequency.validate();
    insights.validate();
    clustering.validate();
    if (max_cluster_points < 1) throw ConfigError("max_cluster_points", "must be >= 1");
    if (cluster_hash_dim < 2) throw ConfigError("cluster_hash_dim", fmt::format("{} is less than 2", cluster_hash_dim));
    if (!(significance > 0 && significance < 1))
      throw ConfigError("significance", fmt::format("{} is outside (0, 1)", significance));
    if (!(anomaly_score > 0)) throw ConfigError("anomaly_score", fmt::format("{} is not > 0", anomaly_score));
    if (!(contextual_z > 0)) throw ConfigError("contextual_z", fmt::format("{} is not > 0", contextual_z));
    if (!(robust_z > 0)) throw ConfigError("robust_z", fmt::format("{} is not > 0", robust_z));
    if (max_stream_points < 30) throw ConfigError("max_stream_points", fmt::format("{} is less than 30", max_stream_points));
  }
};

/// One tested association between two quantities.
struct CorrelationFinding {
  std::string name;      ///< e.g. "complexity vs response_time_ms"
  std::string method;    ///< pearson | spearman
  Correlation result;
  double p_adjusted = 1; ///< Benjamini-Hochberg over every correlation of the report
  bool significant = false;
};

/// Does the template matter for quality? Over all events with an outcome and a template.
struct TemplateEffect {
  AnovaResult anova;
  KruskalWallisResult kruskal_wallis;
  std::vector<EffectivenessRow> by_domain;  ///< per (domain, template): n, mean quality, 95% interval
  std::size_t observations = 0;
};

/// One anomalous value of a stream.
struct AnomalyFinding {
  std::string metric;          ///< response_quality_score | total_processing_time_ms
  std::string subject;         ///< "" (the whole stream) or the context key template|domain|hour
  std::string detector;        ///< fused | robust_z | contextual_mad
  std::string interaction_id;
  TimeMs time = 0;
  double value = 0;
  double score = 0;
};

/// A change of level found by a drift detector.
struct DriftFinding {
  std::string metric;
  std::string detector;        ///< page_hinkley | adwin
  TimeMs time = 0;             ///< of the first value after the change
  std::uint64_t index = 0;     ///< position in the metric's stream (time order)
  double mean_before = 0, mean_after = 0;  ///< over the stretches between detected changes
};

/// Trend and seasonality of the window.
struct TrendSection {
  std::size_t days = 0;                   ///< days with at least one outcome
  LinearTrend daily_quality;              ///< mean quality per day against the day index (slope per day)
  bool daily_quality_valid = false;
  std::vector<SeasonalLag> hourly_volume; ///< interactions per hour at lags 24 (daily) and 168 (weekly)
};

/// Everything analyze() found.
struct AnalysisReport {
  TimeMs from = 0, to = 0;
  std::size_t events = 0;
  std::size_t outcomes = 0;
  FrequencyReport frequency;
  std::vector<CorrelationFinding> correlations;
  std::optional<TemplateEffect> template_effect;
  std::vector<AnomalyFinding> anomalies;  ///< the highest-scoring max_anomalies_listed, by time
  std::size_t anomalies_total = 0;
  std::size_t stream_points = 0;          ///< values of the longest stream the anomaly detectors saw
  std::vector<DriftFinding> drifts;
  Clustering clusters;                    ///< over the newest max_cluster_points events with keywords
  std::size_t clustered_points = 0;
  TrendSection trend;
  std::vector<Insight> insights;
};

namespace detail {

/// Keywords hashed into `dim` signed buckets, weighted 1 / sqrt(rank + 1): a topic vector for clustering.
inline Eigen::VectorXd keyword_vector(const std::vector<std::string>& keywords, int dim) {
  Eigen::VectorXd v = Eigen::VectorXd::Zero(dim);
  for (std::size_t k = 0; k < keywords.size(); ++k) {
    const std::uint64_t h = features::stable_hash(keywords[k]);
    const double sign = (h >> 63) ? -1.0 : 1.0;
    v(static_cast<Eigen::Index>(h % static_cast<std::uint64_t>(dim))) += sign / std::sqrt(static_cast<double>(k + 1));
  }
  return v;
}

inline void add_correlation(std::vector<CorrelationFinding>& out, const std::string& name, const std::vector<double>& x,
                            const std::vector<double>& y) {
  if (x.size() < 10) return;
  for (const char* method : {"pearson", "spearman"}) {
    CorrelationFinding f;
    f.name = name;
    f.method = method;
    f.result = std::string(method) == "pearson" ? pearson(x, y) : spearman(x, y);
    if (std::isnan(f.result.r)) continue;  // no variation
    out.push_back(std::move(f));
  }
}

inline std::vector<CorrelationFinding> correlations(const std::vector<EventRecord>& events, double q) {
  std::vector<double> cx, ry, tx, qy, ex, sy;
  std::unordered_map<std::string, int> seen;  // user -> interactions so far (experience)
  for (const EventRecord& e : events) {
    const int experience = e.user_id.empty() ? 0 : ++seen[e.user_id];
    if (e.complexity > 0 && present(e.total_processing_ms)) cx.push_back(e.complexity), ry.push_back(e.total_processing_ms);
    if (e.token_count > 0 && present(e.quality)) tx.push_back(e.token_count), qy.push_back(e.quality);
    if (experience > 0 && present(e.quality)) ex.push_back(experience), sy.push_back(e.quality);
  }
  std::vector<CorrelationFinding> out;
  add_correlation(out, "complexity vs total_processing_time_ms", cx, ry);
  add_correlation(out, "token_count vs response_quality_score", tx, qy);
  add_correlation(out, "experience (user's interaction count) vs response_quality_score", ex, sy);
  std::vector<double> p;
  for (const auto& f : out) p.push_back(f.result.p_value);
  if (!p.empty()) {
    const FdrResult fdr = benjamini_hochberg(p, q);
    for (std::size_t i = 0; i < out.size(); ++i) {
      out[i].p_adjusted = fdr.adjusted[i];
      out[i].significant = fdr.rejected[i];
    }
  }
  return out;
}

inline std::optional<TemplateEffect> template_effect(const std::vector<EventRecord>& events) {
  std::map<std::string, std::vector<double>> by_template;
  std::vector<QualityObservation> obs;
  for (const EventRecord& e : events) {
    if (e.template_id.empty() || !present(e.quality)) continue;
    by_template[e.template_id].push_back(e.quality);
    obs.push_back({e.domain.empty() ? "unknown" : e.domain, e.template_id, e.quality});
  }
  std::vector<std::vector<double>> groups;
  for (auto& [t, v] : by_template)
    if (v.size() >= 2) groups.push_back(std::move(v));
  if (groups.size() < 2) return std::nullopt;
  TemplateEffect t;
  t.anova = one_way_anova(groups);
  t.kruskal_wallis = kruskal_wallis(groups);
  t.by_domain = effectiveness_table(obs);
  t.observations = obs.size();
  return t;
}

/// One metric stream of the anomaly and drift detectors.
struct MetricStream {
  const char* metric;
  double EventRecord::*field;
  double range;  // ADWIN's value range (a typical spread); 0 = from the data
};
inline constexpr std::size_t kMetricStreams = 2;
inline const MetricStream& metric_stream(std::size_t i) {
  static const MetricStream streams[kMetricStreams] = {{"response_quality_score", &EventRecord::quality, 10.0},
                                                       {"total_processing_time_ms", &EventRecord::total_processing_ms, 0.0}};
  return streams[i];
}

/// What the detectors found on one stream.
struct StreamFindings {
  std::vector<AnomalyFinding> anomalies;
  std::vector<DriftFinding> drifts;
  std::size_t points = 0;
};

/// One stream (quality or processing time) through the fused detector, the rolling robust z and the
/// contextual baselines, and both drift detectors.
inline StreamFindings stream_anomalies(const std::vector<EventRecord>& events, const AnalysisParams& p, const MetricStream& s) {
  StreamFindings out;
  std::vector<AnomalyFinding>& found = out.anomalies;
  {
    std::vector<const EventRecord*> pts;
    for (auto it = events.rbegin(); it != events.rend() && pts.size() < p.max_stream_points; ++it) {
      const double v = (*it).*s.field;
      if (!present(v)) continue;
      if (!std::isfinite(v))
        throw ValidationError(fmt::format("events[{}].{}", events.rend() - it - 1, s.metric), fmt::format("{} is not a finite number", v));
      pts.push_back(&*it);
    }
    std::reverse(pts.begin(), pts.end());
    if (pts.size() < 30) return out;
    out.points = pts.size();
    FusedAnomalyDetector fused;
    RollingMedianMad robust;
    ContextualBaselines<RollingMedianMad> contextual;
    PageHinkley ph;
    Adwin::Params ap;
    if (s.range > 0) ap.value_range = s.range;
    else {
      std::vector<double> v;
      for (const EventRecord* e : pts) v.push_back(e->*s.field);
      ap.value_range = std::max(1e-9, quantile_of(v, 0.99) - quantile_of(v, 0.01));
    }
    Adwin adwin(ap);
    std::vector<std::pair<std::uint64_t, const char*>> changes;
    std::vector<std::size_t> fed;  // drift detectors' input index -> position in pts
    for (std::size_t i = 0; i < pts.size(); ++i) {
      const EventRecord& e = *pts[i];
      const double x = e.*s.field;
      const Verdict v = fused.update(x);
      if (present(v.score) && v.score >= p.anomaly_score)
        found.push_back({s.metric, "", "fused", e.interaction_id, e.time, x, v.score});
      const Verdict z = robust.update(x);
      const bool outlier = present(z.score) && z.score >= p.robust_z;
      if (outlier) found.push_back({s.metric, "", "robust_z", e.interaction_id, e.time, x, z.score});
      const std::string key = context_key(e.template_id, e.domain, local_hour(e.time, 0));
      const Verdict c = contextual.update(key, x);
      if (present(c.score) && c.score >= p.contextual_z)
        found.push_back({s.metric, key, "contextual_mad", e.interaction_id, e.time, x, c.score});
      // An isolated outlier is not a change of level: the drift detectors see only the other values (a
      // real shift enters them once the rolling median has moved, within ~half its window of 100).
      if (outlier) continue;
      fed.push_back(i);
      if (const DriftVerdict d = ph.update(x); d.drift && d.change_point < fed.size())
        changes.push_back({fed[d.change_point], "page_hinkley"});
      if (const DriftVerdict d = adwin.update(x); d.drift && d.change_point < fed.size())
        changes.push_back({fed[d.change_point], "adwin"});
    }
    // Means between consecutive detected changes (per detector).
    for (const char* det : {"page_hinkley", "adwin"}) {
      std::vector<std::uint64_t> cps;
      for (const auto& [cp, d] : changes)
        if (std::string(d) == det && cp < pts.size()) cps.push_back(cp);
      std::sort(cps.begin(), cps.end());
      cps.erase(std::unique(cps.begin(), cps.end()), cps.end());
      for (std::size_t k = 0; k < cps.size(); ++k) {
        const std::uint64_t lo = k == 0 ? 0 : cps[k - 1], hi = k + 1 < cps.size() ? cps[k + 1] : pts.size();
        RunningMoments before, after;
        for (std::uint64_t i = lo; i < cps[k]; ++i) before.add(pts[i]->*s.field);
        for (std::uint64_t i = cps[k]; i < hi; ++i) after.add(pts[i]->*s.field);
        out.drifts.push_back({s.metric, det, pts[cps[k]]->time, cps[k], before.mean(), after.mean()});
      }
    }
  }
  return out;
}

/// Gathers the streams' findings into the report: all anomalies counted, the highest-scoring listed.
inline void gather_anomalies(std::vector<StreamFindings>& streams, const AnalysisParams& p, AnalysisReport& r) {
  std::vector<AnomalyFinding> found;
  for (StreamFindings& f : streams) {
    r.stream_points = std::max(r.stream_points, f.points);
    found.insert(found.end(), std::make_move_iterator(f.anomalies.begin()), std::make_move_iterator(f.anomalies.end()));
    r.drifts.insert(r.drifts.end(), f.drifts.begin(), f.drifts.end());
  }
  r.anomalies_total = found.size();
  if (found.size() > p.max_anomalies_listed) {
    std::nth_element(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(p.max_anomalies_listed), found.end(),
                     [](const AnomalyFinding& a, const AnomalyFinding& b) { return a.score > b.score; });
    found.resize(p.max_anomalies_listed);
  }
  std::sort(found.begin(), found.end(), [](const AnomalyFinding& a, const AnomalyFinding& b) {
    return a.time != b.time ? a.time < b.time : a.score > b.score;
  });
  r.anomalies = std::move(found);
}

inline void topics(const std::vector<EventRecord>& events, const AnalysisParams& p, AnalysisReport& r) {
  std::vector<const EventRecord*> pick;
  for (auto it = events.rbegin(); it != events.rend() && pick.size() < p.max_cluster_points; ++it)
    if (!it->keywords.empty()) pick.push_back(&*it);
  std::reverse(pick.begin(), pick.end());
  r.clustered_points = pick.size();
  if (pick.empty()) return;
  Eigen::MatrixXd rows(static_cast<Eigen::Index>(pick.size()), p.cluster_hash_dim);
  std::vector<std::vector<std::string>> kw;
  kw.reserve(pick.size());
  for (std::size_t i = 0; i < pick.size(); ++i) {
    rows.row(static_cast<Eigen::Index>(i)) = keyword_vector(pick[i]->keywords, p.cluster_hash_dim).transpose();
    kw.push_back(pick[i]->keywords);
  }
  r.clusters = cluster_topics(rows, kw, p.clustering);
}

inline void trends(const std::vector<EventRecord>& events, TimeMs from, TimeMs to, AnalysisReport& r) {
  std::map<std::int64_t, RunningMoments> per_day;
  for (const EventRecord& e : events)
    if (present(e.quality) && e.time >= from && e.time < to) per_day[(e.time - from) / 86400000LL].add(e.quality);
  r.trend.days = per_day.size();
  if (per_day.size() >= 3) {
    std::vector<double> d, q;
    for (const auto& [day, m] : per_day) d.push_back(static_cast<double>(day)), q.push_back(m.mean());
    r.trend.daily_quality = linear_trend(d, q);
    r.trend.daily_quality_valid = true;
  }
  const std::int64_t hours = (to - from) / 3600000LL;
  if (hours >= 2 * 24 && hours <= 24 * 3660) {
    std::vector<double> volume(static_cast<std::size_t>(hours), 0.0);
    for (const EventRecord& e : events) {
      if (e.time < from) continue;  // (t - from) / h truncates towards 0: earlier events would land in hour 0
      const std::int64_t h = (e.time - from) / 3600000LL;
      if (h < hours) volume[static_cast<std::size_t>(h)] += 1;
    }
    std::vector<std::size_t> lags{kHourlyDailyLag};
    if (hours >= 2 * 168) lags.push_back(kHourlyWeeklyLag);
    r.trend.hourly_volume = seasonality(volume, lags);
  }
}

}  // namespace detail

/// Runs a batch of independent tasks and returns when all have run; an exception of a task is rethrown
/// (the first one, after the others finished). The default (empty) runner runs them in order on the
/// calling thread; the engine passes one with a few threads (AnalysisOptions::threads). The tasks are
/// listed costliest first, so a runner that hands them out in order balances well.
using TaskRunner = std::function<void(const std::vector<std::function<void()>>& tasks)>;

/// Runs every detector over `events` (in time order; the window [from, to) is for the trend and the
/// report). The detectors are independent: `run` may run them concurrently (they only read `events`,
/// and each writes its own part of the report). The report does not depend on the runner.
/// @throws ConfigError naming a parameter; ValidationError for an event out of order.
inline AnalysisReport analyze(const std::vector<EventRecord>& events, TimeMs from, TimeMs to, const AnalysisParams& p = {},
                              const TaskRunner& run = {}) {
  p.validate();
  for (std::size_t i = 1; i < events.size(); ++i)
    if (events[i].time < events[i - 1].time)
      throw ValidationError(fmt::format("events[{}].time", i), "is earlier than the event before it (expected time order)");
  AnalysisReport r;
  r.from = from;
  r.to = to;
  r.events = events.size();
  for (const EventRecord& e : events) r.outcomes += present(e.quality) ? 1 : 0;
  std::vector<detail::StreamFindings> streams(detail::kMetricStreams);
  std::vector<std::function<void()>> tasks;  // costliest first (seconds at a million events in comments)
  // (Splitting frequency into its counts and its session half was measured: no faster on two threads.)
  tasks.emplace_back([&] { r.frequency = analyze_frequency(events, p.frequency); });                      // 1.5
  for (std::size_t i = 0; i < detail::kMetricStreams; ++i)                                                // 0.6 each
    tasks.emplace_back([&, i] { streams[i] = detail::stream_anomalies(events, p, detail::metric_stream(i)); });
  tasks.emplace_back([&] { r.insights = derive_insights(events, p.insights); });                          // 0.8
  tasks.emplace_back([&] { detail::topics(events, p, r); });                                              // 0.75
  tasks.emplace_back([&] { r.correlations = detail::correlations(events, p.significance); });             // 0.65
  tasks.emplace_back([&] { r.template_effect = detail::template_effect(events); });                       // 0.5
  tasks.emplace_back([&] { detail::trends(events, from, to, r); });                                       // 0.02
  if (run) run(tasks);
  else for (const auto& t : tasks) t();
  detail::gather_anomalies(streams, p, r);
  return r;
}

namespace detail {
inline nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }
inline nlohmann::json correlation_json(const Correlation& c) {
  return {{"r", number_or_null(c.r)},         {"n", c.n},
          {"p_value", number_or_null(c.p_value)}, {"ci_low", number_or_null(c.ci_low)},
          {"ci_high", number_or_null(c.ci_high)}, {"confidence", c.confidence}};
}
inline nlohmann::json trend_json(const LinearTrend& t) {
  return {{"slope", number_or_null(t.slope)},     {"intercept", number_or_null(t.intercept)},
          {"se_slope", number_or_null(t.se_slope)}, {"ci_low", number_or_null(t.ci_low)},
          {"ci_high", number_or_null(t.ci_high)}, {"p_value", number_or_null(t.p_value)},
          {"r_squared", number_or_null(t.r_squared)}, {"n", t.n}};
}
}  // namespace detail

/// The report as JSON (long per-session and per-retry lists are summarised by their counts).
inline nlohmann::json to_json(const AnalysisReport& r) {
  using detail::number_or_null;
  nlohmann::json j;
  j["window"] = {{"from", format_rfc3339(r.from)}, {"to", format_rfc3339(r.to)}};
  j["events"] = r.events;
  j["outcomes"] = r.outcomes;
  nlohmann::json freq = r.frequency;
  if (freq.contains("sessions")) freq["sessions"].erase("sessions");
  if (freq.contains("behaviour")) freq["behaviour"].erase("retry_indices");
  j["frequency"] = std::move(freq);
  nlohmann::json corr = nlohmann::json::array();
  for (const auto& c : r.correlations)
    corr.push_back({{"name", c.name}, {"method", c.method}, {"result", detail::correlation_json(c.result)},
                    {"p_adjusted", c.p_adjusted}, {"significant", c.significant}});
  j["correlations"] = std::move(corr);
  if (r.template_effect) {
    const TemplateEffect& t = *r.template_effect;
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& e : t.by_domain)
      rows.push_back({{"domain", e.domain}, {"template", e.template_id}, {"n", e.n}, {"mean_quality", e.mean},
                      {"ci_low", number_or_null(e.ci_low)}, {"ci_high", number_or_null(e.ci_high)}});
    j["template_effect"] = {
        {"observations", t.observations},
        {"anova", {{"f", number_or_null(t.anova.f)}, {"df_between", t.anova.df_between}, {"df_within", t.anova.df_within},
                   {"p_value", number_or_null(t.anova.p_value)}, {"eta_squared", number_or_null(t.anova.eta_squared)},
                   {"omega_squared", number_or_null(t.anova.omega_squared)}}},
        {"kruskal_wallis", {{"h", number_or_null(t.kruskal_wallis.h)}, {"df", t.kruskal_wallis.df},
                            {"p_value", number_or_null(t.kruskal_wallis.p_value)},
                            {"epsilon_squared", number_or_null(t.kruskal_wallis.epsilon_squared)}}},
        {"by_domain", rows}};
  } else {
    j["template_effect"] = nullptr;
  }
  nlohmann::json an = nlohmann::json::array();
  for (const auto& a : r.anomalies)
    an.push_back({{"metric", a.metric}, {"subject", a.subject}, {"detector", a.detector},
                  {"interaction_id", a.interaction_id}, {"time", format_rfc3339(a.time)}, {"value", a.value},
                  {"score", a.score}});
  j["anomalies"] = {{"total", r.anomalies_total}, {"stream_points", r.stream_points}, {"listed", std::move(an)}};
  nlohmann::json dr = nlohmann::json::array();
  for (const auto& d : r.drifts)
    dr.push_back({{"metric", d.metric}, {"detector", d.detector}, {"time", format_rfc3339(d.time)}, {"index", d.index},
                  {"mean_before", d.mean_before}, {"mean_after", d.mean_after}});
  j["drift"] = std::move(dr);
  nlohmann::json cl = nlohmann::json::array();
  for (const auto& c : r.clusters.clusters)
    cl.push_back({{"id", c.id}, {"size", c.size}, {"top_keywords", c.top_keywords}});
  j["clusters"] = {{"points", r.clustered_points}, {"noise", r.clusters.noise}, {"topics", std::move(cl)}};
  nlohmann::json season = nlohmann::json::array();
  for (const auto& s : r.trend.hourly_volume)
    season.push_back({{"lag_hours", s.lag}, {"acf", number_or_null(s.acf)}, {"bound", s.bound}, {"significant", s.significant}});
  j["trend"] = {{"days_with_outcomes", r.trend.days},
                {"daily_quality", r.trend.daily_quality_valid ? detail::trend_json(r.trend.daily_quality) : nlohmann::json()},
                {"hourly_volume_seasonality", std::move(season)}};
  j["insights"] = r.insights;
  return j;
}

}  // namespace promptlearn::patterns
