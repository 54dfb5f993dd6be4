#pragma once
/// @file Gaussian-process regression for Bayesian optimisation (layer 2, header-only, no I/O, no clock,
/// no threads): the Matern 5/2 kernel with one length scale per dimension (ARD), a GP with standardised
/// targets (constant mean) and a Gaussian noise term whose hyperparameters maximise the log marginal
/// likelihood with analytic gradients, and a small bound-constrained quasi-Newton minimiser shared by the
/// hyperparameter fit and the acquisition search.
///
/// The kernel is a swappable part (limbo-style): GaussianProcess<Kernel> needs from a kernel
///   n_params(), params(), set_params(theta), lower_bounds(), upper_bounds(), random_params(rng),
///   prior_variance(), gram(A, B), a Prepared type with prepare(X), gram(prepared),
///   gram_gradient_dot(prepared, W), and cross_gradient(x, X);
/// see Matern52Ard for the meaning of each.
///
/// Example:
///     promptlearn::optimize::GaussianProcess<> gp{promptlearn::optimize::Matern52Ard(2)};
///     gp.set_data(X, y);                 // rows of X are points in [0, 1]^2
///     promptlearn::Rng rng(1);
///     gp.fit_hyperparameters(rng, 2);    // warm start + 2 random restarts
///     auto p = gp.predict(x);            // p.mean, p.variance in the units of y
#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <limits>
#include <utility>
#include <vector>

#include "promptlearn/core/rng.hpp"

