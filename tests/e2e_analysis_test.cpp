// End to end: pattern analysis through the SQLite file (LearningEngine::analyze), the scheduled pattern job
// with its retention, and `promptlearn analyze`.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include <sys/wait.h>

#include "../src/cli/simulator.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/patterns/analysis.hpp"
#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using nlohmann::json;
using namespace promptlearn;

namespace {

constexpr TimeMs kStart = 1767571200000LL;  // 2026-01-05T00:00:00Z, a Monday
constexpr TimeMs kHour = 3600000LL, kDay = 24 * kHour;

Config fast_config() {
  Config c = test::fast_config();
  c.learning.data_collection.mode = CollectionMode::buffered;
  return c;
}

/// Records `days` days of simulated traffic: interactions during 09-17 UTC only (the planted peak), each
/// with its performance report and outcome, the processing time of every 97th one multiplied by 20 (the
/// planted anomalies). Returns the ids of the planted anomalies.
std::set<std::string> record_traffic(LearningEngine& engine, int days, int per_day, std::uint64_t seed = 3) {
  sim::HostSimulator host(seed, 8);
  Rng rng(seed);
  std::set<std::string> spikes;
  int k = 0;
  for (int d = 0; d < days; ++d)
    for (int i = 0; i < per_day; ++i, ++k) {
      const TimeMs t = kStart + d * kDay + 9 * kHour + static_cast<TimeMs>(rng.uniform() * 8 * kHour);
      auto s = host.next(t);
      if (k % 97 == 50) {
        auto& pm = s.performance["performance_metrics"];
        pm["total_processing_time_ms"] = pm["total_processing_time_ms"].get<double>() * 20;
        spikes.insert(s.interaction_id);
      }
      REQUIRE(engine.record(s.interaction).accepted);
      REQUIRE(engine.record(s.performance).accepted);
      REQUIRE(engine.record(s.outcome).accepted);
    }
  engine.flush();
  return spikes;
}

using test::Run;

Run sh(const std::string& cmd) { return test::sh(cmd, true); }

}  // namespace

TEST_CASE("analyze reads the window from the file and finds the planted patterns", "[e2e][analysis]") {
  test::TempDir dir;
  ManualClock clock(kStart);
  EngineOptions eo;
  eo.clock = &clock;
  LearningEngine engine(dir.file("a.db"), fast_config(), eo);
  const auto spikes = record_traffic(engine, 14, 120);
  clock.set(kStart + 14 * kDay);

  AnalysisOptions o;
  o.days = 14;
  const patterns::AnalysisReport r = engine.analyze(o);
  CHECK(r.events == 14 * 120);
  CHECK(r.outcomes == 14 * 120);
  // Peak hours: every planted hour 09..16 and nothing else.
  std::set<int> peaks;
  for (const auto& h : r.frequency.temporal.peak_hours) peaks.insert(h.hour);
  CHECK(peaks == std::set<int>{9, 10, 11, 12, 13, 14, 15, 16});
  // The simulator's hidden model: templates differ in quality by domain.
  REQUIRE(r.template_effect);
  CHECK(r.template_effect->kruskal_wallis.p_value < 1e-6);
  // The planted latency spikes are found on total_processing_time_ms (by the fused or the robust z
  // detector: a spike counts once whichever found it).
  std::set<std::string> flagged;
  for (const auto& a : r.anomalies)
    if ((a.detector == "fused" || a.detector == "robust_z") && a.metric == "total_processing_time_ms")
      flagged.insert(a.interaction_id);
  std::size_t tp = 0, fp = 0;
  for (const auto& id : flagged) (spikes.count(id) ? tp : fp) += 1;
  const double precision = tp + fp ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 0;
  // Spikes inside the robust detector's warm-up (its first 10 values) cannot be scored.
  std::size_t scorable = 0;
  {
    store::Store st(dir.file("a.db"));
    store::Statement q(st.db(), "SELECT interaction_id FROM interactions ORDER BY timestamp LIMIT -1 OFFSET 10");
    while (q.step()) scorable += spikes.count(q.column_text(0));
  }
  const double recall = static_cast<double>(tp) / static_cast<double>(scorable);
  std::cout << "analysis e2e: latency spikes " << spikes.size() << " planted, " << scorable << " after warm-up; found "
            << tp << ", false " << fp << " (precision " << precision << ", recall " << recall << ")\n";
  CHECK(precision >= 0.9);
  CHECK(recall >= 0.9);
  // Insights exist for the simulated users (peak hours at least), and the report serialises.
  std::size_t peak_insights = 0;
  for (const auto& i : r.insights) peak_insights += i.type == "peak_hours";
  CHECK(peak_insights >= 6);
  const json j = patterns::to_json(r);
  CHECK(json::parse(j.dump())["events"] == 14 * 120);
  for (const char* key : {"window", "frequency", "correlations", "template_effect", "anomalies", "drift", "clusters",
                          "trend", "insights"})
    CHECK(j.contains(key));
  // A window with no events is an empty report, not an error.
  AnalysisOptions empty;
  empty.from = kStart - 30 * kDay;
  empty.to = kStart - 20 * kDay;
  const patterns::AnalysisReport e = engine.analyze(empty);
  CHECK(e.events == 0);
  CHECK(e.insights.empty());
  AnalysisOptions bad;
  bad.days = 0;
  CHECK_THROWS_WITH(engine.analyze(bad), Catch::Contains("analysis.days"));
}

