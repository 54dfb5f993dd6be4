#pragma once
/// @file
/// Genetic algorithms (layer 2, header-only; no I/O, clock or threads; deterministic given the seed):
///
/// - template evolution: a prompt template is a structured genome, an ordered list of sections (role,
///   context, task restatement, constraints, examples, output format, ...), each section one of several
///   alternative wordings (variants) with optional real parameters. Tournament selection, section-wise
///   crossover, mutation (swap / insert / delete a section, replace a section's variant, tweak a
///   parameter), elitism. Fitness is a callback (the quality predictor, `SectionRewardModel` fitted on
///   logged rewards, or a host function); results carry their lineage (parents' genome keys).
/// - a real-vector GA (SBX crossover + polynomial mutation) for parameter vectors, maximising.
/// - `SectionRewardModel`: an additive ridge model of logged reward per section variant, usable as fitness.
///
///     GenomeSpace space{{{"role", {{"expert", "You are an expert."}, {"plain", ""}}, {}, true},
///                        {"format", {{"json", "Answer in JSON."}, {"prose", "Answer in prose."}}, {}, false}}};
///     auto result = evolve_templates(space, [&](const TemplateGenome& g) { return predictor(render(g, space)); });
///     std::string best_body = render(result.population.front().genome, space);
///
/// Randomness: every draw comes from `Rng::next_u64()` (uniform doubles from its top 53 bits, indices by
/// rejection), so results are identical across standard libraries for a given seed.
#include <Eigen/Core>
#include <Eigen/Dense>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"

namespace promptlearn::optimize {

// ---------------------------------------------------------------------------------------------------
// Genome model
// ---------------------------------------------------------------------------------------------------

/// One alternative wording of a section kind. `text` may reference the section's parameters as `{0}`,
/// `{1}`, ... (see `render`).
struct SectionVariant {
  std::string id;
  std::string text;
};

/// A kind of section (e.g. "role") with its alternative variants and the bounds of its real parameters
/// (every variant of the kind shares the parameters). A required kind is present in every genome.
struct SectionKind {
  std::string kind;
  std::vector<SectionVariant> variants;
  std::vector<std::pair<double, double>> parameter_bounds;
  bool required = false;
};

/// One section of a genome: its kind, the index of the chosen variant in the kind's `variants`, and its
/// parameter values (one per `parameter_bounds` entry, within the bounds).
struct SectionGene {
  std::string kind;
  std::size_t variant = 0;
  std::vector<double> parameters;
};

/// A template genome: an ordered list of sections, each kind at most once.
struct TemplateGenome {
  std::vector<SectionGene> sections;
};

/// The space genomes live in: the section kinds (their order is the canonical section order used for
/// random genomes) and the largest number of sections in one template.
/// Thread-safety: plain value.
struct GenomeSpace {
  std::vector<SectionKind> kinds;
  std::size_t max_sections = 8;

  /// Checks the space.
  /// @throws ConfigError naming the key (`genome_space.kinds[2].variants`, `genome_space.max_sections`, ...)
  ///         when there are no kinds, a kind name is empty, repeated or contains '|', ':', '(' or ')',
  ///         a kind has no variants, a variant id is empty or repeated within its kind, a bound is not
  ///         finite or lower > upper, or max_sections is 0 or below the number of required kinds.
  void validate() const {
    if (kinds.empty()) throw ConfigError("genome_space.kinds", "is empty, expected at least one section kind");
    std::set<std::string> names;
    std::size_t required_count = 0;
    for (std::size_t k = 0; k < kinds.size(); ++k) {
      const auto& sk = kinds[k];
      const std::string key = fmt::format("genome_space.kinds[{}]", k);
      if (sk.kind.empty()) throw ConfigError(key + ".kind", "is empty");
      if (sk.kind.find_first_of("|:()") != std::string::npos)
        throw ConfigError(key + ".kind", fmt::format("'{}' contains one of '|', ':', '(', ')' (reserved for genome keys)", sk.kind));
      if (!names.insert(sk.kind).second) throw ConfigError(key + ".kind", fmt::format("'{}' is repeated", sk.kind));
      if (sk.variants.empty()) throw ConfigError(key + ".variants", "is empty, expected at least one variant");
      std::set<std::string> ids;
      for (std::size_t v = 0; v < sk.variants.size(); ++v) {
        if (sk.variants[v].id.empty()) throw ConfigError(fmt::format("{}.variants[{}].id", key, v), "is empty");
        if (!ids.insert(sk.variants[v].id).second)
          throw ConfigError(fmt::format("{}.variants[{}].id", key, v), fmt::format("'{}' is repeated", sk.variants[v].id));
      }
      for (std::size_t p = 0; p < sk.parameter_bounds.size(); ++p) {
        const auto [lo, hi] = sk.parameter_bounds[p];
        if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi)
          throw ConfigError(fmt::format("{}.parameter_bounds[{}]", key, p),
                            fmt::format("[{}, {}] is not a finite interval with lower <= upper", lo, hi));
      }
      if (sk.required) ++required_count;
    }
    if (max_sections == 0) throw ConfigError("genome_space.max_sections", "is 0, expected at least 1");
    if (max_sections < required_count)
      throw ConfigError("genome_space.max_sections",
                        fmt::format("{} is less than the {} required section kinds", max_sections, required_count));
  }

  /// Index of the kind named `name` in `kinds`, or kinds.size() if there is none.
  std::size_t index_of(const std::string& name) const {
    for (std::size_t k = 0; k < kinds.size(); ++k)
      if (kinds[k].kind == name) return k;
    return kinds.size();
  }
};

/// Checks a genome against its space; `path` prefixes the error path (e.g. "seeds[3]").
/// @throws ValidationError naming the field (`sections[1].variant: 7 is out of range, kind 'role' has 3
///         variants`) for an unknown or repeated kind, a variant out of range, a wrong parameter count, a
///         parameter outside its bounds or not finite, a missing required kind, no sections, or more than
///         max_sections sections.
inline void validate_genome(const TemplateGenome& g, const GenomeSpace& space, const std::string& path = "") {
  const std::string pre = path.empty() ? "" : path + ".";
  if (g.sections.empty()) throw ValidationError(pre + "sections", "is empty, expected at least one section");
  if (g.sections.size() > space.max_sections)
    throw ValidationError(pre + "sections",
                          fmt::format("has {} sections, more than max_sections {}", g.sections.size(), space.max_sections));
  std::set<std::string> seen;
  for (std::size_t i = 0; i < g.sections.size(); ++i) {
    const auto& s = g.sections[i];
    const std::string sp = fmt::format("{}sections[{}]", pre, i);
    const std::size_t k = space.index_of(s.kind);
    if (k == space.kinds.size()) throw ValidationError(sp + ".kind", fmt::format("'{}' is not a section kind of the space", s.kind));
    if (!seen.insert(s.kind).second) throw ValidationError(sp + ".kind", fmt::format("'{}' is repeated", s.kind));
    const auto& sk = space.kinds[k];
    if (s.variant >= sk.variants.size())
      throw ValidationError(sp + ".variant", fmt::format("{} is out of range, kind '{}' has {} variants", s.variant, s.kind,
                                                         sk.variants.size()));
    if (s.parameters.size() != sk.parameter_bounds.size())
      throw ValidationError(sp + ".parameters", fmt::format("has {} values, kind '{}' has {} parameters", s.parameters.size(),
                                                            s.kind, sk.parameter_bounds.size()));
    for (std::size_t p = 0; p < s.parameters.size(); ++p) {
      const double x = s.parameters[p];
      const auto [lo, hi] = sk.parameter_bounds[p];
      if (!std::isfinite(x) || x < lo || x > hi)
        throw ValidationError(fmt::format("{}.parameters[{}]", sp, p), fmt::format("{} is outside [{}, {}]", x, lo, hi));
    }
  }
  for (const auto& sk : space.kinds)
    if (sk.required && !seen.count(sk.kind))
      throw ValidationError(pre + "sections", fmt::format("lacks the required section kind '{}'", sk.kind));
}

