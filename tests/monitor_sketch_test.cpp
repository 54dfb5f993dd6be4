// QuantileSketch (DDSketch): accuracy against exact order statistics, exact merging, the binary format
// and its validation under fuzzing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "promptlearn/monitor/sketch.hpp"

using promptlearn::ConfigError;
using promptlearn::ValidationError;
using promptlearn::monitor::QuantileSketch;

namespace {

constexpr double kQs[] = {0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0};

std::vector<double> draw(const std::string& dist, std::size_t n, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<double> v(n);
  std::lognormal_distribution<double> logn(3.0, 1.2);
  std::exponential_distribution<double> expo(1.0 / 250.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> norm(0.0, 50.0);
  for (double& x : v) {
    if (dist == "lognormal") x = logn(g);
    else if (dist == "pareto") x = 10.0 * std::pow(1.0 - u(g), -1.0 / 1.2);  // x_m = 10, shape 1.2: heavy tail
    else if (dist == "exponential") x = expo(g);
    else if (dist == "mixture") x = u(g) < 0.97 ? logn(g) : 5000.0 * std::pow(1.0 - u(g), -1.0 / 0.8);  // infinite-mean tail
    else if (dist == "signed") x = u(g) < 0.05 ? 0.0 : norm(g);  // negatives, zeros and positives
  }
  return v;
}

/// The 0-based order statistic the sketch estimates: x_(floor(q (n - 1))).
double exact_quantile(std::vector<double> v, double q) {
  const auto k = static_cast<std::size_t>(std::floor(q * static_cast<double>(v.size() - 1)));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

QuantileSketch sketch_of(const std::vector<double>& v, QuantileSketch::Params p = {}) {
  QuantileSketch s(p);
  for (double x : v) s.add(x);
  return s;
}

}  // namespace

TEST_CASE("sketch: every quantile of 10^6 skewed values is within alpha of the exact order statistic", "[monitor][sketch]") {
  const std::string dist = GENERATE(as<std::string>{}, "lognormal", "pareto", "exponential", "mixture", "signed");
  const std::vector<double> values = draw(dist, 1000000, 7);
  const QuantileSketch s = sketch_of(values);
  const double alpha = s.relative_accuracy();
  REQUIRE(s.count() == values.size());
  REQUIRE_FALSE(s.collapsed());
  for (double q : kQs) {
    const double exact = exact_quantile(values, q);
    const double est = s.quantile(q);
    INFO(dist << " q=" << q << " exact=" << exact << " sketch=" << est);
    // alpha is the bound in exact arithmetic; 1e-12 allows for the rounding of log() at a bucket edge.
    CHECK(std::fabs(est - exact) <= (alpha + 1e-12) * std::fabs(exact));
  }
  CHECK(s.min() == *std::min_element(values.begin(), values.end()));
  CHECK(s.max() == *std::max_element(values.begin(), values.end()));
  long double ref = 0;
  for (double x : values) ref += x;
  CHECK(s.sum() == Approx(static_cast<double>(ref)).epsilon(1e-12));
  // The buckets needed: log_gamma(max / min) + 1, small for latencies.
  INFO("bytes " << s.to_bytes().size());
  CHECK(s.to_bytes().size() < 12000);
}

TEST_CASE("sketch: a smaller alpha is honoured too", "[monitor][sketch]") {
  const std::vector<double> values = draw("lognormal", 200000, 11);
  for (double alpha : {0.001, 0.05}) {
    const QuantileSketch s = sketch_of(values, {alpha, 65536});
    for (double q : kQs) CHECK(std::fabs(s.quantile(q) - exact_quantile(values, q)) <= (alpha + 1e-12) * exact_quantile(values, q));
  }
}

TEST_CASE("sketch: merging random parts equals sketching the whole, byte for byte, in any order", "[monitor][sketch]") {
  const std::string dist = GENERATE(as<std::string>{}, "mixture", "signed");
  const std::vector<double> values = draw(dist, 300000, 3);
  const QuantileSketch whole = sketch_of(values);
  std::mt19937_64 g(5);
  const std::size_t k = 7;
  std::vector<QuantileSketch> parts(k);
  for (double x : values) parts[std::uniform_int_distribution<std::size_t>(0, k - 1)(g)].add(x);

  QuantileSketch merged;
  std::vector<std::size_t> order(k);
  for (std::size_t i = 0; i < k; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), g);
  for (std::size_t i : order) merged.merge(parts[i]);
  CHECK(merged == whole);
  CHECK(merged.to_bytes() == whole.to_bytes());
  CHECK(merged.sum() == whole.sum());  // the exact accumulator makes the sum order-independent
  for (double q : kQs) CHECK(merged.quantile(q) == whole.quantile(q));

  // Associativity and commutativity on three parts.
  QuantileSketch ab = parts[0], bc = parts[1], ba = parts[1];
  ab.merge(parts[1]);
  ab.merge(parts[2]);  // (a + b) + c
  bc.merge(parts[2]);
  QuantileSketch a_bc = parts[0];
  a_bc.merge(bc);      // a + (b + c)
  ba.merge(parts[0]);
  ba.merge(parts[2]);  // (b + a) + c
  CHECK(ab.to_bytes() == a_bc.to_bytes());
  CHECK(ab.to_bytes() == ba.to_bytes());

  // Merging an empty sketch changes nothing.
  QuantileSketch same = whole;
  same.merge(QuantileSketch{});
  CHECK(same.to_bytes() == whole.to_bytes());
}

TEST_CASE("sketch: the bucket cap collapses the lowest buckets deterministically", "[monitor][sketch]") {
  // 1e-6 .. 1e6 needs log(1e12)/log(1.0202) ~ 1383 buckets; a cap of 256 collapses the lowest.
  std::mt19937_64 g(9);
  std::vector<double> values(100000);
  for (double& x : values) x = std::pow(10.0, std::uniform_real_distribution<double>(-6, 6)(g));
  const QuantileSketch::Params p{0.01, 256};
  const QuantileSketch whole = sketch_of(values, p);
  CHECK(whole.collapsed());
  // The top 256 buckets span a factor gamma^255 ~ 160: quantiles above max / 150 keep the guarantee.
  for (double q : {0.9, 0.95, 0.99, 0.999}) {
    const double exact = exact_quantile(values, q);
    REQUIRE(exact > whole.max() / 150);
    CHECK(std::fabs(whole.quantile(q) - exact) <= (0.01 + 1e-12) * exact);
  }
  // Collapsed: the median (in the collapsed range) is over-estimated as the lowest kept bucket's value.
  CHECK(whole.quantile(0.5) > 100 * exact_quantile(values, 0.5));
  CHECK(whole.quantile(0.5) == Approx(whole.max() / std::pow(1.01 / 0.99, 255)).epsilon(0.03));
  CHECK(whole.quantile(0.0) == whole.min());

  std::vector<QuantileSketch> parts(4, QuantileSketch(p));
  for (std::size_t i = 0; i < values.size(); ++i) parts[(i * 7919) % 4].add(values[i]);
  QuantileSketch merged(p);
  for (int i = 3; i >= 0; --i) merged.merge(parts[static_cast<std::size_t>(i)]);
  CHECK(merged.to_bytes() == whole.to_bytes());
  // Sorted input (ascending keys: collapses on nearly every add) gives the same state too.
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sketch_of(sorted, p).to_bytes() == whole.to_bytes());
  std::reverse(sorted.begin(), sorted.end());
  CHECK(sketch_of(sorted, p).to_bytes() == whole.to_bytes());
  CHECK(QuantileSketch::from_bytes(whole.to_bytes()) == whole);
}

