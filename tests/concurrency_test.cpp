// Concurrency: several processes write one file at once; nothing lost, no error surfaced.
#include <catch2/catch.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "promptlearn/engine.hpp"
#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using namespace promptlearn;

namespace {

/// Runs `body` in `n` forked processes; returns how many exited with status 0.
template <typename F>
int run_processes(int n, F body) {
  std::vector<pid_t> pids;
  for (int p = 0; p < n; ++p) {
    std::cout.flush();
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int code = 0;
      try {
        code = body(p);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "process %d: %s\n", p, e.what());
        code = 1;
      }
      ::_exit(code);
    }
    pids.push_back(pid);
  }
  int ok = 0;
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  return ok;
}

}  // namespace

TEST_CASE("4 processes x 10,000 events into one file: all present, no error", "[concurrency]") {
  test::TempDir dir;
  std::string db = dir.file("shared.db");
  constexpr int kProcesses = 4, kEvents = 10000;
  int ok = run_processes(kProcesses, [&](int p) {
    Config cfg = Config::defaults();
    cfg.learning.data_collection.mode = CollectionMode::buffered;
    LearningEngine engine(db, cfg);
    for (int i = 0; i < kEvents; ++i) {
      auto id = test::uuid_for(static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(p + 1));
      if (!engine.record(test::interaction_doc(id, "Summarize the design document, part " + std::to_string(i))).accepted)
        return 2;
      if (i % 10 == 0 &&
          !engine.record(nlohmann::json{{"interaction_id", id}, {"outcome_data", {{"response_quality_score", 7}}}})
               .accepted)
        return 3;
    }
    engine.close();
    auto c = engine.stats().collector;
    return c.committed == static_cast<std::uint64_t>(kEvents + kEvents / 10) && c.rejected == 0 ? 0 : 4;
  });
  CHECK(ok == kProcesses);
  store::Store st(db);
  auto counts = st.counts();
  CHECK(counts.interactions == kProcesses * kEvents);
  CHECK(counts.outcomes == kProcesses * kEvents / 10);
  CHECK(counts.pending_events == 0);
  CHECK(counts.rejected_events == 0);
  for (int p = 0; p < kProcesses; ++p) {
    CHECK(st.interaction_exists(test::uuid_for(0, static_cast<std::uint64_t>(p + 1))));
    CHECK(st.interaction_exists(test::uuid_for(kEvents - 1, static_cast<std::uint64_t>(p + 1))));
  }
  CHECK(st.db().query_int("SELECT documents FROM corpus_stats") == kProcesses * kEvents);
  CHECK(st.integrity_check() == "ok");
}

TEST_CASE("processes committing every event (synchronous mode) contend without errors", "[concurrency]") {
  test::TempDir dir;
  std::string db = dir.file("contended.db");
  constexpr int kProcesses = 4, kEvents = 150;
  int ok = run_processes(kProcesses, [&](int p) {
    Config cfg = Config::defaults();
    cfg.learning.data_collection.synchronous_commit = SynchronousCommit::normal;  // contention, not fsync, is tested
    LearningEngine engine(db, cfg);
    for (int i = 0; i < kEvents; ++i)
      if (!engine.record(test::interaction_doc(test::uuid_for(static_cast<std::uint64_t>(i), 100 + p))).accepted)
        return 2;
    return 0;
  });
  CHECK(ok == kProcesses);
  store::Store st(db);
  CHECK(st.counts().interactions == kProcesses * kEvents);
  CHECK(st.integrity_check() == "ok");
}

TEST_CASE("processes opening a new file at the same moment all migrate it safely", "[concurrency]") {
  test::TempDir dir;
  std::string db = dir.file("race.db");
  int ok = run_processes(6, [&](int p) {
    LearningEngine engine(db, Config::defaults());
    return engine.record(test::interaction_doc(test::uuid_for(1, 500 + p))).accepted ? 0 : 2;
  });
  CHECK(ok == 6);
  store::Store st(db);
  CHECK(st.schema_version() == store::kSchemaVersion);
  CHECK(st.counts().interactions == 6);
}
