#pragma once
/// @file Alert rules over metric streams (layer 2: header-only, no I/O, no clock, no threads).
///
/// An `AlertEngine` holds a set of `AlertRule`s; the host feeds it observations `observe(metric, t, value)`
/// (a request's latency, a window's P95 or error rate, ...) and receives the alerts that fire. Each rule
/// is one of:
/// - threshold_above / threshold_below: the value (or, with window_ms > 0, the mean of the values in the
///   last window_ms) is above / below `threshold`;
/// - rate_of_change: the relative change (v - v_ref) / |v_ref| against v_ref, the last value observed at
///   least window_ms earlier, reaches `threshold` (> 0: a rise of that fraction; < 0: a fall);
/// - detector: a streaming change detector from patterns/anomaly.hpp flags the value: the two-sided
///   CUSUM (Page 1954) or the EWMA chart (Roberts 1959), both O(1) per value, parameters as there.
/// Cooldown: a rule does not fire again within cooldown_ms of its last alert. De-duplication: while a
/// rule's condition stays true it is one alert (one episode, one dedup_key); it can fire again only after
/// the condition has cleared (and the cooldown has passed). A condition that turns true during the
/// cooldown fires once the cooldown ends if it is still true then.
///
/// The whole state (rules, windows, detector sums, episodes) serialises to JSON, so a host process that
/// runs once per prompt can persist it between calls and continue exactly where it stopped.
///
/// Example:
///     AlertRule r;
///     r.name = "slow"; r.metric = "total_ms"; r.threshold = 2000; r.window_ms = 300000;
///     AlertEngine engine({r});
///     for (const Alert& a : engine.observe("total_ms", now, 2450.0)) notify(a.message);
///     std::string saved = engine.to_json().dump();   // AlertEngine::from_json(nlohmann::json::parse(saved))
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <string>
#include <string_view>
#include <iterator>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "promptlearn/core/clock.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/core/stats.hpp"
#include "promptlearn/patterns/anomaly.hpp"

namespace promptlearn::monitor {

/// How a rule decides (see the file comment).
enum class AlertKind { threshold_above, threshold_below, rate_of_change, detector };
/// How urgent an alert is.
enum class Severity { info, warning, critical };
/// The streaming detector of a `detector` rule.
enum class DetectorKind { cusum, ewma };

NLOHMANN_JSON_SERIALIZE_ENUM(AlertKind, {{AlertKind::threshold_above, "threshold_above"},
                                         {AlertKind::threshold_below, "threshold_below"},
                                         {AlertKind::rate_of_change, "rate_of_change"},
                                         {AlertKind::detector, "detector"}})
NLOHMANN_JSON_SERIALIZE_ENUM(Severity, {{Severity::info, "info"}, {Severity::warning, "warning"}, {Severity::critical, "critical"}})
NLOHMANN_JSON_SERIALIZE_ENUM(DetectorKind, {{DetectorKind::cusum, "cusum"}, {DetectorKind::ewma, "ewma"}})

namespace detail {

inline std::string duration_words(TimeMs ms) {
  if (ms % 3600000 == 0 && ms >= 3600000) return fmt::format("{} h", ms / 3600000);
  if (ms % 60000 == 0 && ms >= 60000) return fmt::format("{} min", ms / 60000);
  if (ms % 1000 == 0 && ms >= 1000) return fmt::format("{} s", ms / 1000);
  return fmt::format("{} ms", ms);
}

/// The message of a ConfigError without its "key: " prefix.
inline std::string without_key(const ConfigError& e) {
  const std::string w = e.what();
  return w.size() > e.key().size() + 2 ? w.substr(e.key().size() + 2) : w;
}

}  // namespace detail

/// One alert rule. Member initialisers are the defaults.
struct AlertRule {
  std::string name;                            ///< unique among the engine's rules
  std::string metric;                          ///< the metric name passed to observe()
  AlertKind kind = AlertKind::threshold_above;
  double threshold = 0;                        ///< value limit, or relative change (0.5 = +50%); unused by detector
  TimeMs window_ms = 0;                        ///< threshold: mean over this span (0 = the value itself); rate_of_change: lookback (> 0)
  TimeMs cooldown_ms = 300000;                 ///< no new alert within this time of the last
  Severity severity = Severity::warning;
  DetectorKind detector = DetectorKind::cusum; ///< for kind detector
  patterns::Cusum::Params cusum;               ///< for detector cusum (fires when its score > 1)
  patterns::EwmaChart::Params ewma;            ///< for detector ewma (fires when its score > limit)

