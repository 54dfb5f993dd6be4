#pragma once
/// @file
/// Template evolution in the engine (layer 4): the genetic algorithm of optimize/genetic.hpp produces
/// template candidates that enter the selector as new actions, each with its genome and lineage stored
/// in `templates.metadata`:
///
///     {"genome": {...}, "genome_key": "role:0|task:2|format:1", "parents": [genome keys],
///      "generation": 7, "fitness": 0.81, "evolved_at": "..."}
///
/// The fitness is pluggable (optimize::GenomeFitness): a host callback, or the logged rewards of the
/// sections' past use (section_reward_model: a ridge model over section-variant indicators fitted on the
/// rewards of decisions that chose templates with a stored genome). A registered candidate is an action at
/// once: the exploration floor gives it traffic, and its rewards feed the next section model.
///
///     auto model = promptlearn::section_reward_model(engine, space);
///     auto added = promptlearn::evolve_templates(engine, space, model.as_fitness());
#include <string>
#include <vector>

#include "promptlearn/engine.hpp"
#include "promptlearn/optimize/genetic.hpp"

namespace promptlearn {

/// Options of evolve_templates.
struct EvolutionOptions {
  optimize::GeneticParams genetic;       ///< population 50, generations 100, mutation_rate 0.1, ...
  std::size_t candidates = 3;            ///< the best distinct genomes registered (those not registered yet)
  std::string id_prefix = "evolved-";    ///< template_id = prefix + a hash of the genome key
  /// Genomes to start from (e.g. the genomes of the best current templates); empty = the active templates
  /// that carry a genome in their metadata.
  std::vector<optimize::TemplateGenome> seeds;
};

/// One template registered by evolve_templates.
struct EvolvedTemplate {
  std::string template_id, version;      ///< version "1"
  std::string genome_key;
  double fitness = 0;
  std::vector<std::string> parents;      ///< genome keys
  int generation = 0;
};

/// Runs the genetic algorithm and registers the best `candidates` distinct genomes that are not templates
/// already (same genome key) as new active templates (body = optimize::render); of genomes with the same
/// sections in another order and the same fitness only the first is registered. The first parent that is
/// a registered template is recorded as the template parent (its statistics warm-start the new action).
/// @throws ConfigError (bad space or parameters), ValidationError (a seed outside the space), StorageError
std::vector<EvolvedTemplate> evolve_templates(LearningEngine& engine, const optimize::GenomeSpace& space,
                                              const optimize::GenomeFitness& fitness, const EvolutionOptions& options = {});

/// The logged rewards of templates with a stored genome, fitted into a SectionRewardModel (genomes that
/// are not valid in `space` are left out). @throws StorageError
optimize::SectionRewardModel section_reward_model(LearningEngine& engine, const optimize::GenomeSpace& space,
                                                  double prior_strength = 5.0);

}  // namespace promptlearn
