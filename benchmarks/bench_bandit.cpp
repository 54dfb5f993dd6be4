// promptlearn_bench bandit: the supervised-to-bandit protocol of Bietti, Agarwal & Langford, "A Contextual
// Bandit Bake-off" (JMLR 2021). A multiclass CSV becomes a bandit (actions = classes, reward 1 for the true
// class, else 0); rows are shuffled once with a fixed seed and streamed --passes times in that order (as a
// multi-pass run over a cache file does); each round the policy's distribution is sampled, the reward of
// the sampled action is revealed and learned from. Reported: progressive (online) average reward over all
// rounds. One JSON line per policy; `uniform` (random choice) is the baseline of every ratio.
//
//   promptlearn_bench bandit --csv FILE [--label label] [--passes 5] [--seed 1] [--seeds 1] [--policy NAME|all]
//                            [--params JSON]
//
// --params overrides the policy's parameters for sweeps (needs one --policy; never marked "default").
// --seeds N averages N runs with seeds S, S+1, ... (each its own shuffle and policy randomness).
// Every policy runs with the config defaults of its algorithm (StrategyConfig::for_algorithm); the engine default (linucb) is marked
// "default": true. No parameter is tuned per data set.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "promptlearn/config.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/select/factory.hpp"
#include "bench_util.hpp"

namespace {

using promptlearn::bench::arg;
using promptlearn::bench::parse_number;
using promptlearn::bench::split_csv_line;

struct Dataset {
  std::vector<Eigen::VectorXd> x;
  std::vector<int> label;  // 0 .. classes-1 (dense re-numbering of the CSV's labels, in sorted order)
  int classes = 0;
};

Dataset read_csv(const std::string& path, const std::string& label_column) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error(path + ": empty file (expected a header row)");
  const std::vector<std::string> header = split_csv_line(line);
  auto label_it = std::find(header.begin(), header.end(), label_column);
  if (label_it == header.end()) throw std::runtime_error(path + ": no column named \"" + label_column + "\"");
  const std::size_t label_col = static_cast<std::size_t>(label_it - header.begin());
  std::vector<std::vector<double>> rows;
  std::vector<long long> raw_labels;
  std::size_t row = 1;  // the header is row 1
  while (std::getline(in, line)) {
    ++row;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::vector<std::string> cells = split_csv_line(line);
    if (cells.size() != header.size())
      throw std::runtime_error(path + ": row " + std::to_string(row) + " has " + std::to_string(cells.size()) +
                               " cells, expected " + std::to_string(header.size()));
    std::vector<double> features;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      double v = parse_number(cells[c], path, row, header[c]);
      if (c == label_col) {
        if (v != static_cast<double>(static_cast<long long>(v)))
          throw std::runtime_error(path + ": row " + std::to_string(row) + ", column \"" + header[c] + "\": \"" +
                                   cells[c] + "\" is not an integer class");
        raw_labels.push_back(static_cast<long long>(v));
      } else {
        features.push_back(v);
      }
    }
    rows.push_back(std::move(features));
  }
  if (rows.empty()) throw std::runtime_error(path + ": no data rows");
  std::map<long long, int> ids;
  for (long long l : raw_labels) ids.emplace(l, 0);
  int next = 0;
  for (auto& [l, id] : ids) id = next++;
  Dataset d;
  d.classes = next;
  if (d.classes < 2) throw std::runtime_error(path + ": need at least 2 classes in \"" + label_column + "\"");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    d.x.push_back(Eigen::Map<const Eigen::VectorXd>(rows[i].data(), static_cast<Eigen::Index>(rows[i].size())));
    d.label.push_back(ids[raw_labels[i]]);
  }
  return d;
}

std::string action_key(int c) { return "class_" + std::to_string(c); }

