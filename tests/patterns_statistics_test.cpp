// Tests for include/promptlearn/patterns/statistics.hpp.
//
// Reference values marked "scipy" were computed offline with /usr/bin/python3, scipy 1.10.1 and
// numpy 1.24.2 on the fixed data sets below (the script is summarised next to each value); hand-checked
// cases give their arithmetic; planted-signal tests use promptlearn::Rng with fixed seeds and bounds
// derived from the binomial distribution of the counts they check.
#include "promptlearn/patterns/statistics.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "promptlearn/core/rng.hpp"

using namespace promptlearn;
using namespace promptlearn::patterns;

namespace {

constexpr double kRel = 1e-9;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kPi = 3.14159265358979323846;

Approx rel(double expected) { return Approx(expected).epsilon(kRel).margin(0); }

/// Runs f, expects a ValidationError, and returns its what() (and checks the path prefix).
template <typename F>
std::string validation_message(F&& f, const std::string& expected_path) {
  try {
    f();
  } catch (const ValidationError& e) {
    CHECK(e.path() == expected_path);
    return e.what();
  }
  FAIL("no ValidationError thrown");
  return "";
}

// Data set A (strong linear relation) and B (weak relation, with ties in v).
const std::vector<double> kAx = {1.2, 2.4, 3.1, 4.8, 5.0, 6.7, 7.1, 8.9, 9.3, 10.0};
const std::vector<double> kAy = {2.3, 2.9, 4.5, 4.1, 6.2, 6.0, 8.4, 7.7, 9.9, 9.1};
const std::vector<double> kBu = {3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0, 5.5, 3.5, 8.0, 9.7};
const std::vector<double> kBv = {2.0, 7.0, 1.0, 8.0, 2.8, 8.0, 4.0, 6.0, 2.6, 4.3, 3.3, 8.2};

// Three groups of unequal size.
const std::vector<std::vector<double>> kGroups = {
    {6.1, 7.2, 5.9, 8.0, 7.5}, {5.0, 4.8, 6.2, 5.5}, {7.9, 8.8, 9.1, 8.2, 7.7, 8.5}};
// Three groups with ties within and across groups.
const std::vector<std::vector<double>> kTiedGroups = {
    {1.0, 2.0, 2.0, 3.0, 5.0}, {2.0, 3.0, 3.0, 4.0}, {5.0, 6.0, 6.0, 7.0, 3.0, 8.0}};

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Ranks and correlation
// ---------------------------------------------------------------------------------------------------

TEST_CASE("average_ranks gives ties the mean of their ranks", "[patterns]") {
  CHECK(average_ranks({10, 20, 20, 5}) == std::vector<double>{2, 3.5, 3.5, 1});
  // scipy.stats.rankdata(v) (method "average").
  CHECK(average_ranks(kBv) == std::vector<double>{2, 9, 1, 10.5, 4, 10.5, 6, 8, 3, 7, 5, 12});
  CHECK(average_ranks({}).empty());
  CHECK(average_ranks({7, 7, 7}) == std::vector<double>{2, 2, 2});
}

TEST_CASE("pearson matches scipy on fixed data", "[patterns]") {
  SECTION("strong relation") {
    // scipy: r = stats.pearsonr(x, y); r.statistic, r.pvalue, r.confidence_interval(0.95 / 0.9).
    const Correlation c = pearson(kAx, kAy);
    CHECK(c.n == 10);
    CHECK(c.confidence == 0.95);
    CHECK(c.r == rel(0.945131062501089));
    CHECK(c.p_value == rel(3.710206152505955e-05));
    CHECK(c.ci_low == rel(0.779176811602998));
    CHECK(c.ci_high == rel(0.9872595610581437));
    const Correlation c90 = pearson(kAx, kAy, 0.9);
    CHECK(c90.r == c.r);
    CHECK(c90.ci_low == rel(0.8218115237962506));
    CHECK(c90.ci_high == rel(0.9838604908798457));
  }
  SECTION("weak relation") {
    // scipy: stats.pearsonr(u, v); t = r sqrt((n-2)/(1-r^2)) in numpy.
    const Correlation c = pearson(kBu, kBv);
    CHECK(c.n == 12);
    CHECK(c.r == rel(0.20583127467689336));
    CHECK(c.t == rel(0.6651379101638133));
    CHECK(c.p_value == rel(0.5210065522917897));
    CHECK(c.ci_low == rel(-0.4173733646094748));
    CHECK(c.ci_high == rel(0.6973563472391173));
  }
  SECTION("symmetric in x and y, odd under negation") {
    const Correlation a = pearson(kBu, kBv), b = pearson(kBv, kBu);
    CHECK(a.r == rel(b.r));
    CHECK(a.p_value == rel(b.p_value));
    std::vector<double> neg = kBv;
    for (double& v : neg) v = -v;
    const Correlation n = pearson(kBu, neg);
    CHECK(n.r == rel(-a.r));
    CHECK(n.p_value == rel(a.p_value));
    CHECK(n.ci_low == rel(-a.ci_high));
    CHECK(n.ci_high == rel(-a.ci_low));
  }
}

TEST_CASE("pearson hand-checked cases", "[patterns]") {
  SECTION("perfect positive and negative correlation") {
    const Correlation up = pearson({1, 2, 3, 4, 5}, {3, 5, 7, 9, 11});
    CHECK(up.r == 1.0);
    CHECK(up.t == kInf);
    CHECK(up.p_value == 0.0);
    CHECK(up.ci_low == 1.0);
    CHECK(up.ci_high == 1.0);
    const Correlation down = pearson({1, 2, 3, 4, 5}, {-1, -2, -3, -4, -5});
    CHECK(down.r == -1.0);
    CHECK(down.t == -kInf);
    CHECK(down.p_value == 0.0);
    CHECK(down.ci_low == -1.0);
  }
  SECTION("three points") {
    // x = {1,2,3}, y = {1,3,2}: S_xy = 1, S_xx = S_yy = 2, r = 1/2, t = 0.5 sqrt(1 / 0.75) = 1/sqrt(3);
    // with 1 df (Cauchy) p = 1 - 2 atan(1/sqrt 3) / pi = 1 - 2 (pi/6) / pi = 2/3; n = 3 gives CI [-1, 1].
    const Correlation c = pearson({1, 2, 3}, {1, 3, 2});
    CHECK(c.r == rel(0.5));
    CHECK(c.t == rel(1 / std::sqrt(3.0)));
    CHECK(c.p_value == rel(2.0 / 3.0));
    CHECK(c.ci_low == -1.0);
    CHECK(c.ci_high == 1.0);
  }
  SECTION("constant input gives NaN, not an exception") {
    const Correlation c = pearson({1, 2, 3, 4}, {5, 5, 5, 5});
    CHECK(c.n == 4);
    CHECK(std::isnan(c.r));
    CHECK(std::isnan(c.t));
    CHECK(std::isnan(c.p_value));
    CHECK(std::isnan(c.ci_low));
    CHECK(std::isnan(c.ci_high));
    CHECK(std::isnan(pearson({2, 2, 2}, {1, 2, 3}).r));
    CHECK(std::isnan(spearman({1, 2, 3, 4}, {5, 5, 5, 5}).r));
  }
}

TEST_CASE("spearman matches scipy on fixed data", "[patterns]") {
  SECTION("ties in v") {
    // scipy: s = stats.spearmanr(u, v); CI in numpy: tanh(arctanh(r) -/+ norm.ppf(0.975) sqrt(1.06/(n-3))).
    const Correlation c = spearman(kBu, kBv);
    CHECK(c.n == 12);
    CHECK(c.r == rel(0.16462372005951137));
    CHECK(c.p_value == rel(0.6091580087875201));
    CHECK(c.ci_low == rel(-0.4672136412122029));
    CHECK(c.ci_high == rel(0.6851575594060805));
  }
  SECTION("no ties") {
    // scipy: stats.spearmanr(x, [1,3,2,5,4,6,8,7,10,9]), CI as above.
    const Correlation c = spearman(kAx, {1, 3, 2, 5, 4, 6, 8, 7, 10, 9});
    CHECK(c.r == rel(0.9515151515151514));
    CHECK(c.p_value == rel(2.279854920641689e-05));
    CHECK(c.ci_low == rel(0.7949937081336779));
    CHECK(c.ci_high == rel(0.9892488951705173));
    // Hand check without ties: rho = 1 - 6 sum d^2 / (n (n^2 - 1)); x is sorted, so its ranks are 1..10,
    // d = (0, 1, -1, 1, -1, 0, 1, -1, 1, -1) and sum d^2 = 8.
    CHECK(c.r == rel(1 - 6.0 * 8 / (10 * 99)));
  }
  SECTION("monotone but non-linear relation is perfect") {
    const Correlation c = spearman({1, 2, 3, 4, 5, 6}, {1, 8, 27, 64, 125, 216});
    CHECK(c.r == 1.0);
    CHECK(c.p_value == 0.0);
    CHECK(pearson({1, 2, 3, 4, 5, 6}, {1, 8, 27, 64, 125, 216}).r < 1.0);
  }
}

TEST_CASE("planted correlation 0.6: the 95% intervals cover it in about 95% of seeds", "[patterns]") {
  // y = 0.6 x + 0.8 e with x, e independent N(0, 1) has correlation 0.6; its Spearman coefficient is
  // (6 / pi) asin(0.6 / 2) (Pearson 1907, for the bivariate normal). The count of covering intervals over
  // 1000 seeds is about Binomial(1000, 0.95): mean 950, sd 6.9, so [929, 971] is mean +/- 3 sd and also
  // rejects intervals that are too wide. (Over 100 seeds the bound ">= 90" fails about 1% of the time
  // even for exact intervals; seeds 1..100 happen to give 89 for Pearson, while 20000 seeds give 0.9497.)
  const double rho = 0.6, rho_s = 6 / kPi * std::asin(rho / 2);
  int pearson_covers = 0, spearman_covers = 0, significant = 0;
  for (std::uint64_t seed = 1; seed <= 1000; ++seed) {
    Rng rng(seed);
    std::vector<double> x(60), y(60);
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = rng.normal();
      y[i] = rho * x[i] + 0.8 * rng.normal();
    }
    const Correlation p = pearson(x, y), s = spearman(x, y);
    if (p.ci_low <= rho && rho <= p.ci_high) ++pearson_covers;
    if (s.ci_low <= rho_s && rho_s <= s.ci_high) ++spearman_covers;
    if (p.p_value < 0.05) ++significant;
  }
  // Power at n = 60, rho = 0.6 by Fisher z: Phi((atanh 0.6 - atanh 0.254) sqrt 57) = Phi(3.27) = 0.9995,
  // so about 0.5 misses are expected in 1000 seeds.
  CHECK(significant >= 995);
  CHECK(pearson_covers >= 929);
  CHECK(pearson_covers <= 971);
  CHECK(spearman_covers >= 929);
  CHECK(spearman_covers <= 971);
}

