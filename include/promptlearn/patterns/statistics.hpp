#pragma once
/// @file Classical statistics for pattern analysis (layer 2, header-only, no I/O): Pearson and Spearman
/// correlation with p-values and confidence intervals, one-way ANOVA and Kruskal-Wallis across groups,
/// per-group t intervals and the per-domain template-effectiveness table, Benjamini-Hochberg false
/// discovery rate control, an OLS linear trend, and autocorrelation for seasonality.
///
/// Distribution functions come from core/stats.hpp (student_t_sf, f_sf, chi_square_sf, quantiles).
/// Every function checks its input and throws ValidationError whose path is `function.argument[index]`
/// and whose message gives the value and what was expected, e.g. `pearson.y: has 4 values, expected 5
/// (the size of x)` or `pearson.x[2]: nan is not a finite number`.
///
/// Undefined statistics: when an input has no variation (a constant series in a correlation or an ACF,
/// all values equal across ANOVA / Kruskal-Wallis groups) the statistic is 0 / 0. These functions then
/// return NaN for it and for everything derived from it (p-value, interval, effect size) rather than
/// throwing, as scipy and R do, so that a scan over many feature pairs need not catch exceptions; test
/// with `std::isnan`. A constant time axis in linear_trend is different (the caller passed no time
/// information at all) and throws.
///
/// Example:
///     auto c = promptlearn::patterns::pearson(complexity, quality);
///     if (c.p_value < 0.05) ...   // c.r in [c.ci_low, c.ci_high] at 95%
///     auto bh = promptlearn::patterns::benjamini_hochberg({0.01, 0.04, 0.03, 0.2});
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/stats.hpp"

