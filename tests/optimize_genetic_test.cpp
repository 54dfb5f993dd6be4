#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include "promptlearn/optimize/genetic.hpp"

using namespace promptlearn;
using namespace promptlearn::optimize;

namespace {

// A separable toy space: each kind's variant scores are known, so the optimum is known.
// role (required, best variant 2), context (optional, best 0, helps), task (required, best 3, one
// parameter whose best value is 0.7), constraints (optional, best 1), examples (optional, every variant
// hurts: the optimum omits it), format (optional, best 3).
struct ToySpace {
  GenomeSpace space;
  std::map<std::string, std::vector<double>> score;
  ToySpace() {
    auto kind = [&](const std::string& name, std::vector<double> s, bool required, bool param = false) {
      SectionKind k;
      k.kind = name;
      k.required = required;
      for (std::size_t v = 0; v < s.size(); ++v) k.variants.push_back({name + "_v" + std::to_string(v), name + " text " + std::to_string(v)});
      if (param) {
        k.parameter_bounds = {{0.0, 1.0}};
        k.variants[0].text = "Use temperature {0}.";
      }
      space.kinds.push_back(k);
      score[name] = std::move(s);
    };
    kind("role", {0.1, 0.3, 1.0, 0.2}, true);
    kind("context", {0.8, 0.2, 0.5}, false);
    kind("task", {0.1, 0.2, 0.3, 1.2, 0.4}, true, true);
    kind("constraints", {0.0, 0.6, 0.3, -0.2}, false);
    kind("examples", {-0.5, -0.1, -0.3}, false);
    kind("format", {0.1, 0.2, 0.3, 0.9}, false);
  }
  double fitness(const TemplateGenome& g) const {
    double f = 0;
    for (const auto& s : g.sections) {
      f += score.at(s.kind)[s.variant];
      if (s.kind == "task") f -= std::fabs(s.parameters[0] - 0.7);
    }
    return f;
  }
  static constexpr double kOptimum = 1.0 + 0.8 + 1.2 + 0.6 + 0.9;
  // best discrete choice: every kind at its best variant, examples absent
  bool is_optimal_set(const TemplateGenome& g, double param_tol, double* param = nullptr) const {
    std::map<std::string, std::size_t> want{{"role", 2}, {"context", 0}, {"task", 3}, {"constraints", 1}, {"format", 3}};
    if (g.sections.size() != want.size()) return false;
    for (const auto& s : g.sections) {
      auto it = want.find(s.kind);
      if (it == want.end() || it->second != s.variant) return false;
      if (s.kind == "task") {
        if (param) *param = s.parameters[0];
        if (std::fabs(s.parameters[0] - 0.7) > param_tol) return false;
      }
    }
    return true;
  }
};

GenomeSpace small_space() {
  GenomeSpace s;
  s.kinds.push_back({"role", {{"expert", "You are an expert."}, {"plain", ""}}, {}, true});
  s.kinds.push_back({"task", {{"restate", "Restate the task in {0} words."}, {"direct", "Do the task."}}, {{5, 50}}, true});
  s.kinds.push_back({"format", {{"json", "Answer as {\"answer\": ...}."}, {"prose", "Answer in prose."}}, {}, false});
  s.max_sections = 3;
  return s;
}

}  // namespace

TEST_CASE("GenomeSpace::validate names the key", "[optimize][genetic]") {
  GenomeSpace s = small_space();
  REQUIRE_NOTHROW(s.validate());
  auto key_of = [](const GenomeSpace& sp) {
    try {
      sp.validate();
    } catch (const ConfigError& e) {
      return e.key();
    }
    return std::string("no error");
  };
  GenomeSpace a = s;
  a.kinds[1].variants.clear();
  CHECK(key_of(a) == "genome_space.kinds[1].variants");
  GenomeSpace b = s;
  b.kinds[2].kind = "role";
  CHECK(key_of(b) == "genome_space.kinds[2].kind");
  GenomeSpace c = s;
  c.kinds[1].parameter_bounds[0] = {3, 1};
  CHECK(key_of(c) == "genome_space.kinds[1].parameter_bounds[0]");
  GenomeSpace d = s;
  d.max_sections = 1;
  CHECK(key_of(d) == "genome_space.max_sections");
  GenomeSpace e = s;
  e.kinds[0].variants[1].id = "expert";
  CHECK(key_of(e) == "genome_space.kinds[0].variants[1].id");
  GenomeSpace f = s;
  f.kinds[0].kind = "ro|le";
  CHECK(key_of(f) == "genome_space.kinds[0].kind");
}

