#pragma once
/// @file Byte-level text helpers shared by the feature extractor: UTF-8 decoding that never fails,
/// character classes approximating Unicode's \p{L} / \p{N}, ASCII case folding and FNV-1a hashing.
/// Everything here is linear, allocation-free (except where a string is returned) and noexcept.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace promptlearn::features::detail {

/// Replacement character emitted for invalid UTF-8 bytes.
inline constexpr char32_t kReplacement = 0xFFFD;

/// Decodes the code point at `s[i]`; returns its length in bytes (>= 1). Invalid, overlong, surrogate
/// or truncated sequences decode as U+FFFD of length 1, so every byte string can be scanned.
inline std::size_t decode_utf8(std::string_view s, std::size_t i, char32_t& cp) noexcept {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  std::size_t len = 0;
  char32_t min = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1Fu;
    min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0Fu;
    min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07u;
    min = 0x10000;
  } else {
    cp = kReplacement;
    return 1;
  }
  if (i + len > s.size()) {
    cp = kReplacement;
    return 1;
  }
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0u) != 0x80u) {
      cp = kReplacement;
      return 1;
    }
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    cp = kReplacement;
    return 1;
  }
  return len;
}

/// Appends the UTF-8 encoding of `cp` (assumed valid) to `out`.
inline void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Coarse character class used by the pre-tokenizer and the word scanners.
enum class CharClass { kLetter, kDigit, kSpace, kNewline, kOther };

/// True for the whitespace code points the scanners recognise (ASCII, NBSP, Unicode spaces, ideographic).
inline bool is_space_cp(char32_t cp) noexcept {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' || cp == 0xA0 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/// Classifies a code point. ASCII is exact; beyond ASCII, known punctuation/symbol blocks are kOther and
/// everything else counts as a letter (an approximation of \p{L} that needs no Unicode tables).
inline CharClass classify(char32_t cp) noexcept {
  if (cp == '\n' || cp == '\r') return CharClass::kNewline;
  if (is_space_cp(cp)) return CharClass::kSpace;
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::kLetter;
    if (cp >= '0' && cp <= '9') return CharClass::kDigit;
    return CharClass::kOther;
  }
  if (cp <= 0xBF) return CharClass::kOther;                    // C1 controls, Latin-1 punctuation
  if (cp == 0xD7 || cp == 0xF7) return CharClass::kOther;      // multiplication / division signs
  if (cp >= 0x2000 && cp <= 0x2BFF) return CharClass::kOther;  // punctuation, arrows, maths, boxes
  if (cp >= 0x3000 && cp <= 0x303F) return CharClass::kOther;  // CJK punctuation
  if (cp >= 0xFE00 && cp <= 0xFE0F) return CharClass::kOther;  // variation selectors
  if (cp >= 0xFF00 && cp <= 0xFF0F) return CharClass::kOther;  // full-width punctuation
  if (cp == kReplacement || cp == 0xFEFF) return CharClass::kOther;
  if (cp >= 0x1F000 && cp <= 0x1FAFF) return CharClass::kOther;  // emoji and pictographs
  return CharClass::kLetter;
}

/// ASCII lower-casing of one byte (other bytes unchanged).
inline char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

/// True for an ASCII upper-case letter.
inline bool is_upper(char c) noexcept { return c >= 'A' && c <= 'Z'; }
/// True for an ASCII lower-case letter.
inline bool is_lower(char c) noexcept { return c >= 'a' && c <= 'z'; }
/// True for an ASCII digit.
inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
/// True for ASCII horizontal or vertical whitespace.
inline bool is_ascii_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/// FNV-1a 64-bit hash (Fowler, Noll, Vo): stable across platforms, compilers and runs.
inline std::uint64_t fnv1a64(std::string_view s) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

/// MurmurHash3's 64-bit finaliser (fmix64): spreads FNV-1a's weakly mixed high and low bits so that
/// both a modulo index and the sign bit are close to uniform.
inline std::uint64_t fmix64(std::uint64_t h) noexcept {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace promptlearn::features::detail
