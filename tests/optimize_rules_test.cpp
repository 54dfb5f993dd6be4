#include <catch2/catch.hpp>

#include <cmath>

#include "promptlearn/core/rng.hpp"
#include "promptlearn/optimize/rules.hpp"

using namespace promptlearn;
using namespace promptlearn::optimize;
using Op = RuleCondition::Op;

namespace {

RuleObservation obs(double complexity, const std::string& action, double reward, const std::string& domain = "") {
  RuleObservation o;
  o.numbers["complexity"] = complexity;
  if (!domain.empty()) o.strings["domain"] = domain;
  o.action_taken = action;
  o.reward = reward;
  return o;
}

// Uniform in [0, 1) from raw bits (identical across standard libraries).
double u01(Rng& rng) { return static_cast<double>(rng.next_u64() >> 11) * 0x1.0p-53; }

}  // namespace

TEST_CASE("conditions and matching", "[optimize][rules]") {
  RuleObservation o = obs(0.3, "bypass", 1, "code");
  CHECK(holds({"complexity", Op::lt, 0.4, ""}, o));
  CHECK_FALSE(holds({"complexity", Op::lt, 0.3, ""}, o));
  CHECK(holds({"complexity", Op::le, 0.3, ""}, o));
  CHECK(holds({"complexity", Op::ge, 0.3, ""}, o));
  CHECK_FALSE(holds({"complexity", Op::gt, 0.3, ""}, o));
  CHECK(holds({"complexity", Op::eq, 0.3, ""}, o));
  CHECK(holds({"complexity", Op::ne, 0.5, ""}, o));
  CHECK(holds({"domain", Op::eq, 0, "code"}, o));
  CHECK_FALSE(holds({"domain", Op::ne, 0, "code"}, o));
  // absent features never hold, not even !=
  CHECK_FALSE(holds({"token_count", Op::ne, 5, ""}, o));
  CHECK_FALSE(holds({"language", Op::ne, 0, "fr"}, o));
  Rule r{"r", {{"complexity", Op::lt, 0.5, ""}, {"domain", Op::eq, 0, "code"}}, "bypass"};
  CHECK(matches(r, o));
  CHECK_FALSE(matches(r, obs(0.3, "bypass", 1, "writing")));
  CHECK(matches(Rule{"any", {}, "x"}, o));
}

