#pragma once
/// @file
/// Histogram gradient-boosted regression trees and the quality predictor built on them (layer 2,
/// header-only, no I/O, no clock, no threads).
///
/// Algorithm (Friedman 2001, "Greedy function approximation: a gradient boosting machine", Ann. Statist.
/// 29(5); histogram tricks of Ke et al. 2017, "LightGBM: a highly efficient gradient boosting decision
/// tree", NeurIPS, as in scikit-learn's HistGradientBoostingRegressor):
///  - Binning: each feature's training values are cut at up to max_bins - 1 thresholds (midpoints between
///    consecutive distinct values when there are at most max_bins of them, otherwise midpoints of the
///    k / max_bins quantiles) and stored as one uint8 code per cell (row-major). A split "code <= b" is
///    saved as the real threshold "x <= t_b", so prediction never bins.
///  - Boosting: F_0 = mean(y) (squared loss) or the alpha-quantile of y (quantile loss);
///    F_m = F_{m-1} + learning_rate * tree_m, each tree fitted to the loss gradients g_i with unit hessians.
///  - Tree growth: depth-wise (level by level) to max_depth. A node's split maximises the regularised gain
///        gain = G_L^2 / (n_L + lambda) + G_R^2 / (n_R + lambda) - G^2 / (n + lambda)
///    over all features and bin boundaries of its gradient histogram (G = sum of g, n = rows, lambda =
///    l2_regularization), subject to min_samples_leaf rows per child and gain > 0. Histogram subtraction:
///    only the smaller child's histogram is built from its rows; the larger child's is parent - smaller
///    (computed in place in the parent's buffer). Nodes at max_depth get no histogram at all.
///  - Leaf values: squared loss, the Newton step -G / (n + lambda); quantile (pinball) loss, the
///    alpha-quantile of the residuals y - F in the leaf (Friedman's quantile TreeBoost, as scikit-learn
///    does); both multiplied by learning_rate. Both make the training loss non-increasing tree by tree.
///  - Early stopping (on by default): a seeded split holds out validation_split of the rows
///    (models::train_validation_split); after each tree the validation loss is computed, growth stops when
///    it has not improved for early_stopping_patience trees, and the model keeps the trees up to the best
///    one. The seed only chooses that split (there is no row or column subsampling), so fitting is
///    deterministic given the seed.
///  - Prediction: the trees are laid out flat (16-byte nodes: threshold, feature, first child; the second
///    child follows it; leaves loop to themselves with threshold +inf) and walked branch-free, four trees
///    at a time, for exactly the model's depth.
///
/// Uncertainty (QualityPredictor): quantile-loss boosting, conformalised. Besides the squared-loss point
/// model, two quantile models are fitted at (1 - level) / 2 and (1 + level) / 2 (level 0.9 by default).
/// Boosted quantiles alone under-cover out of sample (leaf quantiles of >= 20 training rows are
/// optimistic: about 0.85 for a nominal 0.9 in our simulation), so the interval is then calibrated on the
/// held-out validation rows by conformalised quantile regression (Romano, Patterson & Candes 2019,
/// "Conformalized quantile regression", NeurIPS): with scores E_i = max(lo(x_i) - y_i, y_i - hi(x_i))
/// over the n_v held-out rows, the interval is [lo(x) - Q, hi(x) + Q], Q the ceil((n_v + 1) level)-th
/// smallest score. Those rows also chose the early-stopping iteration, so the finite-sample guarantee
/// (coverage >= level) is approximate; without early stopping there are no held-out rows and Q = 0.
/// Empirical coverage is checked in tests/models_gbm_test.cpp and reported by `promptlearn_bench gbm`.
///
///     promptlearn::models::GradientBoostedTrees gbm;            // 200 trees, lr 0.1, depth 6, seed 42
///     gbm.fit(X, y);
///     double yhat = gbm.predict_one(row_pointer);
///     promptlearn::models::QualityPredictor qp;
///     qp.fit(X, y);
///     auto q = qp.predict_quality(row_pointer);                  // q.predicted_quality, q.ci_low, q.ci_high
#include <Eigen/Core>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/stats.hpp"
#include "promptlearn/models/cross_validation.hpp"

namespace promptlearn::models {

/// The loss a GradientBoostedTrees minimises.
enum class GbmLoss {
  squared,   ///< (y - F)^2; the point prediction is the conditional mean.
  quantile,  ///< pinball loss at quantile_alpha; the prediction is the conditional alpha-quantile.
};

/// "squared" or "quantile".
inline const char* to_string(GbmLoss loss) { return loss == GbmLoss::squared ? "squared" : "quantile"; }

/// Hyper-parameters of GradientBoostedTrees; the member initialisers are the specification's defaults
/// (200 trees, learning rate 0.1, depth 6, seed 42, model_training.validation_split 0.2 and
/// early_stopping_patience 10). Thread-safety: plain value.
struct GbmParams {
  int n_trees = 200;                  ///< Boosting rounds (upper bound when early stopping); [1, 100000].
  double learning_rate = 0.1;         ///< Shrinkage of every tree; (0, 1].
  int max_depth = 6;                  ///< Depth of each tree (root = depth 0); [1, 16].
  int min_samples_leaf = 20;          ///< Rows every leaf keeps at least; >= 1.
  double l2_regularization = 0.0;     ///< lambda of the gain and the squared-loss leaf values; >= 0.
  int max_bins = 255;                 ///< Bins per feature; [2, 255].
  GbmLoss loss = GbmLoss::squared;    ///< squared or quantile.
  double quantile_alpha = 0.5;        ///< Quantile of the quantile loss; (0, 1).
  bool early_stopping = true;         ///< Hold out validation_split and stop when its loss stalls.
  double validation_split = 0.2;      ///< Held-out share for early stopping; (0, 1).
  int early_stopping_patience = 10;   ///< Trees without validation improvement before stopping; >= 1.
  std::uint64_t seed = 42;            ///< Seed of the validation split.

