#pragma once
/// @file Seeded random source; the only randomness promptlearn uses.
#include <array>
#include <cstdint>
#include <random>
#include <string>

namespace promptlearn {

/// A seeded 64-bit Mersenne Twister with the few draws the library needs.
/// Thread-safety: none; give each thread its own Rng.
class Rng {
 public:
  explicit Rng(std::uint64_t seed = 42) : engine_(seed) {}

  /// Uniform double in [0, 1).
  double uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(engine_); }
  /// Uniform double in [lo, hi).
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(engine_); }
  /// Uniform integer in [lo, hi] (both inclusive).
  std::int64_t uniform_int(std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(engine_);
  }
  /// Standard normal draw scaled to N(mean, sd^2).
  double normal(double mean = 0.0, double sd = 1.0) { return std::normal_distribution<double>(mean, sd)(engine_); }
  /// True with probability p.
  bool bernoulli(double p) { return uniform() < p; }
  /// Raw 64 random bits.
  std::uint64_t next_u64() { return engine_(); }

  /// A random RFC 4122 version-4 UUID in lowercase canonical form.
  std::string uuid_v4() {
    std::uint64_t hi = engine_(), lo = engine_();
    hi = (hi & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // version 4
    lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10xx
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s(36, '-');
    int pos = 0;
    for (int i = 0; i < 32; ++i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
      std::uint64_t word = i < 16 ? hi : lo;
      int shift = 60 - 4 * (i % 16);
      s[pos++] = kHex[(word >> shift) & 0xF];
    }
    return s;
  }

  /// The underlying engine, for std distributions.
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

}  // namespace promptlearn
