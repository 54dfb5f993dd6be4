#pragma once
/// @file
/// The in-memory view of one stored interaction that the pattern detectors read (layer 2: no I/O).
/// The engine fills these from the SQLite file (interactions joined with performance and outcomes);
/// tests and hosts may build them directly.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "promptlearn/core/clock.hpp"

namespace promptlearn::patterns {

inline constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

/// One interaction with what is known about it. Absent optional values are NaN (numbers) or empty.
struct EventRecord {
  TimeMs time = 0;                     ///< interaction timestamp, ms since the Unix epoch (UTC)
  std::string interaction_id;
  std::string user_id;                 ///< "" when unknown
  std::string session_id;              ///< "" when unknown
  std::string template_id;             ///< selected template ("" when none was applied)
  bool enhancement_applied = true;     ///< false = the user bypassed enhancement
  std::string domain;                  ///< feature extractor's domain ("" when unknown)
  int complexity = 0;                  ///< 1..10 (0 = unknown)
  int token_count = 0;                 ///< 0 = unknown
  std::vector<std::string> keywords;   ///< detected keywords, most important first
  double quality = kMissing;           ///< outcome response_quality_score, 0..10
  double satisfaction = kMissing;      ///< outcome user_satisfaction_rating, 1..5
  bool accepted = false;               ///< outcome acceptance (valid only when has_outcome)
  bool has_outcome = false;
  double response_time_ms = kMissing;  ///< outcome claude_response_time_ms
  /// Stage timings from the performance report (NaN when absent): the total and its four stages.
  double total_processing_ms = kMissing, template_selection_ms = kMissing, enhancement_generation_ms = kMissing,
         validation_ms = kMissing, cleanup_ms = kMissing;
  std::vector<double> features;        ///< feature vector (for clustering); may be empty
};

/// True if v holds a value (not NaN).
inline bool present(double v) { return !std::isnan(v); }

}  // namespace promptlearn::patterns