TEST_CASE("GeneticParams::validate names the key", "[optimize][genetic]") {
  REQUIRE_NOTHROW(GeneticParams{}.validate());
  auto key_of = [](GeneticParams p) {
    try {
      p.validate();
    } catch (const ConfigError& e) {
      return e.key();
    }
    return std::string("no error");
  };
  GeneticParams p;
  p.population = 1;
  CHECK(key_of(p) == "genetic.population");
  p = {};
  p.mutation_rate = 1.5;
  CHECK(key_of(p) == "genetic.mutation_rate");
  p = {};
  p.elitism = 50;
  CHECK(key_of(p) == "genetic.elitism");
  p = {};
  p.tournament_size = 0;
  CHECK(key_of(p) == "genetic.tournament_size");
  p = {};
  p.crossover_rate = -0.1;
  CHECK(key_of(p) == "genetic.crossover_rate");
  // JSON with defaults for missing keys
  GeneticParams q = nlohmann::json{{"population", 20}}.get<GeneticParams>();
  CHECK(q.population == 20);
  CHECK(q.generations == 100);
  CHECK(q.mutation_rate == 0.1);
}

TEST_CASE("render substitutes parameters and keeps other braces", "[optimize][genetic]") {
  GenomeSpace s = small_space();
  TemplateGenome g{{{"role", 0, {}}, {"task", 0, {12}}, {"format", 0, {}}}};
  CHECK(render(g, s) == "You are an expert.\n\nRestate the task in 12 words.\n\nAnswer as {\"answer\": ...}.");
  TemplateGenome h{{{"task", 1, {7.5}}, {"role", 1, {}}}};  // empty role text is skipped; order kept
  CHECK(render(h, s) == "Do the task.");
  CHECK(genome_key(g) == "role:0|task:0(12)|format:0");
  CHECK(genome_key(TemplateGenome{{{"task", 1, {7.25}}, {"role", 1, {}}}}) == "task:1(7.25)|role:1");
}

TEST_CASE("genome JSON round trip and errors naming the field", "[optimize][genetic]") {
  GenomeSpace s = small_space();
  TemplateGenome g{{{"task", 0, {33.125}}, {"role", 1, {}}, {"format", 1, {}}}};
  const auto j = to_json(g);
  const TemplateGenome back = genome_from_json(nlohmann::json::parse(j.dump()), s);
  CHECK(genome_key(back) == genome_key(g));
  CHECK(back.sections[0].parameters[0] == 33.125);

  auto path_of = [&](const nlohmann::json& doc) {
    try {
      genome_from_json(doc, s);
    } catch (const ValidationError& e) {
      return e.path();
    }
    return std::string("no error");
  };
  auto bad = j;
  bad["sections"][1]["variant"] = 5;
  CHECK(path_of(bad) == "sections[1].variant");
  bad = j;
  bad["sections"][1]["variant"] = "x";
  CHECK(path_of(bad) == "sections[1].variant");
  bad = j;
  bad["sections"][0]["parameters"] = {80.0};
  CHECK(path_of(bad) == "sections[0].parameters[0]");
  bad = j;
  bad["sections"][0]["parameters"] = nlohmann::json::array();
  CHECK(path_of(bad) == "sections[0].parameters");
  bad = j;
  bad["sections"][2]["kind"] = "nope";
  CHECK(path_of(bad) == "sections[2].kind");
  bad = j;
  bad["sections"][2]["kind"] = "role";
  CHECK(path_of(bad) == "sections[2].kind");
  bad = j;
  bad["sections"].erase(1);  // required role missing
  CHECK(path_of(bad) == "sections");
  CHECK(path_of(nlohmann::json{{"x", 1}}) == "sections");
}

