// PII and secret scrubbing (issue 7): one linear scanner per kind, then overlap resolution and replacement.
// The rules and the reasons for them are in include/promptlearn/privacy/scrub.hpp.
#include "promptlearn/privacy/scrub.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>

#include "promptlearn/core/error.hpp"

namespace promptlearn::privacy {

namespace {

constexpr std::size_t npos = std::string_view::npos;

// ---- character classes (ASCII only: bytes >= 0x80 never belong to a match) ----
inline bool is_digit(unsigned char c) noexcept { return c >= '0' && c <= '9'; }
inline bool is_upper(unsigned char c) noexcept { return c >= 'A' && c <= 'Z'; }
inline bool is_lower(unsigned char c) noexcept { return c >= 'a' && c <= 'z'; }
inline bool is_alpha(unsigned char c) noexcept { return is_upper(c) || is_lower(c); }
inline bool is_alnum(unsigned char c) noexcept { return is_alpha(c) || is_digit(c); }
inline bool is_hex(unsigned char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
inline char to_lower(unsigned char c) noexcept { return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c); }
/// Characters of tokens, API keys and identifiers.
inline bool is_tok(unsigned char c) noexcept { return is_alnum(c) || c == '_' || c == '-'; }
/// Characters of the generic high-entropy run (base64, base64url); '=' only as trailing padding.
inline bool is_b64(unsigned char c) noexcept { return is_alnum(c) || c == '+' || c == '/' || c == '_' || c == '-'; }
inline bool is_space(unsigned char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (to_lower(static_cast<unsigned char>(a[i])) != to_lower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

bool istarts_with(std::string_view s, std::size_t at, std::string_view prefix) noexcept {
  return at <= s.size() && s.size() - at >= prefix.size() && iequals(s.substr(at, prefix.size()), prefix);
}

bool starts_with(std::string_view s, std::size_t at, std::string_view prefix) noexcept {
  return at <= s.size() && s.substr(at, prefix.size()) == prefix;
}

/// One match before overlap resolution; `rank` orders kinds by specificity (higher wins a tie in length).
struct Candidate {
  PiiKind kind;
  std::size_t begin, end;
  int rank;
};

enum Rank : int {
  kRankGeneric = 1,
  kRankHome = 2,
  kRankPhone = 3,
  kRankIpv4 = 4,
  kRankIpv6 = 5,
  kRankCard = 6,
  kRankEmail = 7,
  kRankToken = 8,
  kRankPem = 9,
};

/// The byte at i, or 0 past either end (i is unsigned: "before the start" is passed as npos).
inline unsigned char byte_at(std::string_view s, std::size_t i) noexcept {
  return i < s.size() ? static_cast<unsigned char>(s[i]) : 0;
}
inline unsigned char before(std::string_view s, std::size_t i) noexcept { return i == 0 ? 0 : byte_at(s, i - 1); }

// ---------------------------------------------------------------- e-mail
bool is_local_char(unsigned char c) noexcept {
  return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

bool known_tld(std::string_view tld) noexcept {
  if (tld.size() == 2) return true;  // country codes
  if (tld.size() > 4 && istarts_with(tld, 0, "xn--")) return true;
  static constexpr std::string_view kGeneric[] = {
      "com",  "org",     "net",    "edu",     "gov",      "mil",     "int",   "info",  "biz",     "io",
      "ai",   "dev",     "app",    "co",      "me",       "tech",    "xyz",   "online", "site",   "cloud",
      "email", "mail",   "name",   "pro",     "mobi",     "museum",  "travel", "jobs", "tel",     "asia",
      "cat",  "coop",    "aero",   "shop",    "store",    "blog",    "page",  "live",  "news",    "club",
      "design", "agency", "digital", "solutions", "systems", "software", "network", "company", "group",
      "global", "world",  "today",  "space",   "website",  "host",    "link",  "one",   "top",     "work",
      "life", "studio",  "media",  "ltd",     "inc",      "llc",     "law",   "health", "finance", "money",
      "bank", "capital", "consulting", "services", "support", "academy", "school", "university", "team",
      "zone", "codes",   "engineering", "science", "art",   "fun",     "icu",   "vip",   "win",     "ninja",
      "guru", "expert",  "center", "city",    "family",   "social",  "tv",    "fm",    "gmbh",    "ag"};
  for (std::string_view g : kGeneric)
    if (iequals(tld, g)) return true;
  return false;
}

void scan_email(std::string_view s, std::vector<Candidate>& out) {
  std::size_t pos = 0;
  while ((pos = s.find('@', pos)) != npos) {
    const std::size_t at = pos++;
    // local part, backwards, at most 64 characters
    std::size_t b = at;
    while (b > 0 && at - b < 64 && is_local_char(static_cast<unsigned char>(s[b - 1]))) --b;
    if (b > 0 && is_local_char(static_cast<unsigned char>(s[b - 1]))) continue;  // longer than 64
    while (b < at && !is_alnum(static_cast<unsigned char>(s[b])) && s[b] != '_') ++b;
    if (b == at || s[at - 1] == '.') continue;
    // domain labels, forwards, at most 253 characters
    std::size_t e = at + 1;
    std::vector<std::pair<std::size_t, std::size_t>> labels;
    while (e < s.size() && e - at <= 253) {
      std::size_t q = e;
      while (q < s.size() && q - e < 63 && (is_alnum(byte_at(s, q)) || s[q] == '-')) ++q;
      if (q == e || !is_alnum(byte_at(s, e)) || !is_alnum(byte_at(s, q - 1))) break;
      if (is_alnum(byte_at(s, q)) || byte_at(s, q) == '-') break;  // label longer than 63
      labels.emplace_back(e, q);
      if (byte_at(s, q) == '.' && is_alnum(byte_at(s, q + 1))) {
        e = q + 1;
        continue;
      }
      break;
    }
    // the rightmost label that has a TLD shape, with at least one label before it
    std::size_t end = npos;
    for (std::size_t k = labels.size(); k >= 2; --k) {
      const std::string_view tld = s.substr(labels[k - 1].first, labels[k - 1].second - labels[k - 1].first);
      bool alpha = tld.size() >= 2 && tld.size() <= 24;
      for (unsigned char c : tld) alpha = alpha && (is_alpha(c) || (tld.size() > 4 && (is_digit(c) || c == '-')));
      if (alpha && known_tld(tld)) {
        end = labels[k - 1].second;
        break;
      }
    }
    if (end == npos) continue;
    const unsigned char next = byte_at(s, end);
    if (next == '@' || next == '_' || (next == '-' && is_alnum(byte_at(s, end + 1)))) continue;
    out.push_back({PiiKind::email, b, end, kRankEmail});
    pos = end;
  }
}


// ---------------------------------------------------------------- phone
struct DigitGroup {
  std::size_t begin, end;  // digits only (without parentheses)
  char sep_before;         // '-', '.', ' ', ')' (directly after a parenthesised group) or 0 for the first
  bool paren;
};

/// Digit groups from `pos` joined by single separators ("-", ".", " ") or parentheses, at most 8 groups
/// and 32 bytes; returns false when there are more (the number goes on: a version, a list, a table).
bool read_groups(std::string_view s, std::size_t pos, std::vector<DigitGroup>& groups, std::size_t& end) {
  groups.clear();
  const std::size_t start = pos;
  char sep = 0;
  while (true) {
    bool paren = false;
    std::size_t p = pos;
    if (byte_at(s, p) == '(') paren = true, ++p;
    std::size_t q = p;
    while (is_digit(byte_at(s, q)) && q - p <= 12) ++q;
    if (q == p || (paren && byte_at(s, q) != ')')) break;
    if (groups.size() == 8 || q - start > 32) return false;
    groups.push_back({p, q, sep, paren});
    pos = paren ? q + 1 : q;
    end = q;
    const unsigned char c = byte_at(s, pos);
    if ((c == '-' || c == '.' || c == ' ') && (is_digit(byte_at(s, pos + 1)) || byte_at(s, pos + 1) == '(')) {
      sep = static_cast<char>(c);
      ++pos;
    } else if (paren && is_digit(c)) {
      sep = ')';
    } else {
      break;
    }
  }
  if (groups.empty()) return false;
  end = groups.back().paren ? groups.back().end + 1 : groups.back().end;
  return true;
}

std::size_t digits_in(const std::vector<DigitGroup>& g) {
  std::size_t n = 0;
  for (const auto& x : g) n += x.end - x.begin;
  return n;
}

bool group_is(const DigitGroup& g, std::size_t len) { return g.end - g.begin == len; }

/// North American (NANP) shapes from group `k`: (ddd) ddd-dddd, ddd-ddd-dddd, ddd.ddd.dddd.
bool nanp_shape(std::string_view s, const std::vector<DigitGroup>& g, std::size_t k) {
  if (g.size() != k + 3 || !group_is(g[k], 3) || !group_is(g[k + 1], 3) || !group_is(g[k + 2], 4)) return false;
  if (g[k + 1].paren || g[k + 2].paren) return false;
  const unsigned char area = byte_at(s, g[k].begin);
  if (area < '2') return false;
  const char s1 = g[k + 1].sep_before, s2 = g[k + 2].sep_before;
  if (g[k].paren) return (s1 == ' ' || s1 == ')') && (s2 == '-' || s2 == ' ' || s2 == '.');
  return s1 == s2 && (s1 == '-' || s1 == '.');
}

bool all_seps(const std::vector<DigitGroup>& g, char sep) {
  for (std::size_t i = 1; i < g.size(); ++i)
    if (g[i].sep_before != sep || g[i].paren) return false;
  return !g[0].paren;
}

bool phone_shape(std::string_view s, const std::vector<DigitGroup>& g, bool plus) {
  const std::size_t n = digits_in(g);
  if (plus) {  // +CC ...: E.164, 8-15 digits; grouped numbers start with a 1-3 digit country code
    if (n < 8 || n > 15) return false;
    if (g.size() == 1) return n >= 10;
    if (g[0].paren || g[0].end - g[0].begin > 3) return false;
    return g.back().end - g.back().begin >= 2;
  }
  if (byte_at(s, g[0].begin) == '0' && byte_at(s, g[0].begin + 1) == '0' && !g[0].paren && g.size() >= 3) {
    // 00CC ...: the international prefix written out
    const std::size_t l0 = g[0].end - g[0].begin;
    return l0 >= 3 && l0 <= 5 && n >= 10 && n <= 17 && g.back().end - g.back().begin >= 2;
  }
  if (nanp_shape(s, g, 0)) return true;
  if (g.size() == 4 && group_is(g[0], 1) && byte_at(s, g[0].begin) == '1' && !g[0].paren &&
      (g[1].sep_before == '-' || g[1].sep_before == ' ' || g[1].sep_before == '.') && nanp_shape(s, g, 1))
    return true;
  if (byte_at(s, g[0].begin) != '0') return false;
  // national shapes with a trunk 0: 01 23 45 67 89 / 020 7946 0958 / 0161 496 0000 / 07700 900123
  const char sep = g.size() > 1 ? g[1].sep_before : 0;
  if (g.size() == 5 && (sep == ' ' || sep == '.' || sep == '-') && all_seps(g, sep)) {
    for (const auto& x : g)
      if (!group_is(x, 2)) return false;
    return true;
  }
  if (sep != ' ' || !all_seps(g, ' ')) return false;
  if (g.size() == 3)
    return (group_is(g[0], 3) && group_is(g[1], 4) && group_is(g[2], 4)) ||
           (group_is(g[0], 4) && group_is(g[1], 3) && group_is(g[2], 4));
  return g.size() == 2 && group_is(g[0], 5) && group_is(g[1], 6);
}

void scan_phone(std::string_view s, std::vector<Candidate>& out) {
  std::vector<DigitGroup> groups;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (!(is_digit(c) || c == '+' || c == '(')) continue;
    const unsigned char p = before(s, i);
    if (is_alnum(p) || p == '_' || p == '.' || p == '-' || p == '+' || p == '/' || p == ':' || p == '#' ||
        p == '$' || p == ')' || p == ',' || p == '=' || p == '^' || p == '*')
      continue;
    const bool plus = c == '+';
    if (plus && !is_digit(byte_at(s, i + 1))) continue;
    std::size_t end = 0;
    if (!read_groups(s, plus ? i + 1 : i, groups, end)) {
      // skip the rest of this number so that its inner digits are not tried as starts
      while (i + 1 < s.size() && (is_digit(byte_at(s, i + 1)) || byte_at(s, i + 1) == '-' || byte_at(s, i + 1) == '.'))
        ++i;
      continue;
    }
    const unsigned char next = byte_at(s, end);
    if (is_alnum(next) || next == '_' || next == '@' || next == '%' ||
        ((next == '.' || next == '-' || next == ',' || next == ':' || next == '/') && is_digit(byte_at(s, end + 1))))
      continue;
    if (!phone_shape(s, groups, plus)) continue;
    out.push_back({PiiKind::phone, i, end, kRankPhone});
    i = end - 1;
  }
}

// ---------------------------------------------------------------- payment cards
bool known_iin(std::string_view d) noexcept {
  const std::size_t n = d.size();
  auto prefix = [&](std::size_t k) {
    int v = 0;
    for (std::size_t i = 0; i < k && i < n; ++i) v = v * 10 + (d[i] - '0');
    return v;
  };
  const int p1 = prefix(1), p2 = prefix(2), p3 = prefix(3), p4 = prefix(4), p6 = prefix(6);
  if (p1 == 4) return n == 13 || n == 16 || n == 19;                                        // Visa
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n == 16;                  // Mastercard
  if (p2 == 34 || p2 == 37) return n == 15;                                                   // Amex
  if (p4 >= 2200 && p4 <= 2204) return n >= 16 && n <= 19;                                    // Mir
  if ((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38 || p2 == 39) return n >= 14 && n <= 19;  // Diners
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19;                                    // JCB
  if (p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65 || (p6 >= 622126 && p6 <= 622925))
    return n >= 16 && n <= 19;                                                                // Discover
  if (p2 == 62) return n >= 16 && n <= 19;                                                    // UnionPay
  if (p2 == 50 || (p2 >= 56 && p2 <= 58) || p2 == 63 || p2 == 67) return n >= 13 && n <= 19;  // Maestro
  return false;
}

void scan_card(std::string_view s, std::vector<Candidate>& out) {
  std::string digits;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!is_digit(byte_at(s, i))) continue;
    const unsigned char p = before(s, i);
    if (is_alnum(p) || p == '.' || p == '-' || p == '_' || p == '/' || p == ',') {
      while (is_digit(byte_at(s, i + 1))) ++i;
      continue;
    }
    digits.clear();
    std::size_t q = i, end = i, groups = 0, shortest = 99;
    char sep = 0;
    bool ok = true;
    while (true) {
      const std::size_t g0 = q;
      while (is_digit(byte_at(s, q)) && digits.size() < 20) digits.push_back(s[q++]);
      if (digits.size() > 19) {
        ok = false;
        break;
      }
      ++groups;
      shortest = std::min(shortest, q - g0);
      end = q;
      const unsigned char c = byte_at(s, q);
      if ((c == ' ' || c == '-') && is_digit(byte_at(s, q + 1)) && (sep == 0 || sep == static_cast<char>(c))) {
        sep = static_cast<char>(c);
        ++q;
        continue;
      }
      if ((c == ' ' || c == '-') && is_digit(byte_at(s, q + 1))) ok = false;  // mixed separators
      break;
    }
    const unsigned char next = byte_at(s, end);
    if (ok && !is_alnum(next) && next != '_' &&
        !((next == '.' || next == ',' || next == '-' || next == '/') && is_digit(byte_at(s, end + 1))) &&
        digits.size() >= 13 && (groups == 1 || (shortest >= 3 && groups <= 6)) && luhn_valid(digits) &&
        known_iin(digits)) {
      out.push_back({PiiKind::card, i, end, kRankCard});
    }
    i = std::max(i, end > 0 ? end - 1 : 0);
  }
}

// ---------------------------------------------------------------- IP addresses
/// An IPv4 address at `pos` (octets 0-255, no leading zeros); sets `end` past it.
bool read_ipv4(std::string_view s, std::size_t pos, std::size_t& end, int octets[4]) {
  std::size_t q = pos;
  for (int k = 0; k < 4; ++k) {
    if (k > 0) {
      if (byte_at(s, q) != '.') return false;
      ++q;
    }
    const std::size_t b = q;
    int v = 0;
    while (is_digit(byte_at(s, q)) && q - b < 4) v = v * 10 + (s[q++] - '0');
    const std::size_t len = q - b;
    if (len == 0 || len > 3 || v > 255 || (len > 1 && s[b] == '0')) return false;
    octets[k] = v;
  }
  end = q;
  return true;
}

/// Whether the word before `pos` (skipping spaces) is "version"/"ver"/"release" (1.2.3.4 is then a version).
bool after_version_word(std::string_view s, std::size_t pos) {
  std::size_t e = pos;
  while (e > 0 && pos - e < 3 && (s[e - 1] == ' ' || s[e - 1] == ':')) --e;
  std::size_t b = e;
  while (b > 0 && e - b < 8 && is_alpha(byte_at(s, b - 1))) --b;
  const std::string_view w = s.substr(b, e - b);
  return iequals(w, "version") || iequals(w, "ver") || iequals(w, "release") || iequals(w, "build");
}

void scan_ipv4(std::string_view s, std::vector<Candidate>& out) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!is_digit(byte_at(s, i))) continue;
    const unsigned char p = before(s, i);
    if (is_alnum(p) || p == '.' || p == '_') {
      while (is_digit(byte_at(s, i + 1))) ++i;
      continue;
    }
    std::size_t end = 0;
    int o[4];
    if (!read_ipv4(s, i, end, o)) {
      while (is_digit(byte_at(s, i + 1))) ++i;
      continue;
    }
    const unsigned char next = byte_at(s, end);
    if (is_alnum(next) || next == '_' || (next == '.' && is_digit(byte_at(s, end + 1)))) {
      // part of a longer dotted number (a version such as 1.2.3.4.5): skip all of it
      while (i + 1 < s.size() && (is_digit(byte_at(s, i + 1)) || byte_at(s, i + 1) == '.')) ++i;
      continue;
    }
    if (o[0] == 127 || o[0] == 255 || (o[0] == 0 && o[1] == 0 && o[2] == 0 && o[3] == 0) || after_version_word(s, i)) {
      i = end - 1;
      continue;
    }
    // optional CIDR prefix length
    if (next == '/' && is_digit(byte_at(s, end + 1))) {
      std::size_t q = end + 1;
      int v = 0;
      while (is_digit(byte_at(s, q)) && q - end <= 3) v = v * 10 + (s[q++] - '0');
      if (q - end <= 3 && v <= 32 && !is_alnum(byte_at(s, q))) end = q;
    }
    out.push_back({PiiKind::ip, i, end, kRankIpv4});
    i = end - 1;
  }
}

