#pragma once
/// @file
/// Splitting rows for model training (layer 2, header-only, no I/O): a shuffled train/validation split,
/// k-fold and stratified k-fold, and the checks every model applies to its training data. Deterministic
/// given the seed.
///
///     auto split = promptlearn::models::train_validation_split(X.rows(), 0.2, 42);
///     for (const auto& fold : promptlearn::models::kfold(X.rows(), 5, 42)) { ... fold.train ... fold.validation ... }
#include <Eigen/Core>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <vector>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"

namespace promptlearn::models {

/// Row indices of one split: the rows to fit on and the rows held out.
struct Split {
  std::vector<Eigen::Index> train;
  std::vector<Eigen::Index> validation;
};

namespace detail {
inline std::vector<Eigen::Index> shuffled_rows(Eigen::Index n, std::uint64_t seed) {
  std::vector<Eigen::Index> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), Eigen::Index{0});
  Rng rng(seed);
  // Fisher-Yates on the engine's raw 64-bit draws (mt19937_64 is specified exactly; std::shuffle and
  // uniform_int_distribution are not, so their draws differ between standard libraries). An unbiased
  // draw in [0, i) by rejecting the 2^64 mod i lowest values.
  for (std::size_t i = idx.size(); i > 1; --i) {
    const std::uint64_t bound = i, reject_below = (0 - bound) % bound;
    std::uint64_t r = rng.next_u64();
    while (r < reject_below) r = rng.next_u64();
    std::swap(idx[i - 1], idx[static_cast<std::size_t>(r % bound)]);
  }
  return idx;
}
}  // namespace detail

/// A shuffled split with round(n * validation_fraction) rows held out (at least 1 and leaving at least 1
/// to train on). Both index lists are sorted.
/// @throws ConfigError when n < 2 or validation_fraction is outside (0, 1).
inline Split train_validation_split(Eigen::Index n, double validation_fraction, std::uint64_t seed) {
  if (n < 2) throw ConfigError("rows", fmt::format("{} rows cannot be split (need >= 2)", n));
  if (!(validation_fraction > 0 && validation_fraction < 1))
    throw ConfigError("validation_split", fmt::format("{} is outside (0, 1)", validation_fraction));
  const auto idx = detail::shuffled_rows(n, seed);
  const Eigen::Index held = std::clamp<Eigen::Index>(
      static_cast<Eigen::Index>(std::llround(static_cast<double>(n) * validation_fraction)), 1, n - 1);
  Split s;
  s.validation.assign(idx.begin(), idx.begin() + held);
  s.train.assign(idx.begin() + held, idx.end());
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.validation.begin(), s.validation.end());
  return s;
}

/// k folds of a shuffled order (`shuffle` false: contiguous blocks in row order); fold sizes differ by at
/// most one; every row is held out exactly once. Index lists are sorted.
/// @throws ConfigError when k < 2 or k > n.
inline std::vector<Split> kfold(Eigen::Index n, int k, std::uint64_t seed, bool shuffle = true) {
  if (k < 2) throw ConfigError("folds", fmt::format("{} is less than 2", k));
  if (n < k) throw ConfigError("folds", fmt::format("{} folds need at least {} rows, got {}", k, k, n));
  std::vector<Eigen::Index> idx;
  if (shuffle) idx = detail::shuffled_rows(n, seed);
  else {
    idx.resize(static_cast<std::size_t>(n));
    std::iota(idx.begin(), idx.end(), Eigen::Index{0});
  }
  std::vector<Split> folds(static_cast<std::size_t>(k));
  std::size_t start = 0;
  for (int f = 0; f < k; ++f) {
    const std::size_t size = static_cast<std::size_t>(n / k + (f < n % k ? 1 : 0));
    std::vector<char> held(static_cast<std::size_t>(n), 0);
    for (std::size_t i = start; i < start + size; ++i) held[static_cast<std::size_t>(idx[i])] = 1;
    for (Eigen::Index r = 0; r < n; ++r) (held[static_cast<std::size_t>(r)] ? folds[f].validation : folds[f].train).push_back(r);
    start += size;
  }
  return folds;
}

/// k folds in which each class is spread as evenly as possible (each class's shuffled rows dealt round
/// the folds in turn, continuing where the previous class stopped), as scikit-learn's StratifiedKFold
/// intends. Index lists are sorted.
/// @throws ConfigError when k < 2 or k > labels.size().
inline std::vector<Split> stratified_kfold(const std::vector<int>& labels, int k, std::uint64_t seed) {
  const auto n = static_cast<Eigen::Index>(labels.size());
  if (k < 2) throw ConfigError("folds", fmt::format("{} is less than 2", k));
  if (n < k) throw ConfigError("folds", fmt::format("{} folds need at least {} rows, got {}", k, k, n));
  const auto order = detail::shuffled_rows(n, seed);
  std::map<int, std::vector<Eigen::Index>> by_class;
  for (Eigen::Index r : order) by_class[labels[static_cast<std::size_t>(r)]].push_back(r);
  std::vector<int> fold_of(static_cast<std::size_t>(n), 0);
  int next = 0;
  for (const auto& [label, rows] : by_class)
    for (Eigen::Index r : rows) {
      fold_of[static_cast<std::size_t>(r)] = next;
      next = (next + 1) % k;
    }
  std::vector<Split> folds(static_cast<std::size_t>(k));
  for (Eigen::Index r = 0; r < n; ++r)
    for (int f = 0; f < k; ++f) (fold_of[static_cast<std::size_t>(r)] == f ? folds[f].validation : folds[f].train).push_back(r);
  return folds;
}

/// The rows `rows` of X (a copy), for fitting on a split.
inline Eigen::MatrixXd take_rows(const Eigen::Ref<const Eigen::MatrixXd>& X, const std::vector<Eigen::Index>& rows) {
  Eigen::MatrixXd out(static_cast<Eigen::Index>(rows.size()), X.cols());
  for (std::size_t i = 0; i < rows.size(); ++i) out.row(static_cast<Eigen::Index>(i)) = X.row(rows[i]);
  return out;
}

/// The entries `rows` of y (a copy).
inline Eigen::VectorXd take_values(const Eigen::Ref<const Eigen::VectorXd>& y, const std::vector<Eigen::Index>& rows) {
  Eigen::VectorXd out(static_cast<Eigen::Index>(rows.size()));
  for (std::size_t i = 0; i < rows.size(); ++i) out(static_cast<Eigen::Index>(i)) = y(rows[i]);
  return out;
}

/// Checks training data: at least one row, y with X's row count, every value finite.
/// @throws ValidationError naming the argument, the row and column, and the value
///         (`X[3][1]: nan is not a finite number`).
inline void check_training_data(const Eigen::Ref<const Eigen::MatrixXd>& X, const Eigen::Ref<const Eigen::VectorXd>& y) {
  if (X.rows() < 1) throw ValidationError("X", "has no rows");
  if (y.size() != X.rows())
    throw ValidationError("y", fmt::format("has {} values for {} rows of X", y.size(), X.rows()));
  for (Eigen::Index r = 0; r < X.rows(); ++r)
    for (Eigen::Index c = 0; c < X.cols(); ++c)
      if (!std::isfinite(X(r, c))) throw ValidationError(fmt::format("X[{}][{}]", r, c), fmt::format("{} is not a finite number", X(r, c)));
  for (Eigen::Index r = 0; r < y.size(); ++r)
    if (!std::isfinite(y(r))) throw ValidationError(fmt::format("y[{}]", r), fmt::format("{} is not a finite number", y(r)));
}

}  // namespace promptlearn::models