TEST_CASE("sketch: basic statistics, zeros, negatives and weights", "[monitor][sketch]") {
  QuantileSketch s;
  CHECK(s.count() == 0);
  CHECK(std::isnan(s.quantile(0.5)));
  CHECK(std::isnan(s.min()));
  CHECK(std::isnan(s.mean()));
  CHECK(s.sum() == 0);
  s.add(-4.0);
  s.add(0.0, 2);
  s.add(10.0, 3);
  CHECK(s.count() == 6);
  CHECK(s.zero_count() == 2);
  CHECK(s.sum() == 26.0);
  CHECK(s.mean() == Approx(26.0 / 6));
  CHECK(s.min() == -4.0);
  CHECK(s.max() == 10.0);
  CHECK(s.quantile(0) == -4.0);
  CHECK(s.quantile(0.2) == 0.0);                       // rank 1
  CHECK(s.quantile(0.4) == 0.0);                       // rank 2
  CHECK(s.quantile(0.6) == Approx(10.0).epsilon(0.01));  // rank 3
  CHECK(s.quantile(1) == 10.0);
  s.add(5.0, 0);  // a zero count is a no-op
  CHECK(s.count() == 6);
}

TEST_CASE("sketch: the sum is exact whatever the order", "[monitor][sketch]") {
  QuantileSketch a, b;
  for (double x : {1e100, 1.0, -1e100, 1e-300, 3.5}) a.add(x);
  for (double x : {3.5, -1e100, 1e-300, 1.0, 1e100}) b.add(x);
  CHECK(a.sum() == 4.5);  // 4.5 + 1e-300 rounds to 4.5
  CHECK(a.to_bytes() == b.to_bytes());
  QuantileSketch c;
  c.add(0.1, 10);
  CHECK(c.sum() == 10 * 0.1);  // exact 10 x 0.1000000000000000055511151231257827 rounded once
  QuantileSketch d;
  d.add(-std::numeric_limits<double>::max(), 3);
  CHECK(d.sum() == -std::numeric_limits<double>::infinity());
  d.add(std::numeric_limits<double>::max(), 2);
  CHECK(d.sum() == -std::numeric_limits<double>::max());
  QuantileSketch e;
  e.add(std::numeric_limits<double>::denorm_min(), 5);
  CHECK(e.sum() == 5 * std::numeric_limits<double>::denorm_min());
  CHECK(e.zero_count() == 5);
}

