#pragma once
/// @file Streaming anomaly and drift detection (layer 2: header-only, no I/O, no clock, no threads).
///
/// Point detectors (`update(x) -> Verdict {score, anomaly}`; score NaN = no opinion yet):
/// - RollingZScore       the specification's windowed z-score (window 100, threshold 2).
/// - RollingMedianMad    robust twin: |x - median| / (1.4826 MAD) over a window.
/// - EwmaChart           EWMA control chart (Roberts 1959) with exact time-varying limits.
/// - Cusum               two-sided tabular CUSUM (Page 1954) in units of the warm-up sigma.
/// - ContextualBaselines one detector per context key ("template|domain|hour"), LRU-capped.
/// - FusedAnomalyDetector the engine's default (alias DefaultAnomalyDetector): multi-component, calibrated.
/// Drift detectors (`update(x) -> DriftVerdict {drift, change_point, statistic}`):
/// - PageHinkley         Page-Hinkley test (Page 1954; as in Gama et al. 2014), both directions.
/// - Adwin               ADWIN2 with exponential-histogram buckets (Bifet & Gavalda 2007).
///
/// Every score for a value depends only on that value and the ones before it. Every class is a plain
/// value (copyable); Thread-safety: none, give each thread its own detector.
///
/// Example:
///     promptlearn::patterns::DefaultAnomalyDetector d;
///     for (double x : latencies) { double s = d.update(x).score; if (s > 4) alert(); }
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/stats.hpp"

namespace promptlearn::patterns {

/// The result of scoring one value. `score` is larger for more anomalous values and NaN while the
/// detector has no opinion yet (warm-up); `anomaly` is `score > threshold` (false while NaN).
struct Verdict {
  double score = std::numeric_limits<double>::quiet_NaN();
  bool anomaly = false;
};

/// The result of one drift-detector update. `change_point` is the estimated index (0-based, counted
/// over every value ever given to the detector) of the first value after the change; valid when `drift`.
struct DriftVerdict {
  bool drift = false;
  std::uint64_t change_point = 0;
  double statistic = 0;
};

namespace detail {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr double kMadToSigma = 1.4826;  // 1 / Phi^{-1}(3/4): MAD -> sigma for normal data

/// A sliding window that keeps its values both in arrival order (a ring) and sorted, for windowed order
/// statistics: push is O(log w) comparisons plus a memmove of at most w doubles; median and quantiles
/// O(1); the median absolute deviation O(log w) (k-th smallest of two sorted sequences).
class SortedWindow {
 public:
  explicit SortedWindow(std::size_t capacity = 1) : capacity_(std::max<std::size_t>(capacity, 1)) {
    ring_.reserve(capacity_);
    sorted_.reserve(capacity_);
  }

  /// Adds x, evicting the oldest value when the window is full.
  void push(double x) {
    if (ring_.size() < capacity_) {
      ring_.push_back(x);
    } else {
      const double old = ring_[head_];
      sorted_.erase(std::lower_bound(sorted_.begin(), sorted_.end(), old));
      ring_[head_] = x;
      head_ = (head_ + 1) % capacity_;
    }
    sorted_.insert(std::upper_bound(sorted_.begin(), sorted_.end(), x), x);
  }

  std::size_t size() const noexcept { return sorted_.size(); }
  std::size_t capacity() const noexcept { return capacity_; }
  bool full() const noexcept { return sorted_.size() == capacity_; }
  bool empty() const noexcept { return sorted_.empty(); }
  /// The i-th value in arrival order (0 = oldest).
  double at(std::size_t i) const { return ring_[(head_ + i) % ring_.size()]; }
  /// The i-th newest value (0 = the newest).
  double back(std::size_t i = 0) const { return at(ring_.size() - 1 - i); }
  const std::vector<double>& sorted() const noexcept { return sorted_; }

  /// Median (mean of the two middle values for an even count); NaN when empty.
  double median() const {
    const std::size_t n = sorted_.size();
    if (n == 0) return kNaN;
    return n % 2 ? sorted_[n / 2] : 0.5 * (sorted_[n / 2 - 1] + sorted_[n / 2]);
  }

  /// Quantile by linear interpolation between order statistics (type 7); NaN when empty.
  double quantile(double q) const {
    const std::size_t n = sorted_.size();
    if (n == 0) return kNaN;
    const double h = q * static_cast<double>(n - 1);
    const std::size_t lo = static_cast<std::size_t>(std::floor(h));
    const std::size_t hi = std::min(lo + 1, n - 1);
    return sorted_[lo] + (h - static_cast<double>(lo)) * (sorted_[hi] - sorted_[lo]);
  }

  /// Number of values >= x.
  std::size_t count_at_least(double x) const {
    return static_cast<std::size_t>(sorted_.end() - std::lower_bound(sorted_.begin(), sorted_.end(), x));
  }

  /// Median of |v - center| over the window (unscaled MAD when center is the median); NaN when empty.
  double median_abs_deviation(double center) const {
    const std::size_t n = sorted_.size();
    if (n == 0) return kNaN;
    if (n % 2) return kth_abs_deviation(center, n / 2);
    return 0.5 * (kth_abs_deviation(center, n / 2 - 1) + kth_abs_deviation(center, n / 2));
  }

  /// The k-th smallest (0-based) of |v - c|: the deviations below c, read downwards, and those at or above
  /// c, read upwards, are two sorted sequences; the k-th of their union is found by bisection on how many
  /// come from the first.
  double kth_abs_deviation(double c, std::size_t k) const {
    const std::size_t split = static_cast<std::size_t>(std::lower_bound(sorted_.begin(), sorted_.end(), c) - sorted_.begin());
    const std::size_t na = split, nb = sorted_.size() - split;
    auto a = [&](std::size_t i) { return c - sorted_[split - 1 - i]; };
    auto b = [&](std::size_t i) { return sorted_[split + i] - c; };
    // Take i from A and k + 1 - i from B; the smallest i with B(k - i) <= A(i) is the partition.
    std::size_t lo = k + 1 > nb ? k + 1 - nb : 0, hi = std::min(k + 1, na);
    while (lo < hi) {
      const std::size_t i = lo + (hi - lo) / 2;
      if (b(k - i) <= a(i)) hi = i; else lo = i + 1;
    }
    const std::size_t i = lo, j = k + 1 - i;
    double v = -std::numeric_limits<double>::infinity();
    if (i > 0) v = std::max(v, a(i - 1));
    if (j > 0) v = std::max(v, b(j - 1));
    return v;
  }

