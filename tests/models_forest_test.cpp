// Random forest, isotonic calibration, cross-validation and the template classifier: split search against
// brute force, accuracy on a separable simulation, calibration error before and after on a simulation
// with known probabilities, CV against a manual computation, determinism, save/load, errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "promptlearn/core/rng.hpp"
#include "promptlearn/models/forest.hpp"

using namespace promptlearn;
using namespace promptlearn::models;

namespace {

struct Data {
  Eigen::MatrixXd X;
  std::vector<int> y;
};

// Three classes by axis-aligned regions of (x0, x1); x2, x3 are noise.
Data regions(int n, std::uint64_t seed) {
  Rng rng(seed);
  Data d{Eigen::MatrixXd(n, 4), std::vector<int>(static_cast<std::size_t>(n))};
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < 4; ++c) d.X(i, c) = rng.uniform();
    d.y[static_cast<std::size_t>(i)] = d.X(i, 0) < 0.3 ? 0 : (d.X(i, 1) < 0.6 ? 1 : 2);
  }
  return d;
}

// Binary labels drawn with the known probability p(x) = 0.15 + 0.7 x0; x1 is noise.
double true_p(double x0) { return 0.15 + 0.7 * x0; }
Data noisy(int n, std::uint64_t seed) {
  Rng rng(seed);
  Data d{Eigen::MatrixXd(n, 2), std::vector<int>(static_cast<std::size_t>(n))};
  for (int i = 0; i < n; ++i) {
    d.X(i, 0) = rng.uniform();
    d.X(i, 1) = rng.uniform();
    d.y[static_cast<std::size_t>(i)] = rng.bernoulli(true_p(d.X(i, 0))) ? 1 : 0;
  }
  return d;
}

// Expected calibration error of the class-1 probability: 10 equal-width bins,
// sum_b n_b / n * |mean p in b - share of y = 1 in b|.
double ece(const Eigen::VectorXd& p, const std::vector<int>& y) {
  std::vector<double> sp(10, 0), sy(10, 0), n(10, 0);
  for (Eigen::Index i = 0; i < p.size(); ++i) {
    const auto b = static_cast<std::size_t>(std::min(9.0, std::floor(p(i) * 10)));
    sp[b] += p(i);
    sy[b] += y[static_cast<std::size_t>(i)];
    n[b] += 1;
  }
  double e = 0;
  for (std::size_t b = 0; b < 10; ++b)
    if (n[b] > 0) e += std::abs(sp[b] - sy[b]) / static_cast<double>(p.size());
  return e;
}

double accuracy(const std::vector<int>& pred, const std::vector<int>& y) {
  double c = 0;
  for (std::size_t i = 0; i < y.size(); ++i) c += pred[i] == y[i] ? 1 : 0;
  return c / static_cast<double>(y.size());
}

ForestParams stump_params(int d) {
  ForestParams p;
  p.n_trees = 1;
  p.max_depth = 1;
  p.bootstrap = false;
  p.max_features = d;
  return p;
}

}  // namespace

TEST_CASE("ForestParams and CalibrationParams validate and name the key", "[models][forest]") {
  ForestParams p;
  CHECK(p.n_trees == 100);
  CHECK(p.max_depth == 10);
  CHECK(p.seed == 42);
  CHECK_NOTHROW(p.validate());
  p.max_depth = 0;
  CHECK_THROWS_WITH(p.validate(), "forest.max_depth: 0 is outside [1, 64]");
  CHECK_THROWS_AS(RandomForestClassifier(p), ConfigError);
  p = ForestParams{};
  p.min_samples_leaf = 0;
  CHECK_THROWS_WITH(p.validate(), "forest.min_samples_leaf: 0 is outside [1, 2147483647]");
  CalibrationParams c;
  c.folds = 1;
  CHECK_THROWS_WITH(c.validate(), "calibration.folds: 1 is outside [2, 100]");
  c = CalibrationParams{};
  c.method = "sigmoid";
  CHECK_THROWS_WITH(c.validate(), "calibration.method: \"sigmoid\" is not supported (expected \"isotonic\")");
  // JSON through the nlohmann macros, member initialisers as defaults.
  const ForestParams q = nlohmann::json{{"max_depth", 7}}.get<ForestParams>();
  CHECK(q.max_depth == 7);
  CHECK(q.n_trees == 100);
}

