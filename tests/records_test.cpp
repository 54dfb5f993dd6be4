// Core records: the specification's examples round-trip, and one test per validation rule.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/records.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/core/time.hpp"
#include "test_util.hpp"

using namespace promptlearn;
using nlohmann::json;

namespace {

/// The message of the ValidationError that parsing `doc` throws ("" if it does not throw).
std::string error_of(const json& doc) {
  try {
    parse_event(doc);
  } catch (const ValidationError& e) {
    return e.what();
  }
  return "";
}

json with(json doc, const json::json_pointer& ptr, const json& value) {
  doc[ptr] = value;
  return doc;
}

const std::string kId = "550e8400-e29b-41d4-a716-446655440000";

}  // namespace

TEST_CASE("the specification's examples parse and round-trip exactly", "[records]") {
  for (const char* name : {"spec_interaction.json", "spec_performance.json", "spec_outcome.json"}) {
    INFO(name);
    json doc = test::fixture(name);
    Event e = parse_event(doc);
    json back = to_json(e);
    // Timestamps come back normalised to milliseconds, UTC.
    json expected = doc;
    expected["timestamp"] = format_rfc3339(*try_parse_rfc3339(doc["timestamp"].get<std::string>()));
    CHECK(back == expected);
    CHECK(to_json(parse_event(back)) == back);
  }
  Event e = parse_event(test::fixture("spec_interaction.json"));
  REQUIRE(e.input_data);
  CHECK(e.input_data->token_count == 8);
  CHECK(e.input_data->detected_keywords->size() == 4);
  CHECK(e.enhancement_data->template_version == "2.1");
  CHECK(e.context_data->recent_files->at(2) == "routes.py");
  Event o = parse_event(test::fixture("spec_outcome.json"));
  CHECK(o.outcome_data->feedback_data->implicit_feedback->edit_action_count == 1);
  CHECK(o.outcome_data->quality_metrics->accuracy == Approx(0.85));
}