TEST_CASE("sketch: errors name the field and value", "[monitor][sketch]") {
  QuantileSketch s;
  CHECK_THROWS_MATCHES(s.add(std::nan("")), ValidationError, Catch::Message("value: nan is not finite"));
  CHECK_THROWS_MATCHES(s.add(std::numeric_limits<double>::infinity()), ValidationError, Catch::Message("value: inf is not finite"));
  CHECK_THROWS_MATCHES(s.quantile(1.5), ConfigError, Catch::Message("q: 1.5 is outside [0, 1]"));
  CHECK_THROWS_AS(s.quantile(std::nan("")), ConfigError);
  CHECK_THROWS_MATCHES(QuantileSketch(0.0), ConfigError, Catch::Message("relative_accuracy: 0 is outside [1e-9, 1)"));
  CHECK_THROWS_MATCHES(QuantileSketch(0.01, 4), ConfigError, Catch::Message("max_buckets: 4 is outside [8, 65536]"));
  QuantileSketch other(0.02);
  other.add(1);
  CHECK_THROWS_AS(s.merge(other), ConfigError);
  s.add(1, std::numeric_limits<std::uint64_t>::max());
  CHECK_THROWS_AS(s.add(1), ValidationError);
  CHECK(s.count() == std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("sketch: to_bytes / from_bytes round trip", "[monitor][sketch]") {
  for (const char* dist : {"lognormal", "signed", "mixture"}) {
    const QuantileSketch s = sketch_of(draw(dist, 50000, 21));
    const std::string bytes = s.to_bytes();
    const QuantileSketch t = QuantileSketch::from_bytes(bytes);
    CHECK(t == s);
    CHECK(t.to_bytes() == bytes);
    CHECK(t.sum() == s.sum());
    for (double q : kQs) CHECK(t.quantile(q) == s.quantile(q));
    // The restored sketch keeps working: adding the same value to both keeps them equal.
    QuantileSketch s2 = s, t2 = t;
    s2.add(123.0);
    t2.add(123.0);
    CHECK(s2.to_bytes() == t2.to_bytes());
  }
  const QuantileSketch empty;
  CHECK(QuantileSketch::from_bytes(empty.to_bytes()) == empty);
  CHECK(empty.to_bytes().size() < 20);
  const auto j = sketch_of({1.0, 2.0, 3.0}).to_json();
  CHECK(j.at("count") == 3);
  CHECK(j.at("sum") == 6.0);
  CHECK(j.at("quantiles").at("p50").get<double>() == Approx(2.0).epsilon(0.01));
  CHECK(QuantileSketch{}.to_json().at("min").is_null());
}

TEST_CASE("sketch: from_bytes names what is wrong", "[monitor][sketch]") {
  QuantileSketch s;
  s.add(5.0);
  const std::string good = s.to_bytes();
  auto message = [](const std::string& b) {
    try {
      QuantileSketch::from_bytes(b);
    } catch (const ValidationError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(message(""), Catch::Contains("sketch: truncated while reading version"));
  CHECK_THAT(message(std::string(1, '\x02') + good.substr(1)), Catch::Contains("version 2 is not supported"));
  CHECK_THAT(message(good.substr(0, good.size() - 3)), Catch::Contains("truncated while reading max"));
  CHECK_THAT(message(good + "x"), Catch::Contains("1 trailing bytes"));
  std::string bad_alpha = good;
  bad_alpha[8] = '\x7f';  // top byte of alpha: a huge value
  CHECK_THAT(message(bad_alpha), Catch::Contains("relative_accuracy"));
  // Two counts of 2^63 overflow the total.
  QuantileSketch big;
  big.add(1.0, std::uint64_t{1} << 63);
  big.add(-1.0, (std::uint64_t{1} << 63) - 1);
  std::string overflow = big.to_bytes();
  // The negative store's single count 2^63 - 1 (9 varint bytes) becomes 2^63 by rewriting it.
  const std::string from = [] { std::string o; promptlearn::monitor::detail::put_varint(o, (std::uint64_t{1} << 63) - 1); return o; }();
  const std::string to = [] { std::string o; promptlearn::monitor::detail::put_varint(o, std::uint64_t{1} << 63); return o; }();
  const auto at = overflow.rfind(from);
  REQUIRE(at != std::string::npos);
  overflow.replace(at, from.size(), to);
  CHECK_THAT(message(overflow), Catch::Contains("overflow"));
}

TEST_CASE("sketch: from_bytes on random and mutated bytes throws ValidationError or succeeds", "[monitor][sketch][fuzz]") {
  std::mt19937_64 g(1234);
  std::vector<std::string> seeds;
  for (const char* dist : {"lognormal", "signed", "pareto"}) {
    auto v = draw(dist, 2000, 77);
    seeds.push_back(sketch_of(v).to_bytes());
    seeds.push_back(sketch_of(v, {0.05, 16}).to_bytes());
  }
  seeds.push_back(QuantileSketch{}.to_bytes());
  std::uniform_int_distribution<int> byte(0, 255);
  std::size_t ok = 0, rejected = 0;
  auto attempt = [&](const std::string& b) {
    try {
      const QuantileSketch s = QuantileSketch::from_bytes(b);
      // Whatever was accepted is a valid sketch: it answers, and re-encodes to itself.
      for (double q : kQs) (void)s.quantile(q);
      (void)s.sum();
      REQUIRE(QuantileSketch::from_bytes(s.to_bytes()) == s);
      ++ok;
    } catch (const ValidationError&) {
      ++rejected;
    }
  };
  for (int i = 0; i < 20000; ++i) {
    std::string b(static_cast<std::size_t>(std::uniform_int_distribution<int>(0, 64)(g)), '\0');
    for (char& c : b) c = static_cast<char>(byte(g));
    if (!b.empty() && i % 2) b[0] = 1;  // get past the version byte half the time
    attempt(b);
  }
  for (int i = 0; i < 60000; ++i) {
    std::string b = seeds[static_cast<std::size_t>(i) % seeds.size()];
    const int edits = std::uniform_int_distribution<int>(1, 4)(g);
    for (int e = 0; e < edits && !b.empty(); ++e) {
      const std::size_t at = std::uniform_int_distribution<std::size_t>(0, b.size() - 1)(g);
      switch (std::uniform_int_distribution<int>(0, 3)(g)) {
        case 0: b[at] = static_cast<char>(byte(g)); break;
        case 1: b[at] = static_cast<char>(b[at] ^ (1 << std::uniform_int_distribution<int>(0, 7)(g))); break;
        case 2: b.erase(at, 1); break;
        default: b.insert(at, 1, static_cast<char>(byte(g))); break;
      }
    }
    if (i % 5 == 0) b.resize(std::uniform_int_distribution<std::size_t>(0, b.size())(g));
    attempt(b);
  }
  INFO("accepted " << ok << ", rejected " << rejected);
  CHECK(rejected > 70000);
  CHECK(ok > 100);  // some mutations (a count changed) are valid sketches
}
