#pragma once
// Rollup helpers shared by the engine's monitoring and lifecycle code (private to src/engine).
#include <map>
#include <string>
#include <vector>

#include "promptlearn/core/clock.hpp"
#include "promptlearn/monitor/metrics.hpp"

namespace promptlearn {
namespace store {
class Store;
}
namespace monitoring {

constexpr TimeMs kHourMs = 3600000LL;
/// The start of the hour `t` falls in.
inline TimeMs hour_of(TimeMs t) {
  TimeMs q = t / kHourMs;
  if (t % kHourMs != 0 && t < 0) --q;
  return q * kHourMs;
}

/// Rebuilds the hourly rollups of `hours` (hour starts) from the raw rows now in the file (an hour without
/// rows loses its rollup), then re-merges every day they touch from its hourly rows. Inside the caller's
/// transaction. The windows built are handed back in `windows` when given. Returns the hours written.
std::size_t roll_up_hours(store::Store& st, const std::vector<TimeMs>& hours, TimeMs now,
                          std::map<TimeMs, monitor::MetricsWindow>* windows = nullptr);

/// The hours (starts) already rolled up in which one user's performance reports fall.
std::vector<TimeMs> rolled_up_hours_of_user(store::Store& st, const std::string& stored_id);

}  // namespace monitoring
}  // namespace promptlearn