  /// @throws ConfigError whose key is `path` + "." + the field.
  void validate(const std::string& path = "alert_rule") const {
    if (name.empty() || name.size() > 128) throw ConfigError(path + ".name", fmt::format("\"{}\" must have 1 to 128 characters", name));
    if (metric.empty()) throw ConfigError(path + ".metric", "must not be empty");
    if (!std::isfinite(threshold)) throw ConfigError(path + ".threshold", fmt::format("{} is not finite", threshold));
    if (kind == AlertKind::rate_of_change && threshold == 0)
      throw ConfigError(path + ".threshold", "0 is not a relative change (use > 0 for a rise, < 0 for a fall)");
    if (window_ms < 0) throw ConfigError(path + ".window_ms", fmt::format("{} is negative", window_ms));
    if (kind == AlertKind::rate_of_change && window_ms == 0)
      throw ConfigError(path + ".window_ms", "must be > 0 for rate_of_change (the lookback)");
    if (cooldown_ms < 0) throw ConfigError(path + ".cooldown_ms", fmt::format("{} is negative", cooldown_ms));
    try {
      cusum.validate();
    } catch (const ConfigError& e) {
      throw ConfigError(path + ".cusum." + e.key(), detail::without_key(e));
    }
    try {
      ewma.validate();
    } catch (const ConfigError& e) {
      throw ConfigError(path + ".ewma." + e.key(), detail::without_key(e));
    }
  }

  nlohmann::json to_json() const {
    return {{"name", name}, {"metric", metric}, {"kind", kind}, {"threshold", threshold}, {"window_ms", window_ms},
            {"cooldown_ms", cooldown_ms}, {"severity", severity}, {"detector", detector},
            {"cusum", {{"k", cusum.k}, {"h", cusum.h}, {"warmup", cusum.warmup}, {"reset_on_alarm", cusum.reset_on_alarm}}},
            {"ewma", {{"lambda", ewma.lambda}, {"limit", ewma.limit}, {"warmup", ewma.warmup}}}};
  }

