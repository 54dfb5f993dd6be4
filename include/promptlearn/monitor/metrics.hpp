#pragma once
/// @file Performance monitoring over a time window (layer 2: header-only, no clock, no threads).
///
/// The engine feeds one `add_request` per enhancement; a `MetricsWindow` keeps, for a fixed span of time
/// (e.g. one hour), a latency sketch per pipeline stage, per-minute request counts, errors by type, failure
/// times and cache counters. Windows merge exactly (hours into a day, shard files into one) and serialise
/// to a compact blob for the metric_rollups table. `summary()` turns a window into the figures a dashboard
/// shows: P50/P90/P95/P99/max per stage, throughput, error rate, MTBF and cache hit rate.
/// The only I/O here is `process_resources()`, which reads the process's own resource counters.
///
/// Example:
///     promptlearn::monitor::MetricsWindow hour(t0, t0 + 3'600'000);
///     StageTimings t;
///     t.total_ms = 412.0;
///     hour.add_request(now, t, /*error=*/false);
///     nlohmann::json j = hour.summary().to_json();
///     std::string blob = hour.to_bytes();                  // MetricsWindow::from_bytes(blob) later
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "promptlearn/core/clock.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/monitor/sketch.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <sys/resource.h>
#endif

namespace promptlearn::monitor {

namespace detail {

/// True if s is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
inline bool valid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return false;
    if (s.size() - i <= n) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xBF)) return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace detail

/// A stage of the enhancement pipeline whose latency is tracked, plus the model's response time.
enum class Stage : std::size_t {
  total,
  template_selection,
  enhancement_generation,
  validation,
  cleanup,
  claude_response_time,
};
inline constexpr std::size_t kStageCount = 6;
/// Short names (summary JSON keys), indexed by Stage.
inline constexpr std::array<const char*, kStageCount> kStageNames = {
    "total", "template_selection", "enhancement_generation", "validation", "cleanup", "claude_response_time"};
/// The specification's wire-format field of each stage (used in error paths), indexed by Stage.
inline constexpr std::array<const char*, kStageCount> kStageFields = {
    "performance.total_processing_time_ms",        "performance.template_selection_time_ms",
    "performance.enhancement_generation_time_ms", "performance.validation_time_ms",
    "performance.cleanup_time_ms",                "outcome.claude_response_time_ms"};

/// The stage timings of one request in milliseconds; an empty optional = not measured.
struct StageTimings {
  std::optional<double> total_ms;
  std::optional<double> template_selection_ms;
  std::optional<double> enhancement_generation_ms;
  std::optional<double> validation_ms;
  std::optional<double> cleanup_ms;
  std::optional<double> claude_response_time_ms;

  const std::optional<double>& operator[](Stage s) const noexcept {
    switch (s) {
      case Stage::total: return total_ms;
      case Stage::template_selection: return template_selection_ms;
      case Stage::enhancement_generation: return enhancement_generation_ms;
      case Stage::validation: return validation_ms;
      case Stage::cleanup: return cleanup_ms;
      default: return claude_response_time_ms;
    }
  }
  /// @throws ValidationError naming the wire-format field when a timing is negative or not finite.
  void validate() const {
    for (std::size_t i = 0; i < kStageCount; ++i) {
      const auto& v = (*this)[static_cast<Stage>(i)];
      if (v && !(std::isfinite(*v) && *v >= 0))
        throw ValidationError(kStageFields[i], fmt::format("{} is not a finite number >= 0", *v));
    }
  }
};

/// One QuantileSketch of milliseconds per Stage. Thread-safety: none (plain value).
class StageLatencies {
 public:
  /// @throws ConfigError for invalid sketch parameters.
  explicit StageLatencies(QuantileSketch::Params p = {}) {
    for (auto& s : sketches_) s = QuantileSketch(p);
  }
  /// Adds the measured timings. @throws ValidationError (nothing is added) when one is invalid.
  void add(const StageTimings& t) {
    t.validate();
    for (std::size_t i = 0; i < kStageCount; ++i)
      if (const auto& v = t[static_cast<Stage>(i)]) sketches_[i].add(*v);
  }
  /// @throws ConfigError when the sketch parameters differ (nothing is merged).
  void merge(const StageLatencies& o) {
    for (std::size_t i = 0; i < kStageCount; ++i) {
      const auto& a = sketches_[i].params();
      const auto& b = o.sketches_[i].params();
      if (a.relative_accuracy != b.relative_accuracy || a.max_buckets != b.max_buckets)
        throw ConfigError(std::string("latencies.") + kStageNames[i], "sketch parameters differ, cannot merge");
    }
    for (std::size_t i = 0; i < kStageCount; ++i) sketches_[i].merge(o.sketches_[i]);
  }
  const QuantileSketch& operator[](Stage s) const noexcept { return sketches_[static_cast<std::size_t>(s)]; }
  QuantileSketch& operator[](Stage s) noexcept { return sketches_[static_cast<std::size_t>(s)]; }
  friend bool operator==(const StageLatencies& a, const StageLatencies& b) noexcept { return a.sketches_ == b.sketches_; }

