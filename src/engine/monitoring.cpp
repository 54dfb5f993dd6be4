// LearningEngine's monitoring: hourly and daily rollups of performance data into metric_rollups (mergeable
// sketches, so long views never rescan raw rows and outlive them), alert rules evaluated on each completed
// hour, and metrics() over any window.
#include <fmt/format.h>

#include <limits>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/monitor/alerts.hpp"
#include "promptlearn/monitor/metrics.hpp"
#include "promptlearn/store/store.hpp"
#include "monitoring.hpp"
#include "setting_keys.hpp"

namespace promptlearn {
namespace {

constexpr TimeMs kHour = 3600000LL;
constexpr TimeMs kDay = 24 * kHour;
constexpr const char* kRolledUntil = setting_keys::kRolledUpUntil;
constexpr const char* kAlertState = "monitor.alert_state";
constexpr std::uint64_t kMinRequests = 20;

TimeMs floor_to(TimeMs t, TimeMs unit) {
  TimeMs q = t / unit;
  if (t % unit != 0 && t < 0) --q;
  return q * unit;
}

std::optional<double> opt(const store::Statement& q, int col) {
  if (q.is_null(col)) return std::nullopt;
  return q.column_double(col);
}

/// Adds the raw rows of [from, to) to `w` (which must span them): each performance report is a request
/// (its stage timings, the outcome's response time, its cache hits and misses), each rejected event a
/// failed one whose type is the offending field ("document" for a malformed one).
std::size_t add_raw(store::Store& st, TimeMs from, TimeMs to, monitor::MetricsWindow& w) {
  if (to <= from) return 0;
  std::size_t n = 0;
  const std::string f = format_rfc3339(from), t = format_rfc3339(to);
  {
    store::Statement q(st.db(),
                       "SELECT p.timestamp, p.total_processing_time_ms, p.template_selection_time_ms, "
                       "p.enhancement_generation_time_ms, p.validation_time_ms, p.cleanup_time_ms, "
                       "o.claude_response_time_ms, p.template_cache_hit, p.analysis_cache_hit FROM performance p "
                       "LEFT JOIN outcomes o USING (interaction_id) WHERE p.timestamp >= ?1 AND p.timestamp < ?2");
    q.bind(1, f).bind(2, t);
    while (q.step()) {
      const auto ts = try_parse_rfc3339(q.column_view(0));
      if (!ts || *ts < from || *ts >= to) continue;
      monitor::StageTimings s;
      s.total_ms = opt(q, 1);
      s.template_selection_ms = opt(q, 2);
      s.enhancement_generation_ms = opt(q, 3);
      s.validation_ms = opt(q, 4);
      s.cleanup_ms = opt(q, 5);
      s.claude_response_time_ms = opt(q, 6);
      std::uint64_t hits = 0, misses = 0;
      for (int c : {7, 8})
        if (!q.is_null(c)) (q.column_int64(c) != 0 ? hits : misses) += 1;
      try {
        w.add_request(*ts, s, false, {}, hits, misses);
        ++n;
      } catch (const ValidationError&) {
        // A stored value the sketch refuses (negative, non-finite): the request is counted without timings.
        w.add_request(*ts, monitor::StageTimings{}, false, {}, hits, misses);
        ++n;
      }
    }
  }
  store::Statement r(st.db(), "SELECT received_at, field FROM rejected_events WHERE received_at >= ?1 AND received_at < ?2");
  r.bind(1, f).bind(2, t);
  while (r.step()) {
    const auto ts = try_parse_rfc3339(r.column_view(0));
    if (!ts || *ts < from || *ts >= to) continue;
    std::string field = r.column_text(1);
    w.add_request(*ts, monitor::StageTimings{}, true, field.empty() ? "document" : field);
    ++n;
  }
  return n;
}

/// The default alert rules (docs/monitoring.md).
nlohmann::json default_alert_rules() {
  return nlohmann::json::array({
      {{"name", "slow_enhancement"}, {"metric", "total_p95_ms"}, {"kind", "threshold_above"}, {"threshold", 1000},
       {"cooldown_ms", 6 * kHour}, {"severity", "warning"}},
      {{"name", "latency_shift"}, {"metric", "total_p95_ms"}, {"kind", "detector"}, {"detector", "cusum"},
       {"cooldown_ms", 6 * kHour}, {"severity", "warning"}},
      {{"name", "ingest_errors"}, {"metric", "error_rate"}, {"kind", "threshold_above"}, {"threshold", 0.05},
       {"cooldown_ms", 6 * kHour}, {"severity", "critical"}},
      {{"name", "traffic_drop"}, {"metric", "requests_24h"}, {"kind", "rate_of_change"}, {"threshold", -0.5},
       {"window_ms", 24 * kHour}, {"cooldown_ms", 24 * kHour}, {"severity", "info"}},
  });
}

std::vector<monitor::AlertRule> parse_rules(const nlohmann::json& rules) {
  if (!rules.is_array()) throw ConfigError("alert_rules", "must be an array of rule objects");
  std::vector<monitor::AlertRule> out;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const std::string path = fmt::format("alert_rules[{}]", i);
    out.push_back(monitor::AlertRule::from_json(rules[i], path));
    out.back().validate(path);
  }
  monitor::AlertEngine check(out);  // duplicate names etc.
  return out;
}

monitor::MetricsWindow read_window(const std::string& blob, const std::string& what) {
  try {
    return monitor::MetricsWindow::from_bytes(blob);
  } catch (const Error& e) {
    throw StorageError(-1, fmt::format("metric_rollups {} is unreadable: {}", what, e.what()));
  }
}

}  // namespace

