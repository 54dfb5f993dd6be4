// promptlearn_bench forest: stratified k-fold evaluation of the random forest (100 trees, depth 10, seed 42)
// and of the isotonic-calibrated forest (CalibratedClassifierCV semantics, 5 calibration folds) on a CSV
// classification data set. The same protocol, on the same folds (--folds-out), is run for scikit-learn by
// benchmarks/sklearn_forest.py; compare the two outputs line by line.
//
//   promptlearn_bench forest --csv FILE --label NAME [--folds 5] [--seed 42] [--folds-out FILE]
//                            [--model forest|calibrated|all]
//
// One JSON line per model and metric, {"bench", "dataset", "model", "folds", "metric", "value", "unit"}:
//   cv_accuracy, cv_accuracy_std  mean and population std (numpy.std) of the fold accuracies
//   log_loss                      mean over folds of -mean log max(p_true, 1e-15)
//   ece                           top-label expected calibration error over all held-out rows (10 equal-width
//                                 bins of the top probability: sum_b n_b/n |accuracy_b - confidence_b|)
//   fit_seconds                   mean wall time of one fit on a fold's training part
//   predict_one_us                mean wall time of the probabilities of one held-out row
// --folds-out writes the fold (0..k-1) that holds out each data row, one per line in row order.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "promptlearn/models/forest.hpp"
#include "bench_util.hpp"

namespace {

using promptlearn::bench::arg;
using promptlearn::bench::column_index;
using promptlearn::bench::parse_number;
using promptlearn::bench::split_csv_line;
using Clock = std::chrono::steady_clock;

struct Table {
  Eigen::MatrixXd X;
  std::vector<int> y;  // 0 .. classes-1, the CSV's labels renumbered in sorted order
  int classes = 0;
};

/// The CSV with its label column renumbered 0 .. classes-1 in sorted order of the labels.
Table read_table(const std::string& path, const std::string& label_column) {
  const promptlearn::bench::NumericCsv csv = promptlearn::bench::read_numeric_csv(path, label_column);
  std::map<long long, int> ids;
  for (Eigen::Index r = 0; r < csv.y.size(); ++r) {
    if (csv.y(r) != std::floor(csv.y(r)))
      throw std::runtime_error(promptlearn::bench::where(path, static_cast<std::size_t>(r) + 2, label_column) + ": " +
                               std::to_string(csv.y(r)) + " is not an integer class");
    ids.emplace(static_cast<long long>(csv.y(r)), 0);
  }
  Table t;
  for (auto& [l, id] : ids) id = t.classes++;
  if (t.classes < 2) throw std::runtime_error(path + ": need at least 2 classes in \"" + label_column + "\"");
  t.X = csv.X;
  for (Eigen::Index r = 0; r < csv.y.size(); ++r) t.y.push_back(ids[static_cast<long long>(csv.y(r))]);
  return t;
}

double top_label_ece(const std::vector<Eigen::VectorXd>& probs, const std::vector<int>& labels) {
  std::vector<double> conf(10, 0), hit(10, 0);
  for (std::size_t i = 0; i < probs.size(); ++i) {
    Eigen::Index best = 0;
    const double top = probs[i].maxCoeff(&best);
    const auto b = static_cast<std::size_t>(std::min(9.0, std::floor(top * 10)));
    conf[b] += top;
    hit[b] += best == labels[i] ? 1 : 0;
  }
  double e = 0;
  for (std::size_t b = 0; b < 10; ++b) e += std::abs(hit[b] - conf[b]);
  return e / static_cast<double>(probs.size());
}

}  // namespace

