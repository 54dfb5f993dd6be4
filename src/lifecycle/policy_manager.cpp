#include "promptlearn/lifecycle/policy_manager.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/features/tokenizer.hpp"
#include "promptlearn/select/factory.hpp"
#include "promptlearn/select/ope.hpp"
#include "promptlearn/select/q_learning.hpp"
#include "promptlearn/select/reward.hpp"
#include "promptlearn/select/sequential.hpp"

namespace promptlearn {

namespace {

constexpr std::size_t kLearnBatch = 20000;    // decisions read per learn() pass
constexpr std::size_t kEvaluateLast = 20000;  // newest held-out decisions the gate scores

Eigen::VectorXd vector_from_json(const std::string& text, int dim) { return select::context_from_json(text, dim); }

std::string vector_to_json(const Eigen::VectorXd& x) {
  nlohmann::json j = nlohmann::json::array();
  for (Eigen::Index i = 0; i < x.size(); ++i) j.push_back(x(i));
  return j.dump();
}

TimeMs start_of_day(TimeMs t) { return t - (t % 86400000 + 86400000) % 86400000; }

}  // namespace

std::pair<std::string, std::string> split_action(const std::string& key) {
  auto at = key.rfind('@');
  if (at == std::string::npos) return {key, ""};
  return {key.substr(0, at), key.substr(at + 1)};
}

std::string action_key(const std::string& template_id, const std::string& version) {
  return template_id + "@" + version;
}

bool is_held_out(const std::string& interaction_id) {
  return features::stable_hash("holdout:" + interaction_id) % 5 == 0;
}

nlohmann::json to_json(const Decision& d) {
  nlohmann::json ranked = nlohmann::json::array();
  for (const auto& r : d.ranked)
    ranked.push_back({{"template_id", r.template_id}, {"version", r.version}, {"probability", r.probability},
                      {"score", r.score}});
  return {{"interaction_id", d.interaction_id},
          {"ranked", ranked},
          {"chosen", {{"template_id", d.chosen.template_id}, {"version", d.chosen.version}}},
          {"propensity", d.propensity},
          {"policy_name", d.policy_name},
          {"policy_version", d.policy_version},
          {"explored", d.explored},
          {"confidence", d.confidence},
          {"decision_id", d.decision_id}};
}

nlohmann::json to_json(const GateReport& g) {
  return {{"deployed", g.deployed},         {"reason", g.reason},           {"samples", g.samples},
          {"improvement", g.improvement},   {"ci_low", g.ci_low},           {"ci_high", g.ci_high},
          {"live_version", g.live_version}, {"new_version", g.new_version}, {"metrics", g.metrics}};
}

// ------------------------------------------------------------------------------------------ setup

PolicyManager::PolicyManager(const std::string& path, Collector& collector, const Config& config, const Clock& clock)
    : path_(path), collector_(collector), config_(config), clock_(clock) {
  store::OpenOptions ro;
  ro.create = false;
  reader_ = std::make_unique<store::Store>(path_, ro);
  refresh();
}

std::unique_ptr<select::Policy> PolicyManager::fresh_policy() const {
  const auto& ts = config_.learning_strategies.template_selection;
  return select::make_policy(ts.algorithm, ts.parameters, context_.dimension(),
                             config_.learning.model_training.random_seed);
}

std::unique_ptr<select::Policy> PolicyManager::load_state(const std::string& state) const {
  std::unique_ptr<select::Policy> p;
  try {
    p = select::make_policy_from_checkpoint(state);
  } catch (const ValidationError& e) {
    throw StorageError(-1, fmt::format("models: a template_selection checkpoint is unreadable: {}", e.what()));
  }
  if (p->dimension() != context_.dimension())
    throw StorageError(-1, fmt::format("models: checkpoint dimension {} differs from the context dimension {}",
                                       p->dimension(), context_.dimension()));
  return p;
}

std::vector<std::string> PolicyManager::load_templates(store::Store& st) const {
  std::vector<std::string> keys;
  for (const auto& t : st.templates("active")) keys.push_back(action_key(t.template_id, t.version));
  return keys;
}

void PolicyManager::sync_actions(select::Policy& p, const std::vector<std::string>& keys) const {
  std::vector<std::string> have = p.actions();
  for (const auto& k : keys)
    if (std::find(have.begin(), have.end(), k) == have.end()) p.add_action(k);
  for (const auto& k : have)
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) p.retire_action(k);
}