TEST_CASE("SBX and polynomial mutation stay in bounds and keep the parents' mean", "[optimize][genetic]") {
  // SBX is mean-preserving per variable before clamping: c1 + c2 = y1 + y2 (Deb & Agrawal 1995).
  Rng rng(7);
  SbxCrossover sbx{15};
  Eigen::VectorXd lo = Eigen::VectorXd::Constant(4, -10), hi = Eigen::VectorXd::Constant(4, 10);
  for (int t = 0; t < 200; ++t) {
    Eigen::VectorXd a(4), b(4);
    a << -1, 2, 3, 0.5;
    b << 1, 2.5, -3, 0.25;
    const Eigen::VectorXd sum = a + b;
    sbx(a, b, lo, hi, rng);
    for (int i = 0; i < 4; ++i) {
      CHECK(a(i) >= -10);
      CHECK(a(i) <= 10);
      CHECK(a(i) + b(i) == Approx(sum(i)).margin(1e-12));
    }
  }
  PolynomialMutation pm{20, 1.0};
  double moved = 0;
  for (int t = 0; t < 1000; ++t) {
    const double y = pm.mutate_one(0.99, 0.0, 1.0, rng);
    CHECK(y >= 0.0);
    CHECK(y <= 1.0);
    moved += std::fabs(y - 0.99);
  }
  // With eta = 20 the expected step is a few hundredths of the range.
  CHECK(moved / 1000 > 0.005);
  CHECK(moved / 1000 < 0.05);
  CHECK(pm.mutate_one(3.0, 3.0, 3.0, rng) == 3.0);
}

TEST_CASE("template GA finds the optimum of a separable genome across seeds", "[optimize][genetic]") {
  ToySpace toy;
  int successes = 0;
  const int kSeeds = 10;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    GeneticParams p;
    p.seed = static_cast<std::uint64_t>(seed);
    std::size_t calls = 0;
    auto res = evolve_templates(toy.space, [&](const TemplateGenome& g) {
      ++calls;
      return toy.fitness(g);
    }, p);
    CHECK(res.evaluations == calls);  // cached: one call per distinct genome
    CHECK(res.evaluations <= static_cast<std::size_t>(p.population * (p.generations + 1)));
    CHECK(res.best_per_generation.size() == static_cast<std::size_t>(p.generations + 1));
    // elitism: the best never gets worse
    for (std::size_t i = 1; i < res.best_per_generation.size(); ++i)
      CHECK(res.best_per_generation[i] >= res.best_per_generation[i - 1]);
    const auto& best = res.population.front();
    CHECK(best.fitness == toy.fitness(best.genome));
    for (std::size_t i = 1; i < res.population.size(); ++i) CHECK(res.population[i].fitness <= res.population[i - 1].fitness);
    double param = -1;
    const bool ok = toy.is_optimal_set(best.genome, 0.02, &param);
    if (ok) ++successes;
    else WARN("seed " << seed << ": best " << genome_key(best.genome) << " fitness " << best.fitness);
    CHECK(best.fitness > ToySpace::kOptimum - 0.05);
  }
  CHECK(successes == kSeeds);
}

TEST_CASE("template GA records lineage and is deterministic", "[optimize][genetic]") {
  ToySpace toy;
  GeneticParams p;
  p.generations = 20;
  auto f = [&](const TemplateGenome& g) { return toy.fitness(g); };
  auto a = evolve_templates(toy.space, f, p), b = evolve_templates(toy.space, f, p);
  REQUIRE(a.population.size() == b.population.size());
  for (std::size_t i = 0; i < a.population.size(); ++i) {
    CHECK(genome_key(a.population[i].genome) == genome_key(b.population[i].genome));
    CHECK(a.population[i].parents == b.population[i].parents);
  }
  CHECK(a.best_per_generation == b.best_per_generation);
  p.seed = 43;
  auto c = evolve_templates(toy.space, f, p);
  CHECK(c.mean_per_generation != a.mean_per_generation);

  // Lineage: every bred individual names 1 or 2 parents and is not its own parent; generation-0 ones none.
  bool some_bred = false;
  for (const auto& ind : a.population) {
    CHECK(ind.generation >= 0);
    CHECK(ind.generation <= p.generations);
    if (ind.generation == 0) CHECK(ind.parents.empty());
    else {
      some_bred = true;
      CHECK((ind.parents.size() == 1 || ind.parents.size() == 2));
      for (const auto& k : ind.parents) CHECK(k != genome_key(ind.genome));
    }
    REQUIRE_NOTHROW(validate_genome(ind.genome, toy.space));
  }
  CHECK(some_bred);
  const auto distinct = a.best_distinct(5);
  CHECK(distinct.size() == 5);
  for (std::size_t i = 0; i < distinct.size(); ++i)
    for (std::size_t j = i + 1; j < distinct.size(); ++j) CHECK(genome_key(distinct[i].genome) != genome_key(distinct[j].genome));
}

