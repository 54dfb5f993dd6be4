// promptlearn_bench anomaly: runs every streaming detector of patterns/anomaly.hpp over one series.
//
//   promptlearn_bench anomaly --csv FILE --value COL [--label COL] [--timestamp COL] [--scores-out FILE]
//
// The CSV has a header row; COL names a numeric column; the optional label column holds 0/1 (1 = the row
// lies in a labelled anomaly window); the optional timestamp column is read only for the contextual
// detector's key (hour of day, when the text looks like "2014-02-14 14:30:00" or RFC 3339) and is
// otherwise ignored. One JSON line per detector:
//   {"bench":"anomaly","detector":NAME,"points":N,"points_per_s":R[,"default":true]
//    [,"precision":P,"recall":R,"roc_auc":A,"windows":W,"windows_caught":C]}
// With --label:
// - precision / recall are point-wise, with each detector's own verdict at its default parameters
//   (RollingZScore |z| > 2, RollingMedianMad > 3.5, EWMA outside its 3-sigma limits, CUSUM sum > h,
//   the default detector's score > 5, the drift detectors' drift signals);
// - roc_auc needs no threshold: the Mann-Whitney statistic of the scores of labelled vs other rows, ties
//   counted half, a NaN score ("no opinion") ranked below every number;
// - windows_caught: labelled windows (maximal runs of 1s) in which some score exceeds the threshold that
//   0.2% of the unlabelled rows exceed (NaN never exceeds).
// --scores-out FILE writes the default detector's score of every row, one per line, in row order ("nan"
// for no opinion). Bad input (missing column, non-numeric value, label not 0/1) is an error naming the
// column and the row, exit code 1.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "promptlearn/patterns/anomaly.hpp"
#include "bench_util.hpp"

