// PatternNet (models/mlp.hpp): gradients against finite differences, learning XOR and half-moons,
// early stopping, dropout, determinism, persistence, calibration against known probabilities, errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "promptlearn/models/mlp.hpp"

using promptlearn::ConfigError;
using promptlearn::Error;
using promptlearn::Rng;
using promptlearn::ValidationError;
using promptlearn::models::MlpParams;
using promptlearn::models::PatternNet;

namespace {

struct Data {
  Eigen::MatrixXd X;
  Eigen::VectorXd y;
  Eigen::VectorXd p;  // true P(y = 1 | x) where known
};

double logistic(double s) { return 1.0 / (1.0 + std::exp(-s)); }

/// XOR: x uniform on [-1, 1]^2, y = [x0 x1 > 0]; no linear rule does better than chance.
Data xor_data(Eigen::Index n, std::uint64_t seed) {
  Rng rng(seed);
  Data d{Eigen::MatrixXd(n, 2), Eigen::VectorXd(n), {}};
  for (Eigen::Index i = 0; i < n; ++i) {
    d.X(i, 0) = rng.uniform(-1, 1);
    d.X(i, 1) = rng.uniform(-1, 1);
    d.y(i) = d.X(i, 0) * d.X(i, 1) > 0 ? 1.0 : 0.0;
  }
  return d;
}

/// Two interleaved half-moons (as scikit-learn's make_moons) with N(0, noise^2) jitter on both coordinates.
Data moons(Eigen::Index n, double noise, std::uint64_t seed) {
  Rng rng(seed);
  Data d{Eigen::MatrixXd(n, 2), Eigen::VectorXd(n), {}};
  for (Eigen::Index i = 0; i < n; ++i) {
    const double t = rng.uniform(0, 3.14159265358979323846);
    const bool inner = i % 2 == 1;
    d.X(i, 0) = (inner ? 1 - std::cos(t) : std::cos(t)) + rng.normal(0, noise);
    d.X(i, 1) = (inner ? 0.5 - std::sin(t) : std::sin(t)) + rng.normal(0, noise);
    d.y(i) = inner ? 1.0 : 0.0;
  }
  return d;
}

/// Logistic truth: x ~ N(0, I_2), P(y = 1 | x) = sigmoid(1.5 x0 - x1 + 0.3), y ~ Bernoulli(P).
Data logistic_data(Eigen::Index n, std::uint64_t seed) {
  Rng rng(seed);
  Data d{Eigen::MatrixXd(n, 2), Eigen::VectorXd(n), Eigen::VectorXd(n)};
  for (Eigen::Index i = 0; i < n; ++i) {
    d.X(i, 0) = rng.normal();
    d.X(i, 1) = rng.normal();
    d.p(i) = logistic(1.5 * d.X(i, 0) - d.X(i, 1) + 0.3);
    d.y(i) = rng.bernoulli(d.p(i)) ? 1.0 : 0.0;
  }
  return d;
}

double accuracy(const Eigen::VectorXd& prob, const Eigen::VectorXd& y) {
  Eigen::Index right = 0;
  for (Eigen::Index i = 0; i < y.size(); ++i) right += ((prob(i) >= 0.5) == (y(i) >= 0.5)) ? 1 : 0;
  return static_cast<double>(right) / static_cast<double>(y.size());
}

/// An independent forward pass from the public layers: standardise, ReLU hidden layers, sigmoid output.
Eigen::VectorXd reference_forward(const PatternNet& net, const Eigen::MatrixXd& X) {
  Eigen::VectorXd out(X.rows());
  const auto& L = net.layers();
  for (Eigen::Index r = 0; r < X.rows(); ++r) {
    std::vector<double> a(static_cast<std::size_t>(X.cols()));
    for (Eigen::Index c = 0; c < X.cols(); ++c)
      a[static_cast<std::size_t>(c)] = (X(r, c) - net.input_mean()(c)) / net.input_scale()(c);
    for (std::size_t l = 0; l < L.size(); ++l) {
      std::vector<double> next(static_cast<std::size_t>(L[l].weights.cols()));
      for (Eigen::Index j = 0; j < L[l].weights.cols(); ++j) {
        double z = L[l].bias(j);
        for (Eigen::Index i = 0; i < L[l].weights.rows(); ++i) z += a[static_cast<std::size_t>(i)] * L[l].weights(i, j);
        next[static_cast<std::size_t>(j)] = l + 1 < L.size() ? std::max(z, 0.0) : logistic(z);
      }
      a = next;
    }
    out(r) = a[0];
  }
  return out;
}

}  // namespace

