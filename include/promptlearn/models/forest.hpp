#pragma once
/// @file
/// Random forest classification with isotonic probability calibration, k-fold cross-validation, and the
/// template classifier built on them (layer 2, header-only, no I/O, no threads).
///
/// - RandomForestClassifier (Breiman 2001): each tree is grown on a bootstrap sample (n draws with
///   replacement, kept as per-row multiplicities) to `max_depth`; at each node `max_features` features are
///   drawn without replacement (features constant in the node are skipped and do not count, as in
///   scikit-learn) and the split x_f <= t maximising the decrease of the weighted Gini impurity
///   G = 1 - sum_k p_k^2 is taken. The probability of class k is the mean over trees of the class share in
///   the leaf reached. Feature importance is the mean decrease in impurity ("gain"): per tree
///   sum over splits on f of W_node G_node - W_left G_left - W_right G_right, normalised to sum 1, then
///   averaged over trees and normalised again.
///   Split search: each feature is binned once per fit (every distinct value its own bin when there are at
///   most `max_bins` of them, otherwise about equal-count bins); a node's candidate thresholds are the
///   midpoints between adjacent occupied bins, i.e. exactly the midpoints between consecutive distinct
///   values of the sorted-values search whenever a feature has <= max_bins distinct values. Large nodes
///   use per-bin class histograms, small nodes sort their rows by bin; both give the same split because
///   the class counts are integers (bootstrap multiplicities) summed exactly.
/// - CalibratedClassifier: scikit-learn's CalibratedClassifierCV(method="isotonic", ensemble=True)
///   semantics. For each of k stratified folds a forest is fit on the training part and, on the held-out
///   part, one isotonic regression per class maps the forest's probability of that class to the
///   indicator of that class (one-vs-rest; for two classes only class 1 is calibrated and
///   p_0 = 1 - p_1). Calibrated class probabilities are renormalised to sum 1 (uniform when all are 0)
///   and averaged over the folds (Zadrozny & Elkan 2002; Niculescu-Mizil & Caruana 2005, who show that
///   forests' probabilities are pushed away from 0 and 1 and that isotonic calibration repairs this).
/// - cross_validate: stratified k-fold accuracy (mean and population standard deviation over folds, as
///   numpy.std of scikit-learn's cross_val_score) and log loss -mean log max(p_true, 1e-15).
/// - TemplateClassifier: a CalibratedClassifier whose classes are template ids; predict_template ranks
///   the templates by calibrated probability.
///
///     promptlearn::models::TemplateClassifier clf;          // 100 trees, depth 10, seed 42, 5 folds
///     clf.fit(X, template_ids);
///     for (const auto& [id, p] : clf.predict_template(context)) ...
#include <Eigen/Core>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/models/cross_validation.hpp"
#include "promptlearn/models/isotonic.hpp"

namespace promptlearn::models {

/// Random forest hyper-parameters; the member initialisers are the specification's defaults.
struct ForestParams {
  int n_trees = 100;            ///< number of trees
  int max_depth = 10;           ///< root has depth 0; nodes at max_depth are leaves
  int min_samples_split = 2;    ///< distinct rows a node needs to be split
  int min_samples_leaf = 1;     ///< distinct rows each child must keep
  int max_features = 0;         ///< features tried per split; 0 means max(1, floor(sqrt(d)))
  bool bootstrap = true;        ///< bootstrap sample per tree (false: every row once)
  int max_bins = 256;           ///< split candidates per feature (exact when distinct values <= max_bins)
  std::uint64_t seed = 42;      ///< seed of the trees' bootstrap samples and feature draws

  /// @throws ConfigError naming the key, e.g. `forest.max_depth: 0 is outside [1, 64]`.
  void validate(const std::string& prefix = "forest") const {
    auto range = [&](const char* key, long long v, long long lo, long long hi) {
      if (v < lo || v > hi) throw ConfigError(prefix + "." + key, fmt::format("{} is outside [{}, {}]", v, lo, hi));
    };
    range("n_trees", n_trees, 1, 100000);
    range("max_depth", max_depth, 1, 64);
    range("min_samples_split", min_samples_split, 2, std::numeric_limits<int>::max());
    range("min_samples_leaf", min_samples_leaf, 1, std::numeric_limits<int>::max());
    range("max_features", max_features, 0, std::numeric_limits<int>::max());
    range("max_bins", max_bins, 2, 65535);
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ForestParams, n_trees, max_depth, min_samples_split,
                                                min_samples_leaf, max_features, bootstrap, max_bins, seed)

/// Calibration hyper-parameters (CalibratedClassifierCV's cv and method).
struct CalibrationParams {
  int folds = 5;                   ///< stratified folds; one forest and one set of calibrators per fold
  std::string method = "isotonic"; ///< only "isotonic"
  std::uint64_t seed = 42;         ///< seed of the fold assignment

