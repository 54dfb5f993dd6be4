#pragma once
/// @file
/// Decision rules and their optimisation from logs (layer 2, header-only; no I/O, clock or threads):
/// rules such as "bypass when complexity < 0.2" or "use template T when domain == code", how well each
/// rule did in the logged data (Welch's comparison of following vs not following it where it applies),
/// conflicts between rules (conditions that can hold together with different actions), and the refinement
/// of one threshold by an exact scan of the logged cut points.
///
///     Rule r{"simple_bypass", {{"complexity", RuleCondition::Op::lt, 0.2, ""}}, "bypass"};
///     auto effects = rule_effectiveness({r}, log);          // matched, followed, difference, 95% CI
///     auto conflicts = rule_conflicts(rules, log);          // pairs that can fire together
///     auto better = refine_threshold(r, 0, log, 0.0, 1.0);  // best cut of complexity for "bypass"
///
/// All estimates are observational: they compare the logged rewards of the rule's action with those of
/// the other actions taken where the rule's conditions hold, so they are unbiased only when, within that
/// region, the action taken did not depend on anything that also drives the reward (e.g. randomised or
/// bandit exploration; off-policy estimators with logged propensities are in select/ope.hpp).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/stats.hpp"

namespace promptlearn::optimize {

/// One test on a feature of a decision context. Numeric tests (lt, le, gt, ge; eq / ne with an empty
/// `value`) read `numbers[feature]` and compare it with `threshold`; eq / ne with a non-empty `value`
/// compare `strings[feature]` with `value`. A feature absent from the observation never satisfies a
/// condition (not even ne): a rule applies only where its features are known.
struct RuleCondition {
  enum class Op { lt, le, gt, ge, eq, ne };
  std::string feature;  ///< e.g. "complexity", "domain", "token_count"
  Op op = Op::lt;
  double threshold = 0;
  std::string value;    ///< for eq / ne on strings
};

/// A rule: when every condition holds, take `action` (e.g. "bypass", "template:T").
struct Rule {
  std::string name;
  std::vector<RuleCondition> conditions;
  std::string action;
};

/// One logged decision: its context features, the action taken and the reward it earned.
struct RuleObservation {
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> strings;
  std::string action_taken;
  double reward = 0;
};

/// How a rule did in the log. Where it applies (`matched` observations), the logged reward of its action
/// (`followed` of them) against that of the other actions: difference = mean_reward_followed -
/// mean_reward_not_followed with Welch's 95% interval. Means of an empty group are NaN; the interval is
/// (-inf, +inf) unless both groups have at least two observations.
struct RuleEffect {
  std::string rule;
  std::size_t matched = 0;
  std::size_t followed = 0;
  double mean_reward_followed = 0;
  double mean_reward_not_followed = 0;
  double difference = 0;
  double ci_low = 0, ci_high = 0;
};

/// Two rules that can fire on the same context with different actions.
struct RuleConflict {
  std::string a, b;                          ///< Rule names, a before b in the rule list.
  std::string reason;                        ///< The overlapping region and the two actions.
  std::size_t overlapping_observations = 0;  ///< Logged contexts that match both.
};

/// Result of `refine_threshold`.
struct RefinedThreshold {
  double threshold = 0;                ///< The best cut (the rule's own threshold when unsupported).
  double estimated_reward = 0;         ///< Mean logged reward of the rule's action where it applies.
  double baseline_reward = 0;          ///< Mean logged reward of the other actions there.
  std::size_t matched = 0;             ///< Observations the refined rule applies to.
  double gain = 0;                     ///< matched * (estimated - baseline): the maximised criterion.
  bool supported = false;              ///< False when no cut had min_support observations in both groups.
};

// ---------------------------------------------------------------------------------------------------
// Evaluation and validation
// ---------------------------------------------------------------------------------------------------

/// "<", "<=", ">", ">=", "==", "!=".
inline const char* op_symbol(RuleCondition::Op op) {
  switch (op) {
    case RuleCondition::Op::lt: return "<";
    case RuleCondition::Op::le: return "<=";
    case RuleCondition::Op::gt: return ">";
    case RuleCondition::Op::ge: return ">=";
    case RuleCondition::Op::eq: return "==";
    case RuleCondition::Op::ne: return "!=";
  }
  return "?";
}

/// True for a condition on a string feature (eq / ne with a non-empty value).
inline bool is_string_condition(const RuleCondition& c) {
  return (c.op == RuleCondition::Op::eq || c.op == RuleCondition::Op::ne) && !c.value.empty();
}

/// Whether the condition holds for the observation (false when the feature is absent).
inline bool holds(const RuleCondition& c, const RuleObservation& o) {
  if (is_string_condition(c)) {
    const auto it = o.strings.find(c.feature);
    if (it == o.strings.end()) return false;
    return c.op == RuleCondition::Op::eq ? it->second == c.value : it->second != c.value;
  }
  const auto it = o.numbers.find(c.feature);
  if (it == o.numbers.end()) return false;
  const double x = it->second;
  switch (c.op) {
    case RuleCondition::Op::lt: return x < c.threshold;
    case RuleCondition::Op::le: return x <= c.threshold;
    case RuleCondition::Op::gt: return x > c.threshold;
    case RuleCondition::Op::ge: return x >= c.threshold;
    case RuleCondition::Op::eq: return x == c.threshold;
    case RuleCondition::Op::ne: return x != c.threshold;
  }
  return false;
}

/// Whether every condition of the rule holds (a rule without conditions always applies).
inline bool matches(const Rule& r, const RuleObservation& o) {
  for (const auto& c : r.conditions)
    if (!holds(c, o)) return false;
  return true;
}

/// Checks a rule; `path` prefixes error paths (e.g. "rules[2]").
/// @throws ValidationError naming the field: empty name, action or feature, a non-finite threshold.
inline void validate_rule(const Rule& r, const std::string& path = "") {
  const std::string pre = path.empty() ? "" : path + ".";
  if (r.name.empty()) throw ValidationError(pre + "name", "is empty");
  if (r.action.empty()) throw ValidationError(pre + "action", "is empty");
  for (std::size_t i = 0; i < r.conditions.size(); ++i) {
    const auto& c = r.conditions[i];
    if (c.feature.empty()) throw ValidationError(fmt::format("{}conditions[{}].feature", pre, i), "is empty");
    if (!is_string_condition(c) && !std::isfinite(c.threshold))
      throw ValidationError(fmt::format("{}conditions[{}].threshold", pre, i), fmt::format("{} is not a finite number", c.threshold));
  }
}

namespace detail {
inline void check_rules(const std::vector<Rule>& rules) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    validate_rule(rules[i], fmt::format("rules[{}]", i));
    if (!names.insert(rules[i].name).second)
      throw ValidationError(fmt::format("rules[{}].name", i), fmt::format("'{}' is repeated", rules[i].name));
  }
}
inline void check_observations(const std::vector<RuleObservation>& obs) {
  for (std::size_t i = 0; i < obs.size(); ++i)
    if (!std::isfinite(obs[i].reward))
      throw ValidationError(fmt::format("observations[{}].reward", i), fmt::format("{} is not a finite number", obs[i].reward));
}