void PolicyManager::publish(std::shared_ptr<select::Policy> policy, std::int64_t version) {
  auto snap = std::make_shared<Snapshot>();
  snap->policy = std::move(policy);
  snap->version = version;
  std::atomic_store(&live_, std::shared_ptr<const Snapshot>(std::move(snap)));
}

void PolicyManager::refresh() {
  std::lock_guard<std::mutex> jobs(jobs_mu_);
  collector_.with_store([&](store::Store& st) {
    auto active = st.latest_model(kModelName, "active");
    std::shared_ptr<select::Policy> p = active ? load_state(active->state) : fresh_policy();
    sync_actions(*p, load_templates(st));
    publish(std::move(p), active ? active->version : 0);
  });
}

std::int64_t PolicyManager::live_version() const { return snapshot()->version; }
std::string PolicyManager::policy_name() const { return snapshot()->policy->name(); }

std::vector<std::string> PolicyManager::templates() const { return snapshot()->policy->actions(); }

// ------------------------------------------------------------------------------------------ templates

void PolicyManager::register_template(const std::string& template_id, const std::string& version,
                                      const std::string& body, const std::string& parent_id,
                                      const std::string& parent_version, const std::string& metadata_json) {
  if (!nlohmann::json::parse(metadata_json, nullptr, false).is_object())
    throw ValidationError("metadata", "must be a JSON object");
  if (template_id.empty() || template_id.find('@') != std::string::npos)
    throw ValidationError("template_id", fmt::format("\"{}\" must be non-empty and contain no '@'", template_id));
  if (version.empty()) throw ValidationError("version", "must not be empty");
  std::lock_guard<std::mutex> jobs(jobs_mu_);
  const std::string key = action_key(template_id, version);
  const std::string parent = parent_id.empty() ? "" : action_key(parent_id, parent_version);
  collector_.with_store([&](store::Store& st) {
    store::TemplateRow row;
    row.template_id = template_id;
    row.version = version;
    row.body = body;
    row.status = "active";
    row.metadata = metadata_json;
    if (!parent_id.empty()) {
      row.parent_id = parent_id;
      row.parent_version = parent_version;
    }
    row.created_at = clock_.now_ms();
    store::Transaction tx(st.db());
    st.put_template(row);
    // The candidate learns the new action too, warm-started from the parent.
    if (auto cand = st.latest_model(kModelName, "candidate")) {
      auto p = load_state(cand->state);
      p->add_action(key, parent);
      cand->state = select::encode_checkpoint(*p);
      st.put_model(*cand);
    }
    st.audit(clock_.now_ms(), "engine", "register_template",
             nlohmann::json{{"template", key}, {"parent", parent}}.dump());
    tx.commit();
  });
  auto snap = snapshot();
  std::shared_ptr<select::Policy> next = snap->policy->clone();
  next->add_action(key, parent);
  publish(std::move(next), snap->version);
}

bool PolicyManager::retire_template(const std::string& template_id, const std::string& version) {
  std::lock_guard<std::mutex> jobs(jobs_mu_);
  const std::string key = action_key(template_id, version);
  bool found = collector_.with_store([&](store::Store& st) {
    store::Transaction tx(st.db());
    bool ok = st.set_template_status(template_id, version, "retired");
    if (ok) st.audit(clock_.now_ms(), "engine", "retire_template", nlohmann::json{{"template", key}}.dump());
    tx.commit();
    return ok;
  });
  if (found) {
    auto snap = snapshot();
    std::shared_ptr<select::Policy> next = snap->policy->clone();
    next->retire_action(key);
    publish(std::move(next), snap->version);
  }
  return found;
}

// ------------------------------------------------------------------------------------------ select

Eigen::VectorXd PolicyManager::context_for(const Event& e) const {
  if (!e.input_data) throw ValidationError("input_data", "is required to build a selection context");
  const TimeMs ts = e.timestamp.value_or(clock_.now_ms());
  features::PromptFeatures f = collector_.extract(context_.extractor(), e.input_data->raw_prompt,
                                                  context_input(e.context_data.value_or(ContextData{})));
  select::UserContext user;
  if (e.user_id) {
    user.user_id = *e.user_id;
    std::lock_guard<std::mutex> lock(reader_mu_);
    std::tie(user.interactions, user.mean_reward) = reader_->user_summary(*e.user_id);
    user.template_means = reader_->user_template_means(*e.user_id);
  }
  return context_.build(f, hour_of_day_utc(ts), user);
}

