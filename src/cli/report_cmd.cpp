// promptlearn report: one self-contained HTML file (inline CSS and SVG, no script, no network) with the
// reward per policy version, template share, latency percentiles, the weekly heat map of interactions,
// the correlation table and the insights of a window of a database file. Opens the file read-only.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cli.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/patterns/analysis.hpp"
#include "promptlearn/store/database.hpp"
#include "svg.hpp"

namespace promptlearn::cli {
namespace {

constexpr TimeMs kHour = 3600000LL, kDay = 86400000LL;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::size_t kMaxTemplatesShown = 9;     ///< the rest are stacked as "other"
constexpr std::size_t kMaxAnomaliesDrawn = 1000;

using svg::escape;

/// The report's time axis: the window [from, to) cut into UTC hours or UTC calendar days (the first and
/// last may be partial).
struct Buckets {
  TimeMs from = 0, to = 0, step = kDay;
  std::vector<TimeMs> starts;  ///< starts[i] .. end(i)
  TimeMs end(std::size_t i) const { return i + 1 < starts.size() ? starts[i + 1] : to; }
  TimeMs mid(std::size_t i) const { return (starts[i] + end(i)) / 2; }
  std::optional<std::size_t> index(TimeMs t) const {
    if (t < from || t >= to) return std::nullopt;
    const auto it = std::upper_bound(starts.begin(), starts.end(), t);
    return static_cast<std::size_t>(it - starts.begin()) - 1;
  }
  bool hourly() const { return step == kHour; }
};

Buckets make_buckets(TimeMs from, TimeMs to, TimeMs step) {
  Buckets b{from, to, step, {}};
  b.starts.push_back(from);
  for (TimeMs t = (from / step + 1) * step; t < to; t += step) b.starts.push_back(t);
  return b;
}

/// "2026-01-05T13" (an hour key from SQL) as the time of that hour.
std::optional<TimeMs> hour_key_time(const std::string& key) { return try_parse_rfc3339(key + ":00:00Z"); }

/// Everything the report shows, read before anything is written.
struct ReportData {
  Buckets buckets;
  std::string db_path;
  // 1. reward per bucket per policy version: sum and count
  std::map<std::string, std::vector<std::pair<double, std::uint64_t>>> reward;
  struct Event {
    TimeMs time;
    std::string action;
    nlohmann::json details;
  };
  std::vector<Event> events;  ///< deploys and rollbacks
  // 2. template share
  std::string template_source;  ///< "decisions" or "interactions"
  std::vector<std::string> templates;                 ///< most used first ("other" last when cut)
  std::vector<std::vector<std::uint64_t>> template_counts;  ///< [template][bucket]
  // 3. latency
  std::vector<double> p50, p95, p99;
  std::uint64_t latency_requests = 0;
  struct Anomaly {
    TimeMs time;
    double value;
    std::string detector;
  };
  std::vector<Anomaly> anomalies;     ///< total_processing_time_ms, the ones drawn
  std::uint64_t anomalies_total = 0;  ///< every metric, every detector, in the window
  std::string anomaly_source;
  // 4. heat map [weekday Monday=0][hour]
  std::uint64_t heat[7][24] = {};
  std::uint64_t interactions = 0, decisions = 0, rewarded = 0;
  std::optional<std::string> first_interaction, last_interaction;  ///< of the whole file
  // 5, 6.
  patterns::AnalysisReport analysis;
};

void read_sql(store::Database& db, ReportData& d) {
  const Buckets& b = d.buckets;
  const std::string from = format_rfc3339(b.from), to = format_rfc3339(b.to);
  auto window = [&](store::Statement& st) -> store::Statement& { return st.bind(1, from).bind(2, to); };

  {  // 1. reward per policy version
    store::Statement st(db,
                        "SELECT substr(timestamp, 1, 13), policy_name, policy_version, sum(reward), count(reward), count(*) "
                        "FROM decisions WHERE timestamp >= ?1 AND timestamp < ?2 GROUP BY 1, 2, 3");
    window(st);
    while (st.step()) {
      const auto t = hour_key_time(st.column_text(0));
      d.decisions += static_cast<std::uint64_t>(st.column_int64(5));
      const auto n = static_cast<std::uint64_t>(st.column_int64(4));
      if (!t || n == 0) continue;
      const auto i = b.index(*t);
      if (!i) continue;
      d.rewarded += n;
      auto& series = d.reward[fmt::format("{} v{}", st.column_text(1), st.column_int64(2))];
      series.resize(b.starts.size());
      series[*i].first += st.column_double(3);
      series[*i].second += n;
    }
  }
  {
    store::Statement st(db,
                        "SELECT timestamp, action, details FROM audit_log WHERE action IN ('deploy', 'rollback') "
                        "AND timestamp >= ?1 AND timestamp < ?2 ORDER BY timestamp");
    window(st);
    while (st.step())
      if (const auto t = try_parse_rfc3339(st.column_text(0)))
        d.events.push_back({*t, st.column_text(1), nlohmann::json::parse(st.column_text(2), nullptr, false)});
  }
  {  // 2. template share: the logged decisions, else the templates hosts applied
    std::map<std::string, std::vector<std::uint64_t>> counts;
    for (const char* sql :
         {"SELECT substr(timestamp, 1, 13), chosen_template, count(*) FROM decisions "
          "WHERE timestamp >= ?1 AND timestamp < ?2 GROUP BY 1, 2",
          "SELECT substr(timestamp, 1, 13), selected_template, count(*) FROM interactions "
          "WHERE timestamp >= ?1 AND timestamp < ?2 AND selected_template IS NOT NULL AND selected_template != '' "
          "GROUP BY 1, 2"}) {
      store::Statement st(db, sql);
      window(st);
      while (st.step()) {
        const auto t = hour_key_time(st.column_text(0));
        const auto i = t ? b.index(*t) : std::nullopt;
        if (!i) continue;
        auto& v = counts[st.column_text(1)];
        v.resize(b.starts.size());
        v[*i] += static_cast<std::uint64_t>(st.column_int64(2));
      }
      if (!counts.empty()) {
        d.template_source = std::string(sql).find("FROM decisions") != std::string::npos ? "decisions" : "interactions";
        break;
      }
    }
    std::vector<std::pair<std::uint64_t, std::string>> order;
    for (const auto& [name, v] : counts) {
      std::uint64_t n = 0;
      for (auto c : v) n += c;
      order.emplace_back(n, name);
    }
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& x) {
      return a.first != x.first ? a.first > x.first : a.second < x.second;
    });
    std::vector<std::uint64_t> other(b.starts.size(), 0);
    bool has_other = false;
    for (std::size_t k = 0; k < order.size(); ++k) {
      const auto& v = counts[order[k].second];
      if (k < kMaxTemplatesShown || order.size() == kMaxTemplatesShown + 1) {
        d.templates.push_back(order[k].second);
        d.template_counts.push_back(v);
      } else {
        has_other = true;
        for (std::size_t i = 0; i < v.size(); ++i) other[i] += v[i];
      }
    }
    if (has_other) {
      d.templates.push_back(fmt::format("other ({} templates)", order.size() - kMaxTemplatesShown));
      d.template_counts.push_back(other);
    }
  }
  {  // 3. anomalies (those written by the pattern job or analyze --persist)
    store::Statement all(db, "SELECT count(*) FROM anomalies WHERE timestamp >= ?1 AND timestamp < ?2");
    window(all);
    if (all.step()) d.anomalies_total = static_cast<std::uint64_t>(all.column_int64(0));
    store::Statement st(db,
                        "SELECT timestamp, value, group_concat(DISTINCT detector) FROM anomalies "
                        "WHERE metric = 'total_processing_time_ms' AND timestamp >= ?1 AND timestamp < ?2 "
                        "GROUP BY timestamp, value ORDER BY max(score) DESC LIMIT ?3");
    window(st).bind(3, static_cast<std::int64_t>(kMaxAnomaliesDrawn));
    while (st.step())
      if (const auto t = try_parse_rfc3339(st.column_text(0)))
        d.anomalies.push_back({*t, st.column_double(1), st.column_text(2)});
    d.anomaly_source = "the anomalies table";
  }
  {  // 4. heat map
    store::Statement st(db,
                        "SELECT substr(timestamp, 1, 13), count(*) FROM interactions "
                        "WHERE timestamp >= ?1 AND timestamp < ?2 GROUP BY 1");
    window(st);
    while (st.step()) {
      const auto t = hour_key_time(st.column_text(0));
      if (!t) continue;
      const auto n = static_cast<std::uint64_t>(st.column_int64(1));
      d.heat[day_of_week_utc(*t)][hour_of_day_utc(*t)] += n;
      d.interactions += n;
    }
    store::Statement span(db, "SELECT min(timestamp), max(timestamp) FROM interactions");
    if (span.step() && !span.is_null(0)) d.first_interaction = span.column_text(0), d.last_interaction = span.column_text(1);
  }
}