TEST_CASE("uncorrelated data: p < 0.05 in about 5% of seeds", "[patterns]") {
  // Under the null the p-value is uniform, so the rejection count over 1000 seeds is Binomial(1000, 0.05):
  // mean 50, sd 6.9; [29, 71] is mean +/- 3 sd.
  int pearson_rejects = 0, spearman_rejects = 0, trend_rejects = 0;
  for (std::uint64_t seed = 1000; seed < 2000; ++seed) {
    Rng rng(seed);
    std::vector<double> x(30), y(30), t(30);
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = rng.normal();
      y[i] = rng.normal();
      t[i] = static_cast<double>(i);
    }
    if (pearson(x, y).p_value < 0.05) ++pearson_rejects;
    if (spearman(x, y).p_value < 0.05) ++spearman_rejects;
    if (linear_trend(t, y).p_value < 0.05) ++trend_rejects;
  }
  CHECK(pearson_rejects >= 29);
  CHECK(pearson_rejects <= 71);
  CHECK(spearman_rejects >= 29);
  CHECK(spearman_rejects <= 71);
  CHECK(trend_rejects >= 29);
  CHECK(trend_rejects <= 71);
}

// ---------------------------------------------------------------------------------------------------
// Group comparisons
// ---------------------------------------------------------------------------------------------------