std::optional<select::Distribution> PolicyManager::apprentice_distribution(const Event& e,
                                                                         const std::vector<std::string>& actions,
                                                                         std::int64_t live_version) const {
  const auto& sc = config_.learning.selection;
  if (!sc.apprentice_mode || live_version != 0 || !e.enhancement_data || !e.enhancement_data->selected_template)
    return std::nullopt;
  // The host's own choice: the named version, or the newest registered version of that template.
  const std::string& id = *e.enhancement_data->selected_template;
  std::string chosen;
  for (const auto& a : actions) {
    auto [aid, aversion] = split_action(a);
    if (aid != id) continue;
    if (e.enhancement_data->template_version && aversion != *e.enhancement_data->template_version) continue;
    chosen = a;
  }
  if (chosen.empty()) return std::nullopt;  // not a registered template: the policy decides
  const double k = static_cast<double>(actions.size());
  select::Distribution dist;
  for (const auto& a : actions) {
    const bool is_default = a == chosen;
    dist.push_back({a, (is_default ? 1.0 - sc.apprentice_exploration : 0.0) + sc.apprentice_exploration / k,
                    is_default ? 1.0 : 0.0});
  }
  std::stable_sort(dist.begin(), dist.end(),
                   [](const select::ActionProbability& a, const select::ActionProbability& b) {
                     return a.probability > b.probability;
                   });
  return dist;
}

Decision PolicyManager::select(const Event& e) {
  if (!e.input_data) throw ValidationError("input_data", "is required to select a template");
  auto snap = snapshot();
  const select::Policy& policy = *snap->policy;
  if (policy.actions().empty())
    throw Error("select_template: no active template; register one with register_template()");
  const TimeMs now = clock_.now_ms();
  Eigen::VectorXd x = context_for(e);

  // Each decision draws from its own stream: deterministic given the seed and the interaction, and
  // independent across the one-decision processes a hook runs.
  Rng rng(config_.learning.model_training.random_seed ^ features::stable_hash(e.interaction_id));
  std::string policy_name = policy.name();
  select::Distribution dist;
  if (auto imitated = apprentice_distribution(e, policy.actions(), snap->version)) {
    dist = std::move(*imitated);
    policy_name = kApprenticeName;
  } else {
    dist = policy.distribution(x, rng);
  }
  double u = rng.uniform(), acc = 0;
  std::size_t pick = dist.size() - 1;
  for (std::size_t i = 0; i < dist.size(); ++i) {
    acc += dist[i].probability;
    if (u < acc) {
      pick = i;
      break;
    }
  }

  Decision d;
  d.interaction_id = e.interaction_id;
  nlohmann::json action_set = nlohmann::json::array();
  for (const auto& ap : dist) {
    auto [id, version] = split_action(ap.action);
    d.ranked.push_back({id, version, ap.probability, ap.score});
    action_set.push_back({{"template_id", id}, {"version", version}, {"probability", ap.probability},
                          {"score", ap.score}});
  }
  d.chosen = d.ranked[pick];
  d.propensity = dist[pick].probability;
  d.policy_name = policy_name;
  d.policy_version = snap->version;
  d.explored = dist[pick].probability < dist[0].probability;  // not one of the policy's top choices
  d.confidence = dist[0].probability;

  store::DecisionRow row;
  row.interaction_id = e.interaction_id;
  row.timestamp = now;
  row.policy_name = d.policy_name;
  row.policy_version = d.policy_version;
  row.action_set = action_set.dump();
  row.chosen_template = d.chosen.template_id;
  row.chosen_version = d.chosen.version;
  row.propensity = d.propensity;
  row.context = vector_to_json(x);
  d.decision_id = collector_.log_decision(std::move(row));
  return d;
}

// ------------------------------------------------------------------------------------------ learn

