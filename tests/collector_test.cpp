// Collector: validate -> enrich -> buffer -> batch write; pending outcomes; duplicates; back-pressure.
#include <catch2/catch.hpp>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "promptlearn/collect/collector.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using namespace promptlearn;
using nlohmann::json;

namespace {

std::int64_t count(const std::string& path, const std::string& sql) {
  store::Database db(path);
  return db.query_int(sql);
}

std::string text(const std::string& path, const std::string& sql) {
  store::Database db(path);
  store::Statement st(db, sql);
  return st.step() ? st.column_text(0) : std::string("<no row>");
}

Config buffered(int batch, int capacity) {
  Config c = Config::defaults();
  c.learning.data_collection.mode = CollectionMode::buffered;
  c.learning.data_collection.batch_size = batch;
  c.learning.data_collection.buffer_capacity = capacity;
  return c;
}

}  // namespace

TEST_CASE("an outcome that arrives before its interaction is kept pending, then attached", "[collector]") {
  test::TempDir dir;
  std::string db = dir.file("pending.db");
  std::string id = test::uuid_for(1);
  {
    LearningEngine engine(db, Config::defaults());
    auto r = engine.record(json{{"interaction_id", id}, {"outcome_data", {{"response_quality_score", 7.5}}}});
    CHECK(r.accepted);
    CHECK(engine.stats().tables.pending_events == 1);
    CHECK(engine.stats().tables.outcomes == 0);
  }
  CHECK(count(db, "SELECT count(*) FROM pending_events") == 1);  // survives a restart
  {
    LearningEngine engine(db, Config::defaults());
    auto perf = engine.record(json{{"interaction_id", id}, {"performance_metrics", {{"total_processing_time_ms", 99}}}});
    CHECK(perf.accepted);
    CHECK(engine.record(test::interaction_doc(id)).accepted);
    auto s = engine.stats();
    CHECK(s.tables.pending_events == 0);
    CHECK(s.tables.outcomes == 1);
    CHECK(s.tables.performance == 1);
  }
  CHECK(text(db, "SELECT response_quality_score FROM outcomes") == "7.5");
  CHECK(text(db, "SELECT total_processing_time_ms FROM performance") == "99.0");
}

TEST_CASE("a second interaction with the same id is rejected and the first is kept", "[collector]") {
  test::TempDir dir;
  std::string db = dir.file("dup.db");
  std::string id = test::uuid_for(2);
  LearningEngine engine(db, Config::defaults());
  CHECK(engine.record(test::interaction_doc(id, "first prompt")).accepted);
  auto again = engine.record(test::interaction_doc(id, "second prompt"));
  // In synchronous mode the write happens before return, but the result was decided at validation;
  // the file is the authority.
  engine.flush();
  CHECK(engine.stats().tables.interactions == 1);
  CHECK(engine.stats().tables.rejected_events == 1);
  CHECK(text(db, "SELECT raw_prompt FROM interactions") == "first prompt");
  CHECK(text(db, "SELECT reason FROM rejected_events") ==
        "interaction_id: \"" + id + "\" is already recorded; the first report is kept");
  CHECK(text(db, "SELECT field FROM rejected_events") == "interaction_id");
  (void)again;

  auto results = engine.record_batch({test::interaction_doc(test::uuid_for(3)).dump(),
                                      test::interaction_doc(test::uuid_for(3)).dump()});
  REQUIRE(results.size() == 2);
  CHECK(results[0].accepted);
  CHECK_FALSE(results[1].accepted);  // record_batch reports duplicates found at write time
  CHECK(results[1].field == "interaction_id");
}