/// Latency percentiles of the total processing time per bucket (LearningEngine::metrics: rollups where
/// they cover the bucket, raw rows for the rest).
void read_latency(LearningEngine& engine, ReportData& d) {
  const Buckets& b = d.buckets;
  auto num = [](const nlohmann::json& v) { return v.is_number() ? v.get<double>() : kNaN; };
  for (std::size_t i = 0; i < b.starts.size(); ++i) {
    const nlohmann::json j = engine.metrics(b.starts[i], b.end(i));
    const nlohmann::json& total = j.at("metrics").at("latency_ms").at("total");
    const bool any = total.value("count", std::uint64_t{0}) > 0;
    d.p50.push_back(any ? num(total["p50"]) : kNaN);
    d.p95.push_back(any ? num(total["p95"]) : kNaN);
    d.p99.push_back(any ? num(total["p99"]) : kNaN);
    d.latency_requests += total.value("count", std::uint64_t{0});
  }
  if (d.anomalies.empty()) {  // nothing persisted: the ones this analysis found
    for (const auto& a : d.analysis.anomalies)
      if (a.metric == "total_processing_time_ms") d.anomalies.push_back({a.time, a.value, a.detector});
    if (!d.anomalies.empty()) d.anomaly_source = "this report's analysis (none persisted in the anomalies table)";
  }
}

