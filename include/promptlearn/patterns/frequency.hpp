#pragma once
/// @file Frequency analysis over events in memory (layer 2, header-only: no I/O, no clock, no threads, no
/// globals): when people use the host (hour-of-day x day-of-week histogram, peak hours, daily and weekly
/// seasonality), how they work in sessions, what they ask about (keywords, domains, complexity) and how they
/// behave (template shares, bypass rate, retries, learning curve).
///
/// Conventions shared by every function here:
/// - Times are bucketed in "local" time = UTC + `utc_offset_minutes` (a fixed offset, no daylight saving).
///   Day of week 0 = Monday ... 6 = Sunday (1970-01-01 was a Thursday).
/// - Events are ordered by (time, position in the input), so equal timestamps keep their input order.
/// - A statistic that is undefined for the data (a median of nothing, a slope from < 3 points) is NaN,
///   which nlohmann::json writes as null.
/// - Per-user figures skip events with an empty user_id (anonymous events still count everywhere else).
///
/// Example:
///     std::vector<promptlearn::patterns::EventRecord> events = ...;  // e.g. read by the engine
///     promptlearn::patterns::FrequencyParams params;                // defaults: UTC, 30 min gap, ...
///     auto report = promptlearn::patterns::analyze_frequency(events, params);
///     for (const auto& peak : report.temporal.peak_hours) use(peak.hour, peak.ratio_to_expected);
///     nlohmann::json j = report;
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/stats.hpp"
#include "promptlearn/patterns/event.hpp"
#include "promptlearn/patterns/statistics.hpp"

namespace promptlearn::patterns {

// ---------------------------------------------------------------------------------------------------------
// Parameters

/// How interactions are grouped into sessions.
enum class SessionMethod {
  automatic,   ///< session_id when the event has one, else the inactivity gap per user (the default)
  session_id,  ///< session_id only; events without one are left out of sessions ("unsessioned")
  gap          ///< inactivity gap per user only; session ids are ignored
};

/// Knobs of the frequency analysis; member initialisers are the defaults. Thread-safety: plain value.
struct FrequencyParams {
  int utc_offset_minutes = 0;              ///< fixed offset of local time from UTC, [-720, 840]
  double alpha = 0.05;                     ///< significance level of every test and 1 - level of every CI, (0, 1)
  SessionMethod session_method = SessionMethod::automatic;  ///< see SessionMethod
  std::int64_t session_gap_ms = 30 * 60 * 1000;  ///< a gap longer than this starts a new session, > 0
  std::int64_t retry_window_ms = 5 * 60 * 1000;  ///< a retry follows its predecessor within this, >= 0
  double retry_min_jaccard = 0.5;          ///< keyword-set Jaccard similarity that makes a retry, (0, 1]
  std::size_t top_keywords = 20;           ///< keywords reported, [0, 100000]
  std::size_t learning_k = 5;              ///< first-k / last-k comparison of the learning curve, [1, 100000]

