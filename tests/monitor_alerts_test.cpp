// AlertEngine: thresholds, rate of change, detectors (checked against patterns/anomaly.hpp), cooldown and
// de-duplication, rule validation, and a JSON state round trip that continues identically.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "promptlearn/monitor/alerts.hpp"

using promptlearn::ConfigError;
using promptlearn::TimeMs;
using promptlearn::ValidationError;
using namespace promptlearn::monitor;
namespace patterns = promptlearn::patterns;

namespace {

AlertRule rule(const std::string& name, const std::string& metric, AlertKind kind, double threshold, TimeMs window = 0,
               TimeMs cooldown = 0) {
  AlertRule r;
  r.name = name;
  r.metric = metric;
  r.kind = kind;
  r.threshold = threshold;
  r.window_ms = window;
  r.cooldown_ms = cooldown;
  return r;
}

}  // namespace

TEST_CASE("alerts: threshold with de-duplication and cooldown", "[monitor][alerts]") {
  AlertEngine e({rule("slow", "latency", AlertKind::threshold_above, 10, 0, 60000)});
  CHECK(e.observe("latency", 0, 5).empty());
  auto a = e.observe("latency", 1000, 12);
  REQUIRE(a.size() == 1);
  CHECK(a[0].rule == "slow");
  CHECK(a[0].value == 12);
  CHECK(a[0].threshold == 10);
  CHECK(a[0].dedup_key == "slow|latency|1000");
  CHECK(a[0].message == "latency was 12, above the threshold 10 (rule slow)");
  CHECK(e.observe("latency", 2000, 13).empty());  // still true: the same alert
  CHECK(e.active("slow"));
  CHECK(e.observe("latency", 3000, 8).empty());   // cleared
  CHECK_FALSE(e.active("slow"));
  CHECK(e.observe("latency", 4000, 15).empty());  // true again, but within 60 s of the last alert
  CHECK(e.observe("other_metric", 5000, 99).empty());
  a = e.observe("latency", 61000, 16);            // cooldown over, condition still true: fires now
  REQUIRE(a.size() == 1);
  CHECK(a[0].dedup_key == "slow|latency|4000");   // the episode began at 4000
  CHECK(e.observe("latency", 62000, 17).empty());
  CHECK(e.observe("latency", 63000, 1).empty());
  a = e.observe("latency", 130000, 11);
  REQUIRE(a.size() == 1);
  CHECK(a[0].dedup_key == "slow|latency|130000");
}

TEST_CASE("alerts: threshold on the mean over a window", "[monitor][alerts]") {
  AlertEngine e({rule("low_hit_rate", "cache_hit_rate", AlertKind::threshold_below, 0.5, 10000)});
  CHECK(e.observe("cache_hit_rate", 0, 0.9).empty());     // mean 0.9
  CHECK(e.observe("cache_hit_rate", 5000, 0.2).empty());  // mean 0.55
  auto a = e.observe("cache_hit_rate", 9000, 0.3);        // mean (0.9 + 0.2 + 0.3) / 3 = 0.4667
  REQUIRE(a.size() == 1);
  CHECK(a[0].score == Approx(1.4 / 3));
  CHECK(a[0].message == "cache_hit_rate averaged 0.466667 over the last 10 s, below the threshold 0.5 (rule low_hit_rate)");
  // At 10000 the value at 0 leaves the window: mean (0.2 + 0.3 + 0.95) / 3 = 0.4833, still below: no new alert.
  CHECK(e.observe("cache_hit_rate", 10000, 0.95).empty());
  CHECK(e.active("low_hit_rate"));
  // At 15000 the one at 5000 leaves: mean (0.3 + 0.95 + 0.9) / 3 = 0.7167: cleared.
  CHECK(e.observe("cache_hit_rate", 15000, 0.9).empty());
  CHECK_FALSE(e.active("low_hit_rate"));
}

