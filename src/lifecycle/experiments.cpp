#include <algorithm>
#include "promptlearn/lifecycle/experiments.hpp"

#include <fmt/format.h>

#include <cmath>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/select/reward.hpp"

namespace promptlearn {

namespace {

/// A JSON number, or null when it is not finite (JSON has no infinity).
nlohmann::json finite_or_null(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(); }

const char* metric_name(select::AbMetric m) { return m == select::AbMetric::mean ? "mean" : "proportion"; }

}  // namespace

// ------------------------------------------------------------------------------------------ JSON

nlohmann::json experiment_config_to_json(const select::AbTestConfig& c) {
  nlohmann::json arms = nlohmann::json::array();
  for (const auto& a : c.arms) arms.push_back({{"name", a.name}, {"weight", a.weight}});
  return {{"experiment_id", c.experiment_id},
          {"metric", metric_name(c.metric)},
          {"alpha", c.alpha},
          {"min_samples_per_arm", c.min_samples_per_arm},
          {"success_threshold", c.success_threshold},
          {"arms", arms}};
}

select::AbTestConfig experiment_config_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ConfigError("ab_test", "expected an object");
  static const char* const kKnown[] = {"experiment_id", "metric", "alpha", "min_samples_per_arm", "success_threshold",
                                       "arms"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::find_if(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return it.key() == k; }) ==
        std::end(kKnown))
      throw ConfigError("ab_test." + it.key(), "unknown key");
  auto field = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key)) throw ConfigError(std::string("ab_test.") + key, "is missing");
    return j.at(key);
  };
  select::AbTestConfig c;  // metric, alpha, min_samples_per_arm and success_threshold default when absent
  try {
    c.experiment_id = field("experiment_id").get<std::string>();
    const std::string metric = j.value("metric", std::string("mean"));
    if (metric == "mean") c.metric = select::AbMetric::mean;
    else if (metric == "proportion") c.metric = select::AbMetric::proportion;
    else throw ConfigError("ab_test.metric", fmt::format("'{}' is not one of mean, proportion", metric));
    c.alpha = j.value("alpha", c.alpha);
    c.min_samples_per_arm = j.value("min_samples_per_arm", c.min_samples_per_arm);
    c.success_threshold = j.value("success_threshold", c.success_threshold);
    const auto& arms = field("arms");
    if (!arms.is_array()) throw ConfigError("ab_test.arms", "expected an array");
    for (const auto& a : arms) c.arms.push_back({a.at("name").get<std::string>(), a.at("weight").get<double>()});
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError("ab_test", e.what());
  }
  c.validate();
  return c;
}

nlohmann::json to_json(const ExperimentReport& r) {
  nlohmann::json comparisons = nlohmann::json::array();
  for (const auto& c : r.comparisons)
    comparisons.push_back({{"arm_a", c.arm_a},
                           {"arm_b", c.arm_b},
                           {"difference", finite_or_null(c.difference)},
                           {"statistic", finite_or_null(c.statistic)},
                           {"df", finite_or_null(c.df)},
                           {"p_value", finite_or_null(c.p_value)},
                           {"ci_low", finite_or_null(c.ci_low)},
                           {"ci_high", finite_or_null(c.ci_high)},
                           {"confidence", c.confidence}});
  return {{"experiment_id", r.experiment_id},
          {"status", r.status},
          {"config", experiment_config_to_json(r.config)},
          {"arms", r.arms},
          {"comparisons", comparisons},
          {"verdict", {{"winner", r.verdict.winner}, {"reason", r.verdict.reason}, {"p_value", r.verdict.p_value}}},
          {"assigned", r.assigned},
          {"with_outcome", r.with_outcome}};
}

// ------------------------------------------------------------------------------------------ manager

ExperimentManager::ExperimentManager(Collector& collector, const Config& config, const Clock& clock)
    : collector_(collector), reward_(config.learning.reward), clock_(clock) {}