/// Welch's two-sample interval for mean(a) - mean(b) at level 0.95: se^2 = va/na + vb/nb,
/// Welch-Satterthwaite df = se^4 / ((va/na)^2/(na-1) + (vb/nb)^2/(nb-1)) (Welch 1947).
inline void welch_interval(const RunningMoments& a, const RunningMoments& b, double& lo, double& hi) {
  const double inf = std::numeric_limits<double>::infinity();
  lo = -inf;
  hi = inf;
  if (a.count() < 2 || b.count() < 2) return;
  const double diff = a.mean() - b.mean();
  const double qa = a.variance() / static_cast<double>(a.count()), qb = b.variance() / static_cast<double>(b.count());
  const double se2 = qa + qb;
  if (!(se2 > 0)) {
    lo = hi = diff;
    return;
  }
  const double df = se2 * se2 / (qa * qa / static_cast<double>(a.count() - 1) + qb * qb / static_cast<double>(b.count() - 1));
  const double half = student_t_quantile(0.975, df) * std::sqrt(se2);
  lo = diff - half;
  hi = diff + half;
}
}  // namespace detail

/// Effect of each rule in the log (see RuleEffect), in rule order.
/// @throws ValidationError for an invalid or repeated rule (`rules[1].name`) or a non-finite reward
///         (`observations[4].reward`).
inline std::vector<RuleEffect> rule_effectiveness(const std::vector<Rule>& rules, const std::vector<RuleObservation>& observations) {
  detail::check_rules(rules);
  detail::check_observations(observations);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<RuleEffect> out;
  for (const auto& r : rules) {
    RunningMoments f, nf;
    for (const auto& o : observations)
      if (matches(r, o)) (o.action_taken == r.action ? f : nf).add(o.reward);
    RuleEffect e;
    e.rule = r.name;
    e.matched = static_cast<std::size_t>(f.count() + nf.count());
    e.followed = static_cast<std::size_t>(f.count());
    e.mean_reward_followed = f.count() ? f.mean() : nan;
    e.mean_reward_not_followed = nf.count() ? nf.mean() : nan;
    e.difference = e.mean_reward_followed - e.mean_reward_not_followed;
    detail::welch_interval(f, nf, e.ci_low, e.ci_high);
    out.push_back(e);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Conflicts
// ---------------------------------------------------------------------------------------------------
namespace detail {

/// The set of values of one numeric feature allowed by a conjunction of conditions: an interval with
/// open or closed ends, minus finitely many points.
struct NumericRange {
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  bool lo_open = true, hi_open = true;
  std::set<double> excluded;

  void apply(RuleCondition::Op op, double t) {
    auto raise = [&](double v, bool open) {
      if (v > lo || (v == lo && open && !lo_open)) {
        lo = v;
        lo_open = open;
      }
    };
    auto lower = [&](double v, bool open) {
      if (v < hi || (v == hi && open && !hi_open)) {
        hi = v;
        hi_open = open;
      }
    };
    switch (op) {
      case RuleCondition::Op::lt: lower(t, true); break;
      case RuleCondition::Op::le: lower(t, false); break;
      case RuleCondition::Op::gt: raise(t, true); break;
      case RuleCondition::Op::ge: raise(t, false); break;
      case RuleCondition::Op::eq: raise(t, false); lower(t, false); break;
      case RuleCondition::Op::ne: excluded.insert(t); break;
    }
  }
  bool empty() const {
    if (lo > hi) return true;
    if (lo == hi) return lo_open || hi_open || excluded.count(lo) > 0;
    return false;  // a non-degenerate interval minus finitely many points is never empty
  }
  std::string describe(const std::string& f) const {
    std::string s;
    const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
    if (has_lo && has_hi && lo == hi) s = fmt::format("{} == {}", f, lo);
    else if (has_lo && has_hi) s = fmt::format("{} in {}{}, {}{}", f, lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
    else if (has_lo) s = fmt::format("{} {} {}", f, lo_open ? ">" : ">=", lo);
    else if (has_hi) s = fmt::format("{} {} {}", f, hi_open ? "<" : "<=", hi);
    for (double x : excluded)
      if (x >= lo && x <= hi) s += fmt::format("{}{} != {}", s.empty() ? "" : " and ", f, x);
    return s;
  }
};

/// The values of one string feature allowed by a conjunction: equal to every `eq`, none of `ne`.
struct StringRange {
  std::set<std::string> eq, ne;
  bool empty() const {
    if (eq.size() > 1) return true;
    return eq.size() == 1 && ne.count(*eq.begin()) > 0;
  }
  std::string describe(const std::string& f) const {
    if (!eq.empty()) return fmt::format("{} == {}", f, *eq.begin());
    return fmt::format("{} not in {{{}}}", f, fmt::join(ne, ", "));
  }
};

/// The region where every condition of a and b holds, or an empty optional-like flag when they exclude
/// each other; `region` receives its description ("always" when there are no conditions).
inline bool joint_region(const Rule& a, const Rule& b, std::string& region) {
  std::map<std::string, NumericRange> nums;
  std::map<std::string, StringRange> strs;
  for (const Rule* r : {&a, &b})
    for (const auto& c : r->conditions) {
      if (is_string_condition(c)) {
        auto& s = strs[c.feature];
        (c.op == RuleCondition::Op::eq ? s.eq : s.ne).insert(c.value);
      } else {
        nums[c.feature].apply(c.op, c.threshold);
      }
    }
  std::vector<std::string> parts;
  for (const auto& [f, range] : nums) {
    if (range.empty()) return false;
    parts.push_back(range.describe(f));
  }
  for (const auto& [f, range] : strs) {
    if (range.empty()) return false;
    parts.push_back(range.describe(f));
  }
  region = parts.empty() ? "always" : fmt::format("{}", fmt::join(parts, " and "));
  return true;
}

}  // namespace detail

/// Pairs of rules with different actions whose conditions can hold together, found analytically: per
/// numeric feature the conjunction of both rules' conditions is an interval (open or closed ends) minus
/// excluded points, per string feature a set of allowed values; the rules conflict unless some feature's
/// set is empty. A rule that contradicts itself never conflicts. Numeric and string conditions on the same
/// feature name are independent (they read different maps). Each conflict counts the logged contexts that
/// match both rules. Pairs in rule-list order.
/// @throws ValidationError for an invalid or repeated rule or a non-finite reward.
inline std::vector<RuleConflict> rule_conflicts(const std::vector<Rule>& rules, const std::vector<RuleObservation>& observations = {}) {
  detail::check_rules(rules);
  detail::check_observations(observations);
  std::vector<RuleConflict> out;
  for (std::size_t i = 0; i < rules.size(); ++i)
    for (std::size_t j = i + 1; j < rules.size(); ++j) {
      const Rule &a = rules[i], &b = rules[j];
      if (a.action == b.action) continue;
      std::string region;
      if (!detail::joint_region(a, b, region)) continue;
      RuleConflict c;
      c.a = a.name;
      c.b = b.name;
      c.reason = fmt::format("both apply when {}, with different actions '{}' and '{}'", region, a.action, b.action);
      for (const auto& o : observations) c.overlapping_observations += matches(a, o) && matches(b, o) ? 1 : 0;
      out.push_back(std::move(c));
    }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Threshold refinement
// ---------------------------------------------------------------------------------------------------

/// The threshold of condition `condition_index` (lt, le, gt or ge) in [low, high] that maximises the
/// estimated gain of following the rule where it applies:
///   gain(t) = matched(t) * (mean reward of the rule's action - mean reward of the other actions),
/// both means over the logged observations the rule with threshold t applies to (the other conditions
/// fixed): the estimated total reward gained by always taking the rule's action there rather than the
/// others. A cut that applies the rule where its action does worse lowers the gain, one that leaves out
/// where it does better forgoes gain, so the maximiser sits where the action stops paying.
///
/// Exact scan: the matched set changes only at observed values, so the candidates are `low`, `high` and
/// the midpoints between consecutive distinct observed values inside [low, high]; each is evaluated with
/// prefix sums after one sort, O(n log n). A candidate counts only if both groups (followed, not
/// followed) have at least `min_support` observations; ties keep the smaller threshold. One threshold is
/// exact by this scan; several thresholds can be refined in turn (coordinate ascent) or jointly with
/// evolve_real.
/// @throws ConfigError (`refine_threshold.condition_index`, `.low`, `.min_support`) for an index out of
///         range, a condition that is not lt / le / gt / ge, low > high or non-finite bounds, or
///         min_support < 1; ValidationError for an invalid rule or a non-finite reward.
inline RefinedThreshold refine_threshold(const Rule& rule, std::size_t condition_index, const std::vector<RuleObservation>& observations,
                                         double low, double high, std::size_t min_support = 10) {
  validate_rule(rule);
  detail::check_observations(observations);
  if (condition_index >= rule.conditions.size())
    throw ConfigError("refine_threshold.condition_index",
                      fmt::format("{} is out of range, rule '{}' has {} conditions", condition_index, rule.name, rule.conditions.size()));
  const RuleCondition& cond = rule.conditions[condition_index];
  using Op = RuleCondition::Op;
  if (!(cond.op == Op::lt || cond.op == Op::le || cond.op == Op::gt || cond.op == Op::ge))
    throw ConfigError("refine_threshold.condition_index",
                      fmt::format("condition {} ({} {}) is not an inequality (<, <=, >, >=)", condition_index, cond.feature, op_symbol(cond.op)));
  if (!std::isfinite(low) || !std::isfinite(high) || low > high)
    throw ConfigError("refine_threshold.low", fmt::format("[{}, {}] is not a finite interval with low <= high", low, high));
  if (min_support < 1) throw ConfigError("refine_threshold.min_support", "is 0, expected at least 1");

  // Observations where the other conditions hold and the feature is known, sorted by the feature.
  struct Row {
    double x;
    bool followed;
    double reward;
  };
  std::vector<Row> rows;
  for (const auto& o : observations) {
    bool others = true;
    for (std::size_t k = 0; k < rule.conditions.size() && others; ++k)
      if (k != condition_index) others = holds(rule.conditions[k], o);
    const auto it = o.numbers.find(cond.feature);
    if (!others || it == o.numbers.end()) continue;
    rows.push_back({it->second, o.action_taken == rule.action, o.reward});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.x < b.x; });
  const std::size_t n = rows.size();
  // prefix[i] = sums over rows[0, i)
  std::vector<std::size_t> nf(n + 1, 0), nn(n + 1, 0);
  std::vector<double> sf(n + 1, 0.0), sn(n + 1, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    nf[i + 1] = nf[i] + (rows[i].followed ? 1 : 0);
    nn[i + 1] = nn[i] + (rows[i].followed ? 0 : 1);
    sf[i + 1] = sf[i] + (rows[i].followed ? rows[i].reward : 0.0);
    sn[i + 1] = sn[i] + (rows[i].followed ? 0.0 : rows[i].reward);
  }
  auto evaluate = [&](double t, RefinedThreshold& r) {
    // The matched rows form a prefix (lt, le) or a suffix (gt, ge) of the sorted rows.
    const auto cut_lt = static_cast<std::size_t>(std::lower_bound(rows.begin(), rows.end(), t, [](const Row& a, double v) { return a.x < v; }) - rows.begin());
    const auto cut_le = static_cast<std::size_t>(std::upper_bound(rows.begin(), rows.end(), t, [](double v, const Row& a) { return v < a.x; }) - rows.begin());
    std::size_t b = 0, e = n;
    switch (cond.op) {
      case Op::lt: e = cut_lt; break;
      case Op::le: e = cut_le; break;
      case Op::gt: b = cut_le; break;
      default: b = cut_lt; break;  // ge
    }
    const std::size_t kf = nf[e] - nf[b], kn = nn[e] - nn[b];
    r.threshold = t;
    r.matched = kf + kn;
    r.estimated_reward = kf ? (sf[e] - sf[b]) / static_cast<double>(kf) : std::numeric_limits<double>::quiet_NaN();
    r.baseline_reward = kn ? (sn[e] - sn[b]) / static_cast<double>(kn) : std::numeric_limits<double>::quiet_NaN();
    r.gain = static_cast<double>(r.matched) * (r.estimated_reward - r.baseline_reward);
    r.supported = kf >= min_support && kn >= min_support;
  };
  std::vector<double> candidates{low, high};
  for (std::size_t i = 1; i < n; ++i)
    if (rows[i].x > rows[i - 1].x) {
      const double mid = rows[i - 1].x + (rows[i].x - rows[i - 1].x) / 2;
      if (mid >= low && mid <= high) candidates.push_back(mid);
    }
  std::sort(candidates.begin(), candidates.end());
  RefinedThreshold best;
  bool found = false;
  for (double t : candidates) {
    RefinedThreshold r;
    evaluate(t, r);
    if (r.supported && (!found || r.gain > best.gain)) {
      best = r;
      found = true;
    }
  }
  if (!found) {
    evaluate(cond.threshold, best);
    best.supported = false;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------------

/// {"name", "conditions": [{"feature", "op": "<", "threshold": 0.2} or {"feature", "op": "==", "value":
/// "code"}], "action"}; doubles round-trip exactly.
inline nlohmann::json to_json(const Rule& r) {
  nlohmann::json conds = nlohmann::json::array();
  for (const auto& c : r.conditions) {
    nlohmann::json j{{"feature", c.feature}, {"op", op_symbol(c.op)}};
    if (is_string_condition(c)) j["value"] = c.value;
    else j["threshold"] = c.threshold;
    conds.push_back(std::move(j));
  }
  return nlohmann::json{{"name", r.name}, {"conditions", conds}, {"action", r.action}};
}

/// Reads a rule written by to_json(const Rule&); "op" may also be spelled lt, le, gt, ge, eq, ne.
/// @throws ValidationError naming the field (`conditions[0].op: "~" is not one of <, <=, >, >=, ==, !=`).
inline Rule rule_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ValidationError("", fmt::format("expected an object, got {}", j.dump()));
  auto string_field = [](const nlohmann::json& o, const std::string& key, const std::string& path) {
    if (!o.contains(key) || !o.at(key).is_string())
      throw ValidationError(path, fmt::format("expected a string, got {}", o.contains(key) ? o.at(key).dump() : "nothing"));
    return o.at(key).get<std::string>();
  };
  Rule r;
  r.name = string_field(j, "name", "name");
  r.action = string_field(j, "action", "action");
  if (!j.contains("conditions") || !j.at("conditions").is_array()) throw ValidationError("conditions", "missing or not an array");
  const auto& arr = j.at("conditions");
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const auto& e = arr[i];
    const std::string p = fmt::format("conditions[{}]", i);
    if (!e.is_object()) throw ValidationError(p, fmt::format("expected an object, got {}", e.dump()));
    RuleCondition c;
    c.feature = string_field(e, "feature", p + ".feature");
    const std::string op = string_field(e, "op", p + ".op");
    static const std::map<std::string, RuleCondition::Op> kOps{
        {"<", RuleCondition::Op::lt},  {"<=", RuleCondition::Op::le}, {">", RuleCondition::Op::gt},
        {">=", RuleCondition::Op::ge}, {"==", RuleCondition::Op::eq}, {"!=", RuleCondition::Op::ne},
        {"lt", RuleCondition::Op::lt}, {"le", RuleCondition::Op::le}, {"gt", RuleCondition::Op::gt},
        {"ge", RuleCondition::Op::ge}, {"eq", RuleCondition::Op::eq}, {"ne", RuleCondition::Op::ne}};
    const auto it = kOps.find(op);
    if (it == kOps.end()) throw ValidationError(p + ".op", fmt::format("\"{}\" is not one of <, <=, >, >=, ==, !=", op));
    c.op = it->second;
    if (e.contains("value")) {
      c.value = string_field(e, "value", p + ".value");
      if (c.op != RuleCondition::Op::eq && c.op != RuleCondition::Op::ne)
        throw ValidationError(p + ".value", fmt::format("strings compare only with == and !=, got {}", op));
      if (c.value.empty()) throw ValidationError(p + ".value", "is empty");
    } else {
      if (!e.contains("threshold") || !e.at("threshold").is_number())
        throw ValidationError(p + ".threshold", fmt::format("expected a number, got {}", e.contains("threshold") ? e.at("threshold").dump() : "nothing"));
      c.threshold = e.at("threshold").get<double>();
    }
    r.conditions.push_back(std::move(c));
  }
  validate_rule(r);
  return r;
}

}  // namespace promptlearn::optimize
