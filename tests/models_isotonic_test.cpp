// Isotonic regression: hand-checked pool-adjacent-violators cases, interpolation and clipping as
// scikit-learn's IsotonicRegression(out_of_bounds="clip"), properties of the fit, JSON, errors.
#include <catch2/catch.hpp>

#include <vector>

#include "promptlearn/core/rng.hpp"
#include "promptlearn/models/isotonic.hpp"

using namespace promptlearn;
using namespace promptlearn::models;

namespace {
Eigen::VectorXd vec(std::vector<double> v) { return Eigen::Map<Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size())); }

void check_equal(const Eigen::VectorXd& got, const std::vector<double>& expected) {
  REQUIRE(got.size() == static_cast<Eigen::Index>(expected.size()));
  for (std::size_t i = 0; i < expected.size(); ++i) CHECK(got(static_cast<Eigen::Index>(i)) == Approx(expected[i]).margin(1e-12));
}
}  // namespace

TEST_CASE("pool_adjacent_violators on hand-checked sequences", "[models][isotonic]") {
  const Eigen::VectorXd one3 = Eigen::VectorXd::Ones(3);
  check_equal(pool_adjacent_violators(vec({1, 2, 3}), one3), {1, 2, 3});        // already monotone
  check_equal(pool_adjacent_violators(vec({1, 3, 2}), one3), {1, 2.5, 2.5});    // one violation
  check_equal(pool_adjacent_violators(vec({3, 2, 1}), one3), {2, 2, 2});        // all pooled
  // 4,5,1: 5>1 pool -> 3 (w 2); 4>3 pool -> (4+6)/3; then 6 stays.
  check_equal(pool_adjacent_violators(vec({4, 5, 1, 6}), Eigen::VectorXd::Ones(4)), {10.0 / 3, 10.0 / 3, 10.0 / 3, 6});
  check_equal(pool_adjacent_violators(vec({1, 3, 2, 4, 3.5, 5}), Eigen::VectorXd::Ones(6)), {1, 2.5, 2.5, 3.75, 3.75, 5});
  // Weighted: (1*3 + 3*1) / 4.
  check_equal(pool_adjacent_violators(vec({3, 1}), vec({1, 3})), {1.5, 1.5});
  // A violation pooled back through an earlier block: 0, 2, 1(w 3) -> 2 and 1 pool to 1.25 (w 4).
  check_equal(pool_adjacent_violators(vec({0, 2, 1}), vec({1, 1, 3})), {0, 1.25, 1.25});
}

TEST_CASE("pool_adjacent_violators keeps the weighted mean and is monotone", "[models][isotonic]") {
  Rng rng(3);
  for (int rep = 0; rep < 20; ++rep) {
    const int n = 1 + static_cast<int>(rng.uniform_int(0, 60));
    Eigen::VectorXd y(n), w(n);
    for (int i = 0; i < n; ++i) {
      y(i) = rng.normal(0.05 * i, 1.0);
      w(i) = rng.uniform(0.1, 3.0);
    }
    const Eigen::VectorXd f = pool_adjacent_violators(y, w);
    CHECK(f.dot(w) == Approx(y.dot(w)).margin(1e-9));  // each block's value is its weighted mean
    for (int i = 1; i < n; ++i) CHECK(f(i) >= f(i - 1) - 1e-12);
    // Optimality: moving along a direction that keeps the fit non-decreasing (a constant shift either
    // way, or a non-negative step up from index j on) never lowers the weighted squared error.
    const double sse = (w.array() * (y - f).array().square()).sum();
    auto sse_of = [&](const Eigen::VectorXd& g) { return (w.array() * (y - g).array().square()).sum(); };
    CHECK(sse_of(f.array() + 1e-3) >= sse - 1e-12);
    CHECK(sse_of(f.array() - 1e-3) >= sse - 1e-12);
    for (int j = 1; j < n; ++j) {
      Eigen::VectorXd g = f;
      g.tail(n - j).array() += 1e-3;
      CHECK(sse_of(g) >= sse - 1e-12);
    }
  }
}