 private:
  std::array<QuantileSketch, kStageCount> sketches_;
};

/// Latency figures of one stage (milliseconds; NaN when count is 0).
struct StageSummary {
  std::uint64_t count = 0;
  double p50 = detail::kNaN, p90 = detail::kNaN, p95 = detail::kNaN, p99 = detail::kNaN;
  double max = detail::kNaN, mean = detail::kNaN;
};

/// The figures of a window. NaN (null in JSON) = undefined (no requests, no cache data, ...).
struct MetricsSummary {
  TimeMs start_ms = 0, end_ms = 0;
  double length_ms = 0;  ///< the span the rates are computed over (see MetricsWindow::summary)
  std::uint64_t requests = 0, errors = 0;
  std::array<StageSummary, kStageCount> stages;
  double requests_per_second = detail::kNaN;
  double enhancements_per_minute = detail::kNaN;  ///< successful (non-error) requests per minute
  std::uint64_t peak_requests_per_minute = 0;     ///< largest count in one clock minute
  double error_rate = detail::kNaN;               ///< errors / requests
  std::map<std::string, std::uint64_t> errors_by_type;
  double mtbf_ms = detail::kNaN;              ///< length_ms / errors (NaN with no error)
  double mean_failure_gap_ms = detail::kNaN;  ///< mean gap between consecutive errors (NaN below 2 errors)
  std::uint64_t cache_hits = 0, cache_misses = 0;
  double cache_hit_rate = detail::kNaN;  ///< hits / (hits + misses)

  const StageSummary& operator[](Stage s) const noexcept { return stages[static_cast<std::size_t>(s)]; }

  /// {"window": {"start_ms", "end_ms", "length_ms"}, "requests", "errors", "latency_ms": {stage: {"count",
  /// "p50", "p90", "p95", "p99", "max", "mean"}}, "throughput": {"requests_per_second",
  /// "enhancements_per_minute", "peak_requests_per_minute"}, "reliability": {"error_rate",
  /// "errors_by_type", "mtbf_ms", "mean_failure_gap_ms"}, "cache": {"hits", "misses", "hit_rate"}}.
  nlohmann::json to_json() const {
    auto num = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
    nlohmann::json lat = nlohmann::json::object();
    for (std::size_t i = 0; i < kStageCount; ++i) {
      const StageSummary& s = stages[i];
      lat[kStageNames[i]] = {{"count", s.count}, {"p50", num(s.p50)}, {"p90", num(s.p90)}, {"p95", num(s.p95)},
                             {"p99", num(s.p99)}, {"max", num(s.max)}, {"mean", num(s.mean)}};
    }
    return {{"window", {{"start_ms", start_ms}, {"end_ms", end_ms}, {"length_ms", length_ms}}},
            {"requests", requests},
            {"errors", errors},
            {"latency_ms", std::move(lat)},
            {"throughput", {{"requests_per_second", num(requests_per_second)},
                            {"enhancements_per_minute", num(enhancements_per_minute)},
                            {"peak_requests_per_minute", peak_requests_per_minute}}},
            {"reliability", {{"error_rate", num(error_rate)}, {"errors_by_type", errors_by_type},
                             {"mtbf_ms", num(mtbf_ms)}, {"mean_failure_gap_ms", num(mean_failure_gap_ms)}}},
            {"cache", {{"hits", cache_hits}, {"misses", cache_misses}, {"hit_rate", num(cache_hit_rate)}}}};
  }
};

