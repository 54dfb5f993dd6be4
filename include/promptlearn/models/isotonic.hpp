#pragma once
/// @file
/// Isotonic (monotone non-decreasing) regression by pool-adjacent-violators (layer 2, header-only, no I/O).
///
/// Given points (x_i, y_i) with weights w_i, isotonic regression finds the non-decreasing step function f
/// minimising sum_i w_i (y_i - f(x_i))^2 (Barlow, Bartholomew, Bremner & Brunk 1972; Ayer et al. 1955).
/// Pool-adjacent-violators solves it in O(n) after sorting: walk the points in order of x, keep a stack of
/// blocks (weighted mean, weight), and while the last block's mean is greater than the one before it,
/// merge the two (their mean becomes the weighted mean). Points with equal x are first merged into one
/// (weighted mean of y, summed weight), as scikit-learn's IsotonicRegression does.
///
/// Prediction follows scikit-learn's IsotonicRegression(out_of_bounds="clip"): linear interpolation
/// between the fitted points (x, f(x)), with x clipped to [min x, max x] first. Used for probability
/// calibration (Zadrozny & Elkan 2002), see models/forest.hpp.
///
///     promptlearn::models::IsotonicRegression iso;
///     iso.fit(scores, outcomes);           // outcomes 0/1
///     double p = iso.predict(0.73);         // calibrated probability
#include <Eigen/Core>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "promptlearn/core/error.hpp"

namespace promptlearn::models {

/// The weighted least-squares non-decreasing fit of the sequence y (in the given order) with weights w:
/// pool-adjacent-violators. Returns the fitted value of each element.
/// @throws ValidationError when the sizes differ, a value is not finite or a weight is not positive.
///
///     pool_adjacent_violators({1, 3, 2}, {1, 1, 1})  // {1, 2.5, 2.5}
inline Eigen::VectorXd pool_adjacent_violators(const Eigen::Ref<const Eigen::VectorXd>& y,
                                               const Eigen::Ref<const Eigen::VectorXd>& w) {
  if (w.size() != y.size()) throw ValidationError("w", fmt::format("has {} weights for {} values", w.size(), y.size()));
  for (Eigen::Index i = 0; i < y.size(); ++i) {
    if (!std::isfinite(y(i))) throw ValidationError(fmt::format("y[{}]", i), fmt::format("{} is not a finite number", y(i)));
    if (!(w(i) > 0) || !std::isfinite(w(i)))
      throw ValidationError(fmt::format("w[{}]", i), fmt::format("{} is not a positive finite weight", w(i)));
  }
  // Blocks on a stack: weighted mean, total weight, first index.
  std::vector<double> mean, weight;
  std::vector<Eigen::Index> start;
  for (Eigen::Index i = 0; i < y.size(); ++i) {
    mean.push_back(y(i));
    weight.push_back(w(i));
    start.push_back(i);
    while (mean.size() > 1 && mean[mean.size() - 2] > mean.back()) {
      const std::size_t b = mean.size() - 1;
      const double wt = weight[b - 1] + weight[b];
      mean[b - 1] = (weight[b - 1] * mean[b - 1] + weight[b] * mean[b]) / wt;
      weight[b - 1] = wt;
      mean.pop_back();
      weight.pop_back();
      start.pop_back();
    }
  }
  Eigen::VectorXd out(y.size());
  for (std::size_t b = 0; b < mean.size(); ++b) {
    const Eigen::Index end = b + 1 < mean.size() ? start[b + 1] : y.size();
    for (Eigen::Index i = start[b]; i < end; ++i) out(i) = mean[b];
  }
  return out;
}

/// Isotonic regression y ~ f(x), f non-decreasing, predicting by linear interpolation between the fitted
/// points and clipping x to the fitted range (scikit-learn's IsotonicRegression(out_of_bounds="clip")).
/// Thread-safety: const members may be called concurrently; fit and from_json need exclusive access.
class IsotonicRegression {
 public:
  /// Fits with unit weights. @throws ValidationError as the weighted overload.
  void fit(const Eigen::Ref<const Eigen::VectorXd>& x, const Eigen::Ref<const Eigen::VectorXd>& y) {
    fit(x, y, Eigen::VectorXd::Ones(x.size()));
  }