LearnReport PolicyManager::learn(TimeMs now) {
  std::lock_guard<std::mutex> jobs(jobs_mu_);
  LearnReport report;
  const TimeMs wait = static_cast<TimeMs>(config_.learning.reward.reward_wait_hours) * 3600000;
  collector_.with_store([&](store::Store& st) {
    store::Transaction tx(st.db());  // exactly once across processes: the decisions are marked in here
    auto cand_row = st.latest_model(kModelName, "candidate");
    std::unique_ptr<select::Policy> cand =
        cand_row ? load_state(cand_row->state) : std::unique_ptr<select::Policy>(snapshot()->policy->clone());
    sync_actions(*cand, load_templates(st));
    nlohmann::json metrics = cand_row ? nlohmann::json::parse(cand_row->metrics, nullptr, false) : nlohmann::json();
    if (!metrics.is_object()) metrics = nlohmann::json::object();
    // The candidate versions whose learned decisions this state holds (erasure needs to know: see
    // forget()); a new candidate holds what the active checkpoint it was cloned from holds.
    if (!metrics.contains("learned_into") && !cand_row)
      if (auto active = st.latest_model(kModelName, "active")) {
        nlohmann::json am = nlohmann::json::parse(active->metrics, nullptr, false);
        if (am.is_object() && am.contains("learned_into")) metrics["learned_into"] = am["learned_into"];
      }
    nlohmann::json& reward_model = metrics["reward_model"];  // action -> [n, sum]: DR's regression term
    if (!reward_model.is_object()) reward_model = nlohmann::json::object();
    const auto actions = cand->actions();
    const std::int64_t cand_version =
        cand_row ? cand_row->version : std::max(st.max_model_version(kModelName), live_version()) + 1;

    for (const auto& row : st.unlearned_decisions(kLearnBatch)) {
      const auto& d = row.decision;
      std::optional<double> r;
      if (row.outcome) r = select::compute_reward(*row.outcome, config_.learning.reward);
      if (!r) {
        if (now - d.timestamp < wait) {
          ++report.waiting;
          continue;
        }
        r = config_.learning.reward.default_reward;
        ++report.defaulted;
      } else {
        ++report.learned;
      }
      const std::string key = action_key(d.chosen_template, d.chosen_version);
      std::optional<std::int64_t> learned_into;
      if (is_held_out(d.interaction_id)) {
        ++report.held_out;
      } else {
        Eigen::VectorXd x = vector_from_json(d.context, context_.dimension());
        if (x.size() == context_.dimension() && std::find(actions.begin(), actions.end(), key) != actions.end()) {
          auto* q = dynamic_cast<select::QLearningPolicy*>(cand.get());
          std::optional<std::string> next;
          if (q && row.session_id) next = st.next_decision_context(*row.session_id, d.decision_id);
          Eigen::VectorXd x_next = next ? vector_from_json(*next, context_.dimension()) : Eigen::VectorXd();
          if (q && x_next.size() == context_.dimension())
            q->update_transition(x, key, *r, x_next);  // the session's next interaction is the next state
          else
            cand->update(x, key, *r, d.propensity);
          learned_into = cand_version;
          auto& cell = reward_model[key];
          if (!cell.is_array()) cell = nlohmann::json::array({0, 0.0});
          cell[0] = cell[0].get<std::int64_t>() + 1;
          cell[1] = cell[1].get<double>() + *r;
        }
      }
      st.set_decision_reward(d.decision_id, *r, learned_into);
      if (row.user_id) {
        st.add_user_reward(*row.user_id, *r);
        st.add_user_template_reward(*row.user_id, key, *r, now);
      }
    }
    nlohmann::json& into = metrics["learned_into"];
    if (!into.is_array()) into = nlohmann::json::array();
    if (std::find(into.begin(), into.end(), nlohmann::json(cand_version)) == into.end()) into.push_back(cand_version);
    store::ModelRow out;
    out.name = kModelName;
    out.version = cand_version;
    out.state = select::encode_checkpoint(*cand);
    metrics["trained_decisions"] = metrics.value("trained_decisions", 0) + report.learned + report.defaulted -
                                   report.held_out;
    out.metrics = metrics.dump();
    out.status = "candidate";
    out.created_at = cand_row ? cand_row->created_at : now;
    st.put_model(out);
    tx.commit();
  });
  return report;
}

// ------------------------------------------------------------------------------------------ gate

void PolicyManager::learned_split(store::Store& st, std::vector<store::DecisionRow>* train,
                                  std::vector<store::DecisionRow>& held) const {
  std::int64_t after = 0;
  for (;;) {
    auto chunk = st.learned_decisions(after, 50000);
    if (chunk.empty()) break;
    after = chunk.back().decision_id;
    for (auto& d : chunk) {
      if (is_held_out(d.interaction_id)) held.push_back(std::move(d));
      else if (train) train->push_back(std::move(d));
    }
  }
  // The newest held-out decisions: never trained on.
  if (held.size() > kEvaluateLast) held.erase(held.begin(), held.end() - static_cast<std::ptrdiff_t>(kEvaluateLast));
}