  /// Reads a rule; absent keys keep their defaults, unknown keys and wrong types are errors.
  /// @throws ConfigError naming `path` + "." + the key.
  static AlertRule from_json(const nlohmann::json& j, const std::string& path = "alert_rule") {
    if (!j.is_object()) throw ConfigError(path, "must be an object");
    AlertRule r;
    auto get = [&](const nlohmann::json& obj, const std::string& where, const char* key, auto& out) {
      if (!obj.contains(key)) return;
      const nlohmann::json& v = obj.at(key);
      using T = std::decay_t<decltype(out)>;
      bool ok = true;
      if constexpr (std::is_same_v<T, std::string>) ok = v.is_string();
      else if constexpr (std::is_same_v<T, bool>) ok = v.is_boolean();
      else if constexpr (std::is_same_v<T, std::size_t> || std::is_same_v<T, TimeMs>) ok = v.is_number_integer() && (std::is_signed_v<T> || v.get<std::int64_t>() >= 0);
      else if constexpr (std::is_same_v<T, double>) ok = v.is_number();
      else ok = v.is_string();  // enums
      if (ok) {
        out = v.get<T>();
        if constexpr (std::is_enum_v<T>) {  // nlohmann maps unknown strings to the first enumerator
          if (nlohmann::json(out) != v) ok = false;
        }
      }
      if (!ok) throw ConfigError(where + "." + key, fmt::format("{} has the wrong type or value", v.dump()));
    };
    for (const auto& [key, value] : j.items()) {
      static const char* const kKeys[] = {"name", "metric", "kind", "threshold", "window_ms", "cooldown_ms",
                                          "severity", "detector", "cusum", "ewma"};
      if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys))
        throw ConfigError(path + "." + key, "unknown key");
      if ((key == "cusum" || key == "ewma") && !value.is_object()) throw ConfigError(path + "." + key, "must be an object");
    }
    get(j, path, "name", r.name);
    get(j, path, "metric", r.metric);
    get(j, path, "kind", r.kind);
    get(j, path, "threshold", r.threshold);
    get(j, path, "window_ms", r.window_ms);
    get(j, path, "cooldown_ms", r.cooldown_ms);
    get(j, path, "severity", r.severity);
    get(j, path, "detector", r.detector);
    if (j.contains("cusum")) {
      const auto& c = j.at("cusum");
      for (const auto& [key, value] : c.items())
        if (key != "k" && key != "h" && key != "warmup" && key != "reset_on_alarm") throw ConfigError(path + ".cusum." + key, "unknown key");
      get(c, path + ".cusum", "k", r.cusum.k);
      get(c, path + ".cusum", "h", r.cusum.h);
      get(c, path + ".cusum", "warmup", r.cusum.warmup);
      get(c, path + ".cusum", "reset_on_alarm", r.cusum.reset_on_alarm);
    }
    if (j.contains("ewma")) {
      const auto& c = j.at("ewma");
      for (const auto& [key, value] : c.items())
        if (key != "lambda" && key != "limit" && key != "warmup") throw ConfigError(path + ".ewma." + key, "unknown key");
      get(c, path + ".ewma", "lambda", r.ewma.lambda);
      get(c, path + ".ewma", "limit", r.ewma.limit);
      get(c, path + ".ewma", "warmup", r.ewma.warmup);
    }
    r.validate(path);
    return r;
  }
};

/// One fired alert.
struct Alert {
  std::string rule;     ///< the rule's name
  std::string metric;
  Severity severity = Severity::warning;
  TimeMs time_ms = 0;   ///< time of the observation that fired it
  double value = 0;     ///< the observed value
  double score = 0;     ///< what was compared: the value or window mean, the relative change, the detector score
  double threshold = 0; ///< what it was compared with (for detectors: 1 for CUSUM's score, L for EWMA)
  std::string message;  ///< plain words, e.g. "total_ms averaged 2450 over the last 5 min, above 2000"
  std::string dedup_key;  ///< "rule|metric|episode start ms": the same for as long as the condition holds

  nlohmann::json to_json() const {
    return {{"rule", rule}, {"metric", metric}, {"severity", severity}, {"time_ms", time_ms}, {"value", value},
            {"score", std::isfinite(score) ? nlohmann::json(score) : nlohmann::json(nullptr)},
            {"threshold", threshold}, {"message", message}, {"dedup_key", dedup_key}};
  }
};

/// Evaluates rules over observations; see the file comment for the semantics.
/// Memory: per threshold rule with a window, the observations inside it; per rate_of_change rule, those
/// of its lookback; O(1) otherwise. observe is O(rules on that metric) amortised.
/// Thread-safety: none (plain value); give each thread its own engine or lock around it.
class AlertEngine {
 public:
  /// @throws ConfigError naming "alert_rules[i].field" for an invalid rule or a duplicate name.
  explicit AlertEngine(std::vector<AlertRule> rules) : rules_(std::move(rules)), states_(rules_.size()) {
    for (std::size_t i = 0; i < rules_.size(); ++i) {
      const std::string path = fmt::format("alert_rules[{}]", i);
      rules_[i].validate(path);
      for (std::size_t k = 0; k < i; ++k)
        if (rules_[k].name == rules_[i].name) throw ConfigError(path + ".name", fmt::format("\"{}\" is used by rule {} too", rules_[i].name, k));
      by_metric_[rules_[i].metric].push_back(i);
    }
  }