TEST_CASE("template GA keeps seeds, respects max_sections, and evolves section order", "[optimize][genetic]") {
  ToySpace toy;
  toy.space.max_sections = 4;
  // Reward placing "format" first and "role" last among the sections present, plus the variant scores.
  auto f = [&](const TemplateGenome& g) {
    double v = toy.fitness(g);
    if (!g.sections.empty() && g.sections.front().kind == "format") v += 1.0;
    if (!g.sections.empty() && g.sections.back().kind == "role") v += 1.0;
    return v;
  };
  TemplateGenome seed{{{"role", 2, {}}, {"task", 3, {0.7}}}};
  GeneticParams p;
  p.seed = 5;
  p.generations = 0;
  auto r0 = evolve_templates(toy.space, f, p, {seed});
  bool seed_present = false;
  for (const auto& ind : r0.population) seed_present = seed_present || genome_key(ind.genome) == genome_key(seed);
  CHECK(seed_present);
  p.generations = 100;
  auto r = evolve_templates(toy.space, f, p, {seed});
  for (const auto& ind : r.population) CHECK(ind.genome.sections.size() <= 4);
  const auto& best = r.population.front().genome;
  REQUIRE(best.sections.size() == 4);
  CHECK(best.sections.front().kind == "format");
  CHECK(best.sections.back().kind == "role");
  // best 4 of the 5 useful kinds: role 1.0, task 1.2 - |p - 0.7|, format 0.9, context 0.8
  CHECK(r.population.front().fitness > 1.0 + 1.2 + 0.9 + 0.8 + 2.0 - 0.05);

  TemplateGenome bad{{{"role", 9, {}}, {"task", 0, {0.5}}}};
  try {
    evolve_templates(toy.space, f, p, {seed, bad});
    FAIL("expected ValidationError");
  } catch (const ValidationError& e) {
    CHECK(e.path() == "seeds[1].sections[0].variant");
  }
  CHECK_THROWS_AS(evolve_templates(toy.space, [](const TemplateGenome&) { return std::nan(""); }, p), ValidationError);
}

TEST_CASE("real GA reaches the optimum of the sphere and Rastrigin", "[optimize][genetic]") {
  // sphere in 5 dimensions on [-5, 5]^5, maximising -|x - c|^2 with c off-centre
  Eigen::VectorXd c(5);
  c << 1.5, -2.0, 0.5, 3.0, -0.25;
  auto sphere = [&](const Eigen::VectorXd& x) { return -(x - c).squaredNorm(); };
  const Eigen::VectorXd lo = Eigen::VectorXd::Constant(5, -5), hi = Eigen::VectorXd::Constant(5, 5);
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    GeneticParams p;
    p.seed = seed;
    auto r = evolve_real(sphere, lo, hi, p);
    CHECK(r.evaluations == static_cast<std::size_t>(p.population + p.generations * (p.population - p.elitism)));
    CHECK(r.best_value == sphere(r.best));
    CHECK(-r.best_value < 1e-3);
    CHECK((r.best - c).cwiseAbs().maxCoeff() < 0.03);
  }
  // Rastrigin in 2 dimensions on [-5.12, 5.12]^2: global maximum 0 at 0, local optima at integer points
  // with value <= -1, so reaching > -0.01 means the global basin was found.
  auto rastrigin = [](const Eigen::VectorXd& x) {
    double s = 10.0 * static_cast<double>(x.size());
    for (Eigen::Index i = 0; i < x.size(); ++i) s += x(i) * x(i) - 10.0 * std::cos(2.0 * 3.14159265358979323846 * x(i));
    return -s;
  };
  const Eigen::VectorXd rlo = Eigen::VectorXd::Constant(2, -5.12), rhi = Eigen::VectorXd::Constant(2, 5.12);
  int found = 0;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    GeneticParams p;
    p.seed = seed;
    p.mutation_rate = 0.5;  // 1/n for n = 2
    auto r = evolve_real(rastrigin, rlo, rhi, p);
    if (r.best_value > -0.01) ++found;
  }
  CHECK(found >= 9);
  // determinism, and another seed differs
  GeneticParams p;
  p.generations = 10;
  auto a = evolve_real(sphere, lo, hi, p), b = evolve_real(sphere, lo, hi, p);
  CHECK(a.best == b.best);
  p.seed = 99;
  CHECK(evolve_real(sphere, lo, hi, p).best != a.best);
  Eigen::VectorXd bad_hi = hi;
  bad_hi(2) = -6;
  try {
    evolve_real(sphere, lo, bad_hi, p);
    FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.key() == "real_ga.bounds[2]");
  }
}