 private:
  std::size_t capacity_;
  std::size_t head_ = 0;  // index of the oldest value once the ring is full
  std::vector<double> ring_;
  std::vector<double> sorted_;
};

/// Fixed-capacity ring of doubles with O(1) running sum and sum of squares (recomputed exactly from the
/// ring every `capacity` pushes so rounding cannot accumulate).
class MomentWindow {
 public:
  explicit MomentWindow(std::size_t capacity = 1) : capacity_(std::max<std::size_t>(capacity, 1)) {
    ring_.reserve(capacity_);
  }
  void push(double x) {
    if (ring_.size() < capacity_) {
      ring_.push_back(x);
    } else {
      const double old = ring_[head_];
      ring_[head_] = x;
      head_ = (head_ + 1) % capacity_;
      sum_ -= old;
      sq_ -= (old - shift_) * (old - shift_);
    }
    if (ring_.size() == 1) shift_ = x;  // shifted sums limit cancellation for data far from 0
    sum_ += x;
    sq_ += (x - shift_) * (x - shift_);
    if (++since_refresh_ >= capacity_) refresh();
  }
  std::size_t size() const noexcept { return ring_.size(); }
  bool full() const noexcept { return ring_.size() == capacity_; }
  /// The i-th value in arrival order (0 = oldest).
  double at(std::size_t i) const { return ring_[(head_ + i) % ring_.size()]; }
  /// The i-th newest value (0 = the newest).
  double back(std::size_t i = 0) const { return at(ring_.size() - 1 - i); }
  /// The oldest value (the one the next push evicts when full).
  double oldest() const { return ring_.size() < capacity_ ? ring_.front() : ring_[head_]; }
  double mean() const noexcept { return ring_.empty() ? kNaN : sum_ / static_cast<double>(ring_.size()); }
  /// Unbiased sample variance (0 for fewer than 2 values).
  double variance() const noexcept {
    const double n = static_cast<double>(ring_.size());
    if (ring_.size() < 2) return 0;
    const double d = sum_ / n - shift_;
    return std::max(0.0, (sq_ - n * d * d) / (n - 1));
  }