void scan_ipv6(std::string_view s, std::vector<Candidate>& out) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = byte_at(s, i);
    if (!(is_hex(c) || (c == ':' && byte_at(s, i + 1) == ':'))) continue;
    const unsigned char p = before(s, i);
    if (is_alnum(p) || p == ':' || p == '.' || p == '_' || p == '-') {
      while (is_tok(byte_at(s, i + 1))) ++i;
      continue;
    }
    std::size_t q = i, groups = 0, end = i;
    bool compressed = false, four = false, digit = false, v4 = false, ok = true;
    if (c == ':') {
      compressed = true;
      q = i + 2;
      end = q;
    }
    while (q - i <= 45) {
      const std::size_t b = q;
      while (is_hex(byte_at(s, q)) && q - b <= 4) ++q;
      const std::size_t len = q - b;
      if (len == 0) break;
      if (byte_at(s, q) == '.' && groups <= 6) {  // embedded IPv4 tail (::ffff:192.0.2.1)
        std::size_t e4 = 0;
        int o[4];
        if (read_ipv4(s, b, e4, o)) {
          groups += 2, v4 = true, digit = true, end = e4;
          q = e4;
        } else {
          ok = false;
        }
        break;
      }
      if (len > 4) {
        ok = false;
        break;
      }
      ++groups;
      four = four || len == 4;
      for (std::size_t k = b; k < q; ++k) digit = digit || is_digit(byte_at(s, k));
      end = q;
      if (byte_at(s, q) == ':' && byte_at(s, q + 1) == ':') {
        if (compressed) break;
        compressed = true;
        q += 2;
        end = q;
        continue;
      }
      if (byte_at(s, q) == ':' && is_hex(byte_at(s, q + 1))) {
        ++q;
        continue;
      }
      break;
    }
    const unsigned char next = byte_at(s, end);
    const bool boundary = !is_alnum(next) && next != '_' && !(next == '.' && is_digit(byte_at(s, end + 1))) &&
                          !(next == ':' && is_hex(byte_at(s, end + 1)));
    if (ok && boundary) {
      const bool full = !compressed && groups == 8;
      const bool short_form = compressed && groups >= 2 && groups <= 7 && digit && (four || v4);
      if (full || short_form) {
        out.push_back({PiiKind::ip, i, end, kRankIpv6});
        i = end - 1;
        continue;
      }
    }
    while (is_tok(byte_at(s, i + 1))) ++i;
  }
}