TEST_CASE("one_way_anova matches scipy and the hand computation", "[patterns]") {
  SECTION("scipy f_oneway") {
    // scipy: stats.f_oneway(*groups); eta^2 = SSB/SST and omega^2 = (SSB - (k-1) MSW)/(SST + MSW) in numpy.
    const AnovaResult a = one_way_anova(kGroups);
    CHECK(a.df_between == 2);
    CHECK(a.df_within == 12);
    CHECK(a.f == rel(22.05034363775208));
    CHECK(a.p_value == rel(9.578078364208758e-05));
    CHECK(a.eta_squared == rel(0.786098877165812));
    CHECK(a.omega_squared == rel(0.7373061391078055));
  }
  SECTION("two groups by hand") {
    // {1,2,3} vs {4,5,6}: means 2 and 5, grand mean 3.5; SSB = 2 * 3 * 1.5^2 = 13.5, SSW = 2 + 2 = 4,
    // F = 13.5 / (4 / 4) = 13.5 with (1, 4) df; eta^2 = 13.5 / 17.5; omega^2 = (13.5 - 1) / (17.5 + 1).
    // With two groups F = t^2 of the pooled t-test, p = P(|T_4| > sqrt(13.5)).
    const AnovaResult a = one_way_anova({{1, 2, 3}, {4, 5, 6}});
    CHECK(a.f == rel(13.5));
    CHECK(a.eta_squared == rel(13.5 / 17.5));
    CHECK(a.omega_squared == rel(12.5 / 18.5));
    CHECK(a.p_value == rel(2 * student_t_sf(std::sqrt(13.5), 4)));
  }
  SECTION("degenerate spreads") {
    const AnovaResult sep = one_way_anova({{1, 1}, {2, 2}});
    CHECK(sep.f == kInf);
    CHECK(sep.p_value == 0.0);
    CHECK(sep.eta_squared == 1.0);
    const AnovaResult flat = one_way_anova({{3, 3}, {3, 3, 3}});
    CHECK(std::isnan(flat.f));
    CHECK(std::isnan(flat.p_value));
    CHECK(std::isnan(flat.eta_squared));
    CHECK(std::isnan(flat.omega_squared));
  }
}

TEST_CASE("kruskal_wallis matches scipy and the hand computation", "[patterns]") {
  SECTION("scipy kruskal, with ties") {
    // scipy: stats.kruskal(*groups) (tie-corrected); epsilon^2 = H / (N - 1) with N = 15.
    const KruskalWallisResult k = kruskal_wallis(kTiedGroups);
    CHECK(k.df == 2);
    CHECK(k.h == rel(7.80379901960784));
    CHECK(k.p_value == rel(0.020203498231251837));
    CHECK(k.epsilon_squared == rel(0.5574142156862744));
  }
  SECTION("scipy kruskal, no ties") {
    const KruskalWallisResult k = kruskal_wallis(kGroups);
    CHECK(k.h == rel(10.458333333333329));
    CHECK(k.p_value == rel(0.00535798843312488));
    CHECK(k.epsilon_squared == rel(0.7470238095238092));
  }
  SECTION("two groups by hand") {
    // {1,2,3} vs {4,5,6}: rank sums 6 and 15, H = 12/(6*7) (36/3 + 225/3) - 3*7 = 27/7;
    // chi-square with 1 df: p = erfc(sqrt(H / 2)).
    const KruskalWallisResult k = kruskal_wallis({{1, 2, 3}, {4, 5, 6}});
    CHECK(k.h == rel(27.0 / 7));
    CHECK(k.p_value == rel(std::erfc(std::sqrt(27.0 / 14))));
    CHECK(k.epsilon_squared == rel(27.0 / 7 / 5));
  }
  SECTION("all values tied gives NaN") {
    const KruskalWallisResult k = kruskal_wallis({{2, 2}, {2, 2}});
    CHECK(std::isnan(k.h));
    CHECK(std::isnan(k.p_value));
  }
  SECTION("invariant under a monotone transform") {
    std::vector<std::vector<double>> logged = kTiedGroups;
    for (auto& g : logged)
      for (double& v : g) v = std::log(v);
    CHECK(kruskal_wallis(logged).h == rel(kruskal_wallis(kTiedGroups).h));
  }
}