  /// @throws ConfigError naming the key, e.g. `gbm.max_depth: 0 is outside [1, 16]`.
  void validate() const {
    auto range = [](const char* key, double v, double lo, double hi, bool open_lo = false) {
      if (!(open_lo ? v > lo : v >= lo) || !(v <= hi) || std::isnan(v))
        throw ConfigError(fmt::format("gbm.{}", key),
                          fmt::format("{} is outside {}{}, {}]", v, open_lo ? "(" : "[", lo, hi));
    };
    range("n_trees", n_trees, 1, 100000);
    range("learning_rate", learning_rate, 0, 1, true);
    range("max_depth", max_depth, 1, 16);
    if (min_samples_leaf < 1) throw ConfigError("gbm.min_samples_leaf", fmt::format("{} is less than 1", min_samples_leaf));
    if (!(l2_regularization >= 0) || !std::isfinite(l2_regularization))
      throw ConfigError("gbm.l2_regularization", fmt::format("{} is not a finite number >= 0", l2_regularization));
    range("max_bins", max_bins, 2, 255);
    if (!(quantile_alpha > 0 && quantile_alpha < 1))
      throw ConfigError("gbm.quantile_alpha", fmt::format("{} is outside (0, 1)", quantile_alpha));
    if (!(validation_split > 0 && validation_split < 1))
      throw ConfigError("gbm.validation_split", fmt::format("{} is outside (0, 1)", validation_split));
    if (early_stopping_patience < 1)
      throw ConfigError("gbm.early_stopping_patience", fmt::format("{} is less than 1", early_stopping_patience));
  }
};

namespace detail {

/// The member `key` of object `j`, or a ValidationError naming `path.key`.
inline const nlohmann::json& gbm_field(const nlohmann::json& j, const std::string& path, const char* key) {
  if (!j.is_object()) throw ValidationError(path, fmt::format("expected an object, got {}", j.type_name()));
  const auto it = j.find(key);
  if (it == j.end()) throw ValidationError(path.empty() ? key : path + "." + key, "is missing");
  return *it;
}

inline double gbm_number(const nlohmann::json& v, const std::string& path) {
  if (!v.is_number()) throw ValidationError(path, fmt::format("expected a number, got {}", v.type_name()));
  const double d = v.get<double>();
  if (!std::isfinite(d)) throw ValidationError(path, fmt::format("{} is not a finite number", d));
  return d;
}

inline std::int64_t gbm_integer(const nlohmann::json& v, const std::string& path) {
  if (!v.is_number_integer()) throw ValidationError(path, fmt::format("expected an integer, got {}", v.dump()));
  return v.get<std::int64_t>();
}

inline std::string gbm_join(const std::string& path, const char* key) { return path.empty() ? key : path + "." + key; }

}  // namespace detail

/// JSON of the parameters (every key, loss as "squared" / "quantile").
inline void to_json(nlohmann::json& j, const GbmParams& p) {
  j = {{"n_trees", p.n_trees},
       {"learning_rate", p.learning_rate},
       {"max_depth", p.max_depth},
       {"min_samples_leaf", p.min_samples_leaf},
       {"l2_regularization", p.l2_regularization},
       {"max_bins", p.max_bins},
       {"loss", to_string(p.loss)},
       {"quantile_alpha", p.quantile_alpha},
       {"early_stopping", p.early_stopping},
       {"validation_split", p.validation_split},
       {"early_stopping_patience", p.early_stopping_patience},
       {"seed", p.seed}};
}

/// Parameters from JSON; absent keys keep their defaults.
/// @throws ValidationError naming `gbm.<key>` for an unknown key or a value of the wrong type;
///         ConfigError (from validate()) for a value out of range.
inline void from_json(const nlohmann::json& j, GbmParams& p) {
  const std::string path = "gbm";
  if (!j.is_object()) throw ValidationError(path, fmt::format("expected an object, got {}", j.type_name()));
  GbmParams out;
  for (const auto& [key, v] : j.items()) {
    const std::string at = path + "." + key;
    auto as_int = [&](int& dst) {
      const std::int64_t i = detail::gbm_integer(v, at);
      if (i < std::numeric_limits<int>::min() || i > std::numeric_limits<int>::max())
        throw ValidationError(at, fmt::format("{} does not fit an int", i));
      dst = static_cast<int>(i);
    };
    if (key == "n_trees") as_int(out.n_trees);
    else if (key == "learning_rate") out.learning_rate = detail::gbm_number(v, at);
    else if (key == "max_depth") as_int(out.max_depth);
    else if (key == "min_samples_leaf") as_int(out.min_samples_leaf);
    else if (key == "l2_regularization") out.l2_regularization = detail::gbm_number(v, at);
    else if (key == "max_bins") as_int(out.max_bins);
    else if (key == "quantile_alpha") out.quantile_alpha = detail::gbm_number(v, at);
    else if (key == "validation_split") out.validation_split = detail::gbm_number(v, at);
    else if (key == "early_stopping_patience") as_int(out.early_stopping_patience);
    else if (key == "loss") {
      if (v == "squared") out.loss = GbmLoss::squared;
      else if (v == "quantile") out.loss = GbmLoss::quantile;
      else throw ValidationError(at, fmt::format("{} is not one of \"squared\", \"quantile\"", v.dump()));
    } else if (key == "early_stopping") {
      if (!v.is_boolean()) throw ValidationError(at, fmt::format("expected a boolean, got {}", v.dump()));
      out.early_stopping = v.get<bool>();
    } else if (key == "seed") {
      if (!v.is_number_unsigned()) throw ValidationError(at, fmt::format("expected an integer >= 0, got {}", v.dump()));
      out.seed = v.get<std::uint64_t>();
    } else {
      throw ValidationError(at, "is not a parameter of gbm");
    }
  }
  out.validate();
  p = out;
}

/// One regression tree as stored in JSON: parallel arrays indexed by node, node 0 the root. An internal
/// node sends a row with x[feature] <= threshold to `left`, otherwise to `right`; a leaf has feature -1
/// and contributes `value` (learning rate already applied). `gain` is the split's gain (0 for leaves).
struct GbmTree {
  std::vector<std::int32_t> feature;
  std::vector<double> threshold;
  std::vector<std::int32_t> left;
  std::vector<std::int32_t> right;
  std::vector<double> value;
  std::vector<double> gain;