// ---------------------------------------------------------------- secrets
enum class Body { alnum, tok, word, upper_digit, alnum_dash };

bool in_body(Body b, unsigned char c) noexcept {
  switch (b) {
    case Body::alnum: return is_alnum(c);
    case Body::tok: return is_tok(c);
    case Body::word: return is_alnum(c) || c == '_';
    case Body::upper_digit: return is_upper(c) || is_digit(c);
    case Body::alnum_dash: return is_alnum(c) || c == '-';
  }
  return false;
}

struct TokenPrefix {
  std::string_view prefix;
  Body body;
  std::size_t min_body, max_body;
  bool needs_digit;  // the body must contain a digit (keeps hyphenated words such as sk-learn-... out)
};

// Longer prefixes first: the first that matches decides.
constexpr TokenPrefix kTokenPrefixes[] = {
    {"sk-ant-", Body::tok, 20, 512, false}, {"sk-proj-", Body::tok, 20, 512, false},
    {"sk-", Body::tok, 20, 512, true},      {"github_pat_", Body::word, 22, 255, false},
    {"ghp_", Body::alnum, 30, 255, false},  {"gho_", Body::alnum, 30, 255, false},
    {"ghu_", Body::alnum, 30, 255, false},  {"ghs_", Body::alnum, 30, 255, false},
    {"ghr_", Body::alnum, 30, 255, false},  {"xoxa-", Body::alnum_dash, 10, 255, true},
    {"xoxb-", Body::alnum_dash, 10, 255, true}, {"xoxp-", Body::alnum_dash, 10, 255, true},
    {"xoxr-", Body::alnum_dash, 10, 255, true}, {"xoxs-", Body::alnum_dash, 10, 255, true},
    {"AKIA", Body::upper_digit, 16, 16, false}, {"ASIA", Body::upper_digit, 16, 16, false},
    {"AIza", Body::tok, 35, 35, false},     {"glpat-", Body::tok, 20, 255, false},
    {"hf_", Body::alnum, 30, 255, false},   {"npm_", Body::alnum, 36, 255, false},
};

