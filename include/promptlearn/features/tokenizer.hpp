#pragma once
/// @file Text normalisation and an approximate cl100k (GPT-3.5/4 BPE) token counter.
///
/// No BPE vocabulary is shipped or loaded: `estimate_tokens` runs an exact hand-written copy of the
/// cl100k pre-tokenizer (the split regex below) and then estimates how many BPE tokens each piece becomes.
///   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
///   \s+(?!\S)|\s+
/// Estimates per piece (see docs/features.md for the validation):
///   - contraction, digit group (1-3 digits): 1 token (exact);
///   - letter run: split at camelCase humps; a lower/capitalised hump of h letters costs 1 token if
///     h <= kWordChars, else 1 + ceil((h - kWordChars) / kPieceChars); an upper-case hump ceil(h / 4);
///     non-Latin scripts: 2-byte scripts (Cyrillic, Greek, Arabic, Hebrew...) ceil(n / 2), 3-byte
///     scripts (CJK, kana, Hangul, Indic) 1 per character, 4-byte characters 2 each;
///   - punctuation run: ASCII 1 + (m - 1) / 3, non-ASCII symbols 1 (3-byte) or 2 (4-byte, emoji) each;
///   - whitespace run: 1 + (len - 1) / 16.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "promptlearn/features/detail/text.hpp"

namespace promptlearn::features {

/// Letters in a word that still count as one BPE token (common English words up to this length are
/// single cl100k tokens).
inline constexpr std::size_t kWordChars = 8;
/// Letters per extra BPE token beyond kWordChars in long or rare words.
inline constexpr std::size_t kPieceChars = 5;

/// Stable 64-bit FNV-1a hash of a byte string; use it (never std::hash) for anything persisted.
/// Example: `fnv1a64("a") == 0xaf63dc4c8601ec8cULL`.
inline std::uint64_t fnv1a64(std::string_view s) noexcept { return detail::fnv1a64(s); }

/// The hash used for term buckets and feature hashing: fmix64(fnv1a64(s)). Plain FNV-1a's top bit is
/// biased on names sharing a prefix ("kw:..."), which would bias the hashing trick's signs.
/// Example: `stable_hash("a") == 0x82a2a958a9bece5bULL`.
inline std::uint64_t stable_hash(std::string_view s) noexcept { return detail::fmix64(detail::fnv1a64(s)); }

/// Makes any byte string valid UTF-8 without losing layout: invalid bytes become U+FFFD, CR LF and lone
/// CR become LF, vertical tab and form feed become a space, other C0/C1 controls, DEL, BOM and
/// zero-width spaces are dropped. Tabs, newlines and indentation are kept. Never throws except bad_alloc.
inline std::string sanitize_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    const std::size_t len = detail::decode_utf8(s, i, cp);
    if (cp == '\r') {
      out.push_back('\n');
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else if (cp == '\v' || cp == '\f') {
      out.push_back(' ');
    } else if (cp == '\t' || cp == '\n' || (cp >= 0x20 && cp < 0x7F)) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0xFEFF || cp == 0x200B) {
      // control character or invisible: dropped
    } else if (cp == detail::kReplacement && len == 1) {
      detail::append_utf8(out, detail::kReplacement);
    } else {
      out.append(s.data() + i, len);
    }
    i += len;
  }
  return out;
}

/// The `processed_input` form: sanitize_text, then every whitespace run collapsed to one character
/// ("\n" if the run contained a line break, else " "), then trimmed. Case is kept (keywords and the
/// domain classifier lower-case on their own). Example: `normalize_text("  a \t b\n\n c ") == "a b\nc"`.
inline std::string normalize_text(std::string_view s) {
  const std::string clean = sanitize_text(s);
  std::string out;
  out.reserve(clean.size());
  bool pending = false;
  bool pending_newline = false;
  for (std::size_t i = 0; i < clean.size();) {
    char32_t cp = 0;
    const std::size_t len = detail::decode_utf8(clean, i, cp);
    if (detail::is_space_cp(cp)) {
      pending = true;
      pending_newline = pending_newline || cp == '\n' || cp == 0x2028 || cp == 0x2029;
    } else {
      if (pending && !out.empty()) out.push_back(pending_newline ? '\n' : ' ');
      pending = false;
      pending_newline = false;
      out.append(clean, i, len);
    }
    i += len;
  }
  return out;
}

