// promptlearn_bench: benchmarks printing one JSON object per line
// {"bench", "metric", "value", "unit"[, "baseline", "ratio"]}.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <unistd.h>

#include "../src/cli/simulator.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/core/records.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/store/store.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void emit(const std::string& bench, const std::string& metric, double value, const std::string& unit,
          std::optional<double> baseline = std::nullopt) {
  nlohmann::json j = {{"bench", bench}, {"metric", metric}, {"value", value}, {"unit", unit}};
  if (baseline) {
    j["baseline"] = *baseline;
    j["ratio"] = *baseline != 0 ? value / *baseline : 0.0;
  }
  std::cout << j.dump() << std::endl;
}

long long arg_int(int argc, char** argv, const std::string& key, long long fallback) {
  for (int i = 2; i + 1 < argc; ++i)
    if (argv[i] == "--" + key) return std::stoll(argv[i + 1]);
  return fallback;
}

std::string temp_db(const std::string& name) {
  fs::path p = fs::temp_directory_path() / fmt::format("promptlearn_bench_{}_{}.db", name, ::getpid());
  for (const char* s : {"", "-wal", "-shm"}) fs::remove(p.string() + s);
  return p.string();
}

void remove_db(const std::string& p) {
  for (const char* s : {"", "-wal", "-shm"}) fs::remove(p + s);
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

std::vector<std::string> make_rows(std::size_t n, std::uint64_t seed) {
  promptlearn::sim::HostSimulator host(seed);
  std::vector<std::string> rows;
  rows.reserve(n);
  promptlearn::TimeMs t = *promptlearn::try_parse_rfc3339("2026-01-05T00:00:00Z");
  for (std::size_t i = 0; i < n; ++i) rows.push_back(host.next(t + static_cast<promptlearn::TimeMs>(i) * 1000).interaction.dump());
  return rows;
}

// Baseline: the same rows, parsed beforehand, inserted with one prepared statement in batches.
double baseline_rows_per_s(const std::vector<std::string>& rows, std::size_t batch) {
  std::vector<promptlearn::Event> events;
  events.reserve(rows.size());
  for (const auto& r : rows) events.push_back(promptlearn::parse_event_text(r));
  std::string path = temp_db("baseline");
  double rate;
  {
    promptlearn::store::Store store(path);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < events.size(); i += batch) {
      promptlearn::store::Transaction tx(store.db());
      for (std::size_t j = i; j < std::min(events.size(), i + batch); ++j)
        store.insert_interaction(events[j], *events[j].timestamp, "{}", *events[j].timestamp);
      tx.commit();
    }
    rate = static_cast<double>(events.size()) / seconds_since(t0);
  }
  remove_db(path);
  return rate;
}

int bench_ingest(int argc, char** argv) {
  std::size_t rows_n = static_cast<std::size_t>(arg_int(argc, argv, "rows", 200000));
  std::size_t batch = static_cast<std::size_t>(arg_int(argc, argv, "batch", 100));
  std::size_t latency_n = static_cast<std::size_t>(arg_int(argc, argv, "latency-rows", 2000));
  std::vector<std::string> rows = make_rows(rows_n, 7);

  // Durable engine ingest: record_batch commits each batch (synchronous=FULL) before returning.
  std::string path = temp_db("engine");
  double engine_rate;
  {
    promptlearn::LearningEngine engine(path, promptlearn::Config::defaults());
    auto t0 = Clock::now();
    std::vector<std::string> chunk;
    for (std::size_t i = 0; i < rows.size(); i += batch) {
      chunk.assign(rows.begin() + static_cast<std::ptrdiff_t>(i),
                   rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), i + batch)));
      engine.record_batch(chunk);
    }
    engine.close();
    engine_rate = static_cast<double>(rows.size()) / seconds_since(t0);
    if (engine.stats().tables.interactions != static_cast<std::int64_t>(rows.size())) {
      std::cerr << "bench ingest: row count mismatch\n";
      return 1;
    }
  }
  remove_db(path);
  double base_rate = baseline_rows_per_s(rows, batch);
  emit("ingest", "events_per_s", engine_rate, "events/s", base_rate);

  // record() latency, synchronous mode (every call commits) and buffered mode.
  for (const char* mode : {"synchronous", "buffered"}) {
    std::string p = temp_db(mode);
    std::vector<double> us;
    {
      promptlearn::Config cfg = promptlearn::Config::defaults();
      cfg.learning.data_collection.mode = *promptlearn::collection_mode_from_string(mode);
      promptlearn::LearningEngine engine(p, cfg);
      std::size_t n = std::string(mode) == "buffered" ? std::min(rows.size(), latency_n * 10) : std::min(rows.size(), latency_n);
      us.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        auto t0 = Clock::now();
        engine.record(std::string_view(rows[i]));
        us.push_back(seconds_since(t0) * 1e6);
      }
      engine.close();
    }
    remove_db(p);
    emit("ingest", fmt::format("record_{}_p50", mode), percentile(us, 0.50), "us");
    emit("ingest", fmt::format("record_{}_p99", mode), percentile(us, 0.99), "us");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help") {
    std::cout << "usage: promptlearn_bench ingest [--rows 200000] [--batch 100] [--latency-rows 2000]\n";
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "ingest") return bench_ingest(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "promptlearn_bench " << cmd << ": " << e.what() << "\n";
    return 1;
  }
  std::cerr << "promptlearn_bench: unknown benchmark '" << cmd << "'\n";
  return 2;
}