TEST_CASE("group comparisons detect planted differences and hold their size under the null", "[patterns]") {
  // Under the null (three N(0,1) groups of 15) the ANOVA p-value is exactly uniform and Kruskal-Wallis
  // nearly so: rejections at 0.05 over 400 seeds ~ Binomial(400, 0.05), mean 20, sd 4.4 -> [7, 33].
  // With means 0, 0.75, 1.5 (sd 1, n = 15 each) the noncentrality is 15 * 2 * 0.75^2 = 16.875 and the
  // ANOVA power 0.953 (scipy: stats.ncf.sf(stats.f.ppf(0.95, 2, 42), 2, 42, 16.875)): 381 +/- 4.2 rejections,
  // so >= 368. Kruskal-Wallis, with asymptotic relative efficiency 3 / pi to the F test on normal data,
  // has power about 0.944 (377 +/- 4.6); >= 355 leaves room for that approximation.
  int null_anova = 0, null_kw = 0, alt_anova = 0, alt_kw = 0;
  for (std::uint64_t seed = 7; seed < 407; ++seed) {
    Rng rng(seed);
    std::vector<std::vector<double>> null_groups(3, std::vector<double>(15)), alt_groups = null_groups;
    for (std::size_t g = 0; g < 3; ++g)
      for (std::size_t i = 0; i < 15; ++i) {
        null_groups[g][i] = rng.normal();
        alt_groups[g][i] = rng.normal(0.75 * static_cast<double>(g), 1.0);
      }
    if (one_way_anova(null_groups).p_value < 0.05) ++null_anova;
    if (kruskal_wallis(null_groups).p_value < 0.05) ++null_kw;
    if (one_way_anova(alt_groups).p_value < 0.05) ++alt_anova;
    if (kruskal_wallis(alt_groups).p_value < 0.05) ++alt_kw;
  }
  CHECK(null_anova >= 7);
  CHECK(null_anova <= 33);
  CHECK(null_kw >= 7);
  CHECK(null_kw <= 33);
  CHECK(alt_anova >= 368);
  CHECK(alt_kw >= 355);
}

TEST_CASE("group_summaries gives t intervals", "[patterns]") {
  // scipy: a.mean(), a.std(ddof=1), stats.t.interval(0.95, n-1, loc=mean, scale=sd/sqrt(n)).
  const std::vector<GroupSummary> s = group_summaries(kGroups);
  REQUIRE(s.size() == 3);
  CHECK(s[0].n == 5);
  CHECK(s[0].mean == rel(6.94));
  CHECK(s[0].sd == rel(0.9071934744033381));
  CHECK(s[0].ci_low == rel(5.813570523427986));
  CHECK(s[0].ci_high == rel(8.066429476572015));
  CHECK(s[1].n == 4);
  CHECK(s[1].mean == rel(5.375));
  CHECK(s[1].sd == rel(0.6238322424070968));
  CHECK(s[1].ci_low == rel(4.3823436925171695));
  CHECK(s[1].ci_high == rel(6.3676563074828305));
  CHECK(s[2].n == 6);
  CHECK(s[2].mean == rel(8.366666666666667));
  CHECK(s[2].sd == rel(0.5354126134736337));
  CHECK(s[2].ci_low == rel(7.804785587823718));
  CHECK(s[2].ci_high == rel(8.928547745509617));

  SECTION("one value: unknown spread, unbounded interval") {
    const GroupSummary one = group_summaries({{4.5}})[0];
    CHECK(one.n == 1);
    CHECK(one.mean == 4.5);
    CHECK(std::isnan(one.sd));
    CHECK(one.ci_low == -kInf);
    CHECK(one.ci_high == kInf);
  }
  SECTION("two values by hand: mean -/+ t_{0.975,1} * |a - b| / 2") {
    // sd = |a - b| / sqrt 2, se = sd / sqrt 2 = 1; t_{0.975, 1} = tan(0.475 pi).
    const GroupSummary two = group_summaries({{3, 5}})[0];
    CHECK(two.ci_low == rel(4 - std::tan(0.475 * kPi)));
    CHECK(two.ci_high == rel(4 + std::tan(0.475 * kPi)));
  }
}