  /// @throws ConfigError naming `frequency.<member>` when a value is out of range.
  void validate() const {
    if (utc_offset_minutes < -720 || utc_offset_minutes > 840)
      throw ConfigError("frequency.utc_offset_minutes", fmt::format("{} is outside [-720, 840]", utc_offset_minutes));
    if (!(alpha > 0 && alpha < 1)) throw ConfigError("frequency.alpha", fmt::format("{} is outside (0, 1)", alpha));
    if (session_gap_ms <= 0)
      throw ConfigError("frequency.session_gap_ms", fmt::format("{} is not > 0", session_gap_ms));
    if (retry_window_ms < 0)
      throw ConfigError("frequency.retry_window_ms", fmt::format("{} is not >= 0", retry_window_ms));
    if (!(retry_min_jaccard > 0 && retry_min_jaccard <= 1))
      throw ConfigError("frequency.retry_min_jaccard", fmt::format("{} is outside (0, 1]", retry_min_jaccard));
    if (top_keywords > 100000)
      throw ConfigError("frequency.top_keywords", fmt::format("{} is outside [0, 100000]", top_keywords));
    if (learning_k < 1 || learning_k > 100000)
      throw ConfigError("frequency.learning_k", fmt::format("{} is outside [1, 100000]", learning_k));
  }
};

/// Writes "automatic" | "session_id" | "gap".
inline void to_json(nlohmann::json& j, SessionMethod m) {
  j = m == SessionMethod::automatic ? "automatic" : m == SessionMethod::session_id ? "session_id" : "gap";
}
/// Reads "automatic" | "session_id" | "gap".
/// @throws ConfigError naming `frequency.session_method` for anything else (the nlohmann enum macro
/// would silently map unknown text to the first value).
inline void from_json(const nlohmann::json& j, SessionMethod& m) {
  const std::string s = j.is_string() ? j.get<std::string>() : j.dump();
  if (s == "automatic") m = SessionMethod::automatic;
  else if (s == "session_id") m = SessionMethod::session_id;
  else if (s == "gap") m = SessionMethod::gap;
  else throw ConfigError("frequency.session_method", s + " is not one of automatic, session_id, gap");
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(FrequencyParams, utc_offset_minutes, alpha, session_method,
                                                session_gap_ms, retry_window_ms, retry_min_jaccard,
                                                top_keywords, learning_k)

// ---------------------------------------------------------------------------------------------------------
// Result types

/// Pearson's chi-square goodness-of-fit test of observed counts O_i against expected counts E_i:
/// X^2 = sum_i (O_i - E_i)^2 / E_i over the categories with E_i > 0, df = (those categories) - 1,
/// p = P(chi2_df >= X^2) (Pearson 1900).
struct ChiSquareTest {
  double statistic = 0;        ///< X^2
  int df = 0;                  ///< degrees of freedom (0 = nothing to test)
  double p_value = kMissing;   ///< upper tail; NaN when df == 0
  double min_expected = 0;     ///< smallest E_i > 0; the chi-square approximation is trusted when >= 5
                               ///< (Cochran 1954)
};

/// An hour of day used significantly more often than a uniform spread of the events would give.
struct PeakHour {
  int hour = 0;                     ///< 0..23, local time
  std::uint64_t count = 0;          ///< events in this hour
  double share = 0;                 ///< count / events
  double expected = 0;              ///< events / 24
  double ratio_to_expected = 0;     ///< count / expected
  double p_value = 1;               ///< exact one-sided binomial P(X >= count), X ~ Bin(events, 1/24)
  double p_adjusted = 1;            ///< Benjamini-Hochberg adjusted over the 24 hours
};

/// When events happen. Thread-safety: plain value.
struct TemporalResult {
  std::uint64_t events = 0;
  std::array<std::array<std::uint64_t, 24>, 7> weekday_hour{};  ///< [day of week, 0 = Monday][hour]
  std::array<std::uint64_t, 24> hourly{};                       ///< events per hour of day
  std::array<std::uint64_t, 7> weekday{};                       ///< events per day of week
  /// Calendar days of each weekday from the first to the last event's local date (inclusive): the
  /// exposure the weekly test expects counts in proportion to.
  std::array<std::uint64_t, 7> weekday_exposure_days{};
  /// Hour-of-day counts against the uniform E_h = events / 24, df 23: the daily-seasonality and
  /// peak-hours test.
  ChiSquareTest hourly_test;
  /// Day-of-week counts against E_d = events * days_d / days (exposure-adjusted, so that a span that is
  /// not a whole number of weeks does not look seasonal), df = weekdays with exposure - 1.
  ChiSquareTest weekday_test;
  bool daily_seasonality = false;   ///< hourly_test.p_value < alpha
  bool weekly_seasonality = false;  ///< weekday_test.p_value < alpha
  std::vector<PeakHour> peak_hours; ///< count > expected and p_adjusted < alpha; ascending hour
};

/// One session.
struct SessionInfo {
  std::string session_id;        ///< the event's session_id; "" for a session found by the gap rule
  std::string user_id;           ///< user of the session's first event
  TimeMs start = 0;              ///< first event's time
  TimeMs end = 0;                ///< last event's time
  std::int64_t duration_ms = 0;  ///< end - start (0 for a single interaction)
  std::uint64_t interactions = 0;
  bool by_gap = false;           ///< found by the inactivity-gap rule
};

/// Request frequency of one (non-anonymous) user.
struct UserFrequency {
  std::string user_id;
  std::uint64_t interactions = 0;
  std::uint64_t active_days = 0;            ///< distinct local dates with at least one interaction
  std::uint64_t sessions = 0;               ///< distinct sessions the user's events belong to
  double interactions_per_active_day = 0;   ///< interactions / active_days
  double interactions_per_session = kMissing;  ///< sessioned interactions / sessions (NaN: no session)
};

/// How interactions group into sessions. Thread-safety: plain value.
struct SessionResult {
  std::vector<SessionInfo> sessions;  ///< ordered by (start, user_id, session_id)
  std::uint64_t count = 0;            ///< sessions.size()
  std::uint64_t from_session_id = 0;  ///< sessions taken from session_id
  std::uint64_t from_gap = 0;         ///< sessions found by the gap rule
  std::uint64_t unsessioned = 0;      ///< events left out (SessionMethod::session_id without an id)
  double mean_duration_ms = kMissing;
  double median_duration_ms = kMissing;  ///< quantiles: linear interpolation between order statistics
  double p90_duration_ms = kMissing;     ///< (Hyndman & Fan 1996 type 7, numpy's default)
  double mean_interactions = kMissing;   ///< interactions per session
  double median_interactions = kMissing;
  std::vector<UserFrequency> users;      ///< ordered by user_id
  double mean_interactions_per_active_day = kMissing;    ///< over users
  double median_interactions_per_active_day = kMissing;  ///< over users
};

/// A key with its count and share of the relevant total.
struct CountShare {
  std::string key;
  std::uint64_t count = 0;
  double share = 0;
};

/// What events are about. Thread-safety: plain value.
struct ContentResult {
  std::uint64_t events = 0;
  /// Most frequent keywords by the number of events that mention them (a keyword repeated within one
  /// event counts once); share = count / events_with_keywords. Ties are broken by key.
  std::vector<CountShare> top_keywords;
  std::uint64_t distinct_keywords = 0;
  std::uint64_t events_with_keywords = 0;
  /// Every domain by count (ties by key); share = count / events with a domain.
  std::vector<CountShare> domains;
  std::uint64_t unknown_domain = 0;                  ///< events with domain ""
  std::array<std::uint64_t, 10> complexity_histogram{};  ///< [c - 1] = events of complexity c, c = 1..10
  std::uint64_t complexity_known = 0;                ///< events with complexity 1..10 (0 = unknown)
  double complexity_mean = kMissing;
  double complexity_median = kMissing;               ///< mean of the two middle values for an even count
};

/// A proportion with its Wilson score interval at level 1 - alpha (Wilson 1927):
/// centre = (p + z^2 / 2n) / (1 + z^2 / n), half-width = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2),
/// z = Phi^-1(1 - alpha / 2). Unlike the Wald interval it stays inside [0, 1] and keeps its coverage near
/// p = 0 or 1 (Brown, Cai & DasGupta 2001).
struct Proportion {
  std::uint64_t successes = 0;
  std::uint64_t trials = 0;
  double rate = kMissing;   ///< successes / trials (NaN when trials == 0)
  double lower = kMissing;
  double upper = kMissing;
};

/// Quality as a function of experience.
///
/// Each known user's interactions are numbered 1, 2, ... in time order (all interactions count, also those
/// without an outcome); every interaction with a quality value gives a point (index, quality). The pooled
/// ordinary-least-squares line quality = intercept + slope * index over all points has
/// slope = Sxy / Sxx, se = sqrt(SSE / (n - 2) / Sxx), t = slope / se with n - 2 degrees of freedom.
/// Pooling ignores that one user's points are correlated (a user effect); with users observed over similar
/// index ranges that inflates se (conservative), with very different ranges it can bias the slope.
///
/// First-k / last-k: for users with >= 2k quality values, the mean of their first k and last k values
/// (pooled: every such user weighs equally), and a paired t-test on the per-user differences
/// mean(last k) - mean(first k) (df = users - 1).
struct LearningCurve {
  std::uint64_t users = 0;         ///< known users with at least one quality value
  std::uint64_t points = 0;        ///< points in the fit
  double slope = kMissing;         ///< quality points per interaction
  double intercept = kMissing;
  double slope_se = kMissing;
  double slope_lower = kMissing;   ///< slope -/+ t_{1 - alpha/2, n-2} se
  double slope_upper = kMissing;
  double p_value = kMissing;       ///< two-sided, H0: slope = 0
  std::uint64_t k = 0;
  std::uint64_t first_last_users = 0;
  double first_k_mean = kMissing;
  double last_k_mean = kMissing;
  double first_last_difference = kMissing;  ///< last_k_mean - first_k_mean
  double first_last_p_value = kMissing;     ///< two-sided paired t-test; NaN with < 2 users
};

/// How people use the enhancer. Thread-safety: plain value.
///
/// Retry: an interaction is a retry when the previous interaction of the same session (sessions as in
/// analyze_sessions) happened at most `retry_window_ms` earlier and the two keyword sets have Jaccard
/// similarity |A n B| / |A u B| >= `retry_min_jaccard` (two empty sets are not similar: a prompt without
/// keywords is never a retry). retry_rate = retries / interactions that have a predecessor in their
/// session (the first interaction of a session cannot be a retry).
struct BehaviourResult {
  std::uint64_t events = 0;
  std::vector<CountShare> templates;   ///< by count (ties by key); share = count / events with a template
  std::uint64_t without_template = 0;  ///< events with template_id ""
  Proportion bypass;                   ///< enhancement_applied == false among all events
  std::uint64_t retries = 0;
  std::uint64_t retry_opportunities = 0;
  Proportion retry_rate;               ///< retries / retry_opportunities with its Wilson interval
  std::vector<std::size_t> retry_indices;  ///< positions in the input of the retries, ascending
  LearningCurve learning;
};

/// Everything analyze_frequency computes. Thread-safety: plain value.
struct FrequencyReport {
  std::uint64_t events = 0;
  TemporalResult temporal;
  SessionResult sessions;
  ContentResult content;
  BehaviourResult behaviour;
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ChiSquareTest, statistic, df, p_value, min_expected)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PeakHour, hour, count, share, expected, ratio_to_expected, p_value, p_adjusted)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TemporalResult, events, weekday_hour, hourly, weekday, weekday_exposure_days,
                                   hourly_test, weekday_test, daily_seasonality, weekly_seasonality, peak_hours)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SessionInfo, session_id, user_id, start, end, duration_ms, interactions, by_gap)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UserFrequency, user_id, interactions, active_days, sessions,
                                   interactions_per_active_day, interactions_per_session)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SessionResult, sessions, count, from_session_id, from_gap, unsessioned,
                                   mean_duration_ms, median_duration_ms, p90_duration_ms, mean_interactions,
                                   median_interactions, users, mean_interactions_per_active_day,
                                   median_interactions_per_active_day)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CountShare, key, count, share)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ContentResult, events, top_keywords, distinct_keywords, events_with_keywords,
                                   domains, unknown_domain, complexity_histogram, complexity_known,
                                   complexity_mean, complexity_median)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Proportion, successes, trials, rate, lower, upper)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(LearningCurve, users, points, slope, intercept, slope_se, slope_lower,
                                   slope_upper, p_value, k, first_last_users, first_k_mean, last_k_mean,
                                   first_last_difference, first_last_p_value)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(BehaviourResult, events, templates, without_template, bypass, retries,
                                   retry_opportunities, retry_rate, retry_indices, learning)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(FrequencyReport, events, temporal, sessions, content, behaviour)