TEST_CASE("alerts: rate of change against the value one lookback earlier", "[monitor][alerts]") {
  AlertEngine e({rule("latency_jump", "p95", AlertKind::rate_of_change, 0.5, 60000),
                 rule("throughput_drop", "rps", AlertKind::rate_of_change, -0.3, 60000)});
  CHECK(e.observe("p95", 0, 100).empty());
  CHECK(e.observe("p95", 30000, 110).empty());  // no value 60 s earlier yet: no opinion
  CHECK(e.observe("p95", 60000, 120).empty());  // +20% against t = 0
  auto a = e.observe("p95", 90000, 170);        // against t = 30000: (170 - 110) / 110 = +54.5%
  REQUIRE(a.size() == 1);
  CHECK(a[0].score == Approx(60.0 / 110));
  CHECK(a[0].message == "p95 rose 55% in 1 min (from 110 to 170); the rule fires at +50% (rule latency_jump)");
  CHECK(e.observe("rps", 0, 10).empty());
  CHECK(e.observe("rps", 60000, 8).empty());     // -20%
  a = e.observe("rps", 120000, 5);               // -37.5%
  REQUIRE(a.size() == 1);
  CHECK(a[0].rule == "throughput_drop");
  CHECK(a[0].score == Approx(-0.375));
}

TEST_CASE("alerts: detector rules score exactly as patterns::Cusum and patterns::EwmaChart", "[monitor][alerts]") {
  std::mt19937_64 g(3);
  std::normal_distribution<double> noise(100, 10);
  std::vector<double> xs;
  for (int i = 0; i < 3000; ++i) xs.push_back(noise(g) + (i >= 1500 && i < 1800 ? 15 : 0) + (i % 500 == 250 ? 80 : 0));
  for (DetectorKind kind : {DetectorKind::cusum, DetectorKind::ewma}) {
    AlertRule r = rule("shift", "latency", AlertKind::detector, 0);
    r.detector = kind;
    AlertEngine e({r});
    patterns::Cusum cusum(r.cusum);
    patterns::EwmaChart ewma(r.ewma);
    bool previous = false;
    std::size_t expected = 0, got = 0, in_shift = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const patterns::Verdict v = kind == DetectorKind::cusum ? cusum.update(xs[i]) : ewma.update(xs[i]);
      const auto alerts = e.observe("latency", static_cast<TimeMs>(i) * 1000, xs[i]);
      const bool fire = v.anomaly && !previous;  // cooldown 0: one alert per run of anomalous values
      previous = v.anomaly;
      REQUIRE(alerts.size() == (fire ? 1u : 0u));
      if (fire) {
        ++expected;
        ++got;
        CHECK(alerts[0].score == v.score);
        if (i >= 1500 && i < 1800) ++in_shift;
      }
    }
    INFO((kind == DetectorKind::cusum ? "cusum" : "ewma") << " alerts " << got);
    CHECK(got == expected);
    CHECK(in_shift >= 1);  // the 1.5-sigma shift is caught
  }
}

TEST_CASE("alerts: the JSON state round trip continues identically", "[monitor][alerts]") {
  AlertRule det = rule("det", "latency", AlertKind::detector, 0, 0, 5000);
  AlertRule ewma = rule("ewma", "latency", AlertKind::detector, 0, 0, 0);
  ewma.detector = DetectorKind::ewma;
  ewma.severity = Severity::critical;
  const std::vector<AlertRule> rules = {rule("hi", "latency", AlertKind::threshold_above, 130, 20000, 10000),
                                        rule("lo", "hit_rate", AlertKind::threshold_below, 0.4, 0, 3000),
                                        rule("roc", "latency", AlertKind::rate_of_change, 0.3, 15000, 20000), det, ewma};
  AlertEngine live(rules);
  TimeMs t = 0;
  std::vector<std::string> before, after_live, after_restored;
  auto feed = [&](AlertEngine& e, std::uint64_t seed, std::vector<std::string>& out) {
    std::mt19937_64 gg(seed);
    TimeMs tt = t;
    for (int i = 0; i < 2000; ++i) {
      tt += std::uniform_int_distribution<TimeMs>(0, 2000)(gg);
      const double x = std::normal_distribution<double>(100 + (i % 400 > 300 ? 40 : 0), 20)(gg);
      for (const Alert& a : e.observe("latency", tt, x)) out.push_back(a.to_json().dump());
      for (const Alert& a : e.observe("hit_rate", tt, std::uniform_real_distribution<double>(0, 1)(gg))) out.push_back(a.to_json().dump());
    }
    return tt;
  };
  t = feed(live, 1, before);
  CHECK(before.size() > 10);
  const std::string saved = live.to_json().dump();
  AlertEngine restored = AlertEngine::from_json(nlohmann::json::parse(saved));
  CHECK(restored.to_json().dump() == saved);
  feed(live, 2, after_live);
  feed(restored, 2, after_restored);
  CHECK(after_live.size() > 10);
  CHECK(after_live == after_restored);

  // Rules from configuration plus the saved state: a changed rule starts fresh, the others continue.
  std::vector<AlertRule> changed = rules;
  changed[0].threshold = 500;
  AlertEngine partly(changed);
  partly.restore_state(nlohmann::json::parse(saved).at("state"));
  const nlohmann::json st = partly.state_json();
  CHECK(st[0].at("points").empty());
  CHECK(st[3] == nlohmann::json::parse(saved).at("state")[3]);  // 'det' unchanged: restored as saved
}

