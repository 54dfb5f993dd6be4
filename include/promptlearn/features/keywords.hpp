#pragma once
/// @file Word scanning, stop words, corpus document frequencies and TF-IDF keyword ranking.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "promptlearn/core/error.hpp"
#include "promptlearn/features/detail/lexicon.hpp"
#include "promptlearn/features/detail/text.hpp"
#include "promptlearn/features/tokenizer.hpp"

namespace promptlearn::features {

/// Longest term (in bytes) kept as a keyword; longer runs (hashes, base64) are skipped.
inline constexpr std::size_t kMaxTermBytes = 48;

namespace detail {

/// Calls `f(word, broke)` for each word of `s`, lower-cased (ASCII only; other scripts are kept as is).
/// A word is a run of letters, digits and '_' with internal apostrophes ("don't"); "c++", "c#" and "f#"
/// are kept whole. `broke` is true when sentence punctuation or a line break separates the word from
/// the previous one (so phrases are not matched across it). Linear time, total on any bytes.
template <class F>
void for_each_word(std::string_view s, F&& f) {
  std::string word;
  bool broke = true;
  bool pending_break = false;
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    char32_t cp = 0;
    const std::size_t len = decode_utf8(s, i, cp);
    const CharClass k = classify(cp);
    if (k == CharClass::kLetter || k == CharClass::kDigit || cp == '_') {
      if (len == 1) {
        word.push_back(ascii_lower(s[i]));
      } else {
        word.append(s.data() + i, len);
      }
      i += len;
      continue;
    }
    if ((cp == '\'' || cp == 0x2019) && !word.empty() && i + len < n) {
      char32_t next = 0;
      decode_utf8(s, i + len, next);
      if (classify(next) == CharClass::kLetter) {
        word.push_back('\'');
        i += len;
        continue;
      }
    }
    if (!word.empty()) {
      if (word.size() == 1 && (word[0] == 'c' || word[0] == 'f')) {
        if (word[0] == 'c' && s.substr(i, 2) == "++") {
          word += "++";
          i += 2;
        } else if (cp == '#') {
          word.push_back('#');
          i += 1;
        }
      }
      f(std::string_view(word), broke || pending_break);
      word.clear();
      broke = false;
      pending_break = false;
      continue;  // re-examine the separator (or the character after a consumed suffix)
    }
    if (cp == '.' || cp == ',' || cp == ';' || cp == ':' || cp == '!' || cp == '?' || cp == '\n' || cp == '(' ||
        cp == ')' || cp == '"' || cp == '|') {
      pending_break = true;
    }
    i += len;
  }
  if (!word.empty()) f(std::string_view(word), broke || pending_break);
}

}  // namespace detail

/// True if the lower-case `word` is an English stop word or prompt boiler-plate ("please", "act").
inline bool is_stop_word(std::string_view word) noexcept {
  return std::binary_search(std::begin(detail::kStopWords), std::end(detail::kStopWords), word);
}

/// True if a lower-case word may be a keyword: 2..kMaxTermBytes bytes, not a stop word, not all digits.
inline bool is_term(std::string_view word) noexcept {
  if (word.size() < 2 || word.size() > kMaxTermBytes) return false;
  if (std::all_of(word.begin(), word.end(), [](char c) { return detail::is_digit(c) || c == '_'; })) {
    return false;
  }
  return !is_stop_word(word);
}

/// Distinct keyword candidates of `text` in order of first occurrence (lower-case, stop words removed).
inline std::vector<std::string> extract_terms(std::string_view text) {
  std::vector<std::string> out;
  std::unordered_map<std::string, bool> seen;
  detail::for_each_word(text, [&](std::string_view w, bool) {
    if (!is_term(w)) return;
    if (seen.emplace(std::string(w), true).second) out.emplace_back(w);
  });
  return out;
}

/// Document frequencies of hashed terms (bucket = stable_hash(term) mod buckets), for TF-IDF. Fixed memory (one uint32
/// per bucket, saturating); two terms sharing a bucket share a count. Mergeable: merging the stats of two document sets
/// equals the stats of their union. Thread-safety: const members may run concurrently; mutation needs exclusion.
class CorpusStats {
 public:
  /// Empty statistics with `buckets` hashed term buckets.
  /// @throws ConfigError ("features.corpus_buckets") unless 1 <= buckets <= 2^24.
  explicit CorpusStats(std::size_t buckets = 1u << 15) {
    if (buckets < 1 || buckets > kMaxBuckets) {
      throw ConfigError("features.corpus_buckets",
                        std::to_string(buckets) + " is outside [1, " + std::to_string(kMaxBuckets) + "]");
    }
    counts_.assign(buckets, 0);
  }

