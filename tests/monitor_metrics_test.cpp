// MetricsWindow: the figures of hand-computed cases, exact merging, the blob format, process resources.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "promptlearn/monitor/metrics.hpp"

using promptlearn::ConfigError;
using promptlearn::ValidationError;
using namespace promptlearn::monitor;
using promptlearn::TimeMs;

namespace {

StageTimings total(double ms) {
  StageTimings t;
  t.total_ms = ms;
  return t;
}

MetricsWindow hand_window() {
  MetricsWindow w(0, 600000);  // ten minutes
  StageTimings first = total(100);
  first.template_selection_ms = 10;
  w.add_request(1000, first, false, {}, 3, 1);
  w.add_request(2000, total(200), true, "timeout");
  w.add_request(61000, total(300), true, "timeout");
  w.add_request(62000, total(400), true, "rate_limited", 1, 3);
  StageTimings last = total(500);
  last.claude_response_time_ms = 1500;
  w.add_request(63000, last, false, "ignored for a success");
  return w;
}

}  // namespace

TEST_CASE("metrics: a hand-computed window", "[monitor][metrics]") {
  const MetricsWindow w = hand_window();
  const MetricsSummary s = w.summary();
  CHECK(s.requests == 5);
  CHECK(s.errors == 3);
  CHECK(s.length_ms == 600000);
  CHECK(s.requests_per_second == Approx(5.0 / 600));
  CHECK(s.enhancements_per_minute == Approx(2.0 / 10));
  CHECK(s.peak_requests_per_minute == 3);  // 61 s, 62 s, 63 s fall in minute 1
  CHECK(s.error_rate == Approx(0.6));
  CHECK(s.errors_by_type == std::map<std::string, std::uint64_t>{{"rate_limited", 1}, {"timeout", 2}});
  CHECK(s.mtbf_ms == Approx(200000));             // 600000 ms / 3 failures
  CHECK(s.mean_failure_gap_ms == Approx(30000));  // (62000 - 2000) / 2
  CHECK(s.cache_hits == 4);
  CHECK(s.cache_misses == 4);
  CHECK(s.cache_hit_rate == Approx(0.5));
  const StageSummary& t = s[Stage::total];
  CHECK(t.count == 5);
  CHECK(t.p50 == Approx(300).epsilon(0.01));  // order statistic floor(0.5 * 4) = 2
  CHECK(t.p90 == Approx(400).epsilon(0.01));  // floor(0.9 * 4) = 3
  CHECK(t.p99 == Approx(400).epsilon(0.01));
  CHECK(t.max == 500);
  CHECK(t.mean == 300);
  CHECK(s[Stage::template_selection].count == 1);
  CHECK(s[Stage::template_selection].p99 == 10);
  CHECK(s[Stage::claude_response_time].max == 1500);
  CHECK(s[Stage::validation].count == 0);
  CHECK(std::isnan(s[Stage::validation].p50));

  const MetricsSummary half = w.summary(300000);  // a window still being filled: 5 minutes so far
  CHECK(half.length_ms == 300000);
  CHECK(half.requests_per_second == Approx(5.0 / 300));
  CHECK(half.mtbf_ms == Approx(100000));
  CHECK(w.summary(10'000'000).length_ms == 600000);  // as_of after the end: the whole window

  const nlohmann::json j = s.to_json();
  CHECK(j.at("requests") == 5);
  CHECK(j.at("latency_ms").at("total").at("max") == 500.0);
  CHECK(j.at("latency_ms").at("validation").at("p50").is_null());
  CHECK(j.at("reliability").at("errors_by_type").at("timeout") == 2);
  CHECK(j.at("throughput").at("peak_requests_per_minute") == 3);
  CHECK(j.at("cache").at("hit_rate") == 0.5);
}

TEST_CASE("metrics: an empty window and no-data figures", "[monitor][metrics]") {
  const MetricsSummary s = MetricsWindow(0, 60000).summary();
  CHECK(s.requests == 0);
  CHECK(s.requests_per_second == 0);
  CHECK(std::isnan(s.error_rate));
  CHECK(std::isnan(s.mtbf_ms));
  CHECK(std::isnan(s.cache_hit_rate));
  CHECK(s.to_json().at("reliability").at("error_rate").is_null());
  MetricsWindow one(0, 60000);
  one.add_request(5, total(1), true);
  CHECK(one.summary().errors_by_type.at("unknown") == 1);
  CHECK(std::isnan(one.summary().mean_failure_gap_ms));  // one failure: no gap
}

TEST_CASE("metrics: invalid input names the field and records nothing", "[monitor][metrics]") {
  MetricsWindow w(1000, 2000);
  StageTimings bad = total(5);
  bad.validation_ms = -1;
  CHECK_THROWS_MATCHES(w.add_request(1500, bad), ValidationError,
                       Catch::Message("performance.validation_time_ms: -1 is not a finite number >= 0"));
  bad.validation_ms = std::nan("");
  CHECK_THROWS_AS(w.add_request(1500, bad), ValidationError);
  CHECK_THROWS_MATCHES(w.add_request(2000, total(1)), ValidationError, Catch::Message("time: 2000 is outside the window [1000, 2000)"));
  CHECK_THROWS_MATCHES(w.add_request(1500, total(1), true, "bad\xff"), ValidationError, Catch::Message("error_type: is not valid UTF-8"));
  CHECK(w.requests() == 0);
  CHECK(w.latencies()[Stage::total].count() == 0);
  w.add_request(1500, total(1), true, std::string(127, 'a') + "\xc3\xa9");  // 129 bytes: cut before the e-acute
  CHECK(w.summary().errors_by_type.begin()->first == std::string(127, 'a'));
  CHECK_THROWS_MATCHES(MetricsWindow(5, 5), ConfigError, Catch::Message("end_ms: 5 is not after start_ms 5"));
  MetricsWindow other(1000, 2000, QuantileSketch::Params{0.02, 4096});
  CHECK_THROWS_AS(w.merge(other), ConfigError);
}

