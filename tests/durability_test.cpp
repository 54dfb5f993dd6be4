// Durability: `promptlearn ingest` killed with SIGKILL at random points; every acknowledged event
// must be in the reopened file, which must pass PRAGMA integrity_check.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using namespace promptlearn;

namespace {

struct Child {
  pid_t pid = -1;
  int in_fd = -1;   // we write its stdin
  int out_fd = -1;  // we read its stdout
};

Child spawn_ingest(const std::string& db, int batch) {
  int in_pipe[2], out_pipe[2];
  REQUIRE(::pipe(in_pipe) == 0);
  REQUIRE(::pipe(out_pipe) == 0);
  std::string exe = std::string(PROMPTLEARN_BIN_DIR) + "/promptlearn";
  std::string batch_s = std::to_string(batch);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 2);
    ::close(in_pipe[1]);
    ::close(out_pipe[0]);
    ::execl(exe.c_str(), exe.c_str(), "ingest", "--db", db.c_str(), "--batch", batch_s.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  return {pid, in_pipe[1], out_pipe[0]};
}

}  // namespace

TEST_CASE("ingest killed with SIGKILL at random points loses no acknowledged event", "[durability]") {
  std::signal(SIGPIPE, SIG_IGN);  // the child dies while we write to it
  test::TempDir dir;
  std::string db = dir.file("kill.db");
  std::mt19937_64 rng(20261127);
  constexpr int kTrials = 24;
  std::int64_t total_acknowledged = 0;
  int trials_with_progress = 0;

  for (int trial = 0; trial < kTrials; ++trial) {
    int batch = std::uniform_int_distribution<int>(1, 64)(rng);
    int delay_ms = std::uniform_int_distribution<int>(20, 400)(rng);
    Child child = spawn_ingest(db, batch);

    std::atomic<bool> stop{false};
    std::thread writer([&] {
      for (std::uint64_t i = 0; !stop; ++i) {
        std::string line = test::interaction_doc(test::uuid_for(i, static_cast<std::uint64_t>(trial + 1)),
                                                 "Refactor the retry loop of the HTTP client, step " + std::to_string(i))
                               .dump() +
                           "\n";
        if (::write(child.in_fd, line.data(), line.size()) < 0) break;  // EPIPE once the child is gone
      }
    });

    std::int64_t acknowledged = 0;
    std::string pending;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms);
    int flags = ::fcntl(child.out_fd, F_GETFL);
    ::fcntl(child.out_fd, F_SETFL, flags | O_NONBLOCK);
    while (std::chrono::steady_clock::now() < deadline) {
      char buf[4096];
      ssize_t n = ::read(child.out_fd, buf, sizeof buf);
      if (n > 0) {
        pending.append(buf, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = pending.find('\n')) != std::string::npos) {
          auto ack = nlohmann::json::parse(pending.substr(0, nl));
          acknowledged = ack.at("acknowledged").get<std::int64_t>();
          CHECK(ack.at("rejected").get<std::int64_t>() == 0);
          pending.erase(0, nl + 1);
        }
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    ::kill(child.pid, SIGKILL);
    stop = true;
    int status = 0;
    ::waitpid(child.pid, &status, 0);
    ::close(child.in_fd);
    writer.join();
    ::close(child.out_fd);
    REQUIRE(WIFSIGNALED(status));  // it really was killed mid-stream, not finished
    CHECK(WTERMSIG(status) == SIGKILL);

    // Every acknowledged event of this trial is in the file: acknowledgements count a prefix of the input.
    store::Store st(db);
    INFO("trial " << trial << " batch " << batch << " delay " << delay_ms << "ms acknowledged " << acknowledged);
    std::int64_t present = st.db().query_int(
        "SELECT count(*) FROM interactions WHERE interaction_id LIKE '" +
        test::uuid_for(0, static_cast<std::uint64_t>(trial + 1)).substr(0, 8) + "%'");
    CHECK(present >= acknowledged);
    if (acknowledged > 0) {
      std::string last = test::uuid_for(static_cast<std::uint64_t>(acknowledged - 1), static_cast<std::uint64_t>(trial + 1));
      CHECK(st.interaction_exists(last));
      CHECK(st.interaction_exists(test::uuid_for(0, static_cast<std::uint64_t>(trial + 1))));
      ++trials_with_progress;
    }
    total_acknowledged += acknowledged;
  }
  store::Store st(db);
  CHECK(st.integrity_check() == "ok");
  std::cout << "durability: " << kTrials << " SIGKILL trials, " << total_acknowledged
            << " acknowledged events, all present; integrity_check ok\n";
  CHECK(trials_with_progress >= kTrials / 2);  // the test exercised real commits, not only empty runs
}