TEST_CASE("effectiveness_table groups by domain and template and ranks by mean", "[patterns]") {
  const std::vector<QualityObservation> obs = {
      {"code", "plain", 6},   {"writing", "socratic", 7}, {"code", "cot", 8},     {"code", "cot", 9},
      {"code", "expert", 8},  {"code", "expert", 7},      {"writing", "plain", 5}, {"code", "cot", 7.5},
      {"code", "expert", 8.5}, {"writing", "socratic", 9}, {"analysis", "cot", 4}};
  const std::vector<EffectivenessRow> rows = effectiveness_table(obs);
  REQUIRE(rows.size() == 6);
  // Domains ascending, then mean descending; "cot" and "expert" in "code" both have mean 8.1666...
  // and 7.8333...: cot = (8 + 9 + 7.5) / 3, expert = (8 + 7 + 8.5) / 3.
  CHECK(rows[0].domain == "analysis");
  CHECK(rows[0].template_id == "cot");
  CHECK(rows[0].n == 1);
  CHECK(rows[0].ci_low == -kInf);
  CHECK(rows[1].domain == "code");
  CHECK(rows[1].template_id == "cot");
  CHECK(rows[1].n == 3);
  CHECK(rows[1].mean == rel(24.5 / 3));
  CHECK(rows[2].template_id == "expert");
  CHECK(rows[2].mean == rel(23.5 / 3));
  CHECK(rows[3].template_id == "plain");
  CHECK(rows[4].domain == "writing");
  CHECK(rows[4].template_id == "socratic");
  CHECK(rows[4].mean == rel(8));
  CHECK(rows[5].template_id == "plain");
  // Each row's interval is the t interval of its cell, as group_summaries computes it.
  const GroupSummary cot = group_summaries({{8, 9, 7.5}})[0];
  CHECK(rows[1].ci_low == cot.ci_low);
  CHECK(rows[1].ci_high == cot.ci_high);
  CHECK(effectiveness_table({}).empty());

  SECTION("equal means are ordered by template id") {
    const auto tie = effectiveness_table({{"d", "b", 5}, {"d", "a", 5}, {"d", "c", 6}});
    REQUIRE(tie.size() == 3);
    CHECK(tie[0].template_id == "c");
    CHECK(tie[1].template_id == "a");
    CHECK(tie[2].template_id == "b");
  }
}

// ---------------------------------------------------------------------------------------------------
// Multiple testing
// ---------------------------------------------------------------------------------------------------

TEST_CASE("benjamini_hochberg against a hand-computed example", "[patterns]") {
  // m = 10 sorted p-values; m p_(i) / i = .01, .04, .13, .1025, .084, .1, .10571, .25625, .23556, .216;
  // running minimum from the top: .01, .04, .084, .084, .084, .1, .10571, .216, .216, .216.
  // At q = 0.05 the largest k with p_(k) <= k q / m is k = 2 (.008 <= .01; .039 > .015, ..., .216 > .05).
  // At q = 0.09 it is k = 5 (.042 <= .045; .06 > .054; .074 > .063; .205 > .072; ...).
  const std::vector<double> p = {0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216};
  const std::vector<double> expected = {0.01, 0.04, 0.084, 0.084, 0.084, 0.1, 0.74 / 7, 0.216, 0.216, 0.216};
  const FdrResult r = benjamini_hochberg(p);
  REQUIRE(r.adjusted.size() == p.size());
  for (std::size_t i = 0; i < p.size(); ++i) CHECK(r.adjusted[i] == rel(expected[i]));
  CHECK(r.num_rejected == 2);
  CHECK(r.rejected == std::vector<bool>{true, true, false, false, false, false, false, false, false, false});
  const FdrResult r09 = benjamini_hochberg(p, 0.09);
  CHECK(r09.num_rejected == 5);
  CHECK(r09.rejected == std::vector<bool>{true, true, true, true, true, false, false, false, false, false});
  CHECK(r09.adjusted == r.adjusted);
}

TEST_CASE("benjamini_hochberg keeps the input order, is monotone, and caps at 1", "[patterns]") {
  // numpy: o = argsort(p, kind="stable"); adj = minimum.accumulate((m p[o] / (1..m))[::-1])[::-1];
  // res[o] = minimum(adj, 1).
  const std::vector<double> p = {0.2, 0.9, 0.01, 0.5, 0.03, 0.03, 0.8};
  const std::vector<double> expected = {0.35, 0.9, 0.07, 0.7, 0.07, 0.07, 0.9};
  const FdrResult r = benjamini_hochberg(p, 0.1);
  for (std::size_t i = 0; i < p.size(); ++i) CHECK(r.adjusted[i] == rel(expected[i]));
  CHECK(r.rejected == std::vector<bool>{false, false, true, false, true, true, false});
  // Monotone in p, never below p, never above 1.
  for (std::size_t i = 0; i < p.size(); ++i) {
    CHECK(r.adjusted[i] >= p[i]);
    CHECK(r.adjusted[i] <= 1.0);
    for (std::size_t j = 0; j < p.size(); ++j)
      if (p[i] <= p[j]) CHECK(r.adjusted[i] <= r.adjusted[j]);
  }
  const FdrResult capped = benjamini_hochberg({0.9, 0.95, 1.0});
  CHECK(capped.adjusted == std::vector<double>{1.0, 1.0, 1.0});
  CHECK(benjamini_hochberg({0.03}).adjusted == std::vector<double>{0.03});  // m = 1: unchanged
  CHECK(benjamini_hochberg({}).adjusted.empty());
}

