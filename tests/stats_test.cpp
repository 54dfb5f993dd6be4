// Statistics primitives: streaming moments against the two-pass formulas, merge == union, and the
// distribution functions against values computed independently with mpmath at 50 digits
// (mp.dps = 50; ncdf, erfinv, betainc(regularized=True), bisection for t quantiles) and printed tables.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/core/stats.hpp"

using namespace promptlearn;

namespace {

struct TwoPass {
  double mean = 0, variance = 0;
};

TwoPass two_pass(const std::vector<double>& xs) {
  TwoPass r;
  for (double x : xs) r.mean += x;
  r.mean /= static_cast<double>(xs.size());
  for (double x : xs) r.variance += (x - r.mean) * (x - r.mean);
  r.variance /= static_cast<double>(xs.size() - 1);
  return r;
}

bool close_rel(double got, double want, double rel) { return std::fabs(got - want) <= rel * std::fabs(want); }

}  // namespace

TEST_CASE("RunningMoments matches the two-pass mean and variance", "[stats]") {
  Rng rng(7);
  std::vector<double> xs;
  RunningMoments m;
  // A large offset makes the naive sum-of-squares formula lose ~8 digits; Welford must not.
  for (int i = 0; i < 10000; ++i) {
    xs.push_back(1e6 + rng.normal(0, 3));
    m.add(xs.back());
  }
  TwoPass ref = two_pass(xs);
  CHECK(m.count() == 10000);
  CHECK(m.mean() == Approx(ref.mean).epsilon(1e-14));
  CHECK(m.variance() == Approx(ref.variance).epsilon(1e-9));
  CHECK(m.population_variance() == Approx(ref.variance * 9999.0 / 10000.0).epsilon(1e-9));
  CHECK(m.standard_error() == Approx(std::sqrt(ref.variance / 10000)).epsilon(1e-9));

  // Hand-checked: {1, 2, 4}: mean 7/3, deviations -4/3, -1/3, 5/3, M2 = (16 + 1 + 25) / 9 = 14/3, s^2 = 7/3.
  RunningMoments small;
  for (double x : {1.0, 2.0, 4.0}) small.add(x);
  CHECK(small.mean() == Approx(7.0 / 3));
  CHECK(small.m2() == Approx(14.0 / 3));
  CHECK(small.variance() == Approx(7.0 / 3));

  RunningMoments empty;
  CHECK(empty.mean() == 0);
  CHECK(empty.variance() == 0);
  CHECK(std::isinf(empty.standard_error()));
}

TEST_CASE("RunningMoments merge equals processing the union", "[stats]") {
  Rng rng(11);
  for (int split : {0, 1, 17, 500, 999, 1000}) {
    INFO("split " << split);
    RunningMoments a, b, all;
    for (int i = 0; i < 1000; ++i) {
      double x = rng.uniform(-5, 20) + (i < split ? 3.0 : 0.0);
      all.add(x);
      (i < split ? a : b).add(x);
    }
    RunningMoments merged = a;
    merged.merge(b);
    CHECK(merged.count() == all.count());
    CHECK(merged.mean() == Approx(all.mean()).epsilon(1e-13));
    CHECK(merged.m2() == Approx(all.m2()).epsilon(1e-12));
  }
}

TEST_CASE("RunningMoments JSON round-trips exactly and rejects bad state", "[stats]") {
  RunningMoments m;
  for (double x : {0.1, 0.7, 0.3333333333333333, 1.0}) m.add(x);
  nlohmann::json j = m;
  CHECK(nlohmann::json::parse(j.dump()).get<RunningMoments>() == m);
  CHECK_THROWS_AS(nlohmann::json({{"n", 3}, {"mean", 0.5}, {"m2", -1.0}}).get<RunningMoments>(), ValidationError);
  CHECK_THROWS_AS(nlohmann::json({{"n", 0}, {"mean", 0.5}, {"m2", 0.0}}).get<RunningMoments>(), ValidationError);
  CHECK_THROWS_AS(nlohmann::json({{"n", -1}, {"mean", 0.5}, {"m2", 0.0}}).get<RunningMoments>(), ValidationError);
  CHECK_THROWS_AS(nlohmann::json({{"mean", 0.5}}).get<RunningMoments>(), ValidationError);
}