/// Number of Unicode code points (invalid bytes count one each).
inline std::int64_t count_code_points(std::string_view s) noexcept {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++n) {
    char32_t cp = 0;
    i += detail::decode_utf8(s, i, cp);
  }
  return n;
}

/// Number of whitespace-separated words (runs of non-whitespace code points).
inline std::int64_t count_words(std::string_view s) noexcept {
  std::int64_t n = 0;
  bool in_word = false;
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    i += detail::decode_utf8(s, i, cp);
    const bool space = detail::is_space_cp(cp);
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

namespace detail {

/// Estimated BPE tokens of an ASCII/Latin letter run [b, e) of `s` (byte offsets), split at camelCase humps.
inline std::int64_t latin_run_tokens(std::string_view s, std::size_t b, std::size_t e) noexcept {
  std::int64_t tokens = 0;
  std::size_t hump_start = b;
  std::size_t letters = 0;  // code points in the current hump
  bool all_upper = true;
  auto flush = [&]() {
    if (letters == 0) return;
    if (all_upper && letters > 1) {
      tokens += static_cast<std::int64_t>((letters + 3) / 4);
    } else if (letters <= kWordChars) {
      tokens += 1;
    } else {
      tokens += 1 + static_cast<std::int64_t>((letters - kWordChars + kPieceChars - 1) / kPieceChars);
    }
  };
  for (std::size_t i = b; i < e;) {
    char32_t cp = 0;
    const std::size_t len = decode_utf8(s, i, cp);
    const char c = s[i];
    const bool upper = len == 1 && is_upper(c);
    if (upper && letters > 0) {
      // a new hump starts at "aB" and at the last capital of "HTTPServer"
      const bool prev_lower = i > hump_start && is_lower(s[i - 1]);
      const bool next_lower = i + 1 < e && is_lower(s[i + 1]);
      if (prev_lower || (all_upper && next_lower && letters > 1)) {
        flush();
        hump_start = i;
        letters = 0;
        all_upper = true;
      }
    }
    if (!upper) all_upper = false;
    ++letters;
    i += len;
  }
  flush();
  return tokens;
}

/// Estimated BPE tokens of one letter run [b, e) (the \p{L}+ part of a pre-token).
inline std::int64_t letter_run_tokens(std::string_view s, std::size_t b, std::size_t e) noexcept {
  std::int64_t tokens = 0;
  std::size_t latin_start = e;  // start of the current Latin sub-run, e when none
  std::int64_t two_byte = 0;    // non-Latin 2-byte letters in the current sub-run
  auto flush_two_byte = [&]() {
    tokens += (two_byte + 1) / 2;
    two_byte = 0;
  };
  for (std::size_t i = b; i < e;) {
    char32_t cp = 0;
    const std::size_t len = decode_utf8(s, i, cp);
    const bool latin = cp < 0x250;  // ASCII, Latin-1 and Latin Extended letters
    if (latin) {
      if (two_byte > 0) flush_two_byte();
      if (latin_start == e) latin_start = i;
    } else {
      if (latin_start != e) {
        tokens += latin_run_tokens(s, latin_start, i);
        latin_start = e;
      }
      if (len == 2) {
        ++two_byte;
      } else {
        if (two_byte > 0) flush_two_byte();
        tokens += len >= 4 ? 2 : 1;
      }
    }
    i += len;
  }
  if (latin_start != e) tokens += latin_run_tokens(s, latin_start, e);
  if (two_byte > 0) flush_two_byte();
  return tokens;
}

}  // namespace detail

/// Approximate number of cl100k BPE tokens of `s` (see the file comment for the rules). Linear time,
/// total on arbitrary bytes (invalid UTF-8 bytes are single symbol characters). Examples (exact cl100k
/// counts in brackets): "Hello, world!" -> 4 [4], "2 + 2 = 4" -> 7 [7], "12345" -> 2 [2].
inline std::int64_t estimate_tokens(std::string_view s) noexcept {
  using detail::CharClass;
  const std::size_t n = s.size();
  std::int64_t tokens = 0;
  auto class_at = [&](std::size_t i, std::size_t* len = nullptr) {
    if (i >= n) return CharClass::kSpace;  // callers check bounds; harmless sentinel
    char32_t cp = 0;
    const std::size_t l = detail::decode_utf8(s, i, cp);
    if (len != nullptr) *len = l;
    return detail::classify(cp);
  };
  std::size_t i = 0;
  while (i < n) {
    std::size_t len = 0;
    const CharClass c = class_at(i, &len);
    // 1. contractions
    if (s[i] == '\'' && i + 1 < n) {
      const char a = detail::ascii_lower(s[i + 1]);
      const char b = i + 2 < n ? detail::ascii_lower(s[i + 2]) : '\0';
      std::size_t take = 0;
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
        take = 3;
      } else if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        take = 2;
      }
      if (take > 0) {
        tokens += 1;
        i += take;
        continue;
      }
    }
    // 2. [^\r\n\p{L}\p{N}]?\p{L}+
    std::size_t letters_begin = n;
    if (c == CharClass::kLetter) {
      letters_begin = i;
    } else if (c != CharClass::kNewline && c != CharClass::kDigit && i + len < n &&
               class_at(i + len) == CharClass::kLetter) {
      letters_begin = i + len;
    }
    if (letters_begin != n) {
      std::size_t j = letters_begin;
      while (j < n) {
        std::size_t l = 0;
        if (class_at(j, &l) != CharClass::kLetter) break;
        j += l;
      }
      tokens += detail::letter_run_tokens(s, letters_begin, j);
      i = j;
      continue;
    }
    // 3. \p{N}{1,3}
    if (c == CharClass::kDigit) {
      std::size_t j = i;
      while (j < n && j - i < 3 && detail::is_digit(s[j])) ++j;
      tokens += 1;
      i = j;
      continue;
    }
    // 4. " ?[^\s\p{L}\p{N}]+[\r\n]*"
    std::size_t punct_begin = n;
    if (c == CharClass::kOther) {
      punct_begin = i;
    } else if (s[i] == ' ' && i + 1 < n && class_at(i + 1) == CharClass::kOther) {
      punct_begin = i + 1;
    }
    if (punct_begin != n) {
      std::size_t j = punct_begin;
      std::int64_t ascii = 0;
      std::int64_t wide = 0;
      while (j < n) {
        std::size_t l = 0;
        if (class_at(j, &l) != CharClass::kOther) break;
        if (l == 1) {
          ++ascii;
        } else {
          wide += l >= 4 ? 2 : 1;
        }
        j += l;
      }
      while (j < n && (s[j] == '\n' || s[j] == '\r')) ++j;
      tokens += wide + (ascii > 0 ? 1 + (ascii - 1) / 3 : 0);
      i = j;
      continue;
    }
    // 5-7. whitespace: \s*[\r\n]+ | \s+(?!\S) | \s+
    std::size_t j = i;
    std::size_t last_newline = n;
    std::size_t last_start = i;  // start of the run's last code point
    std::size_t chars = 0;
    while (j < n) {
      std::size_t l = 0;
      const CharClass k = class_at(j, &l);
      if (k != CharClass::kSpace && k != CharClass::kNewline) break;
      if (k == CharClass::kNewline) last_newline = j;
      last_start = j;
      ++chars;
      j += l;
    }
    std::size_t end = j;
    if (last_newline != n) {
      end = last_newline + 1;  // \s*[\r\n]+ up to and including the last line break of the run
    } else if (j < n && chars > 1) {
      end = last_start;  // \s+(?!\S): leave the last whitespace character for the following piece
    }
    const auto run = static_cast<std::int64_t>(end - i);
    tokens += 1 + (run - 1) / 16;
    i = end;
  }
  return tokens;
}

}  // namespace promptlearn::features