/// The template body: the texts of the sections' variants in order, joined by a blank line ("\n\n"),
/// empty texts skipped. In a text, `{i}` (i a decimal index below the section's parameter count) is
/// replaced by parameter i in fmt's shortest round-trip form (3.0 -> "3", 0.25 -> "0.25"); every other
/// brace is left as written, so texts may contain JSON examples.
/// @throws ValidationError when the genome does not fit the space (see validate_genome).
inline std::string render(const TemplateGenome& g, const GenomeSpace& space) {
  validate_genome(g, space);
  std::string out;
  for (const auto& s : g.sections) {
    const std::string& text = space.kinds[space.index_of(s.kind)].variants[s.variant].text;
    std::string body;
    for (std::size_t i = 0; i < text.size();) {
      if (text[i] == '{') {
        std::size_t j = i + 1;
        while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
        if (j > i + 1 && j < text.size() && text[j] == '}' && j - i - 1 <= 6) {
          const std::size_t idx = std::stoul(text.substr(i + 1, j - i - 1));
          if (idx < s.parameters.size()) {
            body += fmt::format("{}", s.parameters[idx]);
            i = j + 1;
            continue;
          }
        }
      }
      body += text[i++];
    }
    if (body.empty()) continue;
    if (!out.empty()) out += "\n\n";
    out += body;
  }
  return out;
}

/// A stable identity string: `kind:variant_index` per section in order, joined by '|', with the
/// parameters in parentheses in fmt's shortest round-trip form, e.g. "role:0|task:2(0.5,3)|format:1".
/// Indices (not variant ids) are used so the key needs no space; append new variants at the end of a
/// kind's list to keep old keys valid.
inline std::string genome_key(const TemplateGenome& g) {
  std::string key;
  for (std::size_t i = 0; i < g.sections.size(); ++i) {
    const auto& s = g.sections[i];
    if (i) key += '|';
    key += fmt::format("{}:{}", s.kind, s.variant);
    if (!s.parameters.empty()) key += fmt::format("({})", fmt::join(s.parameters, ","));
  }
  return key;
}

/// {"sections": [{"kind": "role", "variant": 0, "parameters": [0.5]}, ...]}; doubles round-trip exactly.
inline nlohmann::json to_json(const TemplateGenome& g) {
  nlohmann::json sections = nlohmann::json::array();
  for (const auto& s : g.sections)
    sections.push_back({{"kind", s.kind}, {"variant", s.variant}, {"parameters", s.parameters}});
  return nlohmann::json{{"sections", sections}};
}

/// Reads a genome written by `to_json(const TemplateGenome&)` and validates it against `space`.
/// @throws ValidationError naming the field (`sections[0].variant: expected an unsigned integer, got "x"`).
inline TemplateGenome genome_from_json(const nlohmann::json& j, const GenomeSpace& space) {
  if (!j.is_object()) throw ValidationError("", fmt::format("expected an object, got {}", j.dump()));
  if (!j.contains("sections") || !j.at("sections").is_array())
    throw ValidationError("sections", "missing or not an array");
  TemplateGenome g;
  const auto& arr = j.at("sections");
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const auto& e = arr[i];
    const std::string sp = fmt::format("sections[{}]", i);
    if (!e.is_object()) throw ValidationError(sp, fmt::format("expected an object, got {}", e.dump()));
    if (!e.contains("kind") || !e.at("kind").is_string())
      throw ValidationError(sp + ".kind", fmt::format("expected a string, got {}", e.value("kind", nlohmann::json()).dump()));
    if (!e.contains("variant") || !e.at("variant").is_number_integer() || e.at("variant").get<std::int64_t>() < 0)
      throw ValidationError(sp + ".variant",
                            fmt::format("expected an unsigned integer, got {}", e.value("variant", nlohmann::json()).dump()));
    SectionGene s;
    s.kind = e.at("kind").get<std::string>();
    s.variant = e.at("variant").get<std::size_t>();
    if (e.contains("parameters")) {
      const auto& ps = e.at("parameters");
      if (!ps.is_array()) throw ValidationError(sp + ".parameters", fmt::format("expected an array, got {}", ps.dump()));
      for (std::size_t p = 0; p < ps.size(); ++p) {
        if (!ps[p].is_number())
          throw ValidationError(fmt::format("{}.parameters[{}]", sp, p), fmt::format("expected a number, got {}", ps[p].dump()));
        s.parameters.push_back(ps[p].get<double>());
      }
    }
    g.sections.push_back(std::move(s));
  }
  validate_genome(g, space);
  return g;
}

/// {"max_sections": 8, "kinds": [{"kind": "role", "required": true, "variants": [{"id", "text"}, ...],
///  "parameter_bounds": [[lo, hi], ...]}, ...]}; doubles round-trip exactly.
inline nlohmann::json to_json(const GenomeSpace& space) {
  nlohmann::json kinds = nlohmann::json::array();
  for (const auto& k : space.kinds) {
    nlohmann::json variants = nlohmann::json::array(), bounds = nlohmann::json::array();
    for (const auto& v : k.variants) variants.push_back({{"id", v.id}, {"text", v.text}});
    for (const auto& [lo, hi] : k.parameter_bounds) bounds.push_back({lo, hi});
    kinds.push_back({{"kind", k.kind}, {"required", k.required}, {"variants", variants}, {"parameter_bounds", bounds}});
  }
  return nlohmann::json{{"max_sections", space.max_sections}, {"kinds", kinds}};
}