/// Performance aggregates of the requests in the time span [start_ms, end_ms).
/// Memory: the six sketches (a few KB), one counter per clock minute with requests, one per error type
/// (error types should be a small closed set, such as the engine's error class names).
/// Thread-safety: none (plain value); const members may be called concurrently.
class MetricsWindow {
 public:
  /// Maximum length of an error type name (longer names are cut).
  static constexpr std::size_t kMaxErrorTypeLength = 128;

  /// @throws ConfigError if end_ms <= start_ms ("end_ms") or the sketch parameters are invalid.
  MetricsWindow(TimeMs start_ms, TimeMs end_ms, QuantileSketch::Params sketch = {})
      : start_(start_ms), end_(end_ms), latencies_(sketch) {
    if (end_ms <= start_ms) throw ConfigError("end_ms", fmt::format("{} is not after start_ms {}", end_ms, start_ms));
  }

  /// Records one request at time t: the measured stage timings, whether it failed (and how: an empty
  /// error_type counts as "unknown"; error_type is ignored for successes), and cache hits and misses
  /// when known. Nothing is recorded if any argument is invalid.
  /// Error types longer than kMaxErrorTypeLength bytes are cut (at a character boundary).
  /// @throws ValidationError naming "time" (t outside the window), "error_type" (not UTF-8) or the
  /// timing's wire-format field.
  void add_request(TimeMs t, const StageTimings& timings, bool error = false, std::string_view error_type = {},
                   std::optional<std::uint64_t> cache_hits = {}, std::optional<std::uint64_t> cache_misses = {}) {
    if (t < start_ || t >= end_)
      throw ValidationError("time", fmt::format("{} is outside the window [{}, {})", t, start_, end_));
    timings.validate();
    if (error && !detail::valid_utf8(error_type)) throw ValidationError("error_type", "is not valid UTF-8");
    if (error_type.size() > kMaxErrorTypeLength) {
      std::size_t cut = kMaxErrorTypeLength;
      while (cut > 0 && (static_cast<unsigned char>(error_type[cut]) & 0xC0) == 0x80) --cut;
      error_type = error_type.substr(0, cut);
    }
    latencies_.add(timings);
    ++requests_;
    ++per_minute_[minute_of(t)];
    if (error) {
      if (errors_ == 0 || t < first_failure_) first_failure_ = t;
      if (errors_ == 0 || t > last_failure_) last_failure_ = t;
      ++errors_;
      std::string type(error_type.empty() ? std::string_view("unknown") : error_type);
      ++errors_by_type_[type];
    }
    if (cache_hits) cache_hits_ += *cache_hits;
    if (cache_misses) cache_misses_ += *cache_misses;
  }

  /// Adds every request `other` holds; the span becomes [min start, max end). The result is the window
  /// the union of the requests would have given (merge is associative and commutative).
  /// @throws ConfigError (nothing merged) when the sketch parameters differ.
  void merge(const MetricsWindow& o) {
    latencies_.merge(o.latencies_);
    start_ = std::min(start_, o.start_);
    end_ = std::max(end_, o.end_);
    if (o.errors_ > 0) {
      first_failure_ = errors_ ? std::min(first_failure_, o.first_failure_) : o.first_failure_;
      last_failure_ = errors_ ? std::max(last_failure_, o.last_failure_) : o.last_failure_;
    }
    requests_ += o.requests_;
    errors_ += o.errors_;
    cache_hits_ += o.cache_hits_;
    cache_misses_ += o.cache_misses_;
    for (const auto& [m, c] : o.per_minute_) per_minute_[m] += c;
    for (const auto& [k, c] : o.errors_by_type_) errors_by_type_[k] += c;
  }

