#pragma once
/// @file
/// Insights: user insights (peak hours, dominant template, skill progression) and performance insights
/// (bottleneck stage, efficiency), each with its evidence in figures, a confidence and a recommendation in
/// plain words. Layer 2: pure functions of in-memory events (patterns/event.hpp), no I/O, no clock.
///
///     auto insights = promptlearn::patterns::derive_insights(events, {});
///     for (const auto& i : insights) std::cout << i.description << " -> " << i.recommendation << "\n";
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/stats.hpp"
#include "promptlearn/patterns/event.hpp"
#include "promptlearn/patterns/statistics.hpp"
#include "promptlearn/select/ab_test.hpp"

namespace promptlearn::patterns {

/// One insight: what was found, how sure, what to do.
struct Insight {
  std::string type;            ///< peak_hours | dominant_template | skill_progression | bottleneck | efficiency
  std::string subject;         ///< the user id for user insights, "" for the population
  double confidence = 0;       ///< in [0, 1]: 1 - p-value of the test behind it (documented per type)
  std::string description;     ///< one sentence with the key figures
  std::string recommendation;  ///< what to do about it, in plain words
  nlohmann::json evidence = nlohmann::json::object();  ///< the figures behind it
};

inline void to_json(nlohmann::json& j, const Insight& i) {
  j = {{"type", i.type},
       {"subject", i.subject},
       {"confidence", i.confidence},
       {"description", i.description},
       {"recommendation", i.recommendation},
       {"evidence", i.evidence}};
}

/// Knobs of derive_insights.
struct InsightParams {
  int min_user_events = 20;        ///< users with fewer interactions get no user insight; >= 2
  int min_template_outcomes = 5;   ///< outcomes a template needs to be compared for a user; >= 2
  double significance = 0.05;      ///< a test must reach this p-value for an insight to be reported; (0, 1)
  int utc_offset_minutes = 0;      ///< local time of the hours reported; [-1440, 1440]
  /// @throws ConfigError naming the key.
  void validate() const {
    if (min_user_events < 2) throw ConfigError("min_user_events", fmt::format("{} is less than 2", min_user_events));
    if (min_template_outcomes < 2)
      throw ConfigError("min_template_outcomes", fmt::format("{} is less than 2", min_template_outcomes));
    if (!(significance > 0 && significance < 1))
      throw ConfigError("significance", fmt::format("{} is outside (0, 1)", significance));
    if (utc_offset_minutes < -1440 || utc_offset_minutes > 1440)
      throw ConfigError("utc_offset_minutes", fmt::format("{} is outside [-1440, 1440]", utc_offset_minutes));
  }
};

namespace detail {

inline int local_hour(TimeMs t, int offset_minutes) {
  const std::int64_t minutes = t / 60000 + offset_minutes;
  const std::int64_t m = ((minutes % 1440) + 1440) % 1440;
  return static_cast<int>(m / 60);
}

/// The smallest set of hours (by count, descending) holding at least `share` of the events, sorted.
inline std::vector<int> busiest_hours(const std::array<double, 24>& counts, double share) {
  std::vector<int> order(24);
  for (int h = 0; h < 24; ++h) order[static_cast<std::size_t>(h)] = h;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return counts[static_cast<std::size_t>(a)] > counts[static_cast<std::size_t>(b)]; });
  double total = 0;
  for (double c : counts) total += c;
  std::vector<int> out;
  double acc = 0;
  for (int h : order) {
    if (acc >= share * total) break;
    acc += counts[static_cast<std::size_t>(h)];
    out.push_back(h);
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// "09-11, 14" style list of hour ranges.
inline std::string hour_ranges(const std::vector<int>& hours) {
  std::string out;
  for (std::size_t i = 0; i < hours.size();) {
    std::size_t j = i;
    while (j + 1 < hours.size() && hours[j + 1] == hours[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += j == i ? fmt::format("{:02d}:00", hours[i]) : fmt::format("{:02d}:00-{:02d}:59", hours[i], hours[j]);
    i = j + 1;
  }
  return out;
}

inline double quantile_of(std::vector<double> v, double q) {
  if (v.empty()) return kMissing;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(pos);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

/// Peak hours of one user: chi-square of the 24 hourly counts against uniform (confidence 1 - p).
inline std::optional<Insight> peak_hours_insight(const std::string& user, const std::vector<const EventRecord*>& ev,
                                                 const InsightParams& p) {
  std::array<double, 24> counts{};
  for (const EventRecord* e : ev) counts[static_cast<std::size_t>(local_hour(e->time, p.utc_offset_minutes))] += 1;
  const double n = static_cast<double>(ev.size()), expected = n / 24.0;
  double chi2 = 0;
  for (double c : counts) chi2 += (c - expected) * (c - expected) / expected;
  const double pv = chi_square_sf(chi2, 23);
  if (pv >= p.significance) return std::nullopt;
  const std::vector<int> hours = busiest_hours(counts, 0.5);
  double in_peak = 0;
  for (int h : hours) in_peak += counts[static_cast<std::size_t>(h)];
  Insight i;
  i.type = "peak_hours";
  i.subject = user;
  i.confidence = 1 - pv;
  i.evidence = {{"hours", hours},           {"share", in_peak / n}, {"interactions", ev.size()},
                {"chi_square", chi2},       {"p_value", pv},        {"hourly_counts", counts},
                {"utc_offset_minutes", p.utc_offset_minutes}};
  i.description = fmt::format("{} is most active at {} ({:.0f}% of {} interactions in {} of 24 hours)", user,
                              hour_ranges(hours), 100 * in_peak / n, ev.size(), hours.size());
  i.recommendation = fmt::format(
      "Run retraining and other heavy jobs outside {}; keep this user's templates cached during those hours.",
      hour_ranges(hours));
  return i;
}

/// Dominant template of one user, compared with the user's best template by mean quality (Welch's test).
inline std::optional<Insight> dominant_template_insight(const std::string& user,
                                                        const std::vector<const EventRecord*>& ev,
                                                        const InsightParams& p) {
  std::map<std::string, std::size_t> uses;
  std::map<std::string, RunningMoments> quality;
  for (const EventRecord* e : ev) {
    if (e->template_id.empty()) continue;
    ++uses[e->template_id];
    if (present(e->quality)) quality[e->template_id].add(e->quality);
  }
  if (uses.empty()) return std::nullopt;
  auto dom = std::max_element(uses.begin(), uses.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  std::size_t used = 0;
  for (const auto& [t, c] : uses) used += c;
  const double share = static_cast<double>(dom->second) / static_cast<double>(used);
  // The best template with enough outcomes.
  std::string best;
  for (const auto& [t, m] : quality)
    if (m.count() >= static_cast<std::uint64_t>(p.min_template_outcomes) &&
        (best.empty() || m.mean() > quality[best].mean()))
      best = t;
  Insight i;
  i.type = "dominant_template";
  i.subject = user;
  i.evidence = {{"template", dom->first}, {"share", share}, {"uses", dom->second}, {"interactions_with_template", used}};
  nlohmann::json per_template = nlohmann::json::object();
  for (const auto& [t, m] : quality)
    per_template[t] = {{"outcomes", m.count()}, {"mean_quality", m.mean()}, {"uses", uses[t]}};
  i.evidence["quality_by_template"] = per_template;
  const auto dq = quality.find(dom->first);
  const bool dom_measured = dq != quality.end() && dq->second.count() >= static_cast<std::uint64_t>(p.min_template_outcomes);
  if (!best.empty() && best != dom->first && dom_measured) {
    select::AbArmStats a{best, quality[best], 0}, b{dom->first, dq->second, 0};
    const select::AbTestResult t = select::welch_t_test(a, b);
    i.evidence["best_template"] = best;
    i.evidence["difference"] = t.difference;
    i.evidence["ci_low"] = t.ci_low;
    i.evidence["ci_high"] = t.ci_high;
    i.evidence["p_value"] = t.p_value;
    if (t.p_value < p.significance && t.difference > 0) {
      i.confidence = 1 - t.p_value;
      i.description = fmt::format(
          "{} uses {} for {:.0f}% of prompts, but {} gives them better responses: mean quality {:.2f} vs {:.2f} "
          "(difference {:.2f}, 95% CI {:.2f} .. {:.2f})",
          user, dom->first, 100 * share, best, quality[best].mean(), dq->second.mean(), t.difference, t.ci_low,
          t.ci_high);
      i.recommendation = fmt::format("Prefer {} for {}; keep {} as the fallback.", best, user, dom->first);
      return i;
    }
  }
  // No better alternative shown: report the habit when it is clearly dominant (binomial vs an even split).
  const double k = static_cast<double>(uses.size());
  if (k < 2) return std::nullopt;
  const double p0 = 1.0 / k, nn = static_cast<double>(used);
  const double z = (share - p0) / std::sqrt(p0 * (1 - p0) / nn);
  const double pv = normal_sf(z);
  if (pv >= p.significance || share < 0.5) return std::nullopt;
  i.confidence = 1 - pv;
  i.description = fmt::format("{} relies on {} for {:.0f}% of {} prompts{}", user, dom->first, 100 * share, used,
                              dom_measured ? fmt::format(" (mean quality {:.2f})", dq->second.mean()) : "");
  i.recommendation = dom_measured
                         ? fmt::format("Make {} the default for {}; no other template did measurably better.", dom->first, user)
                         : fmt::format("Collect outcomes for {}'s prompts before changing their default ({}).", user, dom->first);
  return i;
}

/// Skill progression: OLS slope of quality against the user's interaction index (1-based, time order).
inline std::optional<Insight> skill_progression_insight(const std::string& user,
                                                        const std::vector<const EventRecord*>& ev,
                                                        const InsightParams& p) {
  std::vector<double> idx, q;
  for (std::size_t k = 0; k < ev.size(); ++k)
    if (present(ev[k]->quality)) {
      idx.push_back(static_cast<double>(k + 1));
      q.push_back(ev[k]->quality);
    }
  if (q.size() < static_cast<std::size_t>(std::max(p.min_user_events / 2, 3))) return std::nullopt;
  double mn = *std::min_element(q.begin(), q.end()), mx = *std::max_element(q.begin(), q.end());
  if (mn == mx) return std::nullopt;
  const LinearTrend t = linear_trend(idx, q, 0.95);
  if (!(t.p_value < p.significance)) return std::nullopt;
  Insight i;
  i.type = "skill_progression";
  i.subject = user;
  i.confidence = 1 - t.p_value;
  const bool up = t.slope > 0;
  const double per100 = 100 * t.slope;
  i.evidence = {{"slope_per_interaction", t.slope}, {"ci_low", t.ci_low}, {"ci_high", t.ci_high},
                {"p_value", t.p_value},             {"outcomes", q.size()}, {"r_squared", t.r_squared}};
  i.description = fmt::format("{}'s response quality {} by {:.2f} points per 100 interactions (95% CI {:.2f} .. {:.2f}, "
                              "{} outcomes)",
                              user, up ? "rises" : "falls", std::abs(per100), 100 * t.ci_low, 100 * t.ci_high, q.size());
  i.recommendation = up ? fmt::format("{} is getting better at prompting: offer lighter templates with less scaffolding.", user)
                        : fmt::format("{}'s results are slipping: offer more structured templates and check recent template changes.", user);
  return i;
}

/// The bottleneck stage: the largest mean share of total_processing_ms among the four stages.
inline std::optional<Insight> bottleneck_insight(const std::vector<EventRecord>& events) {
  static const char* kStages[4] = {"template_selection", "enhancement_generation", "validation", "cleanup"};
  std::array<std::vector<double>, 4> ms;
  std::vector<double> total;
  for (const EventRecord& e : events) {
    const double s[4] = {e.template_selection_ms, e.enhancement_generation_ms, e.validation_ms, e.cleanup_ms};
    if (!present(e.total_processing_ms)) continue;
    bool all = true;
    for (double v : s) all = all && present(v);
    if (!all) continue;
    total.push_back(e.total_processing_ms);
    for (int k = 0; k < 4; ++k) ms[static_cast<std::size_t>(k)].push_back(s[k]);
  }
  if (total.size() < 10) return std::nullopt;
  double total_sum = 0;
  for (double v : total) total_sum += v;
  nlohmann::json stages = nlohmann::json::object();
  int worst = 0;
  double worst_share = -1;
  std::array<double, 4> share{};
  for (int k = 0; k < 4; ++k) {
    double sum = 0;
    for (double v : ms[static_cast<std::size_t>(k)]) sum += v;
    share[static_cast<std::size_t>(k)] = total_sum > 0 ? sum / total_sum : 0;
    stages[kStages[k]] = {{"mean_ms", sum / static_cast<double>(total.size())},
                          {"p95_ms", quantile_of(ms[static_cast<std::size_t>(k)], 0.95)},
                          {"share_of_total", share[static_cast<std::size_t>(k)]}};
    if (share[static_cast<std::size_t>(k)] > worst_share) worst_share = share[static_cast<std::size_t>(k)], worst = k;
  }
  // Confidence: the leader's share exceeds the runner-up's, by a paired comparison of per-event shares.
  int second = worst == 0 ? 1 : 0;
  for (int k = 0; k < 4; ++k)
    if (k != worst && share[static_cast<std::size_t>(k)] > share[static_cast<std::size_t>(second)]) second = k;
  RunningMoments diff;
  for (std::size_t r = 0; r < total.size(); ++r)
    if (total[r] > 0) diff.add((ms[static_cast<std::size_t>(worst)][r] - ms[static_cast<std::size_t>(second)][r]) / total[r]);
  const double se = diff.standard_error();
  const double pv = se > 0 ? normal_sf(diff.mean() / se) : (diff.mean() > 0 ? 0.0 : 1.0);
  Insight i;
  i.type = "bottleneck";
  i.confidence = 1 - pv;
  i.evidence = {{"stage", kStages[worst]},
                {"stages", stages},
                {"interactions", total.size()},
                {"total_mean_ms", total_sum / static_cast<double>(total.size())},
                {"total_p95_ms", quantile_of(total, 0.95)},
                {"p_value_vs_next", pv}};
  i.description = fmt::format("{} takes {:.0f}% of processing time (mean {:.1f} ms, p95 {:.1f} ms of a {:.1f} ms total)",
                              kStages[worst], 100 * worst_share, stages[kStages[worst]]["mean_ms"].get<double>(),
                              stages[kStages[worst]]["p95_ms"].get<double>(), total_sum / static_cast<double>(total.size()));
  i.recommendation = worst == 0   ? "Speed up template selection: cache the policy snapshot and the user's features."
                     : worst == 1 ? "Speed up enhancement generation: shorten templates or cache rendered parts."
                     : worst == 2 ? "Validation dominates: validate once per template version, not per prompt."
                                  : "Cleanup dominates: batch or defer cleanup work off the request path.";
  return i;
}

/// Efficiency: quality points per second of processing, overall and per template; the most efficient
/// template with its advantage over the average (confidence from Welch's test on per-event efficiency).
inline std::optional<Insight> efficiency_insight(const std::vector<EventRecord>& events, const InsightParams& p) {
  std::map<std::string, RunningMoments> per_template;
  RunningMoments all;
  for (const EventRecord& e : events) {
    if (!present(e.quality) || !present(e.total_processing_ms) || !(e.total_processing_ms > 0)) continue;
    const double eff = e.quality / (e.total_processing_ms / 1000.0);
    all.add(eff);
    if (!e.template_id.empty()) per_template[e.template_id].add(eff);
  }
  if (all.count() < 10) return std::nullopt;
  Insight i;
  i.type = "efficiency";
  i.evidence = {{"efficiency_score", all.mean()}, {"unit", "quality points per processing second"},
                {"interactions", all.count()}};
  std::string best;
  for (const auto& [t, m] : per_template)
    if (m.count() >= static_cast<std::uint64_t>(p.min_template_outcomes) && (best.empty() || m.mean() > per_template[best].mean()))
      best = t;
  nlohmann::json by = nlohmann::json::object();
  for (const auto& [t, m] : per_template) by[t] = {{"efficiency", m.mean()}, {"n", m.count()}};
  i.evidence["by_template"] = by;
  i.description = fmt::format("efficiency score {:.1f} quality points per processing second over {} interactions",
                              all.mean(), all.count());
  i.confidence = 1.0;  // a measured figure, not a test
  i.recommendation = "Track this score after template changes: a drop means slower or worse enhancements.";
  if (!best.empty() && per_template.size() >= 2) {
    RunningMoments rest;
    for (const auto& [t, m] : per_template)
      if (t != best) rest.merge(m);
    if (rest.count() >= 2) {
      select::AbArmStats a{best, per_template[best], 0}, b{"others", rest, 0};
      const select::AbTestResult t = select::welch_t_test(a, b);
      i.evidence["most_efficient_template"] = best;
      i.evidence["p_value"] = t.p_value;
      if (t.p_value < p.significance && t.difference > 0) {
        i.confidence = 1 - t.p_value;
        i.description += fmt::format("; {} is the most efficient ({:.1f} vs {:.1f} for the others)", best,
                                     per_template[best].mean(), rest.mean());
        i.recommendation = fmt::format("Prefer {} where quality is comparable: it reaches it with the least processing.", best);
      }
    }
  }
  return i;
}

}  // namespace detail

/// All insights of a set of events: per user (with at least min_user_events interactions) peak hours,
/// dominant template and skill progression; for the population the bottleneck stage and the efficiency
/// score. An insight backed by a test is reported only when the test reaches `significance`.
/// @throws ConfigError naming the parameter.
inline std::vector<Insight> derive_insights(const std::vector<EventRecord>& events, const InsightParams& p = {}) {
  p.validate();
  std::unordered_map<std::string, std::vector<const EventRecord*>> by_user;
  for (const EventRecord& e : events)
    if (!e.user_id.empty()) by_user[e.user_id].push_back(&e);
  std::vector<std::string> users;
  for (const auto& [u, ev] : by_user)
    if (ev.size() >= static_cast<std::size_t>(p.min_user_events)) users.push_back(u);
  std::sort(users.begin(), users.end());
  std::vector<Insight> out;
  for (const std::string& u : users) {
    auto& ev = by_user[u];
    std::stable_sort(ev.begin(), ev.end(), [](const EventRecord* a, const EventRecord* b) { return a->time < b->time; });
    for (auto f : {detail::peak_hours_insight, detail::dominant_template_insight, detail::skill_progression_insight})
      if (auto i = f(u, ev, p)) out.push_back(std::move(*i));
  }
  if (auto i = detail::bottleneck_insight(events)) out.push_back(std::move(*i));
  if (auto i = detail::efficiency_insight(events, p)) out.push_back(std::move(*i));
  return out;
}

}  // namespace promptlearn::patterns