namespace promptlearn::patterns {

/// For an hourly series, the lag of one day (use with seasonality()).
inline constexpr std::size_t kHourlyDailyLag = 24;
/// For an hourly series, the lag of one week (7 * 24).
inline constexpr std::size_t kHourlyWeeklyLag = 168;

// ---------------------------------------------------------------------------------------------------
// Result types
// ---------------------------------------------------------------------------------------------------

/// A correlation coefficient with its test and interval. Fields are NaN when the coefficient is
/// undefined (an input without variation).
struct Correlation {
  double r = 0;              ///< Coefficient in [-1, 1].
  std::size_t n = 0;         ///< Number of pairs.
  double t = 0;              ///< r sqrt((n - 2) / (1 - r^2)), +/-infinity when |r| = 1.
  double p_value = 1;        ///< Two-sided, Student t with n - 2 degrees of freedom.
  double ci_low = 0;         ///< Fisher-z confidence interval for the population coefficient.
  double ci_high = 0;
  double confidence = 0.95;  ///< Level of the interval.
};

/// One-way analysis of variance.
struct AnovaResult {
  double f = 0;              ///< F = MS_between / MS_within (+infinity if MS_within = 0 < MS_between).
  double df_between = 0;     ///< k - 1.
  double df_within = 0;      ///< N - k.
  double p_value = 1;        ///< P(F_{k-1, N-k} >= f).
  double eta_squared = 0;    ///< SS_between / SS_total.
  double omega_squared = 0;  ///< (SS_between - (k-1) MS_within) / (SS_total + MS_within); may be < 0.
};

/// Kruskal-Wallis rank test.
struct KruskalWallisResult {
  double h = 0;                ///< Tie-corrected H statistic.
  double df = 0;               ///< k - 1.
  double p_value = 1;          ///< Chi-square(k - 1) upper tail of h.
  double epsilon_squared = 0;  ///< H / (N - 1), the rank effect size (Tomczak & Tomczak 2014).
};

/// Mean of one group with its Student t interval.
struct GroupSummary {
  std::size_t n = 0;
  double mean = 0;
  double sd = 0;       ///< Sample standard deviation (n - 1 denominator); NaN when n = 1.
  double ci_low = 0;   ///< mean - t_{(1+c)/2, n-1} sd / sqrt(n); -infinity when n = 1.
  double ci_high = 0;  ///< +infinity when n = 1.
};

/// One observed quality of a template in a domain (for effectiveness_table).
struct QualityObservation {
  std::string domain;
  std::string template_id;
  double quality = 0;
};

/// One row of the template-effectiveness table. (`template` is a C++ keyword, hence `template_id`.)
struct EffectivenessRow {
  std::string domain;
  std::string template_id;
  std::size_t n = 0;
  double mean = 0;
  double ci_low = 0;   ///< Student t interval as in GroupSummary (infinite when n = 1).
  double ci_high = 0;
};

/// Benjamini-Hochberg adjusted p-values, in the input order.
struct FdrResult {
  std::vector<double> adjusted;  ///< BH q-values: monotone in p, capped at 1.
  std::vector<bool> rejected;    ///< adjusted[i] <= q.
  std::size_t num_rejected = 0;
};

/// Ordinary least-squares line y = intercept + slope t with inference on the slope.
struct LinearTrend {
  double slope = 0;
  double intercept = 0;
  double se_slope = 0;      ///< sqrt(SSE / (n - 2) / S_tt).
  double ci_low = 0;        ///< slope -/+ t_{(1+c)/2, n-2} se_slope.
  double ci_high = 0;
  double p_value = 1;       ///< Two-sided test of slope = 0, Student t with n - 2 degrees of freedom.
  double r_squared = 0;     ///< 1 - SSE / SST (0 when y is constant).
  std::size_t n = 0;
  double confidence = 0.95;
};

/// Autocorrelation at one lag against the white-noise bound.
struct SeasonalLag {
  std::size_t lag = 0;
  double acf = 0;            ///< Biased sample autocorrelation r_lag (NaN for a constant series).
  double bound = 0;          ///< z / sqrt(n).
  bool significant = false;  ///< |acf| > bound.
};

// ---------------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------------

namespace detail::statistics {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr double kInf = std::numeric_limits<double>::infinity();

inline std::string arg_path(const char* fn, const char* arg) { return fmt::format("{}.{}", fn, arg); }

/// Throws unless every value is finite.
inline void require_finite(const char* fn, const char* arg, const std::vector<double>& v) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      throw ValidationError(fmt::format("{}.{}[{}]", fn, arg, i), fmt::format("{} is not a finite number", v[i]));
}

/// Throws unless v has at least `min` values.
inline void require_size(const char* fn, const char* arg, std::size_t size, std::size_t min) {
  if (size < min)
    throw ValidationError(arg_path(fn, arg), fmt::format("has {} values, expected at least {}", size, min));
}

inline void require_confidence(const char* fn, double confidence) {
  if (!(confidence > 0 && confidence < 1))
    throw ValidationError(arg_path(fn, "confidence"), fmt::format("{} is outside (0, 1)", confidence));
}

/// Checks a pair of equally long, finite samples with at least `min` pairs.
inline void require_pairs(const char* fn, const char* xn, const char* yn, const std::vector<double>& x,
                          const std::vector<double>& y, std::size_t min) {
  if (x.size() != y.size())
    throw ValidationError(arg_path(fn, yn),
                          fmt::format("has {} values, expected {} (the size of {})", y.size(), x.size(), xn));
  require_size(fn, xn, x.size(), min);
  require_finite(fn, xn, x);
  require_finite(fn, yn, y);
}

/// Checks k >= 2 non-empty groups of finite values; returns the total count N.
inline std::size_t require_groups(const char* fn, const std::vector<std::vector<double>>& groups,
                                  std::size_t min_groups) {
  if (groups.size() < min_groups)
    throw ValidationError(arg_path(fn, "groups"),
                          fmt::format("has {} groups, expected at least {}", groups.size(), min_groups));
  std::size_t total = 0;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const std::string path = fmt::format("{}.groups[{}]", fn, g);
    if (groups[g].empty()) throw ValidationError(path, "is empty, expected at least 1 value");
    for (std::size_t i = 0; i < groups[g].size(); ++i)
      if (!std::isfinite(groups[g][i]))
        throw ValidationError(fmt::format("{}[{}]", path, i),
                              fmt::format("{} is not a finite number", groups[g][i]));
    total += groups[g].size();
  }
  return total;
}

/// Pearson r of finite, equally long samples by centred two-pass sums, clamped to [-1, 1];
/// NaN when either sample has no variation.
inline double pearson_r(const std::vector<double>& x, const std::vector<double>& y) {
  const std::size_t n = x.size();
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < n; ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxx = 0, syy = 0, sxy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxx += dx * dx;
    syy += dy * dy;
    sxy += dx * dy;
  }
  if (!(sxx > 0) || !(syy > 0)) return kNaN;
  return std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0);
}