  /// The window's figures. Rates use the window length end - start, or, for a window still being
  /// filled, `as_of - start` when as_of is given and earlier than end (at least 1 ms).
  /// MTBF is the classical "operating time / failures" = length / errors, the estimate that merges
  /// exactly; mean_failure_gap_ms, the mean time between consecutive failures, = (last - first failure) /
  /// (errors - 1), is reported beside it.
  MetricsSummary summary(std::optional<TimeMs> as_of = {}) const {
    MetricsSummary s;
    s.start_ms = start_;
    s.end_ms = end_;
    TimeMs until = end_;
    if (as_of && *as_of < end_) until = std::max(*as_of, start_ + 1);
    s.length_ms = static_cast<double>(until - start_);
    s.requests = requests_;
    s.errors = errors_;
    for (std::size_t i = 0; i < kStageCount; ++i) {
      const QuantileSketch& q = latencies_[static_cast<Stage>(i)];
      StageSummary& st = s.stages[i];
      st.count = q.count();
      if (st.count == 0) continue;
      st.p50 = q.quantile(0.5);
      st.p90 = q.quantile(0.9);
      st.p95 = q.quantile(0.95);
      st.p99 = q.quantile(0.99);
      st.max = q.max();
      st.mean = q.mean();
    }
    const auto n = static_cast<double>(requests_), e = static_cast<double>(errors_);
    s.requests_per_second = n / (s.length_ms / 1000.0);
    s.enhancements_per_minute = (n - e) / (s.length_ms / 60000.0);
    for (const auto& [m, c] : per_minute_) s.peak_requests_per_minute = std::max(s.peak_requests_per_minute, c);
    if (requests_ > 0) s.error_rate = e / n;
    s.errors_by_type = errors_by_type_;
    if (errors_ > 0) s.mtbf_ms = s.length_ms / e;
    if (errors_ > 1) s.mean_failure_gap_ms = static_cast<double>(last_failure_ - first_failure_) / (e - 1);
    s.cache_hits = cache_hits_;
    s.cache_misses = cache_misses_;
    if (cache_hits_ + cache_misses_ > 0)
      s.cache_hit_rate = static_cast<double>(cache_hits_) / static_cast<double>(cache_hits_ + cache_misses_);
    return s;
  }

  TimeMs start_ms() const noexcept { return start_; }
  TimeMs end_ms() const noexcept { return end_; }
  std::uint64_t requests() const noexcept { return requests_; }
  std::uint64_t errors() const noexcept { return errors_; }
  const StageLatencies& latencies() const noexcept { return latencies_; }
  /// Requests per clock minute (key: floor(t / 60000)).
  const std::map<std::int64_t, std::uint64_t>& requests_per_minute() const noexcept { return per_minute_; }

  /// Compact binary form (for metric_rollups blobs): version byte 1, then varints: start, end (zigzag),
  /// requests, errors, cache hits, cache misses, first and last failure (zigzag, only with errors), the
  /// per-minute counts (count, then zigzag minute gaps and counts), the error types (count, then length,
  /// bytes, count; sorted), and the six stage sketches (length-prefixed QuantileSketch::to_bytes).
  /// Equal windows give identical bytes.
  std::string to_bytes() const {
    std::string out;
    out.push_back(static_cast<char>(kFormatVersion));
    detail::put_varint(out, detail::zigzag(start_));
    detail::put_varint(out, detail::zigzag(end_));
    detail::put_varint(out, requests_);
    detail::put_varint(out, errors_);
    detail::put_varint(out, cache_hits_);
    detail::put_varint(out, cache_misses_);
    if (errors_ > 0) {
      detail::put_varint(out, detail::zigzag(first_failure_));
      detail::put_varint(out, detail::zigzag(last_failure_));
    }
    detail::put_varint(out, per_minute_.size());
    std::int64_t prev = 0;
    for (const auto& [m, c] : per_minute_) {
      detail::put_varint(out, detail::zigzag(m - prev));
      detail::put_varint(out, c);
      prev = m;
    }
    detail::put_varint(out, errors_by_type_.size());
    for (const auto& [k, c] : errors_by_type_) {
      detail::put_varint(out, k.size());
      out += k;
      detail::put_varint(out, c);
    }
    for (std::size_t i = 0; i < kStageCount; ++i) {
      const std::string b = latencies_[static_cast<Stage>(i)].to_bytes();
      detail::put_varint(out, b.size());
      out += b;
    }
    return out;
  }

