#pragma once
// Real prompts from a file for `promptlearn demo --prompts FILE`: CSV (RFC 4180: quoted fields, doubled
// quotes, line breaks inside quotes) with a header naming the prompt column, or JSON lines with the prompt
// in a known field. Errors name the file, the line and what is wrong.
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace promptlearn::cli {

/// Column / field names tried, in order, for the prompt text.
inline const std::vector<std::string>& prompt_field_names() {
  static const std::vector<std::string> kNames = {"prompt", "raw_prompt", "text", "question", "instruction", "content", "turns"};
  return kNames;
}

/// Splits CSV text into records of fields. @throws std::invalid_argument naming `path` and the line of an
/// unterminated quoted field.
inline std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  std::size_t line = 1, quote_line = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && field.empty()) {
      quoted = true;
      quote_line = line;
      any = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      ++line;
      if (any || !field.empty()) {
        row.push_back(std::move(field));
        rows.push_back(std::move(row));
      }
      row.clear();
      field.clear();
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  if (quoted) throw std::invalid_argument(fmt::format("{}:{}: a quoted CSV field is never closed", path, quote_line));
  if (any || !field.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

/// The prompts of a CSV or JSON-lines file (format from the extension: .csv, else JSON lines), empty
/// prompts skipped, each cut to `max_chars` bytes (at a UTF-8 boundary).
/// @throws std::invalid_argument naming the file (and line) when it cannot be read or holds no prompt.
inline std::vector<std::string> load_prompts(const std::string& path, std::size_t max_chars) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(fmt::format("option '--prompts': cannot read '{}'", path));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<std::string> out;
  auto keep = [&](std::string p) {
    if (p.find_first_not_of(" \t\r\n") == std::string::npos) return;
    if (p.size() > max_chars) {
      std::size_t cut = max_chars;
      while (cut > 0 && (static_cast<unsigned char>(p[cut]) & 0xC0) == 0x80) --cut;
      p.resize(cut);
    }
    out.push_back(std::move(p));
  };
  const bool csv = path.size() >= 4 && path.compare(path.size() - 4, 4, ".csv") == 0;
  if (csv) {
    const auto rows = parse_csv(text, path);
    if (rows.empty()) throw std::invalid_argument(fmt::format("{}: the CSV file is empty", path));
    std::size_t col = rows[0].size();
    for (const auto& name : prompt_field_names())
      for (std::size_t c = 0; c < rows[0].size() && col == rows[0].size(); ++c)
        if (rows[0][c] == name) col = c;
    if (col == rows[0].size())
      throw std::invalid_argument(fmt::format("{}:1: no prompt column in the header (expected one of: {})", path,
                                              fmt::join(prompt_field_names(), ", ")));
    for (std::size_t r = 1; r < rows.size(); ++r)
      if (col < rows[r].size()) keep(rows[r][col]);
  } else {
    std::istringstream lines(text);
    std::string line;
    std::size_t n = 0;
    while (std::getline(lines, line)) {
      ++n;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        throw std::invalid_argument(fmt::format("{}:{}: not a JSON object (expected JSON lines, or a .csv file)", path, n));
      bool found = false;
      for (const auto& name : prompt_field_names()) {
        auto it = j.find(name);
        if (it == j.end()) continue;
        if (it->is_string()) keep(it->get<std::string>());
        else if (it->is_array() && !it->empty() && (*it)[0].is_string()) keep((*it)[0].get<std::string>());
        else continue;
        found = true;
        break;
      }
      if (!found)
        throw std::invalid_argument(fmt::format("{}:{}: no prompt field (expected one of: {})", path, n,
                                                fmt::join(prompt_field_names(), ", ")));
    }
  }
  if (out.empty()) throw std::invalid_argument(fmt::format("{}: holds no prompt", path));
  return out;
}

}  // namespace promptlearn::cli