 private:
  void refresh() {
    since_refresh_ = 0;
    shift_ = ring_[head_];
    sum_ = 0;
    sq_ = 0;
    for (double v : ring_) {
      sum_ += v;
      sq_ += (v - shift_) * (v - shift_);
    }
  }
  std::size_t capacity_;
  std::size_t head_ = 0;
  std::size_t since_refresh_ = 0;
  double shift_ = 0, sum_ = 0, sq_ = 0;
  std::vector<double> ring_;
};

inline void require(bool ok, const char* key, const std::string& message) {
  if (!ok) throw ConfigError(key, message);
}

inline void require_finite(double x, const char* what) {
  if (!std::isfinite(x)) throw ValidationError(what, "value must be finite");
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------------------
// 1. Rolling z-score

/// The specification's detector: z = (x - mean) / sd over the previous `window` values (x itself excluded),
/// score |z|, anomaly when |z| > threshold.
/// Thread-safety: none (plain value).
class RollingZScore {
 public:
  struct Params {
    std::size_t window = 100;      ///< values in the baseline
    double threshold = 2.0;        ///< |z| above this is an anomaly
    std::size_t min_samples = 10;  ///< no opinion (NaN) before this many values
    /// @throws ConfigError naming the key.
    void validate() const {
      detail::require(window >= 2, "window", "must be >= 2, got " + std::to_string(window));
      detail::require(threshold > 0 && std::isfinite(threshold), "threshold", "must be finite and > 0");
      detail::require(min_samples >= 2 && min_samples <= window, "min_samples",
                      "must be in [2, window], got " + std::to_string(min_samples));
    }
  };

  /// Default parameters.
  RollingZScore() : RollingZScore(Params{}) {}
  /// @throws ConfigError for invalid parameters.
  explicit RollingZScore(Params p) : params_((p.validate(), p)), window_(p.window) {}

  /// Scores x against the previous window, then adds it. A zero standard deviation gives score 0 for a
  /// value equal to the mean and +infinity otherwise.
  /// @throws ValidationError if x is not finite.
  Verdict update(double x) {
    detail::require_finite(x, "x");
    Verdict v;
    if (window_.size() >= params_.min_samples) {
      const double sd = std::sqrt(window_.variance());
      const double d = std::fabs(x - window_.mean());
      v.score = sd > 0 ? d / sd : (d == 0 ? 0.0 : std::numeric_limits<double>::infinity());
      v.anomaly = v.score > params_.threshold;
    }
    window_.push(x);
    return v;
  }
  /// Mean of the current window.
  double mean() const noexcept { return window_.mean(); }
  /// Sample standard deviation of the current window.
  double stddev() const noexcept { return std::sqrt(window_.variance()); }
  const Params& params() const noexcept { return params_; }

 private:
  Params params_;
  detail::MomentWindow window_;
};

// ---------------------------------------------------------------------------------------------------------
// 2. Rolling median / MAD

/// Robust z-score (Iglewicz & Hoaglin 1993, "modified z-score"): |x - median| / (1.4826 MAD) over the
/// previous `window` values; a single outlier cannot inflate the baseline as it inflates a standard
/// deviation. Update O(log w) (see detail::SortedWindow).
/// Thread-safety: none (plain value).
class RollingMedianMad {
 public:
  struct Params {
    std::size_t window = 100;      ///< values in the baseline
    double threshold = 3.5;        ///< Iglewicz & Hoaglin's cut-off for the modified z-score
    std::size_t min_samples = 10;  ///< no opinion (NaN) before this many values
    /// @throws ConfigError naming the key.
    void validate() const {
      detail::require(window >= 3, "window", "must be >= 3, got " + std::to_string(window));
      detail::require(threshold > 0 && std::isfinite(threshold), "threshold", "must be finite and > 0");
      detail::require(min_samples >= 3 && min_samples <= window, "min_samples",
                      "must be in [3, window], got " + std::to_string(min_samples));
    }
  };

  /// Default parameters.
  RollingMedianMad() : RollingMedianMad(Params{}) {}
  /// @throws ConfigError for invalid parameters.
  explicit RollingMedianMad(Params p) : params_((p.validate(), p)), window_(p.window) {}

  /// Scores x against the previous window, then adds it. MAD = 0 (over half the window equal) gives
  /// score 0 for x equal to the median and +infinity otherwise.
  /// @throws ValidationError if x is not finite.
  Verdict update(double x) {
    detail::require_finite(x, "x");
    Verdict v;
    if (window_.size() >= params_.min_samples) {
      const double med = window_.median();
      const double scale = detail::kMadToSigma * window_.median_abs_deviation(med);
      const double d = std::fabs(x - med);
      v.score = scale > 0 ? d / scale : (d == 0 ? 0.0 : std::numeric_limits<double>::infinity());
      v.anomaly = v.score > params_.threshold;
    }
    window_.push(x);
    return v;
  }
  /// Median of the current window (NaN when empty).
  double median() const { return window_.median(); }
  /// Unscaled median absolute deviation of the current window.
  double mad() const { return window_.median_abs_deviation(window_.median()); }
  const Params& params() const noexcept { return params_; }

 private:
  Params params_;
  detail::SortedWindow window_;
};

// ---------------------------------------------------------------------------------------------------------
// 3. Collective: EWMA chart and CUSUM

/// EWMA control chart (Roberts 1959; Montgomery, Introduction to Statistical Quality Control, 9.2):
/// z_t = lambda x_t + (1 - lambda) z_{t-1}, z_0 = mu0, with limits mu0 +- L sigma_z(t),
/// sigma_z(t) = sigma sqrt(lambda / (2 - lambda) (1 - (1 - lambda)^{2t})). mu0 and sigma are estimated
/// from the first `warmup` values (phase I) and then held fixed. score = |z_t - mu0| / sigma_z(t), so the
/// chart signals a run of individually mild deviations that a point detector misses.
/// Thread-safety: none (plain value).
class EwmaChart {
 public:
  struct Params {
    double lambda = 0.2;       ///< smoothing weight of the newest value, in (0, 1]
    double limit = 3.0;        ///< L: control-limit width in units of sigma_z
    std::size_t warmup = 30;   ///< phase-I values used to estimate mu0 and sigma (no opinion meanwhile)
    /// @throws ConfigError naming the key.
    void validate() const {
      detail::require(lambda > 0 && lambda <= 1, "lambda", "must be in (0, 1], got " + std::to_string(lambda));
      detail::require(limit > 0 && std::isfinite(limit), "limit", "must be finite and > 0");
      detail::require(warmup >= 2, "warmup", "must be >= 2, got " + std::to_string(warmup));
    }
  };

  /// Default parameters.
  EwmaChart() : EwmaChart(Params{}) {}
  /// @throws ConfigError for invalid parameters.
  explicit EwmaChart(Params p) : params_((p.validate(), p)) {}

  /// @throws ValidationError if x is not finite.
  Verdict update(double x) {
    detail::require_finite(x, "x");
    if (phase1_.count() < params_.warmup) {
      phase1_.add(x);
      if (phase1_.count() == params_.warmup) z_ = phase1_.mean();
      return {};
    }
    const double lambda = params_.lambda;
    ++t_;
    z_ = lambda * x + (1 - lambda) * z_;
    const double sd_z = sigma() * std::sqrt(lambda / (2 - lambda) * (1 - std::pow(1 - lambda, 2.0 * static_cast<double>(t_))));
    const double d = std::fabs(z_ - mu0());
    Verdict v;
    v.score = sd_z > 0 ? d / sd_z : (d == 0 ? 0.0 : std::numeric_limits<double>::infinity());
    v.anomaly = v.score > params_.limit;
    return v;
  }
  /// The EWMA statistic z_t.
  double statistic() const noexcept { return z_; }
  /// Phase-I mean and standard deviation.
  double mu0() const noexcept { return phase1_.mean(); }
  double sigma() const noexcept { return phase1_.stddev(); }
  const Params& params() const noexcept { return params_; }

 private:
  Params params_;
  RunningMoments phase1_;
  std::uint64_t t_ = 0;
  double z_ = 0;
};

/// Two-sided tabular CUSUM (Page 1954; Montgomery 9.1) on standardised values u = (x - mu0) / sigma:
/// S+_t = max(0, S+_{t-1} + u - k), S-_t = max(0, S-_{t-1} - u - k); an alarm when max(S+, S-) > h,
/// after which both sums restart at 0 (if reset_on_alarm). mu0, sigma come from the first `warmup`
/// values. score = max(S+, S-) / h (alarm when > 1). k = 0.5, h = 5 detect a 1-sigma shift in ~10 values
/// with an in-control average run length of ~465 per side.
/// Thread-safety: none (plain value).
class Cusum {
 public:
  struct Params {
    double k = 0.5;              ///< allowance (reference value) in sigmas: half the shift to detect
    double h = 5.0;              ///< decision interval in sigmas
    std::size_t warmup = 30;     ///< phase-I values for mu0 and sigma (no opinion meanwhile)
    bool reset_on_alarm = true;  ///< restart both sums after an alarm
    /// @throws ConfigError naming the key.
    void validate() const {
      detail::require(k >= 0 && std::isfinite(k), "k", "must be finite and >= 0");
      detail::require(h > 0 && std::isfinite(h), "h", "must be finite and > 0");
      detail::require(warmup >= 2, "warmup", "must be >= 2, got " + std::to_string(warmup));
    }
  };

  /// Default parameters.
  Cusum() : Cusum(Params{}) {}
  /// @throws ConfigError for invalid parameters.
  explicit Cusum(Params p) : params_((p.validate(), p)) {}

  /// @throws ValidationError if x is not finite.
  Verdict update(double x) {
    detail::require_finite(x, "x");
    if (phase1_.count() < params_.warmup) {
      phase1_.add(x);
      return {};
    }
    const double sd = phase1_.stddev();
    const double u = sd > 0 ? (x - phase1_.mean()) / sd : (x == phase1_.mean() ? 0.0 : std::copysign(1e6, x - phase1_.mean()));
    upper_ = std::max(0.0, upper_ + u - params_.k);
    lower_ = std::max(0.0, lower_ - u - params_.k);
    Verdict v;
    v.score = std::max(upper_, lower_) / params_.h;
    v.anomaly = v.score > 1;
    if (v.anomaly && params_.reset_on_alarm) upper_ = lower_ = 0;
    return v;
  }
  /// Current upper and lower sums S+ and S- (after any reset).
  double upper() const noexcept { return upper_; }
  double lower() const noexcept { return lower_; }
  double mu0() const noexcept { return phase1_.mean(); }
  double sigma() const noexcept { return phase1_.stddev(); }
  const Params& params() const noexcept { return params_; }

 private:
  Params params_;
  RunningMoments phase1_;
  double upper_ = 0, lower_ = 0;
};

// ---------------------------------------------------------------------------------------------------------
// 4. Contextual baselines

/// One baseline per context key (e.g. "template|domain|hour"): a value is scored only against the history
/// of its own context, so 900 ms is normal for a long-form template at 14:00 and anomalous for a short one.
/// At most `max_keys` baselines are kept; adding a new key beyond that evicts the least recently updated
/// one (its history is lost; it restarts in warm-up if it returns). Update O(1) for the key bookkeeping
/// plus the baseline's update.
/// Thread-safety: none (plain value).
template <class Detector = RollingMedianMad>
class ContextualBaselines {
 public:
  struct Params {
    std::size_t max_keys = 1024;             ///< cap on stored baselines (LRU eviction beyond it)
    typename Detector::Params detector = {};  ///< parameters of each per-key baseline
    /// @throws ConfigError naming the key (nested keys as "detector.<key>").
    void validate() const {
      detail::require(max_keys >= 1, "max_keys", "must be >= 1");
      try {
        detector.validate();
      } catch (const ConfigError& e) {
        throw ConfigError("detector." + e.key(), std::string(e.what()).substr(e.key().size() + 2));
      }
    }
  };

  /// Default parameters.
  ContextualBaselines() : ContextualBaselines(Params{}) {}
  /// @throws ConfigError for invalid parameters.
  explicit ContextualBaselines(Params p) : params_((p.validate(), p)) {}

  /// Scores x against the baseline of `key` (NaN while that baseline warms up), then adds it.
  /// @throws ValidationError if x is not finite.
  Verdict update(const std::string& key, double x) {
    detail::require_finite(x, "x");
    auto it = index_.find(key);
    if (it == index_.end()) {
      if (index_.size() >= params_.max_keys) {
        index_.erase(lru_.back().first);
        lru_.pop_back();
        ++evictions_;
      }
      lru_.emplace_front(key, Detector(params_.detector));
      it = index_.emplace(key, lru_.begin()).first;
    } else if (it->second != lru_.begin()) {
      lru_.splice(lru_.begin(), lru_, it->second);
    }
    return it->second->second.update(x);
  }
  /// Number of baselines held.
  std::size_t size() const noexcept { return index_.size(); }
  /// Baselines evicted so far.
  std::uint64_t evictions() const noexcept { return evictions_; }
  /// True if a baseline for key is held.
  bool contains(const std::string& key) const { return index_.count(key) > 0; }
  const Params& params() const noexcept { return params_; }

 private:
  using Entry = std::pair<std::string, Detector>;
  Params params_;
  std::list<Entry> lru_;  // most recently updated first
  std::unordered_map<std::string, typename std::list<Entry>::iterator> index_;
  std::uint64_t evictions_ = 0;

 public:
  ContextualBaselines(const ContextualBaselines& o) : params_(o.params_), lru_(o.lru_), evictions_(o.evictions_) {
    for (auto it = lru_.begin(); it != lru_.end(); ++it) index_.emplace(it->first, it);
  }
  ContextualBaselines& operator=(ContextualBaselines o) {
    std::swap(params_, o.params_);
    lru_.swap(o.lru_);
    index_.swap(o.index_);
    std::swap(evictions_, o.evictions_);
    return *this;
  }
  ContextualBaselines(ContextualBaselines&&) noexcept = default;
};

/// The usual contextual detector: robust median/MAD baselines per key.
using ContextualAnomalyDetector = ContextualBaselines<RollingMedianMad>;

/// Builds the usual context key "template|domain|hour".
inline std::string context_key(const std::string& template_id, const std::string& domain, int hour) {
  return template_id + "|" + domain + "|" + std::to_string(hour);
}

// ---------------------------------------------------------------------------------------------------------
// 5. Drift: Page-Hinkley and ADWIN

/// Page-Hinkley test (Page 1954; the streaming form of Gama, Zliobaite, Bifet et al. 2014, "A survey on
/// concept drift adaptation"), two-sided. With xbar_t the running mean since the last reset,
/// m_t = sum_{i<=t} (x_i - xbar_i - delta), M_t = min_{i<=t} m_i; an increase is signalled when
/// m_t - M_t > lambda (and symmetrically a decrease with the signs flipped). Deviation from the classic:
/// delta and lambda are in units of the standard deviation of the first `min_samples` values after each
/// reset, so one default serves rewards in [0, 1] and latencies in milliseconds. The change point reported
/// is the value just after the arg-min of m (where the cumulative deviation started to grow). After a
/// drift the test restarts from the next value.
/// Thread-safety: none (plain value).
class PageHinkley {
 public:
  struct Params {
    double delta = 0.25;           ///< tolerated drift of the mean, in sigmas
    double lambda = 25.0;          ///< detection threshold, in sigmas
    std::size_t min_samples = 30;  ///< values to estimate sigma before testing
    /// @throws ConfigError naming the key.
    void validate() const {
      detail::require(delta >= 0 && std::isfinite(delta), "delta", "must be finite and >= 0");
      detail::require(lambda > 0 && std::isfinite(lambda), "lambda", "must be finite and > 0");
      detail::require(min_samples >= 2, "min_samples", "must be >= 2, got " + std::to_string(min_samples));
    }
  };

  /// Default parameters.
  PageHinkley() : PageHinkley(Params{}) {}
  /// @throws ConfigError for invalid parameters.
  explicit PageHinkley(Params p) : params_((p.validate(), p)) {}

  /// @throws ValidationError if x is not finite.
  DriftVerdict update(double x) {
    detail::require_finite(x, "x");
    const std::uint64_t index = seen_++;
    moments_.add(x);
    if (moments_.count() <= params_.min_samples) {
      if (moments_.count() == params_.min_samples) sigma_ = moments_.stddev();
      if (moments_.count() < params_.min_samples) return {};
    }
    const double s = sigma_ > 0 ? sigma_ : 1e-12 * (1 + std::fabs(moments_.mean()));
    const double dev = (x - moments_.mean()) / s;
    up_ += dev - params_.delta;
    down_ += -dev - params_.delta;
    if (up_ < up_min_) up_min_ = up_, up_arg_ = index + 1;
    if (down_ < down_min_) down_min_ = down_, down_arg_ = index + 1;
    DriftVerdict v;
    const double su = up_ - up_min_, sd = down_ - down_min_;
    v.statistic = std::max(su, sd);
    if (v.statistic > params_.lambda) {
      v.drift = true;
      v.change_point = su >= sd ? up_arg_ : down_arg_;
      if (v.change_point > index) v.change_point = index;
      reset(index + 1);
    }
    return v;
  }
  /// Values seen so far.
  std::uint64_t count() const noexcept { return seen_; }
  const Params& params() const noexcept { return params_; }

 private:
  void reset(std::uint64_t next) {
    moments_ = RunningMoments{};
    sigma_ = 0;
    up_ = down_ = up_min_ = down_min_ = 0;
    up_arg_ = down_arg_ = next;
  }
  Params params_;
  RunningMoments moments_;
  std::uint64_t seen_ = 0;
  double sigma_ = 0;
  double up_ = 0, down_ = 0, up_min_ = 0, down_min_ = 0;
  std::uint64_t up_arg_ = 0, down_arg_ = 0;
};

/// ADWIN2 (Bifet & Gavalda 2007, "Learning from time-changing data with adaptive windowing", SDM):
/// keeps a window W of recent values compressed into an exponential histogram (at most `max_buckets`
/// buckets of each size 2^i, each holding count, mean and variance), and drops the oldest buckets while
/// some split W = W0 . W1 at a bucket boundary has |mean0 - mean1| > eps_cut, with
///   m = 1/n0 + 1/n1, d = ln(2 ln(n) / delta),
///   eps_cut = sqrt(2 m var_W d) + (2/3) m d R      (the paper's variance-based bound, as in MOA/river),
/// where R is `value_range` (the paper assumes values in [0, 1]; give the spread of your stream).
/// Memory and update time O(max_buckets log(n)); the cut is checked every `clock` values.
/// The change point reported is the start of W1 for the split with the largest |mean0 - mean1| / eps_cut
/// at the first cut (a bucket boundary, so within one bucket of the true change).
/// Thread-safety: none (plain value).
class Adwin {
 public:
  struct Params {
    double delta = 0.002;            ///< confidence: probability of a false cut per check
    std::size_t max_buckets = 5;     ///< M: buckets of each size kept before merging
    std::size_t clock = 32;          ///< check for a cut every this many values
    std::size_t min_window = 10;     ///< do not check before W holds this many values
    std::size_t min_side = 5;        ///< each side of a split holds at least this many values
    double value_range = 1.0;        ///< R in the bound (1 for rewards in [0, 1])
    /// @throws ConfigError naming the key.
    void validate() const {
      detail::require(delta > 0 && delta < 1, "delta", "must be in (0, 1), got " + std::to_string(delta));
      detail::require(max_buckets >= 2, "max_buckets", "must be >= 2, got " + std::to_string(max_buckets));
      detail::require(clock >= 1, "clock", "must be >= 1");
      detail::require(min_window >= 2, "min_window", "must be >= 2");
      detail::require(min_side >= 1, "min_side", "must be >= 1");
      detail::require(value_range > 0 && std::isfinite(value_range), "value_range", "must be finite and > 0");
    }
  };

  /// Default parameters.
  Adwin() : Adwin(Params{}) {}
  /// @throws ConfigError for invalid parameters.
  explicit Adwin(Params p) : params_((p.validate(), p)) {}

  /// @throws ValidationError if x is not finite.
  DriftVerdict update(double x) {
    detail::require_finite(x, "x");
    const std::uint64_t index = seen_++;
    insert(x);
    DriftVerdict v;
    if (++tick_ % params_.clock != 0 || width_ < params_.min_window) return v;
    while (width_ > params_.min_window) {
      double gap = 0, newer = 0;
      if (!find_cut(gap, newer)) break;
      if (!v.drift) v.change_point = index + 1 - static_cast<std::uint64_t>(newer);
      v.drift = true;
      v.statistic = std::max(v.statistic, gap);
      drop_oldest();
    }
    return v;
  }
  /// Values in the current window.
  std::uint64_t width() const noexcept { return width_; }
  /// Mean of the current window (NaN when empty).
  double mean() const noexcept { return width_ ? total_ / static_cast<double>(width_) : detail::kNaN; }
  /// Population variance of the current window.
  double variance() const noexcept { return width_ ? variance_ / static_cast<double>(width_) : 0.0; }
  /// Number of buckets (for the memory bound).
  std::size_t buckets() const noexcept {
    std::size_t n = 0;
    for (const auto& row : rows_) n += row.size();
    return n;
  }
  const Params& params() const noexcept { return params_; }

 private:
  struct Bucket {
    double n = 0, mean = 0, m2 = 0;  // count, mean, sum of squared deviations
  };
  static Bucket combine(const Bucket& a, const Bucket& b) {
    Bucket c;
    c.n = a.n + b.n;
    const double d = b.mean - a.mean;
    c.mean = a.mean + d * b.n / c.n;
    c.m2 = a.m2 + b.m2 + d * d * a.n * b.n / c.n;
    return c;
  }
  void add_to_totals(const Bucket& b, double sign) {
    // Window totals kept as (count, sum, M2) by the parallel formula (adding or removing a bucket).
    const double n_old = static_cast<double>(width_);
    if (sign > 0) {
      const double n = n_old + b.n;
      const double mean_old = n_old > 0 ? total_ / n_old : 0;
      const double d = b.mean - mean_old;
      variance_ += b.m2 + (n_old > 0 ? d * d * n_old * b.n / n : 0);
      total_ += b.n * b.mean;
      width_ += static_cast<std::uint64_t>(b.n);
    } else {
      const double n = n_old - b.n;
      total_ -= b.n * b.mean;
      width_ -= static_cast<std::uint64_t>(b.n);
      if (n <= 0) {
        total_ = variance_ = 0;
        return;
      }
      const double mean_rest = total_ / n;
      const double d = b.mean - mean_rest;
      variance_ = std::max(0.0, variance_ - b.m2 - d * d * n * b.n / n_old);
    }
  }
  void insert(double x) {
    Bucket b{1, x, 0};
    add_to_totals(b, +1);
    if (rows_.empty()) rows_.emplace_back();
    rows_[0].push_back(b);  // newest at the back of each row
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      if (rows_[i].size() <= params_.max_buckets) break;
      Bucket merged = combine(rows_[i][0], rows_[i][1]);
      rows_[i].pop_front();
      rows_[i].pop_front();
      if (i + 1 == rows_.size()) rows_.emplace_back();
      rows_[i + 1].push_back(merged);
    }
  }
  void drop_oldest() {
    for (std::size_t i = rows_.size(); i-- > 0;) {
      if (rows_[i].empty()) continue;
      add_to_totals(rows_[i].front(), -1);
      rows_[i].pop_front();
      while (!rows_.empty() && rows_.back().empty()) rows_.pop_back();
      return;
    }
  }
  /// Walks the bucket boundaries from the oldest; true if some split exceeds eps_cut. Reports the split
  /// with the largest |mean0 - mean1| / eps_cut: its gap and the size of its newer part W1.
  bool find_cut(double& gap, double& newer) const {
    const double n = static_cast<double>(width_);
    const double var = variance_ / n;
    const double d = std::log(2 * std::log(n) / params_.delta);
    double n0 = 0, sum0 = 0, best = 1;
    bool cut = false;
    for (std::size_t i = rows_.size(); i-- > 0;) {
      for (const Bucket& b : rows_[i]) {  // oldest row is the largest size; within a row oldest first
        n0 += b.n;
        sum0 += b.n * b.mean;
        const double n1 = n - n0;
        if (n1 < static_cast<double>(params_.min_side)) return cut;
        if (n0 < static_cast<double>(params_.min_side)) continue;
        const double mean0 = sum0 / n0, mean1 = (total_ - sum0) / n1;
        const double m = 1 / n0 + 1 / n1;
        const double eps = std::sqrt(2 * m * var * d) + 2.0 / 3.0 * m * d * params_.value_range;
        if (std::fabs(mean0 - mean1) > best * eps) {
          best = std::fabs(mean0 - mean1) / eps;
          gap = std::fabs(mean0 - mean1);
          newer = n1;
          cut = true;
        }
      }
    }
    return cut;
  }

  Params params_;
  std::vector<std::deque<Bucket>> rows_;  // rows_[i]: buckets of 2^i values, oldest first
  std::uint64_t seen_ = 0, tick_ = 0, width_ = 0;
  double total_ = 0, variance_ = 0;  // sum and M2 of the window
};

// ---------------------------------------------------------------------------------------------------------
// 6. The default: fused, calibrated streaming scorer

namespace detail {

/// A sliding window of the last `capacity` values for order statistics over large windows (the tail
/// calibrators hold 4096): the sorted values are kept in blocks of at most 128, so a push moves at most
/// ~1 KB instead of up to w doubles (SortedWindow's memmove of 16 KB at w = 4096 was most of the fused
/// detector's time). Rank queries walk the block sizes, O(w / 64). Same answers as SortedWindow.
class BlockedSortedWindow {
 public:
  explicit BlockedSortedWindow(std::size_t capacity = 1) : capacity_(std::max<std::size_t>(capacity, 1)) {
    ring_.reserve(capacity_);
  }

