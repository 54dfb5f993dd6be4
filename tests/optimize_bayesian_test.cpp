// Tests of the Gaussian process and Bayesian optimisation (issue 6) against closed forms, hand-computed
// cases and finite differences.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <Eigen/Core>
#include <Eigen/LU>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/optimize/bayesian.hpp"
#include "promptlearn/optimize/gaussian_process.hpp"

using namespace promptlearn;
using namespace promptlearn::optimize;
using Catch::Matchers::Contains;

namespace {

double matern52(double r, double s2) {
  const double s5 = std::sqrt(5.0);
  return s2 * (1 + s5 * r + 5.0 / 3.0 * r * r) * std::exp(-s5 * r);
}

Eigen::MatrixXd random_matrix(Rng& rng, Eigen::Index r, Eigen::Index c) {
  Eigen::MatrixXd m(r, c);
  for (Eigen::Index i = 0; i < r; ++i)
    for (Eigen::Index j = 0; j < c; ++j) m(i, j) = optimize::detail::unit_uniform(rng);
  return m;
}

SearchSpace mixed_space() {
  SearchSpace s;
  s.parameters.push_back({"x", Parameter::Kind::continuous, -2.0, 3.0, false, {}});
  s.parameters.push_back({"n", Parameter::Kind::integer, 1, 12, false, {}});
  s.parameters.push_back({"lr", Parameter::Kind::continuous, 1e-4, 1e-1, true, {}});
  s.parameters.push_back({"style", Parameter::Kind::categorical, 0, 1, false, {"terse", "verbose", "socratic"}});
  return s;
}

double mixed_objective(const nlohmann::json& p) {
  const double x = p.at("x").get<double>();
  const auto n = p.at("n").get<std::int64_t>();
  const double lr = p.at("lr").get<double>();
  const std::string style = p.at("style").get<std::string>();
  const double l = std::log10(lr) + 2.5;
  return (x - 0.7) * (x - 0.7) + 0.1 * static_cast<double>((n - 7) * (n - 7)) + l * l +
         (style == "verbose" ? 0.0 : style == "terse" ? 2.0 : 1.0);
}

}  // namespace

TEST_CASE("Matern 5/2 kernel matches its formula", "[optimize][bayesian]") {
  Matern52Ard k(2);
  Eigen::VectorXd theta(3);
  theta << std::log(0.5), std::log(2.0), std::log(1.5);
  k.set_params(theta);
  Eigen::VectorXd a(2), b(2);
  a << 0.1, 0.9;
  b << 0.4, 0.3;
  const double r = std::sqrt(std::pow(0.3 / 0.5, 2) + std::pow(0.6 / 2.0, 2));
  CHECK(k(a, b) == Approx(matern52(r, 1.5)).epsilon(1e-14));
  CHECK(k(a, a) == Approx(1.5).epsilon(1e-14));
  Eigen::MatrixXd A(2, 2);
  A.row(0) = a.transpose();
  A.row(1) = b.transpose();
  const Eigen::MatrixXd K = k.gram(A, A);
  CHECK(K(0, 1) == Approx(matern52(r, 1.5)).epsilon(1e-12));
  CHECK(K(1, 0) == Approx(K(0, 1)).epsilon(1e-14));
  CHECK(K(0, 0) == Approx(1.5).epsilon(1e-12));
}