TEST_CASE("mlp: analytic gradient equals central finite differences for every parameter", "[models][mlp]") {
  // Tiny net 3 -> 4 -> 3 -> 1 with L2, trained a few epochs so that the weights are not at initialisation.
  MlpParams p;
  p.hidden_layers = {4, 3};
  p.dropout = 0.0;
  p.weight_decay = 0.05;
  p.validation_split = 0.0;
  p.max_epochs = 3;
  p.batch_size = 8;
  p.learning_rate = 0.05;
  Rng rng(7);
  Eigen::MatrixXd X(30, 3);
  Eigen::VectorXd y(30);
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    for (Eigen::Index c = 0; c < 3; ++c) X(i, c) = rng.normal(c, 1.0 + c);
    y(i) = i % 3 == 0 ? rng.uniform() : (i % 3 == 1 ? 1.0 : 0.0);  // soft and hard targets
  }
  PatternNet net(p);
  net.fit(X, y);
  const Eigen::VectorXd theta = net.parameters();
  REQUIRE(theta.size() == (3 * 4 + 4) + (4 * 3 + 3) + (3 * 1 + 1));
  Eigen::VectorXd grad;
  const double j0 = net.loss_and_gradient(X, y, grad);
  CHECK(j0 == Approx(net.loss(X, y)).epsilon(1e-14));
  REQUIRE(grad.size() == theta.size());

  // Central difference error: truncation h^2/6 |J'''| ~ 1e-11 and rounding ~ eps |J| / h ~ 1e-11 for h = 1e-5
  // (J ~ 1); 1e-7 leaves a factor 1e4 of room and is still far below any real error (the L2 term alone
  // contributes lambda * w ~ 1e-2 per weight).
  const double h = 1e-5;
  double worst = 0;
  for (Eigen::Index i = 0; i < theta.size(); ++i) {
    Eigen::VectorXd t = theta;
    t(i) = theta(i) + h;
    net.set_parameters(t);
    const double up = net.loss(X, y);
    t(i) = theta(i) - h;
    net.set_parameters(t);
    const double down = net.loss(X, y);
    const double fd = (up - down) / (2 * h);
    INFO("parameter " << i << ": analytic " << grad(i) << ", finite difference " << fd);
    CHECK(std::abs(grad(i) - fd) <= 1e-7 + 1e-6 * std::abs(fd));
    worst = std::max(worst, std::abs(grad(i) - fd));
  }
  net.set_parameters(theta);
  INFO("largest |analytic - finite difference| = " << worst);
  CHECK(net.loss(X, y) == j0);
}

