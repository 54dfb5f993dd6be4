#pragma once
/// @file The feature extractor: prompt + context_data -> PromptFeatures -> Eigen vector.
///
/// Vector layout (dimension() = kDenseDim + hash_dim):
///   0        1 (bias)
///   1        complexity_score / 10
///   2        log1p(token_count) / 10
///   3        technical_density
///   4        min(1, log1p(requirements) / log1p(32))
///   5        min(1, log1p(code_blocks) / log1p(8))
///   6        domain_confidence
///   7..14    domain one-hot, Domain order: general, programming, writing, data_analysis, devops,
///            research, math, roleplay
///   15, 16   sin, cos of 2*pi*hour/24 (0, 0 when the hour is unknown)
///   17       1 if the hour is known
///   18..23   branch kind one-hot: main, feature, fix, release, other, none
///   24..     hash_dim signed-hashed features (Weinberger et al. 2009, "Feature hashing for large scale
///            multitask learning"): "kw:<keyword>" with value 1/sqrt(#keywords), "lang:<language>" with
///            1/sqrt(#languages), "ide:<ide>" with 1. h = stable_hash(name) (FNV-1a 64 + fmix64); index h mod hash_dim;
///            sign + if bit 63 of h is 0, else -. Collisions add.
#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "promptlearn/core/error.hpp"
#include "promptlearn/features/complexity.hpp"
#include "promptlearn/features/context.hpp"
#include "promptlearn/features/domain.hpp"
#include "promptlearn/features/keywords.hpp"
#include "promptlearn/features/tokenizer.hpp"

namespace promptlearn::features {

/// Options of the feature extractor; member initialisers are the defaults.
struct FeatureOptions {
  int hash_dim = 256;             ///< dimension of the hashed sparse part of the vector, 8..2^20
  std::size_t max_keywords = 10;  ///< detected_keywords kept, 0..1000

  /// @throws ConfigError naming "features.hash_dim" or "features.max_keywords" when out of range.
  void validate() const {
    if (hash_dim < 8 || hash_dim > (1 << 20)) {
      throw ConfigError("features.hash_dim", std::to_string(hash_dim) + " is outside [8, 1048576]");
    }
    if (max_keywords > 1000) {
      throw ConfigError("features.max_keywords", std::to_string(max_keywords) + " is outside [0, 1000]");
    }
  }
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(FeatureOptions, hash_dim, max_keywords)

/// Everything the extractor derives from one prompt and its context.
struct PromptFeatures {
  std::string processed_input;                 ///< normalize_text(prompt): valid UTF-8, case kept
  std::int64_t token_count = 0;                ///< estimate_tokens (approximate cl100k count)
  double complexity_score = 1.0;               ///< 1..10, see complexity.hpp
  std::vector<std::string> detected_keywords;  ///< lower case, ranked by TF-IDF
  std::string domain = "general";              ///< domain_name of the classifier's choice
  double domain_confidence = 1.0;              ///< 0..1
  std::vector<std::string> languages;          ///< from recent_files, distinct, first-seen order
  std::string branch_kind = "none";            ///< main | feature | fix | release | other | none
  std::string ide = "none";                    ///< vscode | jetbrains | vim | emacs | claude-code | other | none
  int code_blocks = 0;                         ///< complexity component
  int requirements = 0;                        ///< complexity component
  double technical_density = 0.0;              ///< complexity component, 0..1
  std::int64_t char_count = 0;                 ///< code points of the sanitised prompt (layout kept)
  std::int64_t word_count = 0;                 ///< whitespace-separated words
};

/// Writes every field under its member name.
inline void to_json(nlohmann::json& j, const PromptFeatures& f) {
  j = nlohmann::json{{"processed_input", f.processed_input},
                     {"token_count", f.token_count},
                     {"complexity_score", f.complexity_score},
                     {"detected_keywords", f.detected_keywords},
                     {"domain", f.domain},
                     {"domain_confidence", f.domain_confidence},
                     {"languages", f.languages},
                     {"branch_kind", f.branch_kind},
                     {"ide", f.ide},
                     {"code_blocks", f.code_blocks},
                     {"requirements", f.requirements},
                     {"technical_density", f.technical_density},
                     {"char_count", f.char_count},
                     {"word_count", f.word_count}};
}

/// Reads the fields written by to_json; missing fields keep their defaults.
/// @throws nlohmann::json::type_error when a present field has the wrong type.
inline void from_json(const nlohmann::json& j, PromptFeatures& f) {
  const PromptFeatures d;
  f.processed_input = j.value("processed_input", d.processed_input);
  f.token_count = j.value("token_count", d.token_count);
  f.complexity_score = j.value("complexity_score", d.complexity_score);
  f.detected_keywords = j.value("detected_keywords", d.detected_keywords);
  f.domain = j.value("domain", d.domain);
  f.domain_confidence = j.value("domain_confidence", d.domain_confidence);
  f.languages = j.value("languages", d.languages);
  f.branch_kind = j.value("branch_kind", d.branch_kind);
  f.ide = j.value("ide", d.ide);
  f.code_blocks = j.value("code_blocks", d.code_blocks);
  f.requirements = j.value("requirements", d.requirements);
  f.technical_density = j.value("technical_density", d.technical_density);
  f.char_count = j.value("char_count", d.char_count);
  f.word_count = j.value("word_count", d.word_count);
}

/// Turns prompts into PromptFeatures and feature vectors. Deterministic, no I/O, total on any byte string.
/// Thread-safety: immutable after construction; all members are const and may be called concurrently.
class FeatureExtractor {
 public:
  /// Number of dense leading vector entries (see the file comment for the layout).
  static constexpr int kDenseDim = 24;
  /// Offset of the domain one-hot block.
  static constexpr int kDomainOffset = 7;
  /// Offset of the hour features (sin, cos, known).
  static constexpr int kHourOffset = 15;
  /// Offset of the branch-kind one-hot block.
  static constexpr int kBranchOffset = 18;