  /// Number of nodes.
  std::size_t size() const noexcept { return feature.size(); }
};

namespace detail {

/// Bin thresholds of one feature from its training values (see the file comment). Sorted, distinct.
inline std::vector<double> bin_thresholds(std::vector<double> values, int max_bins) {
  std::sort(values.begin(), values.end());
  std::vector<double> distinct;
  distinct.reserve(std::min<std::size_t>(values.size(), static_cast<std::size_t>(max_bins) + 1));
  std::size_t n_distinct = 0;
  for (std::size_t i = 0; i < values.size(); ++i)
    if (i == 0 || values[i] != values[i - 1]) {
      if (++n_distinct <= static_cast<std::size_t>(max_bins)) distinct.push_back(values[i]);
    }
  std::vector<double> t;
  if (n_distinct <= static_cast<std::size_t>(max_bins)) {
    for (std::size_t i = 1; i < distinct.size(); ++i) t.push_back(distinct[i - 1] + (distinct[i] - distinct[i - 1]) / 2);
  } else {
    const double last = static_cast<double>(values.size() - 1);
    for (int k = 1; k < max_bins; ++k) {
      const double pos = last * k / max_bins;
      const auto lo = static_cast<std::size_t>(std::floor(pos)), hi = static_cast<std::size_t>(std::ceil(pos));
      const double edge = values[lo] + (values[hi] - values[lo]) / 2;
      if (edge < values.back() && (t.empty() || edge > t.back())) t.push_back(edge);
    }
  }
  return t;
}

/// The bin code of x: the number of thresholds below x, so that code <= b exactly when x <= t[b].
inline std::uint8_t bin_code(const std::vector<double>& t, double x) {
  return static_cast<std::uint8_t>(std::lower_bound(t.begin(), t.end(), x) - t.begin());
}

/// The alpha-quantile (inverted empirical CDF: the smallest v with share(values <= v) >= alpha).
inline double quantile_of(std::vector<double>& v, double alpha) {
  const std::size_t m = v.size();
  std::size_t k = static_cast<std::size_t>(std::ceil(alpha * static_cast<double>(m)));
  k = std::clamp<std::size_t>(k, 1, m) - 1;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

/// Sum and count of the gradients in one bin.
struct HistBin {
  double g;
  double n;
};

/// Flat prediction layout (see the file comment).
struct FlatNode {
  double threshold;
  std::int32_t feature;
  std::int32_t first_child;
};

}  // namespace detail

/// Histogram gradient-boosted regression trees with squared or quantile (pinball) loss; see the file
/// comment for the algorithm. Thread-safety: const member functions may run concurrently; fit() and
/// from_json() need exclusive access.
class GradientBoostedTrees {
 public:
  /// An unfitted model with the given parameters. @throws ConfigError from GbmParams::validate().
  explicit GradientBoostedTrees(GbmParams params = {}) : params_(params) { params_.validate(); }

  /// Fits the model to rows X (n x d) and targets y (n), replacing any previous fit.
  /// @throws ValidationError naming the row and column of a non-finite value or a shape mismatch
  ///         (`X[3][1]: nan is not a finite number`); ConfigError when early stopping needs a split of
  ///         fewer than 2 rows.
  void fit(const Eigen::Ref<const Eigen::MatrixXd>& X, const Eigen::Ref<const Eigen::VectorXd>& y) {
    check_training_data(X, y);
    const Eigen::Index n = X.rows();
    Split split;
    if (params_.early_stopping) {
      if (n < 2) throw ConfigError("gbm.early_stopping", fmt::format("needs at least 2 rows to hold some out, got {}", n));
      split = train_validation_split(n, params_.validation_split, params_.seed);
    } else {
      split.train.resize(static_cast<std::size_t>(n));
      std::iota(split.train.begin(), split.train.end(), Eigen::Index{0});
    }
    Trainer(*this, X, y, split).run();
  }

  /// Prediction for one row of n_features() contiguous values. The hot path: no checks, no allocation.
  /// Precondition: the model is fitted and `row` points at n_features() values.
  double predict_one(const double* row) const noexcept { return predict_strided(row, 1); }

  /// Prediction for one row (any inner stride, e.g. `X.row(i).transpose()`, without a copy).
  /// @throws ValidationError when the row's length is not n_features() or the model is not fitted.
  double predict_one(const Eigen::Ref<const Eigen::VectorXd, 0, Eigen::InnerStride<>>& row) const {
    check_row(row.size());
    return predict_strided(row.data(), row.innerStride());
  }

  /// Predictions for every row of X. @throws ValidationError when X has the wrong number of columns.
  Eigen::VectorXd predict(const Eigen::Ref<const Eigen::MatrixXd>& X) const {
    check_row(X.cols());
    Eigen::VectorXd out(X.rows());
    for (Eigen::Index r = 0; r < X.rows(); ++r) out(r) = predict_strided(X.data() + r, X.outerStride());
    return out;
  }

  /// Each feature's share of the total split gain of the kept trees (sums to 1; all 0 when no split).
  Eigen::VectorXd feature_importance() const {
    Eigen::VectorXd imp = Eigen::VectorXd::Zero(n_features_);
    for (const GbmTree& t : trees_)
      for (std::size_t i = 0; i < t.size(); ++i)
        if (t.feature[i] >= 0) imp(t.feature[i]) += t.gain[i];
    const double total = imp.sum();
    if (total > 0) imp /= total;
    return imp;
  }

  /// Loss on the fitting rows after each grown tree (squared: mean squared error; quantile: mean
  /// pinball loss). One entry per tree grown, including trees dropped by early stopping.
  const std::vector<double>& train_loss() const noexcept { return train_loss_; }
  /// Loss on the held-out rows after each grown tree (empty without early stopping).
  const std::vector<double>& validation_loss() const noexcept { return validation_loss_; }
  /// Trees the model keeps (the best validation iteration with early stopping, else n_trees).
  int trees_used() const noexcept { return static_cast<int>(trees_.size()); }
  /// The kept trees.
  const std::vector<GbmTree>& trees() const noexcept { return trees_; }
  /// F_0, the constant every prediction starts from.
  double base_score() const noexcept { return base_score_; }
  /// Columns of the training matrix (0 before fit).
  Eigen::Index n_features() const noexcept { return n_features_; }
  /// True once fit() or from_json() has produced a model.
  bool fitted() const noexcept { return fitted_; }
  /// The parameters.
  const GbmParams& params() const noexcept { return params_; }