/// Fills t, p and the Fisher-z interval of a correlation from r, n and the standard error of z.
inline Correlation finish_correlation(double r, std::size_t n, double se_z, double confidence) {
  Correlation c;
  c.r = r;
  c.n = n;
  c.confidence = confidence;
  if (std::isnan(r)) {
    c.t = c.p_value = c.ci_low = c.ci_high = kNaN;
    return c;
  }
  const double df = static_cast<double>(n) - 2;
  const double one_minus_r2 = (1 - r) * (1 + r);
  if (one_minus_r2 <= 0) {  // |r| = 1: a perfect (deterministic) relation
    c.t = std::copysign(kInf, r);
    c.p_value = 0;
    c.ci_low = c.ci_high = r;
    return c;
  }
  c.t = r * std::sqrt(df / one_minus_r2);
  c.p_value = std::min(1.0, 2 * student_t_sf(std::fabs(c.t), df));
  const double z = std::atanh(r), half = normal_quantile(0.5 * (1 + confidence)) * se_z;
  c.ci_low = std::tanh(z - half);
  c.ci_high = std::tanh(z + half);
  return c;
}

}  // namespace detail::statistics

// ---------------------------------------------------------------------------------------------------
// Ranks and correlation
// ---------------------------------------------------------------------------------------------------

/// Ranks 1..n of the values, ties receiving the average of the ranks they span ("fractional" or
/// mid-ranks, as scipy.stats.rankdata(method="average")).
/// Example: average_ranks({10, 20, 20, 5}) == {2, 3.5, 3.5, 1}.
/// @throws ValidationError (`average_ranks.values[i]`) for a non-finite value.
inline std::vector<double> average_ranks(const std::vector<double>& values) {
  detail::statistics::require_finite("average_ranks", "values", values);
  const std::size_t n = values.size();
  // (value, position) pairs sorted directly: the comparisons read contiguous memory, not values[order[i]]
  // scattered over the input (three times faster at a million values).
  std::vector<std::pair<double, std::size_t>> sorted(n);
  for (std::size_t i = 0; i < n; ++i) sorted[i] = {values[i], i};
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> ranks(n);
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i + 1;
    while (j < n && sorted[j].first == sorted[i].first) ++j;
    const double avg = 0.5 * static_cast<double>(i + 1 + j);  // mean of ranks i+1 .. j
    for (std::size_t k = i; k < j; ++k) ranks[sorted[k].second] = avg;
    i = j;
  }
  return ranks;
}

/// Pearson's product-moment correlation r = S_xy / sqrt(S_xx S_yy) with the two-sided test
/// t = r sqrt((n - 2) / (1 - r^2)) ~ t_{n-2} and the Fisher (1921) interval
/// tanh(atanh(r) -/+ z_{(1+c)/2} / sqrt(n - 3)) (as scipy.stats.pearsonr(...).confidence_interval()).
/// For n = 3 the interval is [-1, 1]; for |r| = 1 it is [r, r] with p = 0. A constant x or y gives
/// r = t = p = ci = NaN (see the file comment).
/// @throws ValidationError if the sizes differ, n < 3, a value is not finite, or confidence is
/// outside (0, 1).
inline Correlation pearson(const std::vector<double>& x, const std::vector<double>& y, double confidence = 0.95) {
  namespace ds = detail::statistics;
  ds::require_pairs("pearson", "x", "y", x, y, 3);
  ds::require_confidence("pearson", confidence);
  const std::size_t n = x.size();
  const double se_z = 1 / std::sqrt(static_cast<double>(n) - 3);
  return ds::finish_correlation(ds::pearson_r(x, y), n, se_z, confidence);
}

/// Spearman's rank correlation: Pearson's r of the average ranks (ties get mid-ranks), with the t
/// approximation t = r sqrt((n - 2) / (1 - r^2)) ~ t_{n-2} for the p-value (as scipy.stats.spearmanr)
/// and a Fisher-z interval with the Fieller, Hartley & Pearson (1957) standard error sqrt(1.06 / (n - 3)):
/// tanh(atanh(r) -/+ z_{(1+c)/2} sqrt(1.06 / (n - 3))). Edge cases as pearson().
/// @throws ValidationError as pearson().
inline Correlation spearman(const std::vector<double>& x, const std::vector<double>& y, double confidence = 0.95) {
  namespace ds = detail::statistics;
  ds::require_pairs("spearman", "x", "y", x, y, 3);
  ds::require_confidence("spearman", confidence);
  const std::size_t n = x.size();
  const double se_z = std::sqrt(1.06 / (static_cast<double>(n) - 3));
  return ds::finish_correlation(ds::pearson_r(average_ranks(x), average_ranks(y)), n, se_z, confidence);
}

