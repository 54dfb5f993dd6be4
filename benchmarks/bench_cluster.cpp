// promptlearn_bench cluster: topic clustering (patterns/clustering.hpp, exact DBSCAN under cosine distance,
// eps 0.3, min_samples 5) on planted topics.
//
//   promptlearn_bench cluster [--n 50000] [--dim 64] [--clusters 20] [--seed 1] [--noise 0.1] [--spread 0.07]
//                             [--naive-n 4000]
//
// Data: `clusters` random unit directions; a topic point is direction + N(0, spread^2) per coordinate (an
// angular noise: at spread 0.07 and dim 64 two points of one topic have cosine ~0.76 on average, so many
// same-topic pairs are *not* within eps and clusters hold together by density), times a random positive
// scale; a `noise` fraction of points are uniformly random directions (background). Points are shuffled.
//
// Line 1: the full run {"bench":"cluster","n","dim","seconds","points_per_s","clusters_found",
// "adjusted_rand_index","precision","recall", "metric":"points_per_s",...}. Scores are pairwise against the
// planted topics with every noise point (planted or found) a singleton; ARI of Hubert & Arabie (1985).
// Line 2: the baseline, the textbook algorithm (Ester et al. 1996: one O(n d) region query per point, in
// double) and the fast method on the first --naive-n points: both times, "ratio" = naive / fast, and
// whether the labels are identical.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "promptlearn/core/rng.hpp"
#include "promptlearn/patterns/clustering.hpp"
#include "bench_util.hpp"

namespace {

using promptlearn::bench::arg;

namespace pp = promptlearn::patterns;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Planted {
  Eigen::MatrixXd x;
  std::vector<int> truth;  // -1 = background
};

Planted planted(int n, int dim, int topics, double noise_fraction, double spread, std::uint64_t seed) {
  promptlearn::Rng rng(seed);
  Eigen::MatrixXd dirs(topics, dim);
  for (int t = 0; t < topics; ++t) {
    for (int j = 0; j < dim; ++j) dirs(t, j) = rng.normal();
    dirs.row(t).normalize();
  }
  Planted p;
  p.x.resize(n, dim);
  p.truth.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const bool noise = rng.uniform() < noise_fraction;
    const int t = noise ? -1 : static_cast<int>(rng.uniform_int(0, topics - 1));
    for (int j = 0; j < dim; ++j) p.x(i, j) = noise ? rng.normal() : dirs(t, j) + spread * rng.normal();
    p.x.row(i) *= rng.uniform(0.5, 3.0);
    p.truth[static_cast<std::size_t>(i)] = t;
  }
  return p;
}

double choose2(double k) { return k * (k - 1) / 2; }

struct Scores {
  double precision, recall, ari;
};

Scores pair_scores(const std::vector<int>& truth, const std::vector<int>& found) {
  std::map<std::pair<long long, long long>, double> joint;
  std::map<long long, double> a, b;
  long long singleton = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const long long t = truth[i] < 0 ? -1 - singleton : truth[i];
    const long long f = found[i] < 0 ? -1 - singleton : found[i];
    if (truth[i] < 0 || found[i] < 0) ++singleton;
    joint[{t, f}] += 1;
    a[t] += 1;
    b[f] += 1;
  }
  double both = 0, sa = 0, sb = 0;
  for (const auto& [k, v] : joint) both += choose2(v);
  for (const auto& [k, v] : a) sa += choose2(v);
  for (const auto& [k, v] : b) sb += choose2(v);
  const double total = choose2(static_cast<double>(truth.size()));
  const double expected = sa * sb / total, max_index = (sa + sb) / 2;
  return {sb > 0 ? both / sb : 0, sa > 0 ? both / sa : 0, (both - expected) / (max_index - expected)};
}

