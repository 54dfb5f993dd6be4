#pragma once
/// @file DDSketch quantile sketch (layer 2: header-only, no I/O, no clock, no threads).
///
/// `QuantileSketch` answers quantile queries over a stream of doubles with a relative-accuracy guarantee:
/// every quantile it returns is within a factor (1 +- alpha) of the exact order statistic (Masson, Rim &
/// Lee, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with Relative-Error Guarantees", VLDB 2019).
/// A value v > 0 goes to bucket i = ceil(log_gamma v), gamma = (1 + alpha) / (1 - alpha), which covers
/// (gamma^(i-1), gamma^i]; the bucket's representative 2 gamma^i / (gamma + 1) is within alpha of every
/// value in it. Negative values go to a mirrored store keyed by |v|; |v| below the smallest normal double
/// (zero, subnormals) to a zero count.
///
/// Merging is exact: the state is a function of the multiset of values only (bucket counts, min, max, and
/// the sum held exactly in a fixed-point accumulator), so merging sketches of the parts of a data set gives
/// a sketch equal to (and with `to_bytes` byte-identical to) the sketch of the whole, in any order.
///
/// Example:
///     promptlearn::monitor::QuantileSketch s;          // alpha = 0.01
///     for (double ms : latencies) s.add(ms);
///     double p99 = s.quantile(0.99);                  // within 1% of the exact P99
///     std::string blob = s.to_bytes();                // a few hundred bytes; QuantileSketch::from_bytes(blob)
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"

namespace promptlearn::monitor {

namespace detail {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- compact binary helpers (also used by metrics.hpp) --------------------------------------------------

inline void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
inline std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ (v < 0 ? ~std::uint64_t{0} : std::uint64_t{0});
}
inline std::int64_t unzigzag(std::uint64_t u) {
  return static_cast<std::int64_t>(u >> 1) ^ -static_cast<std::int64_t>(u & 1);
}
inline void put_double(std::string& out, double d) {
  std::uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
}

/// Reads what put_* wrote; every failure is a ValidationError naming `what_` and the byte offset.
class ByteReader {
 public:
  ByteReader(std::string_view data, std::string what) : data_(data), what_(std::move(what)) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw ValidationError(what_, fmt::format("{} (at byte {} of {})", message, pos_, data_.size()));
  }
  std::uint8_t byte(const char* field) {
    if (pos_ >= data_.size()) fail(fmt::format("truncated while reading {}", field));
    return static_cast<std::uint8_t>(data_[pos_++]);
  }
  std::uint64_t varint(const char* field) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const std::uint8_t b = byte(field);
      if (shift == 63 && b > 1) fail(fmt::format("varint {} overflows 64 bits", field));
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(fmt::format("varint {} is longer than 10 bytes", field));
  }
  std::int64_t svarint(const char* field) { return unzigzag(varint(field)); }
  double real(const char* field) {
    std::uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits |= static_cast<std::uint64_t>(byte(field)) << (8 * i);
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }
  std::string_view bytes(std::size_t n, const char* field) {
    if (n > data_.size() - pos_) fail(fmt::format("truncated: {} needs {} bytes, {} left", field, n, data_.size() - pos_));
    std::string_view s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  bool done() const noexcept { return pos_ == data_.size(); }
  void expect_end() const {
    if (!done()) fail(fmt::format("{} trailing bytes", data_.size() - pos_));
  }

 private:
  std::string_view data_;
  std::string what_;
  std::size_t pos_ = 0;
};

// ---- exact sum ------------------------------------------------------------------------------------------

/// The exact sum of doubles (times integer counts) as a fixed-point number: 72 limbs of 32 bits at
/// 2^-1074 .. 2^1230, enough for 2^64 copies of the largest double. Order-independent by construction
/// (integer addition), so sketches merge to byte-identical states; `value()` rounds once to nearest.
/// Limbs below the top are kept in [0, 2^32); the top limb carries the sign.
class ExactSum {
 public:
  static constexpr std::size_t kLimbs = 72;

