#pragma once
// Small SVG helpers for `promptlearn report` (src/cli/report_cmd.cpp only): escaping, nice axis ticks,
// a plot frame with linear scales, and axes. Output is plain SVG text meant to be inlined in HTML.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

namespace promptlearn::cli::svg {

/// Text made safe for HTML/SVG element content and attribute values.
inline std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

/// At most `n` bytes of `s` without splitting a UTF-8 character, with "..." when cut.
inline std::string shorten(std::string_view s, std::size_t n) {
  if (s.size() <= n) return std::string(s);
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

/// A qualitative palette readable on white and by most colour-blind readers (Okabe-Ito, then Tableau).
inline const char* colour(std::size_t i) {
  static constexpr const char* kPalette[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
                                             "#F0E442", "#7F7F7F", "#8C564B", "#17BECF", "#BCBD22", "#9467BD"};
  return kPalette[i % (sizeof kPalette / sizeof kPalette[0])];
}

/// About `count` round tick values from at most lo to at least hi (steps of 1, 2 or 5 times a power of ten).
inline std::vector<double> nice_ticks(double lo, double hi, int count = 5) {
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / std::max(1, count);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  std::vector<double> ticks;
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  for (double i = first; i <= last && ticks.size() < 100; i += 1) ticks.push_back(i == 0 ? 0.0 : i * step);
  return ticks;
}

/// A tick value as short text ("0.25", "1200", "1.5k").
inline std::string tick_label(double v) {
  if (std::abs(v) >= 10000) return fmt::format("{:g}k", v / 1000);
  return fmt::format("{:g}", std::round(v * 1e6) / 1e6);
}

/// A plot area inside an SVG of width x height with linear x and y scales.
struct Frame {
  double width = 1100, height = 320;
  double left = 70, right = 180, top = 20, bottom = 50;  ///< margins (the right one holds the legend)
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;                 ///< data domain

  double plot_w() const { return width - left - right; }
  double plot_h() const { return height - top - bottom; }
  double x(double v) const { return left + (v - x0) / (x1 - x0) * plot_w(); }
  double y(double v) const { return top + plot_h() - (v - y0) / (y1 - y0) * plot_h(); }
  double y_clamped(double v) const { return std::clamp(y(v), top, top + plot_h()); }

  /// The opening tag with a title and description for screen readers.
  std::string open(std::string_view label) const {
    return fmt::format(
        "<svg class=\"chart\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
        "role=\"img\" aria-label=\"{2}\">\n",
        width, height, escape(label));
  }

  /// Horizontal grid lines with y tick labels and the y axis title.
  std::string y_axis(const std::vector<double>& ticks, std::string_view title,
                     std::string (*label)(double) = tick_label) const {
    std::string s;
    for (double t : ticks) {
      if (t < y0 - 1e-12 || t > y1 + 1e-12) continue;
      s += fmt::format("<line class=\"grid\" x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/>"
                       "<text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
                       left, left + plot_w(), y(t), y(t), left - 6, y(t) + 4, escape(label(t)));
    }
    s += fmt::format("<text class=\"axis-title\" transform=\"translate({:.1f},{:.1f}) rotate(-90)\" "
                     "text-anchor=\"middle\">{}</text>\n",
                     16.0, top + plot_h() / 2, escape(title));
    s += fmt::format("<line class=\"axis\" x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\"/>"
                     "<line class=\"axis\" x1=\"{0:.1f}\" x2=\"{3:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\"/>\n",
                     left, top, top + plot_h(), left + plot_w());
    return s;
  }

  /// One x tick (a short mark and its label under the axis).
  std::string x_tick(double v, std::string_view label) const {
    const double base = top + plot_h();
    return fmt::format("<line class=\"axis\" x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\"/>"
                       "<text class=\"tick\" x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
                       x(v), base, base + 5, base + 18, escape(label));
  }

  /// The x axis title under the ticks.
  std::string x_title(std::string_view title) const {
    return fmt::format("<text class=\"axis-title\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                       left + plot_w() / 2, height - 8, escape(title));
  }

  /// A legend entry (swatch and label) in the right margin; `row` counts from 0.
  std::string legend(std::size_t row, const char* fill, std::string_view label, bool line = false) const {
    const double lx = left + plot_w() + 16, ly = top + 6 + 18.0 * static_cast<double>(row);
    std::string sw = line ? fmt::format("<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
                                        "stroke-width=\"2.5\"/>",
                                        lx, lx + 14, ly + 5, ly + 5, fill)
                          : fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"12\" fill=\"{}\"/>", lx,
                                        ly - 1, fill);
    const std::string text = shorten(label, 24);
    return fmt::format("{}<text class=\"legend\" x=\"{:.1f}\" y=\"{:.1f}\">{}<title>{}</title></text>\n", sw, lx + 20,
                       ly + 9, escape(text), escape(label));
  }
};

/// A chart-sized box that says there is nothing to draw.
inline std::string no_data(double width, double height, std::string_view message) {
  return fmt::format(
      "<svg class=\"chart\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "role=\"img\" aria-label=\"no data\"><rect x=\"1\" y=\"1\" width=\"{2}\" height=\"{3}\" class=\"nodata-box\"/>"
      "<text class=\"nodata\" x=\"{4}\" y=\"{5}\" text-anchor=\"middle\">{6}</text></svg>\n",
      width, height, width - 2, height - 2, width / 2, height / 2, escape(message));
}

}  // namespace promptlearn::cli::svg