TEST_CASE("analyze on several threads reads the same events and gives the same report", "[e2e][analysis]") {
  test::TempDir dir;
  ManualClock clock(kStart);
  EngineOptions eo;
  eo.clock = &clock;
  LearningEngine engine(dir.file("a.db"), fast_config(), eo);
  record_traffic(engine, 5, 200);
  clock.set(kStart + 5 * kDay);
  // The key splits cut the ids into disjoint ranges whose union is every interaction, in id order.
  {
    store::Store st(dir.file("a.db"));
    const auto splits = st.interaction_key_splits(4, kStart, kStart + 5 * kDay);
    REQUIRE(splits.size() == 3);
    CHECK(std::is_sorted(splits.begin(), splits.end()));
    const auto whole = st.analysis_events_in_keys(kStart, kStart + 5 * kDay, "", "");
    std::vector<std::string> ids;
    std::size_t outcomes = 0;
    for (std::size_t i = 0; i <= splits.size(); ++i) {
      const auto part = st.analysis_events_in_keys(kStart, kStart + 5 * kDay, i ? splits[i - 1] : "",
                                                   i < splits.size() ? splits[i] : "");
      CHECK(part.size() > 100);  // about a quarter each
      for (const auto& e : part) ids.push_back(e.interaction_id), outcomes += e.has_outcome;
    }
    REQUIRE(ids.size() == whole.size());
    for (std::size_t i = 0; i < ids.size(); ++i) CHECK(ids[i] == whole[i].interaction_id);
    CHECK(outcomes == whole.size());
    CHECK(st.interaction_key_splits(1, kStart, kStart + 5 * kDay).empty());
    CHECK(st.interaction_key_splits(4, kStart - 2 * kDay, kStart).empty());  // no interactions there
  }
  AnalysisOptions o;
  o.days = 5;
  o.threads = 1;
  const std::string one = patterns::to_json(engine.analyze(o)).dump();
  for (int t : {2, 3, 0}) {
    o.threads = t;
    CHECK(patterns::to_json(engine.analyze(o)).dump() == one);
  }
  o.threads = -1;
  CHECK_THROWS_WITH(engine.analyze(o), "analysis.threads: -1 is negative");
}