  /// Feeds one observation of `metric` at time t to every rule on that metric; returns the alerts fired.
  /// Observations of one metric must come in time order (equal times are fine).
  /// @throws ValidationError naming "value" (not finite) or "time" (earlier than the metric's previous
  /// observation); nothing changes then.
  std::vector<Alert> observe(std::string_view metric, TimeMs t, double value) {
    std::vector<Alert> fired;
    const auto it = by_metric_.find(std::string(metric));
    if (it == by_metric_.end()) return fired;
    if (!std::isfinite(value)) throw ValidationError("value", fmt::format("{} is not finite (metric {})", value, metric));
    for (std::size_t i : it->second)
      if (states_[i].seen && t < states_[i].last_time)
        throw ValidationError("time", fmt::format("{} is before the previous observation {} of metric {}", t, states_[i].last_time, metric));
    for (std::size_t i : it->second) step(i, t, value, fired);
    return fired;
  }

  const std::vector<AlertRule>& rules() const noexcept { return rules_; }
  /// True while the rule's condition holds (its last observation met it).
  bool active(std::string_view rule) const {
    for (std::size_t i = 0; i < rules_.size(); ++i)
      if (rules_[i].name == rule) return states_[i].in_episode;
    return false;
  }

  /// The rules and their state: {"version": 1, "rules": [...], "state": [...]}.
  nlohmann::json to_json() const { return {{"version", 1}, {"rules", rules_json()}, {"state", state_json()}}; }

  /// Rebuilds an engine written by to_json.
  /// @throws ConfigError for an invalid rule, ValidationError (path "alert_state") for a malformed state.
  static AlertEngine from_json(const nlohmann::json& j) {
    if (!j.is_object() || !j.contains("rules") || !j.at("rules").is_array())
      throw ValidationError("alert_state", "expected an object with a \"rules\" array");
    if (j.value("version", 0) != 1) throw ValidationError("alert_state.version", fmt::format("{} is not supported (expected 1)", j.value("version", nlohmann::json()).dump()));
    std::vector<AlertRule> rules;
    for (std::size_t i = 0; i < j.at("rules").size(); ++i)
      rules.push_back(AlertRule::from_json(j.at("rules")[i], fmt::format("alert_rules[{}]", i)));
    AlertEngine e(std::move(rules));
    if (j.contains("state")) e.restore_state(j.at("state"));
    return e;
  }