namespace {

using promptlearn::bench::arg;
using promptlearn::bench::column_index;
using promptlearn::bench::parse_number;
using promptlearn::bench::split_csv_line;
using promptlearn::bench::where;

namespace pp = promptlearn::patterns;
using Clock = std::chrono::steady_clock;

struct Series {
  std::vector<double> value;
  std::vector<int> label;          // empty without --label
  std::vector<std::string> stamp;  // empty without --timestamp
};

Series read_series(const std::string& file, const std::string& value_col, const std::string& label_col,
                   const std::string& stamp_col) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error(file + ": cannot open");
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error(file + ": empty file (expected a header row)");
  if (line.size() >= 3 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // UTF-8 BOM
  const std::vector<std::string> header = split_csv_line(line);
  const std::size_t vi = column_index(header, value_col, file);
  const std::size_t li = label_col.empty() ? 0 : column_index(header, label_col, file);
  const std::size_t ti = stamp_col.empty() ? 0 : column_index(header, stamp_col, file);
  Series s;
  std::size_t row = 1;  // the header is row 1
  while (std::getline(in, line)) {
    ++row;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::vector<std::string> cells = split_csv_line(line);
    if (cells.size() != header.size())
      throw std::runtime_error(file + ": row " + std::to_string(row) + " has " + std::to_string(cells.size()) +
                               " cells, expected " + std::to_string(header.size()));
    s.value.push_back(parse_number(cells[vi], file, row, value_col));
    if (!label_col.empty()) {
      const double l = parse_number(cells[li], file, row, label_col);
      if (l != 0 && l != 1) throw std::runtime_error(where(file, row, label_col) + ": \"" + cells[li] + "\" is not 0 or 1");
      s.label.push_back(static_cast<int>(l));
    }
    if (!stamp_col.empty()) s.stamp.push_back(cells[ti]);
  }
  if (s.value.empty()) throw std::runtime_error(file + ": no data rows");
  return s;
}

// Hour of day from "YYYY-MM-DD HH:MM[:SS]" or "YYYY-MM-DDTHH:MM..."; -1 when it does not look like that.
int hour_of(const std::string& stamp) {
  if (stamp.size() < 13 || (stamp[10] != ' ' && stamp[10] != 'T')) return -1;
  if (!std::isdigit(static_cast<unsigned char>(stamp[11])) || !std::isdigit(static_cast<unsigned char>(stamp[12]))) return -1;
  const int h = (stamp[11] - '0') * 10 + (stamp[12] - '0');
  return h < 24 ? h : -1;
}

// One detector run: score and verdict of every row.
struct Run {
  std::vector<double> score;
  std::vector<char> flag;
  double seconds = 0;
};

template <class Step>
Run run(const Series& s, Step step) {
  Run r;
  r.score.resize(s.value.size());
  r.flag.resize(s.value.size());
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < s.value.size(); ++i) {
    const pp::Verdict v = step(i, s.value[i]);
    r.score[i] = v.score;
    r.flag[i] = v.anomaly;
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

// Mann-Whitney AUC; NaN ranks below every number; ties count half.
double roc_auc(const std::vector<double>& score, const std::vector<int>& label) {
  std::vector<std::pair<double, int>> v;
  for (std::size_t i = 0; i < score.size(); ++i)
    v.emplace_back(std::isnan(score[i]) ? -std::numeric_limits<double>::infinity() : score[i], label[i]);
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  double pos = 0, neg = 0, rank_sum = 0;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    while (j < v.size() && v[j].first == v[i].first) ++j;
    const double mid = 0.5 * (static_cast<double>(i + 1) + static_cast<double>(j));  // average 1-based rank
    for (std::size_t k = i; k < j; ++k)
      if (v[k].second) rank_sum += mid, ++pos; else ++neg;
    i = j;
  }
  if (pos == 0 || neg == 0) return std::numeric_limits<double>::quiet_NaN();
  return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

// Labelled windows caught at a 0.2% false-alarm rate on the unlabelled rows.
std::pair<int, int> windows_caught(const std::vector<double>& score, const std::vector<int>& label) {
  const double ninf = -std::numeric_limits<double>::infinity();
  std::vector<double> normal;
  for (std::size_t i = 0; i < score.size(); ++i)
    if (!label[i]) normal.push_back(std::isnan(score[i]) ? ninf : score[i]);
  std::sort(normal.rbegin(), normal.rend());
  const std::size_t k = static_cast<std::size_t>(std::floor(0.002 * static_cast<double>(normal.size())));
  const double threshold = k < normal.size() ? normal[k] : ninf;
  int windows = 0, caught = 0;
  for (std::size_t i = 0; i < label.size();) {
    if (!label[i]) { ++i; continue; }
    bool hit = false;
    for (; i < label.size() && label[i]; ++i) hit = hit || (!std::isnan(score[i]) && score[i] > threshold);
    ++windows;
    caught += hit;
  }
  return {windows, caught};
}

pp::Verdict drift_verdict(const pp::DriftVerdict& d, double scale) {
  pp::Verdict v;
  v.score = d.statistic / scale;
  v.anomaly = d.drift;
  return v;
}

}  // namespace

int bench_anomaly(int argc, char** argv) {
  const std::string csv = arg(argc, argv, "csv", ""), value_col = arg(argc, argv, "value", "");
  if (csv.empty() || value_col.empty()) {
    std::cerr << "usage: promptlearn_bench anomaly --csv FILE --value COL [--label COL] [--timestamp COL] "
                 "[--scores-out FILE]\n";
    return 2;
  }
  const std::string label_col = arg(argc, argv, "label", ""), stamp_col = arg(argc, argv, "timestamp", "");
  const std::string scores_out = arg(argc, argv, "scores-out", "");
  const Series s = read_series(csv, value_col, label_col, stamp_col);

  // Drift detectors get the series' own scale so their defaults (made for rewards in [0, 1]) fit.
  promptlearn::RunningMoments m;
  for (double x : s.value) m.add(x);
  pp::Adwin::Params adwin_params;
  adwin_params.value_range = std::max(1e-12, 4 * m.stddev());

  struct Entry {
    std::string name;
    std::function<Run()> go;
  };
  const std::vector<Entry> detectors = {
      {"default", [&] { pp::DefaultAnomalyDetector d; return run(s, [&](std::size_t, double x) { return d.update(x); }); }},
      {"zscore", [&] { pp::RollingZScore d; return run(s, [&](std::size_t, double x) { return d.update(x); }); }},
      {"median_mad", [&] { pp::RollingMedianMad d; return run(s, [&](std::size_t, double x) { return d.update(x); }); }},
      {"ewma", [&] { pp::EwmaChart d; return run(s, [&](std::size_t, double x) { return d.update(x); }); }},
      {"cusum", [&] { pp::Cusum d; return run(s, [&](std::size_t, double x) { return d.update(x); }); }},
      {"contextual_hour", [&] {
         pp::ContextualAnomalyDetector d;
         return run(s, [&](std::size_t i, double x) {
           const int h = s.stamp.empty() ? -1 : hour_of(s.stamp[i]);
           return d.update(h < 0 ? "all" : std::to_string(h), x);
         });
       }},
      {"page_hinkley", [&] {
         pp::PageHinkley d;
         const double lambda = d.params().lambda;
         return run(s, [&](std::size_t, double x) { return drift_verdict(d.update(x), lambda); });
       }},
      {"adwin", [&] {
         pp::Adwin d(adwin_params);
         return run(s, [&](std::size_t, double x) { return drift_verdict(d.update(x), 1.0); });
       }},
  };
  for (const Entry& e : detectors) {
    const Run r = e.go();
    nlohmann::json j = {{"bench", "anomaly"},
                        {"detector", e.name},
                        {"points", s.value.size()},
                        {"points_per_s", r.seconds > 0 ? static_cast<double>(s.value.size()) / r.seconds : 0.0}};
    if (e.name == "default") j["default"] = true;
    if (!s.label.empty()) {
      double tp = 0, fp = 0, fn = 0;
      for (std::size_t i = 0; i < s.value.size(); ++i) {
        if (r.flag[i] && s.label[i]) ++tp;
        if (r.flag[i] && !s.label[i]) ++fp;
        if (!r.flag[i] && s.label[i]) ++fn;
      }
      j["precision"] = tp + fp > 0 ? tp / (tp + fp) : 0.0;
      j["recall"] = tp + fn > 0 ? tp / (tp + fn) : 0.0;
      const double auc = roc_auc(r.score, s.label);
      j["roc_auc"] = std::isnan(auc) ? nlohmann::json(nullptr) : nlohmann::json(auc);
      const auto [windows, caught] = windows_caught(r.score, s.label);
      j["windows"] = windows;
      j["windows_caught"] = caught;
    }
    std::cout << j.dump() << std::endl;
    if (e.name == "default" && !scores_out.empty()) {
      std::ofstream out(scores_out);
      if (!out) throw std::runtime_error(scores_out + ": cannot write");
      char buf[32];
      for (double v : r.score) {
        if (std::isnan(v)) {
          out << "nan\n";
        } else {
          std::snprintf(buf, sizeof buf, "%.17g", v);
          out << buf << '\n';
        }
      }
      if (!out) throw std::runtime_error(scores_out + ": write failed");
    }
  }
  return 0;
}
