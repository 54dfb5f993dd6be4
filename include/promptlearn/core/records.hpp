#pragma once
/// @file The event records of DESIGN.md section 3 and their strict JSON mapping.
///
/// The JSON field names are the wire format: a host hands these documents in as they stand.
/// Every optional field is std::optional: "absent" and "zero" are different facts.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "promptlearn/core/clock.hpp"

namespace promptlearn {

/// `input_data`: the user's prompt and what was derived from it (derived fields are filled when absent).
struct InputData {
  std::string raw_prompt;
  std::optional<std::string> processed_input;
  std::optional<std::int64_t> token_count;
  std::optional<double> complexity_score;               ///< 1-10
  std::optional<std::vector<std::string>> detected_keywords;
  std::optional<std::string> domain;
};

/// `context_data`: where the prompt was written.
struct ContextData {
  std::optional<std::string> working_directory;
  std::optional<std::vector<std::string>> recent_files;
  std::optional<std::string> git_branch;
  std::optional<std::string> ide_detected;
};

/// `enhancement_data`: what the host did to the prompt.
struct EnhancementData {
  std::optional<std::string> selected_template;
  std::optional<std::string> template_version;          ///< accepted as a JSON string or integer
  std::optional<bool> enhancement_applied;
  std::optional<double> enhancement_time_ms;
  std::optional<std::int64_t> enhanced_prompt_length;
};

/// `performance_metrics.resource_usage`.
struct ResourceUsage {
  std::optional<double> memory_peak_mb;
  std::optional<double> cpu_usage_percent;
  std::optional<double> disk_io_mb;
};

/// `performance_metrics.cache_performance`.
struct CachePerformance {
  std::optional<bool> template_cache_hit;
  std::optional<bool> analysis_cache_hit;
  std::optional<double> cache_hit_rate;                 ///< 0-1
};

/// `performance_metrics`: per-stage timings of one enhancement.
struct Performance {
  std::optional<double> total_processing_time_ms;
  std::optional<double> template_selection_time_ms;
  std::optional<double> enhancement_generation_time_ms;
  std::optional<double> validation_time_ms;
  std::optional<double> cleanup_time_ms;
  std::optional<ResourceUsage> resource_usage;
  std::optional<CachePerformance> cache_performance;
};

/// `outcome_data.quality_metrics`, each 0-1.
struct QualityMetrics {
  std::optional<double> completeness;
  std::optional<double> accuracy;
  std::optional<double> relevance;
  std::optional<double> structure;
};

/// `outcome_data.feedback_data.implicit_feedback`.
struct ImplicitFeedback {
  std::optional<std::int64_t> copy_action_count;
  std::optional<std::int64_t> edit_action_count;
  std::optional<double> acceptance_rate;                ///< 0-1
};

/// `outcome_data.feedback_data`.
struct FeedbackData {
  std::optional<std::string> explicit_feedback;
  std::optional<ImplicitFeedback> implicit_feedback;
};

/// `outcome_data`: how the enhanced prompt fared.
struct Outcome {
  std::optional<double> claude_response_time_ms;
  std::optional<double> response_quality_score;         ///< 0-10
  std::optional<double> user_satisfaction_rating;       ///< 1-10
  std::optional<QualityMetrics> quality_metrics;
  std::optional<FeedbackData> feedback_data;
  std::optional<double> reward;                         ///< 0-1, a reward given directly by the host (extension)
};

/// One wire document: an interaction id and any of the sections. The first event carrying
/// input_data creates the interaction; later ones attach performance or outcome to it.
struct Event {
  std::string interaction_id;                           ///< UUID v4
  std::optional<TimeMs> timestamp;                      ///< RFC 3339 on the wire
  std::optional<std::string> session_id;
  std::optional<std::string> user_id;
  std::optional<InputData> input_data;
  std::optional<ContextData> context_data;
  std::optional<EnhancementData> enhancement_data;
  std::optional<Performance> performance_metrics;
  std::optional<Outcome> outcome_data;
};

/// Limits applied by validation (string lengths and list sizes).
struct ValidationLimits {
  std::size_t max_prompt_chars = 200000;   ///< input_data.raw_prompt and processed_input, in bytes
  std::size_t max_id_chars = 256;          ///< session_id, user_id, template ids
  std::size_t max_text_chars = 10000;      ///< explicit feedback
  std::size_t max_path_chars = 4096;       ///< paths, branch names
  std::size_t max_list_items = 1000;       ///< recent_files, detected_keywords
  std::size_t max_keyword_chars = 200;
};

/// Deepest nesting of arrays/objects a wire document may have (they have 4; the bound keeps
/// recursive JSON code safe from stack exhaustion on hostile input).
inline constexpr int kMaxJsonDepth = 32;

/// True if the JSON text nests arrays/objects deeper than `limit` (a linear scan, no parsing).
bool json_text_nests_deeper(std::string_view text, int limit) noexcept;
/// True if the JSON value nests deeper than `limit` (recursion bounded by `limit`).
bool json_nests_deeper(const nlohmann::json& doc, int limit);

/// True if `s` is a canonical RFC 4122 version-4 UUID (8-4-4-4-12 hex, version nibble 4, variant 8-b).
bool is_uuid_v4(std::string_view s) noexcept;

/// Parses and validates a wire document. Unknown keys are errors (they are usually typos).
/// @throws ValidationError naming the JSON path and the offending value.
Event parse_event(const nlohmann::json& doc, const ValidationLimits& limits = {});

/// Parses JSON text then validates it; malformed JSON is a ValidationError with path "" and the parser's position.
/// @throws ValidationError
Event parse_event_text(std::string_view text, const ValidationLimits& limits = {});

/// The wire document of an event (absent optionals are omitted; timestamp as RFC 3339 UTC).
nlohmann::json to_json(const Event& event);
nlohmann::json to_json(const InputData& v);
nlohmann::json to_json(const ContextData& v);
nlohmann::json to_json(const EnhancementData& v);
nlohmann::json to_json(const Performance& v);
nlohmann::json to_json(const Outcome& v);

}  // namespace promptlearn