// ---------------------------------------------------------------------------------------------------
// Group comparisons
// ---------------------------------------------------------------------------------------------------

/// One-way ANOVA (Fisher 1925) over k groups with N values in all:
/// SS_between = sum n_i (m_i - m)^2, SS_within = sum_i sum_j (x_ij - m_i)^2, F = (SS_b / (k-1)) / (SS_w / (N-k)),
/// p = P(F_{k-1, N-k} >= F) (as scipy.stats.f_oneway); effect sizes eta^2 = SS_b / SS_t and
/// omega^2 = (SS_b - (k-1) MS_w) / (SS_t + MS_w) (Hays 1963; not truncated at 0).
/// If every value is equal, F, p, eta^2 and omega^2 are NaN; if only the within-group spread is 0,
/// F = +infinity and p = 0.
/// @throws ValidationError if there are fewer than 2 groups, a group is empty, N <= k, or a value is
/// not finite.
inline AnovaResult one_way_anova(const std::vector<std::vector<double>>& groups) {
  namespace ds = detail::statistics;
  const std::size_t total = ds::require_groups("one_way_anova", groups, 2);
  const std::size_t k = groups.size();
  if (total <= k)
    throw ValidationError("one_way_anova.groups",
                          fmt::format("has {} values in {} groups, expected more values than groups", total, k));
  std::vector<RunningMoments> moments(k);
  RunningMoments all;
  for (std::size_t g = 0; g < k; ++g) {
    for (double v : groups[g]) moments[g].add(v);
    all.merge(moments[g]);
  }
  double ss_between = 0, ss_within = 0;
  for (const auto& m : moments) {
    const double d = m.mean() - all.mean();
    ss_between += static_cast<double>(m.count()) * d * d;
    ss_within += m.m2();
  }
  AnovaResult r;
  r.df_between = static_cast<double>(k - 1);
  r.df_within = static_cast<double>(total - k);
  const double ss_total = ss_between + ss_within;
  if (!(ss_total > 0)) {
    r.f = r.p_value = r.eta_squared = r.omega_squared = ds::kNaN;
    return r;
  }
  const double ms_within = ss_within / r.df_within;
  r.f = ms_within > 0 ? (ss_between / r.df_between) / ms_within : ds::kInf;
  r.p_value = f_sf(r.f, r.df_between, r.df_within);
  r.eta_squared = ss_between / ss_total;
  r.omega_squared = (ss_between - r.df_between * ms_within) / (ss_total + ms_within);
  return r;
}

/// Kruskal-Wallis H test (Kruskal & Wallis 1952) on the pooled average ranks R_ij:
/// H = 12 / (N (N + 1)) sum_i R_i^2 / n_i - 3 (N + 1), divided by the tie correction
/// C = 1 - sum (t^3 - t) / (N^3 - N) over groups of t tied values; p = P(chi^2_{k-1} >= H)
/// (as scipy.stats.kruskal); epsilon^2 = H / ((N^2 - 1) / (N + 1)) = H / (N - 1) (Tomczak & Tomczak 2014).
/// If every value is equal (C = 0), h, p and epsilon^2 are NaN.
/// @throws ValidationError if there are fewer than 2 groups, a group is empty, N < 3, or a value is not
/// finite.
inline KruskalWallisResult kruskal_wallis(const std::vector<std::vector<double>>& groups) {
  namespace ds = detail::statistics;
  const std::size_t total = ds::require_groups("kruskal_wallis", groups, 2);
  if (total < 3)
    throw ValidationError("kruskal_wallis.groups", fmt::format("has {} values in all, expected at least 3", total));
  std::vector<double> pooled;
  pooled.reserve(total);
  for (const auto& g : groups) pooled.insert(pooled.end(), g.begin(), g.end());
  const std::vector<double> ranks = average_ranks(pooled);

  const double n = static_cast<double>(total);
  double sum_term = 0;
  std::size_t offset = 0;
  for (const auto& g : groups) {
    double rank_sum = 0;
    for (std::size_t i = 0; i < g.size(); ++i) rank_sum += ranks[offset + i];
    sum_term += rank_sum * rank_sum / static_cast<double>(g.size());
    offset += g.size();
  }
  // Tie correction from the sizes of runs of equal values.
  std::vector<double> sorted = pooled;
  std::sort(sorted.begin(), sorted.end());
  double ties = 0;
  for (std::size_t i = 0; i < sorted.size();) {
    std::size_t j = i + 1;
    while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
    const double t = static_cast<double>(j - i);
    ties += t * t * t - t;
    i = j;
  }
  const double correction = 1 - ties / (n * n * n - n);

  KruskalWallisResult r;
  r.df = static_cast<double>(groups.size() - 1);
  if (!(correction > 0)) {
    r.h = r.p_value = r.epsilon_squared = ds::kNaN;
    return r;
  }
  r.h = std::max(0.0, (12 / (n * (n + 1)) * sum_term - 3 * (n + 1)) / correction);
  r.p_value = chi_square_sf(r.h, r.df);
  r.epsilon_squared = r.h / (n - 1);
  return r;
}