  /// Adds v * count (v finite).
  void add(double v, std::uint64_t count) {
    if (v == 0 || count == 0) return;
    int e = 0;
    const double f = std::frexp(std::fabs(v), &e);  // |v| = f 2^e, f in [0.5, 1)
    std::uint64_t m = static_cast<std::uint64_t>(std::ldexp(f, 53));
    int exp = e - 53;  // |v| = m 2^exp
    if (exp < -1074) {  // subnormal: m has at least -1074 - exp trailing zeros
      m >>= (-1074 - exp);
      exp = -1074;
    }
    const int pos = exp + 1074;
    const bool neg = v < 0;
    // m * count as four 32x32 products (each < 2^64) at bit offsets 0, 32, 32, 64.
    const std::uint64_t m_lo = m & 0xFFFFFFFFu, m_hi = m >> 32, c_lo = count & 0xFFFFFFFFu, c_hi = count >> 32;
    add_bits(pos, m_lo * c_lo, neg);
    add_bits(pos + 32, m_lo * c_hi, neg);
    add_bits(pos + 32, m_hi * c_lo, neg);
    add_bits(pos + 64, m_hi * c_hi, neg);
  }

  void merge(const ExactSum& o) {
    for (std::size_t i = 0; i < kLimbs; ++i) limbs_[i] += o.limbs_[i];
    normalize(0, kLimbs);
  }

  bool negative() const noexcept { return limbs_[kLimbs - 1] < 0; }
  bool zero() const noexcept {
    return std::all_of(limbs_.begin(), limbs_.end(), [](std::int64_t l) { return l == 0; });
  }

  /// The sum rounded to the nearest double (+-infinity beyond the double range).
  double value() const {
    if (zero()) return 0;
    const bool neg = negative();
    std::array<std::int64_t, kLimbs> a = neg ? negated() : limbs_;
    std::size_t h = kLimbs - 1;
    while (a[h] == 0) --h;
    int msb = 31;
    while (!((a[h] >> msb) & 1)) --msb;
    const long top = static_cast<long>(h) * 32 + msb;  // highest set bit
    auto bit = [&](long k) -> std::uint64_t {
      return k < 0 ? 0 : static_cast<std::uint64_t>((a[static_cast<std::size_t>(k / 32)] >> (k % 32)) & 1);
    };
    std::uint64_t acc = 0;
    for (long k = top; k > top - 64; --k) acc = (acc << 1) | bit(k);
    bool sticky = false;
    if (const long cut = top - 64; cut >= 0) {  // bits at or below `cut` did not fit in acc
      const auto li = static_cast<std::size_t>(cut / 32);
      const std::int64_t mask = (std::int64_t{2} << (cut % 32)) - 1;
      sticky = (a[li] & mask) != 0;
      for (std::size_t j = 0; j < li && !sticky; ++j) sticky = a[j] != 0;
    }
    // The 64-bit integer with a sticky lowest bit rounds to 53 bits exactly as the full value would.
    const double r = std::ldexp(static_cast<double>(acc | (sticky ? 1u : 0u)), static_cast<int>(top - 63 - 1074));
    return neg ? -r : r;
  }

  /// Sign, lowest limb index, limb count, limbs of |sum| (varints).
  void encode(std::string& out) const {
    const bool neg = negative();
    const std::array<std::int64_t, kLimbs> a = neg ? negated() : limbs_;
    std::size_t lo = 0, hi = kLimbs;
    while (lo < kLimbs && a[lo] == 0) ++lo;
    while (hi > lo && a[hi - 1] == 0) --hi;
    out.push_back(neg ? 1 : 0);
    put_varint(out, lo == hi ? 0 : lo);
    put_varint(out, hi - lo);
    for (std::size_t i = lo; i < hi; ++i) put_varint(out, static_cast<std::uint64_t>(a[i]));
  }