  /// Full state as JSON: {"format": "promptlearn.gbm", "version": 1, "params", "n_features",
  /// "base_score", "trees": [{"feature", "threshold", "left", "right", "value", "gain"}], "train_loss",
  /// "validation_loss"}. Doubles round-trip exactly.
  nlohmann::json to_json() const {
    nlohmann::json trees = nlohmann::json::array();
    for (const GbmTree& t : trees_)
      trees.push_back({{"feature", t.feature}, {"threshold", t.threshold}, {"left", t.left}, {"right", t.right},
                       {"value", t.value}, {"gain", t.gain}});
    return {{"format", "promptlearn.gbm"}, {"version", 1},        {"params", nlohmann::json(params_)},
            {"n_features", n_features_},   {"base_score", base_score_}, {"trees", std::move(trees)},
            {"train_loss", train_loss_},   {"validation_loss", validation_loss_}};
  }

  /// A model from to_json()'s output.
  /// @throws ValidationError naming the field of anything malformed (`trees[3].left[5]: ...`).
  static GradientBoostedTrees from_json(const nlohmann::json& j, const std::string& path = "") {
    using detail::gbm_field;
    using detail::gbm_join;
    const auto& format = gbm_field(j, path, "format");
    if (format != "promptlearn.gbm")
      throw ValidationError(gbm_join(path, "format"), fmt::format("{} is not \"promptlearn.gbm\"", format.dump()));
    const auto version = detail::gbm_integer(gbm_field(j, path, "version"), gbm_join(path, "version"));
    if (version != 1) throw ValidationError(gbm_join(path, "version"), fmt::format("{} is not a supported version (1)", version));
    GbmParams params;
    try {
      params = gbm_field(j, path, "params").get<GbmParams>();
    } catch (const ConfigError& e) {
      throw ValidationError(gbm_join(path, "params"), e.what());
    }
    GradientBoostedTrees m(params);
    const auto nf = detail::gbm_integer(gbm_field(j, path, "n_features"), gbm_join(path, "n_features"));
    if (nf < 1 || nf > std::numeric_limits<std::int32_t>::max())
      throw ValidationError(gbm_join(path, "n_features"), fmt::format("{} is not a positive column count", nf));
    m.n_features_ = static_cast<Eigen::Index>(nf);
    m.base_score_ = detail::gbm_number(gbm_field(j, path, "base_score"), gbm_join(path, "base_score"));
    const auto& trees = gbm_field(j, path, "trees");
    const std::string tp = gbm_join(path, "trees");
    if (!trees.is_array() || trees.empty())
      throw ValidationError(tp, "expected a non-empty array of trees");
    if (trees.size() > static_cast<std::size_t>(params.n_trees))
      throw ValidationError(tp, fmt::format("has {} trees, more than n_trees {}", trees.size(), params.n_trees));
    for (std::size_t k = 0; k < trees.size(); ++k)
      m.trees_.push_back(tree_from_json(trees[k], fmt::format("{}[{}]", tp, k), m.n_features_, params.max_depth));
    for (auto [key, dst] : {std::pair{"train_loss", &m.train_loss_}, std::pair{"validation_loss", &m.validation_loss_}}) {
      const auto& arr = gbm_field(j, path, key);
      if (!arr.is_array()) throw ValidationError(gbm_join(path, key), "expected an array");
      for (std::size_t i = 0; i < arr.size(); ++i) dst->push_back(detail::gbm_number(arr[i], fmt::format("{}[{}]", gbm_join(path, key), i)));
    }
    m.compile();
    m.fitted_ = true;
    return m;
  }

 private:
  // ---- prediction ------------------------------------------------------------------------------------
  double predict_strided(const double* x, Eigen::Index stride) const noexcept {
    const detail::FlatNode* nodes = flat_.data();
    const std::int32_t* roots = roots_.data();
    const std::size_t T = roots_.size();
    double sum = base_score_;
    std::size_t t = 0;
    auto step = [&](std::int32_t i) {
      const detail::FlatNode& nd = nodes[i];
      return nd.first_child + static_cast<std::int32_t>(x[nd.feature * stride] > nd.threshold);
    };
    for (; t + 4 <= T; t += 4) {
      std::int32_t a = roots[t], b = roots[t + 1], c = roots[t + 2], d = roots[t + 3];
      for (int k = 0; k < depth_; ++k) {
        a = step(a);
        b = step(b);
        c = step(c);
        d = step(d);
      }
      sum += (leaf_value_[static_cast<std::size_t>(a)] + leaf_value_[static_cast<std::size_t>(b)]) +
             (leaf_value_[static_cast<std::size_t>(c)] + leaf_value_[static_cast<std::size_t>(d)]);
    }
    for (; t < T; ++t) {
      std::int32_t a = roots[t];
      for (int k = 0; k < depth_; ++k) a = step(a);
      sum += leaf_value_[static_cast<std::size_t>(a)];
    }
    return sum;
  }

  void check_row(Eigen::Index cols) const {
    if (!fitted_) throw ValidationError("gbm", "the model is not fitted");
    if (cols != n_features_)
      throw ValidationError("X", fmt::format("has {} columns, the model was trained on {}", cols, n_features_));
  }

  /// Builds the flat prediction layout from trees_ (breadth-first, children adjacent, leaves self-loops).
  void compile() {
    flat_.clear();
    leaf_value_.clear();
    roots_.clear();
    depth_ = 0;
    for (const GbmTree& t : trees_) {
      const auto base = static_cast<std::int32_t>(flat_.size());
      roots_.push_back(base);
      // queue of (source node, depth); flat index = base + position in the queue.
      std::vector<std::pair<std::int32_t, int>> queue{{0, 0}};
      for (std::size_t q = 0; q < queue.size(); ++q) {
        const auto [src, depth] = queue[q];
        const auto here = static_cast<std::int32_t>(base + static_cast<std::int32_t>(q));
        const auto s = static_cast<std::size_t>(src);
        if (t.feature[s] < 0) {
          flat_.push_back({std::numeric_limits<double>::infinity(), 0, here});
          leaf_value_.push_back(t.value[s]);
        } else {
          flat_.push_back({t.threshold[s], t.feature[s], static_cast<std::int32_t>(base + static_cast<std::int32_t>(queue.size()))});
          leaf_value_.push_back(0.0);
          queue.push_back({t.left[s], depth + 1});
          queue.push_back({t.right[s], depth + 1});
          depth_ = std::max(depth_, depth + 1);
        }
      }
    }
  }