TEST_CASE("alerts: rules are validated and errors name the field", "[monitor][alerts]") {
  AlertRule ok = rule("a", "m", AlertKind::threshold_above, 1);
  AlertRule r = ok;
  r.threshold = std::nan("");
  CHECK_THROWS_MATCHES(AlertEngine({r}), ConfigError, Catch::Message("alert_rules[0].threshold: nan is not finite"));
  CHECK_THROWS_MATCHES(AlertEngine({ok, ok}), ConfigError, Catch::Message("alert_rules[1].name: \"a\" is used by rule 0 too"));
  r = ok;
  r.metric.clear();
  CHECK_THROWS_MATCHES(AlertEngine({r}), ConfigError, Catch::Message("alert_rules[0].metric: must not be empty"));
  r = rule("roc", "m", AlertKind::rate_of_change, 0.5, 0);
  CHECK_THROWS_WITH(AlertEngine({r}), Catch::StartsWith("alert_rules[0].window_ms: must be > 0"));
  r = ok;
  r.cooldown_ms = -1;
  CHECK_THROWS_WITH(AlertEngine({r}), "alert_rules[0].cooldown_ms: -1 is negative");
  r = ok;
  r.cusum.h = 0;
  CHECK_THROWS_WITH(AlertEngine({r}), "alert_rules[0].cusum.h: must be finite and > 0");
  CHECK_THROWS_WITH(AlertRule::from_json({{"name", "x"}, {"metric", "m"}, {"kind", "above"}}), "alert_rule.kind: \"above\" has the wrong type or value");
  CHECK_THROWS_WITH(AlertRule::from_json({{"name", "x"}, {"metric", "m"}, {"treshold", 1}}), "alert_rule.treshold: unknown key");
  CHECK_THROWS_WITH(AlertRule::from_json({{"name", "x"}, {"metric", "m"}, {"window_ms", "5"}}), Catch::StartsWith("alert_rule.window_ms:"));
  CHECK_THROWS_WITH(AlertRule::from_json({{"name", "x"}, {"metric", "m"}, {"ewma", {{"lambda", 2.0}}}}), Catch::StartsWith("alert_rule.ewma.lambda: must be in (0, 1]"));
  const AlertRule back = AlertRule::from_json(ok.to_json());
  CHECK(back.to_json() == ok.to_json());

  AlertEngine e({ok});
  CHECK_THROWS_WITH(e.observe("m", 0, std::nan("")), Catch::StartsWith("value: nan is not finite"));
  e.observe("m", 100, 0);
  CHECK_THROWS_WITH(e.observe("m", 99, 0), "time: 99 is before the previous observation 100 of metric m");
  CHECK_THROWS_AS(AlertEngine::from_json({{"version", 1}, {"rules", {ok.to_json()}}, {"state", {{{"rule", ok.to_json()}}}}}), ValidationError);
  CHECK_THROWS_AS(AlertEngine::from_json({{"version", 2}, {"rules", nlohmann::json::array()}}), ValidationError);
}