  void push(double x) {
    if (ring_.size() < capacity_) {
      ring_.push_back(x);
    } else {
      erase(ring_[head_]);
      ring_[head_] = x;
      head_ = (head_ + 1) % capacity_;
    }
    insert(x);
  }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  /// Largest value (NaN when empty).
  double max() const { return size_ == 0 ? kNaN : blocks_.back().back(); }
  /// Number of values >= x.
  std::size_t count_at_least(double x) const {
    const std::size_t b = first_block_with_back_at_least(x);
    if (b == blocks_.size()) return 0;
    const auto& v = blocks_[b];
    std::size_t n = static_cast<std::size_t>(v.end() - std::lower_bound(v.begin(), v.end(), x));
    for (std::size_t i = b + 1; i < blocks_.size(); ++i) n += blocks_[i].size();
    return n;
  }
  /// The k-th smallest value (0-based; k < size()).
  double kth(std::size_t k) const {
    for (const auto& v : blocks_) {
      if (k < v.size()) return v[k];
      k -= v.size();
    }
    return kNaN;
  }
  /// Quantile by linear interpolation between order statistics (type 7, as SortedWindow); NaN when empty.
  double quantile(double q) const {
    if (size_ == 0) return kNaN;
    const double h = q * static_cast<double>(size_ - 1);
    const std::size_t lo = static_cast<std::size_t>(std::floor(h));
    const std::size_t hi = std::min(lo + 1, size_ - 1);
    const double a = kth(lo), b = kth(hi);
    return a + (h - static_cast<double>(lo)) * (b - a);
  }

