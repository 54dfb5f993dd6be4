#include <catch2/catch.hpp>

#include <cmath>

#include "promptlearn/optimize/pareto.hpp"

using namespace promptlearn;
using namespace promptlearn::optimize;

namespace {

using Points = std::vector<std::vector<double>>;

// ZDT1 and ZDT2 (Zitzler, Deb & Thiele 2000), n variables in [0, 1]; Pareto-optimal when x2..xn = 0
// (g = 1), with f2 = 1 - sqrt(f1) (ZDT1, convex) and f2 = 1 - f1^2 (ZDT2, non-convex).
std::vector<double> zdt(const Eigen::VectorXd& x, int which) {
  const double f1 = x(0);
  const double g = 1.0 + 9.0 * x.tail(x.size() - 1).sum() / static_cast<double>(x.size() - 1);
  const double r = f1 / g;
  return {f1, g * (which == 1 ? 1.0 - std::sqrt(r) : 1.0 - r * r)};
}

// The true front sampled at 100001 points, spacing at most ~1.4e-5 along the curve, so the sampling adds
// at most ~7e-6 to a distance.
Points zdt_reference(int which) {
  Points ref;
  for (int i = 0; i <= 100000; ++i) {
    const double f1 = i / 100000.0;
    ref.push_back({f1, which == 1 ? 1.0 - std::sqrt(f1) : 1.0 - f1 * f1});
  }
  return ref;
}

}  // namespace

TEST_CASE("dominance and the fast non-dominated sort on a hand case", "[optimize][pareto]") {
  CHECK(dominates({1, 2}, {1, 3}));
  CHECK_FALSE(dominates({1, 3}, {1, 3}));  // equal points do not dominate
  CHECK_FALSE(dominates({0, 4}, {1, 3}));
  CHECK_FALSE(dominates({1, 2}, {1, 2, 3}));
  //           0       1       2       3       4       5       6 (= 0)
  Points f{{1, 5}, {2, 3}, {4, 1}, {3, 4}, {5, 5}, {2, 2}, {1, 5}};
  // (2,2) dominates (2,3), which dominates (3,4), which dominates (5,5).
  const auto fronts = non_dominated_sort(f);
  REQUIRE(fronts.size() == 4);
  CHECK(fronts[0] == std::vector<std::size_t>{0, 2, 5, 6});
  CHECK(fronts[1] == std::vector<std::size_t>{1});
  CHECK(fronts[2] == std::vector<std::size_t>{3});
  CHECK(fronts[3] == std::vector<std::size_t>{4});
  CHECK(pareto_front(f) == fronts[0]);
  CHECK(non_dominated_sort({}).empty());
  // Three objectives: templates over (-quality, latency, length).
  Points t{{-0.9, 300, 800}, {-0.8, 120, 400}, {-0.8, 150, 400}, {-0.5, 100, 900}, {-0.9, 300, 900}};
  // 2 is dominated by 1 (same quality and length, slower), 4 by 0 (longer); 3 is the fastest.
  CHECK(pareto_front(t) == std::vector<std::size_t>{0, 1, 3});
  const auto pts = pareto_points(t);
  REQUIRE(pts.size() == 3);
  CHECK(pts[2].index == 3);
  CHECK(pts[2].objectives == t[3]);
}

TEST_CASE("crowding distance against hand-computed values", "[optimize][pareto]") {
  const double inf = std::numeric_limits<double>::infinity();
  Points f{{0, 5}, {1, 2}, {3, 1}, {4, 0}, {9, 9}};
  // f1 range 4: (1,2) gets (3-0)/4 = 0.75, (3,1) gets (4-1)/4 = 0.75.
  // f2 range 5 (sorted 0,1,2,5): (3,1) gets (2-0)/5 = 0.4, (1,2) gets (5-1)/5 = 0.8.
  const auto d = crowding_distance(f, {3, 1, 0, 2});
  REQUIRE(d.size() == 4);
  CHECK(d[0] == inf);
  CHECK(d[1] == Approx(1.55));
  CHECK(d[2] == inf);
  CHECK(d[3] == Approx(1.15));
  // Front {(1,5), (4,1), (2,2)}: the middle point gets 3/3 + 4/4 = 2.
  Points g{{1, 5}, {4, 1}, {2, 2}};
  const auto e = crowding_distance(g, {0, 1, 2});
  CHECK(e[0] == inf);
  CHECK(e[1] == inf);
  CHECK(e[2] == Approx(2.0));
  CHECK(crowding_distance(g, {0, 1}) == std::vector<double>{inf, inf});
  // A constant objective contributes nothing.
  Points h{{0, 1}, {1, 1}, {3, 1}};
  CHECK(crowding_distance(h, {0, 1, 2})[1] == Approx(1.0));
  try {
    crowding_distance(g, {0, 7});
    FAIL("expected ValidationError");
  } catch (const ValidationError& ex) {
    CHECK(ex.path() == "front[1]");
  }
}