TEST_CASE("a stump splits at the midpoint of the best Gini split found by brute force", "[models][forest]") {
  // Hand case: the only perfect split of 1,2,3 | 10,11,12 is at 6.5.
  Eigen::MatrixXd X(6, 1);
  X << 1, 2, 3, 10, 11, 12;
  RandomForestClassifier stump(stump_params(1));
  stump.fit(X, {0, 0, 0, 1, 1, 1});
  CHECK(stump.to_json()["trees"][0]["threshold"][0].get<double>() == 6.5);
  Eigen::VectorXd x(1);
  x << 6.5;
  CHECK(stump.predict_proba_one(x)(0) == 1.0);
  x << 6.51;
  CHECK(stump.predict_proba_one(x)(1) == 1.0);

  // Random data: 12 rows (small node: rows sorted by bin) and 300 rows (per-bin histograms).
  for (int n : {12, 300}) {
    Rng rng(static_cast<std::uint64_t>(n));
    Eigen::MatrixXd Z(n, 3);
    std::vector<int> y(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      for (int c = 0; c < 3; ++c) Z(i, c) = std::round(rng.uniform() * 50) / 5;  // ties on purpose
      y[static_cast<std::size_t>(i)] = static_cast<int>(rng.uniform_int(0, 2)) == 0 || Z(i, 1) > 6 ? 0 : (Z(i, 2) > 3 ? 1 : 2);
    }
    // Brute force: the split maximising W G - W_L G_L - W_R G_R over all features and midpoints.
    double best_gain = -1, best_t = 0;
    int best_f = -1;
    auto gini_w = [](const std::vector<double>& c) {
      double w = 0, s = 0;
      for (double v : c) w += v, s += v * v;
      return w > 0 ? w - s / w : 0.0;  // W * G
    };
    for (int f = 0; f < 3; ++f) {
      std::vector<double> vals(Z.col(f).data(), Z.col(f).data() + n);
      std::sort(vals.begin(), vals.end());
      vals.erase(std::unique(vals.begin(), vals.end()), vals.end());
      for (std::size_t u = 0; u + 1 < vals.size(); ++u) {
        const double t = (vals[u] + vals[u + 1]) / 2;
        std::vector<double> l(3, 0), r(3, 0), all(3, 0);
        for (int i = 0; i < n; ++i) {
          (Z(i, f) <= t ? l : r)[static_cast<std::size_t>(y[static_cast<std::size_t>(i)])] += 1;
          all[static_cast<std::size_t>(y[static_cast<std::size_t>(i)])] += 1;
        }
        const double gain = gini_w(all) - gini_w(l) - gini_w(r);
        if (gain > best_gain + 1e-12) best_gain = gain, best_f = f, best_t = t;
      }
    }
    RandomForestClassifier m(stump_params(3));
    m.fit(Z, y);
    const nlohmann::json tree = m.to_json()["trees"][0];
    CHECK(tree["feature"][0].get<int>() == best_f);
    CHECK(tree["threshold"][0].get<double>() == Approx(best_t).margin(1e-12));
    // The single split is all the importance.
    CHECK(m.feature_importance()(best_f) == Approx(1.0));
  }
}

TEST_CASE("forest separates a separable simulation and ranks the informative features", "[models][forest]") {
  const Data train = regions(600, 1), test = regions(3000, 2);
  RandomForestClassifier forest;  // 100 trees, depth 10, seed 42
  forest.fit(train.X, train.y);
  CHECK(forest.n_classes() == 3);
  // Axis-aligned boundaries: errors only in the gaps between neighbouring training points at the two
  // boundaries (about 1/600 of the range each side), so accuracy well above 0.97.
  CHECK(accuracy(forest.predict(test.X), test.y) > 0.97);
  const Eigen::MatrixXd P = forest.predict_proba(test.X);
  for (Eigen::Index r = 0; r < P.rows(); ++r) CHECK(P.row(r).sum() == Approx(1.0));
  const Eigen::VectorXd& imp = forest.feature_importance();
  CHECK(imp.sum() == Approx(1.0));
  CHECK(imp(0) > 3 * imp(2));
  CHECK(imp(1) > 3 * imp(3));
  // max_bins below the distinct values still learns the boundaries (quantile bins).
  ForestParams coarse;
  coarse.max_bins = 16;
  RandomForestClassifier c(coarse);
  c.fit(train.X, train.y);
  CHECK(accuracy(c.predict(test.X), test.y) > 0.9);
}