  /// @throws ConfigError naming the key, e.g. `calibration.folds: 1 is outside [2, 100]`.
  void validate(const std::string& prefix = "calibration") const {
    if (folds < 2 || folds > 100) throw ConfigError(prefix + ".folds", fmt::format("{} is outside [2, 100]", folds));
    if (method != "isotonic")
      throw ConfigError(prefix + ".method", fmt::format("\"{}\" is not supported (expected \"isotonic\")", method));
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(CalibrationParams, folds, method, seed)

namespace detail {

/// One tree as flat arrays. Internal node i: go to child[i] when x[feature[i]] <= threshold[i], else to
/// child[i] + 1. Leaf: feature[i] == -1 and the class shares are value[child[i] * K .. + K).
struct FlatTree {
  std::vector<std::int32_t> feature;
  std::vector<double> threshold;
  std::vector<std::int32_t> child;
  std::vector<double> value;
};

/// A ConfigError re-thrown as a ValidationError at the same path (parameters read from a saved model).
[[noreturn]] inline void rethrow_as_validation(const ConfigError& e) {
  const std::string what = e.what();
  throw ValidationError(e.key(), what.substr(std::min(what.size(), e.key().size() + 2)));
}

inline const nlohmann::json& field(const nlohmann::json& j, const std::string& path, const char* key) {
  if (!j.is_object()) throw ValidationError(path, fmt::format("expected an object, got {}", j.type_name()));
  if (!j.contains(key)) throw ValidationError(path + "." + key, "is missing");
  return j.at(key);
}

inline long long int_field(const nlohmann::json& j, const std::string& path, const char* key, long long lo, long long hi) {
  const nlohmann::json& v = field(j, path, key);
  if (!v.is_number_integer()) throw ValidationError(path + "." + key, fmt::format("expected an integer, got {}", v.dump()));
  const long long x = v.get<long long>();
  if (x < lo || x > hi) throw ValidationError(path + "." + key, fmt::format("{} is outside [{}, {}]", x, lo, hi));
  return x;
}

template <class T>
std::vector<T> number_array(const nlohmann::json& j, const std::string& path, const char* key) {
  const nlohmann::json& a = field(j, path, key);
  const std::string p = path + "." + key;
  if (!a.is_array()) throw ValidationError(p, fmt::format("expected an array, got {}", a.type_name()));
  std::vector<T> out;
  out.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    const nlohmann::json& v = a[i];
    if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer() || v.get<long long>() < std::numeric_limits<T>::min() ||
          v.get<long long>() > std::numeric_limits<T>::max())
        throw ValidationError(fmt::format("{}[{}]", p, i), fmt::format("{} is not an integer in range", v.dump()));
      out.push_back(static_cast<T>(v.get<long long>()));
    } else {
      if (!v.is_number() || !std::isfinite(v.get<double>()))
        throw ValidationError(fmt::format("{}[{}]", p, i), fmt::format("{} is not a finite number", v.dump()));
      out.push_back(v.get<double>());
    }
  }
  return out;
}

/// Strict reading of saved ForestParams: every key must be present with the right type and in range.
inline ForestParams read_forest_params(const nlohmann::json& j, const std::string& path) {
  ForestParams p;
  p.n_trees = static_cast<int>(int_field(j, path, "n_trees", std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
  p.max_depth = static_cast<int>(int_field(j, path, "max_depth", std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
  p.min_samples_split = static_cast<int>(int_field(j, path, "min_samples_split", std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
  p.min_samples_leaf = static_cast<int>(int_field(j, path, "min_samples_leaf", std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
  p.max_features = static_cast<int>(int_field(j, path, "max_features", std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
  p.max_bins = static_cast<int>(int_field(j, path, "max_bins", std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
  const nlohmann::json& b = field(j, path, "bootstrap");
  if (!b.is_boolean()) throw ValidationError(path + ".bootstrap", fmt::format("expected a boolean, got {}", b.dump()));
  p.bootstrap = b.get<bool>();
  const nlohmann::json& s = field(j, path, "seed");
  if (!s.is_number_unsigned() && !(s.is_number_integer() && s.get<long long>() >= 0))
    throw ValidationError(path + ".seed", fmt::format("expected a non-negative integer, got {}", s.dump()));
  p.seed = s.get<std::uint64_t>();
  try {
    p.validate(path);
  } catch (const ConfigError& e) {
    rethrow_as_validation(e);
  }
  return p;
}

/// Grows the trees of one forest on binned features. Not part of the API.
class ForestBuilder {
 public:
  ForestBuilder(const Eigen::Ref<const Eigen::MatrixXd>& X, const std::vector<int>& labels, int n_classes,
                const ForestParams& p)
      : X_(X), labels_(labels), k_(n_classes), p_(p), n_(X.rows()), d_(X.cols()) {
    mtry_ = p.max_features == 0 ? std::max<Eigen::Index>(1, static_cast<Eigen::Index>(std::sqrt(static_cast<double>(d_))))
                                : static_cast<Eigen::Index>(p.max_features);
    bin();
  }

  /// Grows one tree; adds its normalised impurity decreases to `importance`.
  FlatTree grow(std::uint64_t tree_seed, Eigen::VectorXd& importance) {
    Rng rng(tree_seed);
    std::vector<std::int32_t> weight(static_cast<std::size_t>(n_), p_.bootstrap ? 0 : 1);
    if (p_.bootstrap)
      for (Eigen::Index i = 0; i < n_; ++i) ++weight[static_cast<std::size_t>(rng.uniform_int(0, n_ - 1))];
    std::vector<std::int32_t> rows;
    for (Eigen::Index i = 0; i < n_; ++i)
      if (weight[static_cast<std::size_t>(i)] > 0) rows.push_back(static_cast<std::int32_t>(i));
    weight_ = &weight;

    FlatTree t;
    t.feature.push_back(-1);
    t.threshold.push_back(0);
    t.child.push_back(0);
    struct Task {
      std::int32_t node, begin, end, depth;
    };
    std::vector<Task> stack{{0, 0, static_cast<std::int32_t>(rows.size()), 0}};
    std::vector<std::int64_t> counts(static_cast<std::size_t>(k_));
    std::vector<Eigen::Index> features(static_cast<std::size_t>(d_));
    Eigen::VectorXd tree_importance = Eigen::VectorXd::Zero(d_);
    double root_weight = 0;
    while (!stack.empty()) {
      const Task task = stack.back();
      stack.pop_back();
      std::fill(counts.begin(), counts.end(), 0);
      std::int64_t w_node = 0;
      for (std::int32_t i = task.begin; i < task.end; ++i) {
        const auto r = static_cast<std::size_t>(rows[static_cast<std::size_t>(i)]);
        counts[static_cast<std::size_t>(labels_[r])] += weight[r];
        w_node += weight[r];
      }
      if (task.node == 0) root_weight = static_cast<double>(w_node);
      const double gini = gini_of(counts, w_node);
      const std::int32_t n_node = task.end - task.begin;
      Split best;
      if (task.depth < p_.max_depth && n_node >= p_.min_samples_split && n_node >= 2 * p_.min_samples_leaf &&
          gini > std::numeric_limits<double>::epsilon()) {
        for (Eigen::Index f = 0; f < d_; ++f) features[static_cast<std::size_t>(f)] = f;
        Eigen::Index visited = 0;
        for (Eigen::Index i = 0; i < d_ && visited < mtry_; ++i) {
          const auto j = static_cast<std::size_t>(rng.uniform_int(i, d_ - 1));
          std::swap(features[static_cast<std::size_t>(i)], features[j]);
          const Eigen::Index f = features[static_cast<std::size_t>(i)];
          if (evaluate(f, rows, task.begin, task.end, counts, w_node, best)) ++visited;
        }
      }
      if (best.feature < 0) {  // leaf
        t.child[static_cast<std::size_t>(task.node)] = static_cast<std::int32_t>(t.value.size() / static_cast<std::size_t>(k_));
        for (int c = 0; c < k_; ++c)
          t.value.push_back(static_cast<double>(counts[static_cast<std::size_t>(c)]) / static_cast<double>(w_node));
        continue;
      }
      const std::uint16_t* code = codes_.data() + best.feature * n_;
      const auto mid = std::partition(rows.begin() + task.begin, rows.begin() + task.end,
                                       [&](std::int32_t r) { return code[r] <= best.left_bin; });
      const auto split_at = static_cast<std::int32_t>(mid - rows.begin());
      const auto left = static_cast<std::int32_t>(t.feature.size());
      const auto node = static_cast<std::size_t>(task.node);
      t.feature[node] = static_cast<std::int32_t>(best.feature);
      t.threshold[node] = best.threshold;
      t.child[node] = left;
      for (int c = 0; c < 2; ++c) {
        t.feature.push_back(-1);
        t.threshold.push_back(0);
        t.child.push_back(0);
      }
      tree_importance(best.feature) += static_cast<double>(w_node) * gini - best.child_weighted_gini;
      stack.push_back({left + 1, split_at, task.end, task.depth + 1});
      stack.push_back({left, task.begin, split_at, task.depth + 1});
    }
    if (root_weight > 0) tree_importance /= root_weight;
    const double total = tree_importance.sum();
    if (total > 0) importance += tree_importance / total;
    weight_ = nullptr;
    return t;
  }

 private:
  struct Split {
    Eigen::Index feature = -1;
    std::uint16_t left_bin = 0;
    double threshold = 0;
    double score = -std::numeric_limits<double>::infinity();  // sum_L^2 / W_L + sum_R^2 / W_R
    double child_weighted_gini = 0;                            // W_L G_L + W_R G_R
  };

  static double gini_of(const std::vector<std::int64_t>& counts, std::int64_t w) {
    if (w <= 0) return 0;
    double s = 0;
    for (std::int64_t c : counts) s += static_cast<double>(c) * static_cast<double>(c);
    return 1.0 - s / (static_cast<double>(w) * static_cast<double>(w));
  }

  // Bins every feature: distinct values when there are at most max_bins, else about equal-count bins.
  void bin() {
    codes_.resize(static_cast<std::size_t>(n_ * d_));
    lo_.assign(static_cast<std::size_t>(d_), {});
    hi_.assign(static_cast<std::size_t>(d_), {});
    std::vector<double> v(static_cast<std::size_t>(n_));
    max_bins_seen_ = 1;
    for (Eigen::Index f = 0; f < d_; ++f) {
      for (Eigen::Index r = 0; r < n_; ++r) v[static_cast<std::size_t>(r)] = X_(r, f);
      std::sort(v.begin(), v.end());
      std::vector<double> uniq;
      std::vector<std::size_t> end_pos;  // one past the last sorted position of each distinct value
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (uniq.empty() || v[i] != uniq.back()) {
          uniq.push_back(v[i]);
          end_pos.push_back(i + 1);
        } else {
          end_pos.back() = i + 1;
        }
      }
      auto& lo = lo_[static_cast<std::size_t>(f)];
      auto& hi = hi_[static_cast<std::size_t>(f)];
      if (uniq.size() <= static_cast<std::size_t>(p_.max_bins)) {
        lo = uniq;
        hi = uniq;
      } else {
        // Close a bin once it reaches the next multiple of n / max_bins rows.
        const double per_bin = static_cast<double>(n_) / p_.max_bins;
        std::size_t b = 1;
        for (std::size_t u = 0; u < uniq.size(); ++u) {
          if (lo.size() == hi.size()) lo.push_back(uniq[u]);
          const bool last = u + 1 == uniq.size();
          if (last || static_cast<double>(end_pos[u]) >= per_bin * static_cast<double>(b)) {
            hi.push_back(uniq[u]);
            while (static_cast<double>(end_pos[u]) >= per_bin * static_cast<double>(b)) ++b;
          }
        }
      }
      max_bins_seen_ = std::max(max_bins_seen_, hi.size());
      std::uint16_t* code = codes_.data() + f * n_;
      for (Eigen::Index r = 0; r < n_; ++r)
        code[r] = static_cast<std::uint16_t>(std::lower_bound(hi.begin(), hi.end(), X_(r, f)) - hi.begin());
    }
    hist_.assign(max_bins_seen_ * static_cast<std::size_t>(k_), 0);
    hist_rows_.assign(max_bins_seen_, 0);
  }

  // Scores the boundary after a left part with class counts `left` (weight wl, nl distinct rows).
  void consider(Eigen::Index f, std::uint16_t left_bin, std::uint16_t right_bin, const std::vector<std::int64_t>& left,
                std::int64_t wl, std::int32_t nl, const std::vector<std::int64_t>& total, std::int64_t w,
                std::int32_t n, Split& best) const {
    if (nl < p_.min_samples_leaf || n - nl < p_.min_samples_leaf) return;
    const std::int64_t wr = w - wl;
    double sl = 0, sr = 0;
    for (int c = 0; c < k_; ++c) {
      const auto l = static_cast<double>(left[static_cast<std::size_t>(c)]);
      const auto r = static_cast<double>(total[static_cast<std::size_t>(c)] - left[static_cast<std::size_t>(c)]);
      sl += l * l;
      sr += r * r;
    }
    const double score = sl / static_cast<double>(wl) + sr / static_cast<double>(wr);
    if (!(score > best.score)) return;
    best.score = score;
    best.feature = f;
    best.left_bin = left_bin;
    const double a = hi_[static_cast<std::size_t>(f)][left_bin], b = lo_[static_cast<std::size_t>(f)][right_bin];
    double t = a / 2 + b / 2;
    if (!(t < b)) t = a;  // a and b adjacent doubles
    best.threshold = t;
    best.child_weighted_gini = (static_cast<double>(wl) - sl / static_cast<double>(wl)) +
                               (static_cast<double>(wr) - sr / static_cast<double>(wr));
  }

  // Best split of feature f in rows[begin, end); returns false when f is constant there.
  bool evaluate(Eigen::Index f, const std::vector<std::int32_t>& rows, std::int32_t begin, std::int32_t end,
                const std::vector<std::int64_t>& total, std::int64_t w, Split& best) {
    const std::uint16_t* code = codes_.data() + f * n_;
    const std::vector<std::int32_t>& weight = *weight_;
    const std::int32_t n = end - begin;
    const std::size_t bins = hi_[static_cast<std::size_t>(f)].size();
    if (bins < 2) return false;
    std::vector<std::int64_t>& left = left_;
    left.assign(static_cast<std::size_t>(k_), 0);
    const double log_n = std::log2(static_cast<double>(n) + 1);
    if (static_cast<double>(bins) * (k_ + 1) <= static_cast<double>(n) * log_n) {
      // Histogram of class weights and distinct rows per bin.
      std::fill(hist_.begin(), hist_.begin() + static_cast<std::ptrdiff_t>(bins * static_cast<std::size_t>(k_)), 0);
      std::fill(hist_rows_.begin(), hist_rows_.begin() + static_cast<std::ptrdiff_t>(bins), 0);
      for (std::int32_t i = begin; i < end; ++i) {
        const auto r = static_cast<std::size_t>(rows[static_cast<std::size_t>(i)]);
        hist_[static_cast<std::size_t>(code[r]) * static_cast<std::size_t>(k_) + static_cast<std::size_t>(labels_[r])] += weight[r];
        ++hist_rows_[code[r]];
      }
      std::size_t b0 = 0;
      while (hist_rows_[b0] == 0) ++b0;
      std::size_t last = bins - 1;
      while (hist_rows_[last] == 0) --last;
      if (b0 == last) return false;
      std::int64_t wl = 0;
      std::int32_t nl = 0;
      std::size_t prev = b0;
      for (std::size_t b = b0; b < last;) {
        for (int c = 0; c < k_; ++c) {
          const std::int64_t h = hist_[b * static_cast<std::size_t>(k_) + static_cast<std::size_t>(c)];
          left[static_cast<std::size_t>(c)] += h;
          wl += h;
        }
        nl += hist_rows_[b];
        prev = b;
        do ++b;
        while (hist_rows_[b] == 0);
        consider(f, static_cast<std::uint16_t>(prev), static_cast<std::uint16_t>(b), left, wl, nl, total, w, n, best);
      }
      return true;
    }
    // Few rows: sort them by bin.
    std::vector<std::uint64_t>& keys = keys_;
    keys.clear();
    for (std::int32_t i = begin; i < end; ++i) {
      const auto r = static_cast<std::uint32_t>(rows[static_cast<std::size_t>(i)]);
      keys.push_back(static_cast<std::uint64_t>(code[r]) << 32 | r);
    }
    std::sort(keys.begin(), keys.end());
    if ((keys.front() >> 32) == (keys.back() >> 32)) return false;
    std::int64_t wl = 0;
    std::int32_t nl = 0;
    for (std::size_t i = 0; i + 1 < keys.size(); ++i) {
      const auto r = static_cast<std::size_t>(keys[i] & 0xFFFFFFFFu);
      left[static_cast<std::size_t>(labels_[r])] += weight[r];
      wl += weight[r];
      ++nl;
      const auto b = static_cast<std::uint16_t>(keys[i] >> 32), b_next = static_cast<std::uint16_t>(keys[i + 1] >> 32);
      if (b != b_next) consider(f, b, b_next, left, wl, nl, total, w, n, best);
    }
    return true;
  }

  const Eigen::Ref<const Eigen::MatrixXd>& X_;
  const std::vector<int>& labels_;
  int k_;
  ForestParams p_;
  Eigen::Index n_, d_, mtry_ = 1;
  std::vector<std::uint16_t> codes_;            // column-major bin codes
  std::vector<std::vector<double>> lo_, hi_;    // per feature, per bin: smallest and largest value
  std::size_t max_bins_seen_ = 1;
  std::vector<std::int64_t> hist_, left_;
  std::vector<std::int32_t> hist_rows_;
  std::vector<std::uint64_t> keys_;
  const std::vector<std::int32_t>* weight_ = nullptr;
};

/// Labels as a vector of doubles for check_training_data, and checks they lie in [0, n_classes).
inline int check_labels(const Eigen::Ref<const Eigen::MatrixXd>& X, const std::vector<int>& labels, int n_classes) {
  if (static_cast<Eigen::Index>(labels.size()) != X.rows())
    throw ValidationError("labels", fmt::format("has {} values for {} rows of X", labels.size(), X.rows()));
  Eigen::VectorXd y(static_cast<Eigen::Index>(labels.size()));
  int max_label = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    y(static_cast<Eigen::Index>(i)) = labels[i];
    max_label = std::max(max_label, labels[i]);
  }
  check_training_data(X, y);
  if (X.cols() < 1) throw ValidationError("X", "has no columns");
  if (n_classes < 0) throw ValidationError("n_classes", fmt::format("{} is negative", n_classes));
  const int k = n_classes == 0 ? max_label + 1 : n_classes;
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= k)
      throw ValidationError(fmt::format("labels[{}]", i), fmt::format("{} is outside [0, {}]", labels[i], k - 1));
  return k;
}

}  // namespace detail

/// Random forest classifier (Breiman 2001) with Gini splits; see the file comment for the algorithm.
/// Thread-safety: const members may be called concurrently; fit and from_json need exclusive access.
class RandomForestClassifier {
 public:
  /// @throws ConfigError when `params` is invalid.
  explicit RandomForestClassifier(ForestParams params = {}) : params_(params) { params_.validate(); }

  /// Fits the forest to rows X with labels 0..n_classes-1 (n_classes 0: the largest label + 1).
  /// Deterministic given params.seed.
  /// @throws ValidationError naming the argument (`labels[4]: 3 is outside [0, 2]`, `X[2][0]: nan is not a
  ///         finite number`); ConfigError when max_features exceeds the columns of X.
  void fit(const Eigen::Ref<const Eigen::MatrixXd>& X, const std::vector<int>& labels, int n_classes = 0) {
    const int k = detail::check_labels(X, labels, n_classes);
    if (params_.max_features > X.cols())
      throw ConfigError("forest.max_features", fmt::format("{} exceeds the {} columns of X", params_.max_features, X.cols()));
    detail::ForestBuilder builder(X, labels, k, params_);
    Rng seeds(params_.seed);
    std::vector<detail::FlatTree> trees;
    trees.reserve(static_cast<std::size_t>(params_.n_trees));
    Eigen::VectorXd importance = Eigen::VectorXd::Zero(X.cols());
    for (int t = 0; t < params_.n_trees; ++t) trees.push_back(builder.grow(seeds.next_u64(), importance));
    const double total = importance.sum();
    if (total > 0) importance /= total;
    trees_ = std::move(trees);
    importance_ = std::move(importance);
    n_classes_ = k;
    n_features_ = X.cols();
  }

  /// True once fit (or from_json) has run.
  bool fitted() const noexcept { return !trees_.empty(); }
  int n_classes() const noexcept { return n_classes_; }
  Eigen::Index n_features() const noexcept { return n_features_; }
  const ForestParams& params() const noexcept { return params_; }
  /// Total nodes over all trees.
  std::size_t n_nodes() const noexcept {
    std::size_t s = 0;
    for (const auto& t : trees_) s += t.feature.size();
    return s;
  }

  /// Mean decrease in Gini impurity per feature, summing to 1 (all 0 when no tree split).
  const Eigen::VectorXd& feature_importance() const noexcept { return importance_; }

  /// Writes the class probabilities of one row into `out` (size n_classes) without allocating.
  /// A NaN feature goes to the right child. @throws ValidationError when the sizes are wrong or not fitted.
  void predict_proba_into(const Eigen::Ref<const Eigen::VectorXd>& x, Eigen::Ref<Eigen::VectorXd> out) const {
    check_row(x.size());
    if (out.size() != n_classes_) throw ValidationError("out", fmt::format("has size {}, expected {}", out.size(), n_classes_));
    out.setZero();
    const auto k = static_cast<std::size_t>(n_classes_);
    for (const auto& t : trees_) {
      std::size_t i = 0;
      while (t.feature[i] >= 0)
        i = static_cast<std::size_t>(t.child[i]) + (x(t.feature[i]) <= t.threshold[i] ? 0 : 1);
      const double* v = t.value.data() + static_cast<std::size_t>(t.child[i]) * k;
      for (std::size_t c = 0; c < k; ++c) out(static_cast<Eigen::Index>(c)) += v[c];
    }
    out /= static_cast<double>(trees_.size());
  }

  /// Class probabilities of one row. @throws ValidationError as predict_proba_into.
  Eigen::VectorXd predict_proba_one(const Eigen::Ref<const Eigen::VectorXd>& x) const {
    Eigen::VectorXd p(n_classes_);
    predict_proba_into(x, p);
    return p;
  }

  /// Class probabilities, one row per row of X. @throws ValidationError as predict_proba_into.
  Eigen::MatrixXd predict_proba(const Eigen::Ref<const Eigen::MatrixXd>& X) const {
    check_row(X.cols());
    Eigen::MatrixXd P(X.rows(), n_classes_);
    Eigen::VectorXd x(X.cols()), p(n_classes_);
    for (Eigen::Index r = 0; r < X.rows(); ++r) {
      x = X.row(r).transpose();
      predict_proba_into(x, p);
      P.row(r) = p.transpose();
    }
    return P;
  }

  /// The most probable class of each row (lowest label on ties).
  std::vector<int> predict(const Eigen::Ref<const Eigen::MatrixXd>& X) const;

  /// Full state: parameters, shape, importances and every tree's flat arrays.
  nlohmann::json to_json() const {
    nlohmann::json trees = nlohmann::json::array();
    for (const auto& t : trees_)
      trees.push_back({{"feature", t.feature}, {"threshold", t.threshold}, {"child", t.child}, {"value", t.value}});
    return {{"kind", "random_forest"},
            {"version", 1},
            {"params", params_},
            {"n_classes", n_classes_},
            {"n_features", n_features_},
            {"feature_importance", std::vector<double>(importance_.data(), importance_.data() + importance_.size())},
            {"trees", trees}};
  }

  /// Restores a forest written by to_json, checking every field (`path` prefixes the field names).
  /// @throws ValidationError naming the field, e.g. `forest.trees[3].child[5]: 9 is outside [6, 7]`.
  static RandomForestClassifier from_json(const nlohmann::json& j, const std::string& path = "forest") {
    const nlohmann::json& kind = detail::field(j, path, "kind");
    if (kind != "random_forest") throw ValidationError(path + ".kind", fmt::format("{} is not \"random_forest\"", kind.dump()));
    detail::int_field(j, path, "version", 1, 1);
    RandomForestClassifier m(detail::read_forest_params(detail::field(j, path, "params"), path + ".params"));
    m.n_classes_ = static_cast<int>(detail::int_field(j, path, "n_classes", 1, 1 << 20));
    m.n_features_ = static_cast<Eigen::Index>(detail::int_field(j, path, "n_features", 1, std::numeric_limits<std::int32_t>::max()));
    const auto imp = detail::number_array<double>(j, path, "feature_importance");
    if (static_cast<Eigen::Index>(imp.size()) != m.n_features_)
      throw ValidationError(path + ".feature_importance", fmt::format("has {} values for {} features", imp.size(), m.n_features_));
    m.importance_ = Eigen::Map<const Eigen::VectorXd>(imp.data(), static_cast<Eigen::Index>(imp.size()));
    const nlohmann::json& trees = detail::field(j, path, "trees");
    if (!trees.is_array() || trees.empty())
      throw ValidationError(path + ".trees", fmt::format("expected a non-empty array, got {}", trees.dump().substr(0, 40)));
    const auto k = static_cast<std::size_t>(m.n_classes_);
    for (std::size_t ti = 0; ti < trees.size(); ++ti) {
      const std::string tp = fmt::format("{}.trees[{}]", path, ti);
      detail::FlatTree t;
      t.feature = detail::number_array<std::int32_t>(trees[ti], tp, "feature");
      t.threshold = detail::number_array<double>(trees[ti], tp, "threshold");
      t.child = detail::number_array<std::int32_t>(trees[ti], tp, "child");
      t.value = detail::number_array<double>(trees[ti], tp, "value");
      const std::size_t nodes = t.feature.size();
      if (nodes == 0) throw ValidationError(tp + ".feature", "is empty");
      if (t.threshold.size() != nodes) throw ValidationError(tp + ".threshold", fmt::format("has {} values for {} nodes", t.threshold.size(), nodes));
      if (t.child.size() != nodes) throw ValidationError(tp + ".child", fmt::format("has {} values for {} nodes", t.child.size(), nodes));
      if (t.value.size() % k != 0)
        throw ValidationError(tp + ".value", fmt::format("has {} values, not a multiple of {} classes", t.value.size(), k));
      const std::size_t leaves = t.value.size() / k;
      for (std::size_t i = 0; i < nodes; ++i) {
        const std::int32_t f = t.feature[i];
        if (f < -1 || f >= m.n_features_)
          throw ValidationError(fmt::format("{}.feature[{}]", tp, i), fmt::format("{} is outside [-1, {}]", f, m.n_features_ - 1));
        const long long c = t.child[i];
        // Children come after their parent, so every path ends at a leaf.
        const long long lo = f < 0 ? 0 : static_cast<long long>(i) + 1;
        const long long hi = f < 0 ? static_cast<long long>(leaves) - 1 : static_cast<long long>(nodes) - 2;
        if (c < lo || c > hi) throw ValidationError(fmt::format("{}.child[{}]", tp, i), fmt::format("{} is outside [{}, {}]", c, lo, hi));
      }
      for (std::size_t i = 0; i < t.value.size(); ++i)
        if (t.value[i] < 0 || t.value[i] > 1)
          throw ValidationError(fmt::format("{}.value[{}]", tp, i), fmt::format("{} is outside [0, 1]", t.value[i]));
      m.trees_.push_back(std::move(t));
    }
    return m;
  }

 private:
  void check_row(Eigen::Index cols) const {
    if (trees_.empty()) throw ValidationError("model", "the forest is not fitted");
    if (cols != n_features_) throw ValidationError("x", fmt::format("has {} features, the model was fitted on {}", cols, n_features_));
  }

  ForestParams params_;
  std::vector<detail::FlatTree> trees_;
  Eigen::VectorXd importance_;
  int n_classes_ = 0;
  Eigen::Index n_features_ = 0;
};

namespace detail {
inline std::vector<int> argmax_rows(const Eigen::Ref<const Eigen::MatrixXd>& P) {
  std::vector<int> out(static_cast<std::size_t>(P.rows()));
  for (Eigen::Index r = 0; r < P.rows(); ++r) {
    Eigen::Index best = 0;
    for (Eigen::Index c = 1; c < P.cols(); ++c)
      if (P(r, c) > P(r, best)) best = c;
    out[static_cast<std::size_t>(r)] = static_cast<int>(best);
  }
  return out;
}
}  // namespace detail

inline std::vector<int> RandomForestClassifier::predict(const Eigen::Ref<const Eigen::MatrixXd>& X) const {
  return detail::argmax_rows(predict_proba(X));
}

/// A forest with isotonic calibration on held-out folds (CalibratedClassifierCV(method="isotonic")
/// semantics; see the file comment). Thread-safety: const members may be called concurrently; fit and
/// from_json need exclusive access.
class CalibratedClassifier {
 public:
  /// @throws ConfigError when a parameter is invalid.
  explicit CalibratedClassifier(ForestParams forest = {}, CalibrationParams calibration = {})
      : forest_params_(forest), calibration_(std::move(calibration)) {
    forest_params_.validate();
    calibration_.validate();
  }

  /// Fits one forest per stratified fold on its training part and the per-class isotonic calibrators on
  /// its held-out part. A class absent from a fold's training part gets probability 0 from that fold.
  /// @throws ValidationError as RandomForestClassifier::fit; ConfigError when there are fewer rows than folds.
  void fit(const Eigen::Ref<const Eigen::MatrixXd>& X, const std::vector<int>& labels, int n_classes = 0) {
    const int k = detail::check_labels(X, labels, n_classes);
    std::vector<Fold> folds;
    for (const Split& s : stratified_kfold(labels, calibration_.folds, calibration_.seed)) {
      const Eigen::MatrixXd Xt = take_rows(X, s.train), Xv = take_rows(X, s.validation);
      std::vector<int> yt, yv;
      for (Eigen::Index r : s.train) yt.push_back(labels[static_cast<std::size_t>(r)]);
      for (Eigen::Index r : s.validation) yv.push_back(labels[static_cast<std::size_t>(r)]);
      Fold fold{RandomForestClassifier(forest_params_), {}, {}};
      fold.forest.fit(Xt, yt, k);
      const Eigen::MatrixXd P = fold.forest.predict_proba(Xv);
      std::vector<char> seen(static_cast<std::size_t>(k), 0);
      for (int y : yt) seen[static_cast<std::size_t>(y)] = 1;
      for (int c = k == 2 ? 1 : 0; c < k; ++c) {
        fold.calibrated_class.push_back(c);
        IsotonicRegression iso;
        if (seen[static_cast<std::size_t>(c)]) {
          Eigen::VectorXd target(static_cast<Eigen::Index>(yv.size()));
          for (std::size_t i = 0; i < yv.size(); ++i) target(static_cast<Eigen::Index>(i)) = yv[i] == c ? 1.0 : 0.0;
          iso.fit(P.col(c), target);
        }
        fold.calibrators.push_back(std::move(iso));  // unfitted: the class was absent, probability 0
      }
      folds.push_back(std::move(fold));
    }
    folds_ = std::move(folds);
    n_classes_ = k;
  }

  bool fitted() const noexcept { return !folds_.empty(); }
  int n_classes() const noexcept { return n_classes_; }
  Eigen::Index n_features() const noexcept { return folds_.empty() ? 0 : folds_.front().forest.n_features(); }
  const ForestParams& forest_params() const noexcept { return forest_params_; }
  const CalibrationParams& calibration_params() const noexcept { return calibration_; }

  /// Calibrated class probabilities of one row into `out` (size n_classes).
  /// @throws ValidationError when the sizes are wrong or the model is not fitted.
  void predict_proba_into(const Eigen::Ref<const Eigen::VectorXd>& x, Eigen::Ref<Eigen::VectorXd> out) const {
    if (folds_.empty()) throw ValidationError("model", "the calibrated classifier is not fitted");
    if (out.size() != n_classes_) throw ValidationError("out", fmt::format("has size {}, expected {}", out.size(), n_classes_));
    out.setZero();
    Eigen::VectorXd raw(n_classes_), cal(n_classes_);
    for (const Fold& f : folds_) {
      f.forest.predict_proba_into(x, raw);
      cal.setZero();
      for (std::size_t i = 0; i < f.calibrators.size(); ++i)
        if (f.calibrators[i].fitted()) cal(f.calibrated_class[i]) = f.calibrators[i].predict(raw(f.calibrated_class[i]));
      if (n_classes_ == 2) {
        cal(0) = 1.0 - cal(1);
      } else {
        const double s = cal.sum();
        if (s > 0) cal /= s;
        else cal.setConstant(1.0 / n_classes_);
      }
      out += cal;
    }
    out /= static_cast<double>(folds_.size());
  }

  /// Calibrated class probabilities of one row.
  Eigen::VectorXd predict_proba_one(const Eigen::Ref<const Eigen::VectorXd>& x) const {
    Eigen::VectorXd p(n_classes_);
    predict_proba_into(x, p);
    return p;
  }

  /// Calibrated class probabilities, one row per row of X.
  Eigen::MatrixXd predict_proba(const Eigen::Ref<const Eigen::MatrixXd>& X) const {
    if (folds_.empty()) throw ValidationError("model", "the calibrated classifier is not fitted");
    Eigen::MatrixXd P(X.rows(), n_classes_);
    Eigen::VectorXd x(X.cols()), p(n_classes_);
    for (Eigen::Index r = 0; r < X.rows(); ++r) {
      x = X.row(r).transpose();
      predict_proba_into(x, p);
      P.row(r) = p.transpose();
    }
    return P;
  }

  /// Uncalibrated probabilities: the mean of the fold forests' probabilities (for comparisons).
  Eigen::MatrixXd predict_proba_uncalibrated(const Eigen::Ref<const Eigen::MatrixXd>& X) const {
    if (folds_.empty()) throw ValidationError("model", "the calibrated classifier is not fitted");
    Eigen::MatrixXd P = Eigen::MatrixXd::Zero(X.rows(), n_classes_);
    for (const Fold& f : folds_) P += f.forest.predict_proba(X);
    return P / static_cast<double>(folds_.size());
  }

  /// The most probable class of each row (lowest label on ties).
  std::vector<int> predict(const Eigen::Ref<const Eigen::MatrixXd>& X) const { return detail::argmax_rows(predict_proba(X)); }

  /// Mean of the fold forests' Gini importances (sums to 1).
  Eigen::VectorXd feature_importance() const {
    if (folds_.empty()) return {};
    Eigen::VectorXd s = Eigen::VectorXd::Zero(n_features());
    for (const Fold& f : folds_) s += f.forest.feature_importance();
    return s / static_cast<double>(folds_.size());
  }

  /// Full state: parameters and, per fold, the forest and the calibrators (null for an absent class).
  nlohmann::json to_json() const {
    nlohmann::json folds = nlohmann::json::array();
    for (const Fold& f : folds_) {
      nlohmann::json cals = nlohmann::json::array();
      for (const auto& c : f.calibrators) cals.push_back(c.fitted() ? c.to_json() : nlohmann::json());
      folds.push_back({{"forest", f.forest.to_json()}, {"calibrators", cals}});
    }
    return {{"kind", "calibrated_classifier"}, {"version", 1}, {"forest_params", forest_params_},
            {"calibration", calibration_}, {"n_classes", n_classes_}, {"folds", folds}};
  }

  /// Restores a model written by to_json. @throws ValidationError naming the field when malformed.
  static CalibratedClassifier from_json(const nlohmann::json& j, const std::string& path = "calibrated") {
    const nlohmann::json& kind = detail::field(j, path, "kind");
    if (kind != "calibrated_classifier")
      throw ValidationError(path + ".kind", fmt::format("{} is not \"calibrated_classifier\"", kind.dump()));
    detail::int_field(j, path, "version", 1, 1);
    const ForestParams fp = detail::read_forest_params(detail::field(j, path, "forest_params"), path + ".forest_params");
    const std::string cp_path = path + ".calibration";
    const nlohmann::json& cj = detail::field(j, path, "calibration");
    CalibrationParams cp;
    cp.folds = static_cast<int>(detail::int_field(cj, cp_path, "folds", 2, 100));
    const nlohmann::json& method = detail::field(cj, cp_path, "method");
    if (!method.is_string()) throw ValidationError(cp_path + ".method", fmt::format("expected a string, got {}", method.dump()));
    cp.method = method.get<std::string>();
    const nlohmann::json& seed = detail::field(cj, cp_path, "seed");
    if (!seed.is_number_integer() || (!seed.is_number_unsigned() && seed.get<long long>() < 0))
      throw ValidationError(cp_path + ".seed", fmt::format("expected a non-negative integer, got {}", seed.dump()));
    cp.seed = seed.get<std::uint64_t>();
    try {
      cp.validate(cp_path);
    } catch (const ConfigError& e) {
      detail::rethrow_as_validation(e);
    }
    CalibratedClassifier m(fp, cp);
    m.n_classes_ = static_cast<int>(detail::int_field(j, path, "n_classes", 1, 1 << 20));
    const nlohmann::json& folds = detail::field(j, path, "folds");
    if (!folds.is_array() || folds.size() != static_cast<std::size_t>(cp.folds))
      throw ValidationError(path + ".folds", fmt::format("expected an array of {} folds", cp.folds));
    for (std::size_t i = 0; i < folds.size(); ++i) {
      const std::string fp_path = fmt::format("{}.folds[{}]", path, i);
      Fold f{RandomForestClassifier::from_json(detail::field(folds[i], fp_path, "forest"), fp_path + ".forest"), {}, {}};
      if (f.forest.n_classes() != m.n_classes_)
        throw ValidationError(fp_path + ".forest.n_classes", fmt::format("{} differs from {}", f.forest.n_classes(), m.n_classes_));
      if (i > 0 && f.forest.n_features() != m.folds_.front().forest.n_features())
        throw ValidationError(fp_path + ".forest.n_features", "differs from the first fold's");
      const nlohmann::json& cals = detail::field(folds[i], fp_path, "calibrators");
      const std::size_t expected = m.n_classes_ == 2 ? 1 : static_cast<std::size_t>(m.n_classes_);
      if (!cals.is_array() || cals.size() != expected)
        throw ValidationError(fp_path + ".calibrators", fmt::format("expected an array of {} calibrators", expected));
      for (std::size_t c = 0; c < cals.size(); ++c) {
        f.calibrated_class.push_back(static_cast<Eigen::Index>(m.n_classes_ == 2 ? 1 : c));
        f.calibrators.push_back(cals[c].is_null() ? IsotonicRegression()
                                                  : IsotonicRegression::from_json(cals[c], fmt::format("{}.calibrators[{}]", fp_path, c)));
      }
      m.folds_.push_back(std::move(f));
    }
    return m;
  }

 private:
  struct Fold {
    RandomForestClassifier forest;
    std::vector<IsotonicRegression> calibrators;  // one per calibrated class
    std::vector<Eigen::Index> calibrated_class;
  };

  ForestParams forest_params_;
  CalibrationParams calibration_;
  std::vector<Fold> folds_;
  int n_classes_ = 0;
};

/// Accuracy and log loss over k stratified folds.
struct CvResult {
  double accuracy_mean = 0;
  double accuracy_std = 0;  ///< population standard deviation over folds (numpy.std, ddof 0)
  double log_loss_mean = 0; ///< mean over folds of -mean log max(p_true, 1e-15)
  std::vector<double> fold_accuracy;
  std::vector<double> fold_log_loss;
};

/// Stratified k-fold cross-validation of any model: `fit_predict(X_train, labels_train, X_validation)`
/// returns the validation rows' class probabilities (n_classes columns). Folds from
/// stratified_kfold(labels, folds, seed).
/// @throws ConfigError for bad folds; ValidationError for bad data or a wrongly shaped prediction.
///
///     auto cv = cross_validate(X, y, 3, 5, 42, [&](const auto& Xt, const auto& yt, const auto& Xv) {...});
template <class FitPredict>
CvResult cross_validate(const Eigen::Ref<const Eigen::MatrixXd>& X, const std::vector<int>& labels, int n_classes,
                        int folds, std::uint64_t seed, FitPredict&& fit_predict) {
  const int k = detail::check_labels(X, labels, n_classes);
  CvResult res;
  for (const Split& s : stratified_kfold(labels, folds, seed)) {
    const Eigen::MatrixXd Xt = take_rows(X, s.train), Xv = take_rows(X, s.validation);
    std::vector<int> yt;
    for (Eigen::Index r : s.train) yt.push_back(labels[static_cast<std::size_t>(r)]);
    const Eigen::MatrixXd P = fit_predict(static_cast<const Eigen::MatrixXd&>(Xt), static_cast<const std::vector<int>&>(yt),
                                          static_cast<const Eigen::MatrixXd&>(Xv));
    if (P.rows() != Xv.rows() || P.cols() != k)
      throw ValidationError("fit_predict", fmt::format("returned {}x{} probabilities, expected {}x{}", P.rows(), P.cols(), Xv.rows(), k));
    double correct = 0, loss = 0;
    const std::vector<int> pred = detail::argmax_rows(P);
    for (std::size_t i = 0; i < s.validation.size(); ++i) {
      const int y = labels[static_cast<std::size_t>(s.validation[i])];
      correct += pred[i] == y ? 1 : 0;
      loss -= std::log(std::max(P(static_cast<Eigen::Index>(i), y), 1e-15));
    }
    res.fold_accuracy.push_back(correct / static_cast<double>(s.validation.size()));
    res.fold_log_loss.push_back(loss / static_cast<double>(s.validation.size()));
  }
  const auto m = static_cast<double>(res.fold_accuracy.size());
  for (std::size_t i = 0; i < res.fold_accuracy.size(); ++i) {
    res.accuracy_mean += res.fold_accuracy[i] / m;
    res.log_loss_mean += res.fold_log_loss[i] / m;
  }
  for (double a : res.fold_accuracy) res.accuracy_std += (a - res.accuracy_mean) * (a - res.accuracy_mean) / m;
  res.accuracy_std = std::sqrt(res.accuracy_std);
  return res;
}

/// Cross-validation of an uncalibrated forest.
inline CvResult cross_validate(const ForestParams& params, const Eigen::Ref<const Eigen::MatrixXd>& X,
                               const std::vector<int>& labels, int folds = 5, std::uint64_t seed = 42) {
  const int k = detail::check_labels(X, labels, 0);
  return cross_validate(X, labels, k, folds, seed, [&](const Eigen::MatrixXd& Xt, const std::vector<int>& yt, const Eigen::MatrixXd& Xv) {
    RandomForestClassifier m(params);
    m.fit(Xt, yt, k);
    return m.predict_proba(Xv);
  });
}

/// Cross-validation of a calibrated forest (calibration folds nested inside each training part).
inline CvResult cross_validate(const ForestParams& params, const CalibrationParams& calibration,
                               const Eigen::Ref<const Eigen::MatrixXd>& X, const std::vector<int>& labels, int folds = 5,
                               std::uint64_t seed = 42) {
  const int k = detail::check_labels(X, labels, 0);
  return cross_validate(X, labels, k, folds, seed, [&](const Eigen::MatrixXd& Xt, const std::vector<int>& yt, const Eigen::MatrixXd& Xv) {
    CalibratedClassifier m(params, calibration);
    m.fit(Xt, yt, k);
    return m.predict_proba(Xv);
  });
}

/// One template and its calibrated probability.
struct TemplateScore {
  std::string template_id;
  double probability = 0;
};

/// Template selection as calibrated classification: context features -> template ids ranked by
/// calibrated probability. Thread-safety: const members may be called concurrently; fit and from_json
/// need exclusive access.
class TemplateClassifier {
 public:
  /// @throws ConfigError when a parameter is invalid.
  explicit TemplateClassifier(ForestParams forest = {}, CalibrationParams calibration = {})
      : model_(forest, std::move(calibration)) {}

  /// Fits on rows X (contexts) labelled with the template each should get. Templates are numbered in
  /// sorted order of their ids.
  /// @throws ValidationError (`template_ids: has 1 distinct template, need at least 2`, bad X) or
  ///         ConfigError (fewer rows than calibration folds).
  void fit(const Eigen::Ref<const Eigen::MatrixXd>& X, const std::vector<std::string>& template_ids) {
    if (static_cast<Eigen::Index>(template_ids.size()) != X.rows())
      throw ValidationError("template_ids", fmt::format("has {} values for {} rows of X", template_ids.size(), X.rows()));
    std::map<std::string, int> ids;
    for (std::size_t i = 0; i < template_ids.size(); ++i) {
      if (template_ids[i].empty()) throw ValidationError(fmt::format("template_ids[{}]", i), "is empty");
      ids.emplace(template_ids[i], 0);
    }
    if (ids.size() < 2)
      throw ValidationError("template_ids", fmt::format("has {} distinct template, need at least 2", ids.size()));
    std::vector<std::string> names;
    for (auto& [id, label] : ids) {
      label = static_cast<int>(names.size());
      names.push_back(id);
    }
    std::vector<int> labels;
    labels.reserve(template_ids.size());
    for (const std::string& id : template_ids) labels.push_back(ids.at(id));
    model_.fit(X, labels, static_cast<int>(names.size()));
    templates_ = std::move(names);
  }

  /// Every template with its calibrated probability for this context, most probable first (ties by id).
  /// @throws ValidationError when the context has the wrong size or the model is not fitted.
  std::vector<TemplateScore> predict_template(const Eigen::Ref<const Eigen::VectorXd>& context) const {
    const Eigen::VectorXd p = model_.predict_proba_one(context);
    std::vector<TemplateScore> out;
    out.reserve(templates_.size());
    for (std::size_t i = 0; i < templates_.size(); ++i) out.push_back({templates_[i], p(static_cast<Eigen::Index>(i))});
    std::sort(out.begin(), out.end(), [](const TemplateScore& a, const TemplateScore& b) {
      return a.probability != b.probability ? a.probability > b.probability : a.template_id < b.template_id;
    });
    return out;
  }

  /// Template ids; template i is class i of model().
  const std::vector<std::string>& templates() const noexcept { return templates_; }
  /// The calibrated forest underneath.
  const CalibratedClassifier& model() const noexcept { return model_; }
  /// Gini importance of each context feature (sums to 1).
  Eigen::VectorXd feature_importance() const { return model_.feature_importance(); }

  /// Stratified k-fold accuracy and log loss of this configuration on (X, template_ids).
  CvResult cross_validate(const Eigen::Ref<const Eigen::MatrixXd>& X, const std::vector<std::string>& template_ids,
                          int folds = 5, std::uint64_t seed = 42) const {
    if (static_cast<Eigen::Index>(template_ids.size()) != X.rows())
      throw ValidationError("template_ids", fmt::format("has {} values for {} rows of X", template_ids.size(), X.rows()));
    std::map<std::string, int> ids;
    for (const std::string& id : template_ids) ids.emplace(id, 0);
    int next = 0;
    for (auto& [id, label] : ids) label = next++;
    std::vector<int> labels;
    for (const std::string& id : template_ids) labels.push_back(ids.at(id));
    return models::cross_validate(model_.forest_params(), model_.calibration_params(), X, labels, folds, seed);
  }

  /// Full state as JSON.
  nlohmann::json to_json() const {
    return {{"kind", "template_classifier"}, {"version", 1}, {"templates", templates_}, {"model", model_.to_json()}};
  }

  /// Restores a classifier written by to_json. @throws ValidationError naming the field when malformed.
  static TemplateClassifier from_json(const nlohmann::json& j, const std::string& path = "template_classifier") {
    const nlohmann::json& kind = detail::field(j, path, "kind");
    if (kind != "template_classifier")
      throw ValidationError(path + ".kind", fmt::format("{} is not \"template_classifier\"", kind.dump()));
    detail::int_field(j, path, "version", 1, 1);
    const nlohmann::json& t = detail::field(j, path, "templates");
    if (!t.is_array()) throw ValidationError(path + ".templates", fmt::format("expected an array, got {}", t.type_name()));
    std::vector<std::string> names;
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (!t[i].is_string() || t[i].get<std::string>().empty())
        throw ValidationError(fmt::format("{}.templates[{}]", path, i), fmt::format("{} is not a non-empty string", t[i].dump()));
      names.push_back(t[i].get<std::string>());
      if (i > 0 && !(names[i - 1] < names[i]))
        throw ValidationError(fmt::format("{}.templates[{}]", path, i), fmt::format("\"{}\" is not after \"{}\"", names[i], names[i - 1]));
    }
    TemplateClassifier c;
    c.model_ = CalibratedClassifier::from_json(detail::field(j, path, "model"), path + ".model");
    if (static_cast<int>(names.size()) != c.model_.n_classes())
      throw ValidationError(path + ".templates", fmt::format("has {} templates for {} classes", names.size(), c.model_.n_classes()));
    c.templates_ = std::move(names);
    return c;
  }

  /// Full state as a binary blob (CBOR of to_json()), for the model store.
  std::vector<std::uint8_t> to_blob() const { return nlohmann::json::to_cbor(to_json()); }

  /// Restores a classifier from to_blob(). @throws ValidationError when the blob is not valid CBOR or malformed.
  static TemplateClassifier from_blob(const std::vector<std::uint8_t>& blob) {
    nlohmann::json j;
    try {
      j = nlohmann::json::from_cbor(blob);
    } catch (const nlohmann::json::exception& e) {
      throw ValidationError("blob", fmt::format("is not valid CBOR ({})", e.what()));
    }
    return from_json(j);
  }

 private:
  CalibratedClassifier model_;
  std::vector<std::string> templates_;
};

}  // namespace promptlearn::models