 private:
  static constexpr std::size_t kMaxBlock = 128;
  // The first block whose largest value is >= x (blocks_.size() if none).
  std::size_t first_block_with_back_at_least(double x) const {
    std::size_t lo = 0, hi = blocks_.size();
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo) / 2;
      if (blocks_[mid].back() < x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
  void insert(double x) {
    ++size_;
    if (blocks_.empty()) {
      blocks_.emplace_back().reserve(kMaxBlock + 1);
      blocks_.back().push_back(x);
      return;
    }
    // The first block whose largest value is > x, else the last block.
    std::size_t lo = 0, hi = blocks_.size();
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo) / 2;
      if (blocks_[mid].back() <= x) lo = mid + 1; else hi = mid;
    }
    auto& v = blocks_[std::min(lo, blocks_.size() - 1)];
    v.insert(std::upper_bound(v.begin(), v.end(), x), x);
    if (v.size() > kMaxBlock) {
      const std::size_t at = static_cast<std::size_t>(&v - blocks_.data());
      std::vector<double> upper(v.begin() + static_cast<std::ptrdiff_t>(kMaxBlock / 2), v.end());
      v.resize(kMaxBlock / 2);
      upper.reserve(kMaxBlock + 1);
      blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(at + 1), std::move(upper));
    }
  }
  void erase(double x) {
    const std::size_t b = first_block_with_back_at_least(x);
    auto& v = blocks_[b];  // x is held, so such a block exists and holds it
    v.erase(std::lower_bound(v.begin(), v.end(), x));
    --size_;
    if (v.empty()) blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(b));
  }