namespace monitoring {

std::size_t roll_up_hours(store::Store& st, const std::vector<TimeMs>& hours, TimeMs now,
                          std::map<TimeMs, monitor::MetricsWindow>* windows) {
  std::size_t written = 0;
  store::Statement put(st.db(), "INSERT OR REPLACE INTO metric_rollups (granularity, bucket_start, requests, window, "
                                "updated_at) VALUES (?1, ?2, ?3, ?4, ?5)");
  auto remove = [&](const char* granularity, TimeMs start) {
    store::Statement del(st.db(), "DELETE FROM metric_rollups WHERE granularity = ?1 AND bucket_start = ?2");
    del.bind(1, granularity).bind(2, format_rfc3339(start));
    del.run();
  };
  auto write = [&](const char* granularity, TimeMs start, const monitor::MetricsWindow& w) {
    put.reset();
    put.bind(1, granularity).bind(2, format_rfc3339(start)).bind(3, static_cast<std::int64_t>(w.requests()));
    put.bind_blob(4, w.to_bytes()).bind(5, format_rfc3339(now));
    put.run();
  };
  std::map<TimeMs, bool> days;
  for (TimeMs h : hours) {
    monitor::MetricsWindow w(h, h + kHour);
    add_raw(st, h, h + kHour, w);
    days[floor_to(h, kDay)] = true;
    if (w.requests() == 0) remove("hour", h);
    else {
      write("hour", h, w);
      ++written;
    }
    if (windows) windows->emplace(h, std::move(w));
  }
  // Each touched day is the merge of its hours.
  for (const auto& day_entry : days) {
    const TimeMs d = day_entry.first;
    monitor::MetricsWindow day(d, d + kDay);
    store::Statement q(st.db(), "SELECT bucket_start, window FROM metric_rollups WHERE granularity = 'hour' AND "
                                "bucket_start >= ?1 AND bucket_start < ?2");
    q.bind(1, format_rfc3339(d)).bind(2, format_rfc3339(d + kDay));
    while (q.step()) day.merge(read_window(q.column_blob(1), "hour " + q.column_text(0)));
    if (day.requests() == 0) remove("day", d);
    else write("day", d, day);
  }
  return written;
}

std::vector<TimeMs> rolled_up_hours_of_user(store::Store& st, const std::string& stored_id) {
  std::vector<TimeMs> out;
  const auto until = st.setting(kRolledUntil);
  const auto until_t = until ? try_parse_rfc3339(*until) : std::nullopt;
  if (!until_t) return out;  // nothing rolled up yet
  store::Statement q(st.db(), "SELECT DISTINCT substr(p.timestamp, 1, 13) FROM performance p JOIN interactions i USING "
                              "(interaction_id) WHERE i.user_id = ?1");
  q.bind(1, stored_id);
  while (q.step())
    if (auto t = try_parse_rfc3339(q.column_text(0) + ":00:00Z"); t && *t < *until_t) out.push_back(*t);
  return out;
}

}  // namespace monitoring

void LearningEngine::configure_monitoring(const nlohmann::json& rules, std::function<void(const nlohmann::json&)> on_alert) {
  alert_rules_ = rules.is_null() ? default_alert_rules() : rules;
  parse_rules(alert_rules_);  // fail at open, naming the rule's field
  on_alert_ = std::move(on_alert);
}

