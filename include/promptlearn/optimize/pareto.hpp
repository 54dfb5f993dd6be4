#pragma once
/// @file
/// Multi-objective selection (layer 2, header-only; no I/O, clock or threads; deterministic given the
/// seed): Pareto dominance, NSGA-II's fast non-dominated sort and crowding distance (Deb, Pratap, Agarwal &
/// Meyarivan 2002, "A fast and elitist multiobjective genetic algorithm: NSGA-II", IEEE TEC 6(2)), the
/// NSGA-II optimiser over a box, and the two quality measures of that paper (convergence / generational
/// distance and spread).
///
/// Every objective is minimised; negate the ones to maximise. Choosing among templates over
/// (quality, latency, prompt length):
///
///     std::vector<std::vector<double>> f;
///     for (const auto& t : templates) f.push_back({-t.quality, t.latency_ms, double(t.length)});
///     for (std::size_t i : promptlearn::optimize::pareto_front(f)) offer(templates[i]);
#include <Eigen/Core>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <vector>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/optimize/genetic.hpp"

namespace promptlearn::optimize {

/// A point with its objectives (all minimised) and its index in the caller's list.
struct ParetoPoint {
  std::vector<double> objectives;
  std::size_t index = 0;
};

/// True when a Pareto-dominates b (minimising): a <= b in every objective and < in at least one.
/// Vectors of different lengths never dominate each other.
inline bool dominates(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  bool strictly = false;
  for (std::size_t m = 0; m < a.size(); ++m) {
    if (a[m] > b[m]) return false;
    if (a[m] < b[m]) strictly = true;
  }
  return strictly;
}

namespace detail {
/// @throws ValidationError (`objectives[3]: has 2 values, expected 3`, `objectives[1][0]: nan is not a number`).
inline void check_objectives(const std::vector<std::vector<double>>& f) {
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i].empty()) throw ValidationError(fmt::format("objectives[{}]", i), "is empty, expected at least one objective");
    if (f[i].size() != f[0].size())
      throw ValidationError(fmt::format("objectives[{}]", i), fmt::format("has {} values, expected {}", f[i].size(), f[0].size()));
    for (std::size_t m = 0; m < f[i].size(); ++m)
      if (std::isnan(f[i][m])) throw ValidationError(fmt::format("objectives[{}][{}]", i, m), "nan is not a number");
  }
}
}  // namespace detail

/// The fronts of the fast non-dominated sort (Deb et al. 2002, section III-A): front 0 holds the points no
/// other point dominates, front k the points dominated only by points of fronts < k. O(M N^2) time,
/// O(N^2) memory. Indices within a front are ascending; identical points share a front. Infinite values
/// are allowed (an infeasible objective = +inf).
/// @throws ValidationError for vectors of different lengths, empty vectors or NaN values.
inline std::vector<std::vector<std::size_t>> non_dominated_sort(const std::vector<std::vector<double>>& objectives) {
  detail::check_objectives(objectives);
  const std::size_t n = objectives.size();
  std::vector<std::vector<std::size_t>> dominated(n);  // S_p: the points p dominates
  std::vector<std::size_t> count(n, 0);                // n_p: how many points dominate p
  std::vector<std::vector<std::size_t>> fronts;
  std::vector<std::size_t> current;
  for (std::size_t p = 0; p < n; ++p) {
    for (std::size_t q = 0; q < n; ++q) {
      if (p == q) continue;
      if (dominates(objectives[p], objectives[q])) dominated[p].push_back(q);
      else if (dominates(objectives[q], objectives[p])) ++count[p];
    }
    if (count[p] == 0) current.push_back(p);
  }
  while (!current.empty()) {
    std::vector<std::size_t> next;
    for (std::size_t p : current)
      for (std::size_t q : dominated[p])
        if (--count[q] == 0) next.push_back(q);
    std::sort(next.begin(), next.end());
    fronts.push_back(std::move(current));
    current = std::move(next);
  }
  return fronts;
}