PolicyManager::ReplayLog PolicyManager::replay_log() const {
  std::vector<store::DecisionRow> train, held;
  ReplayLog log;
  collector_.with_store([&](store::Store& st) {
    log.actions = load_templates(st);
    learned_split(st, &train, held);
  });
  auto parsed = [&](const std::vector<store::DecisionRow>& rows, std::vector<select::LoggedDecision>& out) {
    for (const auto& d : rows) {
      Eigen::VectorXd x = vector_from_json(d.context, context_.dimension());
      if (x.size() != context_.dimension()) continue;
      select::LoggedDecision ld;
      ld.context = std::move(x);
      ld.chosen = action_key(d.chosen_template, d.chosen_version);
      ld.reward = *d.reward;
      ld.propensity = d.propensity;
      out.push_back(std::move(ld));
    }
  };
  parsed(train, log.train);
  parsed(held, log.held);
  return log;
}

select::OpeEstimate PolicyManager::evaluate_parameters(const nlohmann::json& overrides) const {
  return evaluate_parameters(overrides, replay_log());
}

select::OpeEstimate PolicyManager::evaluate_parameters(const nlohmann::json& overrides, const ReplayLog& log) const {
  const auto& ts = config_.learning_strategies.template_selection;
  nlohmann::json params = ts.parameters.is_object() ? ts.parameters : nlohmann::json::object();
  if (!overrides.is_object()) throw ConfigError("parameters", "must be a JSON object");
  for (auto it = overrides.begin(); it != overrides.end(); ++it) params[it.key()] = it.value();
  std::unique_ptr<select::Policy> policy =
      select::make_policy(ts.algorithm, params, context_.dimension(), config_.learning.model_training.random_seed);
  sync_actions(*policy, log.actions);
  std::map<std::string, std::pair<double, double>> sums;  // action -> (n, reward sum): the DR reward model
  double all_n = 0, all_sum = 0;
  const std::set<std::string> known(log.actions.begin(), log.actions.end());
  for (const auto& d : log.train) {
    if (!known.count(d.chosen)) continue;
    policy->update(d.context, d.chosen, d.reward, d.propensity);
    auto& [n, sum] = sums[d.chosen];
    n += 1, sum += d.reward, all_n += 1, all_sum += d.reward;
  }
  const double overall = all_n > 0 ? all_sum / all_n : 0.5;
  select::RewardModel model = [&](const select::LoggedDecision&, const std::string& action) {
    auto it = sums.find(action);
    return it == sums.end() || it->second.first == 0 ? overall : it->second.second / it->second.first;
  };
  if (log.held.empty()) throw Error("evaluate_parameters: no held-out decisions with a reward yet");
  std::vector<select::LoggedDecision> scored = log.held;
  Rng rng(config_.learning.model_training.random_seed);
  for (auto& ld : scored) ld.target = policy->distribution(ld.context, rng);
  return select::doubly_robust(scored, model);
}