TEST_CASE("SectionRewardModel recovers additive variant effects with shrinkage", "[optimize][genetic]") {
  // Planted additive truth: reward = 0.5 + role effect + format effect + noise-free.
  const double role_eff[3] = {0.2, -0.1, 0.0}, fmt_eff[2] = {0.15, -0.05};
  SectionRewardModel big(1e-6), shrunk(50.0);
  std::vector<std::pair<TemplateGenome, double>> log;
  for (int rep = 0; rep < 20; ++rep)
    for (std::size_t r = 0; r < 3; ++r)
      for (std::size_t f = 0; f < 2; ++f) {
        TemplateGenome g{{{"role", r, {}}, {"format", f, {}}}};
        log.emplace_back(g, 0.5 + role_eff[r] + fmt_eff[f]);
      }
  big.add(log);
  for (const auto& [g, y] : log) shrunk.add(g, y);
  // Tiny ridge: predictions reproduce the additive truth (effects identifiable up to the intercept).
  for (std::size_t r = 0; r < 3; ++r)
    for (std::size_t f = 0; f < 2; ++f)
      CHECK(big.predict(TemplateGenome{{{"role", r, {}}, {"format", f, {}}}}) == Approx(0.5 + role_eff[r] + fmt_eff[f]).margin(1e-6));
  // Differences between variants of one kind are the planted ones.
  CHECK(big.effect("role", 0) - big.effect("role", 1) == Approx(0.3).margin(1e-6));
  // Strong shrinkage pulls predictions toward the global mean but keeps their order.
  const double global = 0.5 + (0.2 - 0.1 + 0.0) / 3 + (0.15 - 0.05) / 2;
  const TemplateGenome best{{{"role", 0, {}}, {"format", 0, {}}}}, worst{{{"role", 1, {}}, {"format", 1, {}}}};
  CHECK(shrunk.predict(best) < big.predict(best));
  CHECK(shrunk.predict(best) > global);
  CHECK(shrunk.predict(worst) > big.predict(worst));
  CHECK(shrunk.predict(worst) < global);
  // Unseen variant: no effect.
  CHECK(big.effect("role", 7) == 0.0);
  // Merge equals adding everything to one model; JSON round trip exact.
  SectionRewardModel half1(1.0), half2(1.0), whole(1.0);
  for (std::size_t i = 0; i < log.size(); ++i) {
    (i % 2 ? half1 : half2).add(log[i].first, log[i].second);
    whole.add(log[i].first, log[i].second);
  }
  half1.merge(half2);
  CHECK(half1.predict(best) == Approx(whole.predict(best)).margin(1e-12));
  const auto back = SectionRewardModel::from_json(nlohmann::json::parse(whole.to_json().dump()));
  CHECK(back.predict(best) == whole.predict(best));
  CHECK(back.count() == whole.count());
  auto j = whole.to_json();
  j["xtx"].erase(0);
  try {
    SectionRewardModel::from_json(j);
    FAIL("expected ValidationError");
  } catch (const ValidationError& e) {
    CHECK(e.path() == "section_reward_model.xtx");
  }
  CHECK_THROWS_AS(whole.add(best, std::nan("")), ValidationError);
  // As GA fitness: evolving against the fitted model finds the best logged combination.
  GenomeSpace s;
  s.kinds.push_back({"role", {{"a", "A"}, {"b", "B"}, {"c", "C"}}, {}, true});
  s.kinds.push_back({"format", {{"x", "X"}, {"y", "Y"}}, {}, true});
  GeneticParams p;
  p.generations = 10;
  auto res = evolve_templates(s, big.as_fitness(), p);
  CHECK(res.population.front().fitness == Approx(big.predict(best)).margin(1e-12));
  for (const auto& sec : res.population.front().genome.sections) CHECK(sec.variant == 0);
}

