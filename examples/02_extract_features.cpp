// 02: the feature extractor on its own (no database): features and the learner's vector.
#include <iostream>
#include <nlohmann/json.hpp>

#include "promptlearn/features/extractor.hpp"

int main() {
  promptlearn::features::FeatureExtractor extractor;  // hash_dim 256
  promptlearn::features::CorpusStats corpus;          // document frequencies for TF-IDF
  const char* prompts[] = {
      "Write a Dockerfile for the Flask API. Use a non-root user and pin every image version.",
      "Summarize the literature on contextual bandits for recommendation. Cite the key papers.",
      "Fix the bug in the JSON parser:\n```python\ndef parse(s):\n    return json.loads(s[1:])\n```",
  };
  for (const char* p : prompts) corpus.add_document(extractor.terms(p));

  promptlearn::features::ContextInput ctx;
  ctx.recent_files = {"src/parser.py"};
  ctx.git_branch = "fix/parser";
  for (const char* p : prompts) {
    auto f = extractor.extract(p, ctx, corpus);
    nlohmann::json j;
    promptlearn::features::to_json(j, f);
    std::cout << j.dump() << "\n";
    Eigen::VectorXd v = extractor.vectorize(f, 9);
    std::cout << "  vector dimension " << v.size() << ", norm " << v.norm() << "\n";
    if (v.size() != extractor.dimension()) return 1;
  }
  return 0;
}