TEST_CASE("benjamini_hochberg controls the FDR on planted signals", "[patterns]") {
  // 80 true nulls (p uniform) and 20 strong signals (p = Phi(-(z + 3)) one-sided): the realised false
  // discovery proportion averaged over 200 seeds is below q m0 / m = 0.04 in expectation; its Monte
  // Carlo sd is < 0.005, so 0.055 leaves three sd of room. Power for the signals is high.
  double fdp_sum = 0;
  int true_found = 0;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    Rng rng(seed);
    std::vector<double> p(100);
    for (std::size_t i = 0; i < 80; ++i) p[i] = rng.uniform();
    for (std::size_t i = 80; i < 100; ++i) p[i] = normal_sf(rng.normal() + 3);
    const FdrResult r = benjamini_hochberg(p);
    int false_found = 0, found = 0;
    for (std::size_t i = 0; i < 100; ++i)
      if (r.rejected[i]) {
        ++found;
        if (i < 80) ++false_found; else ++true_found;
      }
    if (found > 0) fdp_sum += static_cast<double>(false_found) / found;
  }
  CHECK(fdp_sum / 200 < 0.055);
  CHECK(true_found > 200 * 20 / 2);
}

// ---------------------------------------------------------------------------------------------------
// Trend
// ---------------------------------------------------------------------------------------------------

TEST_CASE("linear_trend matches scipy linregress", "[patterns]") {
  std::vector<double> t(12);
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = static_cast<double>(i);
  const std::vector<double> y = {3.1, 3.9, 4.2, 5.8, 5.1, 6.9, 7.4, 7.0, 8.8, 9.1, 9.0, 10.7};
  // scipy: lr = stats.linregress(arange(12), y); CI = slope -/+ stats.t.ppf(0.975 / 0.99, 10) * lr.stderr.
  const LinearTrend r = linear_trend(t, y);
  CHECK(r.n == 12);
  CHECK(r.slope == rel(0.6468531468531469));
  CHECK(r.intercept == rel(3.192307692307693));
  CHECK(r.se_slope == rel(0.04293501282092284));
  CHECK(r.p_value == rel(3.352113806617293e-08));
  CHECK(r.r_squared == rel(0.9578024024958554));
  CHECK(r.ci_low == rel(0.551187976677236));
  CHECK(r.ci_high == rel(0.7425183170290578));
  const LinearTrend r98 = linear_trend(t, y, 0.98);
  CHECK(r98.confidence == 0.98);
  CHECK(r98.ci_low == rel(0.5281906697635468));
  CHECK(r98.ci_high == rel(0.765515623942747));

  // A weak trend: scipy linregress(arange(14), yw).
  const std::vector<double> yw = {0.5, 1.2, -0.3, 0.8, -1.1, 0.1, 0.9, -0.7, 0.2, 1.5, -0.4, 0.0, 0.6, -0.9};
  std::vector<double> tw(14);
  for (std::size_t i = 0; i < tw.size(); ++i) tw[i] = static_cast<double>(i);
  const LinearTrend w = linear_trend(tw, yw);
  CHECK(w.slope == rel(-0.04131868131868131));
  CHECK(w.se_slope == rel(0.05331561916503316));
  CHECK(w.p_value == rel(0.4533509006206189));
}

TEST_CASE("linear_trend hand-checked cases", "[patterns]") {
  SECTION("three points") {
    // t = {0,1,2}, y = {1,3,4}: S_tt = 2, S_ty = 3, slope 1.5, intercept 8/3 - 1.5 = 7/6; residuals
    // -1/6, 1/3, -1/6, SSE = 1/6; SE = sqrt(SSE / 1 / 2) = sqrt(1/12); t = 1.5 sqrt 12 = 3 sqrt 3;
    // 1 df (Cauchy): p = 1 - 2 atan(3 sqrt 3) / pi; SST = 14/3, R^2 = 1 - (1/6) / (14/3) = 27/28;
    // CI = 1.5 -/+ tan(0.475 pi) sqrt(1/12).
    const LinearTrend r = linear_trend({0, 1, 2}, {1, 3, 4});
    CHECK(r.slope == rel(1.5));
    CHECK(r.intercept == rel(7.0 / 6));
    CHECK(r.se_slope == rel(std::sqrt(1.0 / 12)));
    CHECK(r.p_value == rel(1 - 2 * std::atan(3 * std::sqrt(3.0)) / kPi));
    CHECK(r.r_squared == rel(27.0 / 28));
    CHECK(r.ci_low == rel(1.5 - std::tan(0.475 * kPi) * std::sqrt(1.0 / 12)));
    CHECK(r.ci_high == rel(1.5 + std::tan(0.475 * kPi) * std::sqrt(1.0 / 12)));
  }
  SECTION("a perfect line") {
    const LinearTrend r = linear_trend({0, 1, 2, 3}, {1, 3, 5, 7});
    CHECK(r.slope == rel(2));
    CHECK(r.intercept == Approx(1).margin(1e-12));
    CHECK(r.se_slope == Approx(0).margin(1e-12));
    CHECK(r.p_value < 1e-12);
    CHECK(r.r_squared == rel(1));
  }
  SECTION("constant y: no trend") {
    const LinearTrend r = linear_trend({0, 1, 2, 3}, {4, 4, 4, 4});
    CHECK(r.slope == 0.0);
    CHECK(r.intercept == 4.0);
    CHECK(r.se_slope == 0.0);
    CHECK(r.p_value == 1.0);
    CHECK(r.r_squared == 0.0);
  }
  SECTION("unevenly spaced times; slope equals the Pearson r scaled by sd(y) / sd(t)") {
    const std::vector<double> t = {0.0, 0.5, 3.0, 3.5, 7.0, 11.0};
    const std::vector<double> y = {1.0, 1.4, 2.0, 2.9, 3.1, 5.0};
    const LinearTrend r = linear_trend(t, y);
    const Correlation c = pearson(t, y);
    RunningMoments mt, my;
    for (double v : t) mt.add(v);
    for (double v : y) my.add(v);
    CHECK(r.slope == rel(c.r * my.stddev() / mt.stddev()));
    CHECK(r.r_squared == rel(c.r * c.r));
    CHECK(r.p_value == rel(c.p_value));  // same t statistic with n - 2 df
  }
}

