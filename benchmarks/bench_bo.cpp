// promptlearn_bench bo: Bayesian optimisation (issue 6) on test functions or on an external program.
//
//   promptlearn_bench bo --function NAME [--evals 50] [--init 10] [--seeds 20] [--acquisition ei|ucb]
//                        [--baseline FILE]
//   promptlearn_bench bo --cmd "PROGRAM" --dim D --bounds "lo:hi,lo:hi,..." [--evals 50] [--init 10]
//                        [--seeds 20] [--baseline FILE]
//
// NAME: branin, hartmann6 (the tuned-on pair), ackley2, ackley5, rosenbrock2, sixhump, levy4 (not tuned
// on); definitions and known minima equal those of benchmarks/optuna_bo.py. A comma-separated list runs
// each in turn. PROGRAM (run by /bin/sh -c, once per seed, kept running across that seed's evaluations)
// reads one JSON array of D numbers per line on stdin and answers one number per line on stdout, the
// value to minimise.
// Per seed s (0..seeds-1) BayesianOptimizer with initial_points = --init, n_iterations = evals - init,
// seed = s minimises the objective. Printed, one JSON object per line ({"bench": "bo", "impl":
// "promptlearn", "function", "metric", "value", "unit"}): median_best_value, q25_best_value,
// q75_best_value (over seeds, of the best value after the budget; quartiles by linear interpolation as
// numpy.percentile), for built-in functions the same of the regret (median_regret, q25_regret, q75_regret),
// and optimizer_seconds_per_run (wall time of the ask/tell loop minus the time inside the objective,
// averaged over seeds).
// --baseline FILE takes the JSON lines of benchmarks/optuna_bo.py or sklearn_gp_bo.py (a file may hold
// several; concatenate them); each metric a baseline reports for the same function is printed again with
// "baseline_impl", "baseline" and "ratio" (ours / theirs).
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "promptlearn/optimize/bayesian.hpp"
#include "bench_util.hpp"

namespace {

using promptlearn::bench::arg;
using Clock = std::chrono::steady_clock;
using Objective = std::function<double(const std::vector<double>&)>;
constexpr double kPi = 3.14159265358979323846;

double branin(const std::vector<double>& x) {
  const double b = 5.1 / (4 * kPi * kPi), c = 5 / kPi, t = 1 / (8 * kPi);
  const double u = x[1] - b * x[0] * x[0] + c * x[0] - 6;
  return u * u + 10 * (1 - t) * std::cos(x[0]) + 10;
}

double hartmann6(const std::vector<double>& x) {
  static constexpr double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14},
                                     {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}};
  static constexpr double P[4][6] = {{1312, 1696, 5569, 124, 8283, 5886}, {2329, 4135, 8307, 3736, 1004, 9991},
                                     {2348, 1451, 3522, 2883, 3047, 6650}, {4047, 8828, 8732, 5743, 1091, 381}};
  static constexpr double alpha[4] = {1.0, 1.2, 3.0, 3.2};
  double s = 0;
  for (int i = 0; i < 4; ++i) {
    double e = 0;
    for (int j = 0; j < 6; ++j) e += A[i][j] * (x[j] - 1e-4 * P[i][j]) * (x[j] - 1e-4 * P[i][j]);
    s += alpha[i] * std::exp(-e);
  }
  return -s;
}

double ackley(const std::vector<double>& x) {
  const double d = static_cast<double>(x.size());
  double sq = 0, cs = 0;
  for (double v : x) sq += v * v, cs += std::cos(2 * kPi * v);
  return -20 * std::exp(-0.2 * std::sqrt(sq / d)) - std::exp(cs / d) + 20 + std::exp(1.0);
}

double rosenbrock(const std::vector<double>& x) {
  double s = 0;
  for (std::size_t i = 0; i + 1 < x.size(); ++i)
    s += 100 * (x[i + 1] - x[i] * x[i]) * (x[i + 1] - x[i] * x[i]) + (1 - x[i]) * (1 - x[i]);
  return s;
}

double sixhump(const std::vector<double>& x) {
  const double a = x[0], b = x[1];
  return (4 - 2.1 * a * a + a * a * a * a / 3) * a * a + a * b + (-4 + 4 * b * b) * b * b;
}

double levy(const std::vector<double>& x) {
  std::vector<double> w;
  for (double v : x) w.push_back(1 + (v - 1) / 4);
  double s = std::pow(std::sin(kPi * w[0]), 2);
  for (std::size_t i = 0; i + 1 < w.size(); ++i)
    s += (w[i] - 1) * (w[i] - 1) * (1 + 10 * std::pow(std::sin(kPi * w[i] + 1), 2));
  s += (w.back() - 1) * (w.back() - 1) * (1 + std::pow(std::sin(2 * kPi * w.back()), 2));
  return s;
}

