// End to end: template evolution through the engine (lifecycle/evolution.hpp): templates with genomes
// earn logged rewards, the section reward model learns which section variants help, and the genetic
// algorithm recombines them into a template none of the seeds was; it enters the selector with its lineage.
#include <catch2/catch.hpp>

#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "promptlearn/core/time.hpp"
#include "promptlearn/lifecycle/evolution.hpp"
#include "promptlearn/lifecycle/template_analytics.hpp"
#include "promptlearn/optimize/pareto.hpp"
#include "../src/cli/simulator.hpp"
#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using namespace promptlearn;
using nlohmann::json;

namespace {

const TimeMs kStart = *try_parse_rfc3339("2026-01-05T00:00:00Z");

optimize::GenomeSpace space() {
  optimize::GenomeSpace s;
  s.max_sections = 3;
  const char* kinds[3] = {"role", "task", "format"};
  for (const char* k : kinds) {
    optimize::SectionKind sk;
    sk.kind = k;
    sk.required = true;
    for (int v = 0; v < 3; ++v) sk.variants.push_back({fmt::format("{}{}", k, v), fmt::format("[{} variant {}]", k, v)});
    s.kinds.push_back(sk);
  }
  return s;
}

optimize::TemplateGenome genome(int role, int task, int format) {
  optimize::TemplateGenome g;
  g.sections = {{"role", static_cast<std::size_t>(role), {}},
                {"task", static_cast<std::size_t>(task), {}},
                {"format", static_cast<std::size_t>(format), {}}};
  return g;
}

/// The hidden truth: role 1 (+2), task 2 (+2) and format 0 (+1) help; the best genome is (1, 2, 0).
double true_quality(const optimize::TemplateGenome& g) {
  double q = 4;
  for (const auto& s : g.sections) {
    if (s.kind == "role" && s.variant == 1) q += 2;
    if (s.kind == "task" && s.variant == 2) q += 2;
    if (s.kind == "format" && s.variant == 0) q += 1;
  }
  return q;
}

}  // namespace

TEST_CASE("evolution recombines logged section rewards into a better template with its lineage", "[e2e][evolution]") {
  test::TempDir dir;
  const std::string db = dir.file("evo.db");
  ManualClock clock(kStart);
  EngineOptions eo;
  eo.clock = &clock;
  Config cfg = Config::defaults();
  cfg.learning.data_collection.synchronous_commit = SynchronousCommit::normal;
  LearningEngine engine(db, cfg, eo);
  const optimize::GenomeSpace sp = space();
  // Eight seeds covering every variant, none of them the optimum (1, 2, 0).
  const int seeds[8][3] = {{0, 0, 0}, {1, 0, 1}, {0, 2, 1}, {2, 1, 0}, {1, 1, 2}, {2, 2, 2}, {0, 1, 1}, {2, 0, 2}};
  std::map<std::string, optimize::TemplateGenome> by_id;
  for (int i = 0; i < 8; ++i) {
    const auto g = genome(seeds[i][0], seeds[i][1], seeds[i][2]);
    const std::string id = fmt::format("seed{}", i);
    engine.register_template(id, "1", optimize::render(g, sp), "", "",
                             json{{"genome", optimize::to_json(g)}}.dump());
    by_id[id] = g;
  }
  CHECK_THROWS_AS(engine.register_template("bad", "1", "body", "", "", "[1]"), ValidationError);
  // Logged traffic: the selector's choices, outcomes drawn around each genome's true quality.
  Rng rng(4);
  for (int i = 0; i < 2000; ++i) {
    clock.set(kStart + i * 60000);
    const std::string id = test::uuid_for(static_cast<std::uint64_t>(i), 77);
    const json doc = test::interaction_doc(id, "Write a function that parses the config file");
    REQUIRE(engine.record(doc).accepted);
    const Decision d = engine.select_template(doc);
    const double q = std::clamp(rng.normal(true_quality(by_id.at(d.chosen.template_id)), 1.0), 0.0, 10.0);
    json outcome = {{"interaction_id", id}};
    outcome["outcome_data"]["response_quality_score"] = q;
    outcome["outcome_data"]["user_satisfaction_rating"] = std::clamp(1.0 + 0.9 * q, 1.0, 10.0);
    outcome["outcome_data"]["feedback_data"]["implicit_feedback"]["acceptance_rate"] = q / 10;
    REQUIRE(engine.record(outcome).accepted);
  }
  engine.run_due_jobs(clock.now_ms() + 1000);  // learn: rewards set on the decisions
  const optimize::SectionRewardModel model = section_reward_model(engine, sp);
  REQUIRE(model.count() > 1500);
  // The model ranks the unseen optimum above every seed.
  const double best = model.predict(genome(1, 2, 0));
  for (const auto& s : seeds) CHECK(best > model.predict(genome(s[0], s[1], s[2])));

  EvolutionOptions o;
  o.candidates = 2;
  o.genetic.generations = 30;
  const auto added = evolve_templates(engine, sp, model.as_fitness(), o);
  REQUIRE(added.size() == 2);
  bool optimum = false;
  store::Store st(db);
  for (const auto& e : added) {
    std::cout << "evolution e2e: registered " << e.template_id << " " << e.genome_key << " fitness " << e.fitness
              << " generation " << e.generation << "\n";
    optimum = optimum || (e.genome_key.find("role:1") != std::string::npos && e.genome_key.find("task:2") != std::string::npos &&
                          e.genome_key.find("format:0") != std::string::npos);
    // A new action at once, with its genome and lineage stored.
    bool listed = false;
    for (const auto& t : engine.policy().templates()) listed = listed || t == e.template_id + "@1";
    CHECK(listed);
    bool found = false;
    for (const auto& t : st.templates("active"))
      if (t.template_id == e.template_id) {
        found = true;
        const json m = json::parse(t.metadata);
        CHECK(m["genome_key"] == e.genome_key);
        CHECK(m["parents"] == e.parents);
        CHECK(optimize::genome_key(optimize::genome_from_json(m["genome"], sp)) == e.genome_key);
        CHECK(t.body == optimize::render(optimize::genome_from_json(m["genome"], sp), sp));
      }
    CHECK(found);
  }
  CHECK(optimum);
  // Evolving again does not register the same genomes twice.
  const auto again = evolve_templates(engine, sp, model.as_fitness(), o);
  for (const auto& e : again)
    for (const auto& a : added) CHECK(e.genome_key != a.genome_key);
}

