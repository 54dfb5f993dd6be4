#pragma once
/// @file RFC 3339 timestamps <-> milliseconds since the Unix epoch (UTC).
#include <optional>
#include <string>
#include <string_view>

#include "promptlearn/core/clock.hpp"

namespace promptlearn {

/// 10000-01-01T00:00:00Z: timestamps are kept below it so that their text form has a fixed width.
inline constexpr TimeMs kMaxTimeMs = 253402300800000LL;

/// Parses an RFC 3339 date-time ("2025-01-15T10:30:00Z", "2025-01-15T10:30:00.123+02:00").
/// Returns std::nullopt when the text is not a valid RFC 3339 date-time (calendar checked, leap years
/// included) or, once converted to UTC, falls outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z.
std::optional<TimeMs> try_parse_rfc3339(std::string_view text);

/// Formats as RFC 3339 UTC with milliseconds: "2025-01-15T10:30:00.000Z" (fixed width, sorts as text).
std::string format_rfc3339(TimeMs t);

/// Hour of day (0-23, UTC) of a timestamp.
int hour_of_day_utc(TimeMs t);

/// Day of week (0 = Monday ... 6 = Sunday, UTC) of a timestamp.
int day_of_week_utc(TimeMs t);

}  // namespace promptlearn