TEST_CASE("RFC 3339 timestamps: parse, offsets, calendar, format", "[records]") {
  CHECK(try_parse_rfc3339("1970-01-01T00:00:00Z") == 0);
  CHECK(try_parse_rfc3339("2025-01-15T10:30:00Z") == 1736937000000LL);
  CHECK(try_parse_rfc3339("2025-01-15T12:30:00+02:00") == 1736937000000LL);
  CHECK(try_parse_rfc3339("2025-01-15T10:30:00.250Z") == 1736937000250LL);
  CHECK(try_parse_rfc3339("2024-02-29T00:00:00Z").has_value());
  CHECK_FALSE(try_parse_rfc3339("2025-02-29T00:00:00Z").has_value());
  CHECK_FALSE(try_parse_rfc3339("2025-13-01T00:00:00Z").has_value());
  CHECK_FALSE(try_parse_rfc3339("2025-01-15 10:30").has_value());
  CHECK_FALSE(try_parse_rfc3339("2025-01-15T10:30:00").has_value());  // no offset
  CHECK_FALSE(try_parse_rfc3339("2025-01-15T24:00:00Z").has_value());
  CHECK_FALSE(try_parse_rfc3339("2025-01-15T10:30:00Zjunk").has_value());
  CHECK(format_rfc3339(1736937000250LL) == "2025-01-15T10:30:00.250Z");
  CHECK(format_rfc3339(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(hour_of_day_utc(1736937000000LL) == 10);
  CHECK(day_of_week_utc(1736937000000LL) == 2);  // 2025-01-15 was a Wednesday
}

TEST_CASE("UUID v4 check and generator", "[records]") {
  CHECK(is_uuid_v4(kId));
  CHECK_FALSE(is_uuid_v4("550e8400-e29b-11d4-a716-446655440000"));  // version 1
  CHECK_FALSE(is_uuid_v4("550e8400-e29b-41d4-c716-446655440000"));  // variant
  CHECK_FALSE(is_uuid_v4("550e8400e29b41d4a716446655440000"));
  CHECK_FALSE(is_uuid_v4("550e8400-e29b-41d4-a716-44665544000g"));
  Rng a(7), b(7);
  for (int i = 0; i < 100; ++i) {
    std::string u = a.uuid_v4();
    CHECK(is_uuid_v4(u));
    CHECK(u == b.uuid_v4());  // deterministic given the seed
  }
}

TEST_CASE("validation: document shape", "[records]") {
  CHECK(error_of(json::array()) == "expected an object, got an array []");
  CHECK(error_of(json::object()) == "interaction_id: is required");
  CHECK(error_of({{"interaction_id", "abc"}, {"outcome_data", json::object()}}) ==
        "interaction_id: \"abc\" is not a UUID v4");
  CHECK(error_of({{"interaction_id", 5}}) == "interaction_id: expected a string, got a number 5");
  CHECK(error_of({{"interaction_id", kId}}) ==
        "the document has none of the sections input_data, context_data, enhancement_data, performance_metrics, "
        "outcome_data");
  CHECK(error_of({{"interaction_id", kId}, {"outcome_data", json::object()}, {"extra", 1}}) == "extra: unknown field");
  CHECK(error_of({{"interaction_id", kId}, {"timestamp", "yesterday"}, {"outcome_data", json::object()}}) ==
        "timestamp: \"yesterday\" is not an RFC 3339 date-time");
  CHECK(error_of({{"interaction_id", kId}, {"context_data", json::object()}}) ==
        "input_data: is required when context_data or enhancement_data is given");
  CHECK(error_of({{"interaction_id", kId}, {"session_id", ""}, {"outcome_data", json::object()}}) ==
        "session_id: must not be empty");
  CHECK_THROWS_WITH(parse_event_text("{\"interaction_id\": "), Catch::StartsWith("malformed JSON: "));
}

TEST_CASE("validation: input_data rules", "[records]") {
  json doc = test::fixture("spec_interaction.json");
  CHECK(error_of(with(doc, "/input_data/raw_prompt"_json_pointer, nullptr)) == "input_data.raw_prompt: is required");
  CHECK(error_of(with(doc, "/input_data/raw_prompt"_json_pointer, 12)) ==
        "input_data.raw_prompt: expected a string, got a number 12");
  CHECK(error_of(with(doc, "/input_data/token_count"_json_pointer, -3)) ==
        "input_data.token_count: -3 is below the minimum 0");
  CHECK(error_of(with(doc, "/input_data/token_count"_json_pointer, 2.5)) ==
        "input_data.token_count: expected an integer, got 2.5");
  CHECK(error_of(with(doc, "/input_data/complexity_score"_json_pointer, 11)) ==
        "input_data.complexity_score: 11 is outside [1, 10]");
  CHECK(error_of(with(doc, "/input_data/detected_keywords"_json_pointer, json::array({"ok", 3}))) ==
        "input_data.detected_keywords[1]: expected a string, got a number 3");
  CHECK(error_of(with(doc, "/input_data/detected_keywords"_json_pointer, "api")) ==
        "input_data.detected_keywords: expected an array of strings, got a string \"api\"");
  CHECK(error_of(with(doc, "/input_data/colour"_json_pointer, "red")) == "input_data.colour: unknown field");
  ValidationLimits small;
  small.max_prompt_chars = 10;
  CHECK_THROWS_WITH(parse_event(doc, small),
                    "input_data.raw_prompt: string of 50 bytes exceeds the limit of 10");
  CHECK(parse_event(with(doc, "/input_data/token_count"_json_pointer, 10.0)).input_data->token_count == 10);
}

TEST_CASE("validation: context and enhancement rules", "[records]") {
  json doc = test::fixture("spec_interaction.json");
  CHECK(error_of(with(doc, "/context_data/recent_files"_json_pointer, json::array({1}))) ==
        "context_data.recent_files[0]: expected a string, got a number 1");
  CHECK(error_of(with(doc, "/context_data/git_branch"_json_pointer, true)) ==
        "context_data.git_branch: expected a string, got a boolean true");
  CHECK(error_of(with(doc, "/enhancement_data/enhancement_applied"_json_pointer, "yes")) ==
        "enhancement_data.enhancement_applied: expected a boolean, got a string \"yes\"");
  CHECK(error_of(with(doc, "/enhancement_data/enhancement_time_ms"_json_pointer, -1)) ==
        "enhancement_data.enhancement_time_ms: -1 is below the minimum 0");
  CHECK(error_of(with(doc, "/enhancement_data/template_version"_json_pointer, 2.5)) ==
        "enhancement_data.template_version: expected a string or an integer, got a number 2.5");
  CHECK(parse_event(with(doc, "/enhancement_data/template_version"_json_pointer, 3)).enhancement_data->template_version ==
        "3");
  std::string long_list_error = error_of(with(doc, "/context_data/recent_files"_json_pointer,
                                              json(std::vector<std::string>(1001, "a.py"))));
  CHECK(long_list_error == "context_data.recent_files: 1001 items exceed the limit of 1000");
}

TEST_CASE("validation: performance rules", "[records]") {
  json doc = test::fixture("spec_performance.json");
  CHECK(error_of(with(doc, "/performance_metrics/total_processing_time_ms"_json_pointer, -5)) ==
        "performance_metrics.total_processing_time_ms: -5 is below the minimum 0");
  CHECK(error_of(with(doc, "/performance_metrics/cache_performance/cache_hit_rate"_json_pointer, 1.2)) ==
        "performance_metrics.cache_performance.cache_hit_rate: 1.2 is outside [0, 1]");
  CHECK(error_of(with(doc, "/performance_metrics/cache_performance/template_cache_hit"_json_pointer, 1)) ==
        "performance_metrics.cache_performance.template_cache_hit: expected a boolean, got a number 1");
  CHECK(error_of(with(doc, "/performance_metrics/resource_usage/memory_peak_mb"_json_pointer, "big")) ==
        "performance_metrics.resource_usage.memory_peak_mb: expected a number, got a string \"big\"");
  CHECK(error_of(with(doc, "/performance_metrics/resource_usage"_json_pointer, 3)) ==
        "performance_metrics.resource_usage: expected an object, got a number 3");
}

TEST_CASE("validation: outcome rules", "[records]") {
  json doc = test::fixture("spec_outcome.json");
  CHECK(error_of(with(doc, "/outcome_data/quality_metrics/accuracy"_json_pointer, 1.7)) ==
        "outcome_data.quality_metrics.accuracy: 1.7 is outside [0, 1]");
  CHECK(error_of(with(doc, "/outcome_data/response_quality_score"_json_pointer, 10.5)) ==
        "outcome_data.response_quality_score: 10.5 is outside [0, 10]");
  CHECK(error_of(with(doc, "/outcome_data/user_satisfaction_rating"_json_pointer, 0)) ==
        "outcome_data.user_satisfaction_rating: 0 is outside [1, 10]");
  CHECK(error_of(with(doc, "/outcome_data/claude_response_time_ms"_json_pointer, -0.5)) ==
        "outcome_data.claude_response_time_ms: -0.5 is below the minimum 0");
  CHECK(error_of(with(doc, "/outcome_data/feedback_data/implicit_feedback/acceptance_rate"_json_pointer, -0.1)) ==
        "outcome_data.feedback_data.implicit_feedback.acceptance_rate: -0.1 is outside [0, 1]");
  CHECK(error_of(with(doc, "/outcome_data/feedback_data/implicit_feedback/copy_action_count"_json_pointer, -1)) ==
        "outcome_data.feedback_data.implicit_feedback.copy_action_count: -1 is below the minimum 0");
  CHECK(error_of(with(doc, "/outcome_data/reward"_json_pointer, 2)) == "outcome_data.reward: 2 is outside [0, 1]");
  CHECK(error_of(with(doc, "/outcome_data/feedback_data/explicit_feedback"_json_pointer,
                      std::string(10001, 'x'))) ==
        "outcome_data.feedback_data.explicit_feedback: string of 10001 bytes exceeds the limit of 10000");
  // null means absent
  CHECK_FALSE(parse_event(with(doc, "/outcome_data/reward"_json_pointer, nullptr)).outcome_data->reward.has_value());
}

TEST_CASE("the validation error carries the path separately", "[records]") {
  try {
    parse_event(with(test::fixture("spec_outcome.json"), "/outcome_data/quality_metrics/accuracy"_json_pointer, 1.7));
    FAIL("no error");
  } catch (const ValidationError& e) {
    CHECK(e.path() == "outcome_data.quality_metrics.accuracy");
  }
}
