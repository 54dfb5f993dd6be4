// promptlearn_bench monitor: the DDSketch latency sketch (issue 7) against exact percentiles.
//
//   promptlearn_bench monitor [--values 1000000] [--seed 1]
//
// Draws --values lognormal(3, 1.2) "latencies" (median 20 ms, P99 ~ 325 ms) and prints one JSON object per
// line ({"bench": "monitor", "impl": "promptlearn", "metric", "value", "unit"}; where the exact method ran
// on the same values in this process also "baseline_impl", "baseline" and "ratio" = ours / baseline):
//   inserts_per_second      QuantileSketch::add (alpha 0.01), best of 3 passes;
//   percentiles_seconds     sketching every value and reading P50/P90/P95/P99/P99.9, against copying and
//                           sorting the values (baseline "exact_sort") and against nth_element once per
//                           percentile (printed again with baseline_impl "exact_nth_element");
//   bytes                   to_bytes() size of the sketch, against 8 bytes per value kept for exact answers;
//   merge_us                merging two sketches of half the values each;
//   quantile_query_us       one quantile(0.99) call;
//   to_bytes_us, from_bytes_us  serialising and validating-deserialising the sketch;
//   max_relative_error      over the five percentiles, |sketch - exact| / exact (the guarantee: <= 0.01).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "promptlearn/monitor/sketch.hpp"
#include "bench_util.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void emit(const std::string& metric, double value, const std::string& unit, const char* baseline_impl = nullptr,
          double baseline = 0) {
  nlohmann::json j = {{"bench", "monitor"}, {"impl", "promptlearn"}, {"metric", metric}, {"value", value}, {"unit", unit}};
  if (baseline_impl) {
    j["baseline_impl"] = baseline_impl;
    j["baseline"] = baseline;
    j["ratio"] = baseline != 0 ? value / baseline : 0.0;
  }
  std::cout << j.dump() << std::endl;
}

double exact_rank(const std::vector<double>& sorted, double q) {
  return sorted[static_cast<std::size_t>(std::floor(q * static_cast<double>(sorted.size() - 1)))];
}

}  // namespace

int bench_monitor(int argc, char** argv) {
  using promptlearn::monitor::QuantileSketch;
  const auto n = static_cast<std::size_t>(promptlearn::bench::arg_int(argc, argv, "values", 1000000));
  const auto seed = static_cast<std::uint64_t>(promptlearn::bench::arg_int(argc, argv, "seed", 1));
  if (n < 2) {
    std::cerr << "usage: promptlearn_bench monitor [--values N >= 2] [--seed S]\n";
    return 2;
  }
  std::mt19937_64 g(seed);
  std::lognormal_distribution<double> logn(3.0, 1.2);
  std::vector<double> values(n);
  for (double& v : values) v = logn(g);
  const double qs[] = {0.5, 0.9, 0.95, 0.99, 0.999};

  // Sketch: inserts (best of 3) and the five percentiles.
  double insert_s = 1e300;
  QuantileSketch sketch;
  for (int pass = 0; pass < 3; ++pass) {
    QuantileSketch s;
    const auto t0 = Clock::now();
    for (double v : values) s.add(v);
    insert_s = std::min(insert_s, seconds_since(t0));
    sketch = std::move(s);
  }
  double estimates[5];
  const auto tq = Clock::now();
  for (int i = 0; i < 5; ++i) estimates[i] = sketch.quantile(qs[i]);
  const double sketch_total_s = insert_s + seconds_since(tq);

  // Baselines: exact by sorting a copy, and by nth_element per percentile.
  std::vector<double> sorted = values;
  auto t0 = Clock::now();
  std::sort(sorted.begin(), sorted.end());
  double exact[5];
  for (int i = 0; i < 5; ++i) exact[i] = exact_rank(sorted, qs[i]);
  const double sort_s = seconds_since(t0);
  std::vector<double> work = values;
  t0 = Clock::now();
  double nth_sum = 0;
  for (double q : qs) {
    const auto k = static_cast<std::ptrdiff_t>(std::floor(q * static_cast<double>(n - 1)));
    std::nth_element(work.begin(), work.begin() + k, work.end());
    nth_sum += work[static_cast<std::size_t>(k)];
  }
  const double nth_s = seconds_since(t0);
  double max_rel = 0;
  for (int i = 0; i < 5; ++i) max_rel = std::max(max_rel, std::fabs(estimates[i] - exact[i]) / exact[i]);
  if (!(nth_sum > 0)) return 1;  // keeps the nth_element work observable

  // Merge of two halves, quantile queries, serialisation.
  QuantileSketch a, b;
  for (std::size_t i = 0; i < n; ++i) (i % 2 ? a : b).add(values[i]);
  int reps = 200;
  t0 = Clock::now();
  for (int r = 0; r < reps; ++r) {
    QuantileSketch m = a;
    m.merge(b);
    if (m.count() != n) return 1;
  }
  const double merge_us = seconds_since(t0) / reps * 1e6;
  t0 = Clock::now();
  for (int r = 0; r < reps; ++r) {
    QuantileSketch m = a;
    if (m.count() == 0) return 1;
  }
  const double copy_us = seconds_since(t0) / reps * 1e6;
  reps = 20000;
  double sink = 0;
  t0 = Clock::now();
  for (int r = 0; r < reps; ++r) sink += sketch.quantile(0.99);
  const double query_us = seconds_since(t0) / reps * 1e6;
  std::string bytes;
  reps = 2000;
  t0 = Clock::now();
  for (int r = 0; r < reps; ++r) bytes = sketch.to_bytes();
  const double to_bytes_us = seconds_since(t0) / reps * 1e6;
  t0 = Clock::now();
  for (int r = 0; r < reps; ++r) sink += static_cast<double>(QuantileSketch::from_bytes(bytes).count());
  const double from_bytes_us = seconds_since(t0) / reps * 1e6;
  if (!(sink > 0)) return 1;

  emit("inserts_per_second", static_cast<double>(n) / insert_s, "1/s");
  emit("percentiles_seconds", sketch_total_s, "s", "exact_sort", sort_s);
  emit("percentiles_seconds", sketch_total_s, "s", "exact_nth_element", nth_s);
  emit("bytes", static_cast<double>(bytes.size()), "bytes", "exact_values", 8.0 * static_cast<double>(n));
  emit("merge_us", std::max(0.0, merge_us - copy_us), "us");
  emit("quantile_query_us", query_us, "us");
  emit("to_bytes_us", to_bytes_us, "us");
  emit("from_bytes_us", from_bytes_us, "us");
  emit("max_relative_error", max_rel, "ratio");
  return 0;
}