TEST_CASE("normal cdf and quantile against mpmath and printed tables", "[stats]") {
  // Tables: Phi(1.96) = 0.9750021048, z_{0.975} = 1.959963985, z_{0.95} = 1.644853627.
  CHECK(normal_cdf(1.96) == Approx(0.9750021048).epsilon(1e-10));
  CHECK(normal_quantile(0.975) == Approx(1.959963985).epsilon(1e-9));
  struct Case {
    double x, phi;
  };
  for (Case c : {Case{-8, 6.2209605742717841235e-16}, Case{-5, 2.8665157187919391167e-7},
                 Case{-1.96, 0.024997895148220434137}, Case{-0.5, 0.30853753872598689636}, Case{0, 0.5},
                 Case{0.3, 0.61791142218895263731}, Case{1, 0.84134474606854294859},
                 Case{1.96, 0.97500210485177956586}, Case{3, 0.99865010196836990547},
                 Case{6, 0.99999999901341235496}}) {
    INFO("x = " << c.x);
    CHECK(close_rel(normal_cdf(c.x), c.phi, 1e-14));
    CHECK(close_rel(normal_sf(-c.x), c.phi, 1e-14));
  }
  struct QCase {
    double p, z;
  };
  for (QCase c : {QCase{1e-20, -9.2623400897984075737}, QCase{1e-10, -6.3613409024040562047},
                  QCase{0.001, -3.0902323061678135415}, QCase{0.025, -1.9599639845400542355},
                  QCase{0.05, -1.6448536269514727149}, QCase{0.2, -0.84162123357291420518},
                  QCase{0.8, 0.84162123357291420518}, QCase{0.95, 1.6448536269514727149},
                  QCase{0.975, 1.9599639845400542355}, QCase{0.999, 3.0902323061678135415},
                  QCase{0.9999999, 5.1993375822906610937}}) {
    INFO("p = " << c.p);
    // Near p = 1, 1 - p keeps only ~1e-17 / (1 - p) relative precision (the reference for 0.9999999 is
    // mpmath at the double nearest 0.9999999).
    CHECK(close_rel(normal_quantile(c.p), c.z, c.p > 0.99 ? 1e-11 : 1e-14));
  }
  CHECK(normal_quantile(0.5) == 0);
  CHECK(std::isinf(normal_quantile(0)));
  CHECK(normal_quantile(1e-300) < -37);
  // Round trip over the lower half, where normal_cdf(x) keeps full relative precision.
  for (double x = -37; x <= 0; x += 0.37) {
    INFO("x = " << x);
    CHECK(normal_quantile(normal_cdf(x)) == Approx(x).epsilon(1e-12).margin(1e-12));
  }
  CHECK_THROWS_AS(normal_quantile(1.5), ValidationError);
  CHECK_THROWS_AS(normal_quantile(std::nan("")), ValidationError);
}

TEST_CASE("incomplete beta closed forms", "[stats]") {
  for (double x : {0.0, 1e-9, 0.1, 0.37, 0.5, 0.9, 1.0}) {
    INFO("x = " << x);
    CHECK(incomplete_beta(1, 1, x) == Approx(x).margin(1e-15));
    CHECK(incomplete_beta(3.5, 1, x) == Approx(std::pow(x, 3.5)).margin(1e-14));
    CHECK(incomplete_beta(1, 4, x) == Approx(1 - std::pow(1 - x, 4)).margin(1e-14));
    // I_x(a, b) = 1 - I_{1-x}(b, a)
    CHECK(incomplete_beta(2.5, 7.25, x) == Approx(1 - incomplete_beta(7.25, 2.5, 1 - x)).margin(1e-14));
  }
  CHECK_THROWS_AS(incomplete_beta(0, 1, 0.5), ValidationError);
  CHECK_THROWS_AS(incomplete_beta(1, 1, 1.5), ValidationError);
}