  std::size_t capacity_;
  std::vector<double> ring_;
  std::size_t head_ = 0, size_ = 0;
  std::vector<std::vector<double>> blocks_;
};

/// Turns a raw statistic r into a calibrated score -log10 P(R >= r) using the component's own past
/// statistics (the last `capacity` of them): the empirical tail up to the 90th percentile q90, and above
/// it an exponential tail fitted through q90 and q99, P(R >= r) = 0.1 * 10^{-(r - q90) / (q99 - q90)}
/// (peaks-over-threshold with a shape of 0, as in Siffer et al. 2017, "Anomaly detection in streams with
/// extreme value theory", KDD). Components whose raw statistics differ in scale and tail therefore land
/// on one scale: under each component's own normal behaviour a score above s has probability ~10^-s.
class TailCalibrator {
 public:
  explicit TailCalibrator(std::size_t capacity = 1, double min_spread = 0) : past_(capacity), min_spread_(min_spread) {}
  /// Score of r against the statistics seen before it (NaN if fewer than `min_count`).
  double score(double r, std::size_t min_count) const {
    if (past_.size() < min_count || std::isnan(r)) return kNaN;
    const double n = static_cast<double>(past_.size());
    const double top = past_.max();
    if (r <= top) return -std::log10((static_cast<double>(past_.count_at_least(r)) + 1) / (n + 1));
    const double spread = std::max(past_.quantile(0.99) - past_.quantile(0.90), min_spread_);
    return std::log10(n + 1) + (r - top) / spread;
  }
  void push(double r) {
    if (!std::isnan(r)) past_.push(r);
  }
  std::size_t size() const noexcept { return past_.size(); }
  /// Largest statistic held (NaN when empty).
  double top() const { return past_.max(); }

 private:
  BlockedSortedWindow past_;
  double min_spread_;
};

}  // namespace detail

namespace detail {

/// Parameters shared by the residual pipelines of FusedAnomalyDetector.
struct PipelineParams {
  std::size_t local_window = 5;
  std::size_t level_window = 8;
  std::size_t reference_window = 128;
  std::size_t volatility_window = 16;
  std::size_t calibration_window = 4096;
  std::size_t min_calibration = 100;
  double exclude_above = 4.0;   // once mature, statistics scoring above this are learnt clipped
  std::size_t mature = 1000;    // statistics a calibrator holds before it clips
};

/// Four calibrated views of one stream y (see FusedAnomalyDetector): point, level, volatility, deviation.
class ResidualPipeline {
 public:
  static constexpr std::size_t kComponents = 4;

  explicit ResidualPipeline(const PipelineParams& p = {})
      : p_(p),
        local_(p.local_window),
        recent_(p.level_window),
        reference_(p.reference_window),
        ref_diffs_(p.reference_window),
        recent_diffs_(p.volatility_window),
        ref_diff_mean_(p.reference_window),
        calibrators_{TailCalibrator(p.calibration_window, 0.25), TailCalibrator(p.calibration_window, 0.25),
                     TailCalibrator(p.calibration_window, 0.05), TailCalibrator(p.calibration_window, 0.25)} {}