// ---------------------------------------------------------------- charts

constexpr double kWidth = 1100;

/// The time axis under a chart: ticks at UTC midnights (day buckets) or at round hours, at most ~12.
std::string time_axis(const svg::Frame& f, const Buckets& b) {
  std::string s;
  const TimeMs span = b.to - b.from;
  TimeMs step = b.hourly() ? kHour : kDay;
  for (TimeMs cand : {kHour, 2 * kHour, 3 * kHour, 6 * kHour, 12 * kHour, kDay, 2 * kDay, 7 * kDay, 14 * kDay, 28 * kDay,
                      91 * kDay, 182 * kDay, 364 * kDay})
    if (cand >= step && span / cand <= 12) {
      step = cand;
      break;
    }
  if (span / step > 12) step = ((span / 12) / kDay + 1) * kDay;
  for (TimeMs t = (b.from + step - 1) / step * step; t <= b.to; t += step) {
    const std::string iso = format_rfc3339(t);  // 2026-01-05T13:00:00.000Z
    const std::string label = step < kDay ? (t % kDay == 0 ? iso.substr(5, 5) : iso.substr(11, 5)) : iso.substr(5, 5);
    s += f.x_tick(static_cast<double>(t), label);
  }
  const std::string first = format_rfc3339(b.from), last = format_rfc3339(b.to);
  s += f.x_title(fmt::format("{} (UTC), {} .. {}", b.hourly() ? "hour" : "day", first.substr(0, 16), last.substr(0, 16)));
  return s;
}

svg::Frame time_frame(const Buckets& b, double height) {
  svg::Frame f;
  f.width = kWidth;
  f.height = height;
  f.x0 = static_cast<double>(b.from);
  f.x1 = static_cast<double>(b.to);
  return f;
}

/// A polyline through the finite values at the bucket midpoints (gaps where NaN), with a dot on each.
std::string series_path(const svg::Frame& f, const Buckets& b, const std::vector<double>& v, const char* colour,
                        const std::string& name, const std::string& unit) {
  std::string path, dots;
  bool pen = false;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      pen = false;
      continue;
    }
    const double x = f.x(static_cast<double>(b.mid(i))), y = f.y_clamped(v[i]);
    path += fmt::format("{}{:.1f},{:.1f} ", pen ? "L" : "M", x, y);
    pen = true;
    dots += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{} {}: {:.4g}{}</title></circle>",
                        x, y, colour, escape(name), format_rfc3339(b.starts[i]).substr(0, b.hourly() ? 13 : 10), v[i],
                        unit);
  }
  if (path.empty()) return "";
  return fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>{}\n", path, colour, dots);
}