TEST_CASE("analyze --persist and the hourly pattern job write patterns and anomalies, pruned by retention",
          "[e2e][analysis]") {
  test::TempDir dir;
  const std::string db = dir.file("jobs.db");
  ManualClock clock(kStart);
  EngineOptions eo;
  eo.clock = &clock;
  Config cfg = fast_config();
  cfg.learning.data_retention.pattern_data_days = 2;
  LearningEngine engine(db, cfg, eo);
  record_traffic(engine, 6, 100);
  clock.set(kStart + 6 * kDay);

  AnalysisOptions o;
  o.days = 6;
  o.persist = true;
  const patterns::AnalysisReport r = engine.analyze(o);
  store::Store st(db);
  const auto rows = st.patterns_since(0);
  std::size_t insights = 0;
  for (const auto& p : rows) insights += p.kind == "insight";
  CHECK(insights == r.insights.size());
  CHECK(st.db().query_int("SELECT count(*) FROM anomalies") == static_cast<std::int64_t>(r.anomalies.size()));
  for (const auto& p : rows) {
    CHECK(!p.description.empty());
    CHECK(!p.recommendation.empty());
    CHECK(json::parse(p.evidence).is_object());
    CHECK(p.confidence >= 0.0);
    CHECK(p.confidence <= 1.0);
  }

  // The job: runs once per hour (the schedule is kept in the file), then prunes by pattern_data_days.
  const std::int64_t before = st.db().query_int("SELECT count(*) FROM patterns");
  JobsReport j1 = engine.run_due_jobs(clock.now_ms());
  CHECK(std::count(j1.ran.begin(), j1.ran.end(), "patterns") == 1);
  CHECK(j1.patterns_written > 0);
  JobsReport j2 = engine.run_due_jobs(clock.now_ms() + 10 * 60000);  // 10 minutes later: not due
  CHECK(std::count(j2.ran.begin(), j2.ran.end(), "patterns") == 0);
  CHECK(st.db().query_int("SELECT count(*) FROM patterns") > before);
  CHECK(st.db().query_int("SELECT count(*) FROM audit_log WHERE action = 'patterns'") == 1);
  // Three days later everything written at day 6 is older than 2 days: pruned, then the job writes anew.
  const TimeMs later = clock.now_ms() + 3 * kDay;
  JobsReport j3 = engine.run_due_jobs(later);
  CHECK(std::count(j3.ran.begin(), j3.ran.end(), "patterns") == 1);
  CHECK(st.db().query_int("SELECT count(*) FROM patterns WHERE created_at < '" + format_rfc3339(later - 2 * kDay) + "'") == 0);
  CHECK(st.db().query_int("SELECT count(*) FROM anomalies WHERE created_at < '" + format_rfc3339(later - 2 * kDay) + "'") == 0);
  CHECK(engine.integrity_check() == "ok");
}

TEST_CASE("promptlearn analyze prints the report as JSON and as a summary", "[e2e][analysis][cli]") {
  test::TempDir dir;
  const std::string db = dir.file("cli.db");
  {
    ManualClock clock(kStart);
    EngineOptions eo;
    eo.clock = &clock;
    LearningEngine engine(db, fast_config(), eo);
    record_traffic(engine, 5, 80);
    engine.close();
  }
  const std::string bin = std::string(PROMPTLEARN_BIN_DIR) + "/promptlearn";
  Run js = sh(bin + " analyze --db " + db + " --days 5 --now 2026-01-10T00:00:00Z");
  REQUIRE(js.status == 0);
  const json j = json::parse(js.out);
  CHECK(j["events"] == 400);
  CHECK(j["insights"].is_array());
  Run human = sh(bin + " analyze --db " + db + " --days 5 --now 2026-01-10T00:00:00Z --human --persist");
  REQUIRE(human.status == 0);
  CHECK(human.out.find("400 interactions") != std::string::npos);
  CHECK(human.out.find("peak hours (UTC):") != std::string::npos);
  store::Store st(db);
  CHECK(st.db().query_int("SELECT count(*) FROM patterns") > 0);
  Run bad = sh(bin + " analyze --db " + db + " --days 0");
  CHECK(bad.status == 2);
  CHECK(bad.out.find("--days") != std::string::npos);
  Run bad_now = sh(bin + " analyze --db " + db + " --now yesterday");
  CHECK(bad_now.status == 2);
  CHECK(bad_now.out.find("yesterday") != std::string::npos);
}