TEST_CASE("kernel gradients agree with finite differences", "[optimize][bayesian]") {
  Rng rng(3);
  const Eigen::Index d = 3, n = 7;
  Matern52Ard k(d);
  Eigen::VectorXd theta(d + 1);
  theta << std::log(0.3), std::log(0.8), std::log(1.7), std::log(0.6);
  k.set_params(theta);
  const Eigen::MatrixXd X = random_matrix(rng, n, d);
  Eigen::MatrixXd W = random_matrix(rng, n, n);
  W = (W + W.transpose()).eval();

  SECTION("hyperparameter gradient of sum(W o K)") {
    const Eigen::VectorXd g = k.gram_gradient_dot(X, W);
    for (Eigen::Index j = 0; j < theta.size(); ++j) {
      const double h = 1e-6;
      Matern52Ard kp = k, km = k;
      Eigen::VectorXd tp = theta, tm = theta;
      tp(j) += h;
      tm(j) -= h;
      kp.set_params(tp);
      km.set_params(tm);
      const double fd = ((W.array() * kp.gram(X, X).array()).sum() - (W.array() * km.gram(X, X).array()).sum()) / (2 * h);
      CHECK(g(j) == Approx(fd).epsilon(1e-6).margin(1e-8));
    }
  }
  SECTION("input gradient of k(x, X)") {
    const Eigen::VectorXd x = random_matrix(rng, d, 1);
    const Eigen::MatrixXd J = k.cross_gradient(x, X);
    for (Eigen::Index i = 0; i < d; ++i) {
      const double h = 1e-6;
      Eigen::VectorXd xp = x, xm = x;
      xp(i) += h;
      xm(i) -= h;
      for (Eigen::Index a = 0; a < n; ++a) {
        const double fd = (k(xp, X.row(a).transpose()) - k(xm, X.row(a).transpose())) / (2 * h);
        CHECK(J(a, i) == Approx(fd).epsilon(1e-6).margin(1e-9));
      }
    }
    // At a training point the gradient is zero (the kernel is smooth at r = 0).
    CHECK(k.cross_gradient(X.row(2).transpose(), X).row(2).norm() == Approx(0.0).margin(1e-15));
  }
}

TEST_CASE("GP posterior equals the hand-computed 2-point case", "[optimize][bayesian]") {
  // Two points in 1-D, l = 0.5, s2 = 2, noise 0.01, no standardisation:
  // K = [[s2 + n, k12], [k12, s2 + n]], mean(x) = k*' K^-1 y, var(x) = s2 - k*' K^-1 k*.
  const double l = 0.5, s2 = 2.0, noise = 0.01;
  GaussianProcess<> gp{Matern52Ard(1)};
  Eigen::VectorXd theta(3);
  theta << std::log(l), std::log(s2), std::log(noise);
  gp.set_hyperparameters(theta);
  Eigen::MatrixXd X(2, 1);
  X << 0.2, 0.7;
  Eigen::VectorXd y(2);
  y << 1.0, -0.5;
  gp.set_data(X, y, false);

  const double k12 = matern52(0.5 / l, s2), a = s2 + noise + 1e-10;  // 1e-10: the GP's fixed jitter
  const double det = a * a - k12 * k12;
  for (double x : {0.0, 0.2, 0.45, 0.9}) {
    const double k1 = matern52(std::abs(x - 0.2) / l, s2), k2 = matern52(std::abs(x - 0.7) / l, s2);
    // K^-1 = [[a, -k12], [-k12, a]] / det
    const double w1 = (a * 1.0 - k12 * -0.5) / det, w2 = (-k12 * 1.0 + a * -0.5) / det;
    const double mean = k1 * w1 + k2 * w2;
    const double quad = (a * k1 * k1 - 2 * k12 * k1 * k2 + a * k2 * k2) / det;
    Eigen::VectorXd xv(1);
    xv << x;
    const auto p = gp.predict(xv);
    CHECK(p.mean == Approx(mean).epsilon(1e-10));
    CHECK(p.variance == Approx(s2 - quad).epsilon(1e-8).margin(1e-12));
  }

  SECTION("standardised targets give the same posterior rescaled") {
    // With standardisation, y is modelled as (y - m) / s; the mean maps back as m + s * mean_n.
    gp.set_data(X, y, true);
    const double m = 0.25, s = 0.75;  // mean and population sd of {1, -0.5}
    Eigen::VectorXd xv(1);
    xv << 0.45;
    const double k1 = matern52(0.25 / l, s2), k2 = matern52(0.25 / l, s2);
    const double w1 = (a * ((1.0 - m) / s) - k12 * ((-0.5 - m) / s)) / det;
    const double w2 = (-k12 * ((1.0 - m) / s) + a * ((-0.5 - m) / s)) / det;
    const double quad = (a * k1 * k1 - 2 * k12 * k1 * k2 + a * k2 * k2) / det;
    CHECK(gp.predict(xv).mean == Approx(m + s * (k1 * w1 + k2 * w2)).epsilon(1e-10));
    CHECK(gp.predict(xv).variance == Approx(s * s * (s2 - quad)).epsilon(1e-8));
  }
}

