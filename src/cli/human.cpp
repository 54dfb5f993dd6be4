// Readable (--human) output of the promptlearn command's subcommands: a text table and a generic
// renderer of JSON results.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cli.hpp"

namespace promptlearn::cli {

namespace {

using nlohmann::json;

/// `s` with control characters (newlines, tabs...) as spaces, so that a value stays on its line.
std::string one_line(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return out;
}

std::string pad_right(const std::string& s, std::size_t width) {
  const std::size_t w = display_width(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

std::string pad_left(const std::string& s, std::size_t width) {
  const std::size_t w = display_width(s);
  return w >= width ? s : std::string(width - w, ' ') + s;
}

bool is_scalar(const json& v) { return !v.is_object() && !v.is_array(); }

/// A value shown on the line of its key: scalars, arrays of scalars, empty arrays and objects.
bool is_inline(const json& v) {
  if (v.is_object()) return v.empty();
  if (v.is_array()) return std::all_of(v.begin(), v.end(), [](const json& e) { return is_scalar(e); });
  return true;
}

/// An object whose values are all non-empty objects of inline values (e.g. per-arm or per-stage
/// statistics): shown as a table with a "name" column.
bool is_keyed_table(const json& v) {
  if (!v.is_object() || v.empty()) return false;
  for (const auto& [k, e] : v.items()) {
    if (!e.is_object() || e.empty()) return false;
    for (const auto& [k2, f] : e.items())
      if (!is_inline(f)) return false;
  }
  return true;
}

bool all_objects(const json& arr) {
  return !arr.empty() && std::all_of(arr.begin(), arr.end(), [](const json& e) { return e.is_object(); });
}

/// Appends the cells of `obj` to `out` as (column, value), nested objects flattened to "a.b".
void flatten(const json& obj, const std::string& prefix, std::vector<std::pair<std::string, json>>& out) {
  for (const auto& [k, v] : obj.items()) {
    if (v.is_object() && !v.empty()) flatten(v, prefix + k + ".", out);
    else out.emplace_back(prefix + k, v);
  }
}

/// A table of `objects` (the union of their flattened keys as columns, in order of first appearance),
/// with a leading "name" column holding `names` when given.
TextTable make_table(const std::vector<const json*>& objects, const std::vector<std::string>* names) {
  std::vector<std::string> columns;
  if (names) columns.push_back("name");
  std::vector<std::vector<std::pair<std::string, json>>> cells;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    std::vector<std::pair<std::string, json>> row;
    if (names) row.emplace_back("name", (*names)[i]);
    if (objects[i]->is_object()) flatten(*objects[i], "", row);
    else row.emplace_back("value", *objects[i]);
    for (const auto& [k, v] : row)
      if (std::find(columns.begin(), columns.end(), k) == columns.end()) columns.push_back(k);
    cells.push_back(std::move(row));
  }
  TextTable t(columns);
  for (const auto& row : cells) {
    std::vector<json> values(columns.size(), json(""));
    for (const auto& [k, v] : row) {
      const auto at = std::find(columns.begin(), columns.end(), k) - columns.begin();
      values[static_cast<std::size_t>(at)] = v;  // a "name" field of a named object is shown once
    }
    t.add_row(values);
  }
  return t;
}

std::string rows_heading(const std::string& key, std::size_t n) {
  return fmt::format("{} ({} {})", key, n, n == 1 ? "row" : "rows");
}

void render_object(const json& obj, const std::string& indent, bool top, std::string& out);

/// The lines of one array that holds objects or arrays (not only scalars).
void render_array(const json& arr, const std::string& indent, std::string& out) {
  if (all_objects(arr)) {
    out += table_of(arr).str(indent);
    return;
  }
  std::size_t i = 0;
  for (const auto& e : arr) {
    ++i;
    if (is_inline(e)) {
      out += fmt::format("{}#{}  {}\n", indent, i, human_value(e));
    } else {
      out += fmt::format("{}#{}\n", indent, i);
      if (e.is_object()) render_object(e, indent + "  ", false, out);
      else render_array(e, indent + "  ", out);
    }
  }
}

void render_object(const json& obj, const std::string& indent, bool top, std::string& out) {
  std::size_t key_width = 0;
  for (const auto& [k, v] : obj.items())
    if (is_inline(v)) key_width = std::max(key_width, display_width(k));
  bool printed = false;
  for (const auto& [k, v] : obj.items()) {
    if (!is_inline(v)) continue;
    const std::string value = human_value(v, 24);
    out += indent + (value.empty() ? k : pad_right(k, key_width) + "  " + value) + "\n";
    printed = true;
  }
  for (const auto& [k, v] : obj.items()) {
    if (is_inline(v)) continue;
    if (top && printed) out += "\n";
    printed = true;
    if (v.is_object() && is_keyed_table(v)) {
      std::vector<std::string> names;
      std::vector<const json*> objects;
      for (const auto& [name, e] : v.items()) {
        names.push_back(name);
        objects.push_back(&e);
      }
      out += indent + k + "\n";
      out += make_table(objects, &names).str(indent + "  ");
    } else if (v.is_object()) {
      out += indent + k + "\n";
      render_object(v, indent + "  ", false, out);
    } else if (all_objects(v)) {
      out += indent + rows_heading(k, v.size()) + "\n";
      render_array(v, indent + "  ", out);
    } else {
      out += fmt::format("{}{} ({} items)\n", indent, k, v.size());
      render_array(v, indent + "  ", out);
    }
  }
}

}  // namespace

std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;  // not a UTF-8 continuation byte
  return n;
}

std::string elide(const std::string& s, std::size_t max) {
  if (display_width(s) <= max) return s;
  const std::size_t keep = max > 3 ? max - 3 : 0;
  std::size_t points = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (points == keep) break;
      ++points;
    }
  }
  return s.substr(0, i) + std::string(std::min<std::size_t>(max, 3), '.');
}

