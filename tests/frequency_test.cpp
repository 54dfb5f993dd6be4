// Frequency analysis: planted patterns recovered from seeded synthetic events, closed forms checked against
// references computed offline with scipy 1.10 (/usr/bin/python3; the calls are quoted next to each value),
// and the edge cases (empty input, bad parameters, bad events).
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "promptlearn/core/rng.hpp"
#include "promptlearn/patterns/frequency.hpp"

using namespace promptlearn;
using namespace promptlearn::patterns;

namespace {

constexpr TimeMs kMinute = 60000;
constexpr TimeMs kHour = 60 * kMinute;
constexpr TimeMs kDay = 24 * kHour;
constexpr TimeMs kMonday = 1736121600000;  // 2025-01-06T00:00:00Z, a Monday

EventRecord event_at(TimeMs t, std::string user = "u1", std::string session = "") {
  EventRecord e;
  e.time = t;
  e.user_id = std::move(user);
  e.session_id = std::move(session);
  return e;
}

/// n events over `days` days from kMonday; the hour drawn with probability proportional to weight[h].
std::vector<EventRecord> hourly_events(Rng& rng, std::size_t n, const std::array<double, 24>& weight, int days = 28) {
  double total = 0;
  for (double w : weight) total += w;
  std::vector<EventRecord> events;
  events.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    double u = rng.uniform() * total;
    int hour = 0;
    while (hour < 23 && u >= weight[static_cast<std::size_t>(hour)]) u -= weight[static_cast<std::size_t>(hour++)];
    const TimeMs t = kMonday + rng.uniform_int(0, days - 1) * kDay + hour * kHour + rng.uniform_int(0, kHour - 1);
    events.push_back(event_at(t, "u" + std::to_string(rng.uniform_int(0, 49))));
  }
  return events;
}

std::vector<std::string> fresh_keywords(Rng& rng) {
  std::vector<std::string> k;
  while (k.size() < 5) {
    std::string w = "w" + std::to_string(rng.uniform_int(0, 1999));
    if (std::find(k.begin(), k.end(), w) == k.end()) k.push_back(std::move(w));
  }
  return k;
}

struct Planted {
  std::vector<EventRecord> events;
  std::vector<SessionInfo> expected;  // sorted as SessionResult::sessions
};

/// Users with sessions of 1..8 interactions 1..20 min apart (< the 30 min gap), sessions 2..20 h apart.
Planted plant_sessions(Rng& rng, int users) {
  Planted p;
  for (int u = 0; u < users; ++u) {
    const std::string user = "user" + std::to_string(u);
    TimeMs t = kMonday + rng.uniform_int(0, 6 * kHour);
    const auto sessions = rng.uniform_int(3, 10);
    for (std::int64_t s = 0; s < sessions; ++s) {
      SessionInfo info;
      info.session_id = rng.uuid_v4();
      info.user_id = user;
      info.start = t;
      info.interactions = static_cast<std::uint64_t>(rng.uniform_int(1, 8));
      for (std::uint64_t i = 0; i < info.interactions; ++i) {
        if (i > 0) t += rng.uniform_int(kMinute, 20 * kMinute);
        p.events.push_back(event_at(t, user, info.session_id));
      }
      info.end = t;
      info.duration_ms = info.end - info.start;
      p.expected.push_back(info);
      t += rng.uniform_int(2 * kHour, 20 * kHour);
    }
  }
  std::sort(p.expected.begin(), p.expected.end(), [](const SessionInfo& a, const SessionInfo& b) {
    if (a.start != b.start) return a.start < b.start;
    return a.user_id < b.user_id;
  });
  std::shuffle(p.events.begin(), p.events.end(), rng.engine());  // the analysis must not rely on input order
  return p;
}