/// Mean, standard deviation and Student t interval mean -/+ t_{(1+c)/2, n-1} sd / sqrt(n) of each group,
/// in the order given. A group with one value has sd = NaN and the interval (-infinity, +infinity).
/// @throws ValidationError if groups is empty, a group is empty, a value is not finite, or confidence
/// is outside (0, 1).
inline std::vector<GroupSummary> group_summaries(const std::vector<std::vector<double>>& groups,
                                                 double confidence = 0.95) {
  namespace ds = detail::statistics;
  ds::require_groups("group_summaries", groups, 1);
  ds::require_confidence("group_summaries", confidence);
  std::vector<GroupSummary> out;
  out.reserve(groups.size());
  for (const auto& g : groups) {
    RunningMoments m;
    for (double v : g) m.add(v);
    GroupSummary s;
    s.n = g.size();
    s.mean = m.mean();
    if (s.n < 2) {
      s.sd = ds::kNaN;
      s.ci_low = -ds::kInf;
      s.ci_high = ds::kInf;
    } else {
      s.sd = m.stddev();
      const double half = student_t_quantile(0.5 * (1 + confidence), static_cast<double>(s.n - 1)) *
                          m.standard_error();
      s.ci_low = s.mean - half;
      s.ci_high = s.mean + half;
    }
    out.push_back(s);
  }
  return out;
}

/// The per-domain template-effectiveness table: observations grouped by (domain, template_id), each
/// group summarised as in group_summaries(); rows sorted by domain ascending, then mean descending
/// (best template first), then template_id ascending for equal means.
/// Example: effectiveness_table({{"code", "cot", 8}, {"code", "cot", 9}, {"code", "plain", 6}})
///          == {{"code", "cot", 2, 8.5, ...}, {"code", "plain", 1, 6, -inf, inf}}.
/// Build the observations from EventRecord{domain, template_id, quality} with present(quality).
/// @throws ValidationError (`effectiveness_table.observations[i].quality`) for a non-finite quality, or
/// if confidence is outside (0, 1).
inline std::vector<EffectivenessRow> effectiveness_table(const std::vector<QualityObservation>& observations,
                                                         double confidence = 0.95) {
  namespace ds = detail::statistics;
  ds::require_confidence("effectiveness_table", confidence);
  std::map<std::pair<std::string, std::string>, std::vector<double>> cells;
  for (std::size_t i = 0; i < observations.size(); ++i) {
    const auto& o = observations[i];
    if (!std::isfinite(o.quality))
      throw ValidationError(fmt::format("effectiveness_table.observations[{}].quality", i),
                            fmt::format("{} is not a finite number", o.quality));
    cells[{o.domain, o.template_id}].push_back(o.quality);
  }
  std::vector<std::vector<double>> groups;
  groups.reserve(cells.size());
  for (auto& cell : cells) groups.push_back(std::move(cell.second));
  std::vector<EffectivenessRow> rows;
  if (groups.empty()) return rows;
  const std::vector<GroupSummary> summaries = group_summaries(groups, confidence);
  rows.reserve(cells.size());
  std::size_t i = 0;
  for (const auto& cell : cells) {
    const GroupSummary& s = summaries[i++];
    rows.push_back({cell.first.first, cell.first.second, s.n, s.mean, s.ci_low, s.ci_high});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const EffectivenessRow& a, const EffectivenessRow& b) {
    if (a.domain != b.domain) return a.domain < b.domain;
    if (a.mean != b.mean) return a.mean > b.mean;
    return a.template_id < b.template_id;
  });
  return rows;
}

