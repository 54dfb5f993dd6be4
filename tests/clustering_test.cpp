// Tests of patterns/clustering.hpp: exact DBSCAN under cosine distance and keyword labels.
// The reference is the textbook sequential algorithm of Ester et al. (1996) with O(n^2) region queries.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/patterns/clustering.hpp"

namespace pp = promptlearn::patterns;

namespace {

constexpr double kPi = 3.14159265358979323846;

struct Reference {
  std::vector<int> labels;
  std::vector<bool> core;
};

// Ester et al. (1996), Figure "DBSCAN / ExpandCluster": scan points in order; a core point not yet in a
// cluster starts one, expanded breadth-first; noise found earlier may be claimed as border.
Reference naive_dbscan(const Eigen::MatrixXd& x, double eps, int min_samples) {
  const int n = static_cast<int>(x.rows());
  const Eigen::VectorXd norm = x.rowwise().norm();
  std::vector<std::vector<int>> nbrs(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (norm(i) == 0) continue;
    for (int j = 0; j < n; ++j) {
      if (norm(j) == 0) continue;
      const double d = i == j ? 0.0 : 1.0 - x.row(i).dot(x.row(j)) / (norm(i) * norm(j));
      if (d <= eps) nbrs[static_cast<std::size_t>(i)].push_back(j);
    }
  }
  constexpr int kUnclassified = -2;
  Reference ref;
  ref.labels.assign(static_cast<std::size_t>(n), kUnclassified);
  ref.core.assign(static_cast<std::size_t>(n), false);
  for (int i = 0; i < n; ++i) ref.core[static_cast<std::size_t>(i)] = static_cast<int>(nbrs[static_cast<std::size_t>(i)].size()) >= min_samples;
  int next = 0;
  for (int i = 0; i < n; ++i) {
    int& li = ref.labels[static_cast<std::size_t>(i)];
    if (li != kUnclassified) continue;
    if (!ref.core[static_cast<std::size_t>(i)]) {
      li = pp::kNoise;
      continue;
    }
    const int id = next++;
    li = id;
    std::vector<int> queue = {i};
    for (std::size_t q = 0; q < queue.size(); ++q) {
      const int p = queue[q];
      if (!ref.core[static_cast<std::size_t>(p)]) continue;
      for (int o : nbrs[static_cast<std::size_t>(p)]) {
        int& lo = ref.labels[static_cast<std::size_t>(o)];
        if (lo == kUnclassified) {
          lo = id;
          queue.push_back(o);
        } else if (lo == pp::kNoise) {
          lo = id;
        }
      }
    }
  }
  return ref;
}

struct Planted {
  Eigen::MatrixXd x;
  std::vector<int> truth;  // planted topic, -1 for background noise
};

// Points around `topics` random directions (Gaussian angular noise of `spread` per coordinate, random
// positive scale) plus a `noise_fraction` of uniformly random directions; rows shuffled.
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

Eigen::MatrixXd angles(const std::vector<double>& degrees) {
  Eigen::MatrixXd x(static_cast<Eigen::Index>(degrees.size()), 2);
  for (std::size_t i = 0; i < degrees.size(); ++i) {
    const double a = degrees[i] * kPi / 180.0, scale = 1.0 + static_cast<double>(i % 3);
    x.row(static_cast<Eigen::Index>(i)) << scale * std::cos(a), scale * std::sin(a);
  }
  return x;
}

double choose2(double k) { return k * (k - 1) / 2; }

struct PairScores {
  double precision, recall, ari;
};

// Pairwise scores over all points, noise (-1) in either labelling being a singleton: precision = share of
// the pairs put together by `found` that are together in `truth`; recall = share of the pairs together in
// `truth` that `found` puts together; ARI of Hubert & Arabie (1985) on the same singleton convention.
PairScores pair_scores(const std::vector<int>& truth, const std::vector<int>& found) {
  std::map<std::pair<int, int>, double> joint;
  std::map<int, double> a, b;
  int singleton = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const int t = truth[i] < 0 ? -1000000 - singleton : truth[i];
    const int f = found[i] < 0 ? -1000000 - singleton : found[i];
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

}  // namespace

TEST_CASE("two clusters, a border point and noise in 2-D", "[clustering]") {
  // eps 0.3 is an angle of acos(0.7) = 45.57 degrees. A = -8..2 (6 points, all within 10 degrees: core),
  // B = 100..108 (5 points: core), X at 45 reaches A's 0 and 2 only (3 neighbours: border of A),
  // 200 and 300 are isolated, and a zero vector is noise.
  const Eigen::MatrixXd x = angles({200, -8, -6, -4, -2, 0, 2, 45, 100, 102, 104, 106, 108, 0 /*zeroed*/, 300});
  Eigen::MatrixXd xz = x;
  xz.row(13).setZero();
  const pp::Clustering c = pp::dbscan(xz);
  CHECK(c.labels == std::vector<int>{-1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, -1, -1});
  CHECK(c.core == std::vector<bool>{false, true, true, true, true, true, true, false, true, true, true, true, true,
                                    false, false});
  CHECK(c.noise == 3);
  REQUIRE(c.clusters.size() == 2);
  CHECK(c.clusters[0].id == 0);
  CHECK(c.clusters[0].size == 7);
  CHECK(c.clusters[1].size == 5);
  // Centroid = mean of unit vectors; B is symmetric about 104 degrees.
  const double mean_cos = (std::cos(4 * kPi / 180) * 2 + std::cos(2 * kPi / 180) * 2 + 1) / 5;
  CHECK(c.clusters[1].centroid(0) == Approx(mean_cos * std::cos(104 * kPi / 180)).margin(1e-12));
  CHECK(c.clusters[1].centroid(1) == Approx(mean_cos * std::sin(104 * kPi / 180)).margin(1e-12));
  CHECK(c.clusters[0].top_keywords.empty());
}

TEST_CASE("a border point reachable from two clusters joins the first expanded", "[clustering]") {
  // Y at 44 degrees reaches 0 (from A = -8..0) and 88 (from B = 88..96) only: border of both.
  for (bool a_first : {true, false}) {
    std::vector<double> deg = {44};
    const std::vector<double> a = {-8, -6, -4, -2, 0}, b = {88, 90, 92, 94, 96};
    for (double d : a_first ? a : b) deg.push_back(d);
    for (double d : a_first ? b : a) deg.push_back(d);
    const pp::Clustering c = pp::dbscan(angles(deg));
    CHECK(c.labels == std::vector<int>{0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1});
    CHECK_FALSE(c.core[0]);
    CHECK(c.labels == naive_dbscan(angles(deg), 0.3, 5).labels);
  }
}

TEST_CASE("dbscan equals the naive algorithm on random data", "[clustering]") {
  struct Case {
    int n, dim, topics;
    double noise, spread, eps;
    int min_samples;
  };
  const std::vector<Case> cases = {
      {3000, 3, 6, 0.3, 0.15, 0.01, 10}, {3000, 8, 12, 0.4, 0.25, 0.1, 5},  {2500, 16, 20, 0.2, 0.12, 0.3, 5},
      {2000, 64, 15, 0.1, 0.06, 0.3, 5}, {1500, 5, 4, 0.5, 0.3, 0.02, 4},   {1000, 2, 3, 0.3, 0.2, 0.001, 8},
      {3000, 32, 30, 0.3, 0.09, 0.3, 12}, {700, 4, 3, 1.0, 0.0, 0.05, 6},
  };
  std::size_t core = 0, border = 0, noise = 0;
  for (std::uint64_t seed : {1, 2, 3}) {
    for (const Case& k : cases) {
      Planted p = planted(k.n, k.dim, k.topics, k.noise, k.spread, seed * 1000 + static_cast<std::uint64_t>(k.dim));
      p.x.row(7).setZero();                 // a zero vector
      p.x.row(11) = p.x.row(12) * 2.5;      // an exact duplicate direction
      const pp::DbscanParams params{k.eps, k.min_samples};
      const pp::Clustering c = pp::dbscan(p.x, params);
      const Reference ref = naive_dbscan(p.x, k.eps, k.min_samples);
      INFO("seed " << seed << " n " << k.n << " dim " << k.dim << " eps " << k.eps);
      REQUIRE(c.labels == ref.labels);
      REQUIRE(c.core == ref.core);
      for (std::size_t i = 0; i < c.labels.size(); ++i) {
        if (c.core[i]) ++core;
        else if (c.labels[i] >= 0) ++border;
        else ++noise;
      }
      std::size_t noise_here = 0;
      for (int l : c.labels) noise_here += l < 0;
      CHECK(noise_here == c.noise);
    }
  }
  std::cout << "[clustering] naive-equality sweep: " << core << " core, " << border << " border, " << noise
            << " noise points\n";
  // The sweep is only a test if every kind of point occurs in quantity.
  CHECK(core > 1000);
  CHECK(border > 100);
  CHECK(noise > 1000);
}

TEST_CASE("planted topics are recovered", "[clustering]") {
  const Planted p = planted(6000, 64, 12, 0.1, 0.06, 99);
  const pp::Clustering c = pp::dbscan(p.x);
  const PairScores s = pair_scores(p.truth, c.labels);
  // Per-topic majority matching: a planted topic's points found in its most common cluster.
  std::map<int, std::map<int, int>> table;
  for (std::size_t i = 0; i < p.truth.size(); ++i)
    if (p.truth[i] >= 0) ++table[p.truth[i]][c.labels[i]];
  double matched = 0, planted_points = 0;
  for (const auto& [t, row] : table) {
    int best = 0;
    for (const auto& [l, count] : row)
      if (l >= 0) best = std::max(best, count);
    matched += best;
    for (const auto& [l, count] : row) planted_points += count;
  }
  std::size_t noise_kept = 0, noise_total = 0;
  for (std::size_t i = 0; i < p.truth.size(); ++i)
    if (p.truth[i] < 0) ++noise_total, noise_kept += c.labels[i] < 0;
  std::cout << "[clustering] planted 6000 x 64, 12 topics, 10% noise: clusters " << c.clusters.size()
            << ", pairwise precision " << s.precision << ", recall " << s.recall << ", ARI " << s.ari
            << ", majority-matched " << matched / planted_points << ", noise kept as noise "
            << static_cast<double>(noise_kept) / static_cast<double>(noise_total) << "\n";
  CHECK(c.clusters.size() == 12);
  CHECK(s.precision >= 0.9);
  CHECK(s.recall >= 0.9);
  CHECK(matched / planted_points >= 0.9);
}

TEST_CASE("clusters are labelled by their own topic's keywords", "[clustering]") {
  const std::vector<std::vector<std::string>> topic_words = {
      {"sql", "database", "query", "index"}, {"python", "pandas", "dataframe", "numpy"}, {"css", "flexbox", "layout", "grid"}};
  const Planted p = planted(900, 32, 3, 0.1, 0.06, 5);
  promptlearn::Rng rng(6);
  std::vector<std::vector<std::string>> keywords(p.truth.size());
  for (std::size_t i = 0; i < p.truth.size(); ++i) {
    keywords[i] = {"please", "help"};  // in every prompt: never a label
    const int t = p.truth[i] >= 0 ? p.truth[i] : static_cast<int>(rng.uniform_int(0, 2));
    const auto& words = topic_words[static_cast<std::size_t>(t)];
    for (int k = 0; k < 3; ++k) keywords[i].push_back(words[static_cast<std::size_t>(rng.uniform_int(0, 3))]);
    if (rng.bernoulli(0.1)) keywords[i].push_back("misc" + std::to_string(rng.uniform_int(0, 20)));
  }
  keywords[3].push_back("please");  // repeated within one prompt: counted once
  const pp::Clustering c = pp::cluster_topics(p.x, keywords);
  REQUIRE(c.clusters.size() == 3);
  for (const pp::TopicCluster& cl : c.clusters) {
    std::map<int, int> votes;
    for (std::size_t i = 0; i < p.truth.size(); ++i)
      if (c.labels[i] == cl.id) ++votes[p.truth[i]];
    int topic = -1, best = 0;
    for (const auto& [t, v] : votes)
      if (v > best) best = v, topic = t;
    REQUIRE(topic >= 0);
    REQUIRE(cl.top_keywords.size() == 3);
    const auto& words = topic_words[static_cast<std::size_t>(topic)];
    for (const std::string& w : cl.top_keywords)
      CHECK(std::find(words.begin(), words.end(), w) != words.end());
  }
}

TEST_CASE("label_topics scores count in cluster times log(N / documents)", "[clustering]") {
  pp::Clustering c;
  c.labels = {0, 0, 0, 1, -1, -1};
  c.clusters.resize(2);
  c.clusters[1].id = 1;
  // Cluster 0: "a" 3 x ln(6/4) = 1.216, "b" 2 x ln(6/2) = 2.197, "c" 1 x ln(6/1) = 1.792, "all" 0.
  // Cluster 1: "a" 1 x ln(6/4) = 0.405, "d" 1 x ln(6/2) = 1.099.
  const std::vector<std::vector<std::string>> kw = {
      {"a", "b", "all"}, {"a", "b", "b", "all"}, {"a", "c", "all"}, {"a", "d", "all"}, {"d", "all"}, {"all", "a"}};
  pp::label_topics(c, kw, 3);
  CHECK(c.clusters[0].top_keywords == std::vector<std::string>{"b", "c", "a"});
  CHECK(c.clusters[1].top_keywords == std::vector<std::string>{"d", "a"});
  pp::label_topics(c, kw, 1);
  CHECK(c.clusters[0].top_keywords == std::vector<std::string>{"b"});
  CHECK_THROWS_AS(pp::label_topics(c, {{"a"}}, 3), promptlearn::ValidationError);
}

TEST_CASE("zero vectors are noise", "[clustering]") {
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(10, 4);
  pp::Clustering c = pp::dbscan(x, {0.3, 1});
  CHECK(c.labels == std::vector<int>(10, -1));
  CHECK(c.noise == 10);
  CHECK(c.clusters.empty());
  // Six equal directions and four zero vectors: the zeros count towards nobody's min_samples.
  x.topRows(6).col(0).setOnes();
  c = pp::dbscan(x, {0.3, 7});
  CHECK(c.clusters.empty());
  c = pp::dbscan(x, {0.3, 6});
  CHECK(c.labels == std::vector<int>{0, 0, 0, 0, 0, 0, -1, -1, -1, -1});
}

TEST_CASE("invalid parameters and input name the key", "[clustering]") {
  const Eigen::MatrixXd x = Eigen::MatrixXd::Ones(3, 2);
  auto key_of = [&](pp::DbscanParams p) {
    try {
      pp::dbscan(x, p);
    } catch (const promptlearn::ConfigError& e) {
      return e.key();
    }
    return std::string("(no error)");
  };
  CHECK(key_of({0.0, 5}) == "dbscan.eps");
  CHECK(key_of({2.5, 5}) == "dbscan.eps");
  CHECK(key_of({std::nan(""), 5}) == "dbscan.eps");
  CHECK(key_of({0.3, 0}) == "dbscan.min_samples");
  CHECK_THROWS_WITH(pp::DbscanParams({0.0, 5}).validate(), "dbscan.eps: 0 is outside (0, 2]");
  CHECK_THROWS_WITH(pp::DbscanParams({0.3, -2}).validate(), "dbscan.min_samples: -2 is less than 1");
  CHECK_NOTHROW(pp::DbscanParams{}.validate());
  CHECK(pp::DbscanParams{}.eps == 0.3);
  CHECK(pp::DbscanParams{}.min_samples == 5);

  Eigen::MatrixXd bad = x;
  bad(1, 1) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(pp::dbscan(bad), "dbscan.rows[1][1]: inf is not a finite number");
  const std::vector<Eigen::VectorXd> ragged = {Eigen::VectorXd::Ones(3), Eigen::VectorXd::Ones(2)};
  CHECK_THROWS_WITH(pp::dbscan(ragged), "dbscan.points[1]: has 2 values, expected 3 (the size of points[0])");
  CHECK_THROWS_AS(pp::cluster_topics(x, {{"a"}}), promptlearn::ValidationError);
}

TEST_CASE("empty input gives no clusters", "[clustering]") {
  const pp::Clustering a = pp::dbscan(Eigen::MatrixXd(0, 8));
  CHECK(a.labels.empty());
  CHECK(a.clusters.empty());
  CHECK(a.noise == 0);
  const pp::Clustering b = pp::dbscan(std::vector<Eigen::VectorXd>{});
  CHECK(b.labels.empty());
  CHECK(b.clusters.empty());
  const pp::Clustering t = pp::cluster_topics(Eigen::MatrixXd(0, 8), {});
  CHECK(t.clusters.empty());
}

TEST_CASE("dbscan is deterministic and scale invariant; both input forms agree", "[clustering]") {
  const Planted p = planted(1500, 16, 5, 0.2, 0.1, 17);
  const pp::Clustering c1 = pp::dbscan(p.x), c2 = pp::dbscan(p.x);
  CHECK(c1.labels == c2.labels);
  std::vector<Eigen::VectorXd> rows;
  for (Eigen::Index i = 0; i < p.x.rows(); ++i) rows.push_back(p.x.row(i).transpose() * (1.0 + static_cast<double>(i % 7)));
  const pp::Clustering c3 = pp::dbscan(rows);
  CHECK(c3.labels == c1.labels);
  REQUIRE(c3.clusters.size() == c1.clusters.size());
  for (std::size_t k = 0; k < c1.clusters.size(); ++k) {
    CHECK(c3.clusters[k].size == c1.clusters[k].size);
    CHECK((c3.clusters[k].centroid - c1.clusters[k].centroid).norm() < 1e-12);
  }
}

TEST_CASE("extreme parameters: min_samples 1 and eps 2", "[clustering]") {
  const Planted p = planted(400, 8, 3, 0.5, 0.1, 23);
  const pp::Clustering single = pp::dbscan(p.x, {1e-9, 1});  // every point its own core cluster
  CHECK(single.clusters.size() == 400);
  CHECK(single.labels == naive_dbscan(p.x, 1e-9, 1).labels);
  const pp::Clustering all = pp::dbscan(p.x, {2.0, 5});  // everything within distance 2
  CHECK(all.clusters.size() == 1);
  CHECK(all.noise == 0);
}