void check_sessions(const SessionResult& got, const std::vector<SessionInfo>& expected, bool by_gap) {
  REQUIRE(got.count == expected.size());
  REQUIRE(got.sessions.size() == expected.size());
  CHECK(got.unsessioned == 0);
  CHECK((by_gap ? got.from_gap : got.from_session_id) == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("session " << i);
    CHECK(got.sessions[i].user_id == expected[i].user_id);
    CHECK(got.sessions[i].start == expected[i].start);
    CHECK(got.sessions[i].end == expected[i].end);
    CHECK(got.sessions[i].duration_ms == expected[i].duration_ms);
    CHECK(got.sessions[i].interactions == expected[i].interactions);
    CHECK(got.sessions[i].by_gap == by_gap);
    CHECK(got.sessions[i].session_id == (by_gap ? std::string() : expected[i].session_id));
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Temporal

TEST_CASE("hourly and weekday chi-square of hand-made histograms match scipy", "[frequency]") {
  // hour h gets (h % 5) + 1 events, plus 3 more at 09 and 10 (76 events, all on Monday)
  std::vector<EventRecord> events;
  for (int h = 0; h < 24; ++h) {
    const int n = h % 5 + 1 + ((h == 9 || h == 10) ? 3 : 0);
    for (int i = 0; i < n; ++i) events.push_back(event_at(kMonday + h * kHour + i * kMinute));
  }
  TemporalResult r = analyze_temporal(events);
  CHECK(r.events == 76);
  CHECK(r.hourly[9] == 8);
  CHECK(r.weekday[0] == 76);
  CHECK(r.weekday_hour[0][10] == 4);
  // scipy.stats.chisquare([1,2,3,4,5,1,2,3,4,8,4,2,3,4,5,1,2,3,4,5,1,2,3,4])
  //   -> (20.000000000000004, 0.6419117918153345)
  CHECK(r.hourly_test.statistic == Approx(20.0).epsilon(1e-12));
  CHECK(r.hourly_test.df == 23);
  CHECK(r.hourly_test.p_value == Approx(0.6419117918153345).epsilon(1e-9));
  CHECK(r.hourly_test.min_expected == Approx(76.0 / 24));
  CHECK_FALSE(r.daily_seasonality);
  CHECK(r.peak_hours.empty());
  // a single day: only Monday has exposure, nothing to test
  CHECK(r.weekday_test.df == 0);
  CHECK(std::isnan(r.weekday_test.p_value));

  // one whole week Monday..Sunday with 5,3,4,6,2,7,1 events
  // scipy.stats.chisquare([5,3,4,6,2,7,1]) -> (7.0, 0.32084719886213414)
  events.clear();
  const int per_day[7] = {5, 3, 4, 6, 2, 7, 1};
  for (int d = 0; d < 7; ++d)
    for (int i = 0; i < per_day[d]; ++i) events.push_back(event_at(kMonday + d * kDay + 12 * kHour + i));
  r = analyze_temporal(events);
  for (int d = 0; d < 7; ++d) CHECK(r.weekday_exposure_days[static_cast<std::size_t>(d)] == 1);
  CHECK(r.weekday_test.statistic == Approx(7.0).epsilon(1e-12));
  CHECK(r.weekday_test.df == 6);
  CHECK(r.weekday_test.p_value == Approx(0.32084719886213414).epsilon(1e-9));
}

TEST_CASE("weekly test expects counts in proportion to each weekday's days in the span", "[frequency]") {
  // 10 days from a Monday, 3 events a day: Mon-Wed occur twice, so they get 6 events and the rest 3. A test
  // against a flat 1/7 would call that seasonal (X^2 = 4.05 over 51 events); with exposure it is exactly flat.
  std::vector<EventRecord> events;
  for (int d = 0; d < 10; ++d)
    for (int i = 0; i < 3; ++i) events.push_back(event_at(kMonday + d * kDay + (8 + i) * kHour));
  const TemporalResult r = analyze_temporal(events);
  CHECK(r.weekday == std::array<std::uint64_t, 7>{6, 6, 6, 3, 3, 3, 3});
  CHECK(r.weekday_exposure_days == std::array<std::uint64_t, 7>{2, 2, 2, 1, 1, 1, 1});
  CHECK(r.weekday_test.statistic == Approx(0.0).margin(1e-12));
  CHECK(r.weekday_test.p_value == Approx(1.0));
  CHECK_FALSE(r.weekly_seasonality);
}

TEST_CASE("local time follows utc_offset_minutes, also across midnight and before 1970", "[frequency]") {
  FrequencyParams params;
  params.utc_offset_minutes = 120;
  // Sunday 2025-01-12 23:30 UTC = Monday 01:30 at UTC+2
  TemporalResult r = analyze_temporal({event_at(kMonday + 6 * kDay + 23 * kHour + 30 * kMinute)}, params);
  CHECK(r.weekday_hour[0][1] == 1);
  params.utc_offset_minutes = -300;
  // Monday 02:00 UTC = Sunday 21:00 at UTC-5
  r = analyze_temporal({event_at(kMonday + 2 * kHour)}, params);
  CHECK(r.weekday_hour[6][21] == 1);
  // 1969-12-31T23:59:59.999Z was a Wednesday
  r = analyze_temporal({event_at(-1)});
  CHECK(r.weekday_hour[2][23] == 1);
}

TEST_CASE("planted peak hours are detected with high precision and recall", "[frequency]") {
  // 9-11 and 14-16 at three times the base rate: each peak hour holds 3/36 of the events, twice the 1/24
  // a flat spread gives; with 1000 events that is ~83 against ~42 expected (z ~ 6).
  std::array<double, 24> weight;
  weight.fill(1.0);
  const std::set<int> planted = {9, 10, 11, 14, 15, 16};
  for (int h : planted) weight[static_cast<std::size_t>(h)] = 3.0;
  int tp = 0, fp = 0, fn = 0, seasonal = 0;
  const int seeds = 50;
  for (int seed = 1; seed <= seeds; ++seed) {
    Rng rng(static_cast<std::uint64_t>(seed));
    const TemporalResult r = analyze_temporal(hourly_events(rng, 1000, weight));
    std::set<int> found;
    for (const PeakHour& p : r.peak_hours) {
      found.insert(p.hour);
      CHECK(p.ratio_to_expected > 1.0);
      CHECK(p.share == Approx(static_cast<double>(p.count) / 1000));
      CHECK(p.p_adjusted < 0.05);
    }
    for (int h : found) (planted.count(h) ? tp : fp) += 1;
    for (int h : planted) fn += found.count(h) ? 0 : 1;
    seasonal += r.daily_seasonality ? 1 : 0;
  }
  const double precision = tp / static_cast<double>(tp + fp), recall = tp / static_cast<double>(tp + fn);
  std::cout << "[frequency] planted peaks over " << seeds << " seeds: precision " << precision << ", recall " << recall
            << ", daily seasonality found in " << seasonal << "/" << seeds << "\n";
  INFO("precision " << precision << " recall " << recall);
  CHECK(precision >= 0.9);
  CHECK(recall >= 0.9);
  CHECK(seasonal == seeds);
}

TEST_CASE("a flat hourly series shows no peak hour in at least 90% of seeds", "[frequency]") {
  // BH at alpha = 0.05 controls the chance of any false peak at 5% when every hour is null.
  std::array<double, 24> weight;
  weight.fill(1.0);
  int clean = 0, seasonal = 0;
  const int seeds = 200;
  for (int seed = 1; seed <= seeds; ++seed) {
    Rng rng(static_cast<std::uint64_t>(1000 + seed));
    const TemporalResult r = analyze_temporal(hourly_events(rng, 1000, weight));
    clean += r.peak_hours.empty() ? 1 : 0;
    seasonal += r.daily_seasonality ? 1 : 0;
  }
  std::cout << "[frequency] flat series: no peak in " << clean << "/" << seeds
            << " seeds, daily seasonality (alpha 0.05) in " << seasonal << "/" << seeds << "\n";
  CHECK(clean >= 0.9 * seeds);
  CHECK(seasonal <= 0.1 * seeds);  // expected 5% = 10; 20 is > 3 binomial sd above
}

TEST_CASE("exact binomial tail and the Benjamini-Hochberg adjustment peak hours use match references", "[frequency]") {
  // scipy.stats.binomtest(3, 24, 1/24, alternative='greater').pvalue -> 0.07631808835452977
  CHECK(patterns::detail::binomial_upper_tail_frequency(3, 24, 1.0 / 24) == Approx(0.07631808835452977).epsilon(1e-10));
  CHECK(patterns::detail::binomial_upper_tail_frequency(0, 24, 1.0 / 24) == 1.0);
  // by hand: sorted 0.005 0.01 0.03 0.04 0.2 -> p m / rank 0.025 0.025 0.05 0.05 0.2, then running minimum
  const std::vector<double> q = patterns::benjamini_hochberg({0.01, 0.04, 0.03, 0.2, 0.005}).adjusted;  // what peak hours use
  CHECK(q[0] == Approx(0.025));
  CHECK(q[1] == Approx(0.05));
  CHECK(q[2] == Approx(0.05));
  CHECK(q[3] == Approx(0.2));
  CHECK(q[4] == Approx(0.025));
}

// ---------------------------------------------------------------------------------------------------------
// Sessions

TEST_CASE("planted sessions are recovered exactly from session ids and from the inactivity gap", "[frequency]") {
  for (std::uint64_t seed : {7u, 8u, 9u}) {
    Rng rng(seed);
    Planted p = plant_sessions(rng, 25);
    INFO("seed " << seed);
    FrequencyParams params;
    params.session_method = SessionMethod::session_id;
    check_sessions(analyze_sessions(p.events, params), p.expected, false);
    params.session_method = SessionMethod::automatic;
    check_sessions(analyze_sessions(p.events, params), p.expected, false);
    params.session_method = SessionMethod::gap;
    check_sessions(analyze_sessions(p.events, params), p.expected, true);
    for (EventRecord& e : p.events) e.session_id.clear();
    params.session_method = SessionMethod::automatic;
    check_sessions(analyze_sessions(p.events, params), p.expected, true);
    params.session_method = SessionMethod::session_id;
    const SessionResult none = analyze_sessions(p.events, params);
    CHECK(none.count == 0);
    CHECK(none.unsessioned == p.events.size());
  }
}

TEST_CASE("the gap rule splits only on gaps longer than session_gap_ms, per user", "[frequency]") {
  const TimeMs t0 = kMonday + 9 * kHour;
  std::vector<EventRecord> events = {
      event_at(t0, "a"), event_at(t0 + 30 * kMinute, "a"),                   // exactly the gap: same session
      event_at(t0 + 60 * kMinute + 1, "a"),                                   // 30 min + 1 ms: new session
      event_at(t0 + 5 * kMinute, "b"),                                        // another user interleaved
  };
  const SessionResult r = analyze_sessions(events);
  REQUIRE(r.count == 3);
  CHECK(r.sessions[0].user_id == "a");
  CHECK(r.sessions[0].interactions == 2);
  CHECK(r.sessions[0].duration_ms == 30 * kMinute);
  CHECK(r.sessions[1].user_id == "b");
  CHECK(r.sessions[2].start == t0 + 60 * kMinute + 1);
}

TEST_CASE("session summary: type-7 quantiles and request frequency per user", "[frequency]") {
  // four sessions of user "a" lasting 0, 10, 20 and 60 min (sessions 1 h+ apart).
  // numpy.percentile([0, 10, 20, 60], [50, 90]) -> [15, 48]
  const TimeMs t0 = kMonday + 8 * kHour;
  std::vector<EventRecord> events = {
      event_at(t0, "a", "s1"),
      event_at(t0 + 2 * kHour, "a", "s2"),  event_at(t0 + 2 * kHour + 10 * kMinute, "a", "s2"),
      event_at(t0 + 4 * kHour, "a", "s3"),  event_at(t0 + 4 * kHour + 20 * kMinute, "a", "s3"),
      event_at(t0 + 1 * kDay, "a", "s4"),   event_at(t0 + 1 * kDay + 30 * kMinute, "a", "s4"),
      event_at(t0 + 1 * kDay + 60 * kMinute, "a", "s4"),
      event_at(t0, "", "s5"),  // anonymous: counted in sessions, not in per-user figures
  };
  const SessionResult r = analyze_sessions(events);
  REQUIRE(r.count == 5);
  // durations 0, 0 (s5), 10, 20, 60 min
  CHECK(r.median_duration_ms == Approx(10.0 * kMinute));
  CHECK(r.p90_duration_ms == Approx((20 + 0.6 * 40) * kMinute));  // h = 4 * 0.9 = 3.6
  CHECK(r.mean_interactions == Approx(9.0 / 5));
  CHECK(r.median_interactions == Approx(2.0));
  REQUIRE(r.users.size() == 1);
  CHECK(r.users[0].user_id == "a");
  CHECK(r.users[0].interactions == 8);
  CHECK(r.users[0].active_days == 2);
  CHECK(r.users[0].sessions == 4);
  CHECK(r.users[0].interactions_per_active_day == Approx(4.0));
  CHECK(r.users[0].interactions_per_session == Approx(2.0));
  CHECK(r.median_interactions_per_active_day == Approx(4.0));

  // the numpy case itself, without the anonymous session
  events.pop_back();
  const SessionResult q = analyze_sessions(events);
  CHECK(q.median_duration_ms == Approx(15.0 * kMinute));
  CHECK(q.p90_duration_ms == Approx(48.0 * kMinute));

  // active days are local dates: at UTC-9 the events are Sun 23:00 | Mon 01:00..03:20, 23:00, 23:30 | Tue 00:00,
  // three dates instead of two
  FrequencyParams params;
  params.utc_offset_minutes = -9 * 60;
  const SessionResult shifted = analyze_sessions(events, params);
  CHECK(shifted.users[0].active_days == 3);
}

// ---------------------------------------------------------------------------------------------------------
// Content

TEST_CASE("keyword, domain and complexity frequencies of a hand-made batch", "[frequency]") {
  auto make = [](std::vector<std::string> kw, std::string domain, int complexity) {
    EventRecord e = event_at(kMonday);
    e.keywords = std::move(kw);
    e.domain = std::move(domain);
    e.complexity = complexity;
    return e;
  };
  const std::vector<EventRecord> events = {
      make({"sql", "index", "sql"}, "database", 3),  // "sql" twice in one event counts once
      make({"sql", "join"}, "database", 5),
      make({"react", "index"}, "frontend", 8),
      make({}, "", 0),
      make({"join"}, "database", 5),
  };
  FrequencyParams params;
  params.top_keywords = 3;
  const ContentResult r = analyze_content(events, params);
  CHECK(r.events == 5);
  CHECK(r.events_with_keywords == 4);
  CHECK(r.distinct_keywords == 4);
  REQUIRE(r.top_keywords.size() == 3);
  // counts: index 2, join 2, sql 2, react 1 -> ties broken by key
  CHECK(r.top_keywords[0].key == "index");
  CHECK(r.top_keywords[1].key == "join");
  CHECK(r.top_keywords[2].key == "sql");
  CHECK(r.top_keywords[2].count == 2);
  CHECK(r.top_keywords[2].share == Approx(0.5));
  REQUIRE(r.domains.size() == 2);
  CHECK(r.domains[0].key == "database");
  CHECK(r.domains[0].count == 3);
  CHECK(r.domains[0].share == Approx(0.75));
  CHECK(r.unknown_domain == 1);
  CHECK(r.complexity_known == 4);
  CHECK(r.complexity_histogram[4] == 2);  // complexity 5
  CHECK(r.complexity_mean == Approx(21.0 / 4));
  CHECK(r.complexity_median == Approx(5.0));  // 3 5 5 8
}

// ---------------------------------------------------------------------------------------------------------
// Behaviour

TEST_CASE("template shares and the Wilson interval of 2 bypasses in 10", "[frequency]") {
  std::vector<EventRecord> events;
  for (int i = 0; i < 10; ++i) {
    EventRecord e = event_at(kMonday + i * kMinute);
    e.enhancement_applied = i >= 2;
    e.template_id = i < 2 ? "" : (i < 8 ? "code" : "write");
    events.push_back(e);
  }
  const BehaviourResult r = analyze_behaviour(events);
  CHECK(r.bypass.successes == 2);
  CHECK(r.bypass.trials == 10);
  CHECK(r.bypass.rate == Approx(0.2));
  // scipy.stats.binomtest(2, 10).proportion_ci(0.95, method='wilson') -> (0.056682151454375274, 0.5098375284633583)
  CHECK(r.bypass.lower == Approx(0.056682151454375274).epsilon(1e-12));
  CHECK(r.bypass.upper == Approx(0.5098375284633583).epsilon(1e-12));
  CHECK(r.without_template == 2);
  REQUIRE(r.templates.size() == 2);
  CHECK(r.templates[0].key == "code");
  CHECK(r.templates[0].share == Approx(0.75));
  CHECK(r.templates[1].share == Approx(0.25));
}

TEST_CASE("a planted bypass rate of 0.2 lies inside its Wilson interval", "[frequency]") {
  int covered = 0;
  const int seeds = 200;
  for (int seed = 1; seed <= seeds; ++seed) {
    Rng rng(static_cast<std::uint64_t>(seed));
    std::vector<EventRecord> events;
    for (int i = 0; i < 2000; ++i) {
      EventRecord e = event_at(kMonday + i * kMinute);
      e.enhancement_applied = !rng.bernoulli(0.2);
      events.push_back(e);
    }
    const Proportion p = analyze_behaviour(events).bypass;
    covered += (p.lower <= 0.2 && 0.2 <= p.upper) ? 1 : 0;
  }
  std::cout << "[frequency] bypass 0.2: Wilson 95% interval covers it in " << covered << "/" << seeds << " seeds\n";
  CHECK(covered >= 0.9 * seeds);  // nominal 95%: 190 expected, sd ~3
}

TEST_CASE("planted retries are found with high precision and recall", "[frequency]") {
  // In each session: a follow-up is a planted retry (10 s..4 min later, 4 of 5 keywords kept: Jaccard 4/6)
  // with probability 0.3; hard negatives: the same keywords but 6..25 min later (0.1), or a quick follow-up
  // on a new topic (0.15); otherwise a new topic 1..25 min later.
  int tp = 0, fp = 0, fn = 0;
  const int seeds = 20;
  for (int seed = 1; seed <= seeds; ++seed) {
    Rng rng(static_cast<std::uint64_t>(seed));
    std::vector<EventRecord> events;
    TimeMs t = kMonday;
    for (int s = 0; s < 60; ++s) {
      const std::string user = "u" + std::to_string(s % 12), sid = rng.uuid_v4();
      std::vector<std::string> kw = fresh_keywords(rng);
      const auto n = rng.uniform_int(2, 10);
      for (std::int64_t i = 0; i < n; ++i) {
        std::string id = "fresh";
        if (i > 0) {
          const double u = rng.uniform();
          if (u < 0.3) {
            t += rng.uniform_int(10000, 4 * kMinute);
            kw[static_cast<std::size_t>(rng.uniform_int(0, 4))] = "r" + std::to_string(rng.uniform_int(0, 1 << 30));
            id = "retry";
          } else if (u < 0.4) {
            t += rng.uniform_int(6 * kMinute, 25 * kMinute);
          } else if (u < 0.55) {
            t += rng.uniform_int(10000, 4 * kMinute);
            kw = fresh_keywords(rng);
          } else {
            t += rng.uniform_int(kMinute, 25 * kMinute);
            kw = fresh_keywords(rng);
          }
        }
        EventRecord e = event_at(t, user, sid);
        e.interaction_id = id;
        e.keywords = kw;
        events.push_back(e);
      }
      t += rng.uniform_int(kMinute, 3 * kHour);  // the next session (ids keep sessions apart)
    }
    std::shuffle(events.begin(), events.end(), rng.engine());
    const BehaviourResult r = analyze_behaviour(events);
    std::vector<bool> flagged(events.size(), false);
    for (std::size_t i : r.retry_indices) flagged[i] = true;
    for (std::size_t i = 0; i < events.size(); ++i) {
      const bool truth = events[i].interaction_id == "retry";
      if (flagged[i] && truth) ++tp;
      else if (flagged[i]) ++fp;
      else if (truth) ++fn;
    }
    CHECK(r.retries == r.retry_indices.size());
    CHECK(r.retry_rate.trials == r.retry_opportunities);
    CHECK(r.retry_opportunities == events.size() - 60);
  }
  const double precision = tp / static_cast<double>(tp + fp), recall = tp / static_cast<double>(tp + fn);
  std::cout << "[frequency] planted retries over " << seeds << " seeds: " << tp << " found, " << fp << " false, " << fn
            << " missed; precision " << precision << ", recall " << recall << "\n";
  CHECK(precision >= 0.9);
  CHECK(recall >= 0.9);
}

TEST_CASE("keyword Jaccard treats lists as sets", "[frequency]") {
  CHECK(patterns::detail::keyword_jaccard({"a", "b", "c"}, {"b", "c", "d"}) == Approx(0.5));
  CHECK(patterns::detail::keyword_jaccard({"a", "a", "b"}, {"a", "b", "b"}) == Approx(1.0));
  CHECK(patterns::detail::keyword_jaccard({}, {}) == 0.0);
  CHECK(patterns::detail::keyword_jaccard({"a"}, {}) == 0.0);
}

TEST_CASE("learning curve OLS matches scipy on hand-made points", "[frequency]") {
  // one user, qualities 1 3 2 5 4 at indices 1..5
  // scipy.stats.linregress([1,2,3,4,5], [1,3,2,5,4]) -> slope 0.8, intercept 0.6, stderr 0.3464101615137754,
  // pvalue 0.10408803866182778; +- t.ppf(0.975, 3) * stderr -> (-0.30243173862243933, 1.9024317386224394)
  std::vector<EventRecord> events;
  const double q[5] = {1, 3, 2, 5, 4};
  for (int i = 0; i < 5; ++i) {
    EventRecord e = event_at(kMonday + i * kMinute);
    e.quality = q[i];
    events.push_back(e);
  }
  std::reverse(events.begin(), events.end());  // order comes from the timestamps
  FrequencyParams params;
  params.learning_k = 2;
  LearningCurve lc = analyze_behaviour(events, params).learning;
  CHECK(lc.users == 1);
  CHECK(lc.points == 5);
  CHECK(lc.slope == Approx(0.8).epsilon(1e-12));
  CHECK(lc.intercept == Approx(0.6).epsilon(1e-12));
  CHECK(lc.slope_se == Approx(0.3464101615137754).epsilon(1e-12));
  CHECK(lc.p_value == Approx(0.10408803866182778).epsilon(1e-9));
  CHECK(lc.slope_lower == Approx(-0.30243173862243933).epsilon(1e-9));
  CHECK(lc.slope_upper == Approx(1.9024317386224394).epsilon(1e-9));
  CHECK(lc.first_last_users == 1);
  CHECK(lc.first_k_mean == Approx(2.0));
  CHECK(lc.last_k_mean == Approx(4.5));
  CHECK(std::isnan(lc.first_last_p_value));  // one user: no paired test

  // interactions without an outcome still advance the index: qualities at indices 1, 2, 4 lie on 5 + x
  for (EventRecord& e : events) e.quality = kMissing;
  events[4].quality = 6;  // events are reversed: [4] is index 1
  events[3].quality = 7;
  events[1].quality = 9;
  lc = analyze_behaviour(events, params).learning;
  CHECK(lc.points == 3);
  CHECK(lc.slope == Approx(1.0));
  CHECK(lc.intercept == Approx(5.0));
  CHECK(lc.p_value == 0.0);  // a perfect fit
}

TEST_CASE("a planted learning curve of +0.02 per interaction is covered by the slope CI", "[frequency]") {
  // 40 users x 30 interactions, quality = 5 + 0.02 i + N(0, 1) (clamped to [0, 10], which N(0,1) at
  // mean 5..5.6 essentially never reaches). First 5 vs last 5: mean indices 3 and 28, so the expected
  // difference is 0.02 * 25 = 0.5 with sd sqrt(2 / 5 / 40) = 0.1 per seed.
  const int seeds = 400;
  int covered = 0, significant = 0;
  double slope_sum = 0, diff_sum = 0;
  for (int seed = 1; seed <= seeds; ++seed) {
    Rng rng(static_cast<std::uint64_t>(seed));
    std::vector<EventRecord> events;
    for (int u = 0; u < 40; ++u) {
      TimeMs t = kMonday + rng.uniform_int(0, kDay);
      for (int i = 1; i <= 30; ++i) {
        t += rng.uniform_int(kMinute, 2 * kDay);
        EventRecord e = event_at(t, "user" + std::to_string(u));
        e.quality = std::clamp(5 + 0.02 * i + rng.normal(), 0.0, 10.0);
        events.push_back(e);
      }
    }
    std::shuffle(events.begin(), events.end(), rng.engine());
    const LearningCurve lc = analyze_behaviour(events).learning;
    REQUIRE(lc.points == 1200);
    REQUIRE(lc.first_last_users == 40);
    covered += (lc.slope_lower <= 0.02 && 0.02 <= lc.slope_upper) ? 1 : 0;
    significant += lc.p_value < 0.05 ? 1 : 0;
    slope_sum += lc.slope;
    diff_sum += lc.first_last_difference;
  }
  const double mean_slope = slope_sum / seeds, mean_diff = diff_sum / seeds;
  std::cout << "[frequency] learning curve: 95% CI covers 0.02 in " << covered << "/" << seeds
            << " seeds, mean slope " << mean_slope << ", slope significant in " << significant << "/" << seeds
            << ", mean last-5 minus first-5 " << mean_diff << "\n";
  CHECK(covered >= 0.9 * seeds);  // nominal 95%: 380 expected, sd 4.4
  // se of the slope per seed: 1 / sqrt(Sxx) with Sxx = 1200 * (30^2 - 1) / 12 = 89900 -> 0.0033; the mean
  // over 400 seeds has sd 0.00017 (4 sd = 0.0007)
  CHECK(mean_slope == Approx(0.02).margin(0.0007));
  CHECK(mean_diff == Approx(0.5).margin(0.02));  // sd 0.1 / sqrt(400) = 0.005
  CHECK(significant >= 0.9 * seeds);  // z ~ 0.02 / 0.0033 = 6
}

// ---------------------------------------------------------------------------------------------------------
// The whole report, edge cases, JSON

TEST_CASE("empty input gives empty results", "[frequency]") {
  const FrequencyReport r = analyze_frequency({});
  CHECK(r.events == 0);
  CHECK(r.temporal.peak_hours.empty());
  CHECK(std::isnan(r.temporal.hourly_test.p_value));
  CHECK_FALSE(r.temporal.daily_seasonality);
  CHECK(r.sessions.count == 0);
  CHECK(r.sessions.users.empty());
  CHECK(std::isnan(r.sessions.median_duration_ms));
  CHECK(r.content.top_keywords.empty());
  CHECK(r.content.domains.empty());
  CHECK(std::isnan(r.content.complexity_median));
  CHECK(r.behaviour.templates.empty());
  CHECK(r.behaviour.bypass.trials == 0);
  CHECK(std::isnan(r.behaviour.bypass.rate));
  CHECK(r.behaviour.retries == 0);
  CHECK(r.behaviour.learning.points == 0);
  CHECK(std::isnan(r.behaviour.learning.slope));
  const nlohmann::json j = r;
  CHECK(j.dump().find("\"median_duration_ms\":null") != std::string::npos);  // NaN is written as null
}

TEST_CASE("invalid parameters name their key", "[frequency]") {
  auto key_of = [](auto mutate) {
    FrequencyParams p;
    mutate(p);
    try {
      analyze_frequency({}, p);
    } catch (const ConfigError& e) {
      return e.key();
    }
    return std::string("no error");
  };
  CHECK(key_of([](FrequencyParams& p) { p.utc_offset_minutes = 900; }) == "frequency.utc_offset_minutes");
  CHECK(key_of([](FrequencyParams& p) { p.alpha = 0; }) == "frequency.alpha");
  CHECK(key_of([](FrequencyParams& p) { p.alpha = std::nan(""); }) == "frequency.alpha");
  CHECK(key_of([](FrequencyParams& p) { p.session_gap_ms = 0; }) == "frequency.session_gap_ms");
  CHECK(key_of([](FrequencyParams& p) { p.retry_window_ms = -1; }) == "frequency.retry_window_ms");
  CHECK(key_of([](FrequencyParams& p) { p.retry_min_jaccard = 1.5; }) == "frequency.retry_min_jaccard");
  CHECK(key_of([](FrequencyParams& p) { p.top_keywords = 1000000; }) == "frequency.top_keywords");
  CHECK(key_of([](FrequencyParams& p) { p.learning_k = 0; }) == "frequency.learning_k");
  CHECK_NOTHROW(FrequencyParams{}.validate());
}

TEST_CASE("invalid events name the field", "[frequency]") {
  std::vector<EventRecord> events(3, event_at(kMonday));
  events[1].quality = 11;
  CHECK_THROWS_WITH(analyze_frequency(events), "events[1].quality: 11 is outside [0, 10]");
  events[1].quality = kMissing;
  events[2].complexity = -1;
  try {
    analyze_content(events);
    FAIL("no exception");
  } catch (const ValidationError& e) {
    CHECK(e.path() == "events[2].complexity");
  }
}

TEST_CASE("parameters and reports serialise to JSON", "[frequency]") {
  FrequencyParams p;
  p.session_method = SessionMethod::gap;
  p.top_keywords = 7;
  nlohmann::json j = p;
  CHECK(j.at("session_method") == "gap");
  const auto back = j.get<FrequencyParams>();
  CHECK(back.session_method == SessionMethod::gap);
  CHECK(back.top_keywords == 7);
  CHECK(nlohmann::json::object().get<FrequencyParams>().session_gap_ms == 30 * kMinute);  // defaults
  j["session_method"] = "sometimes";
  CHECK_THROWS_AS(j.get<FrequencyParams>(), ConfigError);

  Rng rng(3);
  Planted planted = plant_sessions(rng, 5);
  for (EventRecord& e : planted.events) {
    e.keywords = fresh_keywords(rng);
    e.domain = "code";
    e.complexity = 4;
    e.template_id = "t";
    e.quality = 7;
  }
  const FrequencyReport r = analyze_frequency(planted.events);
  const nlohmann::json rj = r;
  for (const char* key : {"events", "temporal", "sessions", "content", "behaviour"}) CHECK(rj.contains(key));
  CHECK(rj.at("temporal").at("weekday_hour").size() == 7);
  CHECK(rj.at("sessions").at("sessions").size() == planted.expected.size());
  CHECK(rj.at("behaviour").at("bypass").at("rate") == 0.0);
  // round trip of a result struct through the macros
  CHECK(nlohmann::json(rj.at("sessions").get<SessionResult>()) == rj.at("sessions"));
}

TEST_CASE("analyze_frequency agrees with the single analyses and ignores input order", "[frequency]") {
  Rng rng(11);
  Planted planted = plant_sessions(rng, 15);
  for (EventRecord& e : planted.events) {
    e.keywords = fresh_keywords(rng);
    e.quality = rng.uniform(0, 10);
    e.enhancement_applied = rng.bernoulli(0.7);
  }
  const FrequencyReport a = analyze_frequency(planted.events);
  // compared as text: NaN (written as null) is not equal to itself inside nlohmann::json
  auto text = [](const auto& x) { return nlohmann::json(x).dump(); };
  CHECK(text(a.temporal) == text(analyze_temporal(planted.events)));
  CHECK(text(a.sessions) == text(analyze_sessions(planted.events)));
  CHECK(text(a.content) == text(analyze_content(planted.events)));
  CHECK(text(a.behaviour) == text(analyze_behaviour(planted.events)));
  std::shuffle(planted.events.begin(), planted.events.end(), rng.engine());
  FrequencyReport b = analyze_frequency(planted.events);
  // everything but the input positions of the retries is order-free
  CHECK(text(a.temporal) == text(b.temporal));
  CHECK(text(a.sessions) == text(b.sessions));
  CHECK(text(a.content) == text(b.content));
  CHECK(a.behaviour.retries == b.behaviour.retries);
  CHECK(text(a.behaviour.learning) == text(b.behaviour.learning));  // users are visited in name order
}

TEST_CASE("analyze_frequency over 1,000,000 records", "[frequency][.perf]") {
  Rng rng(2025);
  std::vector<std::string> vocab, domains = {"code", "data", "web", "ops", "docs", "math", "ml", "general"},
                                   templates = {"t_code", "t_data", "t_web", "t_plain", "t_long", "t_short"};
  for (int i = 0; i < 5000; ++i) vocab.push_back("kw" + std::to_string(i));
  const std::size_t n = 1000000;
  std::vector<EventRecord> events;
  events.reserve(n);
  for (int u = 0; events.size() < n; ++u) {
    const std::string user = "user" + std::to_string(u);
    TimeMs t = kMonday + rng.uniform_int(0, 7 * kDay);
    int session = 0;
    for (int i = 0; i < 200 && events.size() < n; ++i) {
      const bool new_session = rng.bernoulli(0.15);
      t += new_session ? rng.uniform_int(kHour, kDay) : rng.uniform_int(10000, 20 * kMinute);
      session += new_session ? 1 : 0;
      EventRecord e;
      e.time = t;
      e.user_id = user;
      if (u % 2 == 0) e.session_id = "s" + std::to_string(u) + "_" + std::to_string(session);
      e.template_id = templates[static_cast<std::size_t>(rng.uniform_int(0, 5))];
      e.enhancement_applied = rng.bernoulli(0.8);
      e.domain = domains[static_cast<std::size_t>(rng.uniform_int(0, 7))];
      e.complexity = static_cast<int>(rng.uniform_int(1, 10));
      for (int k = 0; k < 5; ++k) e.keywords.push_back(vocab[static_cast<std::size_t>(rng.uniform_int(0, 4999))]);
      if (rng.bernoulli(0.5)) e.quality = rng.uniform(0, 10);
      events.push_back(std::move(e));
    }
  }
  const auto start = std::chrono::steady_clock::now();
  const FrequencyReport r = analyze_frequency(events);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[frequency] analyze_frequency over " << n << " records: " << seconds << " s (" << r.sessions.count
            << " sessions, " << r.sessions.users.size() << " users, " << r.content.distinct_keywords
            << " keywords, " << r.behaviour.retries << " retries)\n";
  CHECK(r.events == n);
  CHECK(seconds < 3.0);
}