struct TestFunction {
  Objective f;
  std::vector<std::pair<double, double>> bounds;
  double minimum;
};

std::map<std::string, TestFunction> test_functions() {
  using B = std::vector<std::pair<double, double>>;
  return {{"branin", {branin, B{{-5, 10}, {0, 15}}, 0.39788735772973816}},
          {"hartmann6", {hartmann6, B(6, {0, 1}), -3.3223680114155147}},
          {"ackley2", {ackley, B(2, {-32.768, 32.768}), 0.0}},
          {"ackley5", {ackley, B(5, {-32.768, 32.768}), 0.0}},
          {"rosenbrock2", {rosenbrock, B(2, {-5, 10}), 0.0}},
          {"sixhump", {sixhump, B{{-3, 3}, {-2, 2}}, -1.031628453489877}},
          {"levy4", {levy, B(4, {-10, 10}), 0.0}}};
}

/// An external objective: PROGRAM runs under /bin/sh -c with two pipes; one JSON array per line in,
/// one number per line out. Closing stdin on destruction ends it; the destructor waits for it.
class ExternalObjective {
 public:
  explicit ExternalObjective(const std::string& cmd) {
    int in_pipe[2], out_pipe[2];  // in: we write -> child's stdin; out: child's stdout -> we read
    if (pipe(in_pipe) != 0 || pipe(out_pipe) != 0) throw std::runtime_error("bo --cmd: pipe() failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("bo --cmd: fork() failed");
    if (pid_ == 0) {
      dup2(in_pipe[0], 0);
      dup2(out_pipe[1], 1);
      close(in_pipe[0]), close(in_pipe[1]), close(out_pipe[0]), close(out_pipe[1]);
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    to_ = fdopen(in_pipe[1], "w");
    from_ = fdopen(out_pipe[0], "r");
    if (!to_ || !from_) throw std::runtime_error("bo --cmd: fdopen() failed");
  }
  ExternalObjective(const ExternalObjective&) = delete;
  ExternalObjective& operator=(const ExternalObjective&) = delete;
  ~ExternalObjective() {
    if (to_) fclose(to_);
    if (from_) fclose(from_);
    int status = 0;
    if (pid_ > 0) waitpid(pid_, &status, 0);
  }
  double operator()(const std::vector<double>& x) {
    const std::string line = nlohmann::json(x).dump() + "\n";
    if (std::fputs(line.c_str(), to_) < 0 || std::fflush(to_) != 0)
      throw std::runtime_error("bo --cmd: cannot write to the program (did it exit?)");
    std::string answer;
    for (int c = std::fgetc(from_); c != EOF && c != '\n'; c = std::fgetc(from_)) answer += static_cast<char>(c);
    if (answer.empty()) throw std::runtime_error("bo --cmd: the program gave no answer for " + line);
    std::size_t used = 0;
    const double v = std::stod(answer, &used);
    if (!std::isfinite(v)) throw std::runtime_error("bo --cmd: non-finite answer \"" + answer + "\"");
    return v;
  }

 private:
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
};

/// Linear-interpolation quantile (numpy.percentile's default).
double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

struct Baseline {
  std::string impl, function, metric;
  double value;
};

std::vector<Baseline> read_baselines(const std::string& path) {
  std::vector<Baseline> out;
  for (const nlohmann::json& j : promptlearn::bench::read_metric_lines(path))
    if (j.value("bench", "") == "bo")
      out.push_back({j.value("impl", "?"), j.value("function", ""), j["metric"].get<std::string>(), j["value"].get<double>()});
  return out;
}

std::vector<std::pair<double, double>> parse_bounds(const std::string& text, long long dim) {
  std::vector<std::pair<double, double>> b;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto colon = item.find(':');
    if (colon == std::string::npos) throw std::runtime_error("--bounds: \"" + item + "\" is not lo:hi");
    b.emplace_back(std::stod(item.substr(0, colon)), std::stod(item.substr(colon + 1)));
  }
  if (static_cast<long long>(b.size()) != dim)
    throw std::runtime_error("--bounds: " + std::to_string(b.size()) + " ranges for --dim " + std::to_string(dim));
  return b;
}

}  // namespace