namespace promptlearn::optimize {

namespace detail {

/// Uniform double in [0, 1) from the top 53 bits of one raw draw (identical on every standard library).
inline double unit_uniform(Rng& rng) { return static_cast<double>(rng.next_u64() >> 11) * 0x1.0p-53; }

/// Standard normal draw by Box-Muller on two raw uniforms (std::normal_distribution differs between
/// standard libraries; this does not).
inline double standard_normal(Rng& rng) {
  const double u1 = 1.0 - unit_uniform(rng), u2 = unit_uniform(rng);  // u1 in (0, 1]
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

/// Result of minimize_box.
struct BoxResult {
  Eigen::VectorXd x;
  double value = 0;
  int iterations = 0;
  int evaluations = 0;
};

/// Minimises f over the box [lo, hi] by projected L-BFGS (a light L-BFGS-B): the two-loop recursion
/// (Nocedal 1980; Nocedal & Wright, Numerical Optimization, alg. 7.4) gives the direction on the free
/// variables (those not held at a bound by their gradient), a backtracking line search along the projected
/// path accepts on Armijo's condition f(P(x + t d)) <= f(x) + 1e-4 g'(P(x + t d) - x) (Bertsekas 1982
/// projected-gradient rule). Stops when the projected gradient's largest entry is below `gtol`, the relative
/// decrease is below `ftol`, or after `max_iter` iterations.
/// `f(x, grad)` returns f(x) and writes its gradient into `grad` (already sized). Deterministic.
template <class F>
BoxResult minimize_box(F&& f, Eigen::VectorXd x0, const Eigen::VectorXd& lo, const Eigen::VectorXd& hi,
                       int max_iter = 100, double gtol = 1e-6, double ftol = 1e-10, int memory = 7) {
  const Eigen::Index n = x0.size();
  auto project = [&](const Eigen::VectorXd& v) -> Eigen::VectorXd { return v.cwiseMax(lo).cwiseMin(hi); };
  BoxResult r;
  r.x = project(x0);
  Eigen::VectorXd g(n), gn(n), d(n), xn(n), s(n), y(n), q(n);
  double fx = f(r.x, g);
  r.evaluations = 1;
  std::deque<std::pair<Eigen::VectorXd, Eigen::VectorXd>> mem;  // (s, y) pairs, newest last
  std::vector<double> alpha(static_cast<std::size_t>(memory));
  if (!std::isfinite(fx)) {
    r.value = fx;
    return r;
  }
  for (int it = 0; it < max_iter; ++it) {
    r.iterations = it + 1;
    if ((r.x - project(r.x - g)).template lpNorm<Eigen::Infinity>() < gtol) break;
    // Free variables: not held at a bound by the sign of their gradient.
    Eigen::VectorXd free = Eigen::VectorXd::Ones(n);
    for (Eigen::Index i = 0; i < n; ++i)
      if ((r.x(i) <= lo(i) && g(i) > 0) || (r.x(i) >= hi(i) && g(i) < 0)) free(i) = 0;
    q = g.cwiseProduct(free);
    // Two-loop recursion on the free subspace.
    for (std::size_t k = mem.size(); k-- > 0;) {
      const auto& [sk, yk] = mem[k];
      alpha[k] = sk.dot(q) / yk.dot(sk);
      q -= alpha[k] * yk;
    }
    if (!mem.empty()) q *= mem.back().first.dot(mem.back().second) / mem.back().second.squaredNorm();
    for (std::size_t k = 0; k < mem.size(); ++k) {
      const auto& [sk, yk] = mem[k];
      const double beta = yk.dot(q) / yk.dot(sk);
      q += (alpha[k] - beta) * sk;
    }
    d = -q.cwiseProduct(free);
    double slope = d.dot(g);
    if (!(slope < 0)) {  // not a descent direction: fall back to steepest descent
      mem.clear();
      d = -g.cwiseProduct(free);
      slope = d.dot(g);
      if (!(slope < 0)) break;
    }
    double t = 1.0;
    if (mem.empty()) t = std::min(1.0, 0.1 / std::max(d.template lpNorm<Eigen::Infinity>(), 1e-300));
    bool accepted = false;
    double fn = fx;
    for (int ls = 0; ls < 40; ++ls) {
      xn = project(r.x + t * d);
      fn = f(xn, gn);
      ++r.evaluations;
      if (std::isfinite(fn) && fn <= fx + 1e-4 * g.dot(xn - r.x)) {
        accepted = true;
        break;
      }
      t *= 0.5;
    }
    if (!accepted) {
      if (mem.empty()) break;
      mem.clear();  // retry once more along the steepest descent
      continue;
    }
    s = xn - r.x;
    y = gn - g;
    const double decrease = fx - fn;
    r.x = xn;
    g = gn;
    fx = fn;
    if (s.dot(y) > 1e-12 * y.squaredNorm() && s.dot(y) > 0) {
      mem.emplace_back(s, y);
      if (static_cast<int>(mem.size()) > memory) mem.pop_front();
    }
    if (decrease <= ftol * std::max(1.0, std::abs(fx))) break;
  }
  r.value = fx;
  return r;
}

}  // namespace detail

/// Matern 5/2 kernel with automatic relevance determination (one length scale per input dimension):
///   k(a, b) = s2 (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r),  r^2 = sum_i (a_i - b_i)^2 / l_i^2
/// (Rasmussen & Williams 2006, eq. 4.17; Snoek, Larochelle & Adams 2012 use it for Bayesian optimisation).
/// Parameters theta = [log l_1, ..., log l_d, log s2]. Derivatives used:
///   dk/dlog l_i = s2 (5/3) (1 + sqrt5 r) exp(-sqrt5 r) (a_i - b_i)^2 / l_i^2,   dk/dlog s2 = k,
///   dk/da_i     = -s2 (5/3) (1 + sqrt5 r) exp(-sqrt5 r) (a_i - b_i) / l_i^2.
/// Default bounds suit inputs scaled to [0, 1]: l in [0.01, 20], s2 in [0.01, 100] (targets standardised).
/// Thread-safety: const members may be called concurrently, except that calls given the same Prepared
/// update its cache (give each thread its own Prepared).
class Matern52Ard {
 public:
  /// A kernel on `dim` inputs with every length scale 0.5 and variance 1.
  explicit Matern52Ard(Eigen::Index dim = 1) : theta_(dim + 1), dim_(dim) {
    theta_.head(dim).setConstant(std::log(0.5));
    theta_(dim) = 0.0;
    inv_l_ = (-theta_.head(dim)).array().exp().matrix();
  }
  Eigen::Index dim() const noexcept { return dim_; }
  Eigen::Index n_params() const noexcept { return dim_ + 1; }
  /// [log l_1..log l_d, log s2].
  const Eigen::VectorXd& params() const noexcept { return theta_; }
  void set_params(const Eigen::VectorXd& theta) {
    theta_ = theta;
    inv_l_ = (-theta_.head(dim_)).array().exp().matrix();
  }
  Eigen::VectorXd lower_bounds() const {
    Eigen::VectorXd b(n_params());
    b.head(dim_).setConstant(std::log(0.01));
    b(dim_) = std::log(0.01);
    return b;
  }
  Eigen::VectorXd upper_bounds() const {
    Eigen::VectorXd b(n_params());
    b.head(dim_).setConstant(std::log(20.0));
    b(dim_) = std::log(100.0);
    return b;
  }
  /// A restart point: log length scales uniform in [log 0.05, log 2], log s2 uniform in [log 0.3, log 3].
  Eigen::VectorXd random_params(Rng& rng) const {
    Eigen::VectorXd t(n_params());
    for (Eigen::Index i = 0; i < dim_; ++i)
      t(i) = std::log(0.05) + detail::unit_uniform(rng) * (std::log(2.0) - std::log(0.05));
    t(dim_) = std::log(0.3) + detail::unit_uniform(rng) * (std::log(3.0) - std::log(0.3));
    return t;
  }
  /// k(x, x) = s2.
  double prior_variance() const { return std::exp(theta_(dim_)); }

