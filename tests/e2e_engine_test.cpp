// End to end through LearningEngine: the specification's documents, reopen, threads, refusals.
#include <catch2/catch.hpp>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "promptlearn/core/error.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using namespace promptlearn;
using nlohmann::json;

TEST_CASE("the specification's three documents, recorded and read back after a reopen", "[e2e][engine]") {
  test::TempDir dir;
  std::string db = dir.file("engine.db");
  {
    LearningEngine engine(db, Config::defaults());
    for (const char* name : {"spec_interaction.json", "spec_performance.json", "spec_outcome.json"})
      CHECK(engine.record(test::fixture(name)).accepted);
    engine.close();
  }
  LearningEngine engine(db, Config::defaults());
  auto s = engine.stats();
  CHECK(s.tables.interactions == 1);
  CHECK(s.tables.performance == 1);
  CHECK(s.tables.outcomes == 1);
  CHECK(s.schema_version == store::kSchemaVersion);
  CHECK(s.collector.received == 0);  // counters are per engine instance
  store::Database raw(db);
  store::Statement q(raw,
                     "SELECT i.timestamp, i.selected_template, p.cache_hit_rate, o.user_satisfaction_rating, "
                     "o.explicit_feedback FROM interactions i JOIN performance p USING (interaction_id) "
                     "JOIN outcomes o USING (interaction_id)");
  REQUIRE(q.step());
  CHECK(q.column_text(0) == "2025-01-15T10:30:00.000Z");
  CHECK(q.column_text(1) == "api_development");
  CHECK(q.column_double(2) == Approx(0.75));
  CHECK(q.column_double(3) == Approx(9));
  CHECK(q.column_text(4) == "Very helpful, exactly what I needed");
  CHECK(engine.integrity_check() == "ok");
}

TEST_CASE("the engine is safe to use from several threads at once", "[e2e][engine]") {
  test::TempDir dir;
  LearningEngine engine(dir.file("threads.db"), Config::defaults());
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        if (engine.record(test::interaction_doc(test::uuid_for(static_cast<std::uint64_t>(i), 900 + t))).accepted)
          ++accepted;
        if (i % 25 == 0) (void)engine.stats();
        if (i % 30 == 0) (void)engine.extract_features("Explain the scheduler");
      }
    });
  for (auto& th : threads) th.join();
  CHECK(accepted == 400);
  CHECK(engine.stats().tables.interactions == 400);
}

TEST_CASE("the engine refuses a bad configuration and a newer schema, naming them", "[e2e][engine]") {
  test::TempDir dir;
  Config bad = Config::defaults();
  bad.learning.learning_parameters.learning_rate = 1.5;
  CHECK_THROWS_AS(LearningEngine(dir.file("cfg.db"), bad), ConfigError);
  CHECK_THROWS_WITH(LearningEngine(dir.file("cfg.db"), bad),
                    Catch::StartsWith("learning.learning_parameters.learning_rate: 1.5"));

  std::string newer = dir.file("newer.db");
  { LearningEngine e(newer, Config::defaults()); }
  {
    store::Database raw(newer);
    raw.exec("PRAGMA user_version = 99");
  }
  CHECK_THROWS_AS(LearningEngine(newer, Config::defaults()), StorageError);
  CHECK_THROWS_WITH(LearningEngine(newer, Config::defaults()), Catch::Contains("schema version 99, newer"));
}

TEST_CASE("a record that cannot be written throws StorageError and is not acknowledged", "[e2e][engine]") {
  test::TempDir dir;
  std::string db = dir.file("readonly.db");
  LearningEngine engine(db, Config::defaults());
  // Another connection holds the write lock longer than our busy timeout allows.
  EngineOptions quick;
  quick.busy_timeout_ms = 50;
  LearningEngine impatient(db, Config::defaults(), quick);
  store::Database blocker(db);
  blocker.exec("BEGIN IMMEDIATE");
  CHECK_THROWS_AS(impatient.record(test::interaction_doc(test::uuid_for(1, 5))), StorageError);
  blocker.exec("ROLLBACK");
  CHECK(impatient.stats().collector.committed == 0);
  CHECK(impatient.record(test::interaction_doc(test::uuid_for(1, 5))).accepted);  // retried by the host: fine
  CHECK(engine.stats().tables.interactions == 1);
}