  /// Scores y (writing the calibrated component scores to out[0..2], NaN = no opinion), then learns it.
  void update(double y, double* out) {
    double raw[kComponents] = {kNaN, kNaN, kNaN, kNaN};
    const double sigma = noise_scale();
    if (count_ > 0) {
      if (sigma > 0) raw[0] = std::fabs(y - local_.median()) / sigma;
      // Differences leaving the recent window join the reference.
      if (recent_diffs_.full()) {
        const double leaving = recent_diffs_.oldest();
        ref_diffs_.push(leaving);
        ref_diff_mean_.push(leaving);
      }
      recent_diffs_.push(std::fabs(y - last_));
      if (ref_diff_mean_.size() >= p_.volatility_window && recent_diffs_.full()) {
        const double floor = 1e-3 * sigma + 1e-12;
        raw[2] = std::fabs(std::log((recent_diffs_.mean() + floor) / (ref_diff_mean_.mean() + floor)));
      }
    }
    if (reference_.size() >= 8) {
      const double med = reference_.median();
      double scale = kMadToSigma * reference_.median_abs_deviation(med);
      if (!(scale > 0)) scale = sigma;
      if (scale > 0) raw[3] = std::fabs(y - med) / scale;
    }
    if (recent_.full()) reference_.push(recent_.at(0));
    recent_.push(y);
    if (recent_.full() && reference_.size() >= 8 && sigma > 0)
      raw[1] = std::fabs(recent_.median() - reference_.median()) / sigma;
    for (std::size_t c = 0; c < kComponents; ++c) {
      out[c] = calibrators_[c].score(raw[c], p_.min_calibration);
      calibrators_[c].push(out[c] > p_.exclude_above && calibrators_[c].size() >= p_.mature ? std::min(raw[c], calibrators_[c].top()) : raw[c]);
    }
    local_.push(y);
    last_ = y;
    ++count_;
  }

 private:
  /// 1.0483 * median |dy| over the reference (1.4826 MAD of dy about 0, / sqrt 2); when more than half
  /// the differences are 0 (quantised or flat data), mean |dy| * sqrt(pi) / 2 instead.
  double noise_scale() const {
    if (ref_diffs_.size() < 8) return 0;
    const double med = ref_diffs_.median();
    if (med > 0) return 1.0483 * med;
    const double mean = ref_diff_mean_.mean();
    return mean > 0 ? mean * 0.8862 : 0;
  }

  PipelineParams p_;
  std::uint64_t count_ = 0;
  double last_ = 0;
  SortedWindow local_, recent_, reference_, ref_diffs_;
  MomentWindow recent_diffs_, ref_diff_mean_;
  TailCalibrator calibrators_[kComponents];
};

/// Detects a dominant period in x (oldest first) from its autocorrelation: the ACF of block means (blocks
/// of b values so that at most ~256 lags are scanned) is searched beyond its first local minimum for the
/// highest peak; the smallest local peak within 90% of it wins (so multiples of the period lose), and is
/// refined at full resolution. Returns 0 when no peak reaches min_correlation. O(n * max_lag / b^2).
inline std::size_t detect_period(const std::vector<double>& x, std::size_t min_period, std::size_t max_period,
                                 double min_correlation) {
  const std::size_t n = x.size();
  max_period = std::min(max_period, static_cast<std::size_t>(static_cast<double>(n) / 2.5));
  if (max_period < min_period || max_period < 4) return 0;
  const std::size_t b = std::max<std::size_t>(1, max_period / 256);
  const std::size_t nb = n / b;
  std::vector<double> y(nb, 0.0);
  for (std::size_t i = 0; i < nb; ++i) {
    for (std::size_t j = 0; j < b; ++j) y[i] += x[n - nb * b + i * b + j];
    y[i] /= static_cast<double>(b);
  }
  auto acf = [](const std::vector<double>& v, std::size_t lag) {
    const std::size_t m = v.size() - lag;
    double ma = 0, mb = 0;
    for (std::size_t i = 0; i < m; ++i) ma += v[i], mb += v[i + lag];
    ma /= static_cast<double>(m);
    mb /= static_cast<double>(m);
    double sab = 0, saa = 0, sbb = 0;
    for (std::size_t i = 0; i < m; ++i) {
      const double da = v[i] - ma, db = v[i + lag] - mb;
      sab += da * db, saa += da * da, sbb += db * db;
    }
    return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
  };
  const std::size_t max_lag = max_period / b;
  std::vector<double> r(max_lag + 2, 0.0);
  for (std::size_t l = 1; l <= max_lag + 1 && l < nb - 2; ++l) r[l] = acf(y, l);
  std::size_t start = 1;
  while (start + 1 <= max_lag && r[start + 1] < r[start]) ++start;  // first local minimum
  double best = -1;
  for (std::size_t l = start + 1; l <= max_lag; ++l)
    if (r[l] >= r[l - 1] && r[l] >= r[l + 1] && r[l] > best) best = r[l];
  if (best < min_correlation) return 0;
  std::size_t pick = 0;
  for (std::size_t l = start + 1; l <= max_lag && !pick; ++l)
    if (r[l] >= r[l - 1] && r[l] >= r[l + 1] && r[l] >= 0.9 * best) pick = l;
  if (!pick) return 0;
  // Refine at full resolution around pick * b.
  std::size_t period = pick * b;
  if (b > 1) {
    double top = -2;
    for (std::size_t l = pick * b - (b - 1); l <= pick * b + (b - 1) && l + 2 < n; ++l) {
      const double c = acf(x, l);
      if (c > top) top = c, period = l;
    }
  }
  return period >= min_period && period <= max_period ? period : 0;
}

}  // namespace detail