  /// k(a, b) for two points.
  double operator()(const Eigen::Ref<const Eigen::VectorXd>& a, const Eigen::Ref<const Eigen::VectorXd>& b) const {
    const double r = std::sqrt((a - b).cwiseProduct(inv_l_).squaredNorm());
    return prior_variance() * (1 + kSqrt5 * r + 5.0 / 3.0 * r * r) * std::exp(-kSqrt5 * r);
  }

  /// The matrix k(A_i, B_j) over the rows of A and B.
  Eigen::MatrixXd gram(const Eigen::Ref<const Eigen::MatrixXd>& A, const Eigen::Ref<const Eigen::MatrixXd>& B) const {
    const Eigen::MatrixXd As = A * inv_l_.asDiagonal(), Bs = B * inv_l_.asDiagonal();
    const Eigen::VectorXd an = As.rowwise().squaredNorm(), bn = Bs.rowwise().squaredNorm();
    Eigen::MatrixXd K = As * Bs.transpose();
    const double s2 = prior_variance();
    for (Eigen::Index j = 0; j < K.cols(); ++j)
      for (Eigen::Index i = 0; i < K.rows(); ++i) {
        const double r = std::sqrt(std::max(0.0, an(i) + bn(j) - 2 * K(i, j)));
        K(i, j) = s2 * (1 + kSqrt5 * r + 5.0 / 3.0 * r * r) * std::exp(-kSqrt5 * r);
      }
    return K;
  }

  /// Training inputs prepared once per data set: the per-dimension squared differences
  /// (x_ai - x_bi)^2, which do not depend on theta, so each likelihood evaluation is array arithmetic.
  struct Prepared {
    std::vector<Eigen::ArrayXXd> d2;
    // The scaled distances r and exp(-sqrt5 r) at the last length scales used (the likelihood and its
    // gradient ask for the same theta in turn).
    mutable Eigen::VectorXd cached_inv_l;
    mutable Eigen::ArrayXXd r, e;
  };
  Prepared prepare(const Eigen::Ref<const Eigen::MatrixXd>& X) const {
    Prepared p;
    for (Eigen::Index i = 0; i < dim_; ++i) {
      const Eigen::ArrayXd c = X.col(i).array();
      p.d2.push_back((c.replicate(1, X.rows()) - c.transpose().replicate(X.rows(), 1)).square());
    }
    return p;
  }
  /// gram(X, X) from prepared inputs.
  Eigen::MatrixXd gram(const Prepared& p) const {
    distances(p);
    const Eigen::ArrayXXd &r = p.r, &e = p.e;
    return (prior_variance() * (1 + kSqrt5 * r + 5.0 / 3.0 * r.square()) * e).matrix();
  }
  /// g_j = sum_ab W_ab dK_ab / dtheta_j for K = gram(X, X) and a symmetric W (the trace tr(W dK/dtheta_j)
  /// that the marginal-likelihood gradient needs), without forming the derivative matrices.
  Eigen::VectorXd gram_gradient_dot(const Prepared& p, const Eigen::Ref<const Eigen::MatrixXd>& W) const {
    distances(p);
    const Eigen::ArrayXXd &r = p.r, &e = p.e;
    const double s2 = prior_variance();
    const Eigen::ArrayXXd wg = W.array() * (s2 * 5.0 / 3.0) * (1 + kSqrt5 * r) * e;
    Eigen::VectorXd g(n_params());
    for (Eigen::Index i = 0; i < dim_; ++i) g(i) = (wg * p.d2[static_cast<std::size_t>(i)]).sum() * inv_l_(i) * inv_l_(i);
    g(dim_) = (W.array() * s2 * (1 + kSqrt5 * r + 5.0 / 3.0 * r.square()) * e).sum();
    return g;
  }
  Eigen::VectorXd gram_gradient_dot(const Eigen::Ref<const Eigen::MatrixXd>& X,
                                    const Eigen::Ref<const Eigen::MatrixXd>& W) const {
    return gram_gradient_dot(prepare(X), W);
  }

