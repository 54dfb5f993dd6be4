#pragma once
/// @file Topic clustering of prompts: exact DBSCAN under cosine distance, and keyword labels for the
/// clusters (layer 2, header-only, no I/O, no clock, no threads).
///
/// DBSCAN (Ester, Kriegel, Sander & Xu, "A density-based algorithm for discovering clusters in large
/// spatial databases with noise", KDD 1996) with the cosine distance d(a, b) = 1 - a.b / (|a| |b|):
/// a point is *core* when at least `min_samples` points (itself included, as in the paper's MinPts and
/// scikit-learn's min_samples) lie within distance `eps`; clusters are the connected components of core
/// points (two core points are linked when within eps) plus the *border* points within eps of a core
/// point; every other point is noise (label -1).
///
/// The result is exactly that of the textbook sequential algorithm (scan points in order, expand a new
/// cluster from each unlabelled core point): clusters are numbered 0, 1, ... in the order of their
/// lowest-index core point, and a border point reachable from several clusters belongs to the one with
/// the smallest number (the first to be expanded). Only the neighbour *decisions* are computed
/// differently; they are evaluated in double precision as a.b / (|a| |b|) >= 1 - eps (a point is always
/// its own neighbour), so pairs within ~1e-15 of the threshold may be decided differently by another
/// formula for the same distance.
///
/// Zero vectors (and only they) have no direction: their cosine distance is undefined, so they are noise,
/// are nobody's neighbour and do not count towards anyone's min_samples.
///
/// Method (exact; see detail::CosineIndex): rows are scaled to unit length and eps becomes the angle
/// alpha = acos(1 - eps). The points are split into leaves of at most 128 points (recursive median split
/// along the direction between two far points); a leaf keeps its mean direction and its points sorted by
/// their angle theta_y to it. By the triangle inequality on the sphere, angle(x, y) >= |angle(x, dir) -
/// theta_y|, so two leaves are compared only if their caps come within alpha, and a point x only against
/// the contiguous run of a leaf's points with theta_y within alpha of angle(x, dir). Surviving pairs are
/// scored as float matrix products (Eigen GEMM, chunks of 32 points); scores within the float error bound
/// of the threshold are re-checked in double. Pass 1 counts neighbours leaf by leaf, nearest leaves first,
/// and stops counting a point once it is core; a non-core point's (fewer than min_samples) neighbours are
/// kept. Pass 2 joins core points within eps with union-find, skipping points already in the component
/// that holds all of a leaf's core points; border points then take the first cluster among their core
/// neighbours. Memory is O(n d) plus the neighbour lists of non-core points
/// (< min_samples each); the n x n distance matrix is never formed. Time: O(n d log n) for the partition,
/// O(n * leaves * d) for point-to-leaf bounds, plus O(d) per pair left after pruning: far below n^2 when
/// the data are clustered, the naive O(n^2 d) (as float GEMM) for structureless data.
///
/// Example:
///     Eigen::MatrixXd x = ...;                       // one row per prompt
///     auto topics = promptlearn::patterns::cluster_topics(x, keywords);   // eps 0.3, min_samples 5
///     for (const auto& c : topics.clusters) fmt::print("{} {} {}\n", c.id, c.size, c.top_keywords);
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <Eigen/Core>
#include <fmt/format.h>

#include "promptlearn/core/error.hpp"

namespace promptlearn::patterns {

/// Label of a point that belongs to no cluster.
inline constexpr int kNoise = -1;

/// DBSCAN parameters; the member initialisers are the specification's defaults
/// (learning_strategies.pattern_recognition: dbscan, eps 0.3, min_samples 5).
struct DbscanParams {
  double eps = 0.3;     ///< Neighbourhood radius in cosine distance (1 - cos), in (0, 2].
  int min_samples = 5;  ///< Points within eps, the point itself included, that make a point core; >= 1.