// ---------------------------------------------------------------------------------------------------
// Multiple testing
// ---------------------------------------------------------------------------------------------------

/// Benjamini & Hochberg (1995) step-up false discovery rate control over m p-values. With p_(1) <= ... <=
/// p_(m) the adjusted value ("q-value", as R's p.adjust(method = "BH")) is
/// p~_(i) = min_{j >= i} min(1, m p_(j) / j), and hypothesis i is rejected iff p~_i <= q, which rejects
/// exactly the i with p_(i) <= p_(k) for the largest k such that p_(k) <= k q / m. Results are in the
/// input order; an empty input gives an empty result.
/// Example: benjamini_hochberg({0.01, 0.04, 0.03, 0.2}).adjusted == {0.04, 0.0533.., 0.0533.., 0.2}.
/// @throws ValidationError if a p-value is outside [0, 1] or NaN, or q is outside (0, 1).
inline FdrResult benjamini_hochberg(const std::vector<double>& p_values, double q = 0.05) {
  if (!(q > 0 && q < 1)) throw ValidationError("benjamini_hochberg.q", fmt::format("{} is outside (0, 1)", q));
  for (std::size_t i = 0; i < p_values.size(); ++i)
    if (!(p_values[i] >= 0 && p_values[i] <= 1))
      throw ValidationError(fmt::format("benjamini_hochberg.p_values[{}]", i),
                            fmt::format("{} is outside [0, 1]", p_values[i]));
  const std::size_t m = p_values.size();
  std::vector<std::size_t> order(m);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p_values[a] < p_values[b]; });
  FdrResult r;
  r.adjusted.assign(m, 1.0);
  r.rejected.assign(m, false);
  double running_min = 1.0;
  for (std::size_t rank = m; rank >= 1; --rank) {  // rank is 1-based position in ascending order
    const std::size_t i = order[rank - 1];
    running_min = std::min(running_min, static_cast<double>(m) * p_values[i] / static_cast<double>(rank));
    r.adjusted[i] = running_min;
  }
  for (std::size_t i = 0; i < m; ++i)
    if (r.adjusted[i] <= q) {
      r.rejected[i] = true;
      ++r.num_rejected;
    }
  return r;
}

// ---------------------------------------------------------------------------------------------------
// Trend and seasonality
// ---------------------------------------------------------------------------------------------------

/// Ordinary least squares y = a + b t: b = S_ty / S_tt, a = mean(y) - b mean(t),
/// SE(b) = sqrt(SSE / (n - 2) / S_tt), t = b / SE(b) ~ t_{n-2}, interval b -/+ t_{(1+c)/2, n-2} SE(b),
/// R^2 = 1 - SSE / SST (as scipy.stats.linregress; e.g. Montgomery, Peck & Vining, "Introduction to
/// Linear Regression Analysis", ch. 2). A perfect fit has SE = 0, an interval [b, b] and p = 0; a
/// constant y gives b = 0, SE = 0, p = 1 and R^2 = 0 (scipy's convention).
/// @throws ValidationError if the sizes differ, n < 3, a value is not finite, all t are equal (the slope
/// is undefined), or confidence is outside (0, 1).
inline LinearTrend linear_trend(const std::vector<double>& t, const std::vector<double>& y, double confidence = 0.95) {
  namespace ds = detail::statistics;
  ds::require_pairs("linear_trend", "t", "y", t, y, 3);
  ds::require_confidence("linear_trend", confidence);
  const std::size_t n = t.size();
  const double nd = static_cast<double>(n);
  double mt = 0, my = 0;
  for (std::size_t i = 0; i < n; ++i) {
    mt += t[i];
    my += y[i];
  }
  mt /= nd;
  my /= nd;
  double stt = 0, syy = 0, sty = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double dt = t[i] - mt, dy = y[i] - my;
    stt += dt * dt;
    syy += dy * dy;
    sty += dt * dy;
  }
  if (!(stt > 0)) throw ValidationError("linear_trend.t", fmt::format("all {} values are equal to {}", n, t[0]));
  LinearTrend r;
  r.n = n;
  r.confidence = confidence;
  r.slope = sty / stt;
  r.intercept = my - r.slope * mt;
  const double df = nd - 2;
  if (!(syy > 0)) {  // constant y: nothing to explain
    r.slope = 0;
    r.intercept = my;
    r.ci_low = r.ci_high = 0;
    r.p_value = 1;
    r.r_squared = 0;
    return r;
  }
  // Residual sum of squares from the residuals themselves (no cancellation in syy - b sty).
  double sse = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double e = y[i] - r.intercept - r.slope * t[i];
    sse += e * e;
  }
  r.r_squared = std::clamp(1 - sse / syy, 0.0, 1.0);
  r.se_slope = std::sqrt(sse / df / stt);
  if (!(r.se_slope > 0)) {
    r.ci_low = r.ci_high = r.slope;
    r.p_value = r.slope == 0 ? 1.0 : 0.0;
    return r;
  }
  const double tstat = r.slope / r.se_slope;
  r.p_value = std::min(1.0, 2 * student_t_sf(std::fabs(tstat), df));
  const double half = student_t_quantile(0.5 * (1 + confidence), df) * r.se_slope;
  r.ci_low = r.slope - half;
  r.ci_high = r.slope + half;
  return r;
}