bool has_digit(std::string_view s) noexcept {
  return std::any_of(s.begin(), s.end(), [](char c) { return is_digit(static_cast<unsigned char>(c)); });
}

/// Provider tokens by prefix and JWTs, tried at the start of each run of token characters.
void scan_tokens(std::string_view s, std::vector<Candidate>& out) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!is_tok(byte_at(s, i))) continue;
    if (is_tok(before(s, i))) continue;  // only at the start of a run
    bool matched = false;
    for (const TokenPrefix& t : kTokenPrefixes) {
      if (!starts_with(s, i, t.prefix)) continue;
      const std::size_t b = i + t.prefix.size();
      std::size_t q = b;
      while (q < s.size() && q - b <= t.max_body && in_body(t.body, byte_at(s, q))) ++q;
      const std::size_t len = q - b;
      if (len >= t.min_body && len <= t.max_body && !is_alnum(byte_at(s, q)) &&
          (!t.needs_digit || has_digit(s.substr(b, len)))) {
        out.push_back({PiiKind::secret, i, q, kRankToken});
        matched = true;
        i = q - 1;
      }
      break;
    }
    if (matched) continue;
    if (starts_with(s, i, "eyJ")) {  // JWT: header.payload.signature, base64url, header is '{"...'
      std::size_t q = i, seg = 0;
      std::size_t lens[3] = {0, 0, 0};
      while (seg < 3) {
        const std::size_t b = q;
        while (q < s.size() && (is_alnum(byte_at(s, q)) || s[q] == '_' || s[q] == '-')) ++q;
        lens[seg++] = q - b;
        if (seg < 3 && byte_at(s, q) == '.') ++q;
        else break;
      }
      if (seg == 3 && lens[0] >= 10 && lens[1] >= 10 && lens[2] >= 10 && !is_alnum(byte_at(s, q)) && byte_at(s, q) != '.') {
        out.push_back({PiiKind::secret, i, q, kRankToken});
        i = q - 1;
        continue;
      }
    }
    while (is_tok(byte_at(s, i + 1))) ++i;
  }
}