  /// @throws ConfigError naming `dbscan.eps` or `dbscan.min_samples` when a value is out of range.
  void validate() const {
    if (!(eps > 0.0 && eps <= 2.0)) throw ConfigError("dbscan.eps", fmt::format("{} is outside (0, 2]", eps));
    if (min_samples < 1)
      throw ConfigError("dbscan.min_samples", fmt::format("{} is less than 1", min_samples));
  }
};

/// One cluster: a topic.
struct TopicCluster {
  int id = 0;                             ///< 0, 1, ... in the order of the cluster's first core point.
  std::size_t size = 0;                   ///< Member points (core and border).
  std::vector<std::string> top_keywords;  ///< Most over-represented keywords (empty until labelled).
  Eigen::VectorXd centroid;               ///< Mean of the members' unit-length vectors (norm <= 1).
};

/// The result of DBSCAN: a label per point, and the clusters.
struct Clustering {
  std::vector<int> labels;            ///< Per point (input order): cluster id, or kNoise (-1).
  std::vector<bool> core;             ///< Per point: true if the point is a core point.
  std::vector<TopicCluster> clusters; ///< Indexed by id.
  std::size_t noise = 0;              ///< Points labelled kNoise (zero vectors included).
};

namespace detail {

inline constexpr double kPi = 3.14159265358979323846;

/// Union-find over 0..n-1 with path halving; a root is the smallest index of its set.
class UnionFind {
 public:
  explicit UnionFind(std::size_t n) : parent_(n) { std::iota(parent_.begin(), parent_.end(), 0); }
  int find(int x) {
    while (parent_[static_cast<std::size_t>(x)] != x) {
      int& p = parent_[static_cast<std::size_t>(x)];
      p = parent_[static_cast<std::size_t>(p)];
      x = p;
    }
    return x;
  }
  void unite(int a, int b) {
    a = find(a);
    b = find(b);
    if (a == b) return;
    if (a < b) std::swap(a, b);
    parent_[static_cast<std::size_t>(a)] = b;
  }

 private:
  std::vector<int> parent_;
};

/// Upper bound on |float dot - exact dot| for two vectors of norm <= 1 in `dim` dimensions, rounding of
/// the inputs to float included: twice the classical gamma_(dim+2) bound (Higham, Accuracy and Stability
/// of Numerical Algorithms, 3.1), whatever the summation order.
inline double float_dot_tolerance(Eigen::Index dim) {
  return 2.0 * static_cast<double>(dim + 2) * std::ldexp(1.0, -24) + 1e-12;
}

/// The partition of unit vectors that the region queries run on: leaves of nearby points, each bounded
/// by a spherical cap (a centre direction and the largest and smallest angle of its points to it).
struct CosineIndex {
  static constexpr std::size_t kLeafSize = 128;
  std::vector<int> point;         ///< tree position -> input index
  Eigen::MatrixXd unit;           ///< dim x m unit vectors in tree order
  Eigen::MatrixXf unit_f;         ///< the same in float, for the GEMM scoring
  std::vector<int> leaf_begin;    ///< leaf k holds tree positions [leaf_begin[k], leaf_begin[k + 1])
  Eigen::MatrixXd dir;            ///< dim x leaves: unit centre direction of each leaf
  Eigen::MatrixXf dir_f;
  Eigen::VectorXd theta_max;      ///< per leaf: largest angle between a point and the centre direction
  Eigen::VectorXd theta_min;      ///< per leaf: smallest such angle
  Eigen::VectorXd theta;          ///< per tree position: angle to its leaf's direction (descending in a leaf)