TEST_CASE("metrics: merging hourly windows equals one window over the day, byte for byte", "[monitor][metrics]") {
  std::mt19937_64 g(17);
  std::lognormal_distribution<double> lat(5.0, 0.7);
  std::uniform_int_distribution<TimeMs> when(0, 3 * 3600000 - 1);
  const char* types[] = {"timeout", "validation", "storage"};
  MetricsWindow whole(0, 3 * 3600000);
  std::vector<MetricsWindow> hours;
  for (int h = 0; h < 3; ++h) hours.emplace_back(h * 3600000, (h + 1) * 3600000);
  for (int i = 0; i < 20000; ++i) {
    const TimeMs t = when(g);
    StageTimings st = total(lat(g));
    if (i % 3 == 0) st.template_selection_ms = lat(g) / 10;
    if (i % 5 == 0) st.claude_response_time_ms = lat(g) * 20;
    const bool err = i % 17 == 0;
    const auto hits = static_cast<std::uint64_t>(i % 4), misses = static_cast<std::uint64_t>(i % 3);
    whole.add_request(t, st, err, types[i % 3], hits, misses);
    hours[static_cast<std::size_t>(t / 3600000)].add_request(t, st, err, types[i % 3], hits, misses);
  }
  MetricsWindow day = hours[2];
  day.merge(hours[0]);
  day.merge(hours[1]);
  CHECK(day == whole);
  CHECK(day.to_bytes() == whole.to_bytes());
  CHECK(day.summary().to_json() == whole.summary().to_json());
  INFO("blob bytes " << whole.to_bytes().size());
  CHECK(whole.to_bytes().size() < 6000);

  const MetricsWindow back = MetricsWindow::from_bytes(whole.to_bytes());
  CHECK(back == whole);
  CHECK(back.to_bytes() == whole.to_bytes());
  CHECK(back.summary().to_json() == whole.summary().to_json());
}

TEST_CASE("metrics: from_bytes rejects damaged blobs with a ValidationError", "[monitor][metrics][fuzz]") {
  const std::string good = hand_window().to_bytes();
  CHECK(MetricsWindow::from_bytes(good) == hand_window());
  CHECK_THROWS_WITH(MetricsWindow::from_bytes(good.substr(0, 10)), Catch::Contains("metrics_window: truncated"));
  CHECK_THROWS_WITH(MetricsWindow::from_bytes(good + "!"), Catch::Contains("trailing bytes"));
  CHECK_THROWS_WITH(MetricsWindow::from_bytes("\x07"), Catch::Contains("version 7 is not supported"));
  std::mt19937_64 g(99);
  std::uniform_int_distribution<int> byte(0, 255);
  std::size_t ok = 0, rejected = 0;
  for (int i = 0; i < 30000; ++i) {
    std::string b = good;
    for (int e = std::uniform_int_distribution<int>(1, 3)(g); e > 0 && !b.empty(); --e) {
      const std::size_t at = std::uniform_int_distribution<std::size_t>(0, b.size() - 1)(g);
      switch (std::uniform_int_distribution<int>(0, 2)(g)) {
        case 0: b[at] = static_cast<char>(byte(g)); break;
        case 1: b.erase(at, 1); break;
        default: b.insert(at, 1, static_cast<char>(byte(g))); break;
      }
    }
    try {
      const MetricsWindow w = MetricsWindow::from_bytes(b);
      (void)w.summary().to_json().dump();
      REQUIRE(MetricsWindow::from_bytes(w.to_bytes()) == w);
      ++ok;
    } catch (const ValidationError&) {
      ++rejected;
    }
  }
  INFO("accepted " << ok << " rejected " << rejected);
  CHECK(rejected > 20000);
}

TEST_CASE("metrics: process resources are read or NaN", "[monitor][metrics]") {
  std::vector<double> work(4'000'000, 1.0);  // 32 MB touched: the peak RSS must show it
  double acc = 0;
  for (double x : work) acc += x;
  CHECK(acc == 4e6);
  const ResourceUsage u = process_resources();
  CHECK(u.memory_peak_mb > 30);
  CHECK(u.cpu_user_seconds >= 0);
  CHECK(u.cpu_system_seconds >= 0);
  CHECK((std::isnan(u.disk_write_mb) || u.disk_write_mb >= 0));
  CHECK(u.to_json().contains("disk_write_mb"));
  ResourceUsage later = u;
  later.cpu_user_seconds += 0.5;
  CHECK(cpu_usage_percent(u, later, 1.0) == Approx(50));
  CHECK(std::isnan(cpu_usage_percent(u, later, 0)));
}