std::string human_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  const double a = std::fabs(v);
  if (a == 0) return "0";
  if (a < 1e-3) return fmt::format("{:.3g}", v);
  if (a < 1e3) return fmt::format("{:.3f}", v);
  if (a < 1e7) return fmt::format("{:.1f}", v);
  return fmt::format("{:.4g}", v);
}

std::string human_value(const json& v, std::size_t max_list) {
  switch (v.type()) {
    case json::value_t::null: return "-";
    case json::value_t::boolean: return v.get<bool>() ? "yes" : "no";
    case json::value_t::number_integer: return fmt::format("{}", v.get<std::int64_t>());
    case json::value_t::number_unsigned: return fmt::format("{}", v.get<std::uint64_t>());
    case json::value_t::number_float: return human_number(v.get<double>());
    case json::value_t::string: return one_line(v.get_ref<const std::string&>());
    case json::value_t::array: {
      if (v.empty()) return "none";
      if (!std::all_of(v.begin(), v.end(), [](const json& e) { return is_scalar(e); }))
        return fmt::format("{} items", v.size());
      std::string out;
      std::size_t i = 0;
      for (const auto& e : v) {
        if (i == max_list) {
          out += fmt::format(", ... ({} more)", v.size() - max_list);
          break;
        }
        out += (i++ ? ", " : "") + human_value(e, max_list);
      }
      return out;
    }
    case json::value_t::object: {
      if (v.empty()) return "none";
      std::string out;
      for (const auto& [k, e] : v.items()) out += (out.empty() ? "" : ", ") + k + " " + human_value(e, max_list);
      return out;
    }
    case json::value_t::binary: return fmt::format("{} bytes", v.get_binary().size());
    case json::value_t::discarded: break;
  }
  return "";
}

TextTable::TextTable(std::vector<std::string> header) : header_(std::move(header)) {}

TextTable& TextTable::add_row(const std::vector<json>& cells) {
  std::vector<Cell> row;
  row.reserve(header_.size());
  for (std::size_t i = 0; i < header_.size(); ++i) {
    if (i >= cells.size()) {
      row.push_back({});
      continue;
    }
    const json& c = cells[i];
    row.push_back({human_value(c, 8), c.is_number()});
  }
  rows_.push_back(std::move(row));
  return *this;
}

std::string TextTable::str(const std::string& indent, std::size_t max_cell) const {
  const std::size_t n = header_.size();
  std::vector<std::size_t> width(n, 0);
  std::vector<bool> numeric(n, false), other(n, false);
  std::vector<std::vector<std::string>> text(rows_.size(), std::vector<std::string>(n));
  for (std::size_t c = 0; c < n; ++c) width[c] = display_width(elide(header_[c], max_cell));
  for (std::size_t r = 0; r < rows_.size(); ++r) {
    for (std::size_t c = 0; c < n; ++c) {
      const Cell& cell = rows_[r][c];
      text[r][c] = elide(cell.text, max_cell);
      width[c] = std::max(width[c], display_width(text[r][c]));
      if (cell.number) numeric[c] = true;
      else if (!cell.text.empty() && cell.text != "-") other[c] = true;
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out = indent;
    for (std::size_t c = 0; c < n; ++c) {
      const bool right = numeric[c] && !other[c];
      const bool last = c + 1 == n;
      if (c) out += "  ";
      out += right ? pad_left(cells[c], width[c]) : last ? cells[c] : pad_right(cells[c], width[c]);
    }
    while (out.size() > indent.size() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::vector<std::string> head(n);
  for (std::size_t c = 0; c < n; ++c) head[c] = elide(header_[c], max_cell);
  std::string out = line(head);
  for (const auto& r : text) out += line(r);
  return out;
}

TextTable table_of(const json& rows) {
  std::vector<const json*> objects;
  for (const auto& e : rows) objects.push_back(&e);
  return make_table(objects, nullptr);
}

std::string render_human(const json& j, const std::string& indent) {
  std::string out;
  if (j.is_object()) render_object(j, indent, true, out);
  else if (j.is_array() && !is_inline(j)) render_array(j, indent, out);
  else out = indent + human_value(j, 24) + "\n";
  return out;
}

}  // namespace promptlearn::cli
