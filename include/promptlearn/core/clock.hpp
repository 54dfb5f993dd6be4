#pragma once
/// @file Injectable time source: the engine never reads the system clock directly.
#include <atomic>
#include <chrono>
#include <cstdint>

namespace promptlearn {

/// Milliseconds since the Unix epoch, UTC.
using TimeMs = std::int64_t;

/// Source of "now". Thread-safety: implementations must be safe to call from several threads.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Current time in milliseconds since the Unix epoch.
  virtual TimeMs now_ms() const = 0;
};

/// The wall clock (std::chrono::system_clock).
class SystemClock final : public Clock {
 public:
  TimeMs now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

/// A clock that only moves when told to: for tests and simulations on virtual time.
/// Thread-safety: set/advance/now may be called concurrently.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimeMs start = 0) : now_(start) {}
  TimeMs now_ms() const override { return now_.load(std::memory_order_acquire); }
  void set(TimeMs t) { now_.store(t, std::memory_order_release); }
  void advance(TimeMs dt) { now_.fetch_add(dt, std::memory_order_acq_rel); }

 private:
  std::atomic<TimeMs> now_;
};

}  // namespace promptlearn
