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
  for (const char* s : {"", "-wal", "-shm", ".key"}) fs::remove(p + s);
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

// One stored value of any SQLite type.
struct Value {
  int type;  // 1 integer, 2 real, 3 text, 4 blob, 5 null
  std::int64_t i = 0;
  double d = 0;
  std::string s;
};

// The rows exactly as the engine stored them (all columns of `interactions`, in insertion order).
std::vector<std::vector<Value>> stored_rows(const std::string& path) {
  promptlearn::store::Database db(path);
  promptlearn::store::Statement q(db, "SELECT * FROM interactions ORDER BY received_at, interaction_id");
  std::vector<std::vector<Value>> rows;
  while (q.step()) {
    std::vector<Value> row(static_cast<std::size_t>(q.column_count()));
    for (int c = 0; c < q.column_count(); ++c) {
      Value& v = row[static_cast<std::size_t>(c)];
      v.type = q.column_type(c);
      if (v.type == 1) v.i = q.column_int64(c);
      if (v.type == 2) v.d = q.column_double(c);
      if (v.type == 3) v.s = q.column_text(c);
      if (v.type == 4) v.s = q.column_blob(c);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

// Baseline: the same rows (identical column values) inserted with one prepared statement, in the
// same batch size, into a fresh file with the same schema, indexes and synchronous=FULL.
double baseline_rows_per_s(const std::vector<std::vector<Value>>& rows, std::size_t batch) {
  std::string path = temp_db("baseline");
  double rate;
  {
    promptlearn::store::Store store(path);
    std::string sql = "INSERT INTO interactions VALUES (";
    for (std::size_t c = 0; c < rows.at(0).size(); ++c) sql += c ? ",?" : "?";
    sql += ")";
    promptlearn::store::Statement insert(store.db(), sql);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < rows.size(); i += batch) {
      promptlearn::store::Transaction tx(store.db());
      for (std::size_t j = i; j < std::min(rows.size(), i + batch); ++j) {
        for (std::size_t c = 0; c < rows[j].size(); ++c) {
          const Value& v = rows[j][c];
          int idx = static_cast<int>(c + 1);
          if (v.type == 1) insert.bind(idx, v.i);
          else if (v.type == 2) insert.bind(idx, v.d);
          else if (v.type == 3) insert.bind(idx, std::string_view(v.s));
          else if (v.type == 4) insert.bind_blob(idx, v.s);
          else insert.bind_null(idx);
        }
        insert.run();
      }
      tx.commit();
    }
    rate = static_cast<double>(rows.size()) / seconds_since(t0);
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
  double base_rate = baseline_rows_per_s(stored_rows(path), batch);
  remove_db(path);
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

int bench_bandit(int argc, char** argv);  // benchmarks/bench_bandit.cpp
int bench_select(int argc, char** argv);  // benchmarks/bench_select.cpp
int bench_anomaly(int argc, char** argv);  // benchmarks/bench_anomaly.cpp
int bench_cluster(int argc, char** argv);  // benchmarks/bench_cluster.cpp
int bench_analyze(int argc, char** argv);  // benchmarks/bench_analyze.cpp
int bench_gbm(int argc, char** argv);      // benchmarks/bench_gbm.cpp
int bench_forest(int argc, char** argv);   // benchmarks/bench_forest.cpp
int bench_bo(int argc, char** argv);       // benchmarks/bench_bo.cpp
int bench_monitor(int argc, char** argv);  // benchmarks/bench_monitor.cpp
int bench_scrub(int argc, char** argv);    // benchmarks/bench_scrub.cpp
int bench_merge(int argc, char** argv);    // benchmarks/bench_merge.cpp

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help") {
    std::cout << "usage: promptlearn_bench ingest [--rows 200000] [--batch 100] [--latency-rows 2000]\n"
                 "       promptlearn_bench bandit --csv FILE [--label label] [--passes 5] [--seed S] [--seeds N]\n"
                 "                                [--policy NAME|all]\n"
                 "       promptlearn_bench select [--templates 32] [--dim 64] [--decisions 20000]\n"
                 "       promptlearn_bench anomaly --csv FILE --value COL [--label COL] [--timestamp COL]\n"
                 "                                 [--scores-out FILE]\n"
                 "       promptlearn_bench cluster [--n 50000] [--dim 64] [--clusters 20] [--seed 1] [--noise 0.1]\n"
                 "                                 [--spread 0.07] [--naive-n 4000]\n"
                 "       promptlearn_bench analyze [--rows 1000000] [--days 30] [--db FILE]\n"
                 "       promptlearn_bench gbm --train FILE --test FILE --target NAME [--trees 200] [--depth 6] [--lr 0.1]\n"
                 "       promptlearn_bench forest --csv FILE --label NAME [--folds 5]\n"
                 "       promptlearn_bench bo --function branin|hartmann6 | --cmd PROGRAM --dim D --bounds lo:hi,...\n"
                 "                            [--evals 50] [--init 10] [--seeds 20]\n"
                 "       promptlearn_bench monitor [--values 1000000] [--seed 1]\n"
                 "       promptlearn_bench scrub --file FILE [--repeat 1]\n"
                 "       promptlearn_bench merge [--shards 4] [--rows 50000] [--duplicates 0.1] [--seed 1] [--days 7]\n"
                 "                               [--users 48]\n";
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "ingest") return bench_ingest(argc, argv);
    if (cmd == "bandit") return bench_bandit(argc, argv);
    if (cmd == "select") return bench_select(argc, argv);
    if (cmd == "anomaly") return bench_anomaly(argc, argv);
    if (cmd == "cluster") return bench_cluster(argc, argv);
    if (cmd == "analyze") return bench_analyze(argc, argv);
    if (cmd == "gbm") return bench_gbm(argc, argv);
    if (cmd == "forest") return bench_forest(argc, argv);
    if (cmd == "bo") return bench_bo(argc, argv);
    if (cmd == "monitor") return bench_monitor(argc, argv);
    if (cmd == "scrub") return bench_scrub(argc, argv);
    if (cmd == "merge") return bench_merge(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "promptlearn_bench " << cmd << ": " << e.what() << "\n";
    return 1;
  }
  std::cerr << "promptlearn_bench: unknown benchmark '" << cmd << "'\n";
  return 2;
}