  /// The per-rule state alone (each entry carries its rule's definition).
  nlohmann::json state_json() const {
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < rules_.size(); ++i) {
      const State& s = states_[i];
      nlohmann::json points = nlohmann::json::array();
      for (const auto& [t, v] : s.points) points.push_back({t, v});
      out.push_back({{"rule", rules_[i].to_json()},
                     {"seen", s.seen}, {"last_time", s.last_time},
                     {"points", std::move(points)}, {"window_sum", s.window_sum}, {"since_refresh", s.since_refresh},
                     {"in_episode", s.in_episode}, {"episode_start", s.episode_start}, {"alerted", s.alerted},
                     {"has_fired", s.has_fired}, {"last_fired", s.last_fired},
                     {"phase1", {s.phase1.count(), s.phase1.mean(), s.phase1.m2()}},
                     {"upper", s.upper}, {"lower", s.lower}, {"t", s.t}, {"z", s.z}});
    }
    return out;
  }

  /// Restores the state of every rule whose definition (name and all fields) is unchanged; rules that
  /// are new or changed start fresh, entries for rules no longer present are ignored. So a host may load
  /// its rules from configuration and its state from the previous call.
  /// @throws ValidationError (path "alert_state[i]...") for a malformed entry; nothing changes then.
  void restore_state(const nlohmann::json& state) {
    if (!state.is_array()) throw ValidationError("alert_state", "must be an array");
    std::vector<State> next = states_;
    for (std::size_t e = 0; e < state.size(); ++e) {
      const std::string path = fmt::format("alert_state[{}]", e);
      try {
        const nlohmann::json& j = state.at(e);
        const nlohmann::json& def = j.at("rule");
        std::size_t i = 0;
        while (i < rules_.size() && rules_[i].to_json() != def) ++i;
        if (i == rules_.size()) continue;
        State s;
        s.seen = j.at("seen").get<bool>();
        s.last_time = j.at("last_time").get<TimeMs>();
        TimeMs prev = std::numeric_limits<TimeMs>::min();
        for (const auto& p : j.at("points")) {
          const TimeMs t = p.at(0).get<TimeMs>();
          const double v = p.at(1).get<double>();
          if (t < prev || !std::isfinite(v)) throw ValidationError(path + ".points", "not in time order or not finite");
          s.points.emplace_back(t, v);
          prev = t;
        }
        s.window_sum = j.at("window_sum").get<double>();
        s.since_refresh = j.at("since_refresh").get<std::uint64_t>();
        s.in_episode = j.at("in_episode").get<bool>();
        s.episode_start = j.at("episode_start").get<TimeMs>();
        s.alerted = j.at("alerted").get<bool>();
        s.has_fired = j.at("has_fired").get<bool>();
        s.last_fired = j.at("last_fired").get<TimeMs>();
        const auto& m = j.at("phase1");
        s.phase1 = RunningMoments::from_parts(m.at(0).get<std::uint64_t>(), m.at(1).get<double>(), m.at(2).get<double>());
        s.upper = j.at("upper").get<double>();
        s.lower = j.at("lower").get<double>();
        s.t = j.at("t").get<std::uint64_t>();
        s.z = j.at("z").get<double>();
        if (!std::isfinite(s.window_sum) || !std::isfinite(s.upper) || !std::isfinite(s.lower) || !std::isfinite(s.z))
          throw ValidationError(path, "a sum is not finite");
        next[i] = std::move(s);
      } catch (const nlohmann::json::exception& ex) {
        throw ValidationError(path, ex.what());
      } catch (const ValidationError& ex) {
        if (ex.path().rfind("alert_state", 0) == 0) throw;
        throw ValidationError(path + "." + ex.path(), ex.what());
      }
    }
    states_ = std::move(next);
  }

 private:
  struct State {
    bool seen = false;
    TimeMs last_time = 0;
    std::deque<std::pair<TimeMs, double>> points;  // threshold window / rate-of-change lookback
    double window_sum = 0;
    std::uint64_t since_refresh = 0;
    bool in_episode = false, alerted = false, has_fired = false;
    TimeMs episode_start = 0, last_fired = 0;
    RunningMoments phase1;        // detector warm-up (both detectors)
    double upper = 0, lower = 0;  // CUSUM sums
    std::uint64_t t = 0;          // EWMA steps after warm-up
    double z = 0;                 // EWMA statistic
  };

  nlohmann::json rules_json() const {
    nlohmann::json out = nlohmann::json::array();
    for (const AlertRule& r : rules_) out.push_back(r.to_json());
    return out;
  }

  /// patterns::Cusum::update, step for step, on state that serialises.
  static patterns::Verdict cusum_update(const patterns::Cusum::Params& p, State& s, double x) {
    if (s.phase1.count() < p.warmup) {
      s.phase1.add(x);
      return {};
    }
    const double sd = s.phase1.stddev();
    const double u = sd > 0 ? (x - s.phase1.mean()) / sd : (x == s.phase1.mean() ? 0.0 : std::copysign(1e6, x - s.phase1.mean()));
    s.upper = std::max(0.0, s.upper + u - p.k);
    s.lower = std::max(0.0, s.lower - u - p.k);
    patterns::Verdict v;
    v.score = std::max(s.upper, s.lower) / p.h;
    v.anomaly = v.score > 1;
    if (v.anomaly && p.reset_on_alarm) s.upper = s.lower = 0;
    return v;
  }

  /// patterns::EwmaChart::update, step for step, on state that serialises.
  static patterns::Verdict ewma_update(const patterns::EwmaChart::Params& p, State& s, double x) {
    if (s.phase1.count() < p.warmup) {
      s.phase1.add(x);
      if (s.phase1.count() == p.warmup) s.z = s.phase1.mean();
      return {};
    }
    const double lambda = p.lambda;
    ++s.t;
    s.z = lambda * x + (1 - lambda) * s.z;
    const double sd_z = s.phase1.stddev() * std::sqrt(lambda / (2 - lambda) * (1 - std::pow(1 - lambda, 2.0 * static_cast<double>(s.t))));
    const double d = std::fabs(s.z - s.phase1.mean());
    patterns::Verdict v;
    v.score = sd_z > 0 ? d / sd_z : (d == 0 ? 0.0 : std::numeric_limits<double>::infinity());
    v.anomaly = v.score > p.limit;
    return v;
  }

  void step(std::size_t i, TimeMs t, double value, std::vector<Alert>& fired) {
    const AlertRule& r = rules_[i];
    State& s = states_[i];
    s.seen = true;
    s.last_time = t;
    bool condition = false;
    double score = value, limit = r.threshold;
    std::string what;
    switch (r.kind) {
      case AlertKind::threshold_above:
      case AlertKind::threshold_below: {
        if (r.window_ms > 0) {
          s.points.emplace_back(t, value);
          s.window_sum += value;
          while (s.points.front().first <= t - r.window_ms) {
            s.window_sum -= s.points.front().second;
            s.points.pop_front();
            ++s.since_refresh;
          }
          if (s.since_refresh >= s.points.size()) {  // recompute so rounding cannot accumulate
            s.since_refresh = 0;
            s.window_sum = 0;
            for (const auto& p : s.points) s.window_sum += p.second;
          }
          score = s.window_sum / static_cast<double>(s.points.size());
        }
        const bool above = r.kind == AlertKind::threshold_above;
        condition = above ? score > r.threshold : score < r.threshold;
        what = fmt::format("{} {} {:g}{}, {} the threshold {:g}", r.metric, r.window_ms > 0 ? "averaged" : "was", score,
                           r.window_ms > 0 ? " over the last " + detail::duration_words(r.window_ms) : "",
                           above ? "above" : "below", r.threshold);
        break;
      }
      case AlertKind::rate_of_change: {
        s.points.emplace_back(t, value);
        // Keep one reference at or before t - window_ms, and everything after it.
        while (s.points.size() > 2 && s.points[1].first <= t - r.window_ms) s.points.pop_front();
        const auto& ref = s.points.front();
        if (ref.first <= t - r.window_ms && ref.second != 0) {
          score = (value - ref.second) / std::fabs(ref.second);
          condition = r.threshold > 0 ? score >= r.threshold : score <= r.threshold;
          what = fmt::format("{} {} {:.0f}% in {} (from {:g} to {:g}); the rule fires at {:+.0f}%", r.metric,
                             score >= 0 ? "rose" : "fell", std::fabs(score) * 100, detail::duration_words(t - ref.first),
                             ref.second, value, r.threshold * 100);
        }
        break;
      }
      case AlertKind::detector: {
        const bool cusum = r.detector == DetectorKind::cusum;
        const patterns::Verdict v = cusum ? cusum_update(r.cusum, s, value) : ewma_update(r.ewma, s, value);
        score = v.score;
        limit = cusum ? 1.0 : r.ewma.limit;
        condition = v.anomaly;
        what = fmt::format("{} = {:g} is unusual: {} score {:.2f} exceeds {:g} (baseline mean {:g}, sd {:g})", r.metric, value,
                           cusum ? "CUSUM" : "EWMA", score, limit, s.phase1.mean(), s.phase1.stddev());
        break;
      }
    }
    if (!condition) {
      s.in_episode = false;
      s.alerted = false;
      return;
    }
    if (!s.in_episode) {
      s.in_episode = true;
      s.episode_start = t;
    }
    if (s.alerted) return;                                          // the same episode: one alert
    if (s.has_fired && t - s.last_fired < r.cooldown_ms) return;    // cooling down
    s.alerted = true;
    s.has_fired = true;
    s.last_fired = t;
    Alert a;
    a.rule = r.name;
    a.metric = r.metric;
    a.severity = r.severity;
    a.time_ms = t;
    a.value = value;
    a.score = score;
    a.threshold = limit;
    a.message = what + " (rule " + r.name + ")";
    a.dedup_key = fmt::format("{}|{}|{}", r.name, r.metric, s.episode_start);
    fired.push_back(std::move(a));
  }

  std::vector<AlertRule> rules_;
  std::vector<State> states_;
  std::unordered_map<std::string, std::vector<std::size_t>> by_metric_;
};

}  // namespace promptlearn::monitor
