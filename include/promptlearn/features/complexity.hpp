#pragma once
/// @file Prompt complexity: components (code blocks, requirements, technical density) and the 1..10 score.
///
/// score = clamp(1 + 9 * (0.35 L + 0.30 R + 0.15 C + 0.20 T), 1, 10) with
///   L = min(1, ln(1 + tokens) / ln(1 + 4000))        length, log-scaled, saturating at 4000 tokens
///   R = 1 - exp(-requirements / 6)                    distinct requirements / constraints
///   C = 1 - exp(-code_blocks / 2)                     fenced and indented code blocks
///   T = min(1, technical_density / 0.25)              share of technical words
/// Each term is non-decreasing in its component, so the score is monotone in each; the weights sum to 1,
/// so the score spans exactly [1, 10].
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "promptlearn/features/detail/text.hpp"
#include "promptlearn/features/domain.hpp"
#include "promptlearn/features/keywords.hpp"

namespace promptlearn::features {

/// The measured inputs of the complexity score.
struct ComplexityComponents {
  std::int64_t tokens = 0;         ///< estimated BPE tokens
  int code_blocks = 0;             ///< ``` / ~~~ fenced blocks (an unclosed fence counts) + indented blocks
  int requirements = 0;            ///< bullet items + sentences that are imperative or carry a constraint
  double technical_density = 0.0;  ///< technical words / words, 0..1
};

/// The documented formula (file comment) applied to `c`.
inline double complexity_score(const ComplexityComponents& c) noexcept {
  const double tokens = static_cast<double>(std::max<std::int64_t>(c.tokens, 0));
  const double l = std::min(1.0, std::log1p(tokens) / std::log1p(4000.0));
  const double r = 1.0 - std::exp(-static_cast<double>(std::max(c.requirements, 0)) / 6.0);
  const double k = 1.0 - std::exp(-static_cast<double>(std::max(c.code_blocks, 0)) / 2.0);
  const double t = std::min(1.0, std::max(c.technical_density, 0.0) / 0.25);
  const double score = 1.0 + 9.0 * (0.35 * l + 0.30 * r + 0.15 * k + 0.20 * t);
  return std::clamp(score, 1.0, 10.0);
}

namespace detail {

/// Lower-case first word of `sentence` (letters and apostrophes), skipping leading non-letters; `end`
/// receives the offset just past it.
inline std::string first_word(std::string_view sentence, std::size_t& end) {
  std::size_t i = 0;
  while (i < sentence.size() && !is_lower(ascii_lower(sentence[i]))) ++i;
  std::string w;
  while (i < sentence.size() && (is_lower(ascii_lower(sentence[i])) || sentence[i] == '\'') && w.size() < 24) {
    w.push_back(ascii_lower(sentence[i]));
    ++i;
  }
  end = i;
  return w;
}

/// True if `w` is an imperative verb that usually opens an instruction.
inline bool is_imperative(std::string_view w) noexcept {
  constexpr std::string_view kVerbs[] = {
      "add",     "analyze", "answer",    "avoid",    "build",    "calculate", "change",   "check",
      "choose",  "compare", "convert",   "create",   "define",   "describe",  "design",   "determine",
      "develop", "do",      "don't",     "draft",    "edit",     "ensure",    "explain",  "extract",
      "find",    "fix",     "focus",     "format",   "generate", "give",      "identify", "implement",
      "include", "keep",    "limit",     "list",     "make",     "never",     "optimize", "organize",
      "outline", "prepare", "provide",   "refactor", "remove",   "replace",   "respond",  "return",
      "review",  "rewrite", "show",      "solve",    "sort",     "start",     "suggest",  "summarize",
      "tell",    "test",    "translate", "update",   "use",      "validate",  "verify",   "write"};
  for (auto v : kVerbs) {
    if (v == w) return true;
  }
  return false;
}

/// True if a lower-case word marks a constraint.
inline bool is_constraint_marker(std::string_view w) noexcept {
  constexpr std::string_view kMarkers[] = {"always", "avoid",   "cannot",  "don't",     "ensure",   "exactly",
                                           "must",   "never",   "only",    "require",   "required", "requires",
                                           "should", "without", "mustn't", "shouldn't", "least"};
  for (auto m : kMarkers) {
    if (m == w) return true;
  }
  return false;
}

/// True if the trimmed line is a bullet or numbered list item ("- x", "* x", "• x", "1. x", "2) x").
inline bool is_list_item(std::string_view t) noexcept {
  if (t.size() >= 2 && (t[0] == '-' || t[0] == '*' || t[0] == '+') && t[1] == ' ') return true;
  if (t.size() >= 4 && t.compare(0, 3, "\xE2\x80\xA2") == 0 && t[3] == ' ') return true;
  std::size_t d = 0;
  while (d < t.size() && d < 3 && is_digit(t[d])) ++d;
  return d > 0 && d + 1 < t.size() && (t[d] == '.' || t[d] == ')') && t[d + 1] == ' ';
}

/// True if a sentence holds a requirement: it opens with an imperative verb or contains a marker.
inline bool is_requirement_sentence(std::string_view sentence) {
  std::size_t end = 0;
  std::string first = first_word(sentence, end);
  if (first == "please") first = first_word(sentence.substr(end), end);
  if (is_imperative(first)) return true;
  bool found = false;
  for_each_word(sentence, [&](std::string_view w, bool) { found = found || is_constraint_marker(w); });
  return found;
}

/// True if the lower-case word counts as technical: a lexicon term of a technical domain or maths
/// with weight >= 1.5, or a code-like token (snake_case, camelCase, "::", "()", "->", a path).
inline bool is_technical_word(std::string_view raw) {
  bool inner_underscore = false;
  bool camel = false;
  for (std::size_t i = 1; i < raw.size(); ++i) {
    if (raw[i] == '_' && i + 1 < raw.size() && raw[i - 1] != '_') inner_underscore = true;
    if (is_upper(raw[i]) && is_lower(raw[i - 1])) camel = true;
  }
  if (inner_underscore || camel) return true;
  if (raw.find("::") != std::string_view::npos || raw.find("()") != std::string_view::npos ||
      raw.find("->") != std::string_view::npos) {
    return true;
  }
  const std::size_t slash = raw.find('/');
  if (slash != std::string_view::npos && raw.find('/', slash + 1) != std::string_view::npos &&
      raw.find("://") == std::string_view::npos) {
    return true;
  }
  bool technical = false;
  for_each_word(raw, [&](std::string_view w, bool) {
    const auto range = lexicon_range(w);
    for (std::size_t e = range.first; e < range.second; ++e) {
      const auto d = static_cast<Domain>(kLexicon[e].domain);
      if ((is_technical(d) || d == Domain::kMath) && kLexicon[e].weight >= 1.5) technical = true;
    }
  });
  return technical;
}

}  // namespace detail

/// Measures the complexity components of a sanitised text (see sanitize_text) whose token estimate is
/// `tokens`. Linear time.
inline ComplexityComponents analyze_complexity(std::string_view s, std::int64_t tokens) {
  ComplexityComponents c;
  c.tokens = tokens;
  bool in_fence = false;
  int indented_run = 0;  // non-blank indented lines in the current run
  auto close_run = [&]() {
    if (indented_run >= 2) ++c.code_blocks;
    indented_run = 0;
  };
  std::size_t pos = 0;
  while (pos <= s.size()) {
    std::size_t end = s.find('\n', pos);
    if (end == std::string_view::npos) end = s.size();
    const std::string_view line = s.substr(pos, end - pos);
    pos = end + 1;
    std::size_t k = 0;
    std::size_t indent = 0;
    while (k < line.size() && (line[k] == ' ' || line[k] == '\t')) {
      indent += line[k] == '\t' ? 4u : 1u;
      ++k;
    }
    const std::string_view t = line.substr(k);
    if (detail::starts_with(t, "```") || detail::starts_with(t, "~~~")) {
      close_run();
      if (!in_fence) ++c.code_blocks;
      in_fence = !in_fence;
      continue;
    }
    if (in_fence) continue;
    if (t.empty()) continue;  // blank lines neither start nor end an indented block
    if (detail::is_list_item(t)) {
      close_run();
      ++c.requirements;
      continue;
    }
    if (indent >= 4) {
      ++indented_run;
    } else {
      close_run();
    }
    // split the line into sentences at . ! ? ; followed by a space or the line end
    std::size_t start = 0;
    for (std::size_t i = 0; i <= t.size(); ++i) {
      const bool at_end = i == t.size();
      const bool stop = !at_end && (t[i] == '.' || t[i] == '!' || t[i] == '?' || t[i] == ';') &&
                        (i + 1 == t.size() || t[i + 1] == ' ');
      if (at_end || stop) {
        if (i > start && detail::is_requirement_sentence(t.substr(start, i - start))) ++c.requirements;
        start = i + 1;
      }
    }
  }
  close_run();
  // technical density over whitespace-separated words
  std::int64_t words = 0;
  std::int64_t technical = 0;
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    while (i < n && detail::is_ascii_space(s[i])) ++i;
    const std::size_t b = i;
    while (i < n && !detail::is_ascii_space(s[i])) ++i;
    if (i > b) {
      ++words;
      if (detail::is_technical_word(s.substr(b, i - b))) ++technical;
    }
  }
  c.technical_density = words > 0 ? static_cast<double>(technical) / static_cast<double>(words) : 0.0;
  return c;
}

}  // namespace promptlearn::features