  /// Rebuilds a window from `to_bytes`, checking every field and the consistency between them (minutes
  /// and failures inside the window, minute counts summing to requests, error types summing to errors,
  /// stage counts <= requests, identical sketch parameters).
  /// @throws ValidationError (path "metrics_window", or "sketch" for a bad stage sketch) naming the problem.
  static MetricsWindow from_bytes(std::string_view bytes) {
    detail::ByteReader r(bytes, "metrics_window");
    const std::uint8_t version = r.byte("version");
    if (version != kFormatVersion) r.fail(fmt::format("version {} is not supported (expected {})", version, kFormatVersion));
    const std::int64_t start = r.svarint("start_ms"), end = r.svarint("end_ms");
    if (end <= start) r.fail(fmt::format("end_ms {} is not after start_ms {}", end, start));
    const std::uint64_t requests = r.varint("requests"), errors = r.varint("errors");
    if (errors > requests) r.fail(fmt::format("errors {} exceed requests {}", errors, requests));
    const std::uint64_t hits = r.varint("cache_hits"), misses = r.varint("cache_misses");
    if (hits > std::numeric_limits<std::uint64_t>::max() - misses) r.fail("cache hits + misses overflow 2^64");
    std::int64_t first_fail = 0, last_fail = 0;
    if (errors > 0) {
      first_fail = r.svarint("first_failure_ms");
      last_fail = r.svarint("last_failure_ms");
      if (first_fail < start || last_fail >= end || first_fail > last_fail)
        r.fail(fmt::format("failure times [{}, {}] are not ordered inside the window", first_fail, last_fail));
    }
    std::map<std::int64_t, std::uint64_t> per_minute;
    const std::uint64_t nmin = r.varint("minutes");
    std::uint64_t minute_total = 0;
    const std::int64_t lo_min = minute_of(start), hi_min = minute_of(end - 1);
    std::int64_t prev = 0;
    for (std::uint64_t i = 0; i < nmin; ++i) {
      const std::int64_t gap = r.svarint("minute");
      if ((i > 0 && (gap < 1 || gap > hi_min - prev)) || (i == 0 && (gap < lo_min || gap > hi_min)))
        r.fail("minute: out of the window or not increasing");
      const std::int64_t m = i == 0 ? gap : prev + gap;
      const std::uint64_t c = r.varint("minute_count");
      if (c == 0 || c > requests - minute_total) r.fail(fmt::format("minute_count: {} is 0 or exceeds the requests left", c));
      minute_total += c;
      per_minute.emplace_hint(per_minute.end(), m, c);
      prev = m;
    }
    if (minute_total != requests) r.fail(fmt::format("minute counts sum to {}, not requests {}", minute_total, requests));
    std::map<std::string, std::uint64_t> by_type;
    const std::uint64_t ntypes = r.varint("error_types");
    std::uint64_t type_total = 0;
    for (std::uint64_t i = 0; i < ntypes; ++i) {
      const std::uint64_t len = r.varint("error_type.length");
      if (len == 0 || len > kMaxErrorTypeLength) r.fail(fmt::format("error_type.length: {} is outside [1, {}]", len, kMaxErrorTypeLength));
      std::string name(r.bytes(static_cast<std::size_t>(len), "error_type"));
      if (!detail::valid_utf8(name)) r.fail("error_type: not valid UTF-8");
      if (!by_type.empty() && !(by_type.rbegin()->first < name)) r.fail("error types are not sorted and unique");
      const std::uint64_t c = r.varint("error_type.count");
      if (c == 0 || c > errors - type_total) r.fail(fmt::format("error_type.count: {} is 0 or exceeds the errors left", c));
      type_total += c;
      by_type.emplace_hint(by_type.end(), std::move(name), c);
    }
    if (type_total != errors) r.fail(fmt::format("error type counts sum to {}, not errors {}", type_total, errors));
    std::array<QuantileSketch, kStageCount> sketches;
    for (std::size_t i = 0; i < kStageCount; ++i) {
      const std::uint64_t len = r.varint("stage.length");
      if (len > bytes.size()) r.fail("stage.length: longer than the blob");
      sketches[i] = QuantileSketch::from_bytes(r.bytes(static_cast<std::size_t>(len), "stage"));
      if (sketches[i].count() > requests) r.fail(fmt::format("{}: {} timings exceed requests {}", kStageNames[i], sketches[i].count(), requests));
      if (i > 0 && !(sketches[i].params().relative_accuracy == sketches[0].params().relative_accuracy &&
                     sketches[i].params().max_buckets == sketches[0].params().max_buckets))
        r.fail(fmt::format("{}: sketch parameters differ from the total's", kStageNames[i]));
    }
    r.expect_end();
    MetricsWindow w(start, end, sketches[0].params());
    for (std::size_t i = 0; i < kStageCount; ++i) w.latencies_[static_cast<Stage>(i)] = std::move(sketches[i]);
    w.requests_ = requests;
    w.errors_ = errors;
    w.cache_hits_ = hits;
    w.cache_misses_ = misses;
    w.first_failure_ = first_fail;
    w.last_failure_ = last_fail;
    w.per_minute_ = std::move(per_minute);
    w.errors_by_type_ = std::move(by_type);
    return w;
  }