TEST_CASE("enrichment fills empty fields and never overwrites what the host supplied", "[collector]") {
  test::TempDir dir;
  std::string db = dir.file("enrich.db");
  LearningEngine engine(db, Config::defaults());
  json supplied = test::fixture("spec_interaction.json");
  json bare = test::interaction_doc(test::uuid_for(4), "Write a Dockerfile for the Flask API and pin every image version");
  CHECK(engine.record(supplied).accepted);
  CHECK(engine.record(bare).accepted);
  engine.close();
  const std::string sid = supplied["interaction_id"];
  CHECK(text(db, "SELECT token_count FROM interactions WHERE interaction_id='" + sid + "'") == "8");
  CHECK(text(db, "SELECT domain FROM interactions WHERE interaction_id='" + sid + "'") == "web_development");
  CHECK(text(db, "SELECT detected_keywords FROM interactions WHERE interaction_id='" + sid + "'") ==
        R"(["REST","API","authentication","endpoint"])");
  const std::string bid = bare["interaction_id"];
  CHECK(count(db, "SELECT token_count > 5 FROM interactions WHERE interaction_id='" + bid + "'") == 1);
  CHECK(count(db, "SELECT complexity_score BETWEEN 1 AND 10 FROM interactions WHERE interaction_id='" + bid + "'") == 1);
  CHECK(count(db, "SELECT json_array_length(detected_keywords) > 0 FROM interactions WHERE interaction_id='" + bid + "'") == 1);
  CHECK(text(db, "SELECT domain FROM interactions WHERE interaction_id='" + bid + "'") != "");
  CHECK(count(db, "SELECT json_extract(features, '$.hour_of_day') FROM interactions WHERE interaction_id='" + bid + "'") == 12);
}

TEST_CASE("invalid documents are kept in rejected_events with reason, field and the raw text", "[collector]") {
  test::TempDir dir;
  std::string db = dir.file("rejected.db");
  LearningEngine engine(db, Config::defaults());
  const std::string malformed = "{\"interaction_id\": \"x\", ";
  auto r1 = engine.record(std::string_view(malformed));
  CHECK_FALSE(r1.accepted);
  CHECK_THAT(r1.error, Catch::StartsWith("malformed JSON"));
  json bad = test::fixture("spec_outcome.json");
  bad["outcome_data"]["quality_metrics"]["accuracy"] = 1.7;
  auto r2 = engine.record(bad);
  CHECK_FALSE(r2.accepted);
  CHECK(r2.field == "outcome_data.quality_metrics.accuracy");
  CHECK(r2.error == "outcome_data.quality_metrics.accuracy: 1.7 is outside [0, 1]");
  CHECK(r2.interaction_id == bad["interaction_id"]);
  engine.close();
  CHECK(count(db, "SELECT count(*) FROM rejected_events") == 2);
  CHECK(text(db, "SELECT payload FROM rejected_events ORDER BY id LIMIT 1") == malformed);
  CHECK(text(db, "SELECT field FROM rejected_events ORDER BY id DESC LIMIT 1") ==
        "outcome_data.quality_metrics.accuracy");
  // The invalid document itself is kept, not only its reason (it was lost once: the payload was moved
  // into a call whose other argument threw).
  CHECK(json::parse(text(db, "SELECT payload FROM rejected_events ORDER BY id DESC LIMIT 1"))["outcome_data"]
            ["quality_metrics"]["accuracy"] == 1.7);
  auto c = engine.stats().collector;
  CHECK(c.rejected == 2);
  CHECK(c.accepted == 0);
}

TEST_CASE("buffered mode: queued until the batch fills, flush() and close commit, counters add up", "[collector]") {
  test::TempDir dir;
  std::string db = dir.file("buffered.db");
  {
    LearningEngine engine(db, buffered(5, 20));
    for (int i = 0; i < 4; ++i) CHECK(engine.record(test::interaction_doc(test::uuid_for(100 + i))).accepted);
    auto s = engine.stats();
    CHECK(s.collector.queued == 4);
    CHECK(s.collector.committed == 0);
    CHECK(s.tables.interactions == 0);
    engine.record(test::interaction_doc(test::uuid_for(104)));  // the fifth fills the batch
    s = engine.stats();
    CHECK(s.collector.committed == 5);
    CHECK(s.tables.interactions == 5);
    engine.record(test::interaction_doc(test::uuid_for(105)));
    engine.record(std::string_view("not json"));
    s = engine.stats();
    CHECK(s.collector.accepted == s.collector.committed + s.collector.queued);
    CHECK(s.collector.received == 7);
    engine.flush();
    s = engine.stats();
    CHECK(s.collector.queued == 0);
    CHECK(s.tables.interactions == 6);
    CHECK(s.tables.rejected_events == 1);
    engine.record(test::interaction_doc(test::uuid_for(106)));
    // destroyed with one event buffered: the destructor flushes it
  }
  CHECK(count(db, "SELECT count(*) FROM interactions") == 7);
}