/// Reads a space written by to_json(const GenomeSpace&) ("required", "parameter_bounds" and
/// "max_sections" optional, defaulting to false, none and 8) and validates it.
/// @throws ConfigError naming the key (`genome_space.kinds[0].variants[1].text: expected a string, got 3`).
inline GenomeSpace genome_space_from_json(const nlohmann::json& j) {
  const std::string pre = "genome_space";
  if (!j.is_object()) throw ConfigError(pre, fmt::format("expected an object, got {}", j.dump()));
  GenomeSpace space;
  if (j.contains("max_sections")) {
    const auto& m = j.at("max_sections");
    if (!m.is_number_integer() || m.get<std::int64_t>() < 0)
      throw ConfigError(pre + ".max_sections", fmt::format("expected an unsigned integer, got {}", m.dump()));
    space.max_sections = m.get<std::size_t>();
  }
  if (!j.contains("kinds") || !j.at("kinds").is_array()) throw ConfigError(pre + ".kinds", "missing or not an array");
  auto text = [](const nlohmann::json& o, const char* key, const std::string& path) {
    if (!o.contains(key) || !o.at(key).is_string())
      throw ConfigError(path, fmt::format("expected a string, got {}", o.contains(key) ? o.at(key).dump() : "nothing"));
    return o.at(key).get<std::string>();
  };
  const auto& kinds = j.at("kinds");
  for (std::size_t k = 0; k < kinds.size(); ++k) {
    const auto& e = kinds[k];
    const std::string kp = fmt::format("{}.kinds[{}]", pre, k);
    if (!e.is_object()) throw ConfigError(kp, fmt::format("expected an object, got {}", e.dump()));
    SectionKind sk;
    sk.kind = text(e, "kind", kp + ".kind");
    if (e.contains("required")) {
      if (!e.at("required").is_boolean()) throw ConfigError(kp + ".required", fmt::format("expected a boolean, got {}", e.at("required").dump()));
      sk.required = e.at("required").get<bool>();
    }
    if (!e.contains("variants") || !e.at("variants").is_array()) throw ConfigError(kp + ".variants", "missing or not an array");
    const auto& vs = e.at("variants");
    for (std::size_t v = 0; v < vs.size(); ++v) {
      const std::string vp = fmt::format("{}.variants[{}]", kp, v);
      if (!vs[v].is_object()) throw ConfigError(vp, fmt::format("expected an object, got {}", vs[v].dump()));
      sk.variants.push_back({text(vs[v], "id", vp + ".id"), text(vs[v], "text", vp + ".text")});
    }
    if (e.contains("parameter_bounds")) {
      const auto& bs = e.at("parameter_bounds");
      if (!bs.is_array()) throw ConfigError(kp + ".parameter_bounds", fmt::format("expected an array, got {}", bs.dump()));
      for (std::size_t b = 0; b < bs.size(); ++b) {
        if (!bs[b].is_array() || bs[b].size() != 2 || !bs[b][0].is_number() || !bs[b][1].is_number())
          throw ConfigError(fmt::format("{}.parameter_bounds[{}]", kp, b), fmt::format("expected [lower, upper], got {}", bs[b].dump()));
        sk.parameter_bounds.emplace_back(bs[b][0].get<double>(), bs[b][1].get<double>());
      }
    }
    space.kinds.push_back(std::move(sk));
  }
  space.validate();
  return space;
}

// ---------------------------------------------------------------------------------------------------
// Parameters and results
// ---------------------------------------------------------------------------------------------------

/// Genetic-algorithm settings; defaults are the specification's (population 50, 100 generations,
/// mutation 0.1, elitism). Thread-safety: plain value.
struct GeneticParams {
  int population = 50;          ///< Individuals per generation (>= 2).
  int generations = 100;        ///< Generations after the initial one (>= 0).
  double mutation_rate = 0.1;   ///< Per-operator / per-gene mutation probability, [0, 1].
  double crossover_rate = 0.9;  ///< Probability a child is bred by crossover rather than copied, [0, 1].
  int tournament_size = 3;      ///< Tournament size, [1, population].
  int elitism = 2;              ///< Best individuals copied unchanged into the next generation, [0, population).
  double crossover_eta = 15;    ///< SBX distribution index (real GA), > 0.
  double mutation_eta = 20;     ///< Polynomial-mutation distribution index (real GA, template parameters), > 0.
  std::uint64_t seed = 42;