/// The token after "Bearer " (an Authorization header): at least 16 characters with a digit and a letter.
void scan_bearer(std::string_view s, std::vector<Candidate>& out) {
  for (std::size_t i = 0; i + 7 < s.size(); ++i) {
    if ((s[i] != 'B' && s[i] != 'b') || is_alnum(before(s, i)) || !istarts_with(s, i, "bearer")) continue;
    std::size_t q = i + 6;
    if (byte_at(s, q) != ' ' && byte_at(s, q) != '\t') continue;
    while ((byte_at(s, q) == ' ' || byte_at(s, q) == '\t') && q - i < 16) ++q;
    const std::size_t b = q;
    bool alpha = false, digit = false;
    auto token_char = [](unsigned char c) {
      return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
    };
    while (token_char(byte_at(s, q)) && q - b <= 4096) {
      alpha = alpha || is_alpha(byte_at(s, q));
      digit = digit || is_digit(byte_at(s, q));
      ++q;
    }
    while (q > b && (s[q - 1] == '.' || s[q - 1] == '/')) --q;  // sentence punctuation
    if (q - b >= 16 && q - b <= 4096 && alpha && digit) out.push_back({PiiKind::secret, b, q, kRankToken});
    i = q > i ? q - 1 : i;
  }
}

/// Share of `s` in "words" of four or more letters (camelCase and ALLCAPS split as identifiers are):
/// identifiers and paths are mostly words (0.7-1.0), random base62 tokens rarely (median 0.2, 99th
/// percentile 0.6 at 32 characters).
double wordy_fraction(std::string_view s) noexcept {
  std::size_t in_words = 0, word = 0;
  for (std::size_t k = 0; k <= s.size(); ++k) {
    const unsigned char c = byte_at(s, k), p = before(s, k), n = byte_at(s, k + 1);
    bool boundary = k == s.size() || !is_alpha(c);
    if (!boundary && word > 0 && is_upper(c) && (is_lower(p) || (is_upper(p) && is_lower(n)))) boundary = true;
    if (boundary) {
      if (word >= 4) in_words += word;
      word = is_alpha(c) ? 1 : 0;
    } else {
      ++word;
    }
  }
  return s.empty() ? 0.0 : static_cast<double>(in_words) / static_cast<double>(s.size());
}

constexpr double kMaxWordyFraction = 0.6;

/// Names whose assigned value is a secret: the lower-cased identifier ends with one of these.
constexpr std::string_view kSecretNames[] = {"password", "passwd", "pwd", "secret", "token", "apikey", "api_key",
                                             "api-key", "access_key", "accesskey", "secret_key", "secretkey",
                                             "private_key", "client_secret", "auth"};

/// `name = value`, `name: "value"`, `"name": "value"`, `name => 'value'` where name ends in a secret word.
void scan_assignments(std::string_view s, std::vector<Candidate>& out) {
  char lowered[48];
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!is_tok(byte_at(s, i)) || is_tok(before(s, i))) continue;
    std::size_t e = i;
    while (is_tok(byte_at(s, e)) && e - i < 48) ++e;
    if (is_tok(byte_at(s, e))) {  // identifier longer than 48: not a name
      while (is_tok(byte_at(s, e))) ++e;
      i = e - 1;
      continue;
    }
    const std::size_t start = i;
    i = e - 1;
    {  // cheap test first: is the identifier followed by an assignment at all?
      std::size_t q = e;
      if (byte_at(s, q) == '"' || byte_at(s, q) == '\'') ++q;
      while (byte_at(s, q) == ' ' || byte_at(s, q) == '\t') ++q;
      if (byte_at(s, q) != ':' && byte_at(s, q) != '=') continue;
    }
    const std::size_t n = e - start;
    for (std::size_t k = 0; k < n; ++k) lowered[k] = to_lower(byte_at(s, start + k));
    const std::string_view name(lowered, n);
    bool secret_name = false;
    for (std::string_view w : kSecretNames)
      secret_name = secret_name || (n >= w.size() && name.substr(n - w.size()) == w);
    if (!secret_name) continue;
    std::size_t q = e;
    if (byte_at(s, q) == '"' || byte_at(s, q) == '\'') ++q;
    while (byte_at(s, q) == ' ' || byte_at(s, q) == '\t') ++q;
    if (byte_at(s, q) == ':' && byte_at(s, q + 1) == '=') q += 2;
    else if (byte_at(s, q) == '=' && byte_at(s, q + 1) == '>') q += 2;
    else if (byte_at(s, q) == ':' || byte_at(s, q) == '=') q += 1;
    else continue;
    if (byte_at(s, q) == '=') continue;  // a comparison (==)
    while ((byte_at(s, q) == ' ' || byte_at(s, q) == '\t') && q - e < 16) ++q;
    const unsigned char quote = byte_at(s, q);
    const bool quoted = quote == '"' || quote == '\'' || quote == '`';
    if (quoted) ++q;
    const std::size_t b = q;
    auto stop = [&](unsigned char c) {
      if (quoted) return c == quote || c == 0 || c == '\n' || c == '\r' || c == ' ' || c == '\t';
      return c == 0 || is_space(c) || c == '\'' || c == '"' || c == ',' || c == ';' || c == ')' || c == '}' ||
             c == ']' || c == '(' || c == '`' || c == '<' || c == '>';
    };
    while (q < s.size() && !stop(byte_at(s, q)) && q - b <= 256) ++q;
    if (quoted && byte_at(s, q) != quote) continue;
    std::size_t v_end = q;
    if (!quoted)
      while (v_end > b && (s[v_end - 1] == '.' || s[v_end - 1] == ':')) --v_end;
    const std::size_t len = v_end - b;
    if (len < 8 || len > 256) continue;
    const unsigned char first = byte_at(s, b);
    if (first == '$' || first == '{' || first == '<' || first == '%' || first == '[') continue;  // templates, env
    bool lower = false, upper = false, digit = false;
    for (std::size_t k = b; k < v_end; ++k) {
      const unsigned char c = byte_at(s, k);
      lower = lower || is_lower(c), upper = upper || is_upper(c), digit = digit || is_digit(c);
    }
    const int classes = int(lower) + int(upper) + int(digit);
    // unquoted and without a digit: not an expression (process.env.API_KEY) and not words
    const std::string_view value = s.substr(b, len);
    const bool random_looking =
        digit || (lower && upper && value.find('.') == npos && wordy_fraction(value) < kMaxWordyFraction);
    if (classes >= 2 && (quoted || random_looking)) out.push_back({PiiKind::secret, b, v_end, kRankToken});
  }
}