/// Crowding distance of each member of `front` (same order as `front`), Deb et al. 2002 section III-B:
/// for each objective m, sort the front by f_m; the two boundary points get +infinity, every other point
/// adds (f_m[next] - f_m[previous]) / (f_m max - f_m min); an objective constant over the front adds 0.
/// Fronts of one or two points are all +infinity. Ties are ordered by position in `front`.
/// @throws ValidationError for inconsistent objectives or an index out of range.
inline std::vector<double> crowding_distance(const std::vector<std::vector<double>>& objectives,
                                             const std::vector<std::size_t>& front) {
  for (std::size_t i = 0; i < front.size(); ++i)
    if (front[i] >= objectives.size())
      throw ValidationError(fmt::format("front[{}]", i), fmt::format("{} is out of range, {} points", front[i], objectives.size()));
  const std::size_t k = front.size();
  std::vector<double> d(k, 0.0);
  if (k == 0) return d;
  const std::size_t dims = objectives[front[0]].size();
  for (std::size_t i = 0; i < k; ++i)
    if (objectives[front[i]].size() != dims)
      throw ValidationError(fmt::format("objectives[{}]", front[i]), fmt::format("has {} values, expected {}",
                                                                                objectives[front[i]].size(), dims));
  const double inf = std::numeric_limits<double>::infinity();
  if (k <= 2) return std::vector<double>(k, inf);
  std::vector<std::size_t> order(k);
  for (std::size_t m = 0; m < dims; ++m) {
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return objectives[front[a]][m] < objectives[front[b]][m]; });
    const double lo = objectives[front[order.front()]][m], hi = objectives[front[order.back()]][m];
    d[order.front()] = inf;
    d[order.back()] = inf;
    const double range = hi - lo;
    if (!(range > 0) || !std::isfinite(range)) continue;
    for (std::size_t r = 1; r + 1 < k; ++r)
      d[order[r]] += (objectives[front[order[r + 1]]][m] - objectives[front[order[r - 1]]][m]) / range;
  }
  return d;
}

/// Indices (ascending) of the non-dominated points: the first front of `non_dominated_sort`, found in
/// O(M N^2) without building the later fronts.
/// @throws ValidationError for inconsistent objectives.
inline std::vector<std::size_t> pareto_front(const std::vector<std::vector<double>>& objectives) {
  detail::check_objectives(objectives);
  std::vector<std::size_t> out;
  for (std::size_t p = 0; p < objectives.size(); ++p) {
    bool dominated = false;
    for (std::size_t q = 0; q < objectives.size() && !dominated; ++q) dominated = q != p && dominates(objectives[q], objectives[p]);
    if (!dominated) out.push_back(p);
  }
  return out;
}

/// The same front as ParetoPoints (objectives and original index), for callers that carry points around.
inline std::vector<ParetoPoint> pareto_points(const std::vector<std::vector<double>>& objectives) {
  std::vector<ParetoPoint> out;
  for (std::size_t i : pareto_front(objectives)) out.push_back({objectives[i], i});
  return out;
}

/// NSGA-II settings (Deb et al. 2002 used population 100, 250 generations, SBX eta_c 20, polynomial
/// mutation eta_m 20, crossover 0.9, mutation 1/n). Thread-safety: plain value.
struct Nsga2Params {
  int population = 100;         ///< >= 4.
  int generations = 250;        ///< >= 0.
  double crossover_eta = 15;    ///< SBX distribution index, > 0.
  double mutation_eta = 20;     ///< Polynomial-mutation distribution index, > 0.
  double crossover_rate = 0.9;  ///< [0, 1]; per-variable mutation probability is 1/n.
  std::uint64_t seed = 42;