TEST_CASE("mlp: without hidden layers the gradient is logistic regression's X'(sigmoid(Xw + b) - y)/n + lambda w",
          "[models][mlp]") {
  MlpParams p;
  p.hidden_layers = {};
  p.validation_split = 0.0;
  p.max_epochs = 2;
  p.weight_decay = 0.1;
  p.standardize_inputs = false;
  const auto d = logistic_data(50, 3);
  PatternNet net(p);
  net.fit(d.X, d.y);
  const Eigen::VectorXd w = net.layers()[0].weights.col(0);
  const double b = net.layers()[0].bias(0);
  const Eigen::VectorXd s = (d.X * w).array() + b;
  const Eigen::VectorXd r = s.unaryExpr([](double v) { return logistic(v); }) - d.y;
  Eigen::VectorXd expected(3);
  expected.head(2) = d.X.transpose() * r / 50.0 + 0.1 * w;
  expected(2) = r.mean();
  double expected_loss = 0;
  for (Eigen::Index i = 0; i < 50; ++i) {
    const double q = logistic(s(i));
    expected_loss -= (d.y(i) * std::log(q) + (1 - d.y(i)) * std::log(1 - q)) / 50.0;
  }
  expected_loss += 0.05 * w.squaredNorm();
  Eigen::VectorXd grad;
  const double j = net.loss_and_gradient(d.X, d.y, grad);
  CHECK(j == Approx(expected_loss).epsilon(1e-12));
  for (Eigen::Index i = 0; i < 3; ++i) CHECK(grad(i) == Approx(expected(i)).epsilon(1e-12).margin(1e-15));
}

TEST_CASE("mlp: Adam's bias-corrected first step moves every parameter by learning_rate against its gradient",
          "[models][mlp]") {
  // Kingma & Ba 2015: after one step m_hat = g and v_hat = g^2, so theta_1 - theta_0 = -alpha g / (|g| + eps).
  // Without the bias correction the step would be alpha (1 - beta1) / sqrt(1 - beta2) = 3.16 alpha.
  const auto d = moons(200, 0.2, 5);
  MlpParams p;
  p.hidden_layers = {5, 4};
  p.dropout = 0.0;
  p.validation_split = 0.0;
  p.max_epochs = 1;
  p.batch_size = 1000;  // one full batch: one Adam step
  p.learning_rate = 1e-12;
  PatternNet start(p);  // theta_0 up to 1e-12
  start.fit(d.X, d.y);
  Eigen::VectorXd g;
  start.loss_and_gradient(d.X, d.y, g);
  p.learning_rate = 0.01;
  PatternNet stepped(p);
  stepped.fit(d.X, d.y);
  const Eigen::VectorXd delta = stepped.parameters() - start.parameters();
  // |step| = alpha |g| / (|g| + eps) = alpha (1 - 1e-5 or closer) for |g| > 1e-3. Only the size is compared
  // parameter by parameter: theta_0 is known up to 1e-12, which can flip a ReLU exactly at its kink (rows
  // whose first-layer units are all off meet the zero-initialised biases of the next layer at z = 0), and
  // there the sign of a bias gradient is not defined.
  int moved = 0;
  for (Eigen::Index i = 0; i < g.size(); ++i) {
    if (std::abs(g(i)) < 1e-3) continue;
    ++moved;
    INFO("parameter " << i << ": gradient " << g(i) << ", step " << delta(i));
    CHECK(std::abs(delta(i)) == Approx(0.01).epsilon(2e-5));
  }
  CHECK(moved > g.size() / 2);
  // The step goes downhill: first order change -alpha sum |g_i|.
  CHECK(stepped.loss(d.X, d.y) < start.loss(d.X, d.y));
}

TEST_CASE("mlp: learns XOR to high held-out accuracy; a net without hidden layers cannot", "[models][mlp]") {
  const auto train = xor_data(4000, 11), test = xor_data(2000, 12);
  PatternNet net;  // the specification's defaults: {64, 32}, dropout 0.2, Adam 1e-3, batch 100, 100 epochs
  const auto& h = net.fit(train.X, train.y);
  const double acc = accuracy(net.predict_proba(test.X), test.y);
  MlpParams linear;
  linear.hidden_layers = {};
  PatternNet lr(linear);
  lr.fit(train.X, train.y);
  const double acc_linear = accuracy(lr.predict_proba(test.X), test.y);
  std::printf("[mlp] XOR held-out accuracy %.4f (epochs %d, best %d); without hidden layers %.4f\n", acc, h.epochs_run,
              h.best_epoch, acc_linear);
  INFO("accuracy " << acc << ", linear " << acc_linear);
  // Bayes accuracy is 1; errors can only come from the smoothed corners at the axes.
  CHECK(acc >= 0.95);
  CHECK(acc_linear <= 0.70);  // a linear boundary gets at most ~2/3 of XOR right
}