TEST_CASE("planted trend: the 95% slope interval covers it in about 95% of seeds", "[patterns]") {
  // y = 2 + 0.3 t + N(0, 1) on t = 0..39; the t interval is exact, so the covering count over 1000 seeds
  // is Binomial(1000, 0.95): [929, 971] is mean +/- 3 sd.
  int covers = 0, significant = 0;
  for (std::uint64_t seed = 5000; seed < 6000; ++seed) {
    Rng rng(seed);
    std::vector<double> t(40), y(40);
    for (std::size_t i = 0; i < t.size(); ++i) {
      t[i] = static_cast<double>(i);
      y[i] = 2 + 0.3 * t[i] + rng.normal();
    }
    const LinearTrend r = linear_trend(t, y);
    if (r.ci_low <= 0.3 && 0.3 <= r.ci_high) ++covers;
    if (r.p_value < 1e-6) ++significant;  // t = 0.3 / (1 / sqrt(5330)) ~ 22
  }
  CHECK(significant == 1000);
  CHECK(covers >= 929);
  CHECK(covers <= 971);
}

// ---------------------------------------------------------------------------------------------------
// Seasonality
// ---------------------------------------------------------------------------------------------------

TEST_CASE("autocorrelation matches numpy and the hand computation", "[patterns]") {
  // y = {1,2,3,4}: mean 2.5, deviations -1.5 -.5 .5 1.5, c0 = 5; c1 = .75 - .25 + .75 = 1.25,
  // c2 = -.75 - .75 = -1.5, c3 = -2.25.
  CHECK(autocorrelation({1, 2, 3, 4}, 0) == rel(1));
  CHECK(autocorrelation({1, 2, 3, 4}, 1) == rel(0.25));
  CHECK(autocorrelation({1, 2, 3, 4}, 2) == rel(-0.3));
  CHECK(autocorrelation({1, 2, 3, 4}, 3) == rel(-0.45));
  // numpy: d = y - y.mean(); dot(d[:n-k], d[k:]) / dot(d, d).
  const std::vector<double> y = {0.5, 1.2, -0.3, 0.8, -1.1, 0.1, 0.9, -0.7, 0.2, 1.5, -0.4, 0.0, 0.6, -0.9};
  CHECK(autocorrelation(y, 1) == rel(-0.37054197555600077));
  CHECK(autocorrelation(y, 2) == rel(-0.15465337607693852));
  CHECK(autocorrelation(y, 3) == rel(0.3852183931075937));
  CHECK(autocorrelation(y, 5) == rel(-0.12550090162292127));
  CHECK(std::isnan(autocorrelation({2, 2, 2}, 1)));
}

TEST_CASE("seasonality finds a planted daily cycle in an hourly series", "[patterns]") {
  // Four weeks of hourly values: a daily sinusoid of amplitude 1 plus N(0, 1) noise. The ACF at lag 24
  // is about 0.5 / (0.5 + 1) = 1/3 (signal variance 1/2), at lag 12 about -1/3, far outside 1.96/sqrt(672).
  Rng rng(24);
  std::vector<double> y(4 * kHourlyWeeklyLag);
  for (std::size_t h = 0; h < y.size(); ++h)
    y[h] = std::sin(2 * kPi * static_cast<double>(h) / kHourlyDailyLag) + rng.normal();
  const std::vector<SeasonalLag> s = seasonality(y, {kHourlyDailyLag, 12, kHourlyWeeklyLag});
  REQUIRE(s.size() == 3);
  const double bound = 1.96 / std::sqrt(672.0);
  CHECK(s[0].lag == 24);
  CHECK(s[0].bound == rel(bound));
  CHECK(s[0].acf == rel(autocorrelation(y, 24)));
  CHECK(s[0].acf > 0.2);
  CHECK(s[0].significant);
  CHECK(s[1].acf < -0.2);
  CHECK(s[1].significant);
  CHECK(s[2].significant);  // a week is 7 days: the daily cycle repeats
  // A wider z changes only the bound.
  const std::vector<SeasonalLag> wide = seasonality(y, {24}, 3.0);
  CHECK(wide[0].bound == rel(3.0 / std::sqrt(672.0)));
  CHECK(wide[0].acf == s[0].acf);
}

