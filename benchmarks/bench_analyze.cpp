// promptlearn_bench analyze: LearningEngine::analyze over a file of --rows stored interactions (each with
// its performance report and outcome): wall time and peak memory, against a baseline in the same run --
// the time to read the same rows with one plain SQL scan (what any analysis must at least pay).
//
//   promptlearn_bench analyze [--rows 1000000] [--db FILE] [--days 30]
//
// With --db the file is kept, and reused by later runs when it already holds the rows (generating a million
// interactions through the engine takes a few minutes). The rows are generated in a child process, so the
// peak memory reported (VmHWM) is the analysis process's own.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../src/cli/simulator.hpp"
#include "bench_util.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/patterns/analysis.hpp"
#include "promptlearn/store/store.hpp"

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr promptlearn::TimeMs kStart = 1767571200000LL;  // 2026-01-05T00:00:00Z



/// Peak resident set size of this process in MB (Linux /proc/self/status VmHWM), or -1.
double peak_rss_mb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return -1;
}

/// Fills `path` with `rows` interactions spread evenly over `days` days, each with performance and outcome.
void generate(const std::string& path, long long rows, int days) {
  promptlearn::Config cfg = promptlearn::Config::defaults();
  cfg.learning.data_collection.mode = promptlearn::CollectionMode::buffered;
  cfg.learning.data_collection.synchronous_commit = promptlearn::SynchronousCommit::normal;
  cfg.learning.data_collection.batch_size = 5000;
  cfg.learning.data_collection.buffer_capacity = 20000;
  promptlearn::LearningEngine engine(path, cfg);
  promptlearn::sim::HostSimulator host(11, 400);
  const double step = static_cast<double>(days) * 86400000.0 / static_cast<double>(rows);
  for (long long i = 0; i < rows; ++i) {
    const auto t = kStart + static_cast<promptlearn::TimeMs>(static_cast<double>(i) * step);
    auto s = host.next(t);
    engine.record(s.interaction);
    engine.record(s.performance);
    engine.record(s.outcome);
    if (i % 100000 == 0 && i > 0) std::cerr << "  generated " << i << " interactions\n";
  }
  engine.close();
}

}  // namespace

int bench_analyze(int argc, char** argv) {
  namespace fs = std::filesystem;
  const long long rows = promptlearn::bench::arg_int(argc, argv, "rows", 1000000);
  const int days = static_cast<int>(promptlearn::bench::arg_int(argc, argv, "days", 30));
  const int threads = static_cast<int>(promptlearn::bench::arg_int(argc, argv, "threads", 0));
  std::string path = promptlearn::bench::arg(argc, argv, "db", "");
  const bool keep = !path.empty();
  if (!keep) path = (fs::temp_directory_path() / fmt::format("promptlearn_bench_analyze_{}.db", ::getpid())).string();

  bool have = false;
  if (fs::exists(path)) {
    promptlearn::store::Store st(path);
    have = st.db().query_int("SELECT count(*) FROM interactions") >= rows;
  }
  double generate_s = 0;
  if (!have) {
    auto t0 = SteadyClock::now();
    const pid_t child = ::fork();
    if (child < 0) throw std::runtime_error("fork failed");
    if (child == 0) {
      try {
        generate(path, rows, days);
      } catch (const std::exception& e) {
        std::cerr << "generate: " << e.what() << "\n";
        std::_Exit(1);
      }
      std::_Exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("generating the rows failed");
    generate_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  }

  // Baseline: plain scans of the columns the analysis reads from the three tables, with the same
  // memory-mapped reads (no parsing beyond SQLite's own): what any analysis of these rows must pay.
  double scan_s = 0;
  {
    promptlearn::store::Store st(path);
    st.db().exec("PRAGMA mmap_size = 2147418112");
    auto t0 = SteadyClock::now();
    std::size_t n = 0, bytes = 0;
    for (const char* sql :
         {"SELECT interaction_id, timestamp, user_id, session_id, selected_template, domain, detected_keywords "
          "FROM interactions",
          "SELECT interaction_id, response_quality_score, acceptance_rate FROM outcomes",
          "SELECT interaction_id, total_processing_time_ms, validation_time_ms FROM performance"}) {
      promptlearn::store::Statement q(st.db(), sql);
      while (q.step()) {
        ++n;
        bytes += q.column_view(0).size();
      }
    }
    scan_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    if (n == 0 && bytes == 1) std::cerr << "";
  }

  promptlearn::ManualClock clock(kStart + static_cast<promptlearn::TimeMs>(days) * 86400000LL);
  promptlearn::EngineOptions eo;
  eo.clock = &clock;
  promptlearn::LearningEngine engine(path, promptlearn::Config::defaults(), eo);
  promptlearn::AnalysisOptions ao;
  ao.days = days;
  ao.threads = threads;
  auto t0 = SteadyClock::now();
  const promptlearn::patterns::AnalysisReport report = engine.analyze(ao);
  const double analyze_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  engine.close();

  nlohmann::json j = {{"bench", "analyze"},
                      {"rows", report.events},
                      {"metric", "analyze_seconds"},
                      {"value", analyze_s},
                      {"unit", "s"},
                      {"baseline_sql_scan_seconds", scan_s},
                      {"ratio_to_scan", analyze_s / scan_s},
                      {"threads", threads},
                      {"peak_rss_mb", peak_rss_mb()},
                      {"insights", report.insights.size()},
                      {"clusters", report.clusters.clusters.size()},
                      {"anomalies", report.anomalies_total},
                      {"generate_seconds", generate_s}};
  std::cout << j.dump() << std::endl;
  if (!keep)
    for (const char* s : {"", "-wal", "-shm"}) fs::remove(path + s);
  return 0;
}