  /// @throws ValidationError through `r` when the encoding is not canonical or out of range.
  static ExactSum decode(ByteReader& r) {
    ExactSum s;
    const std::uint8_t sign = r.byte("sum.sign");
    if (sign > 1) r.fail(fmt::format("sum.sign: {} is not 0 or 1", sign));
    const std::uint64_t lo = r.varint("sum.first_limb"), n = r.varint("sum.limb_count");
    if (lo >= kLimbs - 1 || n > kLimbs - 1 - lo) r.fail(fmt::format("sum: limbs [{}, +{}) are outside [0, {})", lo, n, kLimbs - 1));
    if (n == 0 && (lo != 0 || sign != 0)) r.fail("sum: a zero sum must be encoded as sign 0, limb 0, count 0");
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t l = r.varint("sum.limb");
      if (l > 0xFFFFFFFFu) r.fail(fmt::format("sum.limb: {} exceeds 2^32 - 1", l));
      if ((i == 0 || i + 1 == n) && l == 0) r.fail("sum: the first and last limb must be non-zero");
      s.limbs_[lo + i] = static_cast<std::int64_t>(l);
    }
    if (sign) s.limbs_ = s.negated();
    return s;
  }

  friend bool operator==(const ExactSum& a, const ExactSum& b) noexcept { return a.limbs_ == b.limbs_; }

 private:
  static constexpr std::int64_t kBase = std::int64_t{1} << 32;

  void add_bits(int bitpos, std::uint64_t x, bool neg) {
    if (x == 0) return;
    const std::size_t i = static_cast<std::size_t>(bitpos / 32);
    const unsigned off = static_cast<unsigned>(bitpos % 32);
    const std::uint64_t c0 = (x << off) & 0xFFFFFFFFu;
    const std::uint64_t rest = off ? (x >> (32 - off)) : (x >> 32);
    const std::uint64_t chunks[3] = {c0, rest & 0xFFFFFFFFu, rest >> 32};
    for (std::size_t k = 0; k < 3; ++k) {
      const auto c = static_cast<std::int64_t>(chunks[k]);
      limbs_[i + k] += neg ? -c : c;
    }
    normalize(i, i + 3);
  }
  /// Brings limbs from `from` upwards into [0, 2^32) (the top limb keeps the carry and the sign); limbs
  /// from `until` on are already normalised, so the pass stops there once no carry is left.
  void normalize(std::size_t from, std::size_t until) {
    for (std::size_t j = from; j + 1 < kLimbs; ++j) {
      const std::int64_t low = limbs_[j] & (kBase - 1);
      const std::int64_t carry = (limbs_[j] - low) / kBase;
      limbs_[j] = low;
      limbs_[j + 1] += carry;
      if (carry == 0 && j + 1 >= until) break;
    }
  }
  std::array<std::int64_t, kLimbs> negated() const {
    ExactSum n;
    for (std::size_t i = 0; i < kLimbs; ++i) n.limbs_[i] = -limbs_[i];
    n.normalize(0, kLimbs);
    return n.limbs_;
  }

  std::array<std::int64_t, kLimbs> limbs_{};
};

// ---- bucket store ---------------------------------------------------------------------------------------

/// Counts per integer bucket key in one contiguous vector with an offset, capped at `cap` buckets by
/// collapsing the lowest: with H the largest key seen, every key below H - cap + 1 is counted at
/// H - cap + 1. The state is thus a function of the multiset of keys (order-independent). add is O(1)
/// amortised (the vector is re-centred with slack when a key falls outside it).
class BucketStore {
 public:
  explicit BucketStore(std::size_t cap = 4096) : cap_(static_cast<std::int64_t>(cap)) {}

  void add(std::int64_t key, std::uint64_t n) {
    if (n == 0) return;
    if (total_ == 0) {
      min_key_ = max_key_ = key;
      ensure(key, key);
    } else if (key > max_key_) {
      const std::int64_t new_lo = key - cap_ + 1;
      if (new_lo > min_key_) {  // collapse everything below new_lo into new_lo
        std::uint64_t folded = 0;
        for (std::int64_t k = min_key_; k <= std::min(max_key_, new_lo - 1); ++k) {
          folded += counts_[static_cast<std::size_t>(k - offset_)];
          counts_[static_cast<std::size_t>(k - offset_)] = 0;
        }
        collapsed_ = true;
        min_key_ = new_lo;
        max_key_ = key;
        ensure(new_lo, key);
        counts_[static_cast<std::size_t>(new_lo - offset_)] += folded;
      } else {
        max_key_ = key;
        ensure(min_key_, key);
      }
    } else if (key < min_key_) {
      const std::int64_t lo_bound = max_key_ - cap_ + 1;
      if (key < lo_bound) {
        key = lo_bound;
        collapsed_ = true;
      }
      min_key_ = key;
      ensure(min_key_, max_key_);
    }
    counts_[static_cast<std::size_t>(key - offset_)] += n;
    total_ += n;
  }