// The textbook algorithm: every region query scans all points (cosine in double).
std::vector<int> naive_dbscan(const Eigen::MatrixXd& x, double eps, int min_samples) {
  const Eigen::Index n = x.rows();
  Eigen::MatrixXd u(x.cols(), n);
  std::vector<char> zero(static_cast<std::size_t>(n));
  for (Eigen::Index i = 0; i < n; ++i) {
    const double norm = x.row(i).norm();
    zero[static_cast<std::size_t>(i)] = norm == 0;
    u.col(i) = norm == 0 ? Eigen::VectorXd::Zero(x.cols()) : Eigen::VectorXd(x.row(i).transpose() / norm);
  }
  auto region = [&](Eigen::Index i) {
    std::vector<Eigen::Index> out;
    if (zero[static_cast<std::size_t>(i)]) return out;
    for (Eigen::Index j = 0; j < n; ++j)
      if (!zero[static_cast<std::size_t>(j)] && (i == j || 1.0 - u.col(i).dot(u.col(j)) <= eps)) out.push_back(j);
    return out;
  };
  constexpr int kUnclassified = -2;
  std::vector<int> label(static_cast<std::size_t>(n), kUnclassified);
  int next = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    if (label[static_cast<std::size_t>(i)] != kUnclassified) continue;
    std::vector<Eigen::Index> seeds = region(i);
    if (static_cast<int>(seeds.size()) < min_samples) {
      label[static_cast<std::size_t>(i)] = pp::kNoise;
      continue;
    }
    const int id = next++;
    for (Eigen::Index s : seeds) label[static_cast<std::size_t>(s)] = id;
    for (std::size_t q = 0; q < seeds.size(); ++q) {
      const std::vector<Eigen::Index> r = region(seeds[q]);
      if (static_cast<int>(r.size()) < min_samples) continue;
      for (Eigen::Index o : r) {
        int& l = label[static_cast<std::size_t>(o)];
        if (l == kUnclassified) seeds.push_back(o);
        if (l == kUnclassified || l == pp::kNoise) l = id;
      }
    }
  }
  return label;
}

}  // namespace

int bench_cluster(int argc, char** argv) {
  const int n = std::stoi(arg(argc, argv, "n", "50000"));
  const int dim = std::stoi(arg(argc, argv, "dim", "64"));
  const int topics = std::stoi(arg(argc, argv, "clusters", "20"));
  const std::uint64_t seed = std::stoull(arg(argc, argv, "seed", "1"));
  const double noise = std::stod(arg(argc, argv, "noise", "0.1"));
  const double spread = std::stod(arg(argc, argv, "spread", "0.07"));
  const int naive_n = std::min(n, std::stoi(arg(argc, argv, "naive-n", "4000")));
  if (n < 1 || dim < 1 || topics < 1 || naive_n < 1 || !(noise >= 0 && noise <= 1) || !(spread >= 0))
    throw std::runtime_error("need --n, --dim, --clusters, --naive-n >= 1, --noise in [0, 1], --spread >= 0");
  const Planted p = planted(n, dim, topics, noise, spread, seed);
  const pp::DbscanParams params;  // the specification's eps 0.3, min_samples 5

  auto t0 = Clock::now();
  const pp::Clustering c = pp::dbscan(p.x, params);
  const double seconds = seconds_since(t0);
  const Scores s = pair_scores(p.truth, c.labels);
  nlohmann::json line = {{"bench", "cluster"},
                         {"n", n},
                         {"dim", dim},
                         {"planted_clusters", topics},
                         {"noise_fraction", noise},
                         {"spread", spread},
                         {"seconds", seconds},
                         {"points_per_s", n / seconds},
                         {"clusters_found", c.clusters.size()},
                         {"noise_found", c.noise},
                         {"adjusted_rand_index", s.ari},
                         {"precision", s.precision},
                         {"recall", s.recall},
                         {"metric", "points_per_s"},
                         {"value", n / seconds},
                         {"unit", "points/s"}};
  std::cout << line.dump() << std::endl;

  const Eigen::MatrixXd sub = p.x.topRows(naive_n);
  t0 = Clock::now();
  const std::vector<int> naive = naive_dbscan(sub, params.eps, params.min_samples);
  const double naive_seconds = seconds_since(t0);
  t0 = Clock::now();
  const pp::Clustering fast = pp::dbscan(sub, params);
  const double fast_seconds = seconds_since(t0);
  nlohmann::json base = {{"bench", "cluster"},
                         {"n", naive_n},
                         {"dim", dim},
                         {"seconds", fast_seconds},
                         {"naive_seconds", naive_seconds},
                         {"naive_seconds_extrapolated_to_n", naive_seconds * (double(n) / naive_n) * (double(n) / naive_n)},
                         {"labels_identical", naive == fast.labels},
                         {"metric", "points_per_s"},
                         {"value", naive_n / fast_seconds},
                         {"unit", "points/s"},
                         {"baseline", naive_n / naive_seconds},
                         {"ratio", naive_seconds / fast_seconds}};
  std::cout << base.dump() << std::endl;
  return naive == fast.labels ? 0 : 1;
}