GateReport PolicyManager::gate(TimeMs now) {
  std::lock_guard<std::mutex> jobs(jobs_mu_);
  GateReport g;
  auto snap = snapshot();
  g.live_version = snap->version;
  const auto& lp = config_.learning.learning_parameters;
  if (!config_.learning.adaptive_refinement_enabled) {
    g.reason = "adaptive_refinement_enabled is false";
    return g;
  }
  collector_.with_store([&](store::Store& st) {
    auto cand_row = st.latest_model(kModelName, "candidate");
    if (!cand_row) {
      g.reason = "no candidate yet (learn() has not run)";
      return;
    }
    store::Statement today(st.db(),
                           "SELECT count(*) FROM audit_log WHERE action = 'deploy' AND timestamp >= ?1");
    today.bind(1, format_rfc3339(start_of_day(now)));
    const std::int64_t deployed_today = today.step() ? today.column_int64(0) : 0;
    if (deployed_today >= lp.max_adaptation_per_day) {
      g.reason = fmt::format("{} deployments today already (max_adaptation_per_day {})", deployed_today,
                             lp.max_adaptation_per_day);
      return;
    }
    std::unique_ptr<select::Policy> cand = load_state(cand_row->state);
    sync_actions(*cand, load_templates(st));

    std::vector<store::DecisionRow> held;
    learned_split(st, nullptr, held);

    std::vector<select::LoggedDecision> live_log, cand_log;
    Rng rng(config_.learning.model_training.random_seed);
    for (const auto& d : held) {
      Eigen::VectorXd x = vector_from_json(d.context, context_.dimension());
      if (x.size() != context_.dimension()) continue;
      select::LoggedDecision ld;
      ld.context = x;
      ld.chosen = action_key(d.chosen_template, d.chosen_version);
      ld.reward = *d.reward;
      ld.propensity = d.propensity;
      if (d.policy_name == kApprenticeName && snap->version == 0) {
        // The live behaviour was the apprentice: its distribution is the one logged with the decision.
        ld.target.clear();
        for (const auto& a : nlohmann::json::parse(d.action_set))
          ld.target.push_back({action_key(a.at("template_id").get<std::string>(), a.at("version").get<std::string>()),
                               a.at("probability").get<double>(), a.at("score").get<double>()});
      } else {
        ld.target = snap->policy->distribution(x, rng);
      }
      live_log.push_back(ld);
      ld.target = cand->distribution(x, rng);
      cand_log.push_back(std::move(ld));
    }
    g.samples = static_cast<std::int64_t>(live_log.size());
    if (g.samples < lp.min_samples_for_adaptation) {
      g.reason = fmt::format("{} held-out decisions, {} needed (min_samples_for_adaptation)", g.samples,
                             lp.min_samples_for_adaptation);
      return;
    }
    // Doubly robust with a per-action mean reward model learned on the training decisions only.
    nlohmann::json metrics = nlohmann::json::parse(cand_row->metrics, nullptr, false);
    double all_n = 0, all_sum = 0;
    std::map<std::string, double> means;
    if (metrics.is_object() && metrics.contains("reward_model")) {
      for (auto it = metrics["reward_model"].begin(); it != metrics["reward_model"].end(); ++it) {
        double n = (*it)[0].get<double>(), sum = (*it)[1].get<double>();
        all_n += n;
        all_sum += sum;
        if (n > 0) means[it.key()] = sum / n;
      }
    }
    const double overall = all_n > 0 ? all_sum / all_n : 0.5;
    select::RewardModel model = [&](const select::LoggedDecision&, const std::string& action) {
      auto it = means.find(action);
      return it == means.end() ? overall : it->second;
    };
    auto dr = select::compare(live_log, cand_log, select::Estimator::doubly_robust, model);
    auto ips = select::compare(live_log, cand_log, select::Estimator::ips);
    auto snips = select::compare(live_log, cand_log, select::Estimator::snips);
    auto est = [](const select::OpeEstimate& e) {
      return nlohmann::json{{"value", e.value}, {"ci_low", e.ci_low}, {"ci_high", e.ci_high}, {"n", e.n},
                            {"ess", e.effective_sample_size}};
    };
    g.metrics = {{"dr", {{"live", est(dr.live)}, {"candidate", est(dr.candidate)}, {"improvement", est(dr.improvement)}}},
                 {"ips", {{"live", est(ips.live)}, {"candidate", est(ips.candidate)}, {"improvement", est(ips.improvement)}}},
                 {"snips", {{"live", est(snips.live)}, {"candidate", est(snips.candidate)}, {"improvement", est(snips.improvement)}}},
                 {"threshold", lp.adaptation_threshold}};
    g.improvement = dr.improvement.value;
    g.ci_low = dr.improvement.ci_low;
    g.ci_high = dr.improvement.ci_high;
    // "Enough samples" means effective ones: when the policies disagree with the logging policy, a few
    // large importance weights carry the estimate and its normal-approximation interval is not to be
    // trusted (Kish's effective sample size of the weights; measured: the interval misled at ESS ~7).
    const double ess = dr.improvement.effective_sample_size;
    if (ess < lp.min_samples_for_adaptation) {
      g.reason = fmt::format("improvement {:.4f} rests on an effective sample size of {:.1f} (of {} held-out "
                             "decisions); {} needed (min_samples_for_adaptation)",
                             g.improvement, ess, g.samples, lp.min_samples_for_adaptation);
      return;
    }
    if (!(g.ci_low > lp.adaptation_threshold)) {
      g.reason = fmt::format("improvement {:.4f}, 95% lower bound {:.4f} does not exceed adaptation_threshold {}",
                             g.improvement, g.ci_low, lp.adaptation_threshold);
      return;
    }
    // Deploy: the candidate becomes the active checkpoint; a copy continues as the next candidate.
    store::Transaction tx(st.db());
    if (auto active = st.latest_model(kModelName, "active")) st.set_model_status(kModelName, active->version, "retired");
    store::ModelRow deployed = *cand_row;
    // Versions order deployments: if a newer row exists (a checkpoint written by the host, or the live
    // one after a rollback), the candidate is deployed under a fresh number rather than below it.
    if (const std::int64_t top = st.max_model_version(kModelName); deployed.version < top) {
      st.delete_model(kModelName, cand_row->version);
      deployed.version = top + 1;
    }
    deployed.status = "active";
    deployed.created_at = now;
    nlohmann::json dm = metrics.is_object() ? metrics : nlohmann::json::object();
    dm["gate"] = g.metrics;
    dm["baseline_value"] = dr.live.value;     // what the previous policy was worth: the rollback reference
    dm["expected_value"] = dr.candidate.value;
    dm["previous_version"] = snap->version;
    deployed.metrics = dm.dump();
    st.put_model(deployed);
    store::ModelRow next = *cand_row;
    next.version = deployed.version + 1;
    next.created_at = now;
    st.put_model(next);
    st.prune_models(kModelName, config_.learning.data_retention.model_checkpoints_kept);
    st.audit(now, "engine", "deploy",
             nlohmann::json{{"model", kModelName}, {"version", deployed.version}, {"from", snap->version},
                            {"improvement", g.improvement}, {"ci_low", g.ci_low}, {"samples", g.samples}}
                 .dump());
    tx.commit();
    g.deployed = true;
    g.new_version = deployed.version;
    g.reason = fmt::format("deployed version {}: improvement {:.4f} (95% CI {:.4f} .. {:.4f}) on {} held-out decisions",
                           deployed.version, g.improvement, g.ci_low, g.ci_high, g.samples);
    publish(std::shared_ptr<select::Policy>(std::move(cand)), deployed.version);
  });
  return g;
}