std::size_t LearningEngine::run_rollups(TimeMs now) {
  require_writable("run_rollups");
  flush();
  const auto rules = parse_rules(alert_rules_);
  std::vector<nlohmann::json> fired;
  const std::size_t hours = collector_->with_store([&](store::Store& st) {
    store::Transaction tx(st.db());
    const TimeMs end = floor_to(now, kHour);  // complete hours only
    const TimeMs oldest = end - static_cast<TimeMs>(config_.learning.data_retention.performance_data_days) * kDay;
    TimeMs until = oldest;
    if (auto s = st.setting(kRolledUntil); s && try_parse_rfc3339(*s)) {
      until = std::max(oldest, *try_parse_rfc3339(*s));
    } else {
      // First run: from the first performance report or rejected event (a new file: nothing before).
      const std::int64_t have = st.db().query_int("SELECT count(*) FROM performance") +
                                st.db().query_int("SELECT count(*) FROM rejected_events");
      std::optional<TimeMs> first;
      for (const char* sql : {"SELECT min(timestamp) FROM performance", "SELECT min(received_at) FROM rejected_events"}) {
        store::Statement q(st.db(), sql);
        if (q.step() && !q.is_null(0))
          if (auto t = try_parse_rfc3339(q.column_view(0))) first = first ? std::min(*first, *t) : *t;
      }
      until = have && first ? std::max(oldest, floor_to(*first, kHour)) : end;
    }
    const TimeMs redo_from = std::max(oldest, until - 2 * kHour);  // late reports of the last two hours
    if (redo_from >= end) return std::size_t{0};
    std::vector<TimeMs> hours;
    for (TimeMs h = redo_from; h < end; h += kHour) hours.push_back(h);
    std::map<TimeMs, monitor::MetricsWindow> by_hour;
    const std::size_t written = monitoring::roll_up_hours(st, hours, now, &by_hour);
    // Alerts on each newly completed hour, the detectors' state kept in the file between runs.
    monitor::AlertEngine alerts(rules);
    if (auto s = st.setting(kAlertState)) {
      const nlohmann::json state = nlohmann::json::parse(*s, nullptr, false);
      if (state.is_object() && state.value("rules", nlohmann::json()) == alerts.to_json()["rules"])
        alerts.restore_state(state["state"]);
    }
    store::Statement ins(st.db(), "INSERT INTO alerts (rule, metric, severity, fired_at, value, threshold, message, "
                                  "dedup_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    for (auto& [h, w] : by_hour) {
      if (h < until) continue;  // already evaluated
      const monitor::MetricsSummary m = w.summary();
      std::vector<monitor::Alert> out;
      auto observe = [&](const char* metric, double v) {
        if (!std::isfinite(v)) return;
        for (auto& a : alerts.observe(metric, h + kHour, v)) out.push_back(std::move(a));
      };
      // Percentiles and rates of a nearly idle hour (1 failure in 2 requests, the p95 of 3) say little:
      // observed from kMinRequests requests up.
      if (m.requests >= kMinRequests) {
        observe("total_p95_ms", m[monitor::Stage::total].p95);
        observe("claude_response_p95_ms", m[monitor::Stage::claude_response_time].p95);
        observe("error_rate", m.error_rate);
      }
      observe("requests_per_hour", static_cast<double>(m.requests));
      // The traffic of the last 24 hours (a day's rhythm does not look like a drop).
      {
        store::Statement q(st.db(), "SELECT coalesce(sum(requests), 0) FROM metric_rollups WHERE granularity = 'hour' "
                                    "AND bucket_start >= ?1 AND bucket_start < ?2");
        q.bind(1, format_rfc3339(h + kHour - kDay)).bind(2, format_rfc3339(h + kHour));
        if (q.step() && q.column_int64(0) >= static_cast<std::int64_t>(kMinRequests))
          observe("requests_24h", static_cast<double>(q.column_int64(0)));
      }
      for (const auto& a : out) {
        ins.reset();
        ins.bind(1, a.rule).bind(2, a.metric).bind(3, nlohmann::json(a.severity).get<std::string>());
        ins.bind(4, format_rfc3339(a.time_ms)).bind(5, a.value).bind(6, a.threshold).bind(7, a.message);
        ins.bind(8, a.dedup_key).bind(9, format_rfc3339(now));
        ins.run();
        fired.push_back(a.to_json());
      }
    }
    st.put_setting(kAlertState, alerts.to_json().dump(), now);
    st.put_setting(kRolledUntil, format_rfc3339(end), now);
    tx.commit();
    return written;
  });
  last_alerts_fired_ = fired.size();
  if (on_alert_)
    for (const auto& a : fired) {
      try {
        on_alert_(a);
      } catch (...) {
        // The host's callback must not break the job: the alert is stored either way.
      }
    }
  return hours;
}