std::string reward_chart(const ReportData& d) {
  const Buckets& b = d.buckets;
  if (d.reward.empty() && d.events.empty())
    return svg::no_data(kWidth, 140, "No data: no decision in this window has a reward yet.");
  svg::Frame f = time_frame(b, 340);
  double lo = 0, hi = 1;
  std::map<std::string, std::vector<double>> means;
  for (const auto& [name, v] : d.reward) {
    auto& m = means[name];
    for (const auto& [sum, n] : v) {
      m.push_back(n ? sum / static_cast<double>(n) : kNaN);
      if (n) lo = std::min(lo, m.back()), hi = std::max(hi, m.back());
    }
  }
  const auto ticks = svg::nice_ticks(lo, hi, 5);
  f.y0 = ticks.front();
  f.y1 = ticks.back();
  std::string s = f.open("mean reward per day and policy version");
  s += f.y_axis(ticks, "mean reward");
  s += time_axis(f, b);
  std::size_t row = 0, k = 0;
  for (const auto& [name, m] : means) {
    s += series_path(f, b, m, svg::colour(k), name, "");
    s += f.legend(row++, svg::colour(k), name, true);
    ++k;
  }
  bool deploy = false, rollback = false;
  for (const auto& e : d.events) {
    const bool dep = e.action == "deploy";
    (dep ? deploy : rollback) = true;
    const double x = f.x(static_cast<double>(e.time));
    const nlohmann::json& j = e.details;
    std::string label = dep ? "deploy" : "rollback";
    if (j.is_object() && dep && j.contains("version")) label += fmt::format(" v{}", j["version"].dump());
    if (j.is_object() && !dep && j.contains("to")) label += fmt::format(" to v{}", j["to"].dump());
    s += fmt::format(
        "<g class=\"{0}\"><line x1=\"{1:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{3:.1f}\"/>"
        "<text x=\"{4:.1f}\" y=\"{5:.1f}\" transform=\"rotate(-90 {4:.1f} {5:.1f})\" text-anchor=\"end\">{6}</text>"
        "<title>{7} {6}: {8}</title></g>\n",
        dep ? "deploy" : "rollback", x, f.top, f.top + f.plot_h(), x - 5, f.top + 4, escape(label),
        format_rfc3339(e.time), escape(j.dump()));
  }
  if (deploy) s += f.legend(row++, "#2ca02c", "deployment", true);
  if (rollback) s += f.legend(row++, "#d62728", "rollback", true);
  if (d.reward.empty())
    s += fmt::format("<text class=\"nodata\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">No decision in this window "
                     "has a reward yet.</text>",
                     f.left + f.plot_w() / 2, f.top + f.plot_h() / 2);
  return s + "</svg>\n";
}

std::string template_chart(const ReportData& d) {
  const Buckets& b = d.buckets;
  if (d.templates.empty()) return svg::no_data(kWidth, 140, "No data: no template was chosen or applied in this window.");
  svg::Frame f = time_frame(b, 340);
  f.y0 = 0;
  f.y1 = 1;
  std::string s = f.open("share of each template per day, stacked");
  s += f.y_axis(svg::nice_ticks(0, 1, 4), "share of interactions",
                [](double v) { return fmt::format("{:g}%", std::round(v * 100)); });
  for (std::size_t i = 0; i < b.starts.size(); ++i) {
    std::uint64_t total = 0;
    for (const auto& c : d.template_counts) total += c[i];
    if (total == 0) continue;
    const double x0 = f.x(static_cast<double>(b.starts[i])), x1 = f.x(static_cast<double>(b.end(i)));
    const double gap = std::min(3.0, (x1 - x0) * 0.12);
    double acc = 0;
    for (std::size_t k = 0; k < d.templates.size(); ++k) {
      const std::uint64_t n = d.template_counts[k][i];
      if (n == 0) continue;
      const double share = static_cast<double>(n) / static_cast<double>(total);
      const double ytop = f.y(acc + share), ybot = f.y(acc);
      s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{} {}: "
                       "{} of {} ({:.1f}%)</title></rect>",
                       x0 + gap / 2, ytop, std::max(0.5, x1 - x0 - gap), ybot - ytop, svg::colour(k),
                       format_rfc3339(b.starts[i]).substr(0, b.hourly() ? 13 : 10), escape(d.templates[k]), n, total,
                       share * 100);
      acc += share;
    }
    s += "\n";
  }
  s += time_axis(f, b);
  for (std::size_t k = 0; k < d.templates.size(); ++k) s += f.legend(k, svg::colour(k), d.templates[k]);
  return s + "</svg>\n";
}

