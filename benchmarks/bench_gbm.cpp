// promptlearn_bench gbm: the quality predictor's gradient-boosted trees (issue 5) on a regression CSV pair.
//
//   promptlearn_bench gbm --train FILE --test FILE --target NAME [--trees 200] [--depth 6] [--lr 0.1]
//                         [--early-stopping 1] [--seed 42] [--interval 1] [--baseline FILE]
//
// Both CSVs have a header row; every column but --target is a feature (same columns in both files).
// Printed, one JSON object per line ({"bench": "gbm", "impl": "promptlearn", "metric", "value", "unit"}):
//   test_r2, test_rmse       of GradientBoostedTrees (squared loss) on the test file;
//   train_seconds            fit() only (CSV reading excluded);
//   predict_us_per_row       predict_one() called row by row over the test rows (best of 5 passes);
//   predict_batch_us_per_row predict() on the whole test matrix;
//   trees_used               trees kept (early stopping on a 0.2 validation split is the library default;
//                            --early-stopping 0 fits all --trees on every row, as the sklearn baselines do);
// and with --interval 1 (default) the QualityPredictor's (three models) qp_train_seconds,
// interval_coverage (share of test targets inside the 0.9 interval), interval_mean_width and
// predict_quality_us_per_row.
// --baseline FILE takes the JSON lines of benchmarks/sklearn_gbm.py (run on the same files); each of our
// metrics that a baseline also reports is printed again per baseline with "baseline_impl", "baseline" and
// "ratio" (ours / theirs).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "promptlearn/models/gbm.hpp"
#include "bench_util.hpp"

namespace {

using promptlearn::bench::arg;
using promptlearn::bench::column_index;
using promptlearn::bench::parse_number;
using promptlearn::bench::split_csv_line;
using Clock = std::chrono::steady_clock;

using Table = promptlearn::bench::NumericCsv;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Baseline {
  std::string impl, metric;
  double value;
};

std::vector<Baseline> read_baselines(const std::string& path) {
  std::vector<Baseline> out;
  for (const nlohmann::json& j : promptlearn::bench::read_metric_lines(path))
    if (j.contains("impl")) out.push_back({j["impl"].get<std::string>(), j["metric"].get<std::string>(), j["value"].get<double>()});
  return out;
}

}  // namespace