// ---------------------------------------------------------------------------------------------------------
// Internals

namespace detail {

inline constexpr std::int64_t kMsPerDay = 86400000;
inline constexpr std::int64_t kMsPerHour = 3600000;
inline constexpr std::uint32_t kNoSession = std::numeric_limits<std::uint32_t>::max();

/// Floor division (rounds towards -infinity, so times before 1970 bucket correctly).
constexpr std::int64_t floor_div_frequency(std::int64_t a, std::int64_t b) noexcept {
  const std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/// Local date (days since 1970-01-01) of a timestamp shifted by offset_ms.
constexpr std::int64_t local_day(TimeMs t, std::int64_t offset_ms) noexcept {
  return floor_div_frequency(t + offset_ms, kMsPerDay);
}

/// Day of week of a day number, 0 = Monday (day 0 = 1970-01-01 = Thursday = 3).
constexpr int weekday_of_day(std::int64_t day) noexcept {
  const std::int64_t r = (day + 3) % 7;
  return static_cast<int>(r < 0 ? r + 7 : r);
}

/// Checks the fields the analysis reads.
/// @throws ValidationError naming `events[i].complexity` or `events[i].quality`.
inline void validate_events_frequency(const std::vector<EventRecord>& events) {
  for (std::size_t i = 0; i < events.size(); ++i) {
    const EventRecord& e = events[i];
    if (e.complexity < 0 || e.complexity > 10)
      throw ValidationError(fmt::format("events[{}].complexity", i),
                            fmt::format("{} is outside [0, 10] (0 = unknown)", e.complexity));
    if (present(e.quality) && !(e.quality >= 0 && e.quality <= 10))
      throw ValidationError(fmt::format("events[{}].quality", i), fmt::format("{} is outside [0, 10]", e.quality));
  }
}

/// Pearson chi-square of observed[i] against expected[i] (categories with expected <= 0 skipped).
inline ChiSquareTest chi_square_frequency(const std::uint64_t* observed, const double* expected, std::size_t k) {
  ChiSquareTest t;
  int used = 0;
  double min_e = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < k; ++i) {
    if (!(expected[i] > 0)) continue;
    const double d = static_cast<double>(observed[i]) - expected[i];
    t.statistic += d * d / expected[i];
    min_e = std::min(min_e, expected[i]);
    ++used;
  }
  t.df = used > 0 ? used - 1 : 0;
  t.min_expected = used > 0 ? min_e : 0;
  if (t.df > 0) t.p_value = chi_square_sf(t.statistic, t.df);
  return t;
}

/// Exact binomial upper tail P(X >= c), X ~ Bin(n, p) = I_p(c, n - c + 1) (Abramowitz & Stegun 26.5.24).
inline double binomial_upper_tail_frequency(std::uint64_t c, std::uint64_t n, double p) {
  if (c == 0) return 1;
  if (c > n) return 0;
  return promptlearn::detail::incomplete_beta_xy(static_cast<double>(c), static_cast<double>(n - c + 1), p, 1 - p);
}

/// Wilson score interval; see Proportion.
inline Proportion wilson_frequency(std::uint64_t successes, std::uint64_t trials, double alpha) {
  Proportion r;
  r.successes = successes;
  r.trials = trials;
  if (trials == 0) return r;
  const double n = static_cast<double>(trials), p = static_cast<double>(successes) / n;
  const double z = normal_quantile(1 - alpha / 2), z2 = z * z;
  const double denom = 1 + z2 / n;
  const double centre = (p + z2 / (2 * n)) / denom;
  const double half = z / denom * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  r.rate = p;
  r.lower = std::max(0.0, centre - half);
  r.upper = std::min(1.0, centre + half);
  return r;
}

/// Type-7 quantile of sorted values (NaN when empty).
inline double quantile_sorted_frequency(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return kMissing;
  const double h = (static_cast<double>(sorted.size()) - 1) * q;
  const auto lo = static_cast<std::size_t>(std::floor(h));
  if (lo + 1 >= sorted.size()) return sorted.back();
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[lo + 1] - sorted[lo]);
}