TEST_CASE("mlp: learns two interleaved half-moons to high held-out accuracy", "[models][mlp]") {
  const auto train = moons(2000, 0.1, 21), test = moons(2000, 0.1, 22);
  PatternNet net;
  net.fit(train.X, train.y);
  const double acc = accuracy(net.predict_proba(test.X), test.y);
  MlpParams linear;
  linear.hidden_layers = {};
  PatternNet lr(linear);
  lr.fit(train.X, train.y);
  const double acc_linear = accuracy(lr.predict_proba(test.X), test.y);
  std::printf("[mlp] half-moons (noise 0.1) held-out accuracy %.4f; without hidden layers %.4f\n", acc, acc_linear);
  INFO("accuracy " << acc << ", linear " << acc_linear);
  // With noise 0.1 the moons barely overlap (Bayes accuracy > 0.99); a straight line gets about 0.87.
  CHECK(acc >= 0.97);
  CHECK(acc_linear < 0.92);
}

TEST_CASE("mlp: training loss decreases", "[models][mlp]") {
  const auto d = xor_data(2000, 31);
  MlpParams p;
  p.validation_split = 0.0;
  p.max_epochs = 40;
  PatternNet net(p);
  const auto& h = net.fit(d.X, d.y);
  REQUIRE(h.train_loss.size() == 40);
  const auto mean_of = [&](std::size_t from, std::size_t to) {
    double s = 0;
    for (std::size_t i = from; i < to; ++i) s += h.train_loss[i];
    return s / static_cast<double>(to - from);
  };
  INFO("first epoch " << h.train_loss.front() << ", last epoch " << h.train_loss.back());
  CHECK(h.train_loss.back() < 0.5 * h.train_loss.front());
  CHECK(mean_of(35, 40) < mean_of(20, 25));
  CHECK(mean_of(20, 25) < mean_of(5, 10));
  // The objective on the training rows (dropout off) after 40 epochs is below that after 1.
  MlpParams one = p;
  one.max_epochs = 1;
  PatternNet early(one);
  early.fit(d.X, d.y);
  CHECK(net.loss(d.X, d.y) < early.loss(d.X, d.y));
}

TEST_CASE("mlp: early stopping stops on a noisy task and restores the best validation epoch", "[models][mlp]") {
  // 300 rows, 20 inputs of which one matters, Bernoulli labels: a {64, 32} net overfits within a few epochs.
  Rng rng(41);
  Eigen::MatrixXd X(300, 20);
  Eigen::VectorXd y(300);
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    for (Eigen::Index c = 0; c < X.cols(); ++c) X(i, c) = rng.normal();
    y(i) = rng.bernoulli(logistic(X(i, 0))) ? 1.0 : 0.0;
  }
  MlpParams p;
  p.dropout = 0.0;
  p.batch_size = 20;
  p.max_epochs = 200;
  p.early_stopping_patience = 5;
  PatternNet net(p);
  const auto h = net.fit(X, y);
  const auto& v = h.validation_loss;
  REQUIRE(v.size() == static_cast<std::size_t>(h.epochs_run));
  const int argmin = static_cast<int>(std::min_element(v.begin(), v.end()) - v.begin());
  std::printf("[mlp] early stopping: %d of %d epochs, best epoch %d (validation loss %.4f, last %.4f)\n", h.epochs_run,
              p.max_epochs, h.best_epoch, v[static_cast<std::size_t>(h.best_epoch)], v.back());
  CHECK(h.stopped_early);
  CHECK(h.epochs_run < p.max_epochs);
  CHECK(h.best_epoch == argmin);
  CHECK(h.epochs_run == h.best_epoch + 1 + p.early_stopping_patience);  // min_delta 0: patience counts from the best
  CHECK(v.back() > v[static_cast<std::size_t>(argmin)]);

  // The model holds the best epoch's weights: its loss on the validation rows is that epoch's ...
  const auto split = promptlearn::models::train_validation_split(X.rows(), p.validation_split, p.seed);
  const Eigen::MatrixXd Xv = promptlearn::models::take_rows(X, split.validation);
  const Eigen::VectorXd yv = promptlearn::models::take_values(y, split.validation);
  CHECK(net.loss(Xv, yv) == Approx(v[static_cast<std::size_t>(argmin)]).epsilon(1e-12));
  // ... and they are bit-identical to a run that simply ends at that epoch.
  MlpParams until = p;
  until.max_epochs = h.best_epoch + 1;
  PatternNet shorter(until);
  shorter.fit(X, y);
  CHECK(shorter.history().best_epoch == h.best_epoch);
  CHECK(shorter.parameters() == net.parameters());
}