// ------------------------------------------------------------------------------------------ watch

bool PolicyManager::watch(TimeMs now) {
  std::string reason;
  {
    std::lock_guard<std::mutex> jobs(jobs_mu_);
    collector_.with_store([&](store::Store& st) {
      auto active = st.latest_model(kModelName, "active");
      if (!active) return;
      nlohmann::json m = nlohmann::json::parse(active->metrics, nullptr, false);
      if (!m.is_object() || !m.contains("baseline_value")) return;
      // Reference: what the previous policy was worth on the held-out log at deployment time.
      select::RollbackTestConfig rc;
      rc.baseline = std::clamp(m["baseline_value"].get<double>(), 1e-6, 1.0);
      // Wald's SPRT without an acceptance boundary (beta = 0): it watches for as long as the version is
      // live, and Ville's inequality keeps the false-alarm probability <= alpha over that whole time; its
      // threshold log(1/alpha) = 4.6 detects a drop about three times sooner than a CUSUM over 10,000.
      rc.method = select::RollbackMethod::sprt;
      rc.beta = 0;
      if (rc.baseline <= rc.detect_drop) return;  // no reward level low enough to detect a drop from
      select::RollbackTest test(rc);
      store::Statement q(st.db(),
                         "SELECT reward FROM decisions WHERE policy_name = ?1 AND policy_version = ?2 AND reward IS "
                         "NOT NULL ORDER BY decision_id");
      q.bind(1, snapshot()->policy->name()).bind(2, active->version);
      while (q.step())
        if (test.observe(q.column_double(0)) == select::RollbackStatus::rollback) break;
      if (test.status() == select::RollbackStatus::rollback)
        reason = fmt::format("live reward {:.4f} over {} decisions fell below the previous policy's {:.4f} "
                             "(SPRT statistic {:.2f} >= {:.2f}, false-alarm bound {})",
                             test.live_mean(), test.count(), rc.baseline, test.statistic(), test.alarm_threshold(),
                             rc.alpha);
    });
  }
  return !reason.empty() && rollback(now, reason);
}

// ------------------------------------------------------------------------------------------ rollback