TEST_CASE("log marginal likelihood: value and gradient", "[optimize][bayesian]") {
  Rng rng(11);
  const Eigen::Index d = 2, n = 9;
  const Eigen::MatrixXd X = random_matrix(rng, n, d);
  Eigen::VectorXd y(n);
  for (Eigen::Index i = 0; i < n; ++i) y(i) = std::sin(6 * X(i, 0)) + X(i, 1) * X(i, 1);
  GaussianProcess<> gp{Matern52Ard(d)};
  gp.set_data(X, y);
  Eigen::VectorXd theta(d + 2);
  theta << std::log(0.4), std::log(0.9), std::log(1.3), std::log(0.02);

  // Direct evaluation from the definition with a dense inverse and determinant.
  Matern52Ard k(d);
  k.set_params(theta.head(d + 1));
  Eigen::MatrixXd K = k.gram(X, X);
  K.diagonal().array() += 0.02 + 1e-10;
  const Eigen::VectorXd yn = gp.normalized_targets();
  const double direct = -0.5 * yn.dot(K.inverse() * yn) - 0.5 * std::log(K.determinant()) -
                        0.5 * static_cast<double>(n) * std::log(2 * 3.14159265358979323846);
  Eigen::VectorXd g;
  CHECK(gp.log_marginal_likelihood(theta, &g) == Approx(direct).epsilon(1e-10));
  for (Eigen::Index j = 0; j < theta.size(); ++j) {
    const double h = 1e-6;
    Eigen::VectorXd tp = theta, tm = theta;
    tp(j) += h;
    tm(j) -= h;
    const double fd = (gp.log_marginal_likelihood(tp) - gp.log_marginal_likelihood(tm)) / (2 * h);
    CHECK(g(j) == Approx(fd).epsilon(1e-5).margin(1e-7));
  }

  SECTION("fitting increases the likelihood and stays within the bounds") {
    const double before = gp.log_marginal_likelihood(gp.hyperparameters());
    Rng r(5);
    const double after = gp.fit_hyperparameters(r, 2);
    CHECK(after >= before);
    CHECK(after == Approx(gp.log_marginal_likelihood(gp.hyperparameters())).epsilon(1e-12));
    const Eigen::VectorXd t = gp.hyperparameters();
    CHECK((t.array() >= gp.lower_bounds().array()).all());
    CHECK((t.array() <= gp.upper_bounds().array()).all());
    // At an interior optimum the gradient vanishes (component-wise, for coordinates not at a bound).
    Eigen::VectorXd gt;
    gp.log_marginal_likelihood(t, &gt);
    for (Eigen::Index j = 0; j < t.size(); ++j)
      if (t(j) > gp.lower_bounds()(j) + 1e-6 && t(j) < gp.upper_bounds()(j) - 1e-6) CHECK(std::abs(gt(j)) < 1e-3);
  }
}