TEST_CASE("buffered mode under many threads: back-pressure, nothing dropped", "[collector]") {
  test::TempDir dir;
  std::string db = dir.file("pressure.db");
  constexpr int kThreads = 4, kPerThread = 500;
  {
    LearningEngine engine(db, buffered(10, 10));
    std::vector<std::thread> threads;
    std::atomic<int> accepted{0};
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i)
          if (engine.record(test::interaction_doc(test::uuid_for(static_cast<std::uint64_t>(i), 1000 + t))).accepted)
            ++accepted;
      });
    for (auto& th : threads) th.join();
    CHECK(accepted == kThreads * kPerThread);
    engine.close();
    CHECK(engine.stats().collector.committed == static_cast<std::uint64_t>(kThreads * kPerThread));
  }
  CHECK(count(db, "SELECT count(*) FROM interactions") == kThreads * kPerThread);
}

TEST_CASE("corpus statistics persist and merge across engines on one file", "[collector]") {
  test::TempDir dir;
  std::string db = dir.file("corpus.db");
  {
    LearningEngine a(db, Config::defaults());
    LearningEngine b(db, Config::defaults());
    for (int i = 0; i < 30; ++i) a.record(test::interaction_doc(test::uuid_for(i, 1), "Refactor the parser module"));
    for (int i = 0; i < 20; ++i) b.record(test::interaction_doc(test::uuid_for(i, 2), "Write a poem about autumn"));
    a.close();
    b.close();
  }
  CHECK(count(db, "SELECT documents FROM corpus_stats WHERE name='prompts'") == 50);
  LearningEngine c(db, Config::defaults());
  CHECK(c.stats().corpus_documents == 50);
  // A term seen in 30 of 50 documents is less informative than one seen in 20.
  auto corpus = features::CorpusStats::from_blob(text(db, "SELECT buckets FROM corpus_stats"));
  CHECK(corpus.idf("parser") < corpus.idf("poem"));
}

TEST_CASE("data minimisation: store_raw_prompt=false keeps features but not the text", "[collector]") {
  test::TempDir dir;
  std::string db = dir.file("minimal.db");
  Config cfg = Config::defaults();
  cfg.learning.data_collection.store_raw_prompt = false;
  LearningEngine engine(db, cfg);
  CHECK(engine.record(test::interaction_doc(test::uuid_for(9), "Fix the segfault in the parser")).accepted);
  engine.close();
  CHECK(text(db, "SELECT raw_prompt FROM interactions") == "");
  CHECK(count(db, "SELECT token_count FROM interactions") > 0);
}

TEST_CASE("the prompt length limit comes from the configuration", "[collector]") {
  test::TempDir dir;
  Config cfg = Config::defaults();
  cfg.learning.data_collection.max_prompt_chars = 16;
  LearningEngine engine(dir.file("limit.db"), cfg);
  auto r = engine.record(test::interaction_doc(test::uuid_for(11), "this prompt is longer than sixteen bytes"));
  CHECK_FALSE(r.accepted);
  CHECK(r.error == "input_data.raw_prompt: string of 40 bytes exceeds the limit of 16");
}

TEST_CASE("a Collector can be used on its own over a Store", "[collector]") {
  test::TempDir dir;
  store::Store st(dir.file("own.db"));
  ManualClock clock(1736937000000LL);
  Collector collector(st, Config::defaults(), clock);
  Event e;
  e.interaction_id = test::uuid_for(12);
  e.input_data = InputData{};
  e.input_data->raw_prompt = "Plot the distribution of sensor readings";
  auto r = collector.record(e);
  CHECK(r.accepted);
  collector.close();
  CHECK(st.counts().interactions == 1);
  // The timestamp defaults to the injected clock.
  store::Statement q(st.db(), "SELECT timestamp FROM interactions");
  REQUIRE(q.step());
  CHECK(q.column_text(0) == "2025-01-15T10:30:00.000Z");
}
