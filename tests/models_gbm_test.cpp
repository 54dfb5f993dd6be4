#include <catch2/catch.hpp>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "promptlearn/core/rng.hpp"
#include "promptlearn/models/gbm.hpp"

using promptlearn::ConfigError;
using promptlearn::Rng;
using promptlearn::ValidationError;
using promptlearn::models::GbmLoss;
using promptlearn::models::GbmParams;
using promptlearn::models::GradientBoostedTrees;
using promptlearn::models::QualityPredictor;
using promptlearn::models::QualityPredictorParams;

namespace {

constexpr double kPi = 3.14159265358979323846;

struct Data {
  Eigen::MatrixXd X;
  Eigen::VectorXd y;
};

/// Friedman #1 with `d` >= 5 features (5 informative) and N(0, noise^2) noise.
Data friedman1(Eigen::Index n, Eigen::Index d, double noise, std::uint64_t seed) {
  REQUIRE(d >= 5);
  Rng rng(seed);
  Data s{Eigen::MatrixXd(n, d), Eigen::VectorXd(n)};
  for (Eigen::Index i = 0; i < n; ++i) {
    for (Eigen::Index j = 0; j < d; ++j) s.X(i, j) = rng.uniform();
    s.y(i) = 10 * std::sin(kPi * s.X(i, 0) * s.X(i, 1)) + 20 * (s.X(i, 2) - 0.5) * (s.X(i, 2) - 0.5) + 10 * s.X(i, 3) +
             5 * s.X(i, 4) + rng.normal(0, noise);
  }
  return s;
}

/// Single-tree, every-row parameters: F = mean + one unshrunk tree.
GbmParams one_tree(int depth, int min_leaf) {
  GbmParams p;
  p.n_trees = 1;
  p.learning_rate = 1.0;
  p.max_depth = depth;
  p.min_samples_leaf = min_leaf;
  p.early_stopping = false;
  return p;
}

/// Independent reference: the greedy regression tree on raw values (every midpoint between consecutive
/// distinct values of the node's rows tried), with the same gain and leaf rule, returning each row's
/// fitted value mean(y) + leaf.
void brute_tree(const Eigen::MatrixXd& X, const Eigen::VectorXd& g, std::vector<int> rows, int depth, int max_depth,
                int min_leaf, double lambda, Eigen::VectorXd& leaf_out) {
  double G = 0;
  for (int r : rows) G += g(r);
  const double n = static_cast<double>(rows.size());
  double best = 0;
  int best_f = -1;
  double best_t = 0;
  if (depth < max_depth) {
    for (Eigen::Index f = 0; f < X.cols(); ++f) {
      std::vector<int> order = rows;
      std::sort(order.begin(), order.end(), [&](int a, int b) { return X(a, f) < X(b, f); });
      double gl = 0;
      for (std::size_t k = 0; k + 1 < order.size(); ++k) {
        gl += g(order[k]);
        if (X(order[k], f) == X(order[k + 1], f)) continue;
        const double nl = static_cast<double>(k + 1), nr = n - nl;
        if (nl < min_leaf || nr < min_leaf) continue;
        const double gr = G - gl;
        const double gain = gl * gl / (nl + lambda) + gr * gr / (nr + lambda) - G * G / (n + lambda);
        if (gain > best) {
          best = gain;
          best_f = static_cast<int>(f);
          best_t = (X(order[k], f) + X(order[k + 1], f)) / 2;
        }
      }
    }
  }
  if (best_f < 0) {
    for (int r : rows) leaf_out(r) = -G / (n + lambda);
    return;
  }
  std::vector<int> l, r;
  for (int row : rows) (X(row, best_f) <= best_t ? l : r).push_back(row);
  brute_tree(X, g, l, depth + 1, max_depth, min_leaf, lambda, leaf_out);
  brute_tree(X, g, r, depth + 1, max_depth, min_leaf, lambda, leaf_out);
}

}  // namespace