int bench_gbm(int argc, char** argv) {
  const std::string train_path = arg(argc, argv, "train", ""), test_path = arg(argc, argv, "test", "");
  const std::string target = arg(argc, argv, "target", "");
  if (train_path.empty() || test_path.empty() || target.empty()) {
    std::cerr << "usage: promptlearn_bench gbm --train FILE --test FILE --target NAME [--trees 200] [--depth 6] "
                 "[--lr 0.1] [--early-stopping 1] [--seed 42] [--interval 1] [--baseline FILE]\n";
    return 2;
  }
  promptlearn::models::GbmParams params;
  params.n_trees = static_cast<int>(promptlearn::bench::arg_int(argc, argv, "trees", params.n_trees));
  params.max_depth = static_cast<int>(promptlearn::bench::arg_int(argc, argv, "depth", params.max_depth));
  params.learning_rate = std::stod(arg(argc, argv, "lr", "0.1"));
  params.early_stopping = promptlearn::bench::arg_int(argc, argv, "early-stopping", 1) != 0;
  params.seed = static_cast<std::uint64_t>(promptlearn::bench::arg_int(argc, argv, "seed", 42));
  params.validate();
  const bool interval = promptlearn::bench::arg_int(argc, argv, "interval", 1) != 0;
  const std::vector<Baseline> baselines = read_baselines(arg(argc, argv, "baseline", ""));

  const Table train = promptlearn::bench::read_numeric_csv(train_path, target), test = promptlearn::bench::read_numeric_csv(test_path, target);
  if (train.features != test.features) throw std::runtime_error(test_path + ": feature columns differ from " + train_path);
  const Eigen::Index n_test = test.X.rows();
  // Row-major copy so predict_one reads contiguous rows, as the engine's feature rows are.
  const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> test_rows = test.X;

  const nlohmann::json common = {{"bench", "gbm"},
                                 {"impl", "promptlearn"},
                                 {"rows_train", train.X.rows()},
                                 {"rows_test", n_test},
                                 {"features", train.X.cols()},
                                 {"trees", params.n_trees},
                                 {"depth", params.max_depth},
                                 {"lr", params.learning_rate},
                                 {"early_stopping", params.early_stopping}};
  auto emit = [&](const std::string& metric, double value, const std::string& unit) {
    nlohmann::json j = common;
    j["metric"] = metric;
    j["value"] = value;
    j["unit"] = unit;
    std::cout << j.dump() << std::endl;
    for (const Baseline& b : baselines)
      if (b.metric == metric) {
        nlohmann::json k = j;
        k["baseline_impl"] = b.impl;
        k["baseline"] = b.value;
        k["ratio"] = b.value != 0 ? value / b.value : 0.0;
        std::cout << k.dump() << std::endl;
      }
  };
  auto r2_rmse = [&](const Eigen::VectorXd& pred) {
    const double sse = (test.y - pred).squaredNorm();
    const double sst = (test.y.array() - test.y.mean()).matrix().squaredNorm();
    return std::pair{1 - sse / sst, std::sqrt(sse / static_cast<double>(n_test))};
  };
  // Single-row latency: best of 5 passes over the test rows (the minimum filters scheduler noise).
  auto per_row_us = [&](auto&& predict_row) {
    double best = 1e300, sink = 0;
    for (int pass = 0; pass < 5; ++pass) {
      const auto t0 = Clock::now();
      for (Eigen::Index r = 0; r < n_test; ++r) sink += predict_row(test_rows.data() + r * test_rows.cols());
      best = std::min(best, seconds_since(t0) * 1e6 / static_cast<double>(n_test));
    }
    if (!std::isfinite(sink)) throw std::runtime_error("non-finite prediction");
    return best;
  };

  promptlearn::models::GradientBoostedTrees gbm(params);
  auto t0 = Clock::now();
  gbm.fit(train.X, train.y);
  const double train_s = seconds_since(t0);
  t0 = Clock::now();
  const Eigen::VectorXd pred = gbm.predict(test.X);
  const double batch_us = seconds_since(t0) * 1e6 / static_cast<double>(n_test);
  const auto [r2, rmse] = r2_rmse(pred);
  const double single_us = per_row_us([&](const double* row) { return gbm.predict_one(row); });
  emit("test_r2", r2, "r2");
  emit("test_rmse", rmse, target);
  emit("train_seconds", train_s, "s");
  emit("predict_us_per_row", single_us, "us");
  emit("predict_batch_us_per_row", batch_us, "us");
  emit("trees_used", gbm.trees_used(), "trees");

  if (interval) {
    promptlearn::models::QualityPredictorParams qp_params;
    qp_params.gbm = params;
    promptlearn::models::QualityPredictor qp(qp_params);
    t0 = Clock::now();
    qp.fit(train.X, train.y);
    const double qp_s = seconds_since(t0);
    Eigen::Index inside = 0;
    double width = 0;
    for (Eigen::Index r = 0; r < n_test; ++r) {
      const auto q = qp.predict_quality(test_rows.data() + r * test_rows.cols());
      inside += test.y(r) >= q.ci_low && test.y(r) <= q.ci_high;
      width += q.ci_high - q.ci_low;
    }
    const double qp_us = per_row_us([&](const double* row) { return qp.predict_quality(row).ci_high; });
    emit("qp_train_seconds", qp_s, "s");
    emit("interval_coverage", static_cast<double>(inside) / static_cast<double>(n_test), "share");
    emit("interval_nominal", qp_params.interval_level, "share");
    emit("interval_mean_width", width / static_cast<double>(n_test), target);
    emit("predict_quality_us_per_row", qp_us, "us");
  }
  return 0;
}