  /// Fits f to the points (x_i, y_i) with weights w_i.
  /// @throws ValidationError naming the argument (and index) when x is empty, the sizes differ, a value
  ///         is not finite or a weight is not positive.
  void fit(const Eigen::Ref<const Eigen::VectorXd>& x, const Eigen::Ref<const Eigen::VectorXd>& y,
           const Eigen::Ref<const Eigen::VectorXd>& w) {
    const Eigen::Index n = x.size();
    if (n < 1) throw ValidationError("x", "has no values");
    if (y.size() != n) throw ValidationError("y", fmt::format("has {} values for {} values of x", y.size(), n));
    if (w.size() != n) throw ValidationError("w", fmt::format("has {} weights for {} values of x", w.size(), n));
    for (Eigen::Index i = 0; i < n; ++i) {
      if (!std::isfinite(x(i))) throw ValidationError(fmt::format("x[{}]", i), fmt::format("{} is not a finite number", x(i)));
      if (!std::isfinite(y(i))) throw ValidationError(fmt::format("y[{}]", i), fmt::format("{} is not a finite number", y(i)));
      if (!(w(i) > 0) || !std::isfinite(w(i)))
        throw ValidationError(fmt::format("w[{}]", i), fmt::format("{} is not a positive finite weight", w(i)));
    }
    std::vector<Eigen::Index> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), Eigen::Index{0});
    std::sort(order.begin(), order.end(), [&](Eigen::Index a, Eigen::Index b) { return x(a) < x(b); });
    // Merge equal x: weighted mean of y, summed weight.
    std::vector<double> ux, uy, uw;
    for (Eigen::Index i : order) {
      if (!ux.empty() && x(i) == ux.back()) {
        uy.back() += w(i) * y(i);
        uw.back() += w(i);
      } else {
        ux.push_back(x(i));
        uy.push_back(w(i) * y(i));
        uw.push_back(w(i));
      }
    }
    for (std::size_t i = 0; i < uy.size(); ++i) uy[i] /= uw[i];
    const auto m = static_cast<Eigen::Index>(ux.size());
    const Eigen::VectorXd fitted = pool_adjacent_violators(Eigen::Map<const Eigen::VectorXd>(uy.data(), m),
                                                           Eigen::Map<const Eigen::VectorXd>(uw.data(), m));
    // Keep the first and last point of each constant run: interpolation through the dropped interior
    // points is the same line.
    x_.clear();
    y_.clear();
    for (Eigen::Index i = 0; i < m; ++i) {
      const bool same_prev = i > 0 && fitted(i) == fitted(i - 1);
      const bool same_next = i + 1 < m && fitted(i) == fitted(i + 1);
      if (same_prev && same_next) continue;
      x_.push_back(ux[static_cast<std::size_t>(i)]);
      y_.push_back(fitted(i));
    }
  }

  /// True once fit (or from_json) has run.
  bool fitted() const noexcept { return !x_.empty(); }

  /// f(x): linear interpolation between the fitted points, x clipped to [min x, max x].
  /// @throws Error when not fitted.
  double predict(double x) const {
    if (x_.empty()) throw Error("IsotonicRegression::predict: the model is not fitted");
    if (!(x > x_.front())) return y_.front();  // also NaN -> the lowest value
    if (x >= x_.back()) return y_.back();
    const auto hi = static_cast<std::size_t>(std::upper_bound(x_.begin(), x_.end(), x) - x_.begin());
    const std::size_t lo = hi - 1;
    const double t = (x - x_[lo]) / (x_[hi] - x_[lo]);
    return y_[lo] + t * (y_[hi] - y_[lo]);
  }

  /// f at each entry of x. @throws Error when not fitted.
  Eigen::VectorXd predict(const Eigen::Ref<const Eigen::VectorXd>& x) const {
    Eigen::VectorXd out(x.size());
    for (Eigen::Index i = 0; i < x.size(); ++i) out(i) = predict(x(i));
    return out;
  }

  /// The interpolation knots: strictly increasing x and non-decreasing f(x).
  const std::vector<double>& knots_x() const noexcept { return x_; }
  const std::vector<double>& knots_y() const noexcept { return y_; }

  /// Full state: {"x": [...], "y": [...]}.
  nlohmann::json to_json() const { return {{"x", x_}, {"y", y_}}; }

  /// Restores a model written by to_json. `path` prefixes field names in errors.
  /// @throws ValidationError naming the field when the document is malformed (missing or non-numeric
  ///         arrays, different lengths, x not strictly increasing, y decreasing, values not finite).
  static IsotonicRegression from_json(const nlohmann::json& j, const std::string& path = "isotonic") {
    if (!j.is_object()) throw ValidationError(path, fmt::format("expected an object, got {}", j.type_name()));
    auto numbers = [&](const char* key) {
      const std::string p = path + "." + key;
      if (!j.contains(key)) throw ValidationError(p, "is missing");
      const nlohmann::json& a = j.at(key);
      if (!a.is_array()) throw ValidationError(p, fmt::format("expected an array, got {}", a.type_name()));
      std::vector<double> v;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (!a[i].is_number() || !std::isfinite(a[i].get<double>()))
          throw ValidationError(fmt::format("{}[{}]", p, i), fmt::format("{} is not a finite number", a[i].dump()));
        v.push_back(a[i].get<double>());
      }
      return v;
    };
    IsotonicRegression r;
    r.x_ = numbers("x");
    r.y_ = numbers("y");
    if (r.x_.empty()) throw ValidationError(path + ".x", "is empty");
    if (r.y_.size() != r.x_.size())
      throw ValidationError(path + ".y", fmt::format("has {} values for {} values of x", r.y_.size(), r.x_.size()));
    for (std::size_t i = 1; i < r.x_.size(); ++i) {
      if (!(r.x_[i] > r.x_[i - 1]))
        throw ValidationError(fmt::format("{}.x[{}]", path, i), fmt::format("{} is not greater than {}", r.x_[i], r.x_[i - 1]));
      if (r.y_[i] < r.y_[i - 1])
        throw ValidationError(fmt::format("{}.y[{}]", path, i), fmt::format("{} is less than {}", r.y_[i], r.y_[i - 1]));
    }
    return r;
  }

 private:
  std::vector<double> x_, y_;
};

}  // namespace promptlearn::models