TEST_CASE("forest and calibrated classifier are deterministic given the seed", "[models][forest]") {
  const Data d = regions(300, 3);
  ForestParams p;
  p.n_trees = 20;
  RandomForestClassifier a(p), b(p);
  a.fit(d.X, d.y);
  b.fit(d.X, d.y);
  CHECK(a.to_json() == b.to_json());
  p.seed = 43;
  RandomForestClassifier c(p);
  c.fit(d.X, d.y);
  CHECK(a.to_json()["trees"] != c.to_json()["trees"]);
  CalibratedClassifier ca(p), cb(p);
  ca.fit(d.X, d.y);
  cb.fit(d.X, d.y);
  CHECK(ca.to_json() == cb.to_json());
}

TEST_CASE("isotonic calibration repairs an over-confident forest", "[models][forest]") {
  // Fully grown trees on labels with probabilities in [0.15, 0.85] predict near 0 or 1: over-confident.
  const Data train = noisy(5000, 11), test = noisy(20000, 12);
  ForestParams p;
  p.n_trees = 10;
  p.max_depth = 64;
  p.max_features = 2;
  RandomForestClassifier raw(p);
  raw.fit(train.X, train.y);
  CalibratedClassifier cal(p);  // 5 folds
  cal.fit(train.X, train.y);
  const Eigen::VectorXd p_raw = raw.predict_proba(test.X).col(1), p_cal = cal.predict_proba(test.X).col(1);
  const double ece_raw = ece(p_raw, test.y), ece_cal = ece(p_cal, test.y);
  // Sampling noise of a 10-bin ECE on 20000 rows is at most sqrt(10 * 0.25 / 20000) ~ 0.011; the
  // calibrators' own estimation error (about 800 held-out rows per fold, averaged over 5 folds) adds a
  // few hundredths at most.
  INFO("ECE raw " << ece_raw << ", calibrated " << ece_cal);
  CHECK(ece_raw > 0.1);
  CHECK(ece_cal < 0.04);
  // Against the known probabilities: the Brier score E(p_hat - y)^2 = E(p_hat - p)^2 + E p(1 - p), and
  // isotonic calibration on held-out data lowers its reliability part, so the squared error against the
  // true probability must fall. (It cannot vanish: a monotone map adds no resolution to the noisy forest.)
  double mse_raw = 0, mse_cal = 0;
  for (Eigen::Index i = 0; i < test.X.rows(); ++i) {
    mse_raw += std::pow(p_raw(i) - true_p(test.X(i, 0)), 2) / static_cast<double>(test.X.rows());
    mse_cal += std::pow(p_cal(i) - true_p(test.X(i, 0)), 2) / static_cast<double>(test.X.rows());
  }
  INFO("mean (p - p_true)^2 raw " << mse_raw << ", calibrated " << mse_cal);
  CHECK(mse_cal < mse_raw);
  // Two classes: only class 1 is calibrated and p_0 = 1 - p_1.
  const Eigen::MatrixXd P = cal.predict_proba(test.X.topRows(50));
  for (Eigen::Index r = 0; r < P.rows(); ++r) CHECK(P(r, 0) == Approx(1.0 - P(r, 1)));
}

TEST_CASE("calibrated multiclass probabilities are renormalised and averaged over folds", "[models][forest]") {
  const Data d = regions(400, 5);
  ForestParams p;
  p.n_trees = 10;
  CalibrationParams cp;
  cp.folds = 3;
  CalibratedClassifier cal(p, cp);
  cal.fit(d.X, d.y);
  const nlohmann::json j = cal.to_json();
  REQUIRE(j["folds"].size() == 3);
  // Recompute one row by hand from the saved parts.
  const Eigen::VectorXd x = d.X.row(7).transpose();
  Eigen::VectorXd expected = Eigen::VectorXd::Zero(3);
  for (const auto& f : j["folds"]) {
    const RandomForestClassifier forest = RandomForestClassifier::from_json(f["forest"]);
    const Eigen::VectorXd raw = forest.predict_proba_one(x);
    Eigen::VectorXd c(3);
    for (int k = 0; k < 3; ++k) c(k) = IsotonicRegression::from_json(f["calibrators"][static_cast<std::size_t>(k)]).predict(raw(k));
    expected += c / c.sum();
  }
  expected /= 3;
  const Eigen::VectorXd got = cal.predict_proba_one(x);
  for (int k = 0; k < 3; ++k) CHECK(got(k) == Approx(expected(k)).margin(1e-12));
  CHECK(got.sum() == Approx(1.0));
  CHECK(cal.feature_importance().sum() == Approx(1.0));
}