/// PEM private-key blocks: "-----BEGIN ... PRIVATE KEY-----" through "-----END ...-----", or through the
/// base64 body when the END line is missing (a truncated key is still a key).
bool read_pem_header(std::string_view s, std::size_t at, std::string_view word, std::size_t& end) {
  if (!starts_with(s, at, "-----") || !starts_with(s, at + 5, word)) return false;
  const std::size_t limit = std::min(s.size(), at + 100);
  const std::size_t close = s.substr(0, limit).find("-----", at + 5 + word.size());
  if (close == npos) return false;
  const std::string_view label = s.substr(at + 5 + word.size(), close - at - 5 - word.size());
  if (label.find("PRIVATE KEY") == npos || label.find('\n') != npos) return false;
  end = close + 5;
  return true;
}

bool is_pem_body(unsigned char c) noexcept {
  return is_alnum(c) || c == '+' || c == '/' || c == '=' || is_space(c) || c == ':' || c == ',' || c == '-';
}

void scan_pem(std::string_view s, std::vector<Candidate>& out) {
  std::size_t pos = 0;
  while ((pos = s.find("-----BEGIN ", pos)) != npos) {
    std::size_t hdr_end = 0;
    if (!read_pem_header(s, pos, "BEGIN ", hdr_end)) {
      pos += 11;
      continue;
    }
    std::size_t q = hdr_end, last = hdr_end;
    while (q < s.size()) {
      if (s[q] == '-' && starts_with(s, q, "-----")) {
        std::size_t end_end = 0;
        if (read_pem_header(s, q, "END ", end_end)) last = end_end;
        break;
      }
      if (!is_pem_body(byte_at(s, q))) break;
      if (!is_space(byte_at(s, q))) last = q + 1;
      ++q;
    }
    out.push_back({PiiKind::secret, pos, last, kRankPem});
    pos = std::max(last, pos + 11);
  }
}

/// Generic high-entropy strings (see the header for the rule and the reasons).
void scan_generic(std::string_view s, const ScrubOptions& o, std::vector<Candidate>& out) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!is_b64(byte_at(s, i))) continue;
    std::size_t e = i;
    while (is_b64(byte_at(s, e))) ++e;
    while (byte_at(s, e) == '=' && e - i < 8192) ++e;  // padding
    std::size_t b = i;
    const std::size_t run_end = e;
    while (b < e && (s[b] == '/' || s[b] == '+' || s[b] == '-' || s[b] == '_')) ++b;
    while (e > b && (s[e - 1] == '/' || s[e - 1] == '-' || s[e - 1] == '_' || s[e - 1] == '+')) --e;
    i = run_end - 1;
    const std::size_t len = e - b;
    if (len < o.secret_min_length) continue;
    if (is_alnum(before(s, b)) || byte_at(s, run_end) == '@') continue;
    bool lower = false, upper = false, digit = false;
    for (std::size_t k = b; k < e; ++k) {
      const unsigned char c = byte_at(s, k);
      lower = lower || is_lower(c), upper = upper || is_upper(c), digit = digit || is_digit(c);
    }
    if (!(lower && upper && digit)) continue;
    if (wordy_fraction(s.substr(b, len)) >= kMaxWordyFraction) continue;
    if (shannon_entropy(s.substr(b, len)) < o.secret_min_entropy) continue;
    out.push_back({PiiKind::secret, b, e, kRankGeneric});
  }
}

// ---------------------------------------------------------------- home-directory user names
bool generic_user_name(std::string_view name) {
  static constexpr std::string_view kGeneric[] = {
      "user", "username", "user_name", "yourname", "your_name", "your-name", "yourusername", "your_username",
      "your-username", "you", "me", "myuser", "myname", "name", "example", "test", "guest", "public", "shared",
      "default", "default user", "all users", "ubuntu", "ec2-user", "pi", "runner", "vagrant", "admin",
      "administrator", "root", "linuxbrew", "centos", "debian", "node", "app", "jovyan", "docker", "home", "john doe",
      "someone", "foo", "bar",
      // folders that follow /Users/ when the user name was left out
      "documents", "desktop", "downloads", "appdata", "library", "pictures", "music", "videos"};
  for (std::string_view g : kGeneric)
    if (iequals(name, g)) return true;
  return false;
}

inline bool is_unix_name_char(unsigned char c) noexcept { return is_alnum(c) || c == '.' || c == '_' || c == '-'; }

/// The user name that starts at `b`; Windows names may contain spaces when a separator follows them.
std::size_t read_user_name(std::string_view s, std::size_t b, bool windows) {
  std::size_t q = b;
  while (is_unix_name_char(byte_at(s, q)) && q - b < 32) ++q;
  if (is_unix_name_char(byte_at(s, q))) return b;  // longer than 32: not a user name
  if (windows && byte_at(s, q) == ' ') {           // "C:\Users\John Smith\..." (only with the separator)
    std::size_t r = q;
    while ((is_unix_name_char(byte_at(s, r)) || byte_at(s, r) == ' ') && r - b < 64) ++r;
    if (byte_at(s, r) == '\\' || byte_at(s, r) == '/') q = r;
  }
  while (q > b && (s[q - 1] == '.' || s[q - 1] == '-')) --q;  // sentence punctuation
  return q;
}

void add_user(std::string_view s, std::size_t b, std::size_t e, std::vector<Candidate>& out) {
  if (e <= b || !(is_alnum(byte_at(s, b)) || byte_at(s, b) == '_')) return;
  if (generic_user_name(s.substr(b, e - b))) return;
  const unsigned char next = byte_at(s, e);
  if (!(next == 0 || next == '/' || next == '\\' || is_space(next) || next == '"' || next == '\'' || next == '`' ||
        next == ')' || next == ']' || next == ',' || next == ';' || next == ':' || next == '.' || next == '>' ||
        next == '}' || next == '!' || next == '?'))
    return;
  out.push_back({PiiKind::home_user, b, e, kRankHome});
}