/// Median of values (sorted in place; NaN when empty).
inline double median_frequency(std::vector<double>& values) {
  std::sort(values.begin(), values.end());
  return quantile_sorted_frequency(values, 0.5);
}

/// Jaccard similarity of two keyword lists taken as sets (duplicates ignored); 0 when both are empty.
/// O(|a| |b|) comparisons and no allocation: keyword lists are short.
inline double keyword_jaccard(const std::vector<std::string>& a, const std::vector<std::string>& b) noexcept {
  std::size_t distinct_a = 0, distinct_b = 0, common = 0;
  for (auto it = a.begin(); it != a.end(); ++it) {
    if (std::find(a.begin(), it, *it) != it) continue;  // seen earlier in a
    ++distinct_a;
    if (std::find(b.begin(), b.end(), *it) != b.end()) ++common;
  }
  for (auto it = b.begin(); it != b.end(); ++it)
    if (std::find(b.begin(), it, *it) == it) ++distinct_b;
  const std::size_t uni = distinct_a + distinct_b - common;
  return uni == 0 ? 0.0 : static_cast<double>(common) / static_cast<double>(uni);
}

/// Streaming simple linear regression: means and centred co-moments by Welford's update.
struct OlsAccumulator {
  std::uint64_t n = 0;
  double mean_x = 0, mean_y = 0, sxx = 0, sxy = 0, syy = 0;
  void add(double x, double y) noexcept {
    ++n;
    const double dx = x - mean_x, dy = y - mean_y, inv = 1.0 / static_cast<double>(n);
    mean_x += dx * inv;
    mean_y += dy * inv;
    sxx += dx * (x - mean_x);
    syy += dy * (y - mean_y);
    sxy += dx * (y - mean_y);
  }
};

/// Sort key of one event inside a group (user or session): orders by (group, time, input position).
struct GroupKey {
  std::uint32_t group;
  std::uint32_t index;
  TimeMs time;
  friend bool operator<(const GroupKey& a, const GroupKey& b) noexcept {
    if (a.group != b.group) return a.group < b.group;
    if (a.time != b.time) return a.time < b.time;
    return a.index < b.index;
  }
};

/// A session being accumulated.
struct SessionAcc {
  std::string_view session_id;
  std::uint32_t user = 0;
  TimeMs start = 0, end = 0;
  std::uint64_t interactions = 0;
  bool by_gap = false;
};