  /// The n x d matrix of d k(x, X_a) / dx (row a for training point a).
  Eigen::MatrixXd cross_gradient(const Eigen::Ref<const Eigen::VectorXd>& x,
                                 const Eigen::Ref<const Eigen::MatrixXd>& X) const {
    const Eigen::VectorXd il2 = inv_l_.cwiseProduct(inv_l_);
    const double s2 = prior_variance();
    Eigen::MatrixXd J(X.rows(), dim_);
    for (Eigen::Index a = 0; a < X.rows(); ++a) {
      const Eigen::VectorXd diff = x - X.row(a).transpose();
      const double r = std::sqrt(diff.cwiseProduct(inv_l_).squaredNorm());
      J.row(a) = (-s2 * 5.0 / 3.0 * (1 + kSqrt5 * r) * std::exp(-kSqrt5 * r)) * diff.cwiseProduct(il2).transpose();
    }
    return J;
  }

 private:
  static constexpr double kSqrt5 = 2.23606797749978969641;
  // Updates p's cached r and exp(-sqrt5 r) to the current length scales.
  void distances(const Prepared& p) const {
    if (p.cached_inv_l.size() != inv_l_.size() || p.cached_inv_l != inv_l_) {
      p.r = p.d2[0] * (inv_l_(0) * inv_l_(0));
      for (Eigen::Index i = 1; i < dim_; ++i) p.r += p.d2[static_cast<std::size_t>(i)] * (inv_l_(i) * inv_l_(i));
      p.r = p.r.sqrt();
      p.e = (-kSqrt5 * p.r).exp();
      p.cached_inv_l = inv_l_;
    }
  }
  Eigen::VectorXd theta_;
  Eigen::Index dim_;
  Eigen::VectorXd inv_l_;  // 1 / l_i, derived from theta_
};

/// Gaussian-process regression y = f(x) + eps, f ~ GP(c, k), eps ~ N(0, noise), with the targets
/// standardised (c = mean of y, unit variance: the "constant mean" of the issue) unless set_data is told
/// otherwise. Hyperparameters theta = [kernel params..., log noise] maximise the log marginal likelihood
///   log p(y | X, theta) = -1/2 y' K^-1 y - 1/2 log|K| - n/2 log 2 pi,   K = k(X, X) + noise I,
/// whose gradient is 1/2 tr((alpha alpha' - K^-1) dK/dtheta_j), alpha = K^-1 y (Rasmussen & Williams 2006,
/// eqs. 2.30 and 5.9), by detail::minimize_box from the current theta (warm start) and random restarts.
/// Prediction (R&W alg. 2.1): mean k*' alpha, latent variance k(x, x) - |L^-1 k*|^2 with L the Cholesky
/// factor of K. Noise variance bounds: [1e-6, 1] in standardised units.
/// Thread-safety: none (log_marginal_likelihood updates a cache); give each thread its own GP.
template <class Kernel = Matern52Ard>
class GaussianProcess {
 public:
  /// Predictive distribution of the latent f at one point.
  struct Prediction {
    double mean = 0;
    double variance = 0;
  };