TEST_CASE("GbmParams defaults are the specification's and validate names the key", "[models][gbm]") {
  const GbmParams p;
  CHECK(p.n_trees == 200);
  CHECK(p.learning_rate == 0.1);
  CHECK(p.max_depth == 6);
  CHECK(p.seed == 42);
  CHECK(p.validation_split == 0.2);
  CHECK(p.early_stopping_patience == 10);
  CHECK_NOTHROW(p.validate());
  GbmParams bad;
  bad.max_depth = 0;
  CHECK_THROWS_WITH(bad.validate(), "gbm.max_depth: 0 is outside [1, 16]");
  bad = GbmParams{};
  bad.learning_rate = 0;
  CHECK_THROWS_WITH(bad.validate(), "gbm.learning_rate: 0 is outside (0, 1]");
  bad = GbmParams{};
  bad.max_bins = 256;
  CHECK_THROWS_AS(bad.validate(), ConfigError);
  bad = GbmParams{};
  bad.validation_split = 1;
  CHECK_THROWS_WITH(bad.validate(), "gbm.validation_split: 1 is outside (0, 1)");
  CHECK_THROWS_WITH(GradientBoostedTrees(bad), "gbm.validation_split: 1 is outside (0, 1)");

  // JSON round trip and strict parsing.
  GbmParams q;
  q.loss = GbmLoss::quantile;
  q.quantile_alpha = 0.9;
  q.seed = 7;
  const GbmParams back = nlohmann::json(q).get<GbmParams>();
  CHECK(nlohmann::json(back) == nlohmann::json(q));
  CHECK_THROWS_WITH(nlohmann::json({{"max_dept", 3}}).get<GbmParams>(), "gbm.max_dept: is not a parameter of gbm");
  CHECK_THROWS_WITH(nlohmann::json({{"loss", "huber"}}).get<GbmParams>(),
                    "gbm.loss: \"huber\" is not one of \"squared\", \"quantile\"");
  CHECK_THROWS_AS(nlohmann::json({{"max_depth", 40}}).get<GbmParams>(), ConfigError);
}

TEST_CASE("a single tree fits a step function exactly", "[models][gbm]") {
  const int n = 100;
  Eigen::MatrixXd X(n, 1);
  Eigen::VectorXd y(n);
  for (int i = 0; i < n; ++i) {
    X(i, 0) = i / 100.0;
    y(i) = X(i, 0) < 0.5 ? -3.0 : 4.0;
  }
  GradientBoostedTrees m(one_tree(1, 1));
  m.fit(X, y);
  REQUIRE(m.trees_used() == 1);
  const Eigen::VectorXd pred = m.predict(X);
  for (int i = 0; i < n; ++i) CHECK(pred(i) == Approx(y(i)).margin(1e-12));
  // The threshold sits between the last -3 (x = 0.49) and the first 4 (x = 0.50).
  const auto& t = m.trees()[0];
  REQUIRE(t.feature[0] == 0);
  CHECK(t.threshold[0] > 0.49);
  CHECK(t.threshold[0] < 0.50);
  const double lo = 0.495, hi = 0.4999;
  CHECK(m.predict_one(&lo) == Approx(-3).margin(1e-12));
  CHECK(m.predict_one(&hi) == Approx(4).margin(1e-12));

  SECTION("three steps need depth 2 and are fitted exactly") {
    for (int i = 0; i < n; ++i) y(i) = X(i, 0) < 0.3 ? 0.0 : X(i, 0) < 0.7 ? 2.0 : 5.0;
    GradientBoostedTrees m2(one_tree(2, 1));
    m2.fit(X, y);
    const Eigen::VectorXd p2 = m2.predict(X);
    for (int i = 0; i < n; ++i) CHECK(p2(i) == Approx(y(i)).margin(1e-12));
  }
}

TEST_CASE("a histogram tree equals the brute-force greedy tree", "[models][gbm]") {
  // 200 rows: every feature has at most 255 distinct values, so binning loses nothing and the histogram
  // tree (with subtraction for the larger child) must choose the same partitions as an exhaustive search.
  const Data d = friedman1(200, 5, 1.0, 11);
  for (double lambda : {0.0, 3.0}) {
    GbmParams p = one_tree(4, 5);
    p.l2_regularization = lambda;
    GradientBoostedTrees m(p);
    m.fit(d.X, d.y);
    const double mean = d.y.mean();
    const Eigen::VectorXd g = (Eigen::VectorXd::Constant(d.y.size(), mean) - d.y);
    std::vector<int> rows(200);
    std::iota(rows.begin(), rows.end(), 0);
    Eigen::VectorXd leaf(200);
    brute_tree(d.X, g, rows, 0, 4, 5, lambda, leaf);
    const Eigen::VectorXd pred = m.predict(d.X);
    for (Eigen::Index i = 0; i < 200; ++i) CHECK(pred(i) == Approx(mean + leaf(i)).margin(1e-9));
  }
}