TEST_CASE("GP predictive gradients agree with finite differences", "[optimize][bayesian]") {
  Rng rng(17);
  const Eigen::Index d = 3, n = 12;
  const Eigen::MatrixXd X = random_matrix(rng, n, d);
  Eigen::VectorXd y(n);
  for (Eigen::Index i = 0; i < n; ++i) y(i) = X.row(i).sum() + std::cos(5 * X(i, 2));
  GaussianProcess<> gp{Matern52Ard(d)};
  Eigen::VectorXd theta(d + 2);
  theta << std::log(0.3), std::log(0.5), std::log(0.7), 0.0, std::log(1e-3);
  gp.set_hyperparameters(theta);
  gp.set_data(X, y);
  const Eigen::VectorXd x = random_matrix(rng, d, 1);
  double mu = 0, var = 0;
  Eigen::VectorXd dmu, dvar;
  gp.predict_normalized(x, mu, var, &dmu, &dvar);
  for (Eigen::Index i = 0; i < d; ++i) {
    const double h = 1e-6;
    Eigen::VectorXd xp = x, xm = x;
    xp(i) += h;
    xm(i) -= h;
    double mp, vp, mm, vm;
    gp.predict_normalized(xp, mp, vp, nullptr, nullptr);
    gp.predict_normalized(xm, mm, vm, nullptr, nullptr);
    CHECK(dmu(i) == Approx((mp - mm) / (2 * h)).epsilon(1e-5).margin(1e-8));
    CHECK(dvar(i) == Approx((vp - vm) / (2 * h)).epsilon(1e-5).margin(1e-8));
  }
  // The batched prediction equals the single-point one.
  Eigen::VectorXd bm, bv;
  gp.predict_normalized_batch(x.transpose(), bm, bv);
  CHECK(bm(0) == Approx(mu).epsilon(1e-12));
  CHECK(bv(0) == Approx(var).epsilon(1e-10));
}

TEST_CASE("expected improvement: closed form", "[optimize][bayesian]") {
  const ExpectedImprovement ei;
  // At mu = best: EI = s phi(0) = s / sqrt(2 pi).
  CHECK(ei(1.0, 2.0, 1.0).value == Approx(2.0 / std::sqrt(2 * 3.14159265358979323846)).epsilon(1e-14));
  // Against E[max(best - Y, 0)], Y ~ N(mu, s^2), by the trapezoid rule on a fine grid (independent of the formula).
  for (const auto& [mu, s, best] : std::vector<std::tuple<double, double, double>>{{0.3, 0.5, 0.0}, {-0.2, 0.1, 0.0}, {1.0, 3.0, 2.0}}) {
    double integral = 0;
    const int steps = 200000;
    const double lo = mu - 12 * s, hi = best, h = (hi - lo) / steps;
    for (int i = 0; i <= steps; ++i) {
      const double yv = lo + i * h, w = (i == 0 || i == steps) ? 0.5 : 1.0;
      integral += w * (best - yv) * std::exp(-0.5 * std::pow((yv - mu) / s, 2)) / (s * std::sqrt(2 * 3.14159265358979323846));
    }
    integral *= h;
    CHECK(ei(mu, s, best).value == Approx(integral).epsilon(1e-7));
  }
  // Zero sd: the improvement itself.
  CHECK(ei(-1.0, 0.0, 0.5).value == Approx(1.5));
  CHECK(ei(1.0, 0.0, 0.5).value == 0.0);
  // xi shifts the incumbent.
  CHECK(ExpectedImprovement{0.2}(0.3, 0.5, 0.0).value == Approx(ei(0.3, 0.5, -0.2).value).epsilon(1e-14));
  // Partial derivatives against finite differences.
  const double h = 1e-6;
  const auto a = ei(0.3, 0.7, 0.1);
  CHECK(a.d_mean == Approx((ei(0.3 + h, 0.7, 0.1).value - ei(0.3 - h, 0.7, 0.1).value) / (2 * h)).epsilon(1e-7));
  CHECK(a.d_sd == Approx((ei(0.3, 0.7 + h, 0.1).value - ei(0.3, 0.7 - h, 0.1).value) / (2 * h)).epsilon(1e-7));
  // UCB: -(mu - sqrt(beta) s).
  CHECK(UpperConfidenceBound{4.0}(1.0, 0.5, 0.0).value == Approx(0.0).margin(1e-15));
}