  void merge(const BucketStore& o) {
    if (o.total_ == 0) return;
    // Largest key first, so at most one collapse happens.
    for (std::int64_t k = o.max_key_; k >= o.min_key_; --k)
      add(k, o.at(k));
    collapsed_ = collapsed_ || o.collapsed_;
  }

  std::uint64_t at(std::int64_t key) const noexcept {
    if (counts_.empty() || key < offset_ || key >= offset_ + static_cast<std::int64_t>(counts_.size())) return 0;
    return counts_[static_cast<std::size_t>(key - offset_)];
  }
  std::uint64_t total() const noexcept { return total_; }
  bool empty() const noexcept { return total_ == 0; }
  std::int64_t min_key() const noexcept { return min_key_; }
  std::int64_t max_key() const noexcept { return max_key_; }
  std::int64_t cap() const noexcept { return cap_; }
  /// True if some bucket was collapsed into the lowest (here or in a merged store).
  bool collapsed() const noexcept { return collapsed_; }
  void mark_collapsed() noexcept { collapsed_ = true; }

  /// Runs of non-zero counts: run count, then per run the zigzag gap from the previous run's end (the
  /// first run: its key), its length and its counts.
  void encode(std::string& out) const {
    std::vector<std::pair<std::int64_t, std::int64_t>> runs;  // [first, last]
    for (std::int64_t k = min_key_; total_ && k <= max_key_; ++k) {
      if (at(k) == 0) continue;
      if (!runs.empty() && runs.back().second == k - 1) runs.back().second = k;
      else runs.push_back({k, k});
    }
    put_varint(out, runs.size());
    std::int64_t prev = 0;
    for (std::size_t r = 0; r < runs.size(); ++r) {
      put_varint(out, zigzag(r == 0 ? runs[r].first : runs[r].first - prev));
      put_varint(out, static_cast<std::uint64_t>(runs[r].second - runs[r].first + 1));
      for (std::int64_t k = runs[r].first; k <= runs[r].second; ++k) put_varint(out, at(k));
      prev = runs[r].second;
    }
  }

  /// Decodes `encode`'s output, keys checked against [key_min, key_max] and the span against the cap.
  void decode(ByteReader& r, const char* name, std::int64_t key_min, std::int64_t key_max) {
    const std::uint64_t nruns = r.varint(name);
    std::int64_t prev = 0;
    bool first = true;
    std::int64_t first_key = 0;
    for (std::uint64_t i = 0; i < nruns; ++i) {
      const std::int64_t gap = r.svarint(name);
      if (!first && gap < 2) r.fail(fmt::format("{}: run gap {} (runs must be separated by an empty bucket)", name, gap));
      // Bounds are checked before any arithmetic, so nothing overflows.
      if (first ? (gap < key_min || gap > key_max) : (gap > key_max - prev))
        r.fail(fmt::format("{}: bucket key out of range [{}, {}]", name, key_min, key_max));
      const std::int64_t start = first ? gap : prev + gap;
      if (first) first_key = start;
      const std::uint64_t len = r.varint(name);
      if (len == 0 || len > static_cast<std::uint64_t>(key_max - start) + 1)
        r.fail(fmt::format("{}: run length {} is 0 or leaves the key range", name, len));
      if (start + static_cast<std::int64_t>(len) - 1 - first_key + 1 > cap_)
        r.fail(fmt::format("{}: buckets span more than max_buckets = {}", name, cap_));
      for (std::uint64_t j = 0; j < len; ++j) {
        const std::uint64_t c = r.varint(name);
        if (c == 0) r.fail(fmt::format("{}: a run holds a zero count", name));
        if (c > std::numeric_limits<std::uint64_t>::max() - total_) r.fail(fmt::format("{}: counts overflow 2^64", name));
        add(start + static_cast<std::int64_t>(j), c);
      }
      prev = start + static_cast<std::int64_t>(len) - 1;
      first = false;
    }
  }