TEST_CASE("mlp: dropout changes training, inference is deterministic and uses the weights unscaled",
          "[models][mlp]") {
  const auto d = moons(1000, 0.2, 51), test = moons(200, 0.2, 52);
  MlpParams p0;
  p0.dropout = 0.0;
  p0.max_epochs = 20;
  MlpParams p2 = p0;
  p2.dropout = 0.2;
  PatternNet a(p0), b(p2);
  a.fit(d.X, d.y);
  b.fit(d.X, d.y);
  CHECK(a.parameters() != b.parameters());
  CHECK(a.history().train_loss != b.history().train_loss);
  // Same initialisation and the same first shuffle: only the dropout masks differ.
  for (const PatternNet* net : {&a, &b}) {
    const Eigen::VectorXd first = net->predict_proba(test.X), second = net->predict_proba(test.X);
    CHECK(first == second);
    const Eigen::VectorXd ref = reference_forward(*net, test.X);
    CHECK((first - ref).cwiseAbs().maxCoeff() < 1e-12);
    for (Eigen::Index i = 0; i < test.X.rows(); ++i) {
      const double one = net->predict_proba_one(test.X.row(i).transpose());
      CHECK(std::abs(one - first(i)) < 1e-12);
      CHECK(net->predict_proba_one(test.X.row(i).transpose()) == one);
    }
  }
}

TEST_CASE("mlp: the same seed gives bit-identical weights, another seed different ones", "[models][mlp]") {
  const auto d = moons(600, 0.2, 61);
  MlpParams p;
  p.max_epochs = 15;
  p.validation_split = 0.0;  // the seed then acts only through initialisation, shuffles and dropout
  PatternNet a(p), b(p);
  a.fit(d.X, d.y);
  b.fit(d.X, d.y);
  CHECK(a.parameters() == b.parameters());
  CHECK(a.history().train_loss == b.history().train_loss);
  CHECK(a.history().validation_loss == b.history().validation_loss);
  p.seed = 43;
  PatternNet c(p);
  c.fit(d.X, d.y);
  CHECK(c.parameters() != a.parameters());
  // Refitting the same object starts afresh.
  a.fit(d.X, d.y);
  CHECK(a.parameters() == b.parameters());
}