TEST_CASE("projected L-BFGS finds a bound-constrained minimum", "[optimize][bayesian]") {
  // f = (x0 - 2)^2 + 10 (x1 - 0.3)^2 + x0 x1 over [0, 1]^2: x0 sits at its upper bound 1, then x1 = 0.25.
  auto f = [](const Eigen::VectorXd& x, Eigen::VectorXd& g) {
    g.resize(2);
    g << 2 * (x(0) - 2) + x(1), 20 * (x(1) - 0.3) + x(0);
    return (x(0) - 2) * (x(0) - 2) + 10 * (x(1) - 0.3) * (x(1) - 0.3) + x(0) * x(1);
  };
  Eigen::VectorXd x0(2);
  x0 << 0.1, 0.9;
  const auto r = optimize::detail::minimize_box(f, x0, Eigen::VectorXd::Zero(2), Eigen::VectorXd::Ones(2), 100, 1e-10, 0);
  CHECK(r.x(0) == Approx(1.0));
  CHECK(r.x(1) == Approx(0.25).epsilon(1e-6));
}

TEST_CASE("search space and params validation name the key", "[optimize][bayesian]") {
  SearchSpace s = mixed_space();
  CHECK_NOTHROW(s.validate());
  s.parameters[1].high = 0;
  CHECK_THROWS_WITH(s.validate(), Contains("space.parameters[1].high"));
  s = mixed_space();
  s.parameters[2].low = 0;
  CHECK_THROWS_WITH(s.validate(), Contains("space.parameters[2].low"));
  s = mixed_space();
  s.parameters[1].low = 1.5;
  CHECK_THROWS_AS(s.validate(), ConfigError);
  s = mixed_space();
  s.parameters[3].choices.clear();
  CHECK_THROWS_WITH(s.validate(), Contains("space.parameters[3].choices"));
  s = mixed_space();
  s.parameters[3].name = "x";
  CHECK_THROWS_WITH(s.validate(), Contains("space.parameters[3].name"));
  BayesianParams p;
  p.acquisition = "probability_of_improvement";
  CHECK_THROWS_WITH(p.validate(), Contains("bayesian.acquisition"));
  p = {};
  p.initial_points = 0;
  CHECK_THROWS_AS(BayesianOptimizer(mixed_space(), p), ConfigError);

  // JSON round trip of the space.
  const nlohmann::json j = mixed_space();
  const SearchSpace back = j.get<SearchSpace>();
  CHECK(nlohmann::json(back) == j);
  CHECK(j["parameters"][3]["kind"] == "categorical");
}