/// Users and sessions of a batch of events, built once and shared by the session and behaviour analyses.
/// Views point into the events, which must outlive the index.
struct SessionIndex {
  std::vector<std::string_view> user_names;  ///< by user number; numbers follow name order
  std::vector<std::uint32_t> user_of;        ///< per event
  std::vector<GroupKey> by_user;             ///< all events ordered by (user, time, position)
  std::vector<std::uint32_t> session_of;     ///< per event; kNoSession when unsessioned
  std::vector<SessionAcc> sessions;          ///< by session number
  std::uint64_t unsessioned = 0;
};

inline SessionIndex build_session_index(const std::vector<EventRecord>& events, const FrequencyParams& params) {
  SessionIndex ix;
  const std::size_t n = events.size();
  if (n > std::numeric_limits<std::uint32_t>::max() - 1)
    throw ValidationError("events", fmt::format("{} events exceed the limit of 2^32 - 2", n));
  ix.user_of.resize(n);
  ix.session_of.assign(n, kNoSession);
  ix.by_user.resize(n);
  {
    std::unordered_map<std::string_view, std::uint32_t> users;
    users.reserve(1024);
    for (std::size_t i = 0; i < n; ++i) {
      auto [it, added] = users.try_emplace(events[i].user_id, static_cast<std::uint32_t>(ix.user_names.size()));
      if (added) ix.user_names.push_back(it->first);
      ix.user_of[i] = it->second;
    }
  }
  // Number users in name order, so that every later pass (and every floating-point sum) visits them in an
  // order that does not depend on the order of the input.
  {
    const std::size_t m = ix.user_names.size();
    std::vector<std::uint32_t> by_name(m), renumber(m);
    for (std::uint32_t u = 0; u < m; ++u) by_name[u] = u;
    std::sort(by_name.begin(), by_name.end(),
              [&](std::uint32_t a, std::uint32_t b) { return ix.user_names[a] < ix.user_names[b]; });
    std::vector<std::string_view> sorted_names(m);
    for (std::uint32_t r = 0; r < m; ++r) {
      renumber[by_name[r]] = r;
      sorted_names[r] = ix.user_names[by_name[r]];
    }
    ix.user_names = std::move(sorted_names);
    for (std::size_t i = 0; i < n; ++i) {
      ix.user_of[i] = renumber[ix.user_of[i]];
      ix.by_user[i] = GroupKey{ix.user_of[i], static_cast<std::uint32_t>(i), events[i].time};
    }
  }
  std::sort(ix.by_user.begin(), ix.by_user.end());

  auto extend = [&](std::uint32_t s, std::size_t i) {
    SessionAcc& acc = ix.sessions[s];
    const TimeMs t = events[i].time;
    if (acc.interactions == 0 || t < acc.start) {
      acc.start = t;
      acc.user = ix.user_of[i];
    }
    if (acc.interactions == 0 || t > acc.end) acc.end = t;
    ++acc.interactions;
    ix.session_of[i] = s;
  };

  if (params.session_method != SessionMethod::gap) {
    std::unordered_map<std::string_view, std::uint32_t> ids;
    ids.reserve(1024);
    for (const GroupKey& key : ix.by_user) {  // user-time order makes session numbers deterministic
      const std::string& sid = events[key.index].session_id;
      if (sid.empty()) continue;
      auto [it, added] = ids.try_emplace(sid, static_cast<std::uint32_t>(ix.sessions.size()));
      if (added) {
        ix.sessions.emplace_back();
        ix.sessions.back().session_id = it->first;
      }
      extend(it->second, key.index);
    }
  }
  const bool gap_for_missing = params.session_method != SessionMethod::session_id;
  std::uint32_t current_user = kNoSession, current_session = kNoSession;
  TimeMs last_time = 0;
  for (const GroupKey& key : ix.by_user) {
    if (ix.session_of[key.index] != kNoSession) continue;  // has a session from its id
    if (!gap_for_missing) {
      ++ix.unsessioned;
      continue;
    }
    if (key.group != current_user || key.time - last_time > params.session_gap_ms) {
      current_user = key.group;
      current_session = static_cast<std::uint32_t>(ix.sessions.size());
      ix.sessions.emplace_back();
      ix.sessions.back().by_gap = true;
    }
    last_time = key.time;
    extend(current_session, key.index);
  }
  return ix;
}