  friend bool operator==(const BucketStore& a, const BucketStore& b) noexcept {
    if (a.total_ != b.total_ || a.cap_ != b.cap_ || a.collapsed_ != b.collapsed_) return false;
    if (a.total_ == 0) return true;
    if (a.min_key_ != b.min_key_ || a.max_key_ != b.max_key_) return false;
    for (std::int64_t k = a.min_key_; k <= a.max_key_; ++k)
      if (a.at(k) != b.at(k)) return false;
    return true;
  }

 private:
  /// Makes [lo, hi] addressable (hi - lo < cap), keeping the counts held.
  void ensure(std::int64_t lo, std::int64_t hi) {
    const auto size = static_cast<std::int64_t>(counts_.size());
    if (size > 0 && lo >= offset_ && hi < offset_ + size) return;
    const std::int64_t span = hi - lo + 1;
    const std::int64_t new_size = std::max<std::int64_t>(std::min(2 * span, 2 * cap_), std::min<std::int64_t>(32, 2 * cap_));
    const std::int64_t new_offset = lo - (new_size - span) / 2;
    std::vector<std::uint64_t> next(static_cast<std::size_t>(new_size), 0);
    for (std::int64_t k = std::max(offset_, new_offset); k < std::min(offset_ + size, new_offset + new_size); ++k)
      next[static_cast<std::size_t>(k - new_offset)] = counts_[static_cast<std::size_t>(k - offset_)];
    counts_.swap(next);
    offset_ = new_offset;
  }

  std::int64_t cap_;
  std::vector<std::uint64_t> counts_;
  std::int64_t offset_ = 0;
  std::int64_t min_key_ = 0, max_key_ = 0;  // extent of non-zero counts (when total_ > 0)
  std::uint64_t total_ = 0;
  bool collapsed_ = false;
};

}  // namespace detail

/// DDSketch with a relative-accuracy guarantee (see the file comment).
///
/// Guarantee: for q in [0, 1], `quantile(q)` is within relative error alpha of the exact order statistic
/// x_(floor(q (n - 1))) (0-based; no interpolation), clamped to [min, max]; the smallest and largest
/// order statistics (q = 0, q = 1) are the exact min and max.
/// Limits: values with |v| below the smallest normal double (2.2e-308) count as 0; when more than
/// `max_buckets` buckets would be needed for one sign (a spread of gamma^max_buckets, about 10^35 for the
/// defaults), the lowest are collapsed into one and the guarantee then holds only for quantiles above the
/// collapsed range (quantiles inside it are over-estimated: they report the collapsed bucket's value; for
/// negative values the mirrored store collapses the magnitudes nearest 0).
/// add O(1) amortised; quantile O(buckets); memory 8 bytes per bucket in the span, at most 2 max_buckets.
/// Thread-safety: none (plain value); const members may be called concurrently.
class QuantileSketch {
 public:
  struct Params {
    double relative_accuracy = 0.01;  ///< alpha, in [1e-9, 1)
    std::size_t max_buckets = 4096;   ///< per sign, in [8, 65536]
    /// @throws ConfigError naming the key.
    void validate() const {
      if (!(relative_accuracy >= 1e-9 && relative_accuracy < 1))
        throw ConfigError("relative_accuracy", fmt::format("{} is outside [1e-9, 1)", relative_accuracy));
      if (max_buckets < 8 || max_buckets > 65536)
        throw ConfigError("max_buckets", fmt::format("{} is outside [8, 65536]", max_buckets));
    }
  };