std::string latency_chart(const ReportData& d) {
  const Buckets& b = d.buckets;
  if (d.latency_requests == 0 && d.anomalies.empty())
    return svg::no_data(kWidth, 140, "No data: no performance report in this window.");
  svg::Frame f = time_frame(b, 340);
  double hi = 0;
  for (const auto* v : {&d.p50, &d.p95, &d.p99})
    for (double x : *v)
      if (std::isfinite(x)) hi = std::max(hi, x);
  if (hi <= 0)
    for (const auto& a : d.anomalies) hi = std::max(hi, a.value);
  const auto ticks = svg::nice_ticks(0, hi > 0 ? hi * 1.05 : 1, 5);
  f.y0 = 0;
  f.y1 = ticks.back();
  std::string s = f.open("latency percentiles of the total processing time");
  s += f.y_axis(ticks, "total processing time (ms)");
  s += time_axis(f, b);
  const char* colours[] = {"#0072B2", "#E69F00", "#D55E00"};
  const char* names[] = {"P50", "P95", "P99"};
  const std::vector<double>* series[] = {&d.p50, &d.p95, &d.p99};
  for (int k = 0; k < 3; ++k) {
    s += series_path(f, b, *series[k], colours[k], names[k], " ms");
    s += f.legend(static_cast<std::size_t>(k), colours[k], names[k], true);
  }
  std::size_t above = 0;
  for (const auto& a : d.anomalies) {
    const double x = f.x(static_cast<double>(a.time));
    const std::string tip = fmt::format("<title>anomaly {}: {:.4g} ms ({})</title>", format_rfc3339(a.time), a.value,
                                        escape(a.detector));
    if (a.value > f.y1) {
      ++above;
      s += fmt::format("<path class=\"anomaly\" d=\"M{:.1f},{:.1f} l-5,9 h10 z\">{}</path>", x, f.top, tip);
    } else {
      s += fmt::format("<circle class=\"anomaly\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\">{}</circle>", x, f.y(a.value), tip);
    }
  }
  if (!d.anomalies.empty()) {
    s += f.legend(3, "#d62728", fmt::format("anomaly ({})", d.anomalies.size()));
    if (above) s += f.legend(4, "#d62728", fmt::format("{} above scale (top)", above));
  }
  return s + "</svg>\n";
}

/// Sequential blue scale (ColorBrewer Blues) at t in [0, 1].
std::string blue(double t) {
  static constexpr int kStops[][3] = {{247, 251, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}};
  t = std::clamp(t, 0.0, 1.0) * 4;
  const int i = std::min(3, static_cast<int>(t));
  const double u = t - i;
  int c[3];
  for (int k = 0; k < 3; ++k) c[k] = static_cast<int>(std::lround(kStops[i][k] + u * (kStops[i + 1][k] - kStops[i][k])));
  return fmt::format("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
}

std::string heat_map(const ReportData& d) {
  if (d.interactions == 0) return svg::no_data(kWidth, 140, "No data: no interaction in this window.");
  svg::Frame f;
  f.width = kWidth;
  f.height = 300;
  f.left = 60;
  f.top = 10;
  f.bottom = 50;
  f.right = 140;
  const double cw = f.plot_w() / 24, ch = f.plot_h() / 7;
  std::uint64_t max = 0;
  for (const auto& row : d.heat)
    for (auto n : row) max = std::max(max, n);
  static const char* kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  std::string s = f.open("interactions by hour of day and weekday (UTC)");
  for (int w = 0; w < 7; ++w) {
    const double y = f.top + w * ch;
    s += fmt::format("<text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>", f.left - 8,
                     y + ch / 2 + 4, kDays[w]);
    for (int h = 0; h < 24; ++h) {
      const std::uint64_t n = d.heat[w][h];
      const double t = max ? std::sqrt(static_cast<double>(n) / static_cast<double>(max)) : 0;
      const double x = f.left + h * cw;
      s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\" stroke=\"#fff\">"
                       "<title>{} {:02d}:00-{:02d}:59 UTC: {} interactions</title></rect>",
                       x, y, cw, ch, blue(t), kDays[w], h, h, n);
      if (n > 0)
        s += fmt::format("<text class=\"cell\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"{}\">{}</text>",
                         x + cw / 2, y + ch / 2 + 4, t > 0.55 ? "#fff" : "#222", n);
    }
    s += "\n";
  }
  for (int h = 0; h < 24; ++h)
    s += fmt::format("<text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{:02d}</text>",
                     f.left + (h + 0.5) * cw, f.top + f.plot_h() + 16, h);
  s += f.x_title("hour of day (UTC)");
  // Legend: the colour scale (square-root) from 0 to the busiest cell.
  const double lx = f.left + f.plot_w() + 24, ly = f.top + 20, lh = 140;
  s += fmt::format("<text class=\"legend\" x=\"{:.1f}\" y=\"{:.1f}\">interactions</text>", lx, ly - 8);
  for (int i = 0; i < 20; ++i)
    s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"16\" height=\"{:.1f}\" fill=\"{}\"/>", lx,
                     ly + lh - (i + 1) * lh / 20, lh / 20 + 0.5, blue(i / 19.0));
  for (double q : {0.0, 0.25, 1.0}) {
    const double yy = ly + lh - std::sqrt(q) * lh;
    s += fmt::format("<text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>", lx + 22, yy + 4,
                     static_cast<std::uint64_t>(std::llround(q * static_cast<double>(max))));
  }
  return s + "</svg>\n";
}