TEST_CASE("GenomeSpace and Individual JSON", "[optimize][genetic]") {
  GenomeSpace s = small_space();
  const auto j = to_json(s);
  const GenomeSpace back = genome_space_from_json(nlohmann::json::parse(j.dump()));
  CHECK(to_json(back) == j);
  CHECK(back.kinds[1].parameter_bounds[0] == std::make_pair(5.0, 50.0));
  CHECK(back.kinds[0].required);
  CHECK_FALSE(back.kinds[2].required);
  auto key_of = [](const nlohmann::json& doc) {
    try {
      genome_space_from_json(doc);
    } catch (const ConfigError& e) {
      return e.key();
    }
    return std::string("no error");
  };
  auto bad = j;
  bad["kinds"][0]["variants"][1]["text"] = 3;
  CHECK(key_of(bad) == "genome_space.kinds[0].variants[1].text");
  bad = j;
  bad["kinds"][1]["parameter_bounds"][0] = {1};
  CHECK(key_of(bad) == "genome_space.kinds[1].parameter_bounds[0]");
  bad = j;
  bad["kinds"][2]["kind"] = "task";  // semantic check by validate()
  CHECK(key_of(bad) == "genome_space.kinds[2].kind");
  bad = j;
  bad["max_sections"] = -1;
  CHECK(key_of(bad) == "genome_space.max_sections");

  Individual ind{TemplateGenome{{{"role", 0, {}}, {"task", 1, {10}}}}, 0.75, {"role:1|task:1(10)"}, 3};
  const auto ij = to_json(ind);
  CHECK(ij["key"] == "role:0|task:1(10)");
  CHECK(ij["fitness"] == 0.75);
  CHECK(ij["parents"] == nlohmann::json::array({"role:1|task:1(10)"}));
  CHECK(ij["generation"] == 3);
  CHECK(genome_key(genome_from_json(ij["genome"], s)) == "role:0|task:1(10)");
  ind.fitness = -std::numeric_limits<double>::infinity();
  CHECK(to_json(ind)["fitness"].is_null());
}

namespace {
struct NoCrossover {
  TemplateGenome operator()(const TemplateGenome& a, const TemplateGenome&, const GenomeSpace&, Rng&) const { return a; }
};
struct NoMutation {
  void operator()(TemplateGenome&, const GenomeSpace&, Rng&) const {}
};
struct BreakingMutation {
  void operator()(TemplateGenome& g, const GenomeSpace&, Rng&) const { g.sections.front().variant = 99; }
};
struct NoRealOp {
  void operator()(Eigen::VectorXd&, Eigen::VectorXd&, const Eigen::VectorXd&, const Eigen::VectorXd&, Rng&) const {}
  void operator()(Eigen::VectorXd&, const Eigen::VectorXd&, const Eigen::VectorXd&, Rng&) const {}
};
}  // namespace

TEST_CASE("GA operators are swappable parts", "[optimize][genetic]") {
  ToySpace toy;
  auto f = [&](const TemplateGenome& g) { return toy.fitness(g); };
  GeneticParams p;
  p.generations = 30;
  // Without variation, selection only reshuffles the initial genomes: nothing new is evaluated.
  const auto frozen = evolve_templates_with(toy.space, f, p, {}, NoCrossover{}, NoMutation{});
  CHECK(frozen.evaluations <= static_cast<std::size_t>(p.population));
  CHECK(frozen.best_per_generation.front() == frozen.best_per_generation.back());
  for (const auto& ind : frozen.population) CHECK(ind.generation == 0);
  // Selection pressure alone raises the mean.
  CHECK(frozen.mean_per_generation.back() > frozen.mean_per_generation.front());
  // An operator that breaks genomes is caught.
  try {
    evolve_templates_with(toy.space, f, p, {}, SectionCrossover{}, BreakingMutation{});
    FAIL("expected ValidationError");
  } catch (const ValidationError& e) {
    CHECK(e.path() == "offspring.sections[0].variant");
  }
  // The default operators equal evolve_templates.
  const auto a = evolve_templates(toy.space, f, p);
  const auto b = evolve_templates_with(toy.space, f, p, {}, SectionCrossover{}, SectionMutation{p.mutation_rate, p.mutation_eta});
  CHECK(a.best_per_generation == b.best_per_generation);
  CHECK(a.mean_per_generation == b.mean_per_generation);
  // Real GA without variation keeps the initial best.
  auto sphere = [](const Eigen::VectorXd& x) { return -x.squaredNorm(); };
  const Eigen::VectorXd lo = Eigen::VectorXd::Constant(3, -1), hi = Eigen::VectorXd::Constant(3, 1);
  const auto r = evolve_real_with(sphere, lo, hi, p, NoRealOp{}, NoRealOp{});
  CHECK(r.best_per_generation.front() == r.best_per_generation.back());
  CHECK(evolve_real(sphere, lo, hi, p).best_value > r.best_value);
}