  std::size_t leaves() const { return leaf_begin.empty() ? 0 : leaf_begin.size() - 1; }
};

/// Slack on angles computed in double, which acos amplifies near 0 (sqrt(2 * 1e-14) ~ 1.4e-7).
inline constexpr double kAngleSlack = 1e-6;

/// Recursive median split of idx[b, e) along the direction between two far points.
inline void split_ball(const Eigen::MatrixXd& u, std::vector<int>& idx, std::size_t b, std::size_t e,
                       std::vector<int>& bounds) {
  if (e - b <= CosineIndex::kLeafSize) {
    bounds.push_back(static_cast<int>(e));
    return;
  }
  const Eigen::Index dim = u.rows();
  Eigen::VectorXd c = Eigen::VectorXd::Zero(dim);
  for (std::size_t i = b; i < e; ++i) c += u.col(idx[i]);
  c /= static_cast<double>(e - b);
  auto farthest = [&](const Eigen::VectorXd& from) {
    std::size_t best = b;
    double best_d = -1;
    for (std::size_t i = b; i < e; ++i) {
      double d = (u.col(idx[i]) - from).squaredNorm();
      if (d > best_d) best_d = d, best = i;
    }
    return best;
  };
  const Eigen::VectorXd p1 = u.col(idx[farthest(c)]);
  const Eigen::VectorXd p2 = u.col(idx[farthest(p1)]);
  const Eigen::VectorXd dir = p2 - p1;
  std::vector<std::pair<double, int>> proj(e - b);
  for (std::size_t i = b; i < e; ++i) proj[i - b] = {dir.dot(u.col(idx[i])), idx[i]};
  const std::size_t half = (e - b) / 2;
  std::nth_element(proj.begin(), proj.begin() + static_cast<std::ptrdiff_t>(half), proj.end());
  for (std::size_t i = b; i < e; ++i) idx[i] = proj[i - b].second;
  split_ball(u, idx, b, b + half, bounds);
  split_ball(u, idx, b + half, e, bounds);
}

/// Builds the index over the columns `idx` of `u` (unit vectors, dim x n).
inline CosineIndex build_index(const Eigen::MatrixXd& u, std::vector<int> idx) {
  CosineIndex ix;
  ix.leaf_begin.push_back(0);
  if (!idx.empty()) split_ball(u, idx, 0, idx.size(), ix.leaf_begin);
  const Eigen::Index dim = u.rows(), m = static_cast<Eigen::Index>(idx.size());
  ix.point = std::move(idx);
  const Eigen::Index leaves = static_cast<Eigen::Index>(ix.leaves());
  ix.dir.resize(dim, leaves);
  ix.theta_max.resize(leaves);
  ix.theta_min.resize(leaves);
  ix.theta.resize(m);
  ix.unit.resize(dim, m);
  std::vector<std::pair<double, int>> by_angle;
  for (Eigen::Index k = 0; k < leaves; ++k) {
    const int b = ix.leaf_begin[static_cast<std::size_t>(k)], e = ix.leaf_begin[static_cast<std::size_t>(k) + 1];
    Eigen::VectorXd c = Eigen::VectorXd::Zero(dim);
    for (int i = b; i < e; ++i) c += u.col(ix.point[static_cast<std::size_t>(i)]);
    const double norm = c.norm();  // any direction gives valid bounds; the mean direction gives tight ones
    ix.dir.col(k) = norm > 1e-9 ? Eigen::VectorXd(c / norm) : Eigen::VectorXd(u.col(ix.point[static_cast<std::size_t>(b)]));
    by_angle.clear();
    for (int i = b; i < e; ++i) {
      const int p = ix.point[static_cast<std::size_t>(i)];
      by_angle.push_back({std::acos(std::max(-1.0, std::min(1.0, u.col(p).dot(ix.dir.col(k))))), p});
    }
    std::sort(by_angle.begin(), by_angle.end(), std::greater<>());
    for (int i = b; i < e; ++i) {
      const auto& [angle, p] = by_angle[static_cast<std::size_t>(i - b)];
      ix.point[static_cast<std::size_t>(i)] = p;
      ix.theta(i) = angle;
      ix.unit.col(i) = u.col(p);
    }
    ix.theta_max(k) = ix.theta(b);
    ix.theta_min(k) = ix.theta(e - 1);
  }
  ix.unit_f = ix.unit.cast<float>();
  ix.dir_f = ix.dir.cast<float>();
  return ix;
}

/// Leaves whose cap may hold a point within angle alpha of a point of leaf a's cap (spherical triangle
/// inequality: angle(x, y) >= angle(dir_a, dir_b) - theta_max_a - theta_max_b), nearest first, a first.
inline std::vector<int> candidate_leaves(const CosineIndex& ix, int a, double alpha) {
  const Eigen::VectorXd g = ix.dir.transpose() * ix.dir.col(a);
  std::vector<std::pair<double, int>> found;
  for (Eigen::Index k = 0; k < g.size(); ++k) {
    const double between = std::acos(std::max(-1.0, std::min(1.0, g(k))));
    if (k == a || between - ix.theta_max(a) - ix.theta_max(k) <= alpha + 3 * kAngleSlack)
      found.push_back({k == a ? -1.0 : between, static_cast<int>(k)});
  }
  std::sort(found.begin(), found.end());
  std::vector<int> out(found.size());
  for (std::size_t i = 0; i < found.size(); ++i) out[i] = found[i].second;
  return out;
}

/// Exact DBSCAN over the columns of u (unit vectors, dim x n; columns with usable[i] == false are noise).
inline Clustering dbscan_unit(const Eigen::MatrixXd& u, const std::vector<char>& usable, const DbscanParams& params) {
  const std::size_t n = usable.size();
  const Eigen::Index dim = u.rows();
  const std::size_t min_samples = static_cast<std::size_t>(params.min_samples);
  Clustering out;
  out.labels.assign(n, kNoise);
  out.core.assign(n, false);

  std::vector<int> idx;
  for (std::size_t i = 0; i < n; ++i)
    if (usable[i]) idx.push_back(static_cast<int>(i));
  const CosineIndex ix = build_index(u, std::move(idx));
  const int m = static_cast<int>(ix.point.size());
  const double thr = 1.0 - params.eps;
  const double alpha = std::acos(std::max(-1.0, thr));  // eps as an angle
  const double tol = float_dot_tolerance(dim);
  const float lo = static_cast<float>(thr - tol), hi = static_cast<float>(thr + tol);
  // Neighbour decision for tree positions x, y given their float score.
  auto is_neighbour = [&](int x, int y, float score) {
    if (score < lo) return false;
    if (score >= hi || x == y) return true;
    return ix.unit.col(x).dot(ix.unit.col(y)) >= thr;
  };

  Eigen::MatrixXf fa(dim, static_cast<Eigen::Index>(CosineIndex::kLeafSize));
  Eigen::MatrixXf fb(dim, static_cast<Eigen::Index>(CosineIndex::kLeafSize));
  Eigen::MatrixXf block, dir_cand, point_dir;
  // block = scores of the points `rows` against the tree positions [c0, c1), or against `cols` if given.
  auto score = [&](const int* rows, std::size_t nrows, int c0, int c1, const std::vector<int>* cols) {
    for (std::size_t i = 0; i < nrows; ++i) fa.col(static_cast<Eigen::Index>(i)) = ix.unit_f.col(rows[i]);
    const Eigen::Index ka = static_cast<Eigen::Index>(nrows);
    if (cols == nullptr) {
      block.noalias() = fa.leftCols(ka).transpose() * ix.unit_f.middleCols(c0, c1 - c0);
    } else {
      for (std::size_t j = 0; j < cols->size(); ++j) fb.col(static_cast<Eigen::Index>(j)) = ix.unit_f.col((*cols)[j]);
      block.noalias() = fa.leftCols(ka).transpose() * fb.leftCols(static_cast<Eigen::Index>(cols->size()));
    }
  };

  // Point-to-leaf test. With t = angle(x, dir_b), a point y of leaf b at angle theta_y from dir_b has
  // angle(x, y) >= |t - theta_y| (triangle inequality on the sphere), so only the y with theta_y in
  // [t - alpha, t + alpha] can be neighbours of x: a contiguous range of leaf b, whose points are sorted by
  // decreasing theta_y. t is known from the float score s = x.dir_b to within tol. A quick test in cosines
  // first: no y qualifies when s + tol < cos(alpha + theta_max_b) or s - tol > cos(theta_min_b - alpha).
  const Eigen::Index leaves = static_cast<Eigen::Index>(ix.leaves());
  Eigen::VectorXd far_cos(leaves), near_cos(leaves);
  for (Eigen::Index k = 0; k < leaves; ++k) {
    const double far = alpha + ix.theta_max(k) + 2 * kAngleSlack, near = ix.theta_min(k) - alpha - 2 * kAngleSlack;
    far_cos(k) = far >= kPi ? -2.0 : std::cos(far);
    near_cos(k) = near <= 0 ? 2.0 : std::cos(near);
  }
  auto dir_scores = [&](int a, const std::vector<int>& cands) {
    dir_cand.resize(dim, static_cast<Eigen::Index>(cands.size()));
    for (std::size_t k = 0; k < cands.size(); ++k) dir_cand.col(static_cast<Eigen::Index>(k)) = ix.dir_f.col(cands[k]);
    const int a0 = ix.leaf_begin[static_cast<std::size_t>(a)], na = ix.leaf_begin[static_cast<std::size_t>(a) + 1] - a0;
    point_dir.noalias() = ix.unit_f.middleCols(a0, na).transpose() * dir_cand;
  };
  // Tree positions [first, second) of leaf b that may hold neighbours of point local_x of the current leaf.
  auto reach = [&](int local_x, std::size_t cand_pos, int b) -> std::pair<int, int> {
    const double s = static_cast<double>(point_dir(local_x, static_cast<Eigen::Index>(cand_pos)));
    const int b0 = ix.leaf_begin[static_cast<std::size_t>(b)], b1 = ix.leaf_begin[static_cast<std::size_t>(b) + 1];
    if (s + tol < far_cos(b) || s - tol > near_cos(b)) return {b0, b0};
    const double t_lo = std::acos(std::min(1.0, s + tol)), t_hi = std::acos(std::max(-1.0, s - tol));
    const double keep_above = t_lo - alpha - 2 * kAngleSlack, keep_below = t_hi + alpha + 2 * kAngleSlack;
    const double* th = ix.theta.data();
    const int first = static_cast<int>(std::partition_point(th + b0, th + b1, [&](double v) { return v > keep_below; }) - th);
    const int last = static_cast<int>(std::partition_point(th + first, th + b1, [&](double v) { return v >= keep_above; }) - th);
    return {first, last};
  };
  struct Active {
    int pos, first, last;
  };
  std::vector<Active> active;
  std::vector<int> rows, cols;
  constexpr std::size_t kChunk = 32;
  // Visits the active points in chunks of similar ranges: fn(rows, nrows, union first, union last).
  auto for_chunks = [&](auto&& fn) {
    std::sort(active.begin(), active.end(), [](const Active& x, const Active& y) {
      return x.last != y.last ? x.last > y.last : x.first != y.first ? x.first < y.first : x.pos < y.pos;
    });
    for (std::size_t c = 0; c < active.size(); c += kChunk) {
      const std::size_t e = std::min(active.size(), c + kChunk);
      rows.clear();
      int first = active[c].first, last = active[c].last;
      for (std::size_t i = c; i < e; ++i) {
        rows.push_back(active[i].pos);
        first = std::min(first, active[i].first);
        last = std::max(last, active[i].last);
      }
      fn(first, last);
    }
  };

  // Pass 1: core points. Non-core points keep their complete neighbour lists (tree positions, self excluded).
  std::vector<char> core(static_cast<std::size_t>(m), 0);
  std::vector<std::vector<int>> border_nbrs(static_cast<std::size_t>(m));
  std::vector<std::size_t> count;
  std::vector<std::vector<int>> local_nbrs;
  for (int a = 0; a < static_cast<int>(leaves); ++a) {
    const int a0 = ix.leaf_begin[static_cast<std::size_t>(a)], na = ix.leaf_begin[static_cast<std::size_t>(a) + 1] - a0;
    const std::vector<int> cands = candidate_leaves(ix, a, alpha);
    dir_scores(a, cands);
    count.assign(static_cast<std::size_t>(na), 0);
    local_nbrs.assign(static_cast<std::size_t>(na), {});
    std::size_t open = static_cast<std::size_t>(na);  // points not yet known to be core
    for (std::size_t c = 0; c < cands.size() && open > 0; ++c) {
      const int b = cands[c];
      active.clear();
      for (int i = 0; i < na; ++i)
        if (count[static_cast<std::size_t>(i)] < min_samples) {
          const auto [first, last] = reach(i, c, b);
          if (first < last) active.push_back({a0 + i, first, last});
        }
      for_chunks([&](int first, int last) {
        score(rows.data(), rows.size(), first, last, nullptr);
        for (Eigen::Index j = 0; j < block.cols(); ++j)
          for (Eigen::Index i = 0; i < block.rows(); ++i) {
            const int x = rows[static_cast<std::size_t>(i)], y = first + static_cast<int>(j);
            if (!is_neighbour(x, y, block(i, j))) continue;
            const std::size_t li = static_cast<std::size_t>(x - a0);
            if (count[li] >= min_samples) continue;
            if (++count[li] == min_samples) {
              --open;
              local_nbrs[li].clear();
            } else if (x != y) {
              local_nbrs[li].push_back(y);
            }
          }
      });
    }
    for (int i = 0; i < na; ++i) {
      if (count[static_cast<std::size_t>(i)] >= min_samples) core[static_cast<std::size_t>(a0 + i)] = 1;
      else border_nbrs[static_cast<std::size_t>(a0 + i)] = std::move(local_nbrs[static_cast<std::size_t>(i)]);
    }
  }

  // Pass 2: connected components of core points.
  UnionFind uf(static_cast<std::size_t>(m));
  std::vector<std::vector<int>> leaf_core(ix.leaves());
  for (std::size_t k = 0; k < ix.leaves(); ++k)
    for (int p = ix.leaf_begin[k]; p < ix.leaf_begin[k + 1]; ++p)
      if (core[static_cast<std::size_t>(p)]) leaf_core[k].push_back(p);
  for (int a = 0; a < static_cast<int>(leaves); ++a) {
    const std::vector<int>& core_a = leaf_core[static_cast<std::size_t>(a)];
    if (core_a.empty()) continue;
    const int a0 = ix.leaf_begin[static_cast<std::size_t>(a)];
    const std::vector<int> cands = candidate_leaves(ix, a, alpha);
    dir_scores(a, cands);
    for (std::size_t c = 0; c < cands.size(); ++c) {
      const int b = cands[c];
      const std::vector<int>& core_b = leaf_core[static_cast<std::size_t>(b)];
      if (b < a || core_b.empty()) continue;
      // Skip the points of a already in the one component that holds all of b's core points.
      int root_b = uf.find(core_b[0]);
      for (int y : core_b)
        if (uf.find(y) != root_b) {
          root_b = -1;
          break;
        }
      active.clear();
      for (int x : core_a)
        if (uf.find(x) != root_b) {
          const auto [first, last] = reach(x - a0, c, b);
          if (first < last) active.push_back({x, first, last});
        }
      for_chunks([&](int first, int last) {
        cols.assign(std::lower_bound(core_b.begin(), core_b.end(), first),
                    std::lower_bound(core_b.begin(), core_b.end(), last));
        if (cols.empty()) return;
        score(rows.data(), rows.size(), 0, 0, &cols);
        for (Eigen::Index j = 0; j < block.cols(); ++j)
          for (Eigen::Index i = 0; i < block.rows(); ++i) {
            const int x = rows[static_cast<std::size_t>(i)], y = cols[static_cast<std::size_t>(j)];
            if (is_neighbour(x, y, block(i, j))) uf.unite(x, y);
          }
      });
    }
  }

  // Number clusters by their lowest-index core point (input order), as the sequential algorithm does.
  constexpr int kNone = std::numeric_limits<int>::max();
  std::vector<int> first_core(static_cast<std::size_t>(m), kNone);  // per root: lowest input index
  for (int p = 0; p < m; ++p)
    if (core[static_cast<std::size_t>(p)]) {
      int& f = first_core[static_cast<std::size_t>(uf.find(p))];
      f = std::min(f, ix.point[static_cast<std::size_t>(p)]);
    }
  std::vector<int> order_of_root;  // roots sorted by first core point
  for (int p = 0; p < m; ++p)
    if (first_core[static_cast<std::size_t>(p)] != kNone) order_of_root.push_back(p);
  std::sort(order_of_root.begin(), order_of_root.end(), [&](int x, int y) {
    return first_core[static_cast<std::size_t>(x)] < first_core[static_cast<std::size_t>(y)];
  });
  std::vector<int> id_of_root(static_cast<std::size_t>(m), kNoise);
  for (std::size_t k = 0; k < order_of_root.size(); ++k)
    id_of_root[static_cast<std::size_t>(order_of_root[k])] = static_cast<int>(k);

  for (int p = 0; p < m; ++p) {
    const std::size_t in = static_cast<std::size_t>(ix.point[static_cast<std::size_t>(p)]);
    if (core[static_cast<std::size_t>(p)]) {
      out.core[in] = true;
      out.labels[in] = id_of_root[static_cast<std::size_t>(uf.find(p))];
      continue;
    }
    int best = kNoise;  // the earliest-expanded cluster among the core neighbours
    for (int q : border_nbrs[static_cast<std::size_t>(p)])
      if (core[static_cast<std::size_t>(q)]) {
        const int id = id_of_root[static_cast<std::size_t>(uf.find(q))];
        if (best == kNoise || id < best) best = id;
      }
    out.labels[in] = best;
  }

  out.clusters.resize(order_of_root.size());
  for (std::size_t k = 0; k < out.clusters.size(); ++k) {
    out.clusters[k].id = static_cast<int>(k);
    out.clusters[k].centroid = Eigen::VectorXd::Zero(dim);
  }
  for (std::size_t i = 0; i < n; ++i) {
    const int l = out.labels[i];
    if (l == kNoise) {
      ++out.noise;
      continue;
    }
    TopicCluster& cl = out.clusters[static_cast<std::size_t>(l)];
    ++cl.size;
    cl.centroid += u.col(static_cast<Eigen::Index>(i));
  }
  for (TopicCluster& cl : out.clusters) cl.centroid /= static_cast<double>(cl.size);
  return out;
}

/// Unit-length copy of one point as column `col` of u; false for a zero vector.
/// @throws ValidationError `path[j]` for a non-finite coordinate.
template <typename Vec>
bool put_unit(const Vec& v, Eigen::MatrixXd& u, Eigen::Index col, const std::string& path) {
  for (Eigen::Index j = 0; j < v.size(); ++j)
    if (!std::isfinite(v(j))) throw ValidationError(fmt::format("{}[{}]", path, j), fmt::format("{} is not a finite number", v(j)));
  const double norm = v.norm();
  if (norm == 0.0) {
    u.col(col).setZero();
    return false;
  }
  for (Eigen::Index j = 0; j < v.size(); ++j) u(j, col) = v(j) / norm;
  return true;
}

}  // namespace detail

/// Clusters the rows of `rows` (one point per row) with DBSCAN under cosine distance.
/// Example: `auto c = dbscan(x); int topic_of_first = c.labels[0];`
/// @throws ConfigError from params.validate(); ValidationError `dbscan.rows[i][j]` for a non-finite value.
inline Clustering dbscan(const Eigen::Ref<const Eigen::MatrixXd>& rows, const DbscanParams& params = {}) {
  params.validate();
  Eigen::MatrixXd u(rows.cols(), rows.rows());
  std::vector<char> usable(static_cast<std::size_t>(rows.rows()));
  for (Eigen::Index i = 0; i < rows.rows(); ++i)
    usable[static_cast<std::size_t>(i)] = detail::put_unit(rows.row(i), u, i, fmt::format("dbscan.rows[{}]", i));
  return detail::dbscan_unit(u, usable, params);
}

/// Clusters `points` (all of one dimension) with DBSCAN under cosine distance.
/// @throws ConfigError from params.validate(); ValidationError `dbscan.points[i]` for a dimension that
/// differs from points[0], or `dbscan.points[i][j]` for a non-finite value.
inline Clustering dbscan(const std::vector<Eigen::VectorXd>& points, const DbscanParams& params = {}) {
  params.validate();
  const Eigen::Index dim = points.empty() ? 0 : points[0].size();
  Eigen::MatrixXd u(dim, static_cast<Eigen::Index>(points.size()));
  std::vector<char> usable(points.size());
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (points[i].size() != dim)
      throw ValidationError(fmt::format("dbscan.points[{}]", i),
                            fmt::format("has {} values, expected {} (the size of points[0])", points[i].size(), dim));
    usable[i] = detail::put_unit(points[i], u, static_cast<Eigen::Index>(i), fmt::format("dbscan.points[{}]", i));
  }
  return detail::dbscan_unit(u, usable, params);
}

