// End to end: performance monitoring through LearningEngine on a real file -- hourly and daily rollups,
// percentiles against exact ones, alerts with de-duplication delivered to the host, the cold tier after
// retention, and `promptlearn metrics`.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using namespace promptlearn;
using nlohmann::json;

namespace {

constexpr TimeMs kHour = 3600000, kDay = 24 * kHour;
const TimeMs kStart = *try_parse_rfc3339("2026-03-02T00:00:00Z");

/// Exact quantile (lower nearest rank, as the sketch reports the value of rank floor(q (n - 1))).
double exact_quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(std::floor(q * static_cast<double>(v.size() - 1)))];
}

struct Run {
  std::vector<double> day1_totals;  ///< total_processing_time_ms of every request on day 1
  std::vector<json> alerts;         ///< what on_alert received
};

/// Three days, 30 requests an hour, latency lognormal around 150 ms; on day 2 from 10:00 to 14:00 every
/// request is ten times slower. run_due_jobs at the end of every hour.
void simulate(LearningEngine& engine, ManualClock& clock, Run& run, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> latency(std::log(150.0), 0.5);
  int k = 0;
  for (TimeMs h = kStart; h < kStart + 3 * kDay; h += kHour) {
    const bool spike = h >= kStart + kDay + 10 * kHour && h < kStart + kDay + 14 * kHour;
    for (int i = 0; i < 30; ++i, ++k) {
      clock.set(h + i * 119000);
      const std::string id = test::uuid_for(static_cast<std::uint64_t>(k), seed);
      json doc = test::interaction_doc(id, "Summarise the design document");
      doc["timestamp"] = format_rfc3339(clock.now_ms());
      REQUIRE(engine.record(doc).accepted);
      const double total = latency(rng) * (spike ? 10 : 1);
      REQUIRE(engine.record(json{{"interaction_id", id},
                                 {"performance_metrics",
                                  {{"total_processing_time_ms", total},
                                   {"template_selection_time_ms", total * 0.1},
                                   {"cache_performance", {{"template_cache_hit", i % 4 != 0}}}}}})
                  .accepted);
      if (h < kStart + kDay) run.day1_totals.push_back(total);
    }
    if (h == kStart + 5 * kHour) CHECK_FALSE(engine.record(json{{"interaction_id", "not-a-uuid"}}).accepted);
    clock.set(h + kHour);
    engine.run_due_jobs(clock.now_ms());
  }
}

}  // namespace

TEST_CASE("rollups, percentiles, alerts and the cold tier", "[e2e][monitoring]") {
  test::TempDir dir;
  const std::string db = dir.file("mon.db");
  ManualClock clock(kStart);
  Run run;
  EngineOptions eo;
  eo.clock = &clock;
  eo.on_alert = [&run](const json& a) { run.alerts.push_back(a); };
  {
    LearningEngine engine(db, test::fast_config(), eo);
    simulate(engine, clock, run, 5);
    store::Store st(db);
    // Every hour rolled up by the job at its end (the last one too), the days merged from them.
    CHECK(st.db().query_int("SELECT count(*) FROM metric_rollups WHERE granularity = 'hour'") == 72);
    CHECK(st.db().query_int("SELECT count(*) FROM metric_rollups WHERE granularity = 'day'") == 3);
    CHECK(st.db().query_int("SELECT sum(requests) FROM metric_rollups WHERE granularity = 'day'") == 72 * 30 + 1);
    CHECK(st.db().query_int("SELECT sum(requests) FROM metric_rollups WHERE granularity = 'hour'") == 72 * 30 + 1);

    // Day 1 from the rollups: the sketch's percentiles within its 1% relative accuracy of the exact ones.
    const json m = engine.metrics(kStart, kStart + kDay);
    CHECK(m["sources"]["rollup_hours"] == 24);
    CHECK(m["sources"]["raw_rows"] == 0);
    CHECK(m["metrics"]["requests"] == 24 * 30 + 1);
    CHECK(m["metrics"]["errors"] == 1);
    CHECK(m["metrics"]["reliability"]["errors_by_type"]["interaction_id"] == 1);
    for (double q : {0.5, 0.9, 0.95, 0.99}) {
      const std::string key = q == 0.5 ? "p50" : q == 0.9 ? "p90" : q == 0.95 ? "p95" : "p99";
      const double got = m["metrics"]["latency_ms"]["total"][key].get<double>();
      const double want = exact_quantile(run.day1_totals, q);
      INFO(key << " sketch " << got << " exact " << want);
      CHECK(std::abs(got - want) <= 0.0101 * want);
    }
    CHECK(m["metrics"]["cache"]["hit_rate"].get<double>() == Approx(22.0 / 30));  // i % 4 != 0 of i = 0..29
    // A window with partial hours at both ends mixes rollups and raw rows and counts every request once.
    const json part = engine.metrics(kStart + 30 * 60000, kStart + 2 * kHour + 30 * 60000);
    CHECK(part["sources"]["rollup_hours"] == 1);
    CHECK(part["metrics"]["requests"] == 60);

    // The latency spike fired the threshold alert once (one episode: de-duplicated), delivered and stored.
    std::size_t slow = 0;
    for (const auto& a : run.alerts) slow += a["rule"] == "slow_enhancement" ? 1 : 0;
    CHECK(slow == 1);
    CHECK(st.db().query_int("SELECT count(*) FROM alerts WHERE rule = 'slow_enhancement'") == 1);
    CHECK(st.db().query_int("SELECT count(*) FROM alerts WHERE rule = 'slow_enhancement' AND fired_at >= "
                            "'2026-03-03T10:00:00' AND fired_at <= '2026-03-03T15:00:00'") == 1);
    // Nothing fired on the quiet first day.
    CHECK(st.db().query_int("SELECT count(*) FROM alerts WHERE fired_at < '2026-03-03'") == 0);
  }
  // The cold tier: with the raw rows and the hourly rollups past retention, the days are still there.
  Config short_retention = test::fast_config();
  short_retention.learning.data_retention.interaction_data_days = 1;
  short_retention.learning.data_retention.performance_data_days = 1;
  LearningEngine engine(db, short_retention, eo);
  engine.run_retention(kStart + 3 * kDay + kHour);
  {
    store::Store st(db);
    CHECK(st.db().query_int("SELECT count(*) FROM performance WHERE timestamp < '2026-03-04'") == 0);
    CHECK(st.db().query_int("SELECT count(*) FROM metric_rollups WHERE granularity = 'hour' AND bucket_start < '2026-03-04'") == 0);
  }
  const json old = engine.metrics(kStart, kStart + 2 * kDay);
  CHECK(old["sources"]["rollup_days"] == 2);
  CHECK(old["metrics"]["requests"] == 48 * 30 + 1);
  const double p50 = old["metrics"]["latency_ms"]["total"]["p50"].get<double>();
  CHECK(p50 > 100);
  CHECK(p50 < 250);
}