TEST_CASE("mlp: save and load give identical predictions; malformed state names the field", "[models][mlp]") {
  const auto d = moons(600, 0.2, 71), test = moons(300, 0.2, 72);
  MlpParams p;
  p.hidden_layers = {16, 8};
  p.max_epochs = 10;
  p.weight_decay = 1e-4;
  PatternNet net(p);
  net.fit(d.X, d.y);
  const Eigen::VectorXd expected = net.predict_proba(test.X);

  const std::string text = net.to_json().dump();
  const PatternNet loaded = PatternNet::from_json(nlohmann::json::parse(text));
  CHECK(loaded.predict_proba(test.X) == expected);
  CHECK(loaded.parameters() == net.parameters());
  CHECK(loaded.input_mean() == net.input_mean());
  CHECK(loaded.input_scale() == net.input_scale());
  CHECK(loaded.history().validation_loss == net.history().validation_loss);
  CHECK(loaded.history().best_epoch == net.history().best_epoch);
  CHECK(loaded.params().hidden_layers == p.hidden_layers);
  CHECK(loaded.params().weight_decay == p.weight_decay);
  CHECK(loaded.to_json() == net.to_json());

  const auto blob = net.to_blob();
  const PatternNet from_blob = PatternNet::from_blob(blob);
  CHECK(from_blob.predict_proba(test.X) == expected);
  std::printf("[mlp] state of a 2-16-8-1 net: JSON %zu bytes, CBOR blob %zu bytes\n", text.size(), blob.size());

  const PatternNet unfitted = PatternNet::from_json(PatternNet(p).to_json());
  CHECK_FALSE(unfitted.fitted());
  CHECK_THROWS_AS(unfitted.predict_proba(test.X), Error);

  const nlohmann::json good = net.to_json();
  auto path_of = [](const nlohmann::json& j) {
    try {
      PatternNet::from_json(j);
    } catch (const ValidationError& e) {
      return e.path();
    }
    return std::string("<no error>");
  };
  nlohmann::json j = good;
  j.erase("input_scale");
  CHECK(path_of(j) == "input_scale");
  j = good;
  j["layers"][1]["weights"][3][2] = nullptr;  // what a NaN weight becomes in JSON
  CHECK(path_of(j) == "layers[1].weights[3][2]");
  j = good;
  j["layers"][0]["weights"][0].erase(0);  // a 2 x 16 matrix with a short row
  CHECK(path_of(j) == "layers[0].weights");
  j = good;
  j["layers"][2]["bias"] = {0.1, 0.2};
  CHECK(path_of(j) == "layers[2].bias");
  j = good;
  j["params"]["hidden_layers"] = {16, 9};  // disagrees with the stored shapes
  CHECK(path_of(j) == "layers[1].weights");
  j = good;
  j["params"]["dropout"] = 1.5;
  CHECK(path_of(j) == "params.dropout");
  j = good;
  j["params"]["batch_size"] = "100";
  CHECK(path_of(j) == "params.batch_size");
  j = good;
  j["params"]["dropuot"] = 0.2;
  CHECK(path_of(j) == "params.dropuot");
  j = good;
  j["input_scale"][1] = 0.0;
  CHECK(path_of(j) == "input_scale[1]");
  j = good;
  j["format"] = "something else";
  CHECK(path_of(j) == "format");
  j = good;
  j["history"]["best_epoch"] = 1000;
  CHECK(path_of(j) == "history.best_epoch");
  CHECK(path_of(nlohmann::json::array()) == "");
  CHECK_THROWS_AS(PatternNet::from_blob({0xff, 0x00, 0x12}), ValidationError);
}