inline TemporalResult temporal_impl(const std::vector<EventRecord>& events, const FrequencyParams& params) {
  TemporalResult r;
  r.events = events.size();
  if (events.empty()) return r;
  const std::int64_t offset_ms = static_cast<std::int64_t>(params.utc_offset_minutes) * 60000;
  std::int64_t first_day = std::numeric_limits<std::int64_t>::max();
  std::int64_t last_day = std::numeric_limits<std::int64_t>::min();
  for (const EventRecord& e : events) {
    const std::int64_t local = e.time + offset_ms;
    const std::int64_t day = floor_div_frequency(local, kMsPerDay);
    const int hour = static_cast<int>((local - day * kMsPerDay) / kMsPerHour);
    ++r.weekday_hour[static_cast<std::size_t>(weekday_of_day(day))][static_cast<std::size_t>(hour)];
    first_day = std::min(first_day, day);
    last_day = std::max(last_day, day);
  }
  for (std::size_t d = 0; d < 7; ++d)
    for (std::size_t h = 0; h < 24; ++h) {
      r.hourly[h] += r.weekday_hour[d][h];
      r.weekday[d] += r.weekday_hour[d][h];
    }
  const double total = static_cast<double>(r.events);

  std::array<double, 24> expected_hour;
  expected_hour.fill(total / 24);
  r.hourly_test = chi_square_frequency(r.hourly.data(), expected_hour.data(), 24);

  const std::int64_t span = last_day - first_day + 1;
  for (std::int64_t d = 0; d < 7; ++d) {
    // days in [first_day, last_day] with weekday w: whole weeks, plus one for the first (span % 7) days
    const auto w = static_cast<std::size_t>(weekday_of_day(first_day + d));
    r.weekday_exposure_days[w] = static_cast<std::uint64_t>(span / 7 + (d < span % 7 ? 1 : 0));
  }
  std::array<double, 7> expected_day;
  for (std::size_t d = 0; d < 7; ++d)
    expected_day[d] = total * static_cast<double>(r.weekday_exposure_days[d]) / static_cast<double>(span);
  r.weekday_test = chi_square_frequency(r.weekday.data(), expected_day.data(), 7);
  r.daily_seasonality = r.hourly_test.p_value < params.alpha;
  r.weekly_seasonality = r.weekday_test.p_value < params.alpha;

  std::vector<double> p(24);
  for (std::size_t h = 0; h < 24; ++h)  // clamped: rounding may put a tail a hair outside [0, 1]
    p[h] = std::clamp(binomial_upper_tail_frequency(r.hourly[h], r.events, 1.0 / 24), 0.0, 1.0);
  const std::vector<double> q = benjamini_hochberg(p, params.alpha).adjusted;
  for (std::size_t h = 0; h < 24; ++h) {
    const double count = static_cast<double>(r.hourly[h]);
    if (!(count > expected_hour[h] && q[h] < params.alpha)) continue;
    PeakHour peak;
    peak.hour = static_cast<int>(h);
    peak.count = r.hourly[h];
    peak.share = count / total;
    peak.expected = expected_hour[h];
    peak.ratio_to_expected = count / expected_hour[h];
    peak.p_value = p[h];
    peak.p_adjusted = q[h];
    r.peak_hours.push_back(peak);
  }
  return r;
}

inline SessionResult sessions_impl(const SessionIndex& ix, const FrequencyParams& params) {
  SessionResult r;
  r.unsessioned = ix.unsessioned;
  r.count = ix.sessions.size();
  r.sessions.reserve(ix.sessions.size());
  std::vector<double> durations, interactions;
  durations.reserve(ix.sessions.size());
  interactions.reserve(ix.sessions.size());
  for (const SessionAcc& s : ix.sessions) {
    SessionInfo info;
    info.session_id = std::string(s.session_id);
    info.user_id = std::string(ix.user_names[s.user]);
    info.start = s.start;
    info.end = s.end;
    info.duration_ms = s.end - s.start;
    info.interactions = s.interactions;
    info.by_gap = s.by_gap;
    (s.by_gap ? r.from_gap : r.from_session_id) += 1;
    durations.push_back(static_cast<double>(info.duration_ms));
    interactions.push_back(static_cast<double>(s.interactions));
    r.sessions.push_back(std::move(info));
  }
  std::sort(r.sessions.begin(), r.sessions.end(), [](const SessionInfo& a, const SessionInfo& b) {
    if (a.start != b.start) return a.start < b.start;
    if (a.user_id != b.user_id) return a.user_id < b.user_id;
    return a.session_id < b.session_id;
  });
  if (!durations.empty()) {
    double sum_d = 0, sum_i = 0;
    for (double d : durations) sum_d += d;
    for (double c : interactions) sum_i += c;
    r.mean_duration_ms = sum_d / static_cast<double>(durations.size());
    r.mean_interactions = sum_i / static_cast<double>(interactions.size());
    std::sort(durations.begin(), durations.end());
    r.median_duration_ms = quantile_sorted_frequency(durations, 0.5);
    r.p90_duration_ms = quantile_sorted_frequency(durations, 0.9);
    r.median_interactions = median_frequency(interactions);
  }

  // Per-user request frequency, one pass over the (user, time) order.
  const std::int64_t offset_ms = static_cast<std::int64_t>(params.utc_offset_minutes) * 60000;
  std::vector<std::uint32_t> session_seen_by(ix.sessions.size(), kNoSession);
  std::vector<double> per_day;
  std::size_t i = 0;
  while (i < ix.by_user.size()) {
    const std::uint32_t user = ix.by_user[i].group;
    std::size_t j = i;
    UserFrequency u;
    std::uint64_t sessioned = 0;
    std::int64_t prev_day = std::numeric_limits<std::int64_t>::min();
    for (; j < ix.by_user.size() && ix.by_user[j].group == user; ++j) {
      const GroupKey& key = ix.by_user[j];
      ++u.interactions;
      const std::int64_t day = local_day(key.time, offset_ms);
      if (day != prev_day) ++u.active_days;  // times ascend, so each new date shows up once
      prev_day = day;
      const std::uint32_t s = ix.session_of[key.index];
      if (s != kNoSession) {
        ++sessioned;
        if (session_seen_by[s] != user) {
          session_seen_by[s] = user;
          ++u.sessions;
        }
      }
    }
    i = j;
    if (ix.user_names[user].empty()) continue;  // anonymous events: no per-user figures
    u.user_id = std::string(ix.user_names[user]);
    u.interactions_per_active_day = static_cast<double>(u.interactions) / static_cast<double>(u.active_days);
    if (u.sessions > 0) u.interactions_per_session = static_cast<double>(sessioned) / static_cast<double>(u.sessions);
    per_day.push_back(u.interactions_per_active_day);
    r.users.push_back(std::move(u));
  }
  // users come out in name order (user numbers follow names)
  if (!per_day.empty()) {
    double sum = 0;
    for (double v : per_day) sum += v;
    r.mean_interactions_per_active_day = sum / static_cast<double>(per_day.size());
    r.median_interactions_per_active_day = median_frequency(per_day);
  }
  return r;
}