/// The engine's default streaming anomaly scorer: cheap views of the stream, each turned into a calibrated
/// tail probability by its own history, fused by the maximum (the smallest p-value).
///
/// Two residual streams are scored, both from the current and earlier values only:
/// - raw:      y_t = x_t;
/// - seasonal: once a period P is detected (autocorrelation of the history, rechecked every
///   `period_check` values), y_t = x_t - median{x_{t-kP+j} : k = 1..min(3, available periods), j = -1..1}
///   (a seasonal-naive forecast made robust to one bad day and to phase jitter).
/// On each stream three components (detail::ResidualPipeline):
/// - point:      |y_t - median(previous `local_window` y)| / sigma  (spikes, dips; the local median
///               absorbs level changes of the seasonal residual)
/// - level:      |median(last `level_window` y) - median(the `reference_window` y before them)| / sigma
///               (level shifts, also those too mild for the point view)
/// - volatility: |log(mean |dy| over the last `volatility_window`) - log(mean |dy| over the reference)|
///               (variance bursts and flat-lines)
/// - deviation:  |y_t - median(reference)| / (1.4826 MAD(reference))  (the robust z-score: best for
///               values that scatter around a level, where a local median of 5 is itself too noisy)
/// sigma is a robust noise scale from first differences, 1.0483 median |dy| over the reference, so trends
/// and slow seasonality do not inflate it. Each raw statistic is calibrated against the component's own
/// past values by an exponential tail through its 90th and 99th percentiles (detail::TailCalibrator), so
/// every component's normal behaviour exceeds a score s with probability ~10^-s whatever its scale or
/// distribution; score = max over components of -log10 p (Tippett's min-p combination). The score is NaN
/// for the first `warmup` values, and a component votes only after `min_calibration` statistics. Once a
/// calibrator holds 1000 statistics, one scoring above `threshold` is learnt clipped to the largest seen
/// so far, so that repeated anomalies do not become the norm (before that, clipping would freeze a
/// too-narrow early tail and raise false alarms). Full sensitivity to repeated anomalies therefore needs
/// ~1000 values; a first anomaly is scored high from the end of the warm-up. Scale of the score: up to
/// log10(n + 1) it is an empirical rank among the n <= `calibration_window` past statistics, beyond the
/// largest one it is extrapolated, so the default threshold 5 asks for a value clearly beyond all history.
/// Update cost: O(log w) order statistics plus, every `period_check` values, an autocorrelation scan of
/// O(history * 256 / b) (amortised O(1) per value).
/// Thread-safety: none (plain value).
class FusedAnomalyDetector {
 public:
  struct Params {
    std::size_t local_window = 5;          ///< values in the local median the point component compares to
    std::size_t level_window = 8;          ///< recent values whose median is tested for a level shift
    std::size_t reference_window = 128;    ///< baseline for the level, noise scale and volatility
    std::size_t volatility_window = 16;    ///< recent differences tested for a change of variance
    std::size_t calibration_window = 4096; ///< past statistics each component is calibrated against
    std::size_t min_calibration = 100;     ///< statistics a component needs before it votes
    std::size_t warmup = 150;              ///< values before the first score (NaN meanwhile)
    bool seasonal = true;                  ///< detect a period and score the seasonal residual too
    std::size_t min_period = 8;            ///< shortest period considered
    std::size_t max_period = 1440;         ///< longest period considered (a day of minutes)
    std::size_t period_check = 512;        ///< values between period detections
    double min_seasonal_correlation = 0.3; ///< autocorrelation a period needs
    double threshold = 5.0;                ///< verdict: anomaly when score > threshold (see above)
    /// @throws ConfigError naming the key.
    void validate() const {
      detail::require(local_window >= 1, "local_window", "must be >= 1");
      detail::require(level_window >= 1, "level_window", "must be >= 1");
      detail::require(reference_window >= 8, "reference_window", "must be >= 8, got " + std::to_string(reference_window));
      detail::require(volatility_window >= 2, "volatility_window", "must be >= 2");
      detail::require(calibration_window >= 20, "calibration_window", "must be >= 20");
      detail::require(min_calibration >= 10 && min_calibration <= calibration_window, "min_calibration",
                      "must be in [10, calibration_window]");
      detail::require(warmup >= 1, "warmup", "must be >= 1");
      detail::require(min_period >= 2, "min_period", "must be >= 2");
      detail::require(max_period >= min_period, "max_period", "must be >= min_period");
      detail::require(period_check >= 1, "period_check", "must be >= 1");
      detail::require(min_seasonal_correlation > 0 && min_seasonal_correlation < 1, "min_seasonal_correlation",
                      "must be in (0, 1)");
      detail::require(threshold > 0 && std::isfinite(threshold), "threshold", "must be finite and > 0");
    }
  };

  /// Number of component scores: four on the raw values, four on the seasonal residual.
  static constexpr std::size_t kComponents = 2 * detail::ResidualPipeline::kComponents;

  /// Default parameters.
  FusedAnomalyDetector() : FusedAnomalyDetector(Params{}) {}
  /// @throws ConfigError for invalid parameters.
  explicit FusedAnomalyDetector(Params p)
      : params_((p.validate(), p)), raw_(pipeline_params(p)), history_(p.seasonal ? 3 * p.max_period + 2 : 1) {
    std::fill(std::begin(last_scores_), std::end(last_scores_), detail::kNaN);
  }

  /// Scores x from it and the values before it, then learns from it.
  /// @throws ValidationError if x is not finite.
  Verdict update(double x) {
    detail::require_finite(x, "x");
    const std::uint64_t t = count_++;
    std::fill(std::begin(last_scores_), std::end(last_scores_), detail::kNaN);
    raw_.update(x, last_scores_);
    if (params_.seasonal) {
      if (period_ > 0 && history_.size() >= period_ + 1) {
        seasonal_base_.clear();
        // x_{t-m} is history_.back(m - 1); x_{t-kP+j} for j = -1, 0, 1.
        for (std::size_t k = 1; k <= 3 && k * period_ < history_.size(); ++k)
          for (std::size_t m = k * period_ - 1; m <= k * period_ + 1; ++m) seasonal_base_.push_back(history_.back(m - 1));
        std::nth_element(seasonal_base_.begin(), seasonal_base_.begin() + static_cast<std::ptrdiff_t>(seasonal_base_.size() / 2),
                         seasonal_base_.end());
        seasonal_.update(x - seasonal_base_[seasonal_base_.size() / 2], last_scores_ + detail::ResidualPipeline::kComponents);
      }
      history_.push(x);
      if ((t + 1) % params_.period_check == 0) redetect();
    }
    Verdict v;
    if (t >= params_.warmup) {
      double best = 0;
      for (double s : last_scores_)
        if (s > best) best = s;
      v.score = best;
      v.anomaly = best > params_.threshold;
    }
    return v;
  }

  /// Calibrated component scores for the last value (raw point, level, volatility, deviation, then the
  /// same four on the seasonal residual); NaN = no opinion.
  const double* component_scores() const noexcept { return last_scores_; }
  /// The detected period (0 = none).
  std::size_t period() const noexcept { return period_; }
  /// Values seen.
  std::uint64_t count() const noexcept { return count_; }
  const Params& params() const noexcept { return params_; }

 private:
  static detail::PipelineParams pipeline_params(const Params& p) {
    return {p.local_window, p.level_window, p.reference_window, p.volatility_window, p.calibration_window,
            p.min_calibration, std::min(p.threshold, 4.0)};
  }
  void redetect() {
    std::vector<double> xs(history_.size());
    for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = history_.at(i);
    const std::size_t p = detail::detect_period(xs, params_.min_period, params_.max_period, params_.min_seasonal_correlation);
    if (p == 0) return;  // keep a period once found; a noisy stretch does not undo it
    if (period_ == 0 || std::fabs(static_cast<double>(p) - static_cast<double>(period_)) > 0.02 * static_cast<double>(period_)) {
      period_ = p;
      seasonal_ = detail::ResidualPipeline(pipeline_params(params_));
    }
  }

  Params params_;
  std::uint64_t count_ = 0;
  detail::ResidualPipeline raw_, seasonal_;
  detail::MomentWindow history_;
  std::size_t period_ = 0;
  std::vector<double> seasonal_base_;
  double last_scores_[kComponents];
};

/// The detector the engine uses by default.
using DefaultAnomalyDetector = FusedAnomalyDetector;

}  // namespace promptlearn::patterns