TEST_CASE("bad alert rules are refused at open, naming the rule and field", "[e2e][monitoring]") {
  test::TempDir dir;
  EngineOptions eo;
  eo.alert_rules = json::array({{{"name", "x"}, {"metric", "total_p95_ms"}, {"kind", "rate_of_change"}, {"threshold", 0.5}}});
  try {
    LearningEngine engine(dir.file("a.db"), test::fast_config(), eo);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.key() == "alert_rules[0].window_ms");
  }
  eo.alert_rules = json::array({{{"name", "x"}, {"metric", "m"}, {"kind", "sideways"}}});
  CHECK_THROWS_AS(LearningEngine(dir.file("b.db"), test::fast_config(), eo), ConfigError);
  eo.alert_rules = json::object();
  CHECK_THROWS_AS(LearningEngine(dir.file("c.db"), test::fast_config(), eo), ConfigError);
  eo.alert_rules = json::array();  // no rules at all is allowed
  LearningEngine engine(dir.file("d.db"), test::fast_config(), eo);
  CHECK_THROWS_AS(engine.metrics(kStart, kStart), ConfigError);
}

TEST_CASE("promptlearn metrics prints the window as JSON and as a table", "[e2e][monitoring][cli]") {
  test::TempDir dir;
  const std::string db = dir.file("cli.db");
  ManualClock clock(kStart);
  Run run;
  {
    EngineOptions eo;
    eo.clock = &clock;
    LearningEngine engine(db, test::fast_config(), eo);
    simulate(engine, clock, run, 9);
  }
  const std::string bin = std::string(PROMPTLEARN_BIN_DIR) + "/promptlearn";
  auto r = test::sh(bin + " metrics --db " + db + " --window 24h --now 2026-03-02T23:59:59.999Z");
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  CHECK(j["metrics"]["requests"] == 24 * 30 + 1);
  CHECK(j["metrics"]["latency_ms"]["total"]["p95"].is_number());
  CHECK(j["engine_resources"]["memory_peak_mb"].get<double>() > 0);
  r = test::sh(bin + " metrics --db " + db + " --window 3d --now 2026-03-05T00:00:00Z --human");
  REQUIRE(r.status == 0);
  CHECK(r.out.find("p95") != std::string::npos);
  CHECK(r.out.find("alerts (") != std::string::npos);
  CHECK(r.out.find("slow_enhancement") != std::string::npos);  // the spike's alert, in plain words
  r = test::sh(bin + " metrics --db " + db + " --window soon", true);
  CHECK(r.status == 2);
  CHECK(r.out.find("--window") != std::string::npos);
}