TEST_CASE("mlp: predicted probabilities match the true ones of a logistic model", "[models][mlp]") {
  const auto train = logistic_data(20000, 81), test = logistic_data(5000, 82);
  const double n_train = 20000 * 0.8;
  auto rms_error = [&](const PatternNet& net) {
    return std::sqrt((net.predict_proba(test.X) - test.p).squaredNorm() / static_cast<double>(test.p.size()));
  };
  // Tolerance. For a well-specified model with k parameters fitted by maximum likelihood on n rows, the
  // delta method gives E_x[(p_hat(x) - p(x))^2] ~ tr(I^-1 E[w^2 x x']) / n <= max(w) k / n = k / (4n), with
  // w = p(1 - p) <= 1/4 and I = E[w x x'] the Fisher information. We take the network's parameter count as an
  // upper bound on its effective dimension and allow twice the resulting RMS for finite-sample spread and the
  // piecewise-linear approximation of the logit: RMS <= 2 sqrt(k / (4n)) = sqrt(k / n).
  const double spread = std::sqrt((test.p.array() - test.p.mean()).square().mean());  // a constant predictor's RMS

  MlpParams small;
  small.hidden_layers = {8};
  small.dropout = 0.0;
  PatternNet mlp(small);
  mlp.fit(train.X, train.y);
  const double k_mlp = static_cast<double>(mlp.parameter_count());  // 2*8 + 8 + 8 + 1 = 33
  const double tol_mlp = std::sqrt(k_mlp / n_train);
  const double err_mlp = rms_error(mlp);

  MlpParams linear = small;
  linear.hidden_layers = {};
  PatternNet lr(linear);
  lr.fit(train.X, train.y);
  const double tol_lr = std::sqrt(3.0 / n_train);
  const double err_lr = rms_error(lr);

  PatternNet defaults;  // {64, 32}, dropout 0.2: reported, not asserted (k = 2305 makes the bound vacuous)
  defaults.fit(train.X, train.y);
  const double err_default = rms_error(defaults);

  std::printf("[mlp] calibration RMS |p_hat - p|: {8} net %.4f (bound %.4f), no hidden layer %.4f (bound %.4f), "
              "defaults {64,32} dropout 0.2 %.4f; constant predictor %.4f\n",
              err_mlp, tol_mlp, err_lr, tol_lr, err_default, spread);
  REQUIRE(spread > 3 * tol_mlp);  // the bound discriminates
  CHECK(err_mlp <= tol_mlp);
  CHECK(err_lr <= tol_lr);
}