  /// @throws ConfigError if `options` fails FeatureOptions::validate.
  explicit FeatureExtractor(FeatureOptions options = {}) : options_(options) { options_.validate(); }

  /// The options in use.
  const FeatureOptions& options() const noexcept { return options_; }

  /// Extracts all features of `prompt` (any bytes; invalid UTF-8 is replaced), ranking keywords against
  /// `corpus`. Never throws except std::bad_alloc. Example:
  /// `FeatureExtractor{}.extract("Fix the segfault in main.cpp", {}, CorpusStats{}).domain == "programming"`.
  PromptFeatures extract(std::string_view prompt, const ContextInput& context, const CorpusStats& corpus) const {
    PromptFeatures f;
    const std::string clean = sanitize_text(prompt);
    f.processed_input = normalize_text(clean);
    f.token_count = estimate_tokens(clean);
    f.char_count = count_code_points(clean);
    f.word_count = count_words(clean);
    const ComplexityComponents c = analyze_complexity(clean, f.token_count);
    f.code_blocks = c.code_blocks;
    f.requirements = c.requirements;
    f.technical_density = c.technical_density;
    f.complexity_score = complexity_score(c);
    for (auto& k : rank_keywords(clean, corpus, options_.max_keywords))
      f.detected_keywords.push_back(std::move(k.term));
    const DomainResult d = classify_domain(clean);
    f.domain = std::string(domain_name(d.domain));
    f.domain_confidence = d.confidence;
    f.languages = languages_of(context.recent_files);
    f.branch_kind = branch_kind(context.git_branch);
    f.ide = normalize_ide(context.ide_detected);
    return f;
  }

  /// Distinct stop-word-filtered terms of `prompt`, for CorpusStats::add_document.
  std::vector<std::string> terms(std::string_view prompt) const { return extract_terms(sanitize_text(prompt)); }

  /// The feature vector of `f` (layout in the file comment); `hour_of_day` is 0..23, or -1 if unknown.
  /// @throws ValidationError ("hour_of_day") for any other hour.
  Eigen::VectorXd vectorize(const PromptFeatures& f, int hour_of_day) const {
    if (hour_of_day < -1 || hour_of_day > 23) {
      throw ValidationError("hour_of_day", std::to_string(hour_of_day) + " is outside [0, 23] (or -1 for unknown)");
    }
    Eigen::VectorXd v = Eigen::VectorXd::Zero(dimension());
    v[0] = 1.0;
    v[1] = f.complexity_score / 10.0;
    v[2] = std::log1p(static_cast<double>(std::max<std::int64_t>(f.token_count, 0))) / 10.0;
    v[3] = f.technical_density;
    v[4] = std::min(1.0, std::log1p(static_cast<double>(std::max(f.requirements, 0))) / std::log1p(32.0));
    v[5] = std::min(1.0, std::log1p(static_cast<double>(std::max(f.code_blocks, 0))) / std::log1p(8.0));
    v[6] = f.domain_confidence;
    const int d = domain_index(f.domain);
    v[kDomainOffset + (d < 0 ? 0 : d)] = 1.0;
    if (hour_of_day >= 0) {
      const double angle = 2.0 * 3.14159265358979323846 * hour_of_day / 24.0;
      v[kHourOffset] = std::sin(angle);
      v[kHourOffset + 1] = std::cos(angle);
      v[kHourOffset + 2] = 1.0;
    }
    constexpr std::array<std::string_view, 6> kBranches = {"main", "feature", "fix", "release", "other", "none"};
    int b = 4;  // unknown strings count as "other"
    for (std::size_t i = 0; i < kBranches.size(); ++i) {
      if (kBranches[i] == f.branch_kind) b = static_cast<int>(i);
    }
    v[kBranchOffset + b] = 1.0;
    if (!f.detected_keywords.empty()) {
      const double w = 1.0 / std::sqrt(static_cast<double>(f.detected_keywords.size()));
      for (const auto& k : f.detected_keywords) add_hashed(v, "kw:" + k, w);
    }
    if (!f.languages.empty()) {
      const double w = 1.0 / std::sqrt(static_cast<double>(f.languages.size()));
      for (const auto& l : f.languages) add_hashed(v, "lang:" + l, w);
    }
    add_hashed(v, "ide:" + f.ide, 1.0);
    return v;
  }

  /// Size of vectorize's result: kDenseDim + hash_dim.
  int dimension() const noexcept { return kDenseDim + options_.hash_dim; }

  /// Index (within the whole vector) and sign of a hashed feature name.
  std::pair<int, double> hashed_slot(std::string_view name) const noexcept {
    const std::uint64_t h = stable_hash(name);
    const int index = kDenseDim + static_cast<int>(h % static_cast<std::uint64_t>(options_.hash_dim));
    return {index, (h >> 63) != 0 ? -1.0 : 1.0};
  }

 private:
  void add_hashed(Eigen::VectorXd& v, std::string_view name, double value) const {
    const auto slot = hashed_slot(name);
    v[slot.first] += slot.second * value;
  }

  FeatureOptions options_;
};

}  // namespace promptlearn::features