TEST_CASE("rule effectiveness against a hand-computed log", "[optimize][rules]") {
  Rule r{"simple_bypass", {{"complexity", Op::lt, 0.3, ""}}, "bypass"};
  std::vector<RuleObservation> log{
      obs(0.10, "bypass", 0.9),      obs(0.20, "bypass", 0.7),  obs(0.29, "bypass", 0.8),   // matched, followed
      obs(0.25, "template:A", 0.4),  obs(0.05, "template:A", 0.6), obs(0.15, "template:B", 0.5),  // matched, not followed
      obs(0.50, "bypass", 0.1),      obs(0.30, "bypass", 0.95),                               // not matched (0.3 is not < 0.3)
  };
  RuleObservation no_feature;
  no_feature.strings["domain"] = "code";
  no_feature.action_taken = "bypass";
  no_feature.reward = 0.0;
  log.push_back(no_feature);
  Rule never{"never", {{"complexity", Op::gt, 5, ""}}, "bypass"};
  const auto e = rule_effectiveness({r, never}, log);
  REQUIRE(e.size() == 2);
  CHECK(e[0].rule == "simple_bypass");
  CHECK(e[0].matched == 6);
  CHECK(e[0].followed == 3);
  CHECK(e[0].mean_reward_followed == Approx(0.8));
  CHECK(e[0].mean_reward_not_followed == Approx(0.5));
  CHECK(e[0].difference == Approx(0.3));
  // Both groups: n = 3, variance 0.01, so se = sqrt(2 * 0.01 / 3) and Welch's df = 2 (n - 1) = 4;
  // t(0.975, 4) = 2.7764451 (tables): half width 0.2266962.
  CHECK(e[0].ci_low == Approx(0.3 - 0.2266962).margin(1e-6));
  CHECK(e[0].ci_high == Approx(0.3 + 0.2266962).margin(1e-6));
  // Unequal groups tell Welch from the pooled t test: followed {0.9, 0.7} (variance 0.02), not followed
  // {0.5, 0.5, 0.5} (variance 0): se = sqrt(0.02 / 2) = 0.1 and Welch's df = n_followed - 1 = 1, so the
  // half width is t(0.975, 1) * 0.1 = 12.7062047 * 0.1 (the pooled test would give df 3 and +-0.237).
  std::vector<RuleObservation> uneven{obs(0.1, "bypass", 0.9), obs(0.2, "bypass", 0.7), obs(0.1, "A", 0.5),
                                      obs(0.2, "A", 0.5), obs(0.25, "B", 0.5)};
  const auto w = rule_effectiveness({r}, uneven);
  CHECK(w[0].difference == Approx(0.3));
  CHECK(w[0].ci_low == Approx(0.3 - 1.27062047).margin(1e-6));
  CHECK(w[0].ci_high == Approx(0.3 + 1.27062047).margin(1e-6));
  CHECK(e[1].matched == 0);
  CHECK(std::isnan(e[1].mean_reward_followed));
  CHECK(std::isinf(e[1].ci_low));
  CHECK(std::isinf(e[1].ci_high));
  // errors name the field
  auto bad = log;
  bad[2].reward = std::nan("");
  try {
    rule_effectiveness({r}, bad);
    FAIL("expected ValidationError");
  } catch (const ValidationError& ex) {
    CHECK(ex.path() == "observations[2].reward");
  }
  try {
    rule_effectiveness({r, r}, log);
    FAIL("expected ValidationError");
  } catch (const ValidationError& ex) {
    CHECK(ex.path() == "rules[1].name");
  }
}

TEST_CASE("conflicts detected and not detected on hand cases", "[optimize][rules]") {
  const Rule low{"low_bypass", {{"complexity", Op::lt, 0.3, ""}}, "bypass"};
  const Rule high{"high_T", {{"complexity", Op::ge, 0.3, ""}}, "template:T"};
  const Rule code{"code_T", {{"complexity", Op::ge, 0.2, ""}, {"domain", Op::eq, 0, "code"}}, "template:T"};
  const Rule upto{"upto_T", {{"complexity", Op::le, 0.3, ""}}, "template:T"};
  const Rule from_excl{"from_excl", {{"complexity", Op::ge, 0.3, ""}, {"complexity", Op::ne, 0.3, ""}}, "bypass"};
  const Rule from_incl{"from_incl", {{"complexity", Op::ge, 0.3, ""}}, "bypass"};
  const Rule writing{"writing_U", {{"domain", Op::eq, 0, "writing"}}, "template:U"};
  const Rule not_code{"not_code_V", {{"domain", Op::ne, 0, "code"}}, "template:V"};
  const Rule also_bypass{"also_bypass", {{"complexity", Op::lt, 0.5, ""}}, "bypass"};
  const Rule self_contradiction{"empty", {{"complexity", Op::lt, 0.1, ""}, {"complexity", Op::gt, 0.2, ""}}, "template:W"};

  auto pair = [](const Rule& a, const Rule& b) { return rule_conflicts({a, b}); };
  CHECK(pair(low, high).empty());           // [0.3 touches but < 0.3 excludes it
  auto c = pair(low, code);                 // overlap: complexity in [0.2, 0.3) and domain == code
  REQUIRE(c.size() == 1);
  CHECK(c[0].a == "low_bypass");
  CHECK(c[0].b == "code_T");
  CHECK(c[0].reason == "both apply when complexity in [0.2, 0.3) and domain == code, with different actions 'bypass' and 'template:T'");
  auto point = pair(upto, from_incl);       // overlap is the single point 0.3
  REQUIRE(point.size() == 1);
  CHECK(point[0].reason.find("complexity == 0.3") != std::string::npos);
  CHECK(pair(upto, from_excl).empty());     // ... unless 0.3 is excluded
  CHECK(pair(code, writing).empty());       // different actions, but domain cannot be both
  CHECK(pair(code, not_code).empty());
  CHECK(pair(writing, not_code).size() == 1);
  CHECK(pair(low, also_bypass).empty());    // same action: no conflict
  CHECK(pair(self_contradiction, low).empty());
  CHECK(pair(low, writing).size() == 1);    // independent features: both can hold

  // Counting on data.
  std::vector<RuleObservation> log{obs(0.25, "bypass", 1, "code"), obs(0.25, "bypass", 1, "writing"),
                                   obs(0.1, "bypass", 1, "code"), obs(0.22, "x", 0, "code")};
  const auto all = rule_conflicts({low, code, writing}, log);
  REQUIRE(all.size() == 2);  // low-code, low-writing (code and writing exclude each other)
  CHECK(all[0].b == "code_T");
  CHECK(all[0].overlapping_observations == 2);  // 0.25 code and 0.22 code
  CHECK(all[1].b == "writing_U");
  CHECK(all[1].overlapping_observations == 1);
}