  /// Counts one document: each bucket touched by its terms is incremented once, however many terms
  /// (or repeats) fall in it.
  void add_document(const std::vector<std::string>& distinct_terms) {
    std::vector<std::size_t> touched;
    touched.reserve(distinct_terms.size());
    for (const auto& t : distinct_terms) touched.push_back(bucket_of(t));
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (const std::size_t b : touched) {
      if (counts_[b] != std::numeric_limits<std::uint32_t>::max()) ++counts_[b];
    }
    ++documents_;
  }

  /// Number of documents whose terms hashed to `term`'s bucket.
  std::uint32_t document_frequency(std::string_view term) const noexcept { return counts_[bucket_of(term)]; }

  /// Smoothed inverse document frequency log((1 + N) / (1 + df)) + 1 (scikit-learn's smooth_idf);
  /// 1 for every term of an empty corpus. Pass terms as produced by extract_terms (lower case).
  double idf(std::string_view term) const noexcept {
    const double n = static_cast<double>(documents_);
    const double df = static_cast<double>(document_frequency(term));
    return std::log((1.0 + n) / (1.0 + df)) + 1.0;
  }

  /// Number of documents added (including merged ones).
  std::uint64_t documents() const noexcept { return documents_; }

  /// Number of hashed term buckets.
  std::size_t buckets() const noexcept { return counts_.size(); }

  /// Adds `other`'s counts (saturating). @throws ValidationError if the bucket counts differ.
  void merge(const CorpusStats& other) {
    require_same_shape(other, "merge");
    for (std::size_t b = 0; b < counts_.size(); ++b) {
      const std::uint64_t sum = std::uint64_t{counts_[b]} + other.counts_[b];
      counts_[b] = static_cast<std::uint32_t>(std::min<std::uint64_t>(sum, std::numeric_limits<std::uint32_t>::max()));
    }
    documents_ += other.documents_;
  }

  /// `this - base`: the documents added since `base` was copied, for persisting increments.
  /// @throws ValidationError if the shapes differ or `base` is not contained in `this`.
  CorpusStats delta_since(const CorpusStats& base) const {
    require_same_shape(base, "delta_since");
    if (base.documents_ > documents_) {
      throw ValidationError("corpus_stats", "delta_since: base has " + std::to_string(base.documents_) +
                                                " documents, more than this (" + std::to_string(documents_) + ")");
    }
    CorpusStats out(counts_.size());
    out.documents_ = documents_ - base.documents_;
    for (std::size_t b = 0; b < counts_.size(); ++b) {
      if (base.counts_[b] > counts_[b]) {
        throw ValidationError("corpus_stats", "delta_since: bucket " + std::to_string(b) + " of base (" +
                                                  std::to_string(base.counts_[b]) + ") exceeds this (" +
                                                  std::to_string(counts_[b]) + ")");
      }
      out.counts_[b] = counts_[b] - base.counts_[b];
    }
    return out;
  }

  /// Compact little-endian binary: "PLCS", version byte 1, uint32 buckets, uint64 documents, then one
  /// LEB128 varint per bucket (one byte for counts below 128, so a sparse corpus costs ~1 byte/bucket).
  std::string to_blob() const {
    std::string out = "PLCS";
    out.push_back(static_cast<char>(kBlobVersion));
    put_le(out, static_cast<std::uint64_t>(counts_.size()), 4);
    put_le(out, documents_, 8);
    for (std::uint32_t c : counts_) {
      while (c >= 0x80) {
        out.push_back(static_cast<char>((c & 0x7F) | 0x80));
        c >>= 7;
      }
      out.push_back(static_cast<char>(c));
    }
    return out;
  }

