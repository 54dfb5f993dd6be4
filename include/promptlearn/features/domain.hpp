#pragma once
/// @file Transparent domain classifier: a weighted lexicon of words and short phrases plus code-likeness
/// signals, scored per domain; the best domain wins when its score reaches kMinDomainScore.
///
/// score(d) = sum over distinct matched lexicon entries e of d:  w_e * (1 + ln count_e)
///          + sum over signals s pointing at d:                  w_s * (1 + ln count_s)
/// confidence(d) = score(d) / (sum of all scores + kDomainPrior); "general" (no or weak signal) has
/// confidence kDomainPrior / (sum + kDomainPrior). The lexicon is detail/lexicon.hpp; the signals are
/// listed in domain_signals() below.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "promptlearn/features/detail/lexicon.hpp"
#include "promptlearn/features/detail/text.hpp"
#include "promptlearn/features/keywords.hpp"

namespace promptlearn::features {

/// Prompt domains. `kMath` and `kRoleplay` extend the specification's list: arithmetic/proof questions
/// and persona prompts ("act as", "pretend you are") are frequent and behave differently from research
/// and writing.
enum class Domain : int {
  kGeneral = 0,
  kProgramming,
  kWriting,
  kDataAnalysis,
  kDevops,
  kResearch,
  kMath,
  kRoleplay,
};

/// Number of Domain values.
inline constexpr int kDomainCount = 8;
/// Minimum winning score; below it the prompt is "general".
inline constexpr double kMinDomainScore = 3.0;
/// Pseudo-score of "general" in the confidence denominator.
inline constexpr double kDomainPrior = 2.0;

/// Wire name of a domain ("programming", "data_analysis", ...).
inline std::string_view domain_name(Domain d) noexcept {
  constexpr std::array<std::string_view, kDomainCount> kNames = {"general", "programming", "writing", "data_analysis",
                                                                 "devops",  "research",    "math",    "roleplay"};
  const int i = static_cast<int>(d);
  return (i >= 0 && i < kDomainCount) ? kNames[static_cast<std::size_t>(i)] : std::string_view("general");
}

/// Index (0..kDomainCount-1) of a wire name, or -1 if unknown.
inline int domain_index(std::string_view name) noexcept {
  for (int i = 0; i < kDomainCount; ++i) {
    if (domain_name(static_cast<Domain>(i)) == name) return i;
  }
  return -1;
}

/// True for the technical group: programming, devops, data_analysis.
inline bool is_technical(Domain d) noexcept {
  return d == Domain::kProgramming || d == Domain::kDevops || d == Domain::kDataAnalysis;
}

/// Result of classify_domain.
struct DomainResult {
  Domain domain = Domain::kGeneral;           ///< best domain, or general
  double confidence = 1.0;                    ///< 0..1, see the file comment
  std::array<double, kDomainCount> scores{};  ///< raw score per domain (general's is 0)
};

namespace detail {

/// Code-likeness signal counts of a text (see domain_signals).
struct SignalCounts {
  std::int64_t code_lines = 0;    ///< lines that look like source code
  std::int64_t code_symbols = 0;  ///< "()", "=>", "->", "::", "==", "!=", "&&", "||", "+=", "</"
  std::int64_t fences = 0;        ///< ``` fences
  std::int64_t shell_lines = 0;   ///< "$ cmd", "sudo ...", "kubectl ..."
  std::int64_t code_files = 0;    ///< name.py, main.cpp, ...
  std::int64_t ops_files = 0;     ///< *.yml, *.tf, *.sh, Dockerfile
  std::int64_t data_files = 0;    ///< *.csv, *.xlsx, *.parquet
  std::int64_t math_exprs = 0;    ///< "3 + 4", "x^2", "12/5"
};

inline bool starts_with(std::string_view s, std::string_view p) noexcept {
  return s.size() >= p.size() && s.compare(0, p.size(), p) == 0;
}

inline bool ends_with(std::string_view s, std::string_view p) noexcept {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

/// Classifies a lower-case file extension: 1 code, 2 ops, 3 data, 0 none.
inline int extension_kind(std::string_view ext) noexcept {
  constexpr std::string_view kCode[] = {"c",   "cc", "clj",  "cpp",   "cs",  "cxx",   "dart", "ex",  "go",  "h",
                                        "hpp", "hs", "java", "js",    "jsx", "kt",    "lua",  "m",   "php", "pl",
                                        "py",  "rb", "rs",   "scala", "sol", "swift", "ts",   "tsx", "vue", "zig"};
  constexpr std::string_view kOps[] = {"conf", "dockerfile", "ini", "service", "sh", "tf", "yaml", "yml"};
  constexpr std::string_view kData[] = {"csv", "ipynb", "parquet", "tsv", "xls", "xlsx"};
  for (auto e : kCode) {
    if (e == ext) return 1;
  }
  for (auto e : kOps) {
    if (e == ext) return 2;
  }
  for (auto e : kData) {
    if (e == ext) return 3;
  }
  return 0;
}

/// True for a line that looks like source code (after stripping indentation).
inline bool looks_like_code_line(std::string_view t) noexcept {
  constexpr std::string_view kStarts[] = {
      "def ",    "class ",  "import ", "#include", "function ", "return ",   "public ",   "private ",   "const ",
      "let ",    "var ",    "fn ",     "func ",    "package ",  "using ",    "template<", "template <", "console.",
      "print(",  "printf(", "if (",    "for (",    "while (",   "} else",    "elif ",     "async def ", "export ",
      "struct ", ">>> ",    "//",      "/*",       "#!/",       "for i in ", "int main",  "std::",      "self."};
  for (auto p : kStarts) {
    if (starts_with(t, p)) return true;
  }
  if (starts_with(t, "from ") && t.find(" import ") != std::string_view::npos) return true;
  // JSON / YAML-shaped structure ("key": {, lone braces) is data, not code
  const bool json_like = starts_with(t, "\"") || t.find("\":") != std::string_view::npos;
  return ends_with(t, ";") || (ends_with(t, "{") && !json_like && t.size() > 1) || ends_with(t, "):");
}

/// True for a shell command line.
inline bool looks_like_shell_line(std::string_view t) noexcept {
  constexpr std::string_view kStarts[] = {"$ ",    "sudo ",      "apt ",   "apt-get ", "docker ", "kubectl ",
                                          "helm ", "systemctl ", "chmod ", "curl ",    "ssh ",    "terraform "};
  for (auto p : kStarts) {
    if (starts_with(t, p)) return true;
  }
  return false;
}

/// Counts the code-likeness signals of `s` in one pass over its lines.
inline SignalCounts domain_signals(std::string_view s) {
  SignalCounts out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    std::size_t end = s.find('\n', pos);
    if (end == std::string_view::npos) end = s.size();
    std::string_view line = s.substr(pos, end - pos);
    std::size_t k = 0;
    while (k < line.size() && (line[k] == ' ' || line[k] == '\t')) ++k;
    std::string_view t = line.substr(k);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (starts_with(t, "```") || starts_with(t, "~~~")) {
      ++out.fences;
    } else if (looks_like_shell_line(t)) {
      ++out.shell_lines;
    } else if (looks_like_code_line(t)) {
      ++out.code_lines;
    }
    pos = end + 1;
  }
  const std::size_t n = s.size();
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const char a = s[i];
    const char b = s[i + 1];
    if ((a == '(' && b == ')') || (a == '=' && b == '>') || (a == '-' && b == '>') || (a == ':' && b == ':') ||
        (a == '=' && b == '=') || (a == '!' && b == '=') || (a == '&' && b == '&') || (a == '|' && b == '|') ||
        (a == '+' && b == '=') || (a == '<' && b == '/')) {
      ++out.code_symbols;
      ++i;
    }
  }
  // arithmetic: digit [space] op [space] digit, and letter^digit
  for (std::size_t i = 0; i < n; ++i) {
    const char op = s[i];
    if (op != '+' && op != '-' && op != '*' && op != '/' && op != '^' && op != '=') continue;
    std::size_t l = i;
    if (l > 0 && s[l - 1] == ' ') --l;
    std::size_t r = i + 1;
    if (r < n && s[r] == ' ') ++r;
    if (l == 0 || r >= n) continue;
    const char left = s[l - 1];
    const char right = s[r];
    if (detail::is_digit(right) && (detail::is_digit(left) || (op == '^' && (is_lower(left) || left == ')')))) {
      ++out.math_exprs;
    }
  }
  // file names: word.ext where ext is a known extension and the name part is non-empty
  for (std::size_t i = 0; i < n; ++i) {
    if (s[i] != '.' || i == 0) continue;
    const char prev = s[i - 1];
    if (!(detail::is_lower(prev) || detail::is_upper(prev) || detail::is_digit(prev) || prev == '_')) continue;
    std::size_t j = i + 1;
    std::string ext;
    while (j < n && j - i <= 10 && (detail::is_lower(s[j]) || detail::is_upper(s[j]) || detail::is_digit(s[j]))) {
      ext.push_back(ascii_lower(s[j]));
      ++j;
    }
    if (ext.empty() || j - i > 10) continue;
    if (j < n && (detail::is_lower(s[j]) || detail::is_upper(s[j]) || detail::is_digit(s[j]) || s[j] == '(')) continue;
    switch (extension_kind(ext)) {
      case 1:
        ++out.code_files;
        break;
      case 2:
        ++out.ops_files;
        break;
      case 3:
        ++out.data_files;
        break;
      default:
        break;
    }
  }
  return out;
}

/// Sublinear weight of a repeated match: 1 + ln(count), 0 for none.
inline double repeat_weight(std::int64_t count) noexcept {
  return count > 0 ? 1.0 + std::log(static_cast<double>(count)) : 0.0;
}

/// First lexicon entry of `term` and one past its last, as indices ({0, 0} when absent).
/// A hash index built once (immutable afterwards) makes the common case, a miss, one hash and no
/// string comparisons: classify_domain looks up every word, bigram and trigram of a prompt.
inline std::pair<std::size_t, std::size_t> lexicon_range(std::string_view term) noexcept {
  static const std::unordered_map<std::string_view, std::pair<std::size_t, std::size_t>> kIndex = [] {
    std::unordered_map<std::string_view, std::pair<std::size_t, std::size_t>> index;
    constexpr std::size_t n = sizeof(kLexicon) / sizeof(kLexicon[0]);
    for (std::size_t i = 0; i < n;) {
      std::size_t j = i;
      while (j < n && kLexicon[j].term == kLexicon[i].term) ++j;
      index.emplace(std::string_view(kLexicon[i].term), std::make_pair(i, j));
      i = j;
    }
    return index;
  }();
  auto it = kIndex.find(term);
  return it == kIndex.end() ? std::pair<std::size_t, std::size_t>{0, 0} : it->second;
}

}  // namespace detail