  /// alpha = 0.01, 4096 buckets per sign.
  QuantileSketch() : QuantileSketch(Params{}) {}
  /// @throws ConfigError for invalid parameters.
  explicit QuantileSketch(Params p)
      : params_((p.validate(), p)),
        gamma_((1 + p.relative_accuracy) / (1 - p.relative_accuracy)),
        ln_gamma_(std::log1p(2 * p.relative_accuracy / (1 - p.relative_accuracy))),
        inv_ln_gamma_(1 / ln_gamma_),
        positive_(p.max_buckets),
        negative_(p.max_buckets) {}
  /// Shorthand for Params{relative_accuracy, max_buckets}. @throws ConfigError.
  explicit QuantileSketch(double relative_accuracy, std::size_t max_buckets = 4096)
      : QuantileSketch(Params{relative_accuracy, max_buckets}) {}

  /// Adds `count` copies of v (count 0 is a no-op).
  /// @throws ValidationError naming the value if it is not finite, or if the total count would overflow.
  void add(double v, std::uint64_t count = 1) {
    if (!std::isfinite(v)) throw ValidationError("value", fmt::format("{} is not finite", v));
    if (count == 0) return;
    if (count > std::numeric_limits<std::uint64_t>::max() - count_)
      throw ValidationError("count", fmt::format("adding {} to {} overflows 2^64", count, count_));
    const double a = std::fabs(v);
    if (a < std::numeric_limits<double>::min()) zero_count_ += count;
    else (v > 0 ? positive_ : negative_).add(key(a), count);
    if (count_ == 0 || v < min_) min_ = v;
    if (count_ == 0 || v > max_) max_ = v;
    count_ += count;
    sum_.add(v, count);
  }

  /// Adds every value `other` summarises; the result equals the sketch of the union.
  /// @throws ConfigError if the relative accuracies or bucket caps differ; ValidationError on count overflow.
  void merge(const QuantileSketch& other) {
    if (other.params_.relative_accuracy != params_.relative_accuracy)
      throw ConfigError("relative_accuracy", fmt::format("cannot merge a sketch with alpha {} into one with alpha {}",
                                                         other.params_.relative_accuracy, params_.relative_accuracy));
    if (other.params_.max_buckets != params_.max_buckets)
      throw ConfigError("max_buckets", fmt::format("cannot merge a sketch with {} buckets into one with {}",
                                                   other.params_.max_buckets, params_.max_buckets));
    if (other.count_ == 0) return;
    if (other.count_ > std::numeric_limits<std::uint64_t>::max() - count_)
      throw ValidationError("count", fmt::format("merging {} into {} overflows 2^64", other.count_, count_));
    positive_.merge(other.positive_);
    negative_.merge(other.negative_);
    zero_count_ += other.zero_count_;
    min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
    max_ = count_ == 0 ? other.max_ : std::max(max_, other.max_);
    count_ += other.count_;
    sum_.merge(other.sum_);
  }

  /// The q-quantile (see the class comment for the guarantee); NaN when empty.
  /// @throws ConfigError if q is outside [0, 1].
  double quantile(double q) const {
    if (!(q >= 0 && q <= 1)) throw ConfigError("q", fmt::format("{} is outside [0, 1]", q));
    if (count_ == 0) return detail::kNaN;
    const auto rank = static_cast<std::uint64_t>(std::floor(q * static_cast<double>(count_ - 1)));
    if (rank == 0) return min_;
    if (rank == count_ - 1) return max_;
    std::uint64_t seen = 0;
    double est = 0;
    bool found = false;
    if (!negative_.empty()) {
      for (std::int64_t k = negative_.max_key(); k >= negative_.min_key() && !found; --k) {
        seen += negative_.at(k);
        if (seen > rank) est = -value_of(k), found = true;
      }
    }
    if (!found) {
      seen += zero_count_;
      if (seen > rank) est = 0, found = true;
    }
    if (!found && !positive_.empty()) {
      for (std::int64_t k = positive_.min_key(); k <= positive_.max_key() && !found; ++k) {
        seen += positive_.at(k);
        if (seen > rank) est = value_of(k), found = true;
      }
    }
    return std::clamp(est, min_, max_);
  }