  /// Parses to_blob output. @throws ValidationError on a wrong magic, version, size, an over-long
  /// varint, a count above the document count, or trailing bytes.
  static CorpusStats from_blob(std::string_view blob) {
    constexpr std::size_t kHeader = 4 + 1 + 4 + 8;
    if (blob.size() < kHeader) {
      throw ValidationError("corpus_stats",
                            "blob of " + std::to_string(blob.size()) + " bytes is shorter than the 17-byte header");
    }
    if (blob.substr(0, 4) != "PLCS") throw ValidationError("corpus_stats", "blob does not start with \"PLCS\"");
    if (static_cast<unsigned char>(blob[4]) != kBlobVersion) {
      throw ValidationError("corpus_stats",
                            "blob version " + std::to_string(static_cast<unsigned char>(blob[4])) + " is not 1");
    }
    const std::uint64_t buckets = get_le(blob, 5, 4);
    const std::uint64_t documents = get_le(blob, 9, 8);
    if (buckets < 1 || buckets > kMaxBuckets) {
      throw ValidationError("corpus_stats", "blob bucket count " + std::to_string(buckets) + " is outside [1, " +
                                                std::to_string(kMaxBuckets) + "]");
    }
    if (blob.size() - kHeader < buckets) {
      throw ValidationError("corpus_stats", "blob of " + std::to_string(blob.size()) + " bytes is too short for " +
                                                std::to_string(buckets) + " buckets");
    }
    CorpusStats out(static_cast<std::size_t>(buckets));
    out.documents_ = documents;
    std::size_t pos = kHeader;
    for (std::size_t b = 0; b < buckets; ++b) {
      std::uint64_t value = 0;
      int shift = 0;
      while (true) {
        if (pos >= blob.size()) throw ValidationError("corpus_stats", "blob truncated in bucket " + std::to_string(b));
        const auto byte = static_cast<unsigned char>(blob[pos++]);
        value |= std::uint64_t{byte & 0x7Fu} << shift;
        if ((byte & 0x80u) == 0) break;
        shift += 7;
        if (shift > 28) throw ValidationError("corpus_stats", "blob varint too long in bucket " + std::to_string(b));
      }
      if (value > std::numeric_limits<std::uint32_t>::max() || value > documents) {
        throw ValidationError("corpus_stats", "bucket " + std::to_string(b) + " count " + std::to_string(value) +
                                                  " exceeds the document count " + std::to_string(documents));
      }
      out.counts_[b] = static_cast<std::uint32_t>(value);
    }
    if (pos != blob.size()) {
      throw ValidationError("corpus_stats", std::to_string(blob.size() - pos) + " trailing bytes after the buckets");
    }
    return out;
  }

  /// Equal counts and document totals.
  friend bool operator==(const CorpusStats& a, const CorpusStats& b) {
    return a.documents_ == b.documents_ && a.counts_ == b.counts_;
  }
  /// Not equal.
  friend bool operator!=(const CorpusStats& a, const CorpusStats& b) { return !(a == b); }

 private:
  static constexpr std::size_t kMaxBuckets = std::size_t{1} << 24;
  static constexpr unsigned kBlobVersion = 1;

  std::size_t bucket_of(std::string_view term) const noexcept {
    return static_cast<std::size_t>(stable_hash(term) % counts_.size());
  }
  void require_same_shape(const CorpusStats& other, const char* op) const {
    if (other.counts_.size() != counts_.size()) {
      throw ValidationError("corpus_stats", std::string(op) + ": bucket counts differ (" +
                                                std::to_string(counts_.size()) + " vs " +
                                                std::to_string(other.counts_.size()) + ")");
    }
  }
  static void put_le(std::string& out, std::uint64_t v, int bytes) {
    for (int k = 0; k < bytes; ++k) out.push_back(static_cast<char>((v >> (8 * k)) & 0xFF));
  }
  static std::uint64_t get_le(std::string_view s, std::size_t pos, int bytes) {
    std::uint64_t v = 0;
    for (int k = 0; k < bytes; ++k) v |= std::uint64_t{static_cast<unsigned char>(s[pos + static_cast<std::size_t>(k)])} << (8 * k);
    return v;
  }

  std::vector<std::uint32_t> counts_;
  std::uint64_t documents_ = 0;
};

/// One ranked keyword.
struct ScoredTerm {
  std::string term;        ///< lower-case term
  std::int64_t count = 0;  ///< occurrences in the text
  double score = 0.0;      ///< (1 + ln count) * idf
};

/// Ranks the terms of `text` by sublinear TF-IDF, score = (1 + ln tf) * corpus.idf(term); ties keep the
/// order of first occurrence. Returns at most `max_terms`.
inline std::vector<ScoredTerm> rank_keywords(std::string_view text, const CorpusStats& corpus, std::size_t max_terms) {
  struct Slot {
    std::int64_t count;
    std::size_t first;
  };
  std::unordered_map<std::string, Slot> counts;
  std::vector<std::string> order;
  detail::for_each_word(text, [&](std::string_view w, bool) {
    if (!is_term(w)) return;
    auto it = counts.find(std::string(w));
    if (it == counts.end()) {
      counts.emplace(std::string(w), Slot{1, order.size()});
      order.emplace_back(w);
    } else {
      ++it->second.count;
    }
  });
  std::vector<ScoredTerm> scored;
  scored.reserve(order.size());
  for (auto& t : order) {
    const std::int64_t c = counts[t].count;
    const double score = (1.0 + std::log(static_cast<double>(c))) * corpus.idf(t);
    scored.push_back(ScoredTerm{std::move(t), c, score});
  }
  // stable_sort keeps first-occurrence order among equal scores
  std::stable_sort(scored.begin(), scored.end(),
                   [](const ScoredTerm& a, const ScoredTerm& b) { return a.score > b.score; });
  if (scored.size() > max_terms) scored.resize(max_terms);
  return scored;
}

}  // namespace promptlearn::features