bool PolicyManager::rollback(TimeMs now, const std::string& reason) {
  std::lock_guard<std::mutex> jobs(jobs_mu_);
  bool done = false;
  collector_.with_store([&](store::Store& st) {
    store::Transaction tx(st.db());
    auto active = st.latest_model(kModelName, "active");
    if (!active) return;
    std::optional<store::ModelRow> previous;
    for (auto& m : st.checkpoints(kModelName))
      if (m.version < active->version && m.status == "retired") {
        previous = std::move(m);
        break;
      }
    nlohmann::json am = nlohmann::json::parse(active->metrics, nullptr, false);
    if (!am.is_object()) am = nlohmann::json::object();
    am["rolled_back"] = {{"at", format_rfc3339(now)}, {"reason", reason}};
    active->metrics = am.dump();
    active->status = "retired";
    st.put_model(*active);
    std::shared_ptr<select::Policy> restored;
    std::int64_t restored_version = 0;
    if (previous) {
      st.set_model_status(kModelName, previous->version, "active");
      restored = load_state(previous->state);
      restored_version = previous->version;
    } else {
      restored = fresh_policy();  // before the first deployment there was the initial policy
    }
    sync_actions(*restored, load_templates(st));
    // The candidate starts again from the restored policy, under a fresh version number: decisions
    // learned from now on must not be confused with those learned into the abandoned candidate.
    if (auto cand = st.latest_model(kModelName, "candidate")) {
      st.delete_model(kModelName, cand->version);
      cand->version = st.max_model_version(kModelName) + 1;
      cand->state = select::encode_checkpoint(*restored);
      nlohmann::json cm = nlohmann::json::parse(cand->metrics, nullptr, false);
      if (!cm.is_object()) cm = nlohmann::json::object();
      nlohmann::json pm = previous ? nlohmann::json::parse(previous->metrics, nullptr, false) : nlohmann::json();
      cm["learned_into"] = pm.is_object() && pm.contains("learned_into") ? pm["learned_into"] : nlohmann::json::array();
      cand->metrics = cm.dump();
      st.put_model(*cand);
    }
    st.audit(now, "engine", "rollback",
             nlohmann::json{{"model", kModelName}, {"from", active->version}, {"to", restored_version},
                            {"reason", reason}}
                 .dump());
    tx.commit();
    publish(std::move(restored), restored_version);
    done = true;
  });
  return done;
}

// ------------------------------------------------------------------------------------------ forget

PolicyManager::ForgetReport PolicyManager::forget(store::Store& st, const std::vector<ForgetRow>& rows) {
  std::lock_guard<std::mutex> jobs(jobs_mu_);
  ForgetReport report;
  if (rows.empty()) return report;
  for (store::ModelRow& m : st.all_checkpoints(kModelName)) {
    nlohmann::json metrics = nlohmann::json::parse(m.metrics, nullptr, false);
    if (!metrics.is_object()) metrics = nlohmann::json::object();
    // Which decisions this checkpoint holds: those learned into a listed candidate version; a file older
    // than the list: those learned into this version or before.
    const nlohmann::json* into = metrics.contains("learned_into") && metrics["learned_into"].is_array()
                                     ? &metrics["learned_into"] : nullptr;
    auto holds = [&](std::int64_t v) {
      if (!into) return v <= m.version;
      for (const auto& e : *into)
        if (e.is_number_integer() && e.get<std::int64_t>() == v) return true;
      return false;
    };
    std::unique_ptr<select::Policy> p = load_state(m.state);
    std::size_t applied = 0;
    bool exact = true;
    for (const ForgetRow& r : rows) {
      if (!holds(r.learned_into)) continue;
      const Eigen::VectorXd x = vector_from_json(r.context, context_.dimension());
      if (x.size() != context_.dimension()) continue;  // never learned: the context was unusable
      if (!p->downdate(x, r.action, r.reward)) {
        exact = false;
        break;
      }
      ++applied;
    }
    if (!exact) {
      ++report.not_exact;
      metrics["needs_retraining"] = "a user's data was erased and this policy cannot forget it exactly";
      m.metrics = metrics.dump();
      st.put_model(m);
      continue;
    }
    if (applied == 0) continue;
    // The decisions' share of the doubly robust reward model goes too.
    nlohmann::json& reward_model = metrics["reward_model"];
    if (reward_model.is_object())
      for (const ForgetRow& r : rows)
        if (holds(r.learned_into) && reward_model.contains(r.action) && reward_model[r.action].is_array()) {
          auto& cell = reward_model[r.action];
          cell[0] = std::max<std::int64_t>(0, cell[0].get<std::int64_t>() - 1);
          cell[1] = cell[1].get<double>() - r.reward;
        }
    m.state = select::encode_checkpoint(*p);
    m.metrics = metrics.dump();
    st.put_model(m);
    ++report.checkpoints;
    report.downdates += applied;
  }
  return report;
}

}  // namespace promptlearn