/// Progressive average reward of one run.
double run(const Dataset& data, const std::string& policy_name, const nlohmann::json& params, int passes,
           std::uint64_t seed) {
  // Same shuffle for every policy under one seed.
  std::vector<std::size_t> order(data.x.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  promptlearn::Rng shuffle_rng(seed);
  std::shuffle(order.begin(), order.end(), shuffle_rng.engine());
  promptlearn::Rng rng(seed * 7919 + 17);
  const int dim = static_cast<int>(data.x[0].size());
  std::unique_ptr<promptlearn::select::Policy> policy;
  if (policy_name != "uniform") {
    // The configured defaults of the algorithm (exactly what the engine gets from a default Config),
    // overridden by --params.
    nlohmann::json p = promptlearn::StrategyConfig::for_algorithm(policy_name).parameters;
    p.update(params);
    policy = promptlearn::select::make_policy(policy_name, p, dim, seed);
    for (int c = 0; c < data.classes; ++c) policy->add_action(action_key(c));
  }
  double total = 0;
  std::size_t rounds = 0;
  for (int pass = 0; pass < passes; ++pass) {
    for (std::size_t i : order) {
      const Eigen::VectorXd& x = data.x[i];
      int chosen;
      double propensity;
      if (!policy) {
        chosen = static_cast<int>(rng.uniform_int(0, data.classes - 1));
        propensity = 1.0 / data.classes;
      } else {
        const promptlearn::select::Distribution d = policy->distribution(x, rng);
        double u = rng.uniform(), acc = 0;
        std::size_t k = 0;
        for (; k + 1 < d.size(); ++k) {
          acc += d[k].probability;
          if (u < acc) break;
        }
        chosen = std::stoi(d[k].action.substr(6));
        propensity = d[k].probability;
      }
      const double reward = chosen == data.label[i] ? 1.0 : 0.0;
      if (policy) policy->update(x, action_key(chosen), reward, propensity);
      total += reward;
      ++rounds;
    }
  }
  return total / static_cast<double>(rounds);
}

}  // namespace

int bench_bandit(int argc, char** argv) {
  const std::string csv = arg(argc, argv, "csv", "");
  if (csv.empty()) {
    std::cerr << "usage: promptlearn_bench bandit --csv FILE [--label label] [--passes 5] [--seed 1] [--seeds 1] "
                 "[--policy NAME|all]\n";
    return 2;
  }
  const std::string label = arg(argc, argv, "label", "label");
  const int passes = std::stoi(arg(argc, argv, "passes", "5"));
  const std::uint64_t seed = std::stoull(arg(argc, argv, "seed", "1"));
  const int seeds = std::stoi(arg(argc, argv, "seeds", "1"));
  const std::string which = arg(argc, argv, "policy", "all");
  // --params '{"alpha":0.5}' overrides parameters for a sweep (only with a single --policy); such a run is
  // never marked as the default.
  const nlohmann::json params = nlohmann::json::parse(arg(argc, argv, "params", "{}"));
  if (!params.empty() && which == "all") throw std::runtime_error("--params needs a single --policy");
  if (passes < 1 || seeds < 1) throw std::runtime_error("--passes and --seeds must be >= 1");
  const Dataset data = read_csv(csv, label);
  std::string dataset = csv.substr(csv.find_last_of('/') == std::string::npos ? 0 : csv.find_last_of('/') + 1);
  if (dataset.size() > 4 && dataset.substr(dataset.size() - 4) == ".csv") dataset.resize(dataset.size() - 4);

  std::vector<std::string> policies = {"linucb", "thompson", "epsilon_greedy", "softmax", "q_learning", "uniform"};
  if (which != "all") {
    if (std::find(policies.begin(), policies.end(), which) == policies.end())
      throw std::runtime_error("--policy: \"" + which + "\" is not one of linucb, thompson, epsilon_greedy, softmax, "
                               "q_learning, uniform, all");
    policies = {which};
  }
  auto mean_reward = [&](const std::string& name) {
    double sum = 0;
    for (int s = 0; s < seeds; ++s) sum += run(data, name, name == "uniform" ? nlohmann::json::object() : params, passes, seed + static_cast<std::uint64_t>(s));
    return sum / seeds;
  };
  const double uniform = mean_reward("uniform");
  for (const std::string& name : policies) {
    const double value = name == "uniform" ? uniform : mean_reward(name);
    nlohmann::json j = {{"bench", "bandit"},
                        {"dataset", dataset},
                        {"policy", name},
                        {"passes", passes},
                        {"seeds", seeds},
                        {"rounds", static_cast<std::int64_t>(data.x.size()) * passes},
                        {"metric", "progressive_reward"},
                        {"value", value},
                        {"unit", "reward"},
                        {"default", name == "linucb" && params.empty()},
                        {"baseline", uniform},
                        {"ratio", uniform != 0 ? value / uniform : 0.0}};
    std::cout << j.dump() << std::endl;
  }
  return 0;
}