// ---------------------------------------------------------------- tables and page

std::string num_or_dash(double v, const char* spec = "{:.3f}") {
  return std::isfinite(v) ? fmt::format(fmt::runtime(spec), v) : std::string("&ndash;");
}

std::string correlation_table(const patterns::AnalysisReport& r) {
  if (r.correlations.empty())
    return "<p class=\"nodata\">No data: fewer than 10 interactions with the measurements a correlation needs.</p>\n";
  std::string s =
      "<table><thead><tr><th>association</th><th>method</th><th class=\"n\">r</th><th class=\"n\">95% CI</th>"
      "<th class=\"n\">n</th><th class=\"n\">p (BH-adjusted)</th><th>significant</th></tr></thead><tbody>\n";
  for (const auto& c : r.correlations)
    s += fmt::format("<tr{}><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{} .. {}</td><td class=\"n\">{}"
                     "</td><td class=\"n\">{}</td><td>{}</td></tr>\n",
                     c.significant ? " class=\"sig\"" : "", escape(c.name), escape(c.method), num_or_dash(c.result.r),
                     num_or_dash(c.result.ci_low), num_or_dash(c.result.ci_high), c.result.n,
                     num_or_dash(c.p_adjusted, "{:.3g}"), c.significant ? "yes" : "no");
  return s + "</tbody></table>\n";
}

/// A user subject (often a 35-character hash) shortened, with the whole id in its tooltip.
std::string subject_cell(const std::string& subject) {
  if (subject.empty()) return "(all users)";
  if (subject.size() <= 16) return escape(subject);
  return fmt::format("<span title=\"{}\">{}</span>", escape(subject), escape(svg::shorten(subject, 12)));
}

std::string insights_table(const patterns::AnalysisReport& r) {
  if (r.insights.empty())
    return "<p class=\"nodata\">No insight: no test reached significance in this window (or too little data).</p>\n";
  std::string s =
      "<table><thead><tr><th>type</th><th>subject</th><th>description</th><th>recommendation</th>"
      "<th class=\"n\">confidence</th></tr></thead><tbody>\n";
  for (const auto& i : r.insights)
    s += fmt::format("<tr><td>{}</td><td class=\"subject\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{:.0f}%</td></tr>\n",
                     escape(i.type), subject_cell(i.subject), escape(i.description),
                     escape(i.recommendation), i.confidence * 100);
  return s + "</tbody></table>\n";
}