/// Counts of string_view keys -> CountShare list sorted by (count desc, key asc), truncated to `limit`.
inline std::vector<CountShare> ranked_frequency(const std::unordered_map<std::string_view, std::uint64_t>& counts,
                                                std::uint64_t denominator, std::size_t limit) {
  std::vector<std::pair<std::string_view, std::uint64_t>> items(counts.begin(), counts.end());
  auto better = [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  };
  const std::size_t keep = std::min(limit, items.size());
  std::partial_sort(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(keep), items.end(), better);
  std::vector<CountShare> out;
  out.reserve(keep);
  for (std::size_t i = 0; i < keep; ++i) {
    const double share =
        denominator == 0 ? 0.0 : static_cast<double>(items[i].second) / static_cast<double>(denominator);
    out.push_back(CountShare{std::string(items[i].first), items[i].second, share});
  }
  return out;
}

inline ContentResult content_impl(const std::vector<EventRecord>& events, const FrequencyParams& params) {
  ContentResult r;
  r.events = events.size();
  std::unordered_map<std::string_view, std::uint64_t> keywords, domains;
  keywords.reserve(4096);
  domains.reserve(64);
  double complexity_sum = 0;
  for (const EventRecord& e : events) {
    const auto& kw = e.keywords;
    if (!kw.empty()) ++r.events_with_keywords;
    for (std::size_t i = 0; i < kw.size(); ++i) {
      const auto first = kw.begin(), here = kw.begin() + static_cast<std::ptrdiff_t>(i);
      if (std::find(first, here, kw[i]) != here) continue;  // once per event
      ++keywords[kw[i]];
    }
    if (e.domain.empty()) ++r.unknown_domain;
    else ++domains[e.domain];
    if (e.complexity >= 1) {
      ++r.complexity_histogram[static_cast<std::size_t>(e.complexity - 1)];
      ++r.complexity_known;
      complexity_sum += e.complexity;
    }
  }
  r.distinct_keywords = keywords.size();
  r.top_keywords = ranked_frequency(keywords, r.events_with_keywords, params.top_keywords);
  r.domains = ranked_frequency(domains, r.events - r.unknown_domain, domains.size());
  if (r.complexity_known > 0) {
    r.complexity_mean = complexity_sum / static_cast<double>(r.complexity_known);
    // median from the histogram: the values of ranks floor((n-1)/2) and ceil((n-1)/2), 0-based
    auto value_at_rank = [&](std::uint64_t rank) {
      std::uint64_t seen = 0;
      for (std::size_t c = 0; c < 10; ++c) {
        seen += r.complexity_histogram[c];
        if (rank < seen) return static_cast<double>(c + 1);
      }
      return 10.0;
    };
    const std::uint64_t n = r.complexity_known;
    r.complexity_median = 0.5 * (value_at_rank((n - 1) / 2) + value_at_rank(n / 2));
  }
  return r;
}

inline LearningCurve learning_impl(const std::vector<EventRecord>& events, const SessionIndex& ix,
                                   const FrequencyParams& params) {
  LearningCurve lc;
  lc.k = params.learning_k;
  OlsAccumulator ols;
  RunningMoments first_k, last_k, paired;
  std::vector<double> qualities;  // one user's values, reused
  std::size_t i = 0;
  while (i < ix.by_user.size()) {
    const std::uint32_t user = ix.by_user[i].group;
    std::size_t j = i;
    qualities.clear();
    const bool known = !ix.user_names[user].empty();
    for (std::uint64_t index = 1; j < ix.by_user.size() && ix.by_user[j].group == user; ++j, ++index) {
      const double q = events[ix.by_user[j].index].quality;
      if (!known || !present(q)) continue;
      ols.add(static_cast<double>(index), q);
      qualities.push_back(q);
    }
    i = j;
    if (qualities.empty()) continue;
    ++lc.users;
    const std::size_t k = params.learning_k;
    if (qualities.size() >= 2 * k) {
      double sum_first = 0, sum_last = 0;
      for (std::size_t a = 0; a < k; ++a) {
        sum_first += qualities[a];
        sum_last += qualities[qualities.size() - k + a];
        first_k.add(qualities[a]);
        last_k.add(qualities[qualities.size() - k + a]);
      }
      paired.add((sum_last - sum_first) / static_cast<double>(k));
      ++lc.first_last_users;
    }
  }
  lc.points = ols.n;
  if (ols.n >= 3 && ols.sxx > 0) {
    const double n = static_cast<double>(ols.n), df = n - 2;
    lc.slope = ols.sxy / ols.sxx;
    lc.intercept = ols.mean_y - lc.slope * ols.mean_x;
    const double sse = std::max(0.0, ols.syy - lc.slope * ols.sxy);
    lc.slope_se = std::sqrt(sse / df / ols.sxx);
    const double tq = student_t_quantile(1 - params.alpha / 2, df);
    lc.slope_lower = lc.slope - tq * lc.slope_se;
    lc.slope_upper = lc.slope + tq * lc.slope_se;
    if (lc.slope_se > 0) lc.p_value = 2 * student_t_sf(std::fabs(lc.slope / lc.slope_se), df);
    else lc.p_value = lc.slope == 0 ? 1.0 : 0.0;
  }
  if (lc.first_last_users > 0) {
    lc.first_k_mean = first_k.mean();
    lc.last_k_mean = last_k.mean();
    lc.first_last_difference = lc.last_k_mean - lc.first_k_mean;
    if (paired.count() >= 2) {
      const double se = paired.standard_error(), df = static_cast<double>(paired.count() - 1);
      if (se > 0) lc.first_last_p_value = 2 * student_t_sf(std::fabs(paired.mean() / se), df);
      else lc.first_last_p_value = paired.mean() == 0 ? 1.0 : 0.0;
    }
  }
  return lc;
}