TEST_CASE("integer and categorical parameters", "[optimize][bayesian]") {
  BayesianParams params;
  params.initial_points = 6;
  params.n_iterations = 14;
  params.seed = 7;
  BayesianOptimizer bo(mixed_space(), params);
  CHECK(bo.encoded_dim() == 6);  // x, n, lr, and a one-hot block of 3

  SECTION("encode and decode") {
    const nlohmann::json p = {{"x", 0.5}, {"n", 4}, {"lr", 1e-3}, {"style", "socratic"}};
    const Eigen::VectorXd u = bo.encode(p);
    CHECK(u(0) == Approx(2.5 / 5.0));
    CHECK(u(1) == Approx(3.5 / 12.0));  // bin centre of 4 among the 12 bins of [0.5, 12.5]
    CHECK(u(2) == Approx(1.0 / 3.0));   // log10: -3 in [-4, -1]
    CHECK(u.tail(3) == Eigen::Vector3d(0, 0, 1));
    const nlohmann::json back = bo.decode(u);
    CHECK(back["n"].is_number_integer());
    CHECK(back["n"] == 4);
    CHECK(back["style"] == "socratic");
    CHECK(back["x"].get<double>() == Approx(0.5));
    CHECK(back["lr"].get<double>() == Approx(1e-3));
    Eigen::VectorXd v = u;
    v(1) = 0.0;
    v(3) = 0.9;  // argmax of the block moves to "terse"
    v(5) = 0.2;
    CHECK(bo.decode(v)["n"] == 1);
    CHECK(bo.decode(v)["style"] == "terse");
    v(1) = 1.0;
    CHECK(bo.decode(v)["n"] == 12);
  }
  SECTION("tell rejects bad points, naming the field") {
    const nlohmann::json good = {{"x", 0.5}, {"n", 4}, {"lr", 1e-3}, {"style", "terse"}};
    auto with = [&](const std::string& k, const nlohmann::json& v) {
      nlohmann::json p = good;
      p[k] = v;
      return p;
    };
    CHECK_THROWS_WITH(bo.tell(with("x", 3.5), 1.0), Contains("params.x") && Contains("outside"));
    CHECK_THROWS_WITH(bo.tell(with("n", 4.5), 1.0), Contains("params.n") && Contains("integer"));
    CHECK_THROWS_WITH(bo.tell(with("style", "loud"), 1.0), Contains("params.style"));
    CHECK_THROWS_WITH(bo.tell(with("style", 2), 1.0), Contains("params.style"));
    CHECK_THROWS_WITH(bo.tell(with("lr", "fast"), 1.0), Contains("params.lr"));
    CHECK_THROWS_WITH(bo.tell(with("extra", 1), 1.0), Contains("params.extra"));
    nlohmann::json missing = good;
    missing.erase("n");
    CHECK_THROWS_WITH(bo.tell(missing, 1.0), Contains("params.n") && Contains("missing"));
    CHECK_THROWS_WITH(bo.tell(good, std::nan("")), Contains("value"));
    CHECK_THROWS_AS(bo.tell(nlohmann::json::array({1, 2}), 1.0), ValidationError);
    CHECK(bo.evaluations() == 0);
    bo.tell(good, 1.0);
    CHECK(bo.evaluations() == 1);
  }
  SECTION("asked points are valid and the optimum is found") {
    std::set<std::string> styles;
    while (!bo.done()) {
      const nlohmann::json p = bo.ask();
      REQUIRE(p.size() == 4);
      CHECK(p["n"].is_number_integer());
      CHECK(p["n"].get<int>() >= 1);
      CHECK(p["n"].get<int>() <= 12);
      CHECK(p["lr"].get<double>() >= 1e-4);
      CHECK(p["lr"].get<double>() <= 1e-1);
      styles.insert(p["style"].get<std::string>());
      bo.tell(p, mixed_objective(p));
    }
    CHECK(styles.size() == 3);
    CHECK(bo.evaluations() == 20);
    // The optimum is 0 at x = 0.7, n = 7, lr = 10^-2.5, verbose; the design alone scores about 1 or more.
    const auto b = bo.best();
    REQUIRE(b);
    CHECK(b->first["style"] == "verbose");
    CHECK(b->second < 0.3);
  }
}

TEST_CASE("small discrete spaces: no point is asked twice while others remain", "[optimize][bayesian]") {
  SearchSpace s;
  s.parameters.push_back({"a", Parameter::Kind::integer, 0, 2, false, {}});
  s.parameters.push_back({"b", Parameter::Kind::categorical, 0, 1, false, {"p", "q"}});
  BayesianParams params;
  params.initial_points = 2;
  params.n_iterations = 4;
  BayesianOptimizer bo(s, params);
  std::set<std::string> seen;
  for (int i = 0; i < 6; ++i) {
    const nlohmann::json p = bo.ask();
    if (i >= 2) CHECK(seen.insert(p.dump()).second);  // the design may repeat itself; the model never does
    else seen.insert(p.dump());
    bo.tell(p, static_cast<double>(p["a"].get<int>()) + (p["b"] == "q" ? 0.5 : 0.0));
  }
  CHECK(bo.best()->second == 0.0);
}