/// Labels each cluster with its `top_k` most over-represented keywords, by the tf-idf-like score
/// n_C(k) * ln(N / n(k)): n_C(k) = the cluster's points that list keyword k, n(k) = all N points that list
/// it (noise included); a keyword repeated in one point's list counts once. Ties go to the larger n_C(k),
/// then alphabetical order. Keywords listed by every point (score 0) never label a cluster.
/// @throws ValidationError `label_topics.keywords` when there is not one list per point.
inline void label_topics(Clustering& clustering, const std::vector<std::vector<std::string>>& keywords,
                         std::size_t top_k = 3) {
  const std::size_t n = clustering.labels.size();
  if (keywords.size() != n)
    throw ValidationError("label_topics.keywords",
                          fmt::format("has {} lists, expected one per point ({})", keywords.size(), n));
  std::unordered_map<std::string, std::size_t> docs;
  std::vector<std::unordered_map<std::string, std::size_t>> in_cluster(clustering.clusters.size());
  std::unordered_set<std::string> seen;
  for (std::size_t i = 0; i < n; ++i) {
    seen.clear();
    for (const std::string& k : keywords[i]) {
      if (!seen.insert(k).second) continue;
      ++docs[k];
      if (clustering.labels[i] != kNoise) ++in_cluster[static_cast<std::size_t>(clustering.labels[i])][k];
    }
  }
  for (std::size_t c = 0; c < clustering.clusters.size(); ++c) {
    struct Scored {
      double score;
      std::size_t count;
      const std::string* word;
    };
    std::vector<Scored> scored;
    for (const auto& [word, count] : in_cluster[c]) {
      const double s = static_cast<double>(count) * std::log(static_cast<double>(n) / static_cast<double>(docs[word]));
      if (s > 0) scored.push_back({s, count, &word});
    }
    std::sort(scored.begin(), scored.end(), [](const Scored& a, const Scored& b) {
      if (a.score != b.score) return a.score > b.score;
      if (a.count != b.count) return a.count > b.count;
      return *a.word < *b.word;
    });
    auto& top = clustering.clusters[c].top_keywords;
    top.clear();
    for (std::size_t k = 0; k < scored.size() && k < top_k; ++k) top.push_back(*scored[k].word);
  }
}

/// DBSCAN on `rows` and keyword labels from `keywords` (one list per row): dbscan() then label_topics().
/// @throws ConfigError, ValidationError as those do.
inline Clustering cluster_topics(const Eigen::Ref<const Eigen::MatrixXd>& rows,
                                 const std::vector<std::vector<std::string>>& keywords,
                                 const DbscanParams& params = {}, std::size_t top_k = 3) {
  if (keywords.size() != static_cast<std::size_t>(rows.rows()))
    throw ValidationError("cluster_topics.keywords",
                          fmt::format("has {} lists, expected one per row ({})", keywords.size(), rows.rows()));
  Clustering c = dbscan(rows, params);
  label_topics(c, keywords, top_k);
  return c;
}

}  // namespace promptlearn::patterns