  static GbmTree tree_from_json(const nlohmann::json& j, const std::string& path, Eigen::Index n_features, int max_depth) {
    GbmTree t;
    auto ints = [&](const char* key, std::vector<std::int32_t>& dst) {
      const auto& a = detail::gbm_field(j, path, key);
      const std::string at = path + "." + key;
      if (!a.is_array()) throw ValidationError(at, "expected an array");
      for (std::size_t i = 0; i < a.size(); ++i) {
        const auto v = detail::gbm_integer(a[i], fmt::format("{}[{}]", at, i));
        if (v < -1 || v > std::numeric_limits<std::int32_t>::max())
          throw ValidationError(fmt::format("{}[{}]", at, i), fmt::format("{} is out of range", v));
        dst.push_back(static_cast<std::int32_t>(v));
      }
    };
    auto reals = [&](const char* key, std::vector<double>& dst) {
      const auto& a = detail::gbm_field(j, path, key);
      const std::string at = path + "." + key;
      if (!a.is_array()) throw ValidationError(at, "expected an array");
      for (std::size_t i = 0; i < a.size(); ++i) dst.push_back(detail::gbm_number(a[i], fmt::format("{}[{}]", at, i)));
    };
    ints("feature", t.feature);
    reals("threshold", t.threshold);
    ints("left", t.left);
    ints("right", t.right);
    reals("value", t.value);
    reals("gain", t.gain);
    const std::size_t m = t.feature.size();
    if (m == 0) throw ValidationError(path + ".feature", "a tree needs at least one node");
    for (auto [key, size] : {std::pair{"threshold", t.threshold.size()}, std::pair{"left", t.left.size()},
                             std::pair{"right", t.right.size()}, std::pair{"value", t.value.size()},
                             std::pair{"gain", t.gain.size()}})
      if (size != m) throw ValidationError(path + "." + key, fmt::format("has {} entries, feature has {}", size, m));
    // Every node but the root has exactly one parent, children come after their parent (no cycles),
    // and no leaf is deeper than max_depth.
    std::vector<int> depth(m, -1);
    depth[0] = 0;
    for (std::size_t i = 0; i < m; ++i) {
      if (depth[i] < 0) throw ValidationError(fmt::format("{}.feature[{}]", path, i), "node is not reachable from the root");
      if (t.feature[i] >= n_features)
        throw ValidationError(fmt::format("{}.feature[{}]", path, i), fmt::format("{} is not a column of {}", t.feature[i], n_features));
      if (t.feature[i] < 0) continue;
      for (auto [key, child] : {std::pair{"left", t.left[i]}, std::pair{"right", t.right[i]}}) {
        const std::string at = fmt::format("{}.{}[{}]", path, key, i);
        if (child <= static_cast<std::int32_t>(i) || static_cast<std::size_t>(child) >= m)
          throw ValidationError(at, fmt::format("{} is not a node after {} in a tree of {}", child, i, m));
        if (depth[static_cast<std::size_t>(child)] >= 0) throw ValidationError(at, fmt::format("node {} has two parents", child));
        depth[static_cast<std::size_t>(child)] = depth[i] + 1;
        if (depth[i] + 1 > max_depth)
          throw ValidationError(at, fmt::format("node {} is deeper than max_depth {}", child, max_depth));
      }
    }
    return t;
  }

  // ---- training --------------------------------------------------------------------------------------
  /// One fit: binned data, gradients, the histogram pool. Lives only during fit().
  class Trainer {
   public:
    Trainer(GradientBoostedTrees& model, const Eigen::Ref<const Eigen::MatrixXd>& X,
            const Eigen::Ref<const Eigen::VectorXd>& y, const Split& split)
        : m_(model), p_(model.params_), F_(static_cast<std::size_t>(X.cols())) {
      const std::size_t n = split.train.size(), nv = split.validation.size();
      y_.resize(n);
      for (std::size_t i = 0; i < n; ++i) y_[i] = y(split.train[i]);
      yv_.resize(nv);
      for (std::size_t i = 0; i < nv; ++i) yv_[i] = y(split.validation[i]);
      thresholds_.resize(F_);
      n_bins_.resize(F_);
      codes_.resize(n * F_);
      codes_v_.resize(nv * F_);
      std::vector<double> col(n);
      for (std::size_t f = 0; f < F_; ++f) {
        const auto fi = static_cast<Eigen::Index>(f);
        for (std::size_t i = 0; i < n; ++i) col[i] = X(split.train[i], fi);
        thresholds_[f] = detail::bin_thresholds(col, p_.max_bins);
        n_bins_[f] = static_cast<int>(thresholds_[f].size()) + 1;
        for (std::size_t i = 0; i < n; ++i) codes_[i * F_ + f] = detail::bin_code(thresholds_[f], col[i]);
        for (std::size_t i = 0; i < nv; ++i) codes_v_[i * F_ + f] = detail::bin_code(thresholds_[f], X(split.validation[i], fi));
      }
    }

    void run() {
      const std::size_t n = y_.size();
      m_.trees_.clear();
      m_.train_loss_.clear();
      m_.validation_loss_.clear();
      m_.n_features_ = static_cast<Eigen::Index>(F_);
      if (p_.loss == GbmLoss::squared) {
        m_.base_score_ = std::accumulate(y_.begin(), y_.end(), 0.0) / static_cast<double>(n);
      } else {
        std::vector<double> tmp = y_;
        m_.base_score_ = detail::quantile_of(tmp, p_.quantile_alpha);
      }
      pred_.assign(n, m_.base_score_);
      pred_v_.assign(yv_.size(), m_.base_score_);
      grad_.resize(n);
      rows_.resize(n);
      scratch_.resize(n);
      const bool stopping = p_.early_stopping && !yv_.empty();
      double best = std::numeric_limits<double>::infinity();
      std::size_t best_trees = 0;
      for (int it = 0; it < p_.n_trees; ++it) {
        gradients();
        GbmTree tree = grow();
        m_.trees_.push_back(std::move(tree));
        m_.train_loss_.push_back(loss(y_, pred_));
        if (stopping) {
          update_validation(m_.trees_.back());
          const double v = loss(yv_, pred_v_);
          m_.validation_loss_.push_back(v);
          if (v < best) {
            best = v;
            best_trees = m_.trees_.size();
          } else if (m_.trees_.size() - best_trees >= static_cast<std::size_t>(p_.early_stopping_patience)) {
            break;
          }
        }
      }
      if (stopping) m_.trees_.resize(std::max<std::size_t>(best_trees, 1));
      m_.compile();
      m_.fitted_ = true;
    }