const ExperimentManager::Loaded& ExperimentManager::load(store::Store& st, const std::string& experiment_id,
                                                         std::string& status) {
  auto& q = st.db().cached("SELECT config, status FROM ab_tests WHERE experiment_id = ?1");
  q.bind(1, experiment_id);
  if (!q.step()) {
    q.reset();
    throw ValidationError("experiment_id", fmt::format("'{}' is not a known experiment", experiment_id));
  }
  std::string text = q.column_text(0);
  status = q.column_text(1);
  q.reset();
  auto it = cache_.find(experiment_id);
  if (it != cache_.end() && it->second.config_text == text) return it->second;
  // First use in this process (or the row was rewritten by hand): parse the stored configuration.
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded())
    throw StorageError(-1, fmt::format("ab_tests: the config of experiment '{}' is not valid JSON", experiment_id));
  try {
    select::AbTest test(experiment_config_from_json(j));
    if (it != cache_.end()) cache_.erase(it);
    return cache_.emplace(experiment_id, Loaded{std::move(text), std::move(test)}).first->second;
  } catch (const ConfigError& e) {
    throw StorageError(-1, fmt::format("ab_tests: the config of experiment '{}' is invalid: {}", experiment_id,
                                       e.what()));
  }
}

void ExperimentManager::create(const select::AbTestConfig& config) {
  config.validate();
  const std::string text = experiment_config_to_json(config).dump();
  std::lock_guard<std::mutex> lock(mu_);
  collector_.with_store([&](store::Store& st) {
    const TimeMs now = clock_.now_ms();
    store::Transaction tx(st.db());
    auto& ins = st.db().cached(
        "INSERT INTO ab_tests (experiment_id, config, status, created_at) VALUES (?1, ?2, 'running', ?3) "
        "ON CONFLICT(experiment_id) DO NOTHING");
    ins.bind(1, config.experiment_id).bind(2, text).bind(3, format_rfc3339(now));
    ins.run();
    if (st.db().changes() == 0)
      throw ValidationError("experiment_id", fmt::format("experiment '{}' already exists", config.experiment_id));
    st.audit(now, "engine", "create_experiment",
             nlohmann::json{{"experiment_id", config.experiment_id}, {"config", experiment_config_to_json(config)}}
                 .dump());
    tx.commit();
  });
}

std::string ExperimentManager::assign(const std::string& experiment_id, const std::string& unit_id,
                                      const std::string& interaction_id) {
  if (unit_id.empty()) throw ValidationError("unit_id", "is empty");
  if (interaction_id.empty()) throw ValidationError("interaction_id", "is empty");
  std::lock_guard<std::mutex> lock(mu_);
  return collector_.with_store([&](store::Store& st) {
    store::Transaction tx(st.db());  // the status check and the log write see the same file state
    std::string status;
    const Loaded& exp = load(st, experiment_id, status);
    if (status != "running")
      throw ValidationError("experiment_id",
                            fmt::format("experiment '{}' is {}; it assigns no more units", experiment_id, status));
    std::string arm = exp.test.assign(unit_id);
    auto& ins = st.db().cached(
        "INSERT INTO ab_assignments (experiment_id, interaction_id, unit_id, arm, assigned_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(experiment_id, interaction_id) DO NOTHING");
    ins.bind(1, experiment_id).bind(2, interaction_id).bind(3, unit_id).bind(4, arm);
    ins.bind(5, format_rfc3339(clock_.now_ms()));
    ins.run();
    if (st.db().changes() == 0) {  // logged before: the first assignment stands
      auto& q = st.db().cached(
          "SELECT unit_id, arm FROM ab_assignments WHERE experiment_id = ?1 AND interaction_id = ?2");
      q.bind(1, experiment_id).bind(2, interaction_id);
      q.step();
      std::string logged_unit = q.column_text(0), logged_arm = q.column_text(1);
      q.reset();
      if (logged_unit != unit_id)
        throw ValidationError("interaction_id",
                              fmt::format("'{}' is already assigned in experiment '{}' to unit '{}', not '{}'",
                                          interaction_id, experiment_id, logged_unit, unit_id));
      arm = std::move(logged_arm);
    }
    tx.commit();
    return arm;
  });
}