  /// Number of values added.
  std::uint64_t count() const noexcept { return count_; }
  /// Exact sum of the values, rounded once (0 when empty).
  double sum() const { return sum_.value(); }
  /// Smallest value (NaN when empty).
  double min() const noexcept { return count_ ? min_ : detail::kNaN; }
  /// Largest value (NaN when empty).
  double max() const noexcept { return count_ ? max_ : detail::kNaN; }
  /// sum / count (NaN when empty).
  double mean() const { return count_ ? sum() / static_cast<double>(count_) : detail::kNaN; }
  /// alpha.
  double relative_accuracy() const noexcept { return params_.relative_accuracy; }
  const Params& params() const noexcept { return params_; }
  /// Count of values treated as 0 (|v| < 2.2e-308).
  std::uint64_t zero_count() const noexcept { return zero_count_; }
  /// True if buckets were collapsed (the guarantee then holds above the collapsed range only).
  bool collapsed() const noexcept { return positive_.collapsed() || negative_.collapsed(); }
  bool empty() const noexcept { return count_ == 0; }

  /// Compact binary form: version byte 1, alpha (8 bytes, IEEE little-endian), max_buckets (varint), a
  /// flags byte (bit 0: positive store collapsed, bit 1: negative), zero count (varint), the exact sum
  /// (sign byte, varint limbs), the positive and negative stores as runs of varint counts with zigzag key
  /// gaps, then min and max (8 bytes each, only when count > 0). Equal sketches give identical bytes;
  /// about 1-2 bytes per non-empty bucket plus ~40.
  std::string to_bytes() const {
    std::string out;
    out.push_back(static_cast<char>(kFormatVersion));
    detail::put_double(out, params_.relative_accuracy);
    detail::put_varint(out, params_.max_buckets);
    out.push_back(static_cast<char>((positive_.collapsed() ? 1 : 0) | (negative_.collapsed() ? 2 : 0)));
    detail::put_varint(out, zero_count_);
    sum_.encode(out);
    positive_.encode(out);
    negative_.encode(out);
    if (count_ > 0) {
      detail::put_double(out, min_);
      detail::put_double(out, max_);
    }
    return out;
  }

  /// Rebuilds a sketch from `to_bytes`. Checks everything (version, parameters, key ranges, bucket span,
  /// count overflow, min/max against the stores, trailing bytes) before use: garbage throws, never UB.
  /// @throws ValidationError naming what is wrong (path "sketch").
  static QuantileSketch from_bytes(std::string_view bytes) {
    detail::ByteReader r(bytes, "sketch");
    const std::uint8_t version = r.byte("version");
    if (version != kFormatVersion) r.fail(fmt::format("version {} is not supported (expected {})", version, kFormatVersion));
    Params p;
    p.relative_accuracy = r.real("relative_accuracy");
    const std::uint64_t cap = r.varint("max_buckets");
    p.max_buckets = static_cast<std::size_t>(std::min<std::uint64_t>(cap, std::uint64_t{1} << 30));
    try {
      p.validate();
    } catch (const ConfigError& e) {
      r.fail(e.what());
    }
    QuantileSketch s(p);
    const std::uint8_t flags = r.byte("flags");
    if (flags > 3) r.fail(fmt::format("flags: {} has unknown bits", flags));
    s.zero_count_ = r.varint("zero_count");
    s.sum_ = detail::ExactSum::decode(r);
    const std::int64_t key_min = s.key(std::numeric_limits<double>::min());
    const std::int64_t key_max = s.key(std::numeric_limits<double>::max());
    s.positive_.decode(r, "positive", key_min, key_max);
    s.negative_.decode(r, "negative", key_min, key_max);
    // Buckets were rebuilt without collapsing; the flag is part of the state.
    if (flags & 1) s.positive_.mark_collapsed();
    if (flags & 2) s.negative_.mark_collapsed();
    const std::uint64_t pos = s.positive_.total(), neg = s.negative_.total();
    if (pos > std::numeric_limits<std::uint64_t>::max() - neg ||
        s.zero_count_ > std::numeric_limits<std::uint64_t>::max() - pos - neg)
      r.fail("counts overflow 2^64");
    s.count_ = s.zero_count_ + pos + neg;
    if (s.count_ == 0) {
      if (!s.sum_.zero()) r.fail("an empty sketch has a non-zero sum");
    } else {
      s.min_ = r.real("min");
      s.max_ = r.real("max");
      if (!std::isfinite(s.min_) || !std::isfinite(s.max_) || s.min_ > s.max_)
        r.fail(fmt::format("min {} and max {} must be finite with min <= max", s.min_, s.max_));
      const double tiny = std::numeric_limits<double>::min();
      const bool min_ok = neg ? (s.min_ <= -tiny && s.key(-s.min_) == s.negative_.max_key())
                              : (s.zero_count_ ? std::fabs(s.min_) < tiny : (s.min_ >= tiny && s.key(s.min_) <= s.positive_.min_key()));
      const bool max_ok = pos ? (s.max_ >= tiny && s.key(s.max_) == s.positive_.max_key())
                              : (s.zero_count_ ? std::fabs(s.max_) < tiny : (s.max_ <= -tiny && s.key(-s.max_) <= s.negative_.min_key()));
      if (!min_ok || !max_ok) r.fail(fmt::format("min {} or max {} does not match the buckets", s.min_, s.max_));
    }
    r.expect_end();
    return s;
  }