   private:
    using Bin = detail::HistBin;
    static constexpr std::size_t kStride = 256;  // histogram slots per feature

    struct Work {
      std::int32_t node;
      std::size_t begin, end;
      double g;
      int hist;  // index into pool_, or -1 when this node will not be split
    };

    double loss(const std::vector<double>& y, const std::vector<double>& pred) const {
      double s = 0;
      if (p_.loss == GbmLoss::squared) {
        for (std::size_t i = 0; i < y.size(); ++i) s += (y[i] - pred[i]) * (y[i] - pred[i]);
      } else {
        const double a = p_.quantile_alpha;
        for (std::size_t i = 0; i < y.size(); ++i) {
          const double r = y[i] - pred[i];
          s += r >= 0 ? a * r : (a - 1) * r;
        }
      }
      return s / static_cast<double>(y.size());
    }

    void gradients() {
      const std::size_t n = y_.size();
      if (p_.loss == GbmLoss::squared) {
        for (std::size_t i = 0; i < n; ++i) grad_[i] = pred_[i] - y_[i];
      } else {
        const double a = p_.quantile_alpha;
        for (std::size_t i = 0; i < n; ++i) grad_[i] = y_[i] > pred_[i] ? -a : 1 - a;
      }
    }

    int acquire_hist() {
      if (!free_.empty()) {
        const int h = free_.back();
        free_.pop_back();
        return h;
      }
      pool_.emplace_back(F_ * kStride);
      return static_cast<int>(pool_.size()) - 1;
    }
    void release_hist(int h) {
      if (h >= 0) free_.push_back(h);
    }

    void build_hist(int h, std::size_t begin, std::size_t end) {
      Bin* hist = pool_[static_cast<std::size_t>(h)].data();
      std::fill(hist, hist + F_ * kStride, Bin{0, 0});
      const std::uint8_t* codes = codes_.data();
      const std::size_t F = F_;
      for (std::size_t i = begin; i < end; ++i) {
        const std::uint32_t r = rows_[i];
        const double g = grad_[r];
        const std::uint8_t* c = codes + static_cast<std::size_t>(r) * F;
        Bin* hf = hist;
        for (std::size_t f = 0; f < F; ++f, hf += kStride) {
          Bin& b = hf[c[f]];
          b.g += g;
          b.n += 1;
        }
      }
    }

    struct SplitChoice {
      double gain = 0;
      int feature = -1;
      int bin = 0;
      double g_left = 0;
      double n_left = 0;
    };

    SplitChoice best_split(int h, double g, double n) const {
      SplitChoice best;
      const Bin* hist = pool_[static_cast<std::size_t>(h)].data();
      const double lambda = p_.l2_regularization, msl = p_.min_samples_leaf;
      const double parent = g * g / (n + lambda);
      for (std::size_t f = 0; f < F_; ++f) {
        const Bin* hf = hist + f * kStride;
        double gl = 0, nl = 0;
        for (int b = 0; b + 1 < n_bins_[f]; ++b) {
          gl += hf[b].g;
          nl += hf[b].n;
          if (nl < msl) continue;
          const double nr = n - nl;
          if (nr < msl) break;
          const double gr = g - gl;
          const double gain = gl * gl / (nl + lambda) + gr * gr / (nr + lambda) - parent;
          if (gain > best.gain) best = {gain, static_cast<int>(f), b, gl, nl};
        }
      }
      return best;
    }

    GbmTree grow() {
      const std::size_t n = y_.size();
      std::iota(rows_.begin(), rows_.end(), std::uint32_t{0});
      GbmTree t;
      node_bin_.clear();
      auto add_node = [&] {
        t.feature.push_back(-1);
        t.threshold.push_back(0);
        t.left.push_back(-1);
        t.right.push_back(-1);
        t.value.push_back(0);
        t.gain.push_back(0);
        node_bin_.push_back(0);
        return static_cast<std::int32_t>(t.feature.size()) - 1;
      };
      const double msl2 = 2.0 * p_.min_samples_leaf;
      std::vector<Work> level, next, leaves;
      {
        const double g = std::accumulate(grad_.begin(), grad_.end(), 0.0);
        int h = -1;
        if (p_.max_depth > 0 && static_cast<double>(n) >= msl2) {
          h = acquire_hist();
          build_hist(h, 0, n);
        }
        level.push_back({add_node(), 0, n, g, h});
      }
      for (int depth = 0; !level.empty(); ++depth) {
        next.clear();
        for (const Work& w : level) {
          SplitChoice s;
          if (w.hist >= 0) s = best_split(w.hist, w.g, static_cast<double>(w.end - w.begin));
          if (s.feature < 0) {
            release_hist(w.hist);
            leaves.push_back(w);
            continue;
          }
          const auto f = static_cast<std::size_t>(s.feature);
          const auto bin = static_cast<std::uint8_t>(s.bin);
          const auto node = static_cast<std::size_t>(w.node);
          t.feature[node] = s.feature;
          t.threshold[node] = thresholds_[f][static_cast<std::size_t>(s.bin)];
          t.gain[node] = s.gain;
          node_bin_[node] = bin;
          // Stable partition of rows_[begin, end): codes <= bin first.
          std::size_t l = w.begin, r = 0;
          for (std::size_t i = w.begin; i < w.end; ++i) {
            const std::uint32_t row = rows_[i];
            if (codes_[static_cast<std::size_t>(row) * F_ + f] <= bin) rows_[l++] = row;
            else scratch_[r++] = row;
          }
          std::copy(scratch_.begin(), scratch_.begin() + static_cast<std::ptrdiff_t>(r), rows_.begin() + static_cast<std::ptrdiff_t>(l));
          const std::size_t mid = l;
          const std::int32_t left = add_node(), right = add_node();
          t.left[node] = left;
          t.right[node] = right;
          Work lw{left, w.begin, mid, s.g_left, -1}, rw{right, mid, w.end, w.g - s.g_left, -1};
          const bool child_level_splits = depth + 1 < p_.max_depth;
          const bool need_l = child_level_splits && static_cast<double>(mid - w.begin) >= msl2;
          const bool need_r = child_level_splits && static_cast<double>(w.end - mid) >= msl2;
          if (need_l || need_r) {
            // Build the smaller child's histogram; the larger one is parent - smaller, in place.
            const bool left_small = mid - w.begin <= w.end - mid;
            Work& small = left_small ? lw : rw;
            Work& large = left_small ? rw : lw;
            const int hs = acquire_hist();
            build_hist(hs, small.begin, small.end);
            Bin* parent = pool_[static_cast<std::size_t>(w.hist)].data();
            const Bin* sm = pool_[static_cast<std::size_t>(hs)].data();
            for (std::size_t k = 0; k < F_ * kStride; ++k) {
              parent[k].g -= sm[k].g;
              parent[k].n -= sm[k].n;
            }
            small.hist = hs;
            large.hist = w.hist;
            if (!(left_small ? need_l : need_r)) {
              release_hist(small.hist);
              small.hist = -1;
            }
            if (!(left_small ? need_r : need_l)) {
              release_hist(large.hist);
              large.hist = -1;
            }
          } else {
            release_hist(w.hist);
          }
          next.push_back(lw);
          next.push_back(rw);
        }
        std::swap(level, next);
      }
      set_leaf_values(t, leaves);
      return t;
    }