ExperimentReport ExperimentManager::report(const std::string& experiment_id) {
  collector_.flush();  // outcomes this process buffered count too
  std::lock_guard<std::mutex> lock(mu_);
  return collector_.with_store([&](store::Store& st) {
    ExperimentReport r;
    r.experiment_id = experiment_id;
    select::AbTest test = load(st, experiment_id, r.status).test;  // a copy: fresh statistics
    r.config = test.config();
    std::map<std::string, std::int64_t, std::less<>> assigned;
    store::Statement q(st.db(),
                       "SELECT a.arm, o.interaction_id IS NOT NULL, o.claude_response_time_ms, "
                       "o.response_quality_score, o.user_satisfaction_rating, o.acceptance_rate, "
                       "o.edit_action_count, o.reward FROM ab_assignments a "
                       "LEFT JOIN outcomes o ON o.interaction_id = a.interaction_id "
                       "WHERE a.experiment_id = ?1");
    q.bind(1, experiment_id);
    while (q.step()) {
      ++r.assigned;
      const std::string arm = q.column_text(0);
      ++assigned[arm];
      if (q.column_int64(1) == 0) continue;  // no outcome yet
      ++r.with_outcome;
      if (auto reward = select::compute_reward(store::read_reward_outcome(q, 2), reward_))
        test.try_record(arm, *reward);  // false only for an arm edited into the file by hand
    }
    const auto& cfg = test.config();
    for (std::size_t i = 0; i < test.arms().size(); ++i) {
      const auto& s = test.arms()[i];
      auto it = assigned.find(s.name);
      r.arms[s.name] = {{"weight", cfg.arms[i].weight},
                        {"assigned", it == assigned.end() ? 0 : it->second},
                        {"n", s.rewards.count()},
                        {"mean", s.rewards.mean()},
                        {"stddev", s.rewards.stddev()},
                        {"successes", s.successes},
                        {"success_rate", s.success_rate()}};
    }
    const std::uint64_t needed = cfg.metric == select::AbMetric::mean ? 2 : 1;
    for (std::size_t a = 0; a < test.arms().size(); ++a)
      for (std::size_t b = a + 1; b < test.arms().size(); ++b)
        if (test.arms()[a].rewards.count() >= needed && test.arms()[b].rewards.count() >= needed)
          r.comparisons.push_back(test.test(test.arms()[a].name, test.arms()[b].name));
    r.verdict = test.verdict();
    return r;
  });
}

void ExperimentManager::stop(const std::string& experiment_id) {
  std::lock_guard<std::mutex> lock(mu_);
  collector_.with_store([&](store::Store& st) {
    const TimeMs now = clock_.now_ms();
    store::Transaction tx(st.db());
    std::string status;
    load(st, experiment_id, status);
    if (status == "stopped") return;  // nothing to change (the transaction rolls back: nothing was written)
    auto& up = st.db().cached(
        "UPDATE ab_tests SET status = 'stopped', stopped_at = ?2 WHERE experiment_id = ?1 AND status = 'running'");
    up.bind(1, experiment_id).bind(2, format_rfc3339(now));
    up.run();
    st.audit(now, "engine", "stop_experiment", nlohmann::json{{"experiment_id", experiment_id}}.dump());
    tx.commit();
  });
}

std::vector<std::string> ExperimentManager::experiments(bool running_only) {
  std::lock_guard<std::mutex> lock(mu_);
  return collector_.with_store([&](store::Store& st) {
    auto& q = st.db().cached(running_only ? "SELECT experiment_id FROM ab_tests WHERE status = 'running' "
                                            "ORDER BY created_at, experiment_id"
                                          : "SELECT experiment_id FROM ab_tests ORDER BY created_at, experiment_id");
    std::vector<std::string> ids;
    while (q.step()) ids.push_back(q.column_text(0));
    q.reset();
    return ids;
  });
}

}  // namespace promptlearn