inline BehaviourResult behaviour_impl(const std::vector<EventRecord>& events, const SessionIndex& ix,
                                      const FrequencyParams& params) {
  BehaviourResult r;
  r.events = events.size();
  std::unordered_map<std::string_view, std::uint64_t> templates;
  templates.reserve(64);
  std::uint64_t bypassed = 0;
  for (const EventRecord& e : events) {
    if (e.template_id.empty()) ++r.without_template;
    else ++templates[e.template_id];
    if (!e.enhancement_applied) ++bypassed;
  }
  r.templates = ranked_frequency(templates, r.events - r.without_template, templates.size());
  r.bypass = wilson_frequency(bypassed, r.events, params.alpha);

  // Retries: consecutive events of a session in (time, position) order.
  std::vector<GroupKey> by_session;
  by_session.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i)
    if (ix.session_of[i] != kNoSession)
      by_session.push_back(GroupKey{ix.session_of[i], static_cast<std::uint32_t>(i), events[i].time});
  std::sort(by_session.begin(), by_session.end());
  for (std::size_t i = 1; i < by_session.size(); ++i) {
    const GroupKey &prev = by_session[i - 1], &cur = by_session[i];
    if (prev.group != cur.group) continue;
    ++r.retry_opportunities;
    if (cur.time - prev.time > params.retry_window_ms) continue;
    if (keyword_jaccard(events[prev.index].keywords, events[cur.index].keywords) >= params.retry_min_jaccard)
      r.retry_indices.push_back(cur.index);
  }
  std::sort(r.retry_indices.begin(), r.retry_indices.end());
  r.retries = r.retry_indices.size();
  r.retry_rate = wilson_frequency(r.retries, r.retry_opportunities, params.alpha);
  r.learning = learning_impl(events, ix, params);
  return r;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------------------
// Public API

/// Hour-of-day x day-of-week histogram, daily and weekly seasonality and peak hours of the events.
///
/// Peak hours: each hour's count c_h is tested one-sided against X ~ Bin(N, 1/24) (exact tail through the
/// incomplete beta function), the 24 p-values are adjusted by Benjamini-Hochberg, and an hour is a peak
/// when c_h > N/24 and its adjusted p-value is < alpha (false discovery rate alpha; under a flat
/// distribution that is also the chance of reporting any peak at all).
/// @throws ConfigError from params.validate(); ValidationError naming `events[i].<field>` for bad events.
inline TemporalResult analyze_temporal(const std::vector<EventRecord>& events, const FrequencyParams& params = {}) {
  params.validate();
  detail::validate_events_frequency(events);
  return detail::temporal_impl(events, params);
}

/// Sessions (see SessionMethod; with the gap rule a session ends when the user's next event comes more than
/// `session_gap_ms` later, and events with an empty user_id form one anonymous stream), their duration and
/// size, and each known user's request frequency.
/// @throws ConfigError from params.validate(); ValidationError naming `events[i].<field>` for bad events.
inline SessionResult analyze_sessions(const std::vector<EventRecord>& events, const FrequencyParams& params = {}) {
  params.validate();
  detail::validate_events_frequency(events);
  return detail::sessions_impl(detail::build_session_index(events, params), params);
}

/// Keyword, domain and complexity frequencies.
/// @throws ConfigError from params.validate(); ValidationError naming `events[i].<field>` for bad events.
inline ContentResult analyze_content(const std::vector<EventRecord>& events, const FrequencyParams& params = {}) {
  params.validate();
  detail::validate_events_frequency(events);
  return detail::content_impl(events, params);
}

/// Template shares, bypass rate, retries and the learning curve (see BehaviourResult and LearningCurve).
/// @throws ConfigError from params.validate(); ValidationError naming `events[i].<field>` for bad events.
inline BehaviourResult analyze_behaviour(const std::vector<EventRecord>& events, const FrequencyParams& params = {}) {
  params.validate();
  detail::validate_events_frequency(events);
  return detail::behaviour_impl(events, detail::build_session_index(events, params), params);
}

/// All of the above in one pass over shared indexes (users and sessions are built once).
/// Cost: O(N log N) for two sorts of 16-byte keys plus hash-map counting; no allocation per event beyond
/// the per-batch arrays.
/// @throws ConfigError from params.validate(); ValidationError naming `events[i].<field>` for bad events.
inline FrequencyReport analyze_frequency(const std::vector<EventRecord>& events, const FrequencyParams& params = {}) {
  params.validate();
  detail::validate_events_frequency(events);
  FrequencyReport report;
  report.events = events.size();
  report.temporal = detail::temporal_impl(events, params);
  report.content = detail::content_impl(events, params);
  const detail::SessionIndex ix = detail::build_session_index(events, params);
  report.sessions = detail::sessions_impl(ix, params);
  report.behaviour = detail::behaviour_impl(events, ix, params);
  return report;
}

}  // namespace promptlearn::patterns