TEST_CASE("template trade-offs and rule observations come from the logs", "[e2e][evolution][pareto][rules]") {
  test::TempDir dir;
  const std::string db = dir.file("logs.db");
  ManualClock clock(kStart);
  EngineOptions eo;
  eo.clock = &clock;
  Config cfg = Config::defaults();
  cfg.learning.data_collection.synchronous_commit = SynchronousCommit::normal;
  cfg.learning.data_collection.mode = CollectionMode::buffered;
  LearningEngine engine(db, cfg, eo);
  sim::HostSimulator host(12, 20);
  for (int i = 0; i < 1500; ++i) {
    auto s = host.next(kStart + i * 60000);
    REQUIRE(engine.record(s.interaction).accepted);
    REQUIRE(engine.record(s.performance).accepted);
    REQUIRE(engine.record(s.outcome).accepted);
  }
  const auto t = template_pareto(engine, 20);
  REQUIRE(t.size() >= 3);
  auto objectives = [](const TemplateTradeoff& x) {
    return std::vector<double>{-x.mean_quality, x.mean_latency_ms, x.mean_prompt_length};
  };
  for (const auto& a : t) {
    CHECK(a.interactions >= 20);
    CHECK_FALSE(std::isnan(a.mean_latency_ms));
    bool dominated = false;
    for (const auto& b : t) dominated = dominated || optimize::dominates(objectives(b), objectives(a));
    // Front 0 is exactly the set of templates no other template dominates.
    CHECK((a.front == 0) == !dominated);
    if (a.front > 0) {
      bool by_better_front = false;
      for (const auto& b : t) by_better_front = by_better_front || (b.front == a.front - 1 && optimize::dominates(objectives(b), objectives(a)));
      CHECK(by_better_front);
    }
  }
  // Rule observations: one per interaction with a quality; a rule's effect agrees with a hand count.
  const auto obs = rule_observations(engine);
  store::Store st(db);
  CHECK(static_cast<std::int64_t>(obs.size()) ==
        st.db().query_int("SELECT count(*) FROM outcomes WHERE response_quality_score IS NOT NULL"));
  const std::string top = t.front().template_id;
  optimize::Rule rule;
  rule.name = "complex prompts get the top template";
  rule.conditions = {{"complexity", optimize::RuleCondition::Op::ge, 6.0, ""}};
  rule.action = "template:" + top;
  const auto effect = optimize::rule_effectiveness({rule}, obs).at(0);
  std::size_t matched = 0, followed = 0;
  double sum_followed = 0;
  for (const auto& o : obs) {
    const auto it = o.numbers.find("complexity");
    if (it == o.numbers.end() || it->second < 6.0) continue;
    ++matched;
    if (o.action_taken == rule.action) ++followed, sum_followed += o.reward;
  }
  CHECK(effect.matched == matched);
  CHECK(effect.followed == followed);
  if (followed > 0) CHECK(effect.mean_reward_followed == Approx(sum_followed / static_cast<double>(followed)));
}
