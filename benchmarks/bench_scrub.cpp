// promptlearn_bench scrub: throughput of the PII scrubber (issue 7) over the lines of a text file.
//
//   promptlearn_bench scrub --file FILE [--repeat 1]
//
// Printed, one JSON object per line ({"bench": "scrub", "metric", "value", "unit", ...}):
//   scrub_mb_s               privacy::scrub() line by line over every line (best of --repeat passes), with the
//                            plain copy of the same bytes as "baseline" (baseline_impl "copy") and "ratio";
//   scrub_mb_s_regex_subset  the same on the lines the regex baseline ran on, with a std::regex e-mail-only
//                            replacement (what people would write) as "baseline" and "ratio" (ours / theirs);
//                            libstdc++'s std::regex recurses per character and overflows the stack on long
//                            lines, so lines longer than 10,000 bytes are skipped for both and counted in
//                            "skipped_lines" / "skipped_bytes";
//   findings                 findings per kind on the whole file (one pass).
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "promptlearn/privacy/scrub.hpp"
#include "bench_util.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kRegexMaxLine = 10000;

/// Seconds of the fastest of `repeat` runs of `f`.
template <class F>
double best_of(int repeat, F&& f) {
  double best = 1e300;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

nlohmann::json line_of(const std::string& metric, double value, const std::string& unit) {
  return {{"bench", "scrub"}, {"impl", "promptlearn"}, {"metric", metric}, {"value", value}, {"unit", unit}};
}

}  // namespace

int bench_scrub(int argc, char** argv) {
  namespace pv = promptlearn::privacy;
  const std::string path = promptlearn::bench::arg(argc, argv, "file", "");
  const int repeat = static_cast<int>(std::max<long long>(1, promptlearn::bench::arg_int(argc, argv, "repeat", 1)));
  if (path.empty()) {
    std::cerr << "usage: promptlearn_bench scrub --file FILE [--repeat 1]\n";
    return 2;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::vector<std::string> lines, short_lines;
  std::size_t bytes = 0, short_bytes = 0;
  for (std::string line; std::getline(in, line);) {
    bytes += line.size() + 1;
    if (line.size() <= kRegexMaxLine) short_lines.push_back(line), short_bytes += line.size() + 1;
    lines.push_back(std::move(line));
  }
  if (lines.empty()) throw std::runtime_error(path + ": no lines");
  const double mb = static_cast<double>(bytes) / 1e6, short_mb = static_cast<double>(short_bytes) / 1e6;

  std::size_t sink = 0;
  auto copy_all = [&](const std::vector<std::string>& ls) {
    std::string out;
    for (const auto& l : ls) {
      out.assign(l);
      out.push_back('\n');
      sink += out.size();
    }
  };
  auto scrub_all = [&](const std::vector<std::string>& ls) {
    for (const auto& l : ls) sink += pv::scrub(l).text.size();
  };
  const std::regex email(R"([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})");
  auto regex_all = [&](const std::vector<std::string>& ls) {
    for (const auto& l : ls) sink += std::regex_replace(l, email, "[EMAIL]").size();
  };

  const double t_copy = best_of(repeat, [&] { copy_all(lines); });
  const double t_scrub = best_of(repeat, [&] { scrub_all(lines); });
  const double t_scrub_short = best_of(repeat, [&] { scrub_all(short_lines); });
  const double t_regex = best_of(repeat, [&] { regex_all(short_lines); });

  pv::PiiCounts counts{};
  for (const auto& l : lines)
    for (const auto& f : pv::find_pii(l)) ++counts[static_cast<std::size_t>(f.kind)];

  const double ours = mb / t_scrub, copy = mb / t_copy;
  nlohmann::json a = line_of("scrub_mb_s", ours, "MB/s");
  a["file"] = path, a["lines"] = lines.size(), a["bytes"] = bytes, a["repeat"] = repeat;
  a["baseline_impl"] = "copy", a["baseline"] = copy, a["ratio"] = ours / copy;
  std::cout << a.dump() << "\n";

  const double ours_short = short_mb / t_scrub_short, regex = short_mb / t_regex;
  nlohmann::json b = line_of("scrub_mb_s_regex_subset", ours_short, "MB/s");
  b["lines"] = short_lines.size(), b["bytes"] = short_bytes;
  b["skipped_lines"] = lines.size() - short_lines.size(), b["skipped_bytes"] = bytes - short_bytes;
  b["note"] = "std::regex (libstdc++) recurses per character and overflows the stack on long lines: lines over " +
              std::to_string(kRegexMaxLine) + " bytes are skipped for both implementations in this comparison";
  b["baseline_impl"] = "std::regex e-mail only", b["baseline"] = regex, b["ratio"] = ours_short / regex;
  std::cout << b.dump() << "\n";

  nlohmann::json c = line_of("findings", 0, "count");
  std::size_t total = 0;
  for (pv::PiiKind k : pv::kAllPiiKinds) {
    c[std::string(pv::to_string(k))] = counts[static_cast<std::size_t>(k)];
    total += counts[static_cast<std::size_t>(k)];
  }
  c["value"] = total;
  std::cout << c.dump() << "\n";
  if (sink == 42) std::cerr << "";  // keeps the measured work observable
  return 0;
}