TEST_CASE("boosting reduces the training loss monotonically", "[models][gbm]") {
  const Data d = friedman1(3000, 8, 1.0, 3);
  for (GbmLoss loss : {GbmLoss::squared, GbmLoss::quantile}) {
    GbmParams p;
    p.n_trees = 60;
    p.early_stopping = false;
    p.loss = loss;
    p.quantile_alpha = 0.8;
    GradientBoostedTrees m(p);
    m.fit(d.X, d.y);
    const auto& h = m.train_loss();
    REQUIRE(h.size() == 60);
    // Loss of the constant start F_0.
    double start = 0;
    for (Eigen::Index i = 0; i < d.y.size(); ++i) {
      const double r = d.y(i) - m.base_score();
      start += loss == GbmLoss::squared ? r * r : (r >= 0 ? 0.8 * r : -0.2 * r);
    }
    start /= static_cast<double>(d.y.size());
    CHECK(h[0] < start);
    for (std::size_t t = 1; t < h.size(); ++t) {
      INFO("loss " << promptlearn::models::to_string(loss) << " tree " << t);
      CHECK(h[t] <= h[t - 1] * (1 + 1e-12));
    }
    CHECK(h.back() < 0.5 * start);
    // The history agrees with the model's own predictions on the rows it was fitted to.
    const Eigen::VectorXd pred = m.predict(d.X);
    double final_loss = 0;
    for (Eigen::Index i = 0; i < d.y.size(); ++i) {
      const double r = d.y(i) - pred(i);
      final_loss += loss == GbmLoss::squared ? r * r : (r >= 0 ? 0.8 * r : -0.2 * r);
    }
    CHECK(final_loss / static_cast<double>(d.y.size()) == Approx(h.back()).epsilon(1e-9));
  }
}

TEST_CASE("gbm generalises on Friedman #1 and ranks the informative features", "[models][gbm]") {
  const Data train = friedman1(5000, 10, 1.0, 21), test = friedman1(5000, 10, 1.0, 22);
  GradientBoostedTrees m;  // the specification's defaults, early stopping on
  m.fit(train.X, train.y);
  const Eigen::VectorXd pred = m.predict(test.X);
  const double r2 = 1 - (test.y - pred).squaredNorm() / (test.y.array() - test.y.mean()).matrix().squaredNorm();
  // Noise variance 1 against Var(y) of about 24: the Bayes R2 is about 0.96.
  CHECK(r2 > 0.85);
  const Eigen::VectorXd imp = m.feature_importance();
  CHECK(imp.sum() == Approx(1.0));
  CHECK((imp.array() >= 0).all());
  // Features 5..9 are noise: together far less than any of the two strongest (x0/x1 interaction, x3).
  CHECK(imp.tail(5).sum() < 0.05);
  CHECK(imp(3) > imp.tail(5).sum());
  CHECK(imp(0) > imp.tail(5).sum());
}

TEST_CASE("early stopping keeps the best validation iteration", "[models][gbm]") {
  // Pure noise: the validation loss stops improving after a few trees.
  Rng rng(5);
  Eigen::MatrixXd X(2000, 3);
  Eigen::VectorXd y(2000);
  for (Eigen::Index i = 0; i < 2000; ++i) {
    for (Eigen::Index j = 0; j < 3; ++j) X(i, j) = rng.uniform();
    y(i) = rng.normal();
  }
  GbmParams p;
  GradientBoostedTrees m(p);
  m.fit(X, y);
  const auto& v = m.validation_loss();
  REQUIRE(m.trees_used() < p.n_trees);
  CHECK(v.size() == static_cast<std::size_t>(m.trees_used() + p.early_stopping_patience));
  CHECK(v[static_cast<std::size_t>(m.trees_used() - 1)] == *std::min_element(v.begin(), v.end()));
  CHECK(m.train_loss().size() == v.size());
  p.early_stopping = false;
  GradientBoostedTrees all(p);
  all.fit(X, y);
  CHECK(all.trees_used() == p.n_trees);
  CHECK(all.validation_loss().empty());
}