    void set_leaf_values(GbmTree& t, const std::vector<Work>& leaves) {
      const double lr = p_.learning_rate;
      for (const Work& w : leaves) {
        double v;
        if (p_.loss == GbmLoss::squared) {
          v = -lr * w.g / (static_cast<double>(w.end - w.begin) + p_.l2_regularization);
        } else {
          residuals_.clear();
          for (std::size_t i = w.begin; i < w.end; ++i) residuals_.push_back(y_[rows_[i]] - pred_[rows_[i]]);
          v = lr * detail::quantile_of(residuals_, p_.quantile_alpha);
        }
        t.value[static_cast<std::size_t>(w.node)] = v;
        for (std::size_t i = w.begin; i < w.end; ++i) pred_[rows_[i]] += v;
      }
    }

    void update_validation(const GbmTree& t) {
      for (std::size_t i = 0; i < yv_.size(); ++i) {
        const std::uint8_t* c = codes_v_.data() + i * F_;
        std::size_t k = 0;
        while (t.feature[k] >= 0)
          k = static_cast<std::size_t>(c[static_cast<std::size_t>(t.feature[k])] <= node_bin_[k] ? t.left[k] : t.right[k]);
        pred_v_[i] += t.value[k];
      }
    }

    GradientBoostedTrees& m_;
    const GbmParams& p_;
    std::size_t F_;
    std::vector<double> y_, yv_, pred_, pred_v_, grad_, residuals_;
    std::vector<std::vector<double>> thresholds_;
    std::vector<int> n_bins_;
    std::vector<std::uint8_t> codes_, codes_v_, node_bin_;
    std::vector<std::uint32_t> rows_, scratch_;
    std::vector<std::vector<Bin>> pool_;
    std::vector<int> free_;
  };

  GbmParams params_;
  Eigen::Index n_features_ = 0;
  double base_score_ = 0;
  std::vector<GbmTree> trees_;
  std::vector<double> train_loss_, validation_loss_;
  bool fitted_ = false;
  // Prediction layout built by compile().
  std::vector<detail::FlatNode> flat_;
  std::vector<double> leaf_value_;
  std::vector<std::int32_t> roots_;
  int depth_ = 0;
};

/// Parameters of QualityPredictor: the boosting parameters shared by its three models and the interval's
/// nominal coverage. Thread-safety: plain value.
struct QualityPredictorParams {
  GbmParams gbm;                ///< Used by the point model; the quantile models change only loss and alpha.
  double interval_level = 0.9;  ///< Nominal coverage of [ci_low, ci_high]; (0, 1).

  /// @throws ConfigError naming the key (`quality_predictor.interval_level: 1.5 is outside (0, 1)`).
  void validate() const {
    gbm.validate();
    if (!(interval_level > 0 && interval_level < 1))
      throw ConfigError("quality_predictor.interval_level", fmt::format("{} is outside (0, 1)", interval_level));
  }
};

/// One quality prediction: the point estimate (conditional mean), the interval of nominal coverage
/// `interval_level`, and `uncertainty`, the standard deviation of the normal distribution whose central
/// `interval_level` interval has the same width: (ci_high - ci_low) / (2 z_{(1 + level) / 2}).
struct QualityPrediction {
  double predicted_quality;
  double uncertainty;
  double ci_low;
  double ci_high;
};

/// Predicts the outcome quality of a (context, template) pair from a feature row the engine builds
/// (context features followed by the template's one-hot code) with an interval from conformalised
/// quantile-loss boosting (see the file comment): a squared-loss GradientBoostedTrees for the point and
/// two quantile-loss ones at (1 - level) / 2 and (1 + level) / 2. The interval is widened to contain the point when the models
/// disagree (and its ends swapped if the quantile models cross). All three share the seed, hence the
/// validation split. Thread-safety: const member functions may run concurrently; fit() needs exclusive
/// access.
class QualityPredictor {
 public:
  /// @throws ConfigError from QualityPredictorParams::validate().
  explicit QualityPredictor(QualityPredictorParams params = {})
      : params_(validated(params)),
        point_(params.gbm),
        lower_(quantile_params(params, false)),
        upper_(quantile_params(params, true)),
        z_(normal_quantile((1 + params.interval_level) / 2)) {}

