#pragma once
/// @file PII and secret scrubbing of stored text (issue 7): hand-written linear scanners, typed placeholders.
///
/// What is found, and what is deliberately left alone (the bias is against false positives in prose and
/// code; every detector is a single pass or a bounded look-around, no regex, no recursion; bytes that
/// are not ASCII, including invalid UTF-8, are never part of a match and pass through untouched):
///
/// - email  `local@domain.tld`: local part of [A-Za-z0-9._%+-] (at most 64, starting with a letter or
///   digit), at least two domain labels, a TLD of letters that is two letters long (country codes) or one
///   of a list of common generic TLDs, so `icon@2x.png` and `lodash@4.17.21` are not addresses.
/// - phone  `+CC ...` (8-15 digits, country code of 1-3 digits when grouped), `00CC ...`, North American
///   `(555) 123-4567`, `555-123-4567`, `555.123.4567`, `1-555-123-4567` (area code 2-9xx, the two
///   separators the same), and the national shapes `01 23 45 67 89`, `020 7946 0958`, `07700 900123`
///   (leading 0). Not taken: bare digit runs, dates, times, versions, `123-456-7890` (area code 1xx), any
///   number glued to letters or followed by another `.5` / `-5` group.
/// - card   13-19 digits, contiguous or in groups of 3-6 with one consistent space or dash, Luhn-valid
///   and with a known issuer prefix (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro, Mir).
/// - ip     IPv4 with octets 0-255 and no leading zeros, not part of a longer dotted number and not after
///   the word "version"; an optional `/prefix`. Loopback (127/8), 0.0.0.0 and addresses starting with 255
///   (broadcast, netmasks) are kept: they say nothing about anyone. IPv6 in full (8 groups) or `::`
///   form; a `::` form needs two explicit groups, a digit and one 4-digit group, which keeps C++ `a::b`,
///   `std::`, Python slices `[1::2]`, times `12:30:45` and MAC addresses out (`::1` is kept too).
/// - secret provider tokens by prefix (`sk-`, `sk-ant-`, `sk-proj-`, `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`,
///   `github_pat_`, `xox[abprs]-`, `AKIA`/`ASIA` + 16, `AIza` + 35, `glpat-`, `hf_`, `npm_`), the token
///   after `Bearer`, PEM private-key blocks (BEGIN to END, or to the end of the base64 body when the END
///   line is missing), JWTs (`eyJ...` three base64url segments), the value in `password=...`,
///   `api_key: "..."`, `"client_secret": "..."` (at least 8 characters and two of lower case, upper case, digits;
///   unquoted values need a digit or both cases not spelling words), and
///   generic high-entropy strings: a run of [A-Za-z0-9+/_-] (plus trailing `=`) of at least
///   `secret_min_length` characters with Shannon entropy of at least `secret_min_entropy` bits per
///   character, upper case, lower case and digits all present, and less than 60% of it in "words" of four
///   or more letters (camelCase and ALLCAPS split as in identifiers: identifiers and paths score 0.7-1,
///   random base62 tokens a median 0.2). Hex-only strings (git SHAs, SHA-256 digests) and UUIDs are *not*
///   secrets on their own: they are identifiers that code prompts are full of; a hex key is caught when
///   it is the value of a `key=`/`token:` assignment.
/// - home_user the user name in `/home/NAME`, `/Users/NAME`, `C:\Users\NAME` (also `C:\\Users\\NAME`
///   and `C:/Users/NAME`) and `~NAME/` becomes `[USER]`; the rest of the path stays. Generic and system
///   names (user, username, you, root, ubuntu, runner, Public, Default, ...) and `$USER`, `<user>` are kept.
///   `~NAME` without a following `/` and path character is not taken (`~alice` is too often something else).
///
/// Overlapping candidates are resolved deterministically: longest first, then the more specific kind
/// (PEM > provider token > email > card > IPv6 > IPv4 > phone > home_user > generic secret), then the
/// earlier offset. Placeholders are never matched again, and the scrubbed text is scanned again (up to
/// four passes) until a pass finds nothing, since a replacement can change its neighbours' context
/// (digits glued to a secret); findings of later passes are mapped back onto the input. Hence
/// scrub(scrub(x)) == scrub(x).
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace promptlearn::privacy {

/// What a finding is; each kind has its placeholder (see placeholder()).
enum class PiiKind : std::uint8_t { email, phone, card, ip, secret, home_user };

/// Number of PiiKind values.
inline constexpr std::size_t kPiiKindCount = 6;

/// Every kind, in enum order.
inline constexpr std::array<PiiKind, kPiiKindCount> kAllPiiKinds = {PiiKind::email, PiiKind::phone, PiiKind::card,
                                                                    PiiKind::ip,    PiiKind::secret, PiiKind::home_user};

/// The kind's name as used by `--kinds` and in JSON: "email", "phone", "card", "ip", "secret", "home_user".
std::string_view to_string(PiiKind kind) noexcept;

/// The kind named `name` (exact, lower case), or nullopt.
std::optional<PiiKind> try_parse_kind(std::string_view name) noexcept;

/// The kind named `name`. @throws ConfigError (key "kinds") naming the unknown kind and the known ones.
PiiKind parse_kind(std::string_view name);

/// The text that replaces a finding: "[EMAIL]", "[PHONE]", "[CARD]", "[IP]", "[SECRET]", "[USER]".
std::string_view placeholder(PiiKind kind) noexcept;

/// Which detectors run and the thresholds of the generic high-entropy secret detector.
/// Plain value type; thread-safe to share once built.
struct ScrubOptions {
  /// Enabled kinds, indexed by the enum value; all on by default.
  std::array<bool, kPiiKindCount> kinds{true, true, true, true, true, true};
  /// Shortest run of [A-Za-z0-9+/_=-] that the generic detector considers (provider prefixes need none).
  std::size_t secret_min_length = 32;
  /// Least Shannon entropy, in bits per character, of a generic secret (random base62: about 4.6 at 32
  /// characters; English words and identifiers: 3-4).
  double secret_min_entropy = 4.0;

  /// Whether `kind` is scrubbed.
  bool enabled(PiiKind kind) const noexcept { return kinds[static_cast<std::size_t>(kind)]; }
  /// Turns `kind` on or off; returns *this for chaining.
  ScrubOptions& enable(PiiKind kind, bool on = true) noexcept {
    kinds[static_cast<std::size_t>(kind)] = on;
    return *this;
  }
  /// @throws ConfigError naming `secret_min_length` (must be in [16, 4096]) or `secret_min_entropy` ([0, 8]).
  void validate() const;
};

/// Options with exactly the kinds in a comma-separated list enabled, e.g. `parse_kinds("email, card")`.
/// "all" enables every kind. @throws ConfigError (key "kinds") naming an unknown kind or an empty list.
ScrubOptions parse_kinds(std::string_view list);

/// One replaced span of the input: [offset, offset + length) in the text given to scrub().
struct PiiFinding {
  PiiKind kind;
  std::size_t offset;
  std::size_t length;
  bool operator==(const PiiFinding& o) const noexcept {
    return kind == o.kind && offset == o.offset && length == o.length;
  }
};

/// Findings per kind, indexed by the enum value.
using PiiCounts = std::array<std::size_t, kPiiKindCount>;

/// The scrubbed text and what was replaced (sorted by offset, never overlapping).
struct ScrubResult {
  std::string text;
  std::vector<PiiFinding> findings;
  /// Number of findings of each kind.
  PiiCounts counts() const noexcept;
};

/// The PII and secrets in `text` after overlap resolution, sorted by offset; nothing is replaced.
/// Linear in the length of `text`. @throws ConfigError when `options` is invalid.
std::vector<PiiFinding> find_pii(std::string_view text, const ScrubOptions& options = {});

/// Replaces every finding of an enabled kind by its placeholder.
/// Example: `scrub("mail bob@example.org").text == "mail [EMAIL]"`. @throws ConfigError on invalid options.
ScrubResult scrub(std::string_view text, const ScrubOptions& options = {});

/// scrub(text, options).text.
std::string scrub_text(std::string_view text, const ScrubOptions& options = {});

/// Luhn checksum of a string of decimal digits (other characters: false; empty: false).
bool luhn_valid(std::string_view digits) noexcept;

/// Shannon entropy of the byte distribution of `s`, in bits per byte (0 for an empty string).
double shannon_entropy(std::string_view s) noexcept;

/// Scrubs a text line by line, carrying one piece of state between lines: inside a PEM private-key
/// block (BEGIN on an earlier line, END not yet seen) every line becomes "[SECRET]". Used by
/// `promptlearn scrub`. Not thread-safe (one instance per stream).
class LineScrubber {
 public:
  /// @throws ConfigError when `options` is invalid.
  explicit LineScrubber(ScrubOptions options = {});
  /// The scrubbed line (`line` without its line terminator; a trailing '\r' is kept as it is).
  std::string scrub_line(std::string_view line);
  /// Findings so far per kind; a PEM block counts once however many lines it spans.
  const PiiCounts& counts() const noexcept { return counts_; }

 private:
  ScrubOptions options_;
  PiiCounts counts_{};
  bool in_pem_ = false;
};

}  // namespace promptlearn::privacy