TEST_CASE("gbm is deterministic given the seed", "[models][gbm]") {
  const Data d = friedman1(1500, 5, 1.0, 8);
  GradientBoostedTrees a, b;
  a.fit(d.X, d.y);
  b.fit(d.X, d.y);
  CHECK(a.to_json() == b.to_json());
  GbmParams p;
  p.seed = 43;
  GradientBoostedTrees c(p);
  c.fit(d.X, d.y);
  CHECK(c.to_json()["trees"] != a.to_json()["trees"]);  // another validation split, another model
}

TEST_CASE("save and load give identical predictions", "[models][gbm]") {
  const Data d = friedman1(2000, 6, 1.0, 9), test = friedman1(500, 6, 1.0, 10);
  GradientBoostedTrees m;
  m.fit(d.X, d.y);
  const std::string text = m.to_json().dump();
  const GradientBoostedTrees back = GradientBoostedTrees::from_json(nlohmann::json::parse(text));
  CHECK(back.to_json() == m.to_json());
  CHECK(back.trees_used() == m.trees_used());
  const Eigen::VectorXd p1 = m.predict(test.X), p2 = back.predict(test.X);
  for (Eigen::Index i = 0; i < p1.size(); ++i) REQUIRE(p1(i) == p2(i));
  CHECK(back.feature_importance() == m.feature_importance());

  QualityPredictorParams qp_params;
  qp_params.gbm.n_trees = 40;
  QualityPredictor qp(qp_params);
  qp.fit(d.X, d.y);
  const QualityPredictor qb = QualityPredictor::from_json(nlohmann::json::parse(qp.to_json().dump()));
  for (Eigen::Index i = 0; i < test.X.rows(); ++i) {
    const Eigen::RowVectorXd row = test.X.row(i);
    const auto x = qp.predict_quality(row.data()), z = qb.predict_quality(row.data());
    REQUIRE(x.predicted_quality == z.predicted_quality);
    REQUIRE(x.ci_low == z.ci_low);
    REQUIRE(x.ci_high == z.ci_high);
    REQUIRE(x.uncertainty == z.uncertainty);
  }
}

TEST_CASE("malformed model JSON is a ValidationError naming the field", "[models][gbm]") {
  const Data d = friedman1(600, 5, 1.0, 12);
  GbmParams p;
  p.n_trees = 5;
  p.early_stopping = false;
  GradientBoostedTrees m(p);
  m.fit(d.X, d.y);
  const nlohmann::json good = m.to_json();
  REQUIRE(good["trees"][0]["feature"][0] >= 0);  // the first tree has a split
  auto expect = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& path) {
    nlohmann::json j = good;
    edit(j);
    try {
      GradientBoostedTrees::from_json(j);
      FAIL("no exception for " << path);
    } catch (const ValidationError& e) {
      CHECK(e.path() == path);
    }
  };
  expect([](nlohmann::json& j) { j.erase("trees"); }, "trees");
  expect([](nlohmann::json& j) { j["format"] = "other"; }, "format");
  expect([](nlohmann::json& j) { j["base_score"] = "x"; }, "base_score");
  expect([](nlohmann::json& j) { j["trees"][0]["left"][0] = 0; }, "trees[0].left[0]");
  expect([](nlohmann::json& j) { j["trees"][0]["right"][0] = 99999; }, "trees[0].right[0]");
  expect([](nlohmann::json& j) { j["trees"][0]["feature"][0] = 5; }, "trees[0].feature[0]");
  expect([](nlohmann::json& j) { j["trees"][1]["value"].erase(0); }, "trees[1].value");
  expect([](nlohmann::json& j) { j["trees"][2]["threshold"][0] = nullptr; }, "trees[2].threshold[0]");
  expect([](nlohmann::json& j) { j["params"]["max_depth"] = 1; }, "trees[0].left[1]");  // tree deeper than allowed
  expect([](nlohmann::json& j) { j["params"]["max_depth"] = 0; }, "params");
  CHECK_THROWS_AS(QualityPredictor::from_json(good), ValidationError);  // a gbm is not a quality predictor
}