void scan_home(std::string_view s, std::vector<Candidate>& out) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = byte_at(s, i);
    if (c == '/') {
      const unsigned char p = before(s, i);
      if (is_alnum(p) || p == '.' || p == '_' || p == '-' || p == '%') continue;
      std::size_t b = 0;
      if (starts_with(s, i, "/home/")) b = i + 6;
      else if (starts_with(s, i, "/Users/")) b = i + 7;
      else continue;
      const bool win = p == ':' && is_alpha(before(s, i - 1)) && b == i + 7;  // C:/Users/name
      const std::size_t e = read_user_name(s, b, win);
      add_user(s, b, e, out);
      i = std::max(i, e > 0 ? e - 1 : 0);
    } else if (c == '\\') {
      // C:\Users\name, C:\\Users\\name (escaped in JSON / string literals), \Users\name
      std::size_t q = i;
      while (byte_at(s, q) == '\\' && q - i < 2) ++q;
      const std::size_t k = q - i;
      if (!starts_with(s, q, "Users")) {
        i = q - 1;
        continue;
      }
      const unsigned char p = before(s, i);
      if (is_alnum(p) || p == '\\') {
        i = q - 1;
        continue;
      }
      std::size_t r = q + 5, sep = 0;
      while (byte_at(s, r) == '\\' && sep < k) ++r, ++sep;
      if (sep != k) {
        i = q - 1;
        continue;
      }
      const std::size_t e = read_user_name(s, r, true);
      add_user(s, r, e, out);
      i = std::max(q - 1, e > 0 ? e - 1 : 0);
    } else if (c == '~') {
      const unsigned char p = before(s, i);
      if (is_alnum(p) || p == '~' || p == '/' || p == '\\' || p == '_' || p == '-' || p == '.') continue;
      const unsigned char f = byte_at(s, i + 1);
      if (!(is_lower(f) || f == '_')) continue;
      std::size_t q = i + 1;
      while ((is_lower(byte_at(s, q)) || is_digit(byte_at(s, q)) || byte_at(s, q) == '_' || byte_at(s, q) == '-' ||
              byte_at(s, q) == '.') &&
             q - i <= 32)
        ++q;
      const unsigned char after = byte_at(s, q + 1);
      if (byte_at(s, q) != '/' || !(is_alnum(after) || after == '.' || after == '_' || after == '-')) continue;
      add_user(s, i + 1, q, out);
      i = q - 1;
    }
  }
}

// ---------------------------------------------------------------- resolution
std::vector<Candidate> candidates(std::string_view s, const ScrubOptions& o) {
  std::vector<Candidate> c;
  if (o.enabled(PiiKind::email)) scan_email(s, c);
  if (o.enabled(PiiKind::phone)) scan_phone(s, c);
  if (o.enabled(PiiKind::card)) scan_card(s, c);
  if (o.enabled(PiiKind::ip)) {
    scan_ipv4(s, c);
    scan_ipv6(s, c);
  }
  if (o.enabled(PiiKind::secret)) {
    scan_pem(s, c);
    scan_tokens(s, c);
    scan_bearer(s, c);
    scan_assignments(s, c);
    scan_generic(s, o, c);
  }
  if (o.enabled(PiiKind::home_user)) scan_home(s, c);
  return c;
}

/// Longest first, then the more specific kind, then the earlier offset; a candidate that overlaps an
/// accepted one is dropped.
std::vector<PiiFinding> resolve(std::vector<Candidate> c) {
  std::sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) {
    const std::size_t la = a.end - a.begin, lb = b.end - b.begin;
    if (la != lb) return la > lb;
    if (a.rank != b.rank) return a.rank > b.rank;
    return a.begin < b.begin;
  });
  std::map<std::size_t, std::pair<std::size_t, PiiKind>> taken;  // begin -> (end, kind)
  for (const Candidate& x : c) {
    if (x.end <= x.begin) continue;
    auto it = taken.lower_bound(x.begin);
    if (it != taken.end() && it->first < x.end) continue;  // an accepted span starts inside x
    if (it != taken.begin() && std::prev(it)->second.first > x.begin) continue;  // one covers x's start
    taken.emplace(x.begin, std::make_pair(x.end, x.kind));
  }
  std::vector<PiiFinding> out;
  out.reserve(taken.size());
  for (const auto& [b, ek] : taken) out.push_back({ek.second, b, ek.first - b});
  return out;
}

}  // namespace

// ---------------------------------------------------------------- public API
std::string_view to_string(PiiKind kind) noexcept {
  switch (kind) {
    case PiiKind::email: return "email";
    case PiiKind::phone: return "phone";
    case PiiKind::card: return "card";
    case PiiKind::ip: return "ip";
    case PiiKind::secret: return "secret";
    case PiiKind::home_user: return "home_user";
  }
  return "unknown";
}

std::optional<PiiKind> try_parse_kind(std::string_view name) noexcept {
  for (PiiKind k : kAllPiiKinds)
    if (to_string(k) == name) return k;
  return std::nullopt;
}

PiiKind parse_kind(std::string_view name) {
  if (auto k = try_parse_kind(name)) return *k;
  throw ConfigError("kinds", fmt::format("'{}' is not a PII kind (expected one of email, phone, card, ip, secret, "
                                         "home_user, all)", name));
}

std::string_view placeholder(PiiKind kind) noexcept {
  switch (kind) {
    case PiiKind::email: return "[EMAIL]";
    case PiiKind::phone: return "[PHONE]";
    case PiiKind::card: return "[CARD]";
    case PiiKind::ip: return "[IP]";
    case PiiKind::secret: return "[SECRET]";
    case PiiKind::home_user: return "[USER]";
  }
  return "[PII]";
}

void ScrubOptions::validate() const {
  if (secret_min_length < 16 || secret_min_length > 4096)
    throw ConfigError("secret_min_length", fmt::format("{} is outside [16, 4096]", secret_min_length));
  if (!(secret_min_entropy >= 0.0 && secret_min_entropy <= 8.0))
    throw ConfigError("secret_min_entropy", fmt::format("{} is outside [0, 8]", secret_min_entropy));
}

ScrubOptions parse_kinds(std::string_view list) {
  ScrubOptions o;
  o.kinds.fill(false);
  bool any = false;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    std::size_t comma = list.find(',', pos);
    if (comma == npos) comma = list.size();
    std::string_view item = list.substr(pos, comma - pos);
    while (!item.empty() && is_space(static_cast<unsigned char>(item.front()))) item.remove_prefix(1);
    while (!item.empty() && is_space(static_cast<unsigned char>(item.back()))) item.remove_suffix(1);
    if (!item.empty()) {
      if (item == "all") o.kinds.fill(true);
      else o.enable(parse_kind(item));
      any = true;
    }
    pos = comma + 1;
  }
  if (!any) throw ConfigError("kinds", fmt::format("'{}' names no kind (expected e.g. email,card or all)", list));
  return o;
}