constexpr const char* kCss = R"(
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;color:#222;background:#fff;margin:0}
main{max-width:1140px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:28px 0 4px;border-bottom:1px solid #ddd;padding-bottom:4px}
p.what{color:#555;margin:4px 0 10px;font-size:14px}
.meta{color:#444;font-size:14px}
.counts{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.counts div{border:1px solid #ddd;border-radius:6px;padding:6px 10px;min-width:96px}
.counts b{display:block;font-size:20px}
.counts span{font-size:12px;color:#666}
.warn{background:#fff4e5;border:1px solid #f0b35b;padding:8px 12px;border-radius:6px}
svg.chart{display:block;max-width:100%;height:auto;font-size:12px}
svg .grid{stroke:#e5e5e5;stroke-width:1}svg .axis{stroke:#555;stroke-width:1}
svg .tick{fill:#444;font-size:12px}svg .axis-title{fill:#222;font-size:13px}
svg .legend{fill:#222;font-size:12px}svg .cell{font-size:10px}
svg .nodata{fill:#777;font-size:15px}svg .nodata-box{fill:#fafafa;stroke:#ccc;stroke-dasharray:4 3}
svg .deploy line{stroke:#2ca02c;stroke-width:2;stroke-dasharray:6 3}svg .deploy text{fill:#1d6b1d;font-size:11px;paint-order:stroke;stroke:#fff;stroke-width:3px}
svg .rollback line{stroke:#d62728;stroke-width:2;stroke-dasharray:2 2}svg .rollback text{fill:#a31d1e;font-size:11px;paint-order:stroke;stroke:#fff;stroke-width:3px}
svg .anomaly{fill:#d62728;fill-opacity:.75;stroke:#fff;stroke-width:.5}
table{border-collapse:collapse;width:100%;font-size:13px;margin-top:6px}
th,td{border-bottom:1px solid #e3e3e3;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f4f6f8}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.sig td{background:#eef7ee}td.subject{white-space:nowrap}
p.nodata{color:#777;border:1px dashed #ccc;background:#fafafa;padding:14px}
footer{color:#888;font-size:12px;margin-top:30px}
)";

std::string counts_box(std::uint64_t n, const char* label) {
  return fmt::format("<div><b>{}</b><span>{}</span></div>", n, label);
}

std::string render(const ReportData& d, int days, int& charts_with_data) {
  const Buckets& b = d.buckets;
  const patterns::AnalysisReport& r = d.analysis;
  std::size_t deploys = 0, rollbacks = 0;
  for (const auto& e : d.events) (e.action == "deploy" ? deploys : rollbacks) += 1;
  const std::string charts[] = {reward_chart(d), template_chart(d), latency_chart(d), heat_map(d)};
  charts_with_data = 0;
  for (const auto& c : charts) charts_with_data += c.find("aria-label=\"no data\"") == std::string::npos ? 1 : 0;
  const std::string unit = b.hourly() ? "hour" : "day";

  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  h += fmt::format("<title>promptlearn report {} .. {}</title>\n<style>{}</style></head>\n<body><main>\n",
                   format_rfc3339(b.from).substr(0, 10), format_rfc3339(b.to).substr(0, 10), kCss);
  h += "<h1>promptlearn report</h1>\n";
  h += fmt::format("<p class=\"meta\">Database <code>{}</code>; window <b>{}</b> .. <b>{}</b> (UTC, the last {} day{}); "
                   "charts per {} (UTC). Generated without network access; every chart is inline SVG. Hover a point, "
                   "bar or cell for its value.</p>\n",
                   escape(d.db_path), format_rfc3339(b.from), format_rfc3339(b.to), days, days == 1 ? "" : "s", unit, unit);
  h += "<div class=\"counts\">";
  h += counts_box(d.interactions, "interactions");
  h += counts_box(r.outcomes, "with an outcome");
  h += counts_box(d.decisions, "template decisions");
  h += counts_box(d.rewarded, "decisions with reward");
  h += counts_box(deploys, "deployments");
  h += counts_box(rollbacks, "rollbacks");
  h += counts_box(d.anomalies_total, "anomalies stored");
  h += counts_box(r.insights.size(), "insights");
  h += "</div>\n";
  if (d.interactions == 0) {
    h += "<p class=\"warn\">No interaction in this window.";
    if (d.first_interaction)
      h += fmt::format(" The file's interactions span {} .. {}: choose the window with <code>--now</code> and "
                       "<code>--days</code>.",
                       escape(*d.first_interaction), escape(*d.last_interaction));
    else
      h += " The file holds no interaction yet.";
    h += "</p>\n";
  }
  h += "<h2>1. Reward by policy version</h2>\n";
  h += fmt::format("<p class=\"what\">Mean learned reward of the logged template decisions per {} (UTC), one line per "
                   "policy name and version (the version that made the decision). Dashed vertical lines mark "
                   "deployments (green) and rollbacks (red) from the audit log.</p>\n",
                   unit);
  h += charts[0];
  h += "<h2>2. Template share</h2>\n";
  h += fmt::format("<p class=\"what\">Share of each template per {} (UTC), stacked to 100%, from {}{}.</p>\n", unit,
                   d.template_source.empty() ? "the logged decisions" : "the " + d.template_source,
                   d.template_source == "interactions" ? " (selected_template: no decision was logged)"
                                                       : " (the policy's chosen template)");
  h += charts[1];
  h += "<h2>3. Latency percentiles</h2>\n";
  h += fmt::format("<p class=\"what\">P50, P95 and P99 of the total processing time per {} (UTC), from the metric "
                   "rollups where they cover the {} and the raw performance rows otherwise (DDSketch, 1% relative "
                   "error). Red dots are anomalous values of the total processing time ({}); triangles at the top "
                   "are anomalies above the scale.</p>\n",
                   unit, unit, d.anomaly_source.empty() ? "the anomalies table" : escape(d.anomaly_source));
  h += charts[2];
  h += "<h2>4. When people use it</h2>\n";
  h += "<p class=\"what\">Interactions by hour of day and weekday (UTC) over the window; darker is busier "
       "(square-root colour scale).</p>\n";
  h += charts[3];
  h += "<h2>5. Correlations</h2>\n";
  h += "<p class=\"what\">Pearson and Spearman correlations with 95% Fisher-z intervals; p-values adjusted for "
       "the number of tests (Benjamini-Hochberg, false discovery rate 5%). Significant rows are shaded.</p>\n";
  h += correlation_table(r);
  h += "<h2>6. Insights</h2>\n";
  h += "<p class=\"what\">What the pattern analysis of this window found, with what to do about it. Confidence is "
       "1 minus the p-value of the test behind the insight. User subjects are stored identifiers (hashed "
       "when identifier hashing is on).</p>\n";
  h += insights_table(r);
  h += fmt::format("<footer>promptlearn report: {} {} buckets, {} anomalies drawn, analysis over {} events.</footer>\n",
                   b.starts.size(), unit, d.anomalies.size(), r.events);
  h += "</main></body></html>\n";
  return h;
}

}  // namespace

int run_report(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn report --db FILE -o report.html [--days 30] [--now RFC3339] [--human]\n"
                 "Writes one self-contained HTML file (inline CSS and SVG; no script, no network) about the last\n"
                 "--days days before --now (default: the clock): mean reward per day and policy version with\n"
                 "deployments and rollbacks, template share, latency P50/P95/P99 with anomalies, an hour x weekday\n"
                 "heat map of interactions (UTC), the correlation table and the insights. Windows of 3 days or\n"
                 "less are charted per hour. Opens the file read-only (hosts may keep writing). Prints one JSON\n"
                 "line: {\"report\", \"bytes\", \"charts\", ...} (--human: the same summary as three lines).\n";
    return 0;
  }
  const std::string db = require_db(args);
  const auto out = args.get("o");
  if (!out || out->empty()) throw std::invalid_argument("option '-o': missing (the HTML file to write)");
  const long long days = args.get_int("days", 30);
  if (days < 1 || days > 3650) throw std::invalid_argument(fmt::format("option '--days': {} is outside [1, 3650]", days));
  const nlohmann::json j = write_report(db, *out, static_cast<int>(days), now_option(args));
  if (!args.has("human")) {
    std::cout << j.dump() << std::endl;
    return 0;
  }
  std::cout << fmt::format("wrote {} ({} bytes): {} charts ({} with data), {} tables\n", human_value(j["report"]),
                           human_value(j["bytes"]), human_value(j["charts"]), human_value(j["charts_with_data"]),
                           human_value(j["tables"]));
  std::cout << fmt::format("window {} .. {}, charted per {}\n", human_value(j["window"]["from"]),
                           human_value(j["window"]["to"]), human_value(j["granularity"]));
  std::cout << fmt::format("{} interactions, {} decisions, {} insights, {} correlations\n",
                           human_value(j["interactions"]), human_value(j["decisions"]), human_value(j["insights"]),
                           human_value(j["correlations"]));
  return 0;
}

nlohmann::json write_report(const std::string& db, const std::string& out_path, int days, std::optional<TimeMs> at) {
  const std::string* out = &out_path;
  std::optional<ManualClock> fixed;
  EngineOptions eo;
  eo.read_only = true;
  if (at) {
    fixed.emplace(*at);
    eo.clock = &*fixed;
  }
  if (!std::filesystem::exists(db)) throw Error(fmt::format("{}: no such file", db));

  LearningEngine engine(db, Config::defaults(), eo);
  const TimeMs now = engine.clock().now_ms();
  ReportData d;
  d.db_path = db;
  const TimeMs from = std::max<TimeMs>(0, now - days * kDay);
  d.buckets = make_buckets(from, now, days <= 3 ? kHour : kDay);
  AnalysisOptions ao;
  ao.from = from;
  ao.to = now;
  d.analysis = engine.analyze(ao);
  {
    store::Database conn = store::open_read_only(db);
    read_sql(conn, d);
  }
  read_latency(engine, d);
  engine.close();

  int with_data = 0;
  const std::string html = render(d, static_cast<int>(days), with_data);
  const std::string tmp = *out + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << html;
    f.flush();
    if (!f) throw Error(fmt::format("{}: cannot write the report", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, *out, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw Error(fmt::format("{}: cannot write the report", *out));
  }
  return nlohmann::json{{"report", *out},
                              {"bytes", html.size()},
                              {"charts", 4},
                              {"charts_with_data", with_data},
                              {"tables", 2},
                              {"window", {{"from", format_rfc3339(from)}, {"to", format_rfc3339(now)}}},
                              {"granularity", d.buckets.hourly() ? "hour" : "day"},
                              {"interactions", d.interactions},
                              {"decisions", d.decisions},
                              {"insights", d.analysis.insights.size()},
                              {"correlations", d.analysis.correlations.size()}};
}

}  // namespace promptlearn::cli