int bench_forest(int argc, char** argv) {
  const std::string csv = arg(argc, argv, "csv", "");
  if (csv.empty()) {
    std::cerr << "usage: promptlearn_bench forest --csv FILE --label NAME [--folds 5] [--seed 42] [--folds-out FILE] "
                 "[--model forest|calibrated|all]\n";
    return 2;
  }
  const std::string label = arg(argc, argv, "label", "label");
  const int folds = static_cast<int>(promptlearn::bench::arg_int(argc, argv, "folds", 5));
  const auto seed = static_cast<std::uint64_t>(promptlearn::bench::arg_int(argc, argv, "seed", 42));
  const std::string which = arg(argc, argv, "model", "all");
  if (which != "all" && which != "forest" && which != "calibrated")
    throw std::runtime_error("--model: \"" + which + "\" is not one of forest, calibrated, all");
  const Table data = read_table(csv, label);
  std::string dataset = csv.substr(csv.find_last_of('/') == std::string::npos ? 0 : csv.find_last_of('/') + 1);
  if (dataset.size() > 4 && dataset.substr(dataset.size() - 4) == ".csv") dataset.resize(dataset.size() - 4);

  const std::vector<promptlearn::models::Split> splits = promptlearn::models::stratified_kfold(data.y, folds, seed);
  const std::string folds_out = arg(argc, argv, "folds-out", "");
  if (!folds_out.empty()) {
    std::vector<int> fold_of(data.y.size(), -1);
    for (std::size_t f = 0; f < splits.size(); ++f)
      for (Eigen::Index r : splits[f].validation) fold_of[static_cast<std::size_t>(r)] = static_cast<int>(f);
    std::ofstream out(folds_out);
    for (int f : fold_of) out << f << "\n";
    if (!out) throw std::runtime_error(folds_out + ": cannot write");
  }
  std::vector<int> held_labels;  // labels of the held-out rows in the order the folds visit them
  for (const auto& s : splits)
    for (Eigen::Index r : s.validation) held_labels.push_back(data.y[static_cast<std::size_t>(r)]);

  const promptlearn::models::ForestParams params;  // 100 trees, depth 10, sqrt(d) features, seed 42
  const promptlearn::models::CalibrationParams calibration;  // isotonic, 5 folds
  for (const std::string model : {"forest", "calibrated"}) {
    if (which != "all" && which != model) continue;
    double fit_seconds = 0, predict_seconds = 0;
    std::size_t predicted = 0;
    std::vector<Eigen::VectorXd> probs;
    auto evaluate = [&](const auto& m, const Eigen::MatrixXd& Xv) {
      Eigen::MatrixXd P(Xv.rows(), data.classes);
      Eigen::VectorXd x(Xv.cols()), p(data.classes);
      const auto t0 = Clock::now();
      for (Eigen::Index r = 0; r < Xv.rows(); ++r) {
        x = Xv.row(r).transpose();
        m.predict_proba_into(x, p);
        P.row(r) = p.transpose();
      }
      predict_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
      predicted += static_cast<std::size_t>(Xv.rows());
      for (Eigen::Index r = 0; r < P.rows(); ++r) probs.push_back(P.row(r).transpose());
      return P;
    };
    const promptlearn::models::CvResult cv = promptlearn::models::cross_validate(
        data.X, data.y, data.classes, folds, seed,
        [&](const Eigen::MatrixXd& Xt, const std::vector<int>& yt, const Eigen::MatrixXd& Xv) -> Eigen::MatrixXd {
          if (model == "forest") {
            promptlearn::models::RandomForestClassifier m(params);
            const auto t0 = Clock::now();
            m.fit(Xt, yt, data.classes);
            fit_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
            return evaluate(m, Xv);
          }
          promptlearn::models::CalibratedClassifier m(params, calibration);
          const auto t0 = Clock::now();
          m.fit(Xt, yt, data.classes);
          fit_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
          return evaluate(m, Xv);
        });
    const std::string name = model == "forest" ? "forest" : "calibrated_forest";
    auto emit = [&](const std::string& metric, double value, const std::string& unit) {
      nlohmann::json j = {{"bench", "forest"}, {"dataset", dataset}, {"model", name}, {"folds", folds},
                          {"metric", metric},  {"value", value},     {"unit", unit}};
      std::cout << j.dump() << std::endl;
    };
    emit("cv_accuracy", cv.accuracy_mean, "accuracy");
    emit("cv_accuracy_std", cv.accuracy_std, "accuracy");
    emit("log_loss", cv.log_loss_mean, "nats");
    emit("ece", top_label_ece(probs, held_labels), "probability");
    emit("fit_seconds", fit_seconds / folds, "s");
    emit("predict_one_us", predict_seconds / static_cast<double>(predicted) * 1e6, "us");
  }
  return 0;
}
