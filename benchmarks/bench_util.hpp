#pragma once
// Helpers shared by the promptlearn_bench subcommands: option lookup and CSV reading.
#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace promptlearn::bench {

/// The value of `--key VALUE` (options start at argv[2]), or `fallback`.
inline std::string arg(int argc, char** argv, const std::string& key, const std::string& fallback) {
  for (int i = 2; i + 1 < argc; ++i)
    if (argv[i] == "--" + key) return argv[i + 1];
  return fallback;
}

/// The integer value of `--key N`, or `fallback`. @throws std::invalid_argument when it is not a number.
inline long long arg_int(int argc, char** argv, const std::string& key, long long fallback) {
  return std::stoll(arg(argc, argv, key, std::to_string(fallback)));
}

/// Splits one CSV line; double quotes may enclose a cell (with commas and "" escapes); cells are trimmed.
inline std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cells.back() += '"', ++i;
      else if (c == '"') quoted = false;
      else cells.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      cells.emplace_back();
    } else if (c != '\r') {
      cells.back() += c;
    }
  }
  for (std::string& s : cells) {
    const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    s = b == std::string::npos ? "" : s.substr(b, e - b + 1);
  }
  return cells;
}

/// "FILE: row R, column "C"" for error messages.
inline std::string where(const std::string& file, std::size_t row, const std::string& column) {
  return file + ": row " + std::to_string(row) + ", column \"" + column + "\"";
}

/// A cell as a finite number. @throws std::runtime_error naming the file, row, column and cell.
inline double parse_number(const std::string& cell, const std::string& file, std::size_t row, const std::string& column) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(cell, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (cell.empty() || used != cell.size() || !std::isfinite(v))
    throw std::runtime_error(where(file, row, column) + ": \"" + cell + "\" is not a finite number");
  return v;
}

/// The position of column `name` in `header`. @throws std::runtime_error listing the columns there are.
inline std::size_t column_index(const std::vector<std::string>& header, const std::string& name, const std::string& file) {
  const auto it = std::find(header.begin(), header.end(), name);
  if (it == header.end()) {
    std::string have;
    for (const std::string& h : header) have += (have.empty() ? "" : ", ") + h;
    throw std::runtime_error(file + ": no column named \"" + name + "\" (columns: " + have + ")");
  }
  return static_cast<std::size_t>(it - header.begin());
}

/// A CSV of numbers with a header: the `target` column apart, every other column a feature.
struct NumericCsv {
  std::vector<std::string> features;  ///< feature column names, in file order
  Eigen::MatrixXd X;
  Eigen::VectorXd y;
};

/// Reads a numeric CSV. @throws std::runtime_error naming the file, row and column of a bad cell.
inline NumericCsv read_numeric_csv(const std::string& path, const std::string& target) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error(path + ": empty file (expected a header row)");
  const std::vector<std::string> header = split_csv_line(line);
  const std::size_t t = column_index(header, target, path);
  NumericCsv tab;
  for (std::size_t c = 0; c < header.size(); ++c)
    if (c != t) tab.features.push_back(header[c]);
  std::vector<double> cells_x, cells_y;
  std::size_t row = 1;
  while (std::getline(in, line)) {
    ++row;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::vector<std::string> cells = split_csv_line(line);
    if (cells.size() != header.size())
      throw std::runtime_error(path + ": row " + std::to_string(row) + " has " + std::to_string(cells.size()) +
                               " cells, expected " + std::to_string(header.size()));
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const double v = parse_number(cells[c], path, row, header[c]);
      (c == t ? cells_y : cells_x).push_back(v);
    }
  }
  if (cells_y.empty()) throw std::runtime_error(path + ": no data rows");
  const auto n = static_cast<Eigen::Index>(cells_y.size()), d = static_cast<Eigen::Index>(tab.features.size());
  tab.X = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(cells_x.data(), n, d);
  tab.y = Eigen::Map<const Eigen::VectorXd>(cells_y.data(), n);
  return tab;
}

/// The JSON objects of a file of benchmark output lines that carry a numeric "metric" value (lines
/// without '{', such as a library's own log lines, are skipped); "" = none. For --baseline options.
/// @throws std::runtime_error when the file cannot be opened, nlohmann::json::parse_error on a bad line.
inline std::vector<nlohmann::json> read_metric_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  if (path.empty()) return out;
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find('{') == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("metric") && j.contains("value") && j["value"].is_number()) out.push_back(std::move(j));
  }
  return out;
}

}  // namespace promptlearn::bench