  /// Readable summary and buckets: {"relative_accuracy", "max_buckets", "count", "sum", "min", "max",
  /// "zero_count", "collapsed", "quantiles": {"p50", ...}, "positive"/"negative": {"first_key", "counts"}}
  /// (min/max/quantiles null when empty). The persistent state format is `to_bytes`.
  nlohmann::json to_json() const {
    auto num = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
    auto store = [](const detail::BucketStore& st) {
      nlohmann::json counts = nlohmann::json::array();
      for (std::int64_t k = st.min_key(); !st.empty() && k <= st.max_key(); ++k) counts.push_back(st.at(k));
      return nlohmann::json{{"first_key", st.empty() ? 0 : st.min_key()}, {"counts", std::move(counts)}};
    };
    nlohmann::json q = nlohmann::json::object();
    static constexpr std::pair<const char*, double> kQuantiles[] = {{"p50", 0.5}, {"p90", 0.9}, {"p95", 0.95}, {"p99", 0.99}, {"p999", 0.999}};
    for (const auto& [name, p] : kQuantiles) q[name] = num(quantile(p));
    return {{"relative_accuracy", params_.relative_accuracy}, {"max_buckets", params_.max_buckets},
            {"count", count_}, {"sum", sum()}, {"min", num(min())}, {"max", num(max())},
            {"zero_count", zero_count_}, {"collapsed", collapsed()}, {"quantiles", std::move(q)},
            {"positive", store(positive_)}, {"negative", store(negative_)}};
  }

  /// Same parameters and the same summarised multiset (bucket counts, min, max, exact sum).
  friend bool operator==(const QuantileSketch& a, const QuantileSketch& b) noexcept {
    return a.params_.relative_accuracy == b.params_.relative_accuracy && a.params_.max_buckets == b.params_.max_buckets &&
           a.count_ == b.count_ && a.zero_count_ == b.zero_count_ && (a.count_ == 0 || (a.min_ == b.min_ && a.max_ == b.max_)) &&
           a.sum_ == b.sum_ && a.positive_ == b.positive_ && a.negative_ == b.negative_;
  }
  friend bool operator!=(const QuantileSketch& a, const QuantileSketch& b) noexcept { return !(a == b); }

  /// Bucket key of |v| (v >= the smallest normal double).
  std::int64_t key(double abs_v) const noexcept {
    return static_cast<std::int64_t>(std::ceil(std::log(abs_v) * inv_ln_gamma_));
  }
  /// Representative value of bucket `k`: 2 gamma^k / (gamma + 1).
  double value_of(std::int64_t k) const noexcept {
    return std::exp(static_cast<double>(k) * ln_gamma_) * (2 / (gamma_ + 1));
  }

 private:
  static constexpr std::uint8_t kFormatVersion = 1;

  Params params_;
  double gamma_, ln_gamma_, inv_ln_gamma_;
  detail::BucketStore positive_, negative_;
  std::uint64_t zero_count_ = 0, count_ = 0;
  double min_ = 0, max_ = 0;
  detail::ExactSum sum_;
};

}  // namespace promptlearn::monitor
