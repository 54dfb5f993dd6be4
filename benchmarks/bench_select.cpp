// promptlearn_bench select: decision latency of the policy and of the whole engine path, and the
// cold start of a hook process (open file, load policy, select, log, close).
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <unistd.h>

#include "../src/cli/simulator.hpp"
#include "bench_util.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/lifecycle/policy_manager.hpp"
#include "promptlearn/select/factory.hpp"
#include "promptlearn/store/store.hpp"

namespace {

using SteadyClock = std::chrono::steady_clock;

double micros_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double, std::micro>(SteadyClock::now() - t0).count();
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

void emit(const std::string& metric, double value, const std::string& unit, nlohmann::json extra = {}) {
  nlohmann::json j = {{"bench", "select"}, {"metric", metric}, {"value", value}, {"unit", unit}};
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = *it;
  std::cout << j.dump() << std::endl;
}


}  // namespace

int bench_select(int argc, char** argv) {
  const int templates = static_cast<int>(promptlearn::bench::arg_int(argc, argv, "templates", 32));
  const int dim = static_cast<int>(promptlearn::bench::arg_int(argc, argv, "dim", 64));
  const int decisions = static_cast<int>(promptlearn::bench::arg_int(argc, argv, "decisions", 20000));
  const promptlearn::Config config = promptlearn::Config::defaults();
  const auto& ts = config.learning_strategies.template_selection;

  // 1. The policy alone (the default, trained on 2,000 updates): distribution + sampling.
  auto policy = promptlearn::select::make_policy(ts.algorithm, ts.parameters, dim);
  for (int a = 0; a < templates; ++a) policy->add_action(fmt::format("t{}@1", a));
  promptlearn::Rng rng(1);
  auto random_x = [&] {
    Eigen::VectorXd x(dim);
    for (int i = 0; i < dim; ++i) x(i) = rng.normal();
    return x;
  };
  for (int i = 0; i < 2000; ++i) policy->update(random_x(), fmt::format("t{}@1", i % templates), rng.uniform(), 0.5);
  std::vector<Eigen::VectorXd> xs;
  for (int i = 0; i < 512; ++i) xs.push_back(random_x());
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(decisions));
  double sink = 0;
  auto t_all = SteadyClock::now();
  for (int i = 0; i < decisions; ++i) {
    auto t0 = SteadyClock::now();
    auto dist = policy->distribution(xs[static_cast<std::size_t>(i) % xs.size()], rng);
    double u = rng.uniform(), acc = 0;
    for (const auto& ap : dist) {
      acc += ap.probability;
      if (u < acc) {
        sink += ap.score;
        break;
      }
    }
    us.push_back(micros_since(t0));
  }
  const double total_s = micros_since(t_all) / 1e6;
  nlohmann::json shape = {{"templates", templates}, {"dim", dim}, {"policy", policy->name()}};
  emit("decision_p50_us", quantile(us, 0.5), "us", shape);
  emit("decision_p99_us", quantile(us, 0.99), "us", shape);
  emit("decisions_per_s", decisions / total_s, "decisions/s", shape);

  // 2. The whole engine path in a warm process: features, user lookup, policy, decision logged (buffered).
  namespace fs = std::filesystem;
  const std::string path = (fs::temp_directory_path() / fmt::format("promptlearn_bench_select_{}.db", ::getpid())).string();
  for (const char* s : {"", "-wal", "-shm", ".key"}) fs::remove(path + s);
  promptlearn::sim::HostSimulator host(3);
  int context_dim = 0;
  {
    promptlearn::Config buffered = config;
    buffered.learning.data_collection.mode = promptlearn::CollectionMode::buffered;
    promptlearn::LearningEngine engine(path, buffered);
    for (int a = 0; a < templates; ++a) engine.register_template(fmt::format("t{}", a), "1", "body");
    std::vector<nlohmann::json> prompts;
    for (int i = 0; i < 2000; ++i) prompts.push_back(host.prompt(1767571200000LL + i).interaction);
    std::vector<promptlearn::Event> events;
    for (const auto& p : prompts) events.push_back(promptlearn::parse_event(p));
    std::vector<double> eus;
    for (const auto& e : events) {
      auto t0 = SteadyClock::now();
      sink += engine.select_template(e).propensity;
      eus.push_back(micros_since(t0));
    }
    engine.close();
    context_dim = engine.policy().context_builder().dimension();
    nlohmann::json eshape = {{"templates", templates}, {"dim", context_dim}, {"path", "engine, buffered log"}};
    emit("engine_decision_p50_us", quantile(eus, 0.5), "us", eshape);
    emit("engine_decision_p99_us", quantile(eus, 0.99), "us", eshape);
  }
  // 3. Cold start of a hook process: open the file, load the policy, select, log (synchronous), close.
  // The live policy is a trained checkpoint of the engine's own shape (every template with data), as a
  // deployment writes it, so the load is measured at full size.
  std::size_t checkpoint_bytes = 0;
  {
    auto trained = promptlearn::select::make_policy(ts.algorithm, ts.parameters, context_dim);
    for (int a = 0; a < templates; ++a) trained->add_action(fmt::format("t{}@1", a));
    for (int i = 0; i < 2000; ++i) {
      Eigen::VectorXd x(context_dim);
      for (int k = 0; k < context_dim; ++k) x(k) = rng.normal();
      trained->update(x, fmt::format("t{}@1", i % templates), rng.uniform(), 0.5);
    }
    promptlearn::store::Store st(path);
    promptlearn::store::ModelRow row;
    row.name = promptlearn::PolicyManager::kModelName;
    row.version = st.max_model_version(row.name) + 1;
    row.state = promptlearn::select::encode_checkpoint(*trained);
    row.status = "active";
    row.created_at = 1767571200000LL;
    checkpoint_bytes = row.state.size();
    promptlearn::store::Transaction tx(st.db());
    st.put_model(row);
    tx.commit();
  }
  std::vector<double> cold;
  for (int i = 0; i < 30; ++i) {
    auto e = promptlearn::parse_event(host.prompt(1767571200000LL + i).interaction);
    auto t0 = SteadyClock::now();
    {
      promptlearn::LearningEngine engine(path, config);
      sink += engine.select_template(e).propensity;
      engine.close();
    }
    cold.push_back(micros_since(t0) / 1000.0);
  }
  emit("cold_start_median_ms", quantile(cold, 0.5), "ms",
       {{"templates", templates}, {"dim", context_dim}, {"checkpoint_bytes", checkpoint_bytes}, {"synchronous_commit", "full"}});
  if (std::getenv("PROMPTLEARN_BENCH_KEEP") == nullptr)
    for (const char* s : {"", "-wal", "-shm", ".key"}) fs::remove(path + s);
  else
    std::cerr << "kept " << path << "\n";
  if (sink == -1) std::cerr << "";  // keeps the work observable
  return 0;
}