PiiCounts ScrubResult::counts() const noexcept {
  PiiCounts n{};
  for (const PiiFinding& f : findings) ++n[static_cast<std::size_t>(f.kind)];
  return n;
}

namespace {

std::string replace_spans(std::string_view text, const std::vector<PiiFinding>& findings) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  for (const PiiFinding& f : findings) {
    out.append(text.data() + pos, f.offset - pos);
    out.append(placeholder(f.kind));
    pos = f.offset + f.length;
  }
  out.append(text.data() + pos, text.size() - pos);
  return out;
}

/// Findings of a later pass (`more`, offsets in the scrubbed text) mapped back onto the original text and
/// merged with the earlier ones (`done`): a new finding that covers placeholders absorbs them.
std::vector<PiiFinding> merge(const std::vector<PiiFinding>& done, const std::vector<PiiFinding>& more) {
  struct Slot {
    std::size_t out_begin, out_end, orig_begin, orig_end;
  };
  std::vector<Slot> slots;
  std::size_t out_pos = 0, orig_pos = 0;
  for (const PiiFinding& f : done) {
    const std::size_t b = out_pos + (f.offset - orig_pos);
    slots.push_back({b, b + placeholder(f.kind).size(), f.offset, f.offset + f.length});
    out_pos = slots.back().out_end;
    orig_pos = f.offset + f.length;
  }
  // original position of scrubbed-text position p; inside a placeholder: its start (begin) or end (!begin)
  auto to_orig = [&](std::size_t p, bool begin) {
    auto it = std::upper_bound(slots.begin(), slots.end(), p, [](std::size_t v, const Slot& s) { return v < s.out_begin; });
    if (it == slots.begin()) return p;
    const Slot& s = *std::prev(it);
    if (p < s.out_end && (begin || p > s.out_begin)) return begin ? s.orig_begin : s.orig_end;
    return s.orig_end + (p - s.out_end);
  };
  std::vector<PiiFinding> merged;
  for (const PiiFinding& f : more) {
    const std::size_t b = to_orig(f.offset, true), e = to_orig(f.offset + f.length, false);
    merged.push_back({f.kind, b, e - b});
  }
  for (const PiiFinding& f : done) {
    const bool absorbed = std::any_of(merged.begin(), merged.begin() + static_cast<std::ptrdiff_t>(more.size()),
                                      [&](const PiiFinding& m) {
                                        return f.offset < m.offset + m.length && m.offset < f.offset + f.length;
                                      });
    if (!absorbed) merged.push_back(f);
  }
  std::sort(merged.begin(), merged.end(), [](const PiiFinding& a, const PiiFinding& b) { return a.offset < b.offset; });
  return merged;
}

/// Passes over the scrubbed text until one finds nothing: a replacement can change the context of its
/// neighbours (a number glued to a secret is no longer glued to anything), and scrub() is idempotent.
constexpr int kMaxPasses = 4;

}  // namespace

std::vector<PiiFinding> find_pii(std::string_view text, const ScrubOptions& options) {
  return scrub(text, options).findings;
}

ScrubResult scrub(std::string_view text, const ScrubOptions& options) {
  options.validate();
  ScrubResult r;
  r.findings = resolve(candidates(text, options));
  if (r.findings.empty()) {
    r.text.assign(text.data(), text.size());
    return r;
  }
  r.text = replace_spans(text, r.findings);
  for (int pass = 1; pass < kMaxPasses; ++pass) {
    const std::vector<PiiFinding> more = resolve(candidates(r.text, options));
    if (more.empty()) break;
    r.findings = merge(r.findings, more);
    r.text = replace_spans(text, r.findings);
  }
  return r;
}

std::string scrub_text(std::string_view text, const ScrubOptions& options) { return scrub(text, options).text; }

bool luhn_valid(std::string_view digits) noexcept {
  if (digits.empty()) return false;
  int sum = 0;
  bool twice = false;
  for (std::size_t k = digits.size(); k-- > 0;) {
    const unsigned char c = static_cast<unsigned char>(digits[k]);
    if (!is_digit(c)) return false;
    int d = c - '0';
    if (twice) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

double shannon_entropy(std::string_view s) noexcept {
  if (s.empty()) return 0.0;
  std::array<std::size_t, 256> n{};
  for (char c : s) ++n[static_cast<unsigned char>(c)];
  double h = 0.0;
  const double total = static_cast<double>(s.size());
  for (std::size_t c : n)
    if (c > 0) {
      const double p = static_cast<double>(c) / total;
      h -= p * std::log2(p);
    }
  return h;
}

LineScrubber::LineScrubber(ScrubOptions options) : options_(std::move(options)) { options_.validate(); }

std::string LineScrubber::scrub_line(std::string_view line) {
  std::size_t from = 0;
  std::string head;
  if (in_pem_) {
    // inside a PEM block: the line is body, the END line, or (a stray line) the end of the block
    std::size_t q = 0;
    while (q < line.size() && is_pem_body(static_cast<unsigned char>(line[q])) && !starts_with(line, q, "-----")) ++q;
    std::size_t end_end = 0;
    if (q == line.size()) return "[SECRET]";
    in_pem_ = false;
    if (read_pem_header(line, q, "END ", end_end)) {
      head = "[SECRET]";
      from = end_end;
    }
  }
  const std::string_view rest = line.substr(from);
  ScrubResult r = scrub(rest, options_);
  const PiiCounts n = r.counts();
  for (std::size_t k = 0; k < kPiiKindCount; ++k) counts_[k] += n[k];
  // a BEGIN header whose block runs past this line
  if (options_.enabled(PiiKind::secret) && !r.findings.empty()) {
    const PiiFinding& last = r.findings.back();
    std::size_t hdr_end = 0;
    if (last.kind == PiiKind::secret && read_pem_header(rest, last.offset, "BEGIN ", hdr_end) &&
        last.offset + last.length == rest.size()) {
      const std::string_view block = rest.substr(last.offset, last.length);
      if (block.find("-----END ") == npos) in_pem_ = true;
    }
  }
  return head + r.text;
}

}  // namespace promptlearn::privacy