TEST_CASE("objective errors name the point", "[optimize][pareto]") {
  auto path_of = [](const Points& f) {
    try {
      non_dominated_sort(f);
    } catch (const ValidationError& e) {
      return e.path();
    }
    return std::string("no error");
  };
  CHECK(path_of({{1, 2}, {1, 2, 3}}) == "objectives[1]");
  CHECK(path_of({{1, 2}, {1, std::nan("")}}) == "objectives[1][1]");
  auto key_of = [](Nsga2Params p) {
    try {
      p.validate();
    } catch (const ConfigError& e) {
      return e.key();
    }
    return std::string("no error");
  };
  Nsga2Params p;
  CHECK(key_of(p) == "no error");
  p.population = 3;
  CHECK(key_of(p) == "nsga2.population");
  p = {};
  p.crossover_rate = 2;
  CHECK(key_of(p) == "nsga2.crossover_rate");
  p = {};
  p.mutation_eta = 0;
  CHECK(key_of(p) == "nsga2.mutation_eta");
  Nsga2Params q = nlohmann::json{{"generations", 10}}.get<Nsga2Params>();
  CHECK(q.generations == 10);
  CHECK(q.population == 100);
}

TEST_CASE("spread and generational distance on constructed fronts", "[optimize][pareto]") {
  // An evenly spaced front that reaches both extremes has spread 0 and distance 0 to itself.
  Points even;
  for (int i = 0; i <= 10; ++i) even.push_back({i / 10.0, 1 - i / 10.0});
  CHECK(spread(even, {0, 1}, {1, 0}) == Approx(0.0).margin(1e-12));
  CHECK(generational_distance(even, even) == 0.0);
  // Shifted by (0.01, 0.01): every point is 0.01 * sqrt 2 from the line's closest sample... of the
  // sampled reference, the nearest sample is the same index: distance sqrt(2) * 0.01.
  Points shifted;
  for (const auto& p : even) shifted.push_back({p[0] + 0.01, p[1] + 0.01});
  CHECK(generational_distance(shifted, even) == Approx(0.01 * std::sqrt(2.0)));
  // Missing the extremes: d_f = d_l = 0.1 * sqrt 2, even spacing -> (d_f + d_l) / (d_f + d_l + 8 d).
  Points inner(even.begin() + 1, even.end() - 1);
  const double df = 0.1 * std::sqrt(2.0), dm = 0.1 * std::sqrt(2.0);
  CHECK(spread(inner, {0, 1}, {1, 0}) == Approx(2 * df / (2 * df + 8 * dm)));
}

TEST_CASE("NSGA-II on ZDT1 and ZDT2 reaches the analytic front", "[optimize][pareto]") {
  const Eigen::VectorXd lo = Eigen::VectorXd::Zero(30), hi = Eigen::VectorXd::Ones(30);
  for (int which : {1, 2}) {
    INFO("ZDT" << which);
    const auto ref = zdt_reference(which);
    Nsga2Params p;  // population 100, 250 generations as in Deb et al. 2002
    const auto r = nsga2([&](const Eigen::VectorXd& x) { return zdt(x, which); }, lo, hi, p);
    CHECK(r.evaluations == 100u * 251u);
    REQUIRE(r.front_f.size() >= 90);
    REQUIRE(r.front_x.size() == r.front_f.size());
    for (std::size_t i = 0; i < r.front_f.size(); ++i) {
      CHECK(r.front_f[i] == zdt(r.front_x[i], which));
      if (i) CHECK(r.front_f[i][0] >= r.front_f[i - 1][0]);
    }
    const double gd = generational_distance(r.front_f, ref);
    const double delta = spread(r.front_f, {0, 1}, {1, 0});
    WARN("ZDT" << which << ": front " << r.front_f.size() << " points, GD " << gd << ", spread " << delta);
    CHECK(gd < 0.01);
    // Deb et al. (2002, Table III) report spread 0.39 (ZDT1) and 0.43 (ZDT2) for real-coded NSGA-II;
    // a uniform random scatter along the front gives about 1, so < 0.6 separates "spread out" from not.
    CHECK(delta < 0.6);
    CHECK(r.front_f.front()[0] < 0.01);
    CHECK(r.front_f.back()[0] > 0.99);
  }
}

TEST_CASE("NSGA-II on Schaffer's problem, determinism and seeds", "[optimize][pareto]") {
  // Schaffer (1985): f1 = x^2, f2 = (x - 2)^2, x in [-10, 10]; Pareto set x in [0, 2].
  auto schaffer = [](const Eigen::VectorXd& x) { return std::vector<double>{x(0) * x(0), (x(0) - 2) * (x(0) - 2)}; };
  const Eigen::VectorXd lo = Eigen::VectorXd::Constant(1, -10), hi = Eigen::VectorXd::Constant(1, 10);
  Nsga2Params p;
  p.generations = 60;
  const auto r = nsga2(schaffer, lo, hi, p);
  for (const auto& x : r.front_x) {
    CHECK(x(0) >= -1e-3);
    CHECK(x(0) <= 2 + 1e-3);
  }
  Points ref;
  for (int i = 0; i <= 100000; ++i) {
    const double x = 2.0 * i / 100000.0;
    ref.push_back({x * x, (x - 2) * (x - 2)});
  }
  CHECK(generational_distance(r.front_f, ref) < 0.01);
  const auto again = nsga2(schaffer, lo, hi, p);
  CHECK(again.front_f == r.front_f);
  p.seed = 7;
  CHECK(nsga2(schaffer, lo, hi, p).front_f != r.front_f);
  // An objective function that changes its output length is an error naming "objectives".
  int calls = 0;
  try {
    nsga2([&](const Eigen::VectorXd& x) {
      return ++calls > 5 ? std::vector<double>{x(0)} : std::vector<double>{x(0), x(0)};
    }, lo, hi, p);
    FAIL("expected ValidationError");
  } catch (const ValidationError& e) {
    CHECK(e.path() == "objectives");
  }
}
