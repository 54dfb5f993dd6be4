// `promptlearn features`: JSON lines with a `prompt` (and optional context_data) in, features out.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/core/records.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/features/extractor.hpp"

namespace promptlearn::cli {

int run_features(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn features [--db FILE [--config FILE]] [--hash-dim 256] [--human]\n"
                 "Reads JSON lines {\"prompt\": \"...\", \"context_data\": {...}} on stdin and prints one line of\n"
                 "features per input line. Keywords are ranked by TF-IDF against the database's corpus\n"
                 "statistics (--db, opened with the --config configuration) or, without it, against the lines\n"
                 "read so far. A line that cannot be read prints {\"line\": N, \"error\": \"...\"} and the command\n"
                 "goes on (exit status 1 at the end). --human: per input line a \"line N\" heading and the\n"
                 "features as indented `name  value` lines instead of JSON.\n";
    return 0;
  }
  features::FeatureOptions fo;
  fo.hash_dim = static_cast<int>(args.get_int("hash-dim", fo.hash_dim));
  fo.validate();
  const Config config = load_config(args);
  std::optional<LearningEngine> engine;
  if (auto db = args.get("db")) {
    EngineOptions eo;
    eo.features = fo;
    engine.emplace(*db, config, eo);
  }
  features::FeatureExtractor extractor(fo);
  features::CorpusStats corpus;
  const bool human = args.has("human");
  std::string line;
  long long n = 0;
  int status = 0;
  while (std::getline(std::cin, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    try {
      nlohmann::json doc = nlohmann::json::parse(line, nullptr, false);
      if (doc.is_discarded()) throw ValidationError("", "malformed JSON");
      if (!doc.is_object() || !doc.contains("prompt") || !doc["prompt"].is_string())
        throw ValidationError("prompt", "a string field \"prompt\" is required");
      ContextData ctx;
      if (doc.contains("context_data")) {
        // Validate the context exactly as the wire format does.
        nlohmann::json wrapper = {{"interaction_id", "00000000-0000-4000-8000-000000000000"},
                                  {"input_data", {{"raw_prompt", ""}}},
                                  {"context_data", doc["context_data"]}};
        ctx = *parse_event(wrapper).context_data;
      }
      const std::string& prompt = doc["prompt"].get_ref<const std::string&>();
      features::PromptFeatures f;
      if (engine) {
        f = engine->extract_features(prompt, ctx);
      } else {
        corpus.add_document(extractor.terms(prompt));
        f = extractor.extract(prompt, context_input(ctx), corpus);
      }
      nlohmann::json out;
      features::to_json(out, f);
      if (human) std::cout << "line " << n << "\n" << render_human(out, "  ");
      else std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } catch (const ValidationError& e) {
      if (human) std::cout << "line " << n << ": error: " << e.what() << "\n";
      else std::cout << nlohmann::json{{"line", n}, {"error", e.what()}}.dump() << "\n";
      status = 1;
    }
  }
  std::cout.flush();
  return status;
}

}  // namespace promptlearn::cli