TEST_CASE("optimize() reaches the minimum of a smooth function; maximise flips the sign", "[optimize][bayesian]") {
  SearchSpace s;
  s.parameters.push_back({"a", Parameter::Kind::continuous, -1, 1, false, {}});
  s.parameters.push_back({"b", Parameter::Kind::continuous, -1, 1, false, {}});
  auto bowl = [](const nlohmann::json& p) {
    const double a = p["a"].get<double>() - 0.31, b = p["b"].get<double>() + 0.42;
    return a * a + 3 * b * b;
  };
  BayesianParams params;
  params.initial_points = 8;
  params.n_iterations = 17;
  BayesianOptimizer bo(s, params);
  const nlohmann::json best = bo.optimize(bowl);
  CHECK(bo.done());
  CHECK(bo.evaluations() == 25);
  CHECK(bowl(best) < 1e-3);  // 25 random points reach about 1e-2; the GP model should do far better

  params.minimize = false;
  BayesianOptimizer up(s, params);
  const nlohmann::json top = up.optimize([&](const nlohmann::json& p) { return -bowl(p); });
  CHECK(bowl(top) < 1e-3);
  CHECK(up.best()->second == Approx(-bowl(top)));

  params.acquisition = "upper_confidence_bound";
  params.minimize = true;
  BayesianOptimizer ucb(s, params);
  CHECK(bowl(ucb.optimize(bowl)) < 1e-2);
}

TEST_CASE("ask/tell state survives a JSON round trip", "[optimize][bayesian]") {
  BayesianParams params;
  params.initial_points = 5;
  params.n_iterations = 10;
  params.seed = 99;
  BayesianOptimizer a(mixed_space(), params);
  for (int i = 0; i < 7; ++i) {
    const nlohmann::json p = a.ask();
    a.tell(p, mixed_objective(p));
  }
  const nlohmann::json pending = a.ask();  // asked, not yet told: must survive the restart
  const std::string saved = a.to_json().dump();
  BayesianOptimizer b = BayesianOptimizer::from_json(nlohmann::json::parse(saved));
  CHECK(b.to_json().dump() == saved);
  CHECK(b.evaluations() == 7);
  CHECK(b.pending() == 1);
  CHECK(b.best()->second == a.best()->second);
  // The same next points, and telling the pending point clears it on both.
  for (int i = 0; i < 5; ++i) {
    const nlohmann::json pa = a.ask(), pb = b.ask();
    CHECK(pa == pb);
    a.tell(pa, mixed_objective(pa));
    b.tell(pb, mixed_objective(pb));
  }
  a.tell(pending, mixed_objective(pending));
  b.tell(pending, mixed_objective(pending));
  CHECK(a.pending() == 0);
  CHECK(b.pending() == 0);
  CHECK(a.to_json() == b.to_json());

  SECTION("a round trip inside the initial design continues the design") {
    BayesianOptimizer c(mixed_space(), params);
    c.tell(c.ask(), 1.0);
    BayesianOptimizer d = BayesianOptimizer::from_json(c.to_json());
    CHECK(c.ask() == d.ask());
  }
  SECTION("corrupt state is refused") {
    nlohmann::json bad = a.to_json();
    bad["format"] = "something else";
    CHECK_THROWS_AS(BayesianOptimizer::from_json(bad), ConfigError);
    bad = a.to_json();
    bad["observations"][0]["params"]["n"] = 99;
    CHECK_THROWS_WITH(BayesianOptimizer::from_json(bad), Contains("params.n"));
  }
}

TEST_CASE("determinism: the same seed gives the same run, another seed another", "[optimize][bayesian]") {
  BayesianParams params;
  params.initial_points = 4;
  params.n_iterations = 6;
  auto run = [&](std::uint64_t seed) {
    params.seed = seed;
    BayesianOptimizer bo(mixed_space(), params);
    std::vector<nlohmann::json> asked;
    while (!bo.done()) {
      asked.push_back(bo.ask());
      bo.tell(asked.back(), mixed_objective(asked.back()));
    }
    return asked;
  };
  const auto a = run(1), b = run(1), c = run(2);
  CHECK(a == b);
  CHECK(a != c);
  // Several asks before any tell spread out (constant liar), never repeating a pending point.
  params.seed = 3;
  BayesianOptimizer bo(mixed_space(), params);
  for (int i = 0; i < 4; ++i) {
    const nlohmann::json p = bo.ask();
    bo.tell(p, mixed_objective(p));
  }
  const nlohmann::json p1 = bo.ask(), p2 = bo.ask(), p3 = bo.ask();
  CHECK(p1 != p2);
  CHECK(p2 != p3);
  CHECK(p1 != p3);
  CHECK(bo.pending() == 3);
}