TEST_CASE("seasonality on white noise flags about 5% of lags", "[patterns]") {
  // For i.i.d. noise r_k ~ N(0, 1/n) approximately (Bartlett), so across 200 seeds x 2 lags the flagged
  // count is about Binomial(400, 0.05): mean 20, sd 4.4 -> [7, 33].
  int flagged = 0;
  for (std::uint64_t seed = 3000; seed < 3200; ++seed) {
    Rng rng(seed);
    std::vector<double> y(500);
    for (double& v : y) v = rng.normal();
    for (const SeasonalLag& s : seasonality(y, {kHourlyDailyLag, kHourlyWeeklyLag}))
      if (s.significant) ++flagged;
  }
  CHECK(flagged >= 7);
  CHECK(flagged <= 33);
  // A constant series: ACF undefined, never significant.
  const auto flat = seasonality(std::vector<double>(30, 1.0), {1, 2});
  CHECK(std::isnan(flat[0].acf));
  CHECK_FALSE(flat[0].significant);
}

// ---------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------

TEST_CASE("bad input throws ValidationError naming the argument and the value", "[patterns]") {
  CHECK(validation_message([] { pearson({1, 2, 3}, {1, 2}); }, "pearson.y") ==
        "pearson.y: has 2 values, expected 3 (the size of x)");
  CHECK(validation_message([] { pearson({1, 2}, {1, 2}); }, "pearson.x") ==
        "pearson.x: has 2 values, expected at least 3");
  CHECK(validation_message([] { pearson({1, kNaN, 3}, {1, 2, 3}); }, "pearson.x[1]") ==
        "pearson.x[1]: nan is not a finite number");
  CHECK(validation_message([] { spearman({1, 2, 3}, {1, 2, kInf}); }, "spearman.y[2]") ==
        "spearman.y[2]: inf is not a finite number");
  CHECK(validation_message([] { pearson({1, 2, 3}, {1, 2, 3}, 1.5); }, "pearson.confidence") ==
        "pearson.confidence: 1.5 is outside (0, 1)");
  CHECK(validation_message([] { one_way_anova({{1, 2}}); }, "one_way_anova.groups") ==
        "one_way_anova.groups: has 1 groups, expected at least 2");
  CHECK(validation_message([] { one_way_anova({{1, 2}, {}}); }, "one_way_anova.groups[1]") ==
        "one_way_anova.groups[1]: is empty, expected at least 1 value");
  CHECK(validation_message([] { one_way_anova({{1}, {2}}); }, "one_way_anova.groups") ==
        "one_way_anova.groups: has 2 values in 2 groups, expected more values than groups");
  CHECK(validation_message([] { kruskal_wallis({{1, 2}, {3, kNaN}}); }, "kruskal_wallis.groups[1][1]") ==
        "kruskal_wallis.groups[1][1]: nan is not a finite number");
  CHECK(validation_message([] { kruskal_wallis({{1}, {2}}); }, "kruskal_wallis.groups") ==
        "kruskal_wallis.groups: has 2 values in all, expected at least 3");
  CHECK(validation_message([] { group_summaries({}); }, "group_summaries.groups") ==
        "group_summaries.groups: has 0 groups, expected at least 1");
  CHECK(validation_message([] { group_summaries({{1, 2}}, 0); }, "group_summaries.confidence") ==
        "group_summaries.confidence: 0 is outside (0, 1)");
  CHECK(validation_message([] { effectiveness_table({{"code", "cot", 7}, {"code", "cot", kNaN}}); },
                           "effectiveness_table.observations[1].quality") ==
        "effectiveness_table.observations[1].quality: nan is not a finite number");
  CHECK(validation_message([] { benjamini_hochberg({0.5, 1.2}); }, "benjamini_hochberg.p_values[1]") ==
        "benjamini_hochberg.p_values[1]: 1.2 is outside [0, 1]");
  CHECK(validation_message([] { benjamini_hochberg({kNaN}); }, "benjamini_hochberg.p_values[0]") ==
        "benjamini_hochberg.p_values[0]: nan is outside [0, 1]");
  CHECK(validation_message([] { benjamini_hochberg({0.5}, 0); }, "benjamini_hochberg.q") ==
        "benjamini_hochberg.q: 0 is outside (0, 1)");
  CHECK(validation_message([] { linear_trend({2, 2, 2}, {1, 2, 3}); }, "linear_trend.t") ==
        "linear_trend.t: all 3 values are equal to 2");
  CHECK(validation_message([] { linear_trend({1, 2, 3, 4}, {1, 2, 3}); }, "linear_trend.y") ==
        "linear_trend.y: has 3 values, expected 4 (the size of t)");
  CHECK(validation_message([] { autocorrelation({1, 2, 3}, 3); }, "autocorrelation.lag") ==
        "autocorrelation.lag: 3 is not less than the series length 3");
  CHECK(validation_message([] { autocorrelation({}, 0); }, "autocorrelation.y") ==
        "autocorrelation.y: has 0 values, expected at least 1");
  CHECK(validation_message([] { seasonality({1, 2, 3, 4}, {1, 0}); }, "seasonality.lags[1]") ==
        "seasonality.lags[1]: 0 is outside [1, 3]");
  CHECK(validation_message([] { seasonality({1, 2, 3, 4}, {1}, -1); }, "seasonality.z") ==
        "seasonality.z: -1 is not a finite number > 0");
  CHECK(validation_message([] { average_ranks({1, kNaN}); }, "average_ranks.values[1]") ==
        "average_ranks.values[1]: nan is not a finite number");
  // Every one of them is a promptlearn::Error.
  CHECK_THROWS_AS(pearson({1}, {1}), Error);
}