TEST_CASE("mlp: errors name the field", "[models][mlp]") {
  auto config_message = [](MlpParams p) {
    try {
      p.validate();
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  MlpParams p;
  p.dropout = 1;
  CHECK(config_message(p) == "mlp.dropout: 1 is outside [0, 1)");
  CHECK_THROWS_AS(PatternNet(p), ConfigError);
  p = {};
  p.hidden_layers = {64, 0};
  CHECK(config_message(p) == "mlp.hidden_layers[1]: 0 is outside [1, 100000]");
  p = {};
  p.learning_rate = 0;
  CHECK(config_message(p) == "mlp.learning_rate: 0 is outside (0, 10]");
  p = {};
  p.batch_size = 0;
  CHECK(config_message(p) == "mlp.batch_size: 0 is outside [1, 1000000000]");
  p = {};
  p.validation_split = 1;
  CHECK(config_message(p) == "mlp.validation_split: 1 is outside [0, 1)");
  p = {};
  p.beta2 = std::nan("");
  CHECK(config_message(p) == "mlp.beta2: nan is outside [0, 1)");
  CHECK(config_message(MlpParams{}) == "<no error>");

  auto validation_message = [](auto&& f) {
    try {
      f();
    } catch (const ValidationError& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  const auto d = xor_data(50, 91);
  MlpParams quick;
  quick.max_epochs = 2;
  PatternNet net(quick);
  CHECK_THROWS_AS(net.predict_proba(d.X), Error);
  CHECK_FALSE(net.try_predict_proba_one(Eigen::Vector2d(0.1, 0.2)).has_value());

  Eigen::MatrixXd X = d.X;
  X(2, 1) = std::nan("");
  CHECK(validation_message([&] { net.fit(X, d.y); }) == "X[2][1]: nan is not a finite number");
  Eigen::VectorXd y = d.y;
  y(4) = 1.5;
  CHECK(validation_message([&] { net.fit(d.X, y); }) == "y[4]: 1.5 is outside [0, 1]");
  y(4) = -0.25;
  CHECK(validation_message([&] { net.fit(d.X, y); }) == "y[4]: -0.25 is outside [0, 1]");
  y(4) = std::nan("");
  CHECK(validation_message([&] { net.fit(d.X, y); }) == "y[4]: nan is not a finite number");
  CHECK(validation_message([&] { net.fit(d.X, d.y.head(10)); }) == "y: has 10 values for 50 rows of X");
  CHECK_FALSE(net.fitted());  // failed fits leave the model as it was

  net.fit(d.X, d.y);
  const Eigen::VectorXd before = net.predict_proba(d.X);
  CHECK(validation_message([&] { net.fit(X, d.y); }) == "X[2][1]: nan is not a finite number");
  CHECK(net.predict_proba(d.X) == before);
  CHECK(validation_message([&] { net.predict_proba(X); }) == "X[2][1]: nan is not a finite number");
  CHECK(validation_message([&] { net.predict_proba(Eigen::MatrixXd::Zero(3, 5)); }) ==
        "X: has 5 columns, the model was fitted on 2");
  CHECK(validation_message([&] { net.predict_proba_one(Eigen::Vector2d(0.1, std::nan(""))); }) ==
        "x[1]: nan is not a finite number");
  CHECK(validation_message([&] { net.predict_proba_one(Eigen::Vector3d(0.1, 0.2, 0.3)); }) ==
        "x: has 3 values, the model was fitted on 2 columns");
  CHECK_FALSE(net.try_predict_proba_one(Eigen::Vector2d(0.1, std::nan(""))).has_value());
  REQUIRE(net.try_predict_proba_one(Eigen::Vector2d(0.1, 0.2)).has_value());
  CHECK(*net.try_predict_proba_one(Eigen::Vector2d(0.1, 0.2)) == net.predict_proba_one(Eigen::Vector2d(0.1, 0.2)));
  CHECK(validation_message([&] { net.set_parameters(Eigen::VectorXd::Zero(3)); }).rfind("theta: has 3 values", 0) == 0);
}

TEST_CASE("mlp: fit time on 10,000 x 20 rows and predict_proba_one latency (measured, not asserted)",
          "[models][mlp]") {
  // y = [x0 x1 + sin(2 x2) - x3 > 0] with 16 irrelevant inputs: a non-linear rule a net must learn.
  Rng rng(101);
  auto make = [&](Eigen::Index n) {
    Data d{Eigen::MatrixXd(n, 20), Eigen::VectorXd(n), {}};
    for (Eigen::Index i = 0; i < n; ++i) {
      for (Eigen::Index c = 0; c < 20; ++c) d.X(i, c) = rng.normal();
      d.y(i) = d.X(i, 0) * d.X(i, 1) + std::sin(2 * d.X(i, 2)) - d.X(i, 3) > 0 ? 1.0 : 0.0;
    }
    return d;
  };
  const auto train = make(10000), test = make(2000);
  PatternNet net;  // defaults
  const auto t0 = std::chrono::steady_clock::now();
  const auto& h = net.fit(train.X, train.y);
  const double fit_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double acc = accuracy(net.predict_proba(test.X), test.y);

  const int calls = 20000;
  double sink = 0;
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) sink += net.predict_proba_one(test.X.row(i % test.X.rows()).transpose());
  const double one_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t1).count() / calls;
  const auto t2 = std::chrono::steady_clock::now();
  const Eigen::VectorXd batch = net.predict_proba(test.X);
  const double batch_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t2).count() /
                          static_cast<double>(test.X.rows());

  std::printf("[mlp] fit 10000 x 20, {64,32}, defaults: %.3f s for %d epochs (%.1f ms/epoch, best %d, early %s); "
              "held-out accuracy %.4f; predict_proba_one %.2f us/row; predict_proba batch %.3f us/row\n",
              fit_s, h.epochs_run, 1000 * fit_s / h.epochs_run, h.best_epoch, h.stopped_early ? "yes" : "no", acc, one_us,
              batch_us);
  INFO("fit " << fit_s << " s, predict_proba_one " << one_us << " us");
  CHECK(std::isfinite(sink));
  CHECK(acc > 0.9);
}