TEST_CASE("refine_threshold recovers a planted threshold", "[optimize][rules]") {
  // Complexity ~ U[0, 1); actions logged uniformly at random; "bypass" earns 0.8 below 0.35 and 0.2
  // above, "template:A" earns 0.5 everywhere; Gaussian-free noise: uniform +-0.1.
  // The gain of "bypass when complexity < t" rises by 0.3 per matched observation below 0.35 and falls
  // by 0.3 above, while the noise moves a partial sum of k observations by about 0.3 sqrt(k); with 4000
  // observations (one per 0.00025 of complexity) the maximiser lands within a few dozen observations of
  // 0.35, far inside 0.02.
  Rng rng(11);
  std::vector<RuleObservation> log;
  for (int i = 0; i < 4000; ++i) {
    const double c = u01(rng);
    const bool bypass = u01(rng) < 0.5;
    const double noise = 0.2 * u01(rng) - 0.1;
    const double reward = bypass ? (c < 0.35 ? 0.8 : 0.2) + noise : 0.5 + noise;
    log.push_back(obs(c, bypass ? "bypass" : "template:A", reward, i % 2 ? "code" : "writing"));
  }
  Rule r{"bypass_simple", {{"complexity", Op::lt, 0.9, ""}}, "bypass"};
  const auto best = refine_threshold(r, 0, log, 0.0, 1.0);
  CHECK(best.supported);
  CHECK(best.threshold == Approx(0.35).margin(0.02));
  CHECK(best.estimated_reward == Approx(0.8).margin(0.02));
  CHECK(best.baseline_reward == Approx(0.5).margin(0.02));
  CHECK(best.matched == Approx(0.35 * 4000).margin(0.03 * 4000));
  CHECK(best.gain == Approx(best.matched * (best.estimated_reward - best.baseline_reward)));
  // The refined rule beats the original threshold on the log.
  Rule refined = r;
  refined.name = "bypass_refined";
  refined.conditions[0].threshold = best.threshold;
  const auto eff = rule_effectiveness({r, refined}, log);
  CHECK(eff[1].difference > eff[0].difference);
  CHECK(eff[1].ci_low > 0);

  // Mirror: "template:A when complexity >= t" planted at the same cut; with le/ge the same answer.
  Rule mirror{"A_complex", {{"complexity", Op::ge, 0.1, ""}}, "template:A"};
  const auto m = refine_threshold(mirror, 0, log, 0.0, 1.0);
  CHECK(m.threshold == Approx(0.35).margin(0.02));
  // Another condition restricts the rows: only "code" observations, same planted cut.
  Rule coded{"bypass_code", {{"domain", Op::eq, 0, "code"}, {"complexity", Op::le, 0.9, ""}}, "bypass"};
  const auto cd = refine_threshold(coded, 1, log, 0.0, 1.0);
  CHECK(cd.threshold == Approx(0.35).margin(0.03));
  CHECK(cd.matched < 0.4 * 2000);
  // Bounds restrict the scan: in [0.5, 1] the best is the smallest cut (least harm).
  const auto bounded = refine_threshold(r, 0, log, 0.5, 1.0);
  CHECK(bounded.threshold == Approx(0.5).margin(0.002));
  // Too little support: the rule's own threshold, flagged unsupported.
  std::vector<RuleObservation> tiny(log.begin(), log.begin() + 15);
  const auto unsupported = refine_threshold(r, 0, tiny, 0.0, 1.0, 10);
  CHECK_FALSE(unsupported.supported);
  CHECK(unsupported.threshold == 0.9);
  // Errors
  auto key_of = [&](std::size_t idx, double lo, double hi, std::size_t support) {
    try {
      refine_threshold(coded, idx, log, lo, hi, support);
    } catch (const ConfigError& e) {
      return e.key();
    }
    return std::string("no error");
  };
  CHECK(key_of(0, 0, 1, 10) == "refine_threshold.condition_index");  // string condition
  CHECK(key_of(2, 0, 1, 10) == "refine_threshold.condition_index");
  CHECK(key_of(1, 1, 0, 10) == "refine_threshold.low");
  CHECK(key_of(1, 0, 1, 0) == "refine_threshold.min_support");
}