  friend bool operator==(const MetricsWindow& a, const MetricsWindow& b) {
    return a.start_ == b.start_ && a.end_ == b.end_ && a.requests_ == b.requests_ && a.errors_ == b.errors_ &&
           a.cache_hits_ == b.cache_hits_ && a.cache_misses_ == b.cache_misses_ &&
           (a.errors_ == 0 || (a.first_failure_ == b.first_failure_ && a.last_failure_ == b.last_failure_)) &&
           a.per_minute_ == b.per_minute_ && a.errors_by_type_ == b.errors_by_type_ && a.latencies_ == b.latencies_;
  }

 private:
  static constexpr std::uint8_t kFormatVersion = 1;
  static std::int64_t minute_of(TimeMs t) noexcept { return t >= 0 ? t / 60000 : -((-t + 59999) / 60000); }

  TimeMs start_, end_;
  StageLatencies latencies_;
  std::uint64_t requests_ = 0, errors_ = 0, cache_hits_ = 0, cache_misses_ = 0;
  TimeMs first_failure_ = 0, last_failure_ = 0;
  std::map<std::int64_t, std::uint64_t> per_minute_;
  std::map<std::string, std::uint64_t> errors_by_type_;
};

/// The process's own resource counters; NaN = not available on this platform.
struct ResourceUsage {
  double memory_peak_mb = detail::kNaN;      ///< peak resident set size (getrusage ru_maxrss), MiB
  double cpu_user_seconds = detail::kNaN;    ///< user CPU time since the process started
  double cpu_system_seconds = detail::kNaN;  ///< system CPU time since the process started
  double disk_write_mb = detail::kNaN;       ///< /proc/self/io write_bytes, MiB (Linux only)

  /// User + system CPU seconds.
  double cpu_seconds() const noexcept { return cpu_user_seconds + cpu_system_seconds; }
  /// {"memory_peak_mb", "cpu_user_seconds", "cpu_system_seconds", "disk_write_mb"} (null = unavailable).
  nlohmann::json to_json() const {
    auto num = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
    return {{"memory_peak_mb", num(memory_peak_mb)}, {"cpu_user_seconds", num(cpu_user_seconds)},
            {"cpu_system_seconds", num(cpu_system_seconds)}, {"disk_write_mb", num(disk_write_mb)}};
  }
};

/// Reads the calling process's peak RSS and CPU times (getrusage) and bytes written to storage
/// (/proc/self/io write_bytes). A counter that cannot be read is NaN; this never throws.
inline ResourceUsage process_resources() noexcept {
  ResourceUsage u;
#if defined(__unix__) || defined(__APPLE__)
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
#if defined(__APPLE__)
    u.memory_peak_mb = static_cast<double>(ru.ru_maxrss) / (1024.0 * 1024.0);  // bytes on macOS
#else
    u.memory_peak_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;  // KiB on Linux
#endif
    u.cpu_user_seconds = static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) * 1e-6;
    u.cpu_system_seconds = static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) * 1e-6;
  }
#endif
  try {
    std::ifstream io("/proc/self/io");
    std::string key;
    unsigned long long value = 0;
    while (io >> key >> value) {
      if (key == "write_bytes:") {
        u.disk_write_mb = static_cast<double>(value) / (1024.0 * 1024.0);
        break;
      }
    }
  } catch (...) {  // an unreadable file leaves the field NaN
  }
  return u;
}

/// CPU use between two readings as a percentage of one core: 100 (cpu after - cpu before) / wall
/// seconds; NaN when wall_seconds <= 0 or a reading is unavailable.
inline double cpu_usage_percent(const ResourceUsage& before, const ResourceUsage& after, double wall_seconds) noexcept {
  if (!(wall_seconds > 0)) return detail::kNaN;
  return 100.0 * (after.cpu_seconds() - before.cpu_seconds()) / wall_seconds;
}

}  // namespace promptlearn::monitor