TEST_CASE("cross_validate matches a manual computation over the same stratified folds", "[models][forest]") {
  const Data d = noisy(500, 21);
  ForestParams p;
  p.n_trees = 15;
  const CvResult cv = cross_validate(p, d.X, d.y, 4, 9);
  std::vector<double> acc, ll;
  for (const Split& s : stratified_kfold(d.y, 4, 9)) {
    std::vector<int> yt, yv;
    for (auto r : s.train) yt.push_back(d.y[static_cast<std::size_t>(r)]);
    for (auto r : s.validation) yv.push_back(d.y[static_cast<std::size_t>(r)]);
    RandomForestClassifier m(p);
    m.fit(take_rows(d.X, s.train), yt, 2);
    const Eigen::MatrixXd P = m.predict_proba(take_rows(d.X, s.validation));
    double correct = 0, loss = 0;
    for (std::size_t i = 0; i < yv.size(); ++i) {
      const auto r = static_cast<Eigen::Index>(i);
      const int pred = P(r, 1) > P(r, 0) ? 1 : 0;
      correct += pred == yv[i];
      loss += -std::log(std::max(1e-15, P(r, yv[i])));
    }
    acc.push_back(correct / static_cast<double>(yv.size()));
    ll.push_back(loss / static_cast<double>(yv.size()));
  }
  const double mean = (acc[0] + acc[1] + acc[2] + acc[3]) / 4;
  double var = 0;
  for (double a : acc) var += (a - mean) * (a - mean);
  CHECK(cv.fold_accuracy == acc);
  CHECK(cv.accuracy_mean == Approx(mean).margin(1e-12));
  CHECK(cv.accuracy_std == Approx(std::sqrt(var / 4)).margin(1e-12));
  CHECK(cv.log_loss_mean == Approx((ll[0] + ll[1] + ll[2] + ll[3]) / 4).margin(1e-12));
  CHECK(cv.accuracy_std > 0);
  // Bayes accuracy here is E[max(p, 1 - p)] = 0.675; a forest should get close.
  CHECK(cv.accuracy_mean > 0.6);
  CHECK(cv.accuracy_mean < 0.72);
}

TEST_CASE("TemplateClassifier ranks templates and save/load gives identical predictions", "[models][forest]") {
  const Data d = regions(400, 8);
  const std::vector<std::string> names = {"concise", "detailed", "step_by_step"};
  std::vector<std::string> ids;
  for (int y : d.y) ids.push_back(names[static_cast<std::size_t>(y)]);
  ForestParams p;
  p.n_trees = 25;
  TemplateClassifier clf(p);
  clf.fit(d.X, ids);
  CHECK(clf.templates() == names);
  Eigen::VectorXd ctx(4);
  ctx << 0.8, 0.9, 0.5, 0.5;  // region of class 2
  const auto ranked = clf.predict_template(ctx);
  REQUIRE(ranked.size() == 3);
  CHECK(ranked[0].template_id == "step_by_step");
  CHECK(ranked[0].probability > 0.8);
  CHECK(ranked[0].probability >= ranked[1].probability);
  CHECK(ranked[1].probability >= ranked[2].probability);
  CHECK(ranked[0].probability + ranked[1].probability + ranked[2].probability == Approx(1.0));

  const TemplateClassifier from_text = TemplateClassifier::from_json(nlohmann::json::parse(clf.to_json().dump()));
  const TemplateClassifier from_blob = TemplateClassifier::from_blob(clf.to_blob());
  const Data probe = regions(200, 99);
  for (Eigen::Index r = 0; r < probe.X.rows(); ++r) {
    const Eigen::VectorXd x = probe.X.row(r).transpose();
    const auto a = clf.predict_template(x), b = from_text.predict_template(x), c = from_blob.predict_template(x);
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].template_id == b[i].template_id);
      CHECK(a[i].probability == b[i].probability);
      CHECK(a[i].template_id == c[i].template_id);
      CHECK(a[i].probability == c[i].probability);
    }
  }
  CHECK(from_text.feature_importance() == clf.feature_importance());
  const CvResult cv = clf.cross_validate(d.X, ids, 3);
  CHECK(cv.fold_accuracy.size() == 3);
  CHECK(cv.accuracy_mean > 0.9);
}