TEST_CASE("Student t cdf against mpmath and printed tables", "[stats]") {
  // Table: t_{0.975, 10} = 2.228138852.
  CHECK(student_t_cdf(2.228138852, 10) == Approx(0.975).epsilon(1e-9));
  struct Case {
    double t, df, cdf;
  };
  for (Case c : {Case{2.228138852, 10, 0.97500000000058173765}, Case{-2.5, 3, 0.043853323504032773625},
                 Case{1.0, 1, 0.75}, Case{0.7, 2, 0.72180348768356725841}, Case{3.0, 4.5, 0.98280956605562018807},
                 Case{-1.2, 17.3, 0.12315760183508010956}, Case{12.0, 5, 0.99996455253741419239},
                 Case{-40, 2.5, 0.000070978171452466914564}, Case{2.0, 1000, 0.97711482675337417998},
                 Case{1.5, 1e5, 0.93319122023858470067}, Case{2.0, 1e6, 0.97724973307434039579},
                 Case{0.1, 0.5, 0.52683418943569679916}}) {
    INFO("t = " << c.t << ", df = " << c.df);
    double tol = c.df > 1e5 ? 1e-10 : 1e-13;
    CHECK(student_t_cdf(c.t, c.df) == Approx(c.cdf).margin(tol));
    CHECK(student_t_sf(-c.t, c.df) == Approx(c.cdf).margin(tol));
    CHECK(student_t_cdf(-c.t, c.df) == Approx(1 - c.cdf).margin(tol));
  }
  // Relative accuracy in the far tail.
  CHECK(close_rel(student_t_cdf(-40, 2.5), 0.000070978171452466914564, 1e-12));
  CHECK(student_t_cdf(1.3, std::numeric_limits<double>::infinity()) == Approx(normal_cdf(1.3)));
  CHECK_THROWS_AS(student_t_cdf(1, 0), ValidationError);
  CHECK_THROWS_AS(student_t_cdf(std::nan(""), 3), ValidationError);
}

TEST_CASE("Student t quantile against mpmath and round trips", "[stats]") {
  struct Case {
    double p, df, t;
  };
  for (Case c : {Case{0.975, 10, 2.2281388519862742245}, Case{0.975, 1, 12.706204736174693314},
                 Case{0.975, 2, 4.3026527297494617894}, Case{0.95, 3, 2.353363434801822899},
                 Case{0.995, 4.5, 4.2728239930112920077}, Case{0.025, 30, -2.0422724563012382836},
                 Case{0.999, 7.7, 4.575817071602102675}, Case{1e-8, 3, -479.52506957973828093},
                 Case{0.6, 12, 0.25903274567688700493}, Case{0.975, 1000, 1.9623390808264081039},
                 Case{0.9, 2.5, 1.730250928807176833}}) {
    INFO("p = " << c.p << ", df = " << c.df);
    CHECK(close_rel(student_t_quantile(c.p, c.df), c.t, 1e-12));
  }
  for (double df : {0.7, 1.0, 2.0, 3.0, 5.5, 29.0, 250.0, 4e4}) {
    for (double p : {1e-12, 1e-4, 0.01, 0.3, 0.5, 0.77, 0.99, 0.999999}) {
      INFO("p = " << p << ", df = " << df);
      double t = student_t_quantile(p, df);
      CHECK(student_t_cdf(t, df) == Approx(p).epsilon(1e-10).margin(1e-15));
    }
  }
  CHECK(student_t_quantile(0.5, 4) == 0);
  CHECK(std::isinf(student_t_quantile(1, 4)));
  CHECK_THROWS_AS(student_t_quantile(0.5, -1), ValidationError);
}

TEST_CASE("chi-square and F upper tails, incomplete gamma, against scipy 1.10 values", "[stats]") {
  // Reference values: scipy.stats.chi2.sf, scipy.stats.f.sf, scipy.special.gammainc (computed offline).
  CHECK(close_rel(chi_square_sf(3.841458820694124, 1), 0.04999999999999989, 1e-10));
  CHECK(close_rel(chi_square_sf(10.5, 7), 0.1619644930794282, 1e-10));
  CHECK(close_rel(chi_square_sf(0.3, 4), 0.9898141728888165, 1e-10));
  CHECK(close_rel(chi_square_sf(200, 150), 0.003973185970821635, 1e-9));
  CHECK(close_rel(f_sf(4.0, 2, 10), 0.05292214940134466, 1e-10));
  CHECK(close_rel(f_sf(1.3, 5, 40), 0.2833084045215966, 1e-10));
  CHECK(close_rel(f_sf(25, 3, 1000), 1.3351431919612128e-15, 1e-6));
  CHECK(close_rel(regularized_gamma_p(2.5, 1.0), 0.15085496391539038, 1e-10));
  CHECK(close_rel(regularized_gamma_p(10, 15), 0.9301463393005901, 1e-10));
  CHECK(regularized_gamma_p(3, 2) + regularized_gamma_q(3, 2) == Approx(1.0).epsilon(1e-14));
  CHECK(chi_square_sf(0, 3) == 1.0);
  CHECK(f_sf(0, 3, 4) == 1.0);
  CHECK_THROWS_AS(chi_square_sf(1, 0), ValidationError);
  CHECK_THROWS_AS(f_sf(1, 2, -1), ValidationError);
  CHECK_THROWS_AS(regularized_gamma_p(-1, 2), ValidationError);
}