/// The usual (biased) sample autocorrelation at `lag` (Box & Jenkins; Brockwell & Davis 1991, 1.4):
/// r_k = sum_{t=0}^{n-k-1} (y_t - m)(y_{t+k} - m) / sum_{t=0}^{n-1} (y_t - m)^2, dividing by n in both
/// sums so that the sequence r_0 = 1, r_1, ... is positive semi-definite. NaN for a constant series.
/// @throws ValidationError if y is empty, lag >= y.size(), or a value is not finite.
inline double autocorrelation(const std::vector<double>& y, std::size_t lag) {
  namespace ds = detail::statistics;
  ds::require_size("autocorrelation", "y", y.size(), 1);
  if (lag >= y.size())
    throw ValidationError("autocorrelation.lag", fmt::format("{} is not less than the series length {}", lag, y.size()));
  ds::require_finite("autocorrelation", "y", y);
  const std::size_t n = y.size();
  double m = 0;
  for (double v : y) m += v;
  m /= static_cast<double>(n);
  double c0 = 0, ck = 0;
  for (std::size_t i = 0; i < n; ++i) c0 += (y[i] - m) * (y[i] - m);
  for (std::size_t i = 0; i + lag < n; ++i) ck += (y[i] - m) * (y[i + lag] - m);
  if (!(c0 > 0)) return ds::kNaN;
  return ck / c0;
}

/// Autocorrelation at each of `lags` against the white-noise bound +/- z / sqrt(n) (Bartlett 1946: under
/// i.i.d. noise r_k is approximately N(0, 1/n); z = 1.96 gives a 5% test per lag). A lag is significant
/// when |r_k| > bound. For an hourly series the daily and weekly cycles are lags 24 and 168
/// (kHourlyDailyLag, kHourlyWeeklyLag); a weekly lag needs several weeks of data to be meaningful.
/// The bound is for white noise: with a strong short-lag correlation, Bartlett's wider bound
/// sqrt((1 + 2 sum_{j<k} r_j^2) / n) is more honest for the longer lags.
/// @throws ValidationError if y has fewer than 2 values, a lag is 0 or >= y.size(), a value is not
/// finite, or z is not a finite number > 0.
inline std::vector<SeasonalLag> seasonality(const std::vector<double>& y, const std::vector<std::size_t>& lags,
                                            double z = 1.96) {
  namespace ds = detail::statistics;
  ds::require_size("seasonality", "y", y.size(), 2);
  ds::require_finite("seasonality", "y", y);
  if (!(z > 0) || !std::isfinite(z))
    throw ValidationError("seasonality.z", fmt::format("{} is not a finite number > 0", z));
  for (std::size_t i = 0; i < lags.size(); ++i)
    if (lags[i] == 0 || lags[i] >= y.size())
      throw ValidationError(fmt::format("seasonality.lags[{}]", i),
                            fmt::format("{} is outside [1, {}]", lags[i], y.size() - 1));
  const double bound = z / std::sqrt(static_cast<double>(y.size()));
  std::vector<SeasonalLag> out;
  out.reserve(lags.size());
  for (std::size_t lag : lags) {
    SeasonalLag s;
    s.lag = lag;
    s.acf = autocorrelation(y, lag);
    s.bound = bound;
    s.significant = std::fabs(s.acf) > bound;  // false for NaN
    out.push_back(s);
  }
  return out;
}

}  // namespace promptlearn::patterns
