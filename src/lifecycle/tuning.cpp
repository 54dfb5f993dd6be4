// Tuning studies in the file and the selector tuning job (lifecycle/tuning.hpp).
#include "promptlearn/lifecycle/tuning.hpp"

#include <fmt/format.h>

#include <cmath>

#include "promptlearn/collect/collector.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/lifecycle/policy_manager.hpp"
#include "promptlearn/optimize/bayesian.hpp"
#include "promptlearn/store/store.hpp"

namespace promptlearn {
namespace {

/// The optimiser's settings from learning_strategies.parameter_optimization.
optimize::BayesianParams bo_params(const Config& config, bool maximize) {
  optimize::BayesianParams p;
  const nlohmann::json& j = config.learning_strategies.parameter_optimization.parameters;
  p.initial_points = j.value("initial_points", p.initial_points);
  p.n_iterations = j.value("n_iterations", p.n_iterations);
  p.acquisition = j.value("acquisition_function", p.acquisition);
  p.seed = config.learning.model_training.random_seed;
  p.minimize = !maximize;
  return p;
}

optimize::BayesianOptimizer load_study(store::Store& st, const std::string& study) {
  auto state = st.study_state(study);
  if (!state) throw ValidationError("study", fmt::format("no study named '{}' (the first ask creates it, with --space)", study));
  const nlohmann::json j = nlohmann::json::parse(*state, nullptr, false);
  if (j.is_discarded()) throw StorageError(-1, fmt::format("studies row '{}' is not JSON", study));
  try {
    return optimize::BayesianOptimizer::from_json(j);
  } catch (const Error& e) {
    throw StorageError(-1, fmt::format("studies row '{}': {}", study, e.what()));
  }
}

/// The search space of the configured selection algorithm's exploration parameters.
/// Exploration never goes below 0.01: the replay objective values only the logged rewards, so it always
/// prefers less exploration, but the propensity floor is what keeps future off-policy estimates (the
/// gate's, this job's own) valid.
optimize::SearchSpace selector_space(const std::string& algorithm) {
  using K = optimize::Parameter::Kind;
  auto num = [](const char* name, double lo, double hi, bool log) {
    optimize::Parameter p;
    p.name = name;
    p.kind = K::continuous;
    p.low = lo;
    p.high = hi;
    p.log_scale = log;
    return p;
  };
  optimize::SearchSpace s;
  if (algorithm == "linucb") s.parameters = {num("alpha", 0.02, 3.0, true), num("epsilon_floor", 0.01, 0.2, false)};
  else if (algorithm == "thompson") s.parameters = {num("v", 0.01, 1.0, true), num("epsilon_floor", 0.01, 0.2, false)};
  else if (algorithm == "epsilon_greedy") s.parameters = {num("epsilon", 0.01, 0.5, false)};
  else if (algorithm == "softmax") s.parameters = {num("temperature", 0.005, 1.0, true)};
  else if (algorithm == "q_learning") s.parameters = {num("learning_rate", 0.01, 1.0, true), num("exploration_rate", 0.01, 0.5, false)};
  return s;
}

}  // namespace

nlohmann::json to_json(const TuningReport& r) {
  return {{"study", r.study},           {"evaluations", r.evaluations},   {"best_params", r.best_params},
          {"best_value", r.best_value}, {"best_ci_low", r.best_ci_low},   {"best_ci_high", r.best_ci_high},
          {"configured_value", r.configured_value}, {"skipped", r.skipped}};
}

Tuner::Tuner(Collector& collector, const PolicyManager& policy, const Config& config, const Clock& clock)
    : collector_(collector), policy_(policy), config_(config), clock_(clock) {}

nlohmann::json Tuner::ask(const std::string& study, const std::optional<nlohmann::json>& space, bool maximize) {
  if (study.empty()) throw ValidationError("study", "is empty");
  const TimeMs now = clock_.now_ms();
  return collector_.with_store([&](store::Store& st) {
    store::Transaction tx(st.db());
    std::optional<optimize::BayesianOptimizer> opt;
    if (st.study_state(study)) {
      opt.emplace(load_study(st, study));
    } else {
      if (!space) throw ValidationError("space", fmt::format("study '{}' does not exist; its first ask needs a search space", study));
      optimize::SearchSpace s;
      try {
        s = space->get<optimize::SearchSpace>();
      } catch (const nlohmann::json::exception& e) {
        throw ValidationError("space", e.what());
      }
      opt.emplace(s, bo_params(config_, maximize));
    }
    const nlohmann::json params = opt->ask();
    const std::int64_t trial = st.insert_trial(study, params.dump(), now);
    st.put_study(study, opt->to_json().dump(), now);
    tx.commit();
    return nlohmann::json{{"study", study}, {"trial", trial}, {"params", params}};
  });
}

void Tuner::tell(const std::string& study, const nlohmann::json& params, double value) {
  if (!std::isfinite(value)) throw ValidationError("value", fmt::format("{} is not a finite number", value));
  const TimeMs now = clock_.now_ms();
  collector_.with_store([&](store::Store& st) {
    store::Transaction tx(st.db());
    optimize::BayesianOptimizer opt = load_study(st, study);
    if (!st.tell_trial(study, params.dump(), value, now))
      throw ValidationError("params", fmt::format("{} was not asked in study '{}' (or was told already)", params.dump(), study));
    opt.tell(params, value);
    st.put_study(study, opt.to_json().dump(), now);
    tx.commit();
  });
}

nlohmann::json Tuner::status(const std::string& study) {
  return collector_.with_store([&](store::Store& st) {
    const optimize::BayesianOptimizer opt = load_study(st, study);
    nlohmann::json trials = nlohmann::json::array();
    for (const auto& t : st.trials(study)) {
      nlohmann::json row = {{"trial", t.trial}, {"params", nlohmann::json::parse(t.params)}, {"asked_at", format_rfc3339(t.asked_at)}};
      row["value"] = t.value ? nlohmann::json(*t.value) : nlohmann::json();
      if (t.told_at) row["told_at"] = format_rfc3339(*t.told_at);
      trials.push_back(std::move(row));
    }
    nlohmann::json out = {{"study", study}, {"evaluations", opt.evaluations()}, {"done", opt.done()}, {"trials", trials}};
    if (auto b = opt.best()) out["best"] = {{"params", b->first}, {"value", b->second}};
    return out;
  });
}

TuningReport Tuner::tune_selector(TimeMs now) {
  TuningReport r;
  const std::string algorithm = config_.learning_strategies.template_selection.algorithm;
  r.study = "selector." + algorithm;
  const optimize::SearchSpace space = selector_space(algorithm);
  if (space.parameters.empty()) {
    r.skipped = fmt::format("no tunable parameters known for '{}'", algorithm);
    return r;
  }
  // The log is read and parsed once; every evaluation replays it.
  const PolicyManager::ReplayLog log = policy_.replay_log();
  if (log.held.size() < kMinHeldOut) {
    r.skipped = fmt::format("{} held-out decisions with a reward, {} needed", log.held.size(), kMinHeldOut);
    return r;
  }
  const select::OpeEstimate configured = policy_.evaluate_parameters(nlohmann::json::object(), log);
  r.configured_value = configured.value;
  optimize::BayesianOptimizer opt(space, bo_params(config_, /*maximize=*/true));
  std::vector<std::pair<nlohmann::json, double>> told;
  while (!opt.done()) {
    const nlohmann::json params = opt.ask();
    const double value = policy_.evaluate_parameters(params, log).value;
    opt.tell(params, value);
    told.emplace_back(params, value);
  }
  r.evaluations = opt.evaluations();
  const auto best = opt.best();
  r.best_params = best->first;
  const select::OpeEstimate b = policy_.evaluate_parameters(best->first, log);
  r.best_value = b.value;
  r.best_ci_low = b.ci_low;
  r.best_ci_high = b.ci_high;
  collector_.with_store([&](store::Store& st) {
    store::Transaction tx(st.db());
    // Each run replaces the study of the previous one: the trials are this run's.
    st.delete_trials(r.study);
    for (const auto& [params, value] : told) {
      st.insert_trial(r.study, params.dump(), now);
      st.tell_trial(r.study, params.dump(), value, now);
    }
    st.put_study(r.study, opt.to_json().dump(), now);
    st.audit(now, "engine", "tuning", to_json(r).dump());
    tx.commit();
  });
  return r;
}

}  // namespace promptlearn