int bench_bo(int argc, char** argv) {
  const std::string functions = arg(argc, argv, "function", ""), cmd = arg(argc, argv, "cmd", "");
  if (functions.empty() == cmd.empty()) {
    std::cerr << "usage: promptlearn_bench bo --function branin|hartmann6|ackley2|ackley5|rosenbrock2|sixhump|levy4"
                 "[,...] [--evals 50] [--init 10] [--seeds 20] [--acquisition ei|ucb] [--baseline FILE]\n"
                 "       promptlearn_bench bo --cmd PROGRAM --dim D --bounds lo:hi,... [--evals 50] [--init 10] "
                 "[--seeds 20] [--baseline FILE]\n";
    return 2;
  }
  const int evals = static_cast<int>(promptlearn::bench::arg_int(argc, argv, "evals", 50));
  const int init = static_cast<int>(promptlearn::bench::arg_int(argc, argv, "init", 10));
  const int seeds = static_cast<int>(promptlearn::bench::arg_int(argc, argv, "seeds", 20));
  const std::string acq_arg = arg(argc, argv, "acquisition", "ei");
  if (acq_arg != "ei" && acq_arg != "ucb") throw std::runtime_error("bo --acquisition: \"" + acq_arg + "\" is not ei or ucb");
  const std::string acquisition = acq_arg == "ucb" ? "upper_confidence_bound" : "expected_improvement";
  if (evals < init || init < 1 || seeds < 1) throw std::runtime_error("bo: need evals >= init >= 1 and seeds >= 1");
  const std::vector<Baseline> baselines = read_baselines(arg(argc, argv, "baseline", ""));
  const auto table = test_functions();

  std::vector<std::string> names;
  if (!cmd.empty()) {
    signal(SIGPIPE, SIG_IGN);  // a program that exits early must give an error here, not kill the bench
    names.push_back("cmd");
  } else {
    std::stringstream ss(functions);
    std::string n;
    while (std::getline(ss, n, ','))
      if (!table.count(n)) throw std::runtime_error("bo --function: unknown \"" + n + "\"");
      else names.push_back(n);
  }

  for (const std::string& name : names) {
    std::vector<std::pair<double, double>> bounds;
    double f_min = 0;
    if (cmd.empty()) {
      bounds = table.at(name).bounds;
      f_min = table.at(name).minimum;
    } else {
      bounds = parse_bounds(arg(argc, argv, "bounds", ""), promptlearn::bench::arg_int(argc, argv, "dim", 0));
    }
    promptlearn::optimize::SearchSpace space;
    for (std::size_t i = 0; i < bounds.size(); ++i)
      space.parameters.push_back({"x" + std::to_string(i), promptlearn::optimize::Parameter::Kind::continuous,
                                  bounds[i].first, bounds[i].second, false, {}});

    std::vector<double> bests;
    double optimizer_seconds = 0;
    for (int seed = 0; seed < seeds; ++seed) {
      promptlearn::optimize::BayesianParams params;
      params.initial_points = init;
      params.n_iterations = evals - init;
      params.seed = static_cast<std::uint64_t>(seed);
      params.acquisition = acquisition;
      std::unique_ptr<ExternalObjective> external;
      if (!cmd.empty()) external = std::make_unique<ExternalObjective>(cmd);
      Objective f = cmd.empty() ? table.at(name).f : Objective([&](const std::vector<double>& x) { return (*external)(x); });
      double in_objective = 0;
      promptlearn::optimize::BayesianOptimizer bo(space, params);
      const auto t0 = Clock::now();
      bo.optimize([&](const nlohmann::json& p) {
        std::vector<double> x(bounds.size());
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = p.at("x" + std::to_string(i)).get<double>();
        const auto t1 = Clock::now();
        const double v = f(x);
        in_objective += std::chrono::duration<double>(Clock::now() - t1).count();
        return v;
      });
      optimizer_seconds += std::chrono::duration<double>(Clock::now() - t0).count() - in_objective;
      bests.push_back(bo.best()->second);
    }

    const nlohmann::json common = {{"bench", "bo"},     {"impl", "promptlearn"}, {"function", name},
                                   {"evals", evals},    {"init", init},          {"seeds", seeds},
                                   {"acquisition", acquisition}};
    auto emit = [&](const std::string& metric, double value, const std::string& unit) {
      nlohmann::json j = common;
      j["metric"] = metric;
      j["value"] = value;
      j["unit"] = unit;
      std::cout << j.dump() << std::endl;
      for (const Baseline& b : baselines)
        if (b.metric == metric && (b.function.empty() || b.function == name)) {
          nlohmann::json k = j;
          k["baseline_impl"] = b.impl;
          k["baseline"] = b.value;
          k["ratio"] = b.value != 0 ? value / b.value : 0.0;
          std::cout << k.dump() << std::endl;
        }
    };
    emit("median_best_value", quantile(bests, 0.5), "value");
    emit("q25_best_value", quantile(bests, 0.25), "value");
    emit("q75_best_value", quantile(bests, 0.75), "value");
    if (cmd.empty()) {
      std::vector<double> regrets;
      for (double b : bests) regrets.push_back(b - f_min);
      emit("median_regret", quantile(regrets, 0.5), "value");
      emit("q25_regret", quantile(regrets, 0.25), "value");
      emit("q75_regret", quantile(regrets, 0.75), "value");
    }
    emit("optimizer_seconds_per_run", optimizer_seconds / seeds, "s");
  }
  return 0;
}