  /// @throws ConfigError naming the key (`nsga2.population: 2 is less than 4`).
  void validate() const {
    if (population < 4) throw ConfigError("nsga2.population", fmt::format("{} is less than 4", population));
    if (generations < 0) throw ConfigError("nsga2.generations", fmt::format("{} is negative", generations));
    if (!(crossover_eta > 0 && std::isfinite(crossover_eta)))
      throw ConfigError("nsga2.crossover_eta", fmt::format("{} is not a finite number > 0", crossover_eta));
    if (!(mutation_eta > 0 && std::isfinite(mutation_eta)))
      throw ConfigError("nsga2.mutation_eta", fmt::format("{} is not a finite number > 0", mutation_eta));
    if (!(crossover_rate >= 0 && crossover_rate <= 1))
      throw ConfigError("nsga2.crossover_rate", fmt::format("{} is outside [0, 1]", crossover_rate));
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Nsga2Params, population, generations, crossover_eta, mutation_eta,
                                                crossover_rate, seed)

/// What `nsga2` returns: the first front of the final population, sorted by the first objective.
struct Nsga2Result {
  std::vector<Eigen::VectorXd> front_x;
  std::vector<std::vector<double>> front_f;
  std::size_t evaluations = 0;  ///< population * (generations + 1).
};

/// Minimises `objectives` over the box [lower, upper] with NSGA-II (Deb et al. 2002): uniform initial
/// population P0; each generation, N offspring from binary tournaments under the crowded-comparison order
/// (lower front first, then larger crowding distance), SBX crossover with probability crossover_rate
/// (Deb & Agrawal 1995) and polynomial mutation with per-variable probability 1/n; the next population is
/// the best N of parents + offspring, filled front by front and the last front by decreasing crowding
/// distance. Every objective vector must have the same length.
/// @throws ConfigError from params.validate() or bounds (`nsga2.bounds[i]`).
/// @throws ValidationError for an objective vector of the wrong length or with NaN.
inline Nsga2Result nsga2(const std::function<std::vector<double>(const Eigen::VectorXd&)>& objectives,
                         const Eigen::VectorXd& lower, const Eigen::VectorXd& upper, const Nsga2Params& params = {}) {
  params.validate();
  detail::ga_check_bounds(lower, upper, "nsga2");
  if (!objectives) throw ConfigError("objectives", "is empty");
  Rng rng(params.seed);
  const auto n = static_cast<std::size_t>(params.population);
  const SbxCrossover sbx{params.crossover_eta};
  const PolynomialMutation pm{params.mutation_eta, 1.0 / static_cast<double>(lower.size())};
  Nsga2Result result;

  std::vector<Eigen::VectorXd> xs;
  std::vector<std::vector<double>> fs;
  auto evaluate = [&](const Eigen::VectorXd& x) {
    std::vector<double> f = objectives(x);
    ++result.evaluations;
    if (!fs.empty() && f.size() != fs.front().size())
      throw ValidationError("objectives", fmt::format("returned {} values, expected {}", f.size(), fs.front().size()));
    if (f.empty()) throw ValidationError("objectives", "returned no values");
    for (std::size_t m = 0; m < f.size(); ++m)
      if (std::isnan(f[m])) throw ValidationError(fmt::format("objectives[{}]", m), "nan is not a number");
    xs.push_back(x);
    fs.push_back(std::move(f));
  };
  for (std::size_t i = 0; i < n; ++i) evaluate(detail::ga_uniform_point(lower, upper, rng));

  // rank and crowding of the current population (indices into xs / fs)
  std::vector<std::size_t> rank(n, 0);
  std::vector<double> crowd(n, 0.0);
  auto assign = [&](const std::vector<std::vector<std::size_t>>& fronts) {
    for (std::size_t r = 0; r < fronts.size(); ++r) {
      const auto d = crowding_distance(fs, fronts[r]);
      for (std::size_t i = 0; i < fronts[r].size(); ++i) {
        rank[fronts[r][i]] = r;
        crowd[fronts[r][i]] = d[i];
      }
    }
  };
  assign(non_dominated_sort(fs));
  auto better = [&](std::size_t a, std::size_t b) {  // crowded-comparison operator
    return rank[a] < rank[b] || (rank[a] == rank[b] && crowd[a] > crowd[b]);
  };
  auto tournament = [&] {
    const std::size_t a = detail::ga_index(rng, n), b = detail::ga_index(rng, n);
    return better(b, a) ? b : a;
  };

  for (int gen = 0; gen < params.generations; ++gen) {
    while (xs.size() < 2 * n) {
      Eigen::VectorXd a = xs[tournament()], b = xs[tournament()];
      if (detail::ga_bernoulli(rng, params.crossover_rate)) sbx(a, b, lower, upper, rng);
      pm(a, lower, upper, rng);
      pm(b, lower, upper, rng);
      evaluate(a);
      if (xs.size() < 2 * n) evaluate(b);
    }
    const auto fronts = non_dominated_sort(fs);
    std::vector<std::size_t> chosen;
    rank.assign(2 * n, 0);
    crowd.assign(2 * n, 0.0);
    assign(fronts);
    for (const auto& front : fronts) {
      if (chosen.size() + front.size() <= n) {
        chosen.insert(chosen.end(), front.begin(), front.end());
        continue;
      }
      std::vector<std::size_t> last = front;
      std::stable_sort(last.begin(), last.end(), [&](std::size_t a, std::size_t b) { return crowd[a] > crowd[b]; });
      chosen.insert(chosen.end(), last.begin(), last.begin() + static_cast<std::ptrdiff_t>(n - chosen.size()));
      break;
    }
    std::vector<Eigen::VectorXd> nx;
    std::vector<std::vector<double>> nf;
    for (std::size_t i : chosen) {
      nx.push_back(std::move(xs[i]));
      nf.push_back(std::move(fs[i]));
    }
    xs = std::move(nx);
    fs = std::move(nf);
    // Crowding is recomputed on the survivors (as in Deb's reference code), so the next tournaments see
    // the distances within the new population.
    rank.assign(n, 0);
    crowd.assign(n, 0.0);
    assign(non_dominated_sort(fs));
  }

  std::vector<std::size_t> first = pareto_front(fs);
  std::stable_sort(first.begin(), first.end(), [&](std::size_t a, std::size_t b) { return fs[a][0] < fs[b][0]; });
  for (std::size_t i : first) {
    result.front_x.push_back(xs[i]);
    result.front_f.push_back(fs[i]);
  }
  return result;
}

/// Deb et al.'s convergence measure (2002, section V; "generational distance" in the sense of Van
/// Veldhuizen & Lamont 1998 with power 1): the mean over `front` of the Euclidean distance to the nearest
/// point of `reference` (a dense sampling of the true front). 0 when front is empty.
/// @throws ValidationError when reference is empty or dimensions differ.
inline double generational_distance(const std::vector<std::vector<double>>& front,
                                    const std::vector<std::vector<double>>& reference) {
  if (reference.empty()) throw ValidationError("reference", "is empty");
  if (front.empty()) return 0.0;
  double total = 0;
  for (std::size_t i = 0; i < front.size(); ++i) {
    double best = std::numeric_limits<double>::infinity();
    for (const auto& r : reference) {
      if (r.size() != front[i].size())
        throw ValidationError(fmt::format("front[{}]", i), fmt::format("has {} values, reference points have {}", front[i].size(), r.size()));
      double d2 = 0;
      for (std::size_t m = 0; m < r.size(); ++m) d2 += (front[i][m] - r[m]) * (front[i][m] - r[m]);
      best = std::min(best, d2);
    }
    total += std::sqrt(best);
  }
  return total / static_cast<double>(front.size());
}

/// Deb et al.'s spread Delta for two objectives (2002, eq. 1):
///   Delta = (d_f + d_l + sum_i |d_i - mean d|) / (d_f + d_l + (N - 1) mean d),
/// where the obtained front is sorted by f1, d_i are the N - 1 distances between neighbours, and d_f, d_l
/// the distances from the true front's extreme points (`extreme_first`: smallest f1, `extreme_last`) to the
/// obtained boundary points. 0 for a perfectly even front that reaches both extremes; about 1 for a
/// clustered one.
/// @throws ValidationError unless every point has two objectives and the front has at least two points.
inline double spread(std::vector<std::vector<double>> front, const std::vector<double>& extreme_first,
                     const std::vector<double>& extreme_last) {
  if (front.size() < 2) throw ValidationError("front", fmt::format("has {} points, expected at least 2", front.size()));
  if (extreme_first.size() != 2 || extreme_last.size() != 2) throw ValidationError("extreme_first", "expected two objectives");
  for (std::size_t i = 0; i < front.size(); ++i)
    if (front[i].size() != 2) throw ValidationError(fmt::format("front[{}]", i), "expected two objectives");
  std::stable_sort(front.begin(), front.end(), [](const auto& a, const auto& b) { return a[0] < b[0]; });
  auto dist = [](const std::vector<double>& a, const std::vector<double>& b) { return std::hypot(a[0] - b[0], a[1] - b[1]); };
  std::vector<double> d;
  for (std::size_t i = 1; i < front.size(); ++i) d.push_back(dist(front[i - 1], front[i]));
  const double mean = std::accumulate(d.begin(), d.end(), 0.0) / static_cast<double>(d.size());
  double dev = 0;
  for (double x : d) dev += std::fabs(x - mean);
  const double df = dist(extreme_first, front.front()), dl = dist(extreme_last, front.back());
  const double denom = df + dl + static_cast<double>(d.size()) * mean;
  return denom > 0 ? (df + dl + dev) / denom : 0.0;
}

}  // namespace promptlearn::optimize