  explicit GaussianProcess(Kernel kernel = Kernel{}, double noise_variance = 1e-4)
      : kernel_(std::move(kernel)), log_noise_(std::log(noise_variance)) {}

  const Kernel& kernel() const noexcept { return kernel_; }
  Eigen::Index n() const noexcept { return X_.rows(); }
  double noise_variance() const { return std::exp(log_noise_); }
  double y_mean() const noexcept { return y_mean_; }
  double y_scale() const noexcept { return y_scale_; }
  /// The targets in model units ((y - mean) / scale).
  const Eigen::VectorXd& normalized_targets() const noexcept { return yn_; }

  /// theta = [kernel params..., log noise variance].
  Eigen::VectorXd hyperparameters() const {
    Eigen::VectorXd t(kernel_.n_params() + 1);
    t << kernel_.params(), log_noise_;
    return t;
  }
  /// Sets theta and refactorises K when data are present.
  void set_hyperparameters(const Eigen::VectorXd& theta) {
    kernel_.set_params(theta.head(kernel_.n_params()));
    log_noise_ = theta(kernel_.n_params());
    if (X_.rows() > 0) factorize();
  }
  Eigen::VectorXd lower_bounds() const {
    Eigen::VectorXd b(kernel_.n_params() + 1);
    b << kernel_.lower_bounds(), std::log(1e-6);
    return b;
  }
  Eigen::VectorXd upper_bounds() const {
    Eigen::VectorXd b(kernel_.n_params() + 1);
    b << kernel_.upper_bounds(), std::log(1.0);
    return b;
  }

  /// Stores the data (rows of X are points) and factorises K. With `standardize`, targets are centred on
  /// their mean and divided by their standard deviation (1 when it is 0 or n = 1).
  void set_data(const Eigen::Ref<const Eigen::MatrixXd>& X, const Eigen::Ref<const Eigen::VectorXd>& y,
                bool standardize = true) {
    X_ = X;
    prep_ = kernel_.prepare(X_);
    if (standardize && y.size() > 0) {
      y_mean_ = y.mean();
      const double var = y.size() > 1 ? (y.array() - y_mean_).square().sum() / static_cast<double>(y.size()) : 0.0;
      y_scale_ = var > 0 ? std::sqrt(var) : 1.0;
    } else {
      y_mean_ = 0;
      y_scale_ = 1;
    }
    yn_ = (y.array() - y_mean_) / y_scale_;
    factorize();
  }

  /// Log marginal likelihood of the standardised targets at theta, and its gradient into `grad` if given.
  /// Returns -infinity when K is not positive definite.
  double log_marginal_likelihood(const Eigen::VectorXd& theta, Eigen::VectorXd* grad = nullptr) const {
    Kernel k = kernel_;
    k.set_params(theta.head(k.n_params()));
    const double noise = std::exp(theta(k.n_params()));
    const Eigen::Index n = X_.rows();
    Eigen::MatrixXd K = k.gram(prep_);
    K.diagonal().array() += noise + kJitter;
    Eigen::LLT<Eigen::MatrixXd> llt(K);
    if (llt.info() != Eigen::Success) {
      if (grad) grad->setZero(theta.size());
      return -std::numeric_limits<double>::infinity();
    }
    const Eigen::VectorXd alpha = llt.solve(yn_);
    const double log_det = 2 * llt.matrixLLT().diagonal().array().log().sum();
    const double lml = -0.5 * yn_.dot(alpha) - 0.5 * log_det - 0.5 * static_cast<double>(n) * std::log(2 * 3.14159265358979323846);
    if (grad) {
      Eigen::MatrixXd W = llt.solve(Eigen::MatrixXd::Identity(n, n));
      W = alpha * alpha.transpose() - W;
      grad->resize(theta.size());
      grad->head(k.n_params()) = 0.5 * k.gram_gradient_dot(prep_, W);
      (*grad)(k.n_params()) = 0.5 * W.trace() * noise;
    }
    return lml;
  }