  /// Fits the three models. @throws ValidationError / ConfigError as GradientBoostedTrees::fit.
  void fit(const Eigen::Ref<const Eigen::MatrixXd>& X, const Eigen::Ref<const Eigen::VectorXd>& y) {
    point_.fit(X, y);
    lower_.fit(X, y);
    upper_.fit(X, y);
    margin_ = 0;
    if (params_.gbm.early_stopping) {
      // The rows the models held out (the same seeded split as inside GradientBoostedTrees::fit).
      const Split split = train_validation_split(X.rows(), params_.gbm.validation_split, params_.gbm.seed);
      std::vector<double> scores;
      scores.reserve(split.validation.size());
      for (Eigen::Index r : split.validation) {
        const auto row = X.row(r).transpose();
        double lo = lower_.predict_one(row), hi = upper_.predict_one(row);
        if (lo > hi) std::swap(lo, hi);
        scores.push_back(std::max(lo - y(r), y(r) - hi));
      }
      const auto m = static_cast<double>(scores.size());
      const double k = std::ceil((m + 1) * params_.interval_level);
      // k > m (too few held-out rows for this level): the largest score, the closest finite choice.
      margin_ = detail::quantile_of(scores, std::min(k, m) / m);
    }
  }

  /// Prediction for one row of n_features() contiguous values; no checks, no allocation.
  /// Precondition: fitted() and `row` points at n_features() values.
  QualityPrediction predict_quality(const double* row) const noexcept {
    const double p = point_.predict_one(row);
    double lo = lower_.predict_one(row), hi = upper_.predict_one(row);
    if (lo > hi) std::swap(lo, hi);
    lo -= margin_;
    hi += margin_;
    if (lo > hi) lo = hi = (lo + hi) / 2;  // a negative margin never turns the interval inside out
    lo = std::min(lo, p);
    hi = std::max(hi, p);
    return {p, (hi - lo) / (2 * z_), lo, hi};
  }

  /// Prediction for one row of any inner stride. @throws ValidationError on a wrong length or before fit.
  QualityPrediction predict_quality(const Eigen::Ref<const Eigen::VectorXd, 0, Eigen::InnerStride<>>& row) const {
    if (row.innerStride() == 1) {
      point_.predict_one(row);  // checks fitted and length
      return predict_quality(row.data());
    }
    const Eigen::VectorXd copy = row;
    point_.predict_one(copy);
    return predict_quality(copy.data());
  }

  /// The conformal widening Q added to each end of the quantile models' interval (may be negative).
  double conformal_margin() const noexcept { return margin_; }
  /// Normalised gain importance of the point model.
  Eigen::VectorXd feature_importance() const { return point_.feature_importance(); }
  /// The squared-loss model.
  const GradientBoostedTrees& point_model() const noexcept { return point_; }
  /// The quantile model at (1 - level) / 2.
  const GradientBoostedTrees& lower_model() const noexcept { return lower_; }
  /// The quantile model at (1 + level) / 2.
  const GradientBoostedTrees& upper_model() const noexcept { return upper_; }
  /// Columns of a feature row (0 before fit).
  Eigen::Index n_features() const noexcept { return point_.n_features(); }
  /// True once fitted or loaded.
  bool fitted() const noexcept { return point_.fitted(); }
  /// The parameters.
  const QualityPredictorParams& params() const noexcept { return params_; }

  /// Full state: {"format": "promptlearn.quality_predictor", "version": 1, "interval_level",
  /// "conformal_margin", "point", "lower", "upper"} (each model as GradientBoostedTrees::to_json()).
  nlohmann::json to_json() const {
    return {{"format", "promptlearn.quality_predictor"}, {"version", 1}, {"interval_level", params_.interval_level},
            {"conformal_margin", margin_}, {"point", point_.to_json()}, {"lower", lower_.to_json()},
            {"upper", upper_.to_json()}};
  }

  /// A predictor from to_json()'s output. @throws ValidationError naming the malformed field.
  static QualityPredictor from_json(const nlohmann::json& j) {
    const auto& format = detail::gbm_field(j, "", "format");
    if (format != "promptlearn.quality_predictor")
      throw ValidationError("format", fmt::format("{} is not \"promptlearn.quality_predictor\"", format.dump()));
    const auto version = detail::gbm_integer(detail::gbm_field(j, "", "version"), "version");
    if (version != 1) throw ValidationError("version", fmt::format("{} is not a supported version (1)", version));
    QualityPredictorParams params;
    params.interval_level = detail::gbm_number(detail::gbm_field(j, "", "interval_level"), "interval_level");
    if (!(params.interval_level > 0 && params.interval_level < 1))
      throw ValidationError("interval_level", fmt::format("{} is outside (0, 1)", params.interval_level));
    GradientBoostedTrees point = GradientBoostedTrees::from_json(detail::gbm_field(j, "", "point"), "point");
    GradientBoostedTrees lower = GradientBoostedTrees::from_json(detail::gbm_field(j, "", "lower"), "lower");
    GradientBoostedTrees upper = GradientBoostedTrees::from_json(detail::gbm_field(j, "", "upper"), "upper");
    if (lower.n_features() != point.n_features() || upper.n_features() != point.n_features())
      throw ValidationError("lower.n_features", "the three models must have the same n_features");
    if (point.params().loss != GbmLoss::squared) throw ValidationError("point.params.loss", "must be \"squared\"");
    for (auto [name, model, alpha] : {std::tuple{"lower", &lower, (1 - params.interval_level) / 2},
                                      std::tuple{"upper", &upper, (1 + params.interval_level) / 2}})
      if (model->params().loss != GbmLoss::quantile || std::abs(model->params().quantile_alpha - alpha) > 1e-12)
        throw ValidationError(fmt::format("{}.params", name),
                              fmt::format("must be the quantile loss at alpha {} for interval_level {}", alpha, params.interval_level));
    params.gbm = point.params();
    QualityPredictor q(params);
    q.point_ = std::move(point);
    q.lower_ = std::move(lower);
    q.upper_ = std::move(upper);
    q.margin_ = detail::gbm_number(detail::gbm_field(j, "", "conformal_margin"), "conformal_margin");
    return q;
  }

 private:
  static const QualityPredictorParams& validated(const QualityPredictorParams& p) {
    p.validate();
    return p;
  }
  static GbmParams quantile_params(const QualityPredictorParams& p, bool upper) {
    GbmParams g = p.gbm;
    g.loss = GbmLoss::quantile;
    g.quantile_alpha = upper ? (1 + p.interval_level) / 2 : (1 - p.interval_level) / 2;
    return g;
  }

  QualityPredictorParams params_;
  GradientBoostedTrees point_, lower_, upper_;
  double z_ = 1;
  double margin_ = 0;
};

}  // namespace promptlearn::models