TEST_CASE("rule JSON round trip and errors naming the field", "[optimize][rules]") {
  Rule r{"code_T", {{"complexity", Op::ge, 0.1 + 0.2, ""}, {"domain", Op::eq, 0, "code"}, {"token_count", Op::ne, 12, ""}}, "template:T"};
  const auto j = to_json(r);
  CHECK(j["conditions"][0]["op"] == ">=");
  CHECK(j["conditions"][1]["value"] == "code");
  CHECK_FALSE(j["conditions"][1].contains("threshold"));
  const Rule back = rule_from_json(nlohmann::json::parse(j.dump()));
  CHECK(back.name == r.name);
  CHECK(back.action == r.action);
  REQUIRE(back.conditions.size() == 3);
  CHECK(back.conditions[0].threshold == r.conditions[0].threshold);  // exact
  CHECK(back.conditions[0].op == Op::ge);
  CHECK(back.conditions[1].value == "code");
  CHECK(back.conditions[2].op == Op::ne);
  CHECK(to_json(back) == j);
  auto alt = j;
  alt["conditions"][0]["op"] = "lt";
  CHECK(rule_from_json(alt).conditions[0].op == Op::lt);

  auto path_of = [](const nlohmann::json& doc) {
    try {
      rule_from_json(doc);
    } catch (const ValidationError& e) {
      return e.path();
    }
    return std::string("no error");
  };
  auto bad = j;
  bad["conditions"][0]["op"] = "~";
  CHECK(path_of(bad) == "conditions[0].op");
  bad = j;
  bad["conditions"][0].erase("threshold");
  CHECK(path_of(bad) == "conditions[0].threshold");
  bad = j;
  bad["conditions"][1]["op"] = "<";
  CHECK(path_of(bad) == "conditions[1].value");
  bad = j;
  bad["conditions"][2]["feature"] = "";
  CHECK(path_of(bad) == "conditions[2].feature");
  bad = j;
  bad["name"] = 3;
  CHECK(path_of(bad) == "name");
  bad = j;
  bad.erase("action");
  CHECK(path_of(bad) == "action");
  bad = j;
  bad["conditions"] = "x";
  CHECK(path_of(bad) == "conditions");
}