  /// Maximises the log marginal likelihood from the current hyperparameters and `restarts` random ones
  /// (kernel.random_params, log noise uniform in [log 1e-6, log 1e-2]); keeps the best and refactorises.
  /// Returns the best log marginal likelihood. Draws from `rng` only for the restarts.
  double fit_hyperparameters(Rng& rng, int restarts, int max_iter = 60) {
    const Eigen::VectorXd lo = lower_bounds(), hi = upper_bounds();
    auto neg = [&](const Eigen::VectorXd& t, Eigen::VectorXd& g) {
      const double v = log_marginal_likelihood(t, &g);
      g = -g;
      return std::isfinite(v) ? -v : std::numeric_limits<double>::infinity();
    };
    Eigen::VectorXd best = hyperparameters().cwiseMax(lo).cwiseMin(hi);
    Eigen::VectorXd g;
    double best_value = neg(best, g);
    for (int r = 0; r <= restarts; ++r) {
      Eigen::VectorXd start = best;
      if (r > 0) {
        start.head(kernel_.n_params()) = kernel_.random_params(rng);
        start(kernel_.n_params()) = std::log(1e-6) + detail::unit_uniform(rng) * (std::log(1e-2) - std::log(1e-6));
      }
      const detail::BoxResult res = detail::minimize_box(neg, start, lo, hi, max_iter, 1e-5, 1e-9);
      if (res.value < best_value) {
        best_value = res.value;
        best = res.x;
      }
    }
    set_hyperparameters(best);
    return -best_value;
  }

  /// Posterior of the latent f at x, in the units of y.
  Prediction predict(const Eigen::Ref<const Eigen::VectorXd>& x) const {
    double mu = 0, var = 0;
    predict_normalized(x, mu, var, nullptr, nullptr);
    return {y_mean_ + y_scale_ * mu, y_scale_ * y_scale_ * var};
  }

  /// Posterior mean and variance in standardised units, with their gradients in x when the pointers are
  /// not null: d mean = J' alpha, d var = -2 J' K^-1 k*, J = d k(x, X) / dx.
  void predict_normalized(const Eigen::Ref<const Eigen::VectorXd>& x, double& mean, double& variance,
                          Eigen::VectorXd* d_mean, Eigen::VectorXd* d_variance) const {
    const Eigen::VectorXd ks = kernel_.gram(x.transpose(), X_).transpose();
    mean = ks.dot(alpha_);
    const Eigen::VectorXd v = llt_.matrixL().solve(ks);
    variance = std::max(kernel_.prior_variance() - v.squaredNorm(), 0.0);
    if (d_mean || d_variance) {
      const Eigen::MatrixXd J = kernel_.cross_gradient(x, X_);
      if (d_mean) *d_mean = J.transpose() * alpha_;
      if (d_variance) *d_variance = -2.0 * (J.transpose() * llt_.matrixU().solve(v));
    }
  }

  /// Posterior means and variances (standardised units) at the rows of C, batched.
  void predict_normalized_batch(const Eigen::Ref<const Eigen::MatrixXd>& C, Eigen::VectorXd& mean,
                                Eigen::VectorXd& variance) const {
    const Eigen::MatrixXd Kc = kernel_.gram(X_, C);  // n x m
    mean = Kc.transpose() * alpha_;
    const Eigen::MatrixXd V = llt_.matrixL().solve(Kc);
    variance = (kernel_.prior_variance() - V.colwise().squaredNorm().transpose().array()).max(0.0).matrix();
  }

 private:
  static constexpr double kJitter = 1e-10;
  void factorize() {
    Eigen::MatrixXd K = kernel_.gram(prep_);
    double jitter = kJitter;
    K.diagonal().array() += std::exp(log_noise_) + jitter;
    llt_.compute(K);
    while (llt_.info() != Eigen::Success && jitter < 1.0) {  // rescue a numerically singular K
      K.diagonal().array() += 9 * jitter;
      jitter *= 10;
      llt_.compute(K);
    }
    alpha_ = llt_.solve(yn_);
  }

  Kernel kernel_;
  double log_noise_;
  Eigen::MatrixXd X_;
  typename Kernel::Prepared prep_;
  Eigen::VectorXd yn_, alpha_;
  double y_mean_ = 0, y_scale_ = 1;
  Eigen::LLT<Eigen::MatrixXd> llt_;
};

}  // namespace promptlearn::optimize
