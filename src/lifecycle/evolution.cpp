// Template evolution in the engine (lifecycle/evolution.hpp).
#include "promptlearn/lifecycle/evolution.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <set>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/features/tokenizer.hpp"
#include "promptlearn/store/store.hpp"

namespace promptlearn {
namespace {

/// Genome keys of the templates in the file that carry a genome -> (template_id, version, genome).
struct KnownGenome {
  std::string template_id, version;
  bool active = false;
  optimize::TemplateGenome genome;
};

std::map<std::string, KnownGenome> known_genomes(store::Store& st, const optimize::GenomeSpace& space) {
  std::map<std::string, KnownGenome> out;
  for (const char* status : {"active", "retired", "candidate"})
    for (const auto& t : st.templates(status)) {
      const nlohmann::json m = nlohmann::json::parse(t.metadata, nullptr, false);
      if (!m.is_object() || !m.contains("genome")) continue;
      try {
        KnownGenome k{t.template_id, t.version, std::string(status) == "active", optimize::genome_from_json(m["genome"], space)};
        out.emplace(optimize::genome_key(k.genome), std::move(k));
      } catch (const Error&) {
        // a genome of another space: not part of this evolution
      }
    }
  return out;
}

}  // namespace

std::vector<EvolvedTemplate> evolve_templates(LearningEngine& engine, const optimize::GenomeSpace& space,
                                              const optimize::GenomeFitness& fitness, const EvolutionOptions& options) {
  space.validate();
  options.genetic.validate();
  if (options.candidates < 1) throw ConfigError("evolution.candidates", "must be >= 1");
  std::map<std::string, KnownGenome> known;
  {
    store::Store st(engine.path());
    known = known_genomes(st, space);
  }
  std::vector<optimize::TemplateGenome> seeds = options.seeds;
  if (seeds.empty())
    for (const auto& [key, k] : known)
      if (k.active) seeds.push_back(k.genome);
  const optimize::EvolutionResult result = optimize::evolve_templates(space, fitness, options.genetic, seeds);
  std::vector<EvolvedTemplate> added;
  // Two genomes with the same sections in another order and the same fitness: the fitness cannot tell
  // them apart, so only the first is registered (an action that differs in nothing measured wastes traffic).
  auto content_key = [](const optimize::TemplateGenome& g) {
    std::vector<std::string> parts;
    for (const auto& sec : g.sections) {
      optimize::TemplateGenome one;
      one.sections = {sec};
      parts.push_back(optimize::genome_key(one));
    }
    std::sort(parts.begin(), parts.end());
    return fmt::format("{}", fmt::join(parts, "|"));
  };
  std::set<std::pair<std::string, double>> registered_content;
  const TimeMs now = engine.clock().now_ms();
  for (const optimize::Individual& ind : result.best_distinct(result.population.size())) {
    if (added.size() >= options.candidates) break;
    const std::string key = optimize::genome_key(ind.genome);
    if (known.count(key)) continue;  // already a template
    if (!registered_content.insert({content_key(ind.genome), ind.fitness}).second) continue;
    EvolvedTemplate e;
    e.template_id = options.id_prefix + fmt::format("{:016x}", features::stable_hash(key));
    e.version = "1";
    e.genome_key = key;
    e.fitness = ind.fitness;
    e.parents = ind.parents;
    e.generation = ind.generation;
    std::string parent_id, parent_version;
    for (const auto& p : ind.parents)
      if (auto it = known.find(p); it != known.end()) {
        parent_id = it->second.template_id;
        parent_version = it->second.version;
        break;
      }
    const nlohmann::json metadata = {{"genome", optimize::to_json(ind.genome)}, {"genome_key", key},
                                     {"parents", ind.parents},                 {"generation", ind.generation},
                                     {"fitness", ind.fitness},                 {"evolved_at", format_rfc3339(now)}};
    engine.register_template(e.template_id, e.version, optimize::render(ind.genome, space), parent_id, parent_version,
                             metadata.dump());
    known.emplace(key, KnownGenome{e.template_id, e.version, true, ind.genome});
    added.push_back(std::move(e));
  }
  return added;
}

optimize::SectionRewardModel section_reward_model(LearningEngine& engine, const optimize::GenomeSpace& space,
                                                  double prior_strength) {
  optimize::SectionRewardModel model(prior_strength);
  engine.flush();
  store::Store st(engine.path());
  const std::map<std::string, KnownGenome> known = known_genomes(st, space);
  std::map<std::pair<std::string, std::string>, const optimize::TemplateGenome*> by_template;
  for (const auto& [key, k] : known) by_template[{k.template_id, k.version}] = &k.genome;
  if (by_template.empty()) return model;
  std::vector<std::pair<optimize::TemplateGenome, double>> observations;
  store::Statement q(st.db(), "SELECT chosen_template, chosen_version, reward FROM decisions WHERE reward IS NOT NULL");
  while (q.step()) {
    const auto it = by_template.find({q.column_text(0), q.column_text(1)});
    if (it != by_template.end()) observations.emplace_back(*it->second, q.column_double(2));
  }
  if (!observations.empty()) model.add(observations);
  return model;
}

}  // namespace promptlearn