TEST_CASE("bad training data and rows are rejected with their position", "[models][gbm]") {
  Data d = friedman1(50, 5, 1.0, 13);
  d.X(3, 1) = std::nan("");
  GradientBoostedTrees m;
  CHECK_THROWS_WITH(m.fit(d.X, d.y), "X[3][1]: nan is not a finite number");
  d = friedman1(50, 5, 1.0, 13);
  d.y(7) = INFINITY;
  CHECK_THROWS_WITH(m.fit(d.X, d.y), "y[7]: inf is not a finite number");
  d = friedman1(50, 5, 1.0, 13);
  CHECK_THROWS_AS(m.predict(d.X), ValidationError);  // not fitted
  m.fit(d.X, d.y);
  const Eigen::MatrixXd wide = Eigen::MatrixXd::Zero(2, 6);
  CHECK_THROWS_WITH(m.predict(wide), "X: has 6 columns, the model was trained on 5");
  // A strided row (a row of a column-major matrix) predicts as the contiguous one does.
  const Eigen::VectorXd all = m.predict(d.X);
  for (Eigen::Index i = 0; i < 5; ++i) CHECK(m.predict_one(d.X.row(i).transpose()) == all(i));
}

TEST_CASE("quality intervals cover near their nominal level and widen with the noise", "[models][gbm]") {
  // y = 3 sin(2 pi x0) + 2 x1 + (0.2 + 1.5 x2) e,  e ~ N(0, 1): the conditional 5% and 95% quantiles
  // are f(x) -/+ 1.645 (0.2 + 1.5 x2), so a good 90% interval is about 5x wider at x2 = 1 than at x2 = 0.
  auto simulate = [](Eigen::Index n, std::uint64_t seed) {
    Rng rng(seed);
    Data s{Eigen::MatrixXd(n, 4), Eigen::VectorXd(n)};
    for (Eigen::Index i = 0; i < n; ++i) {
      for (Eigen::Index j = 0; j < 4; ++j) s.X(i, j) = rng.uniform();
      s.y(i) = 3 * std::sin(2 * kPi * s.X(i, 0)) + 2 * s.X(i, 1) + (0.2 + 1.5 * s.X(i, 2)) * rng.normal();
    }
    return s;
  };
  const Data train = simulate(8000, 31), test = simulate(20000, 32);
  QualityPredictor qp;  // level 0.9, the specification's boosting defaults
  qp.fit(train.X, train.y);
  Eigen::Index inside = 0;
  double width_low_noise = 0, width_high_noise = 0;
  Eigen::Index n_low = 0, n_high = 0;
  for (Eigen::Index i = 0; i < test.X.rows(); ++i) {
    const Eigen::RowVectorXd row = test.X.row(i);
    const auto q = qp.predict_quality(row.data());
    REQUIRE(q.ci_low <= q.predicted_quality);
    REQUIRE(q.predicted_quality <= q.ci_high);
    REQUIRE(q.uncertainty == Approx((q.ci_high - q.ci_low) / (2 * 1.6448536269514722)));
    inside += test.y(i) >= q.ci_low && test.y(i) <= q.ci_high;
    if (row(2) < 0.2) width_low_noise += q.ci_high - q.ci_low, ++n_low;
    if (row(2) > 0.8) width_high_noise += q.ci_high - q.ci_low, ++n_high;
  }
  const double coverage = static_cast<double>(inside) / static_cast<double>(test.X.rows());
  INFO("empirical coverage " << coverage);
  WARN("90% interval: empirical coverage " << coverage << ", mean width " << width_low_noise / n_low << " (x2 < 0.2) and "
       << width_high_noise / n_high << " (x2 > 0.8)");
  // Conformal calibration on the 1600 held-out rows: coverage given those rows is about
  // Beta-distributed around 0.9 with sd sqrt(0.9 * 0.1 / 1600) = 0.0075, plus test sampling error
  // sqrt(0.09 / 20000) = 0.002: a 4-sd band is +-0.031.
  CHECK(std::abs(coverage - 0.9) < 0.031);
  // Mean true widths: 2 * 1.645 * (0.2 + 1.5 * 0.1) = 1.15 and 2 * 1.645 * (0.2 + 1.5 * 0.9) = 5.10.
  CHECK(width_high_noise / static_cast<double>(n_high) > 2.5 * width_low_noise / static_cast<double>(n_low));
}