TEST_CASE("IsotonicRegression interpolates between blocks and clips like scikit-learn", "[models][isotonic]") {
  // Expected values from scikit-learn 1.2 IsotonicRegression(out_of_bounds="clip") on these points, and
  // by hand: sorted by x the targets are 0,0,0,1,{1,0},1,1,0; PAV pools x >= 0.4 to 2/3; the knots are
  // (0.1, 0), (0.35, 0), (0.4, 2/3), (0.9, 2/3), so f(0.37) = 0.4 * 2/3.
  IsotonicRegression iso;
  iso.fit(vec({0.1, 0.4, 0.35, 0.8, 0.9, 0.2, 0.6, 0.6, 0.75}), vec({0, 1, 0, 1, 0, 0, 1, 0, 1}));
  CHECK(iso.knots_x() == std::vector<double>{0.1, 0.35, 0.4, 0.9});
  const std::vector<double> t = {0.0, 0.15, 0.3, 0.37, 0.5, 0.6, 0.7, 0.78, 0.85, 1.0};
  const std::vector<double> sk = {0.0, 0.0, 0.0, 0.26666666666666666, 2.0 / 3, 2.0 / 3, 2.0 / 3, 2.0 / 3, 2.0 / 3, 2.0 / 3};
  check_equal(iso.predict(vec(t)), sk);

  IsotonicRegression lin;
  lin.fit(vec({1, 2, 3, 4}), vec({1, 3, 2, 4}));  // fitted 1, 2.5, 2.5, 4
  CHECK(lin.predict(1.5) == Approx(1.75));
  CHECK(lin.predict(2.5) == Approx(2.5));
  CHECK(lin.predict(3.5) == Approx(3.25));
  CHECK(lin.predict(-5) == 1);  // clipped
  CHECK(lin.predict(50) == 4);

  // Equal x are merged first (weighted mean 0.5, weight 2), then pooled with the next point.
  IsotonicRegression ties;
  ties.fit(vec({1, 1, 2}), vec({0, 1, 0}));
  CHECK(ties.predict(1.0) == Approx(1.0 / 3));
  CHECK(ties.predict(2.0) == Approx(1.0 / 3));
  // Weights count as repeated points.
  IsotonicRegression weighted, repeated;
  weighted.fit(vec({1, 2, 3}), vec({0, 1, 0.2}), vec({1, 2, 1}));
  repeated.fit(vec({1, 2, 2, 3}), vec({0, 1, 1, 0.2}));
  for (double x : {0.5, 1.0, 1.7, 2.0, 2.5, 3.0}) CHECK(weighted.predict(x) == Approx(repeated.predict(x)));
  // A single point: constant.
  IsotonicRegression single;
  single.fit(vec({2}), vec({0.3}));
  CHECK(single.predict(-1) == 0.3);
  CHECK(single.predict(7) == 0.3);
}

TEST_CASE("IsotonicRegression round-trips through JSON and rejects malformed state", "[models][isotonic]") {
  IsotonicRegression iso;
  Rng rng(5);
  Eigen::VectorXd x(200), y(200);
  for (int i = 0; i < 200; ++i) {
    x(i) = rng.uniform();
    y(i) = rng.bernoulli(x(i)) ? 1 : 0;
  }
  iso.fit(x, y);
  const IsotonicRegression back = IsotonicRegression::from_json(nlohmann::json::parse(iso.to_json().dump()));
  for (double t = -0.1; t <= 1.1; t += 0.013) CHECK(back.predict(t) == iso.predict(t));

  nlohmann::json j = iso.to_json();
  j.erase("y");
  CHECK_THROWS_WITH(IsotonicRegression::from_json(j), "isotonic.y: is missing");
  j = {{"x", {1, 2}}, {"y", {0.5}}};
  CHECK_THROWS_WITH(IsotonicRegression::from_json(j), "isotonic.y: has 1 values for 2 values of x");
  j = {{"x", {2, 1}}, {"y", {0, 1}}};
  CHECK_THROWS_WITH(IsotonicRegression::from_json(j, "cal"), "cal.x[1]: 1 is not greater than 2");
  j = {{"x", {1, 2}}, {"y", {1, 0}}};
  CHECK_THROWS_WITH(IsotonicRegression::from_json(j), "isotonic.y[1]: 0 is less than 1");
  j = {{"x", {1, "a"}}, {"y", {1, 0}}};
  CHECK_THROWS_WITH(IsotonicRegression::from_json(j), "isotonic.x[1]: \"a\" is not a finite number");
  CHECK_THROWS_AS(IsotonicRegression::from_json(nlohmann::json::array()), ValidationError);
}

TEST_CASE("IsotonicRegression errors name the argument", "[models][isotonic]") {
  IsotonicRegression iso;
  CHECK_FALSE(iso.fitted());
  CHECK_THROWS_AS(iso.predict(0.5), Error);
  CHECK_THROWS_WITH(iso.fit(Eigen::VectorXd(0), Eigen::VectorXd(0)), "x: has no values");
  CHECK_THROWS_WITH(iso.fit(vec({1, 2}), vec({1})), "y: has 1 values for 2 values of x");
  CHECK_THROWS_WITH(iso.fit(vec({1, 2}), vec({1, std::nan("")})), "y[1]: nan is not a finite number");
  CHECK_THROWS_WITH(iso.fit(vec({1, 2}), vec({1, 2}), vec({1, 0})), "w[1]: 0 is not a positive finite weight");
  CHECK_THROWS_WITH(pool_adjacent_violators(vec({1, 2}), vec({1})), "w: has 1 weights for 2 values");
}