  /// @throws ConfigError naming the key (`genetic.population: 1 is less than 2`).
  void validate() const {
    if (population < 2) throw ConfigError("genetic.population", fmt::format("{} is less than 2", population));
    if (generations < 0) throw ConfigError("genetic.generations", fmt::format("{} is negative", generations));
    if (!(mutation_rate >= 0 && mutation_rate <= 1))
      throw ConfigError("genetic.mutation_rate", fmt::format("{} is outside [0, 1]", mutation_rate));
    if (!(crossover_rate >= 0 && crossover_rate <= 1))
      throw ConfigError("genetic.crossover_rate", fmt::format("{} is outside [0, 1]", crossover_rate));
    if (tournament_size < 1 || tournament_size > population)
      throw ConfigError("genetic.tournament_size", fmt::format("{} is outside [1, population = {}]", tournament_size, population));
    if (elitism < 0 || elitism >= population)
      throw ConfigError("genetic.elitism", fmt::format("{} is outside [0, population = {})", elitism, population));
    if (!(crossover_eta > 0 && std::isfinite(crossover_eta)))
      throw ConfigError("genetic.crossover_eta", fmt::format("{} is not a finite number > 0", crossover_eta));
    if (!(mutation_eta > 0 && std::isfinite(mutation_eta)))
      throw ConfigError("genetic.mutation_eta", fmt::format("{} is not a finite number > 0", mutation_eta));
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(GeneticParams, population, generations, mutation_rate, crossover_rate,
                                                tournament_size, elitism, crossover_eta, mutation_eta, seed)

/// One member of a population with its lineage.
struct Individual {
  TemplateGenome genome;
  double fitness = 0;
  std::vector<std::string> parents;  ///< genome_keys of the parents (empty for initial and seed genomes).
  int generation = 0;                ///< Generation in which this genome first appeared (0 = initial).
};

/// {"genome": {...}, "key": genome_key, "fitness": number or null when infinite, "parents": [keys],
/// "generation": n}: what a store records as a new template's lineage.
inline nlohmann::json to_json(const Individual& ind) {
  return nlohmann::json{{"genome", to_json(ind.genome)},
                        {"key", genome_key(ind.genome)},
                        {"fitness", std::isfinite(ind.fitness) ? nlohmann::json(ind.fitness) : nlohmann::json()},
                        {"parents", ind.parents},
                        {"generation", ind.generation}};
}

/// What `evolve_templates` returns.
struct EvolutionResult {
  std::vector<Individual> population;        ///< Final population, best first (may hold duplicates).
  std::vector<double> best_per_generation;   ///< generations + 1 entries: initial, then after each generation.
  std::vector<double> mean_per_generation;   ///< Same indexing.
  std::size_t evaluations = 0;               ///< Fitness calls (distinct genome keys).

  /// Up to n individuals with distinct genome keys, best first: the candidates to offer the selector.
  std::vector<Individual> best_distinct(std::size_t n) const {
    std::vector<Individual> out;
    std::set<std::string> keys;
    for (const auto& ind : population) {
      if (out.size() >= n) break;
      if (keys.insert(genome_key(ind.genome)).second) out.push_back(ind);
    }
    return out;
  }
};

/// Fitness of a template genome, higher is better. Must be deterministic (results are cached by
/// genome_key); -infinity marks an infeasible genome; NaN is an error.
using GenomeFitness = std::function<double(const TemplateGenome&)>;

// ---------------------------------------------------------------------------------------------------
// Operators
// ---------------------------------------------------------------------------------------------------
namespace detail {

/// Uniform double in [0, 1) from the top 53 bits of one raw draw.
inline double ga_uniform01(Rng& rng) { return static_cast<double>(rng.next_u64() >> 11) * 0x1.0p-53; }

/// Uniform index in [0, n) (n >= 1), unbiased by rejecting the 2^64 mod n lowest raw values.
inline std::size_t ga_index(Rng& rng, std::size_t n) {
  const std::uint64_t bound = n, reject_below = (0 - bound) % bound;
  std::uint64_t r = rng.next_u64();
  while (r < reject_below) r = rng.next_u64();
  return static_cast<std::size_t>(r % bound);
}

inline bool ga_bernoulli(Rng& rng, double p) { return ga_uniform01(rng) < p; }

}  // namespace detail

/// Simulated binary crossover (SBX; Deb & Agrawal 1995, "Simulated binary crossover for continuous search
/// space", Complex Systems 9), in the bounded form of Deb's NSGA-II reference code: for each variable,
/// with probability 1/2, and when the parents differ, with y1 < y2, u ~ U[0, 1),
///   beta = 1 + 2 (y1 - lower) / (y2 - y1),  alpha = 2 - beta^-(eta + 1),
///   beta_q = (u alpha)^(1/(eta+1)) if u <= 1/alpha, else (1 / (2 - u alpha))^(1/(eta+1)),
///   c1 = ((y1 + y2) - beta_q (y2 - y1)) / 2, and c2 likewise with beta = 1 + 2 (upper - y2) / (y2 - y1),
/// children clamped to the bounds and swapped with probability 1/2. A larger eta keeps children closer to
/// their parents. Thread-safety: plain value.
struct SbxCrossover {
  double eta = 15;
  void operator()(Eigen::VectorXd& a, Eigen::VectorXd& b, const Eigen::VectorXd& lower, const Eigen::VectorXd& upper,
                  Rng& rng) const {
    const double e1 = 1.0 / (eta + 1.0);
    for (Eigen::Index i = 0; i < a.size(); ++i) {
      if (detail::ga_uniform01(rng) >= 0.5) continue;
      if (std::fabs(a(i) - b(i)) <= 1e-14) continue;
      const double y1 = std::min(a(i), b(i)), y2 = std::max(a(i), b(i)), yl = lower(i), yu = upper(i);
      const double u = detail::ga_uniform01(rng);
      auto beta_q = [&](double beta) {
        const double alpha = 2.0 - std::pow(beta, -(eta + 1.0));
        return u <= 1.0 / alpha ? std::pow(u * alpha, e1) : std::pow(1.0 / (2.0 - u * alpha), e1);
      };
      double c1 = 0.5 * ((y1 + y2) - beta_q(1.0 + 2.0 * (y1 - yl) / (y2 - y1)) * (y2 - y1));
      double c2 = 0.5 * ((y1 + y2) + beta_q(1.0 + 2.0 * (yu - y2) / (y2 - y1)) * (y2 - y1));
      c1 = std::clamp(c1, yl, yu);
      c2 = std::clamp(c2, yl, yu);
      if (detail::ga_uniform01(rng) < 0.5) std::swap(c1, c2);
      a(i) = c1;
      b(i) = c2;
    }
  }
};

/// Polynomial mutation (Deb & Agrawal 1995; Deb & Goyal 1996, the bounded form of Deb's NSGA-II code):
/// each variable, with probability `rate`, moves by delta_q (upper - lower), where with
/// d1 = (y - lower)/(upper - lower), d2 = (upper - y)/(upper - lower), u ~ U[0, 1), m = 1/(eta + 1):
///   u < 1/2:  delta_q = (2u + (1 - 2u)(1 - d1)^(eta+1))^m - 1
///   else:     delta_q = 1 - (2(1 - u) + 2(u - 1/2)(1 - d2)^(eta+1))^m
/// then clamped to the bounds. Variables with lower == upper stay fixed. Thread-safety: plain value.
struct PolynomialMutation {
  double eta = 20;
  double rate = 0.1;
  double mutate_one(double y, double yl, double yu, Rng& rng) const {
    if (!(yu > yl)) return y;
    const double d1 = (y - yl) / (yu - yl), d2 = (yu - y) / (yu - yl), m = 1.0 / (eta + 1.0);
    const double u = detail::ga_uniform01(rng);
    double dq;
    if (u < 0.5) dq = std::pow(2.0 * u + (1.0 - 2.0 * u) * std::pow(1.0 - d1, eta + 1.0), m) - 1.0;
    else dq = 1.0 - std::pow(2.0 * (1.0 - u) + 2.0 * (u - 0.5) * std::pow(1.0 - d2, eta + 1.0), m);
    return std::clamp(y + dq * (yu - yl), yl, yu);
  }
  void operator()(Eigen::VectorXd& x, const Eigen::VectorXd& lower, const Eigen::VectorXd& upper, Rng& rng) const {
    for (Eigen::Index i = 0; i < x.size(); ++i)
      if (detail::ga_bernoulli(rng, rate)) x(i) = mutate_one(x(i), lower(i), upper(i), rng);
  }
};

namespace detail {

inline void ga_check_bounds(const Eigen::VectorXd& lower, const Eigen::VectorXd& upper, const char* who) {
  if (lower.size() == 0) throw ConfigError(fmt::format("{}.lower", who), "is empty, expected at least one variable");
  if (lower.size() != upper.size())
    throw ConfigError(fmt::format("{}.upper", who), fmt::format("has {} entries, lower has {}", upper.size(), lower.size()));
  for (Eigen::Index i = 0; i < lower.size(); ++i)
    if (!std::isfinite(lower(i)) || !std::isfinite(upper(i)) || lower(i) > upper(i))
      throw ConfigError(fmt::format("{}.bounds[{}]", who, i),
                        fmt::format("[{}, {}] is not a finite interval with lower <= upper", lower(i), upper(i)));
}

inline Eigen::VectorXd ga_uniform_point(const Eigen::VectorXd& lower, const Eigen::VectorXd& upper, Rng& rng) {
  Eigen::VectorXd x(lower.size());
  for (Eigen::Index i = 0; i < x.size(); ++i) x(i) = lower(i) + ga_uniform01(rng) * (upper(i) - lower(i));
  return x;
}

inline SectionGene random_gene(const SectionKind& sk, Rng& rng) {
  SectionGene s;
  s.kind = sk.kind;
  s.variant = ga_index(rng, sk.variants.size());
  for (const auto& [lo, hi] : sk.parameter_bounds) s.parameters.push_back(lo + ga_uniform01(rng) * (hi - lo));
  return s;
}

inline bool is_required(const GenomeSpace& space, const std::string& kind) {
  return space.kinds[space.index_of(kind)].required;
}

/// Removes random optional sections until the genome fits max_sections.
inline void trim_to_fit(TemplateGenome& g, const GenomeSpace& space, Rng& rng) {
  while (g.sections.size() > space.max_sections) {
    std::vector<std::size_t> optional;
    for (std::size_t i = 0; i < g.sections.size(); ++i)
      if (!is_required(space, g.sections[i].kind)) optional.push_back(i);
    g.sections.erase(g.sections.begin() + static_cast<std::ptrdiff_t>(optional[ga_index(rng, optional.size())]));
  }
}

/// A random genome in canonical order: required kinds always, each optional kind with probability 1/2,
/// uniform variants and parameters; trimmed to max_sections; one random kind if nothing was drawn.
inline TemplateGenome random_genome(const GenomeSpace& space, Rng& rng) {
  TemplateGenome g;
  for (const auto& sk : space.kinds)
    if (sk.required || ga_bernoulli(rng, 0.5)) g.sections.push_back(random_gene(sk, rng));
  if (g.sections.empty()) g.sections.push_back(random_gene(space.kinds[ga_index(rng, space.kinds.size())], rng));
  trim_to_fit(g, space, rng);
  return g;
}

/// Section-wise (uniform) crossover: for every kind in either parent the child takes that parent's gene
/// (variant and parameters) from a or b with probability 1/2 each, omitting the kind if the chosen parent
/// lacks it. The section order follows the parent `a`; a kind only b has is placed right after the last
/// kind that precedes it in b and is in a (or first). Trimmed to max_sections.
inline TemplateGenome section_crossover(const TemplateGenome& a, const TemplateGenome& b, const GenomeSpace& space, Rng& rng) {
  std::map<std::string, std::size_t> pos_a, pos_b;
  for (std::size_t i = 0; i < a.sections.size(); ++i) pos_a[a.sections[i].kind] = i;
  for (std::size_t i = 0; i < b.sections.size(); ++i) pos_b[b.sections[i].kind] = i;
  // (order key, gene); order key in a's positions, b-only kinds at (position of predecessor in a) + 0.5.
  std::vector<std::pair<double, SectionGene>> picked;
  auto consider = [&](const std::string& kind, double order) {
    const bool in_a = pos_a.count(kind) > 0, in_b = pos_b.count(kind) > 0;
    const bool from_a = ga_bernoulli(rng, 0.5);
    if (from_a && in_a) picked.emplace_back(order, a.sections[pos_a[kind]]);
    else if (!from_a && in_b) picked.emplace_back(order, b.sections[pos_b[kind]]);
    else if (is_required(space, kind)) picked.emplace_back(order, in_a ? a.sections[pos_a[kind]] : b.sections[pos_b[kind]]);
  };
  for (std::size_t i = 0; i < a.sections.size(); ++i) consider(a.sections[i].kind, static_cast<double>(i));
  double after = -0.5;
  for (std::size_t i = 0; i < b.sections.size(); ++i) {
    const auto it = pos_a.find(b.sections[i].kind);
    if (it != pos_a.end()) {
      after = static_cast<double>(it->second) + 0.5;
      continue;
    }
    consider(b.sections[i].kind, after + 1e-3 * static_cast<double>(i + 1) / static_cast<double>(b.sections.size() + 1));
  }
  std::stable_sort(picked.begin(), picked.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  TemplateGenome child;
  for (auto& p : picked) child.sections.push_back(std::move(p.second));
  if (child.sections.empty()) child.sections.push_back(ga_bernoulli(rng, 0.5) ? a.sections.front() : b.sections.front());
  trim_to_fit(child, space, rng);
  return child;
}

/// Mutation, each operator applied independently with probability `rate`:
/// per section, replace its variant by another uniformly chosen one; per parameter, polynomial mutation
/// (eta); then once per genome each of: swap two random sections' positions; insert a random absent kind
/// (random variant and parameters) at a random position, if below max_sections; delete a random optional
/// section, if more than one section remains.
inline void mutate_genome(TemplateGenome& g, const GenomeSpace& space, double rate, double eta, Rng& rng) {
  const PolynomialMutation pm{eta, 1.0};
  for (auto& s : g.sections) {
    const auto& sk = space.kinds[space.index_of(s.kind)];
    if (sk.variants.size() > 1 && ga_bernoulli(rng, rate)) {
      const std::size_t other = ga_index(rng, sk.variants.size() - 1);
      s.variant = other >= s.variant ? other + 1 : other;
    }
    for (std::size_t p = 0; p < s.parameters.size(); ++p)
      if (ga_bernoulli(rng, rate))
        s.parameters[p] = pm.mutate_one(s.parameters[p], sk.parameter_bounds[p].first, sk.parameter_bounds[p].second, rng);
  }
  if (g.sections.size() > 1 && ga_bernoulli(rng, rate)) {
    const std::size_t i = ga_index(rng, g.sections.size());
    std::size_t j = ga_index(rng, g.sections.size() - 1);
    if (j >= i) ++j;
    std::swap(g.sections[i], g.sections[j]);
  }
  if (g.sections.size() < space.max_sections && ga_bernoulli(rng, rate)) {
    std::vector<std::size_t> absent;
    for (std::size_t k = 0; k < space.kinds.size(); ++k) {
      bool present = false;
      for (const auto& s : g.sections) present = present || s.kind == space.kinds[k].kind;
      if (!present) absent.push_back(k);
    }
    if (!absent.empty()) {
      const auto& sk = space.kinds[absent[ga_index(rng, absent.size())]];
      const std::size_t at = ga_index(rng, g.sections.size() + 1);
      g.sections.insert(g.sections.begin() + static_cast<std::ptrdiff_t>(at), random_gene(sk, rng));
    }
  }
  if (g.sections.size() > 1 && ga_bernoulli(rng, rate)) {
    std::vector<std::size_t> optional;
    for (std::size_t i = 0; i < g.sections.size(); ++i)
      if (!is_required(space, g.sections[i].kind)) optional.push_back(i);
    if (!optional.empty())
      g.sections.erase(g.sections.begin() + static_cast<std::ptrdiff_t>(optional[ga_index(rng, optional.size())]));
  }
}

/// Tournament selection (Goldberg & Deb 1991, "A comparative analysis of selection schemes used in genetic
/// algorithms"): k indices drawn uniformly with replacement from a population sorted best first; the
/// smallest index (the fittest) wins.
inline std::size_t ga_tournament(std::size_t population, int k, Rng& rng) {
  std::size_t best = ga_index(rng, population);
  for (int t = 1; t < k; ++t) best = std::min(best, ga_index(rng, population));
  return best;
}

inline double ga_mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

}  // namespace detail

/// The default template crossover: section-wise uniform crossover (see detail::section_crossover: each
/// kind's gene from either parent with probability 1/2, order of the first parent). A replacement must
/// have this call signature and return a genome valid in `space`. Thread-safety: plain value.
struct SectionCrossover {
  TemplateGenome operator()(const TemplateGenome& a, const TemplateGenome& b, const GenomeSpace& space, Rng& rng) const {
    return detail::section_crossover(a, b, space, rng);
  }
};

/// The default template mutation (see detail::mutate_genome): each operator with probability `rate`,
/// parameter tweaks by polynomial mutation with index `eta`. A replacement must have this call signature
/// and leave the genome valid in `space`. Thread-safety: plain value.
struct SectionMutation {
  double rate = 0.1;
  double eta = 20;
  void operator()(TemplateGenome& g, const GenomeSpace& space, Rng& rng) const { detail::mutate_genome(g, space, rate, eta, rng); }
};

// ---------------------------------------------------------------------------------------------------
// Template evolution
// ---------------------------------------------------------------------------------------------------

/// Evolves template genomes, maximising `fitness`: a generational GA with tournament selection (Goldberg &
/// Deb 1991), section-wise crossover, mutation (see below), and elitism (De Jong 1975).
///
/// Generation 0 holds the `seeds` (e.g. the templates in use) and random genomes (canonical order; required
/// kinds always, optional kinds with probability 1/2). Each following generation keeps the `elitism` best
/// unchanged and breeds the rest: two tournament winners, section-wise crossover with probability
/// crossover_rate (else a copy of the first), then mutation at mutation_rate per operator: replace a
/// section's variant, tweak a parameter (polynomial mutation, mutation_eta), swap two sections, insert an
/// absent kind, delete an optional section. A child identical to a parent keeps that parent's lineage.
/// Fitness is evaluated once per distinct genome_key (cached).
/// @throws ConfigError from params.validate() / space.validate(), or `seeds` larger than the population.
/// @throws ValidationError for a seed that does not fit the space (`seeds[1].sections[0].variant: ...`) or
///         a NaN fitness (`fitness: NaN for genome role:0|task:1`).
///
/// This is the general form with the crossover and mutation as parts (see SectionCrossover and
/// SectionMutation for the call signatures; with other operators params.mutation_rate and mutation_eta are
/// the operators' business); `evolve_templates` is the usual choice. Every offspring is checked against
/// the space: an operator producing an invalid genome raises ValidationError (`offspring.sections...`).
template <class Crossover = SectionCrossover, class Mutation = SectionMutation>
EvolutionResult evolve_templates_with(const GenomeSpace& space, const GenomeFitness& fitness, const GeneticParams& params,
                                      const std::vector<TemplateGenome>& seeds, const Crossover& crossover = {},
                                      const Mutation& mutation = {}) {
  params.validate();
  space.validate();
  if (!fitness) throw ConfigError("fitness", "is empty");
  if (seeds.size() > static_cast<std::size_t>(params.population))
    throw ConfigError("seeds", fmt::format("has {} genomes, more than the population {}", seeds.size(), params.population));
  for (std::size_t i = 0; i < seeds.size(); ++i) validate_genome(seeds[i], space, fmt::format("seeds[{}]", i));

  Rng rng(params.seed);
  std::map<std::string, double> cache;
  auto evaluate = [&](const TemplateGenome& g) {
    const std::string key = genome_key(g);
    const auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    const double f = fitness(g);
    if (std::isnan(f)) throw ValidationError("fitness", fmt::format("NaN for genome {}", key));
    cache.emplace(key, f);
    return f;
  };
  auto sort_best_first = [](std::vector<Individual>& pop) {
    std::stable_sort(pop.begin(), pop.end(), [](const Individual& a, const Individual& b) { return a.fitness > b.fitness; });
  };

  const auto n = static_cast<std::size_t>(params.population);
  std::vector<Individual> pop;
  pop.reserve(n);
  for (const auto& s : seeds) pop.push_back({s, evaluate(s), {}, 0});
  while (pop.size() < n) {
    TemplateGenome g = detail::random_genome(space, rng);
    pop.push_back({g, evaluate(g), {}, 0});
  }
  sort_best_first(pop);

  EvolutionResult result;
  auto record = [&] {
    std::vector<double> f;
    for (const auto& ind : pop) f.push_back(ind.fitness);
    result.best_per_generation.push_back(pop.front().fitness);
    result.mean_per_generation.push_back(detail::ga_mean(f));
  };
  record();

  for (int gen = 1; gen <= params.generations; ++gen) {
    std::vector<Individual> next(pop.begin(), pop.begin() + params.elitism);
    while (next.size() < n) {
      const Individual& p1 = pop[detail::ga_tournament(n, params.tournament_size, rng)];
      const Individual& p2 = pop[detail::ga_tournament(n, params.tournament_size, rng)];
      const std::string k1 = genome_key(p1.genome), k2 = genome_key(p2.genome);
      Individual child;
      if (detail::ga_bernoulli(rng, params.crossover_rate)) {
        child.genome = crossover(p1.genome, p2.genome, space, rng);
        child.parents = k1 == k2 ? std::vector<std::string>{k1} : std::vector<std::string>{k1, k2};
      } else {
        child.genome = p1.genome;
        child.parents = {k1};
      }
      mutation(child.genome, space, rng);
      validate_genome(child.genome, space, "offspring");
      const std::string key = genome_key(child.genome);
      if (key == k1) child = p1;
      else if (key == k2) child = p2;
      else {
        child.fitness = evaluate(child.genome);
        child.generation = gen;
      }
      next.push_back(std::move(child));
    }
    pop = std::move(next);
    sort_best_first(pop);
    record();
  }
  result.population = std::move(pop);
  result.evaluations = cache.size();
  return result;
}

/// Evolves template genomes with the default operators (section-wise crossover, SectionMutation at
/// params.mutation_rate / params.mutation_eta); see evolve_templates_with for the algorithm.
///
///     auto result = evolve_templates(space, fitness);  // population 50, 100 generations, mutation 0.1
inline EvolutionResult evolve_templates(const GenomeSpace& space, const GenomeFitness& fitness, const GeneticParams& params = {},
                                        const std::vector<TemplateGenome>& seeds = {}) {
  return evolve_templates_with(space, fitness, params, seeds, SectionCrossover{}, SectionMutation{params.mutation_rate, params.mutation_eta});
}

// ---------------------------------------------------------------------------------------------------
// Real-vector GA
// ---------------------------------------------------------------------------------------------------

/// What `evolve_real` returns.
struct RealGaResult {
  Eigen::VectorXd best;                     ///< Best point ever evaluated.
  double best_value = 0;                    ///< Its fitness.
  std::vector<double> best_per_generation;  ///< Best fitness so far: initial, then after each generation.
  std::size_t evaluations = 0;              ///< Fitness calls.
};

/// Maximises `fitness` over the box [lower, upper] with a real-coded generational GA: uniform initial
/// population, tournament selection (Goldberg & Deb 1991), SBX crossover with probability crossover_rate
/// (Deb & Agrawal 1995; eta = crossover_eta), polynomial mutation per variable with probability
/// mutation_rate (eta = mutation_eta), and elitism. population * (generations + 1) - elitism * generations
/// evaluations. A NaN fitness counts as -infinity.
/// @throws ConfigError from params.validate() or for empty, mismatched or non-finite bounds (`real_ga.bounds[2]`).
///
/// This is the general form with the operators as parts: `crossover(a, b, lower, upper, rng)` recombines
/// two parents in place (with probability params.crossover_rate), `mutation(x, lower, upper, rng)` perturbs
/// one; both keep points within the bounds (see SbxCrossover, PolynomialMutation; with other operators
/// params.crossover_eta, mutation_eta and mutation_rate are theirs to use or ignore). `evolve_real` is the
/// usual choice.
template <class Crossover = SbxCrossover, class Mutation = PolynomialMutation>
RealGaResult evolve_real_with(const std::function<double(const Eigen::VectorXd&)>& fitness, const Eigen::VectorXd& lower,
                              const Eigen::VectorXd& upper, const GeneticParams& params, const Crossover& sbx = {},
                              const Mutation& pm = {}) {
  params.validate();
  detail::ga_check_bounds(lower, upper, "real_ga");
  if (!fitness) throw ConfigError("fitness", "is empty");
  Rng rng(params.seed);
  const auto n = static_cast<std::size_t>(params.population);

  RealGaResult result;
  result.best_value = -std::numeric_limits<double>::infinity();
  result.best = lower;
  std::vector<std::pair<double, Eigen::VectorXd>> pop;  // (fitness, x), sorted best first
  auto evaluate = [&](const Eigen::VectorXd& x) {
    double f = fitness(x);
    ++result.evaluations;
    if (std::isnan(f)) f = -std::numeric_limits<double>::infinity();
    if (f > result.best_value || result.evaluations == 1) {
      result.best_value = f;
      result.best = x;
    }
    return f;
  };
  auto sort_best_first = [&] {
    std::stable_sort(pop.begin(), pop.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  };
  for (std::size_t i = 0; i < n; ++i) {
    Eigen::VectorXd x = detail::ga_uniform_point(lower, upper, rng);
    const double f = evaluate(x);
    pop.emplace_back(f, std::move(x));
  }
  sort_best_first();
  result.best_per_generation.push_back(result.best_value);
  for (int gen = 1; gen <= params.generations; ++gen) {
    std::vector<std::pair<double, Eigen::VectorXd>> next(pop.begin(), pop.begin() + params.elitism);
    while (next.size() < n) {
      Eigen::VectorXd a = pop[detail::ga_tournament(n, params.tournament_size, rng)].second;
      Eigen::VectorXd b = pop[detail::ga_tournament(n, params.tournament_size, rng)].second;
      if (detail::ga_bernoulli(rng, params.crossover_rate)) sbx(a, b, lower, upper, rng);
      pm(a, lower, upper, rng);
      pm(b, lower, upper, rng);
      const double fa = evaluate(a);
      next.emplace_back(fa, std::move(a));
      if (next.size() < n) {
        const double fb = evaluate(b);
        next.emplace_back(fb, std::move(b));
      }
    }
    pop = std::move(next);
    sort_best_first();
    result.best_per_generation.push_back(result.best_value);
  }
  return result;
}

/// Maximises `fitness` over [lower, upper] with SBX (params.crossover_eta) and polynomial mutation
/// (params.mutation_eta, per-variable probability params.mutation_rate; 1/n is the usual choice for n
/// variables); see evolve_real_with for the algorithm.
///
///     auto r = evolve_real([](const Eigen::VectorXd& x) { return -x.squaredNorm(); }, lower, upper);
inline RealGaResult evolve_real(const std::function<double(const Eigen::VectorXd&)>& fitness, const Eigen::VectorXd& lower,
                                const Eigen::VectorXd& upper, const GeneticParams& params = {}) {
  return evolve_real_with(fitness, lower, upper, params, SbxCrossover{params.crossover_eta},
                          PolynomialMutation{params.mutation_eta, params.mutation_rate});
}

// ---------------------------------------------------------------------------------------------------
// Fitness from logs
// ---------------------------------------------------------------------------------------------------

/// Predicted reward of a template from the logged rewards of its sections' past use: an additive model
///   reward ~ mu + sum over the genome's sections of beta[kind:variant]
/// fitted by ridge regression on section-variant indicators with an unpenalised intercept:
///   beta = (Sxx + lambda I)^-1 Sxy,  mu = mean(y) - mean(x) . beta,
/// where Sxx, Sxy are the centred cross-products. lambda (`prior_strength`) acts as a number of
/// pseudo-observations shrinking every effect toward 0, i.e. predictions toward the global mean; an unseen
/// variant contributes 0. Parameters and section order are ignored. The statistics (n, sums, X'X, X'y) are
/// sufficient and mergeable, and the coefficients are re-solved (LDLT, O(p^3) for p variants seen) on each
/// add / merge, so predict is a cheap const read. With no data predict returns 0.
/// Thread-safety: const members may be called concurrently; add / merge need exclusive access.
class SectionRewardModel {
 public:
  explicit SectionRewardModel(double prior_strength = 5.0) : lambda_(prior_strength) {
    if (!(prior_strength > 0 && std::isfinite(prior_strength)))
      throw ConfigError("section_reward_model.prior_strength", fmt::format("{} is not a finite number > 0", prior_strength));
  }

  /// Adds one observation: the genome used and the reward it earned.
  /// @throws ValidationError (`reward: nan is not a finite number`).
  void add(const TemplateGenome& g, double reward) {
    accumulate(g, reward);
    solve();
  }

  /// Adds many observations, solving once.
  void add(const std::vector<std::pair<TemplateGenome, double>>& observations) {
    for (const auto& [g, r] : observations) accumulate(g, r);
    solve();
  }

  /// Adds everything `other` has seen (the result equals adding both logs to one model).
  void merge(const SectionRewardModel& other) {
    std::vector<Eigen::Index> map(other.names_.size());
    for (std::size_t i = 0; i < other.names_.size(); ++i) map[i] = feature(other.names_[i]);
    n_ += other.n_;
    sum_y_ += other.sum_y_;
    for (std::size_t i = 0; i < map.size(); ++i) {
      sum_x_(map[i]) += other.sum_x_(static_cast<Eigen::Index>(i));
      xty_(map[i]) += other.xty_(static_cast<Eigen::Index>(i));
      for (std::size_t j = 0; j < map.size(); ++j)
        xtx_(map[i], map[j]) += other.xtx_(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j));
    }
    solve();
  }

  /// mu + sum of the effects of the genome's section variants.
  double predict(const TemplateGenome& g) const {
    double y = mu_;
    for (const auto& s : g.sections) {
      const auto it = index_.find(feature_name(s));
      if (it != index_.end()) y += beta_(it->second);
    }
    return y;
  }

  /// A GenomeFitness that calls predict (the model must outlive it).
  GenomeFitness as_fitness() const {
    return [this](const TemplateGenome& g) { return predict(g); };
  }

  /// The fitted effect of variant `variant` of `kind` (0 if never seen).
  double effect(const std::string& kind, std::size_t variant) const {
    const auto it = index_.find(fmt::format("{}:{}", kind, variant));
    return it == index_.end() ? 0.0 : beta_(it->second);
  }
  /// The fitted intercept (the global mean when every effect is 0).
  double intercept() const { return mu_; }
  /// Observations added.
  std::uint64_t count() const { return n_; }

  /// {"prior_strength", "n", "sum_y", "features": ["kind:variant", ...], "sum_x", "xtx" (row-major), "xty"}.
  nlohmann::json to_json() const {
    std::vector<double> xtx(static_cast<std::size_t>(xtx_.size()));
    for (Eigen::Index i = 0; i < xtx_.rows(); ++i)
      for (Eigen::Index j = 0; j < xtx_.cols(); ++j) xtx[static_cast<std::size_t>(i * xtx_.cols() + j)] = xtx_(i, j);
    return nlohmann::json{{"prior_strength", lambda_},
                          {"n", n_},
                          {"sum_y", sum_y_},
                          {"features", names_},
                          {"sum_x", std::vector<double>(sum_x_.data(), sum_x_.data() + sum_x_.size())},
                          {"xtx", xtx},
                          {"xty", std::vector<double>(xty_.data(), xty_.data() + xty_.size())}};
  }

  /// Restores a model written by to_json.
  /// @throws ValidationError naming the field (`section_reward_model.xtx: has 3 values, expected 4`).
  static SectionRewardModel from_json(const nlohmann::json& j) {
    const std::string pre = "section_reward_model.";
    auto need = [&](const char* key) -> const nlohmann::json& {
      if (!j.is_object() || !j.contains(key)) throw ValidationError(pre + key, "is missing");
      return j.at(key);
    };
    const auto& ps = need("prior_strength");
    if (!ps.is_number() || !(ps.get<double>() > 0)) throw ValidationError(pre + "prior_strength", fmt::format("{} is not a number > 0", ps.dump()));
    SectionRewardModel m(ps.get<double>());
    const auto& n = need("n");
    if (!n.is_number_unsigned() && !(n.is_number_integer() && n.get<std::int64_t>() >= 0))
      throw ValidationError(pre + "n", fmt::format("expected an unsigned integer, got {}", n.dump()));
    const auto& sy = need("sum_y");
    if (!sy.is_number()) throw ValidationError(pre + "sum_y", fmt::format("expected a number, got {}", sy.dump()));
    const auto& feats = need("features");
    if (!feats.is_array()) throw ValidationError(pre + "features", "expected an array of strings");
    for (std::size_t i = 0; i < feats.size(); ++i) {
      if (!feats[i].is_string()) throw ValidationError(fmt::format("{}features[{}]", pre, i), "expected a string");
      if (m.index_.count(feats[i].get<std::string>()))
        throw ValidationError(fmt::format("{}features[{}]", pre, i), fmt::format("{} is repeated", feats[i].dump()));
      m.feature(feats[i].get<std::string>());
    }
    const std::size_t p = feats.size();
    auto numbers = [&](const char* key, std::size_t expected) {
      const auto& a = need(key);
      if (!a.is_array() || a.size() != expected)
        throw ValidationError(pre + key, fmt::format("has {} values, expected {}", a.is_array() ? a.size() : 0, expected));
      std::vector<double> v;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (!a[i].is_number()) throw ValidationError(fmt::format("{}{}[{}]", pre, key, i), "expected a number");
        v.push_back(a[i].get<double>());
      }
      return v;
    };
    const auto sx = numbers("sum_x", p), xtx = numbers("xtx", p * p), xty = numbers("xty", p);
    m.n_ = n.get<std::uint64_t>();
    m.sum_y_ = sy.get<double>();
    for (std::size_t i = 0; i < p; ++i) {
      m.sum_x_(static_cast<Eigen::Index>(i)) = sx[i];
      m.xty_(static_cast<Eigen::Index>(i)) = xty[i];
      for (std::size_t k = 0; k < p; ++k) m.xtx_(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k)) = xtx[i * p + k];
    }
    m.solve();
    return m;
  }

 private:
  static std::string feature_name(const SectionGene& s) { return fmt::format("{}:{}", s.kind, s.variant); }

  Eigen::Index feature(const std::string& name) {
    const auto it = index_.find(name);
    if (it != index_.end()) return it->second;
    const auto p = static_cast<Eigen::Index>(names_.size());
    names_.push_back(name);
    index_.emplace(name, p);
    sum_x_.conservativeResize(p + 1);
    sum_x_(p) = 0;
    xty_.conservativeResize(p + 1);
    xty_(p) = 0;
    xtx_.conservativeResize(p + 1, p + 1);
    xtx_.row(p).setZero();
    xtx_.col(p).setZero();
    beta_.conservativeResize(p + 1);
    beta_(p) = 0;
    return p;
  }

  void accumulate(const TemplateGenome& g, double reward) {
    if (!std::isfinite(reward)) throw ValidationError("reward", fmt::format("{} is not a finite number", reward));
    std::vector<Eigen::Index> f;
    for (const auto& s : g.sections) f.push_back(feature(feature_name(s)));
    std::sort(f.begin(), f.end());
    f.erase(std::unique(f.begin(), f.end()), f.end());
    ++n_;
    sum_y_ += reward;
    for (Eigen::Index a : f) {
      sum_x_(a) += 1;
      xty_(a) += reward;
      for (Eigen::Index b : f) xtx_(a, b) += 1;
    }
  }

  void solve() {
    if (n_ == 0) {
      mu_ = 0;
      beta_.setZero();
      return;
    }
    const double n = static_cast<double>(n_);
    const Eigen::VectorXd xbar = sum_x_ / n;
    const double ybar = sum_y_ / n;
    Eigen::MatrixXd a = xtx_ - n * xbar * xbar.transpose();
    a.diagonal().array() += lambda_;
    const Eigen::VectorXd b = xty_ - n * xbar * ybar;
    beta_ = a.ldlt().solve(b);
    mu_ = ybar - xbar.dot(beta_);
  }

  double lambda_;
  std::uint64_t n_ = 0;
  double sum_y_ = 0;
  std::vector<std::string> names_;
  std::map<std::string, Eigen::Index> index_;
  Eigen::VectorXd sum_x_ = Eigen::VectorXd::Zero(0);
  Eigen::MatrixXd xtx_ = Eigen::MatrixXd::Zero(0, 0);
  Eigen::VectorXd xty_ = Eigen::VectorXd::Zero(0);
  Eigen::VectorXd beta_ = Eigen::VectorXd::Zero(0);
  double mu_ = 0;
};

}  // namespace promptlearn::optimize