nlohmann::json LearningEngine::metrics(TimeMs from, TimeMs to) {
  if (to <= from) throw ConfigError("metrics.window", fmt::format("'to' {} is not after 'from' {}", format_rfc3339(to), format_rfc3339(from)));
  flush();
  return collector_->with_store([&](store::Store& st) {
    std::optional<store::Transaction> tx;  // one snapshot (a read-only engine reads statement by statement)
    if (!read_only_) tx.emplace(st.db());
    monitor::MetricsWindow w(from, to);
    std::size_t raw = 0, hours = 0, days = 0;
    TimeMs rolled = std::numeric_limits<TimeMs>::min();
    if (auto s = st.setting(kRolledUntil))
      if (auto t = try_parse_rfc3339(*s)) rolled = *t;
    // Whole rolled-up hours inside the window come from metric_rollups (days when an hour row is gone:
    // the cold tier); the partial hours at the edges and what is not rolled up yet from raw rows.
    const TimeMs lo = std::min(std::max(from, floor_to(from + kHour - 1, kHour)), to);
    const TimeMs hi = std::max(lo, std::min({floor_to(to, kHour), rolled}));
    if (hi > lo) {
      store::Statement q(st.db(), "SELECT granularity, bucket_start, window FROM metric_rollups WHERE bucket_start >= ?1 "
                                  "AND bucket_start < ?2 ORDER BY granularity DESC, bucket_start");
      q.bind(1, format_rfc3339(lo)).bind(2, format_rfc3339(hi));
      std::map<TimeMs, bool> hour_days;  // days that have hour rows
      std::vector<std::pair<TimeMs, std::string>> day_rows;
      while (q.step()) {
        const auto t = try_parse_rfc3339(q.column_view(1));
        if (!t) continue;
        if (q.column_text(0) == "hour") {
          w.merge(read_window(q.column_blob(2), "hour " + q.column_text(1)));
          hour_days[floor_to(*t, kDay)] = true;
          ++hours;
        } else if (*t + kDay <= hi) {
          day_rows.emplace_back(*t, q.column_blob(2));
        }
      }
      for (const auto& [d, blob] : day_rows)
        if (!hour_days.count(d)) {
          w.merge(read_window(blob, "day " + format_rfc3339(d)));
          ++days;
        }
      raw += add_raw(st, from, lo, w);
      raw += add_raw(st, hi, to, w);
    } else {
      raw += add_raw(st, from, to, w);
    }
    const TimeMs now = clock_->now_ms();
    nlohmann::json j;
    j["window"] = {{"from", format_rfc3339(from)}, {"to", format_rfc3339(to)}};
    j["metrics"] = w.summary(now < to ? std::optional<TimeMs>(now) : std::nullopt).to_json();
    j["sources"] = {{"rollup_hours", hours}, {"rollup_days", days}, {"raw_rows", raw},
                    {"rolled_up_until", rolled == std::numeric_limits<TimeMs>::min() ? nlohmann::json() : nlohmann::json(format_rfc3339(rolled))}};
    nlohmann::json alerts = nlohmann::json::array();
    store::Statement a(st.db(), "SELECT rule, metric, severity, fired_at, value, threshold, message FROM alerts WHERE "
                                "fired_at >= ?1 AND fired_at < ?2 ORDER BY fired_at");
    a.bind(1, format_rfc3339(from)).bind(2, format_rfc3339(to));
    while (a.step())
      alerts.push_back({{"rule", a.column_text(0)}, {"metric", a.column_text(1)}, {"severity", a.column_text(2)},
                        {"fired_at", a.column_text(3)}, {"value", a.column_double(4)}, {"threshold", a.column_double(5)},
                        {"message", a.column_text(6)}});
    j["alerts"] = std::move(alerts);
    j["engine_resources"] = monitor::process_resources().to_json();
    return j;
  });
}

}  // namespace promptlearn