/// Classifies `text` (sanitised, any case) into a domain with a confidence; linear in its length.
/// Example: `classify_domain("Write a Python function that parses JSON").domain == Domain::kProgramming`.
inline DomainResult classify_domain(std::string_view text) {
  using detail::kLexicon;
  constexpr std::size_t kEntries = sizeof(kLexicon) / sizeof(kLexicon[0]);
  std::vector<std::int64_t> hits(kEntries, 0);
  std::string prev1;
  std::string prev2;  // empty when the phrase window was broken
  std::string phrase;
  auto count = [&](std::string_view term) {
    const auto range = detail::lexicon_range(term);
    for (std::size_t e = range.first; e < range.second; ++e) ++hits[e];
  };
  detail::for_each_word(text, [&](std::string_view w, bool broke) {
    if (broke) {
      prev1.clear();
      prev2.clear();
    }
    count(w);
    if (!prev1.empty()) {
      phrase.assign(prev1).append(" ").append(w);
      count(phrase);
      if (!prev2.empty()) {
        phrase.assign(prev2).append(" ").append(prev1).append(" ").append(w);
        count(phrase);
      }
    }
    prev2 = prev1;
    prev1.assign(w);
  });
  DomainResult out;
  for (std::size_t e = 0; e < kEntries; ++e) {
    if (hits[e] > 0)
      out.scores[static_cast<std::size_t>(kLexicon[e].domain)] += kLexicon[e].weight * detail::repeat_weight(hits[e]);
  }
  const detail::SignalCounts sig = detail::domain_signals(text);
  auto add = [&](Domain d, double w, std::int64_t c) {
    out.scores[static_cast<std::size_t>(d)] += w * detail::repeat_weight(c);
  };
  add(Domain::kProgramming, 2.0, sig.code_lines);
  add(Domain::kProgramming, 0.75, sig.code_symbols);
  add(Domain::kProgramming, 1.5, sig.fences);
  add(Domain::kProgramming, 1.5, sig.code_files);
  add(Domain::kDevops, 2.0, sig.shell_lines);
  add(Domain::kDevops, 1.5, sig.ops_files);
  add(Domain::kDataAnalysis, 1.5, sig.data_files);
  add(Domain::kMath, 1.5, sig.math_exprs);
  out.scores[0] = 0.0;
  double total = 0.0;
  std::size_t best = 0;
  for (std::size_t d = 1; d < out.scores.size(); ++d) {
    total += out.scores[d];
    if (out.scores[d] > out.scores[best]) best = d;  // ties: the lower index (fixed order) wins
  }
  if (best == 0 || out.scores[best] < kMinDomainScore) {
    out.domain = Domain::kGeneral;
    out.confidence = kDomainPrior / (total + kDomainPrior);
  } else {
    out.domain = static_cast<Domain>(best);
    out.confidence = out.scores[best] / (total + kDomainPrior);
  }
  return out;
}

}  // namespace promptlearn::features