TEST_CASE("errors name the field", "[models][forest]") {
  const Data d = regions(60, 4);
  ForestParams p;
  p.n_trees = 3;
  RandomForestClassifier m(p);
  std::vector<int> bad = d.y;
  bad[3] = 5;
  CHECK_THROWS_WITH(m.fit(d.X, bad, 3), "labels[3]: 5 is outside [0, 2]");
  bad[3] = -1;
  CHECK_THROWS_WITH(m.fit(d.X, bad), "labels[3]: -1 is outside [0, 2]");
  CHECK_THROWS_WITH(m.fit(d.X, std::vector<int>(5, 0)), "labels: has 5 values for 60 rows of X");
  Eigen::MatrixXd X = d.X;
  X(2, 1) = std::nan("");
  CHECK_THROWS_WITH(m.fit(X, d.y), "X[2][1]: nan is not a finite number");
  p.max_features = 9;
  CHECK_THROWS_WITH(RandomForestClassifier(p).fit(d.X, d.y), "forest.max_features: 9 exceeds the 4 columns of X");
  CHECK_THROWS_WITH(m.predict_proba_one(Eigen::VectorXd::Zero(4)), "model: the forest is not fitted");
  m.fit(d.X, d.y);
  CHECK_THROWS_WITH(m.predict_proba_one(Eigen::VectorXd::Zero(3)), "x: has 3 features, the model was fitted on 4");

  nlohmann::json j = m.to_json();
  j.erase("trees");
  CHECK_THROWS_WITH(RandomForestClassifier::from_json(j), "forest.trees: is missing");
  j = m.to_json();
  j["trees"][1]["child"][0] = 0;  // a cycle back to the root
  CHECK_THROWS_WITH(RandomForestClassifier::from_json(j), Catch::StartsWith("forest.trees[1].child[0]: 0 is outside [1, "));
  j = m.to_json();
  j["trees"][0]["feature"][0] = 4;
  CHECK_THROWS_WITH(RandomForestClassifier::from_json(j), "forest.trees[0].feature[0]: 4 is outside [-1, 3]");
  j = m.to_json();
  j["params"]["max_depth"] = 0;
  CHECK_THROWS_WITH(RandomForestClassifier::from_json(j), "forest.params.max_depth: 0 is outside [1, 64]");
  j = m.to_json();
  j["params"]["bootstrap"] = "yes";
  CHECK_THROWS_WITH(RandomForestClassifier::from_json(j), "forest.params.bootstrap: expected a boolean, got \"yes\"");

  std::vector<std::string> ids(60, "only");
  TemplateClassifier clf(p = ForestParams{});
  CHECK_THROWS_WITH(clf.fit(d.X, ids), "template_ids: has 1 distinct template, need at least 2");
  ids[0] = "";
  CHECK_THROWS_WITH(clf.fit(d.X, ids), "template_ids[0]: is empty");
  CHECK_THROWS_WITH(clf.predict_template(Eigen::VectorXd::Zero(4)), "model: the calibrated classifier is not fitted");
  CHECK_THROWS_WITH(TemplateClassifier::from_blob({0xff, 0x00, 0x13}), Catch::StartsWith("blob: is not valid CBOR"));
  ForestParams small;
  small.n_trees = 2;
  TemplateClassifier ok(small);
  std::vector<std::string> two;
  for (int y : d.y) two.push_back(y == 0 ? "a" : "b");
  ok.fit(d.X, two);
  nlohmann::json tj = ok.to_json();
  tj["model"]["folds"][2]["forest"]["params"]["max_depth"] = 0;
  CHECK_THROWS_WITH(TemplateClassifier::from_json(tj),
                    "template_classifier.model.folds[2].forest.params.max_depth: 0 is outside [1, 64]");
  tj = ok.to_json();
  tj["templates"] = {"b", "a"};
  CHECK_THROWS_WITH(TemplateClassifier::from_json(tj), "template_classifier.templates[1]: \"a\" is not after \"b\"");
  tj = ok.to_json();
  tj["model"]["folds"][0]["calibrators"] = nlohmann::json::array();
  CHECK_THROWS_WITH(TemplateClassifier::from_json(tj),
                    "template_classifier.model.folds[0].calibrators: expected an array of 1 calibrators");
  // Fewer rows than calibration folds.
  CHECK_THROWS_AS(ok.fit(d.X.topRows(4), {"a", "b", "a", "b"}), ConfigError);
}
