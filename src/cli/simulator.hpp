#pragma once
// A synthetic prompt-enhancement host: prompts from a small generator, users, sessions, templates,
// and outcomes from a hidden reward model. Used by `promptlearn demo` and `promptlearn_bench`.
// Deterministic given the seed.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "promptlearn/core/rng.hpp"
#include "promptlearn/core/time.hpp"

namespace promptlearn::sim {

struct DomainSpec {
  const char* name;
  std::vector<const char*> openings;
  std::vector<const char*> subjects;
  std::vector<const char*> constraints;
  std::vector<const char*> files;
};

inline const std::vector<DomainSpec>& domains() {
  static const std::vector<DomainSpec> kDomains = {
      {"programming",
       {"Fix the bug in", "Refactor", "Write unit tests for", "Add type hints to", "Explain the recursion in",
        "Optimize the hot loop in", "Implement a function that parses"},
       {"the JSON parser", "the user service class", "the async HTTP client", "the binary search tree insert method",
        "the React component that renders the table", "the SQL query builder", "the CLI argument parser"},
       {"Keep the public API unchanged.", "It must compile with -Wall -Werror.", "Use Python 3.11.",
        "Avoid global state.", "Return an error instead of throwing."},
       {"src/parser.py", "lib/client.ts", "src/main.rs", "app/models.go", "include/tree.hpp"}},
      {"writing",
       {"Write a blog post about", "Draft an email to my team announcing", "Proofread my essay on",
        "Write a short story about", "Rewrite this paragraph about"},
       {"our quarterly results", "the benefits of remote work", "a lighthouse keeper", "climate adaptation in cities",
        "the history of the printing press"},
       {"Keep it under 300 words.", "Use a friendly tone.", "Avoid jargon.", "End with a call to action."},
       {"drafts/post.md", "notes/essay.docx"}},
      {"data_analysis",
       {"Analyze the dataset of", "Build a pandas pipeline that aggregates", "Plot the distribution of",
        "Compute the correlation between", "Run a regression on"},
       {"monthly sales by region", "customer churn and tenure", "sensor readings with missing values",
        "A/B test conversion rates", "survey responses in the CSV"},
       {"Report confidence intervals.", "Handle missing values explicitly.", "Use a log scale for the y axis."},
       {"analysis/notebook.ipynb", "data/sales.csv", "scripts/report.R"}},
      {"devops",
       {"Write a Dockerfile for", "Set up a GitHub Actions workflow that deploys", "Debug the Kubernetes pod running",
        "Write a Terraform module for", "Configure nginx as a reverse proxy for"},
       {"the Flask API", "the staging cluster", "the Postgres database", "the metrics exporter",
        "the nightly backup job"},
       {"Use a non-root user.", "Pin every image version.", "Keep the build under five minutes."},
       {"Dockerfile", "deploy/k8s.yaml", ".github/workflows/ci.yml", "infra/main.tf"}},
      {"research",
       {"Summarize the literature on", "Compare the main approaches to", "What does the evidence say about",
        "Explain the methodology of studies on", "List open questions about"},
       {"contextual bandits for recommendation", "sleep and memory consolidation", "carbon capture costs",
        "transformer interpretability", "the replication crisis in psychology"},
       {"Cite the key papers.", "Separate consensus from speculation.", "Keep it to one page."},
       {"papers/review.bib", "notes/reading.md"}},
  };
  return kDomains;
}

/// Templates the simulated host can apply.
inline const std::vector<const char*>& template_ids() {
  static const std::vector<const char*> kTemplates = {"plain", "structured_task", "role_expert", "step_by_step",
                                                      "examples_first"};
  return kTemplates;
}

/// Index of a template id in template_ids() (-1 when it is not one).
inline int template_index(const std::string& id) {
  const auto& ids = template_ids();
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (id == ids[i]) return static_cast<int>(i);
  return -1;
}

struct SimUser {
  std::string id;
  int favourite_domain;
  double skill;            // 0..1
  int favourite_template;  // this user's own preference: +kUserBonus quality with it
};

/// A prompt the simulated host is about to enhance (before any template is chosen).
struct SimPrompt {
  std::string interaction_id;
  int domain = 0;
  std::size_t user = 0;
  nlohmann::json interaction;  // input_data + context_data (no enhancement_data yet)
};

/// One simulated interaction: the documents a host would send.
struct SimInteraction {
  std::string interaction_id;
  std::string domain;
  std::string template_id;
  nlohmann::json interaction;  // input/context/enhancement
  nlohmann::json performance;  // performance_metrics document
  nlohmann::json outcome;      // outcome_data document
  double quality = 0;
};

/// Generates prompts, users and outcomes. The hidden reward model: each domain has a best template,
/// each user has a favourite template of their own (personalisation), skill raises quality.
class HostSimulator {
 public:
  static constexpr double kUserBonus = 1.5;

  explicit HostSimulator(std::uint64_t seed, int users = 12) : rng_(seed) {
    for (int u = 0; u < users; ++u)
      users_.push_back({fmt::format("user-{:02d}", u), static_cast<int>(rng_.uniform_int(0, domains().size() - 1)),
                        rng_.uniform(0.2, 0.9), static_cast<int>(rng_.uniform_int(0, template_ids().size() - 1))});
  }

  /// Mean quality (0-10) of template t for a prompt of domain d by user u: the hidden truth.
  double expected_quality(const SimPrompt& p, int t) const {
    const SimUser& u = users_[p.user];
    return std::clamp(true_quality(p.domain, t, u.skill) + (t == u.favourite_template ? kUserBonus : 0.0) +
                          (shifted_ ? shift(p.domain, t) : 0.0),
                      0.0, 10.0);
  }

  /// The hidden reward model changes (the demo's mid-run shift): on programming prompts structured_task
  /// loses 2.5 and step_by_step gains 1.5, as if the model behind the host had changed.
  void shift_reward_model(bool on = true) { shifted_ = on; }
  bool reward_model_shifted() const { return shifted_; }
  static double shift(int d, int t) {
    if (d != 0) return 0.0;
    return t == 1 ? -2.5 : t == 3 ? 1.5 : 0.0;
  }

  /// A prompt with the given text (a real prompt from a file) in domain `domain`, by a random user.
  SimPrompt prompt_with_text(TimeMs now, const std::string& text, int domain) {
    SimPrompt p = prompt(now);
    p.domain = domain;
    p.interaction["input_data"]["raw_prompt"] = text;
    return p;
  }

  /// The best template for a prompt (the oracle) and its expected quality.
  std::pair<int, double> oracle(const SimPrompt& p) const {
    int best = 0;
    for (int t = 1; t < static_cast<int>(template_ids().size()); ++t)
      if (expected_quality(p, t) > expected_quality(p, best)) best = t;
    return {best, expected_quality(p, best)};
  }

  /// Mean expected quality over all templates (what a uniformly random choice earns).
  double random_quality(const SimPrompt& p) const {
    double s = 0;
    for (int t = 0; t < static_cast<int>(template_ids().size()); ++t) s += expected_quality(p, t);
    return s / static_cast<double>(template_ids().size());
  }

  /// A new prompt arriving at `now`.
  SimPrompt prompt(TimeMs now) {
    SimPrompt p;
    p.user = static_cast<std::size_t>(rng_.uniform_int(0, static_cast<std::int64_t>(users_.size()) - 1));
    const SimUser& user = users_[p.user];
    p.domain = rng_.bernoulli(0.7) ? user.favourite_domain : static_cast<int>(rng_.uniform_int(0, domains().size() - 1));
    const DomainSpec& spec = domains()[static_cast<std::size_t>(p.domain)];
    std::string text = fmt::format("{} {}.", pick(spec.openings), pick(spec.subjects));
    int n_constraints = static_cast<int>(rng_.uniform_int(0, 3));
    for (int i = 0; i < n_constraints; ++i) text += " " + std::string(pick(spec.constraints));
    p.interaction_id = rng_.uuid_v4();
    p.interaction = {{"interaction_id", p.interaction_id},
                     {"timestamp", format_rfc3339(now)},
                     {"session_id", fmt::format("{}-s{}", user.id, now / (3 * 3600 * 1000))},
                     {"user_id", user.id},
                     {"input_data", {{"raw_prompt", text}}},
                     {"context_data",
                      {{"working_directory", fmt::format("/home/{}/projects/app", user.id)},
                       {"recent_files", {pick(spec.files)}},
                       {"git_branch", rng_.bernoulli(0.5) ? "main" : "feature/improve-flow"},
                       {"ide_detected", rng_.bernoulli(0.6) ? "vscode" : "claude-code"}}}};
    return p;
  }

  /// The outcome document of applying template t to prompt p (quality drawn around the truth).
  nlohmann::json outcome(const SimPrompt& p, int t, double* quality_out = nullptr) {
    double quality = std::clamp(rng_.normal(expected_quality(p, t), 1.0), 0.0, 10.0);
    if (quality_out) *quality_out = quality;
    double q01 = quality / 10.0;
    return {{"interaction_id", p.interaction_id},
            {"outcome_data",
             {{"claude_response_time_ms", std::max(200.0, rng_.normal(2500, 600))},
              {"response_quality_score", quality},
              {"user_satisfaction_rating", std::clamp(1.0 + 9.0 * q01 + rng_.normal(0, 0.5), 1.0, 10.0)},
              {"feedback_data", {{"implicit_feedback", {{"edit_action_count", rng_.uniform_int(0, 4)}, {"acceptance_rate", q01}}}}}}}};
  }

  /// Mean quality (0-10) of template t for a domain d: the hidden truth (before the user's own bonus).
  static double true_quality(int d, int t, double skill) {
    static const double kBase[5][5] = {{5.5, 7.5, 6.0, 6.5, 7.0},
                                       {6.5, 5.5, 7.5, 5.0, 6.0},
                                       {5.0, 6.5, 6.0, 7.5, 6.0},
                                       {5.0, 7.0, 6.5, 6.0, 7.5},
                                       {6.0, 6.0, 7.5, 7.0, 5.0}};
    return kBase[d][t] + 1.5 * (skill - 0.5);
  }

  SimInteraction next(TimeMs now) {
    const SimUser& user = users_[static_cast<std::size_t>(rng_.uniform_int(0, users_.size() - 1))];
    int d = rng_.bernoulli(0.7) ? user.favourite_domain : static_cast<int>(rng_.uniform_int(0, domains().size() - 1));
    const DomainSpec& spec = domains()[static_cast<std::size_t>(d)];
    std::string prompt = fmt::format("{} {}.", pick(spec.openings), pick(spec.subjects));
    int n_constraints = static_cast<int>(rng_.uniform_int(0, 3));
    for (int i = 0; i < n_constraints; ++i) prompt += " " + std::string(pick(spec.constraints));
    int t = static_cast<int>(rng_.uniform_int(0, template_ids().size() - 1));
    SimInteraction s;
    s.interaction_id = rng_.uuid_v4();
    s.domain = spec.name;
    s.template_id = template_ids()[static_cast<std::size_t>(t)];
    std::string session = fmt::format("{}-s{}", user.id, now / (3 * 3600 * 1000));
    s.interaction = {{"interaction_id", s.interaction_id},
                     {"timestamp", format_rfc3339(now)},
                     {"session_id", session},
                     {"user_id", user.id},
                     {"input_data", {{"raw_prompt", prompt}}},
                     {"context_data",
                      {{"working_directory", fmt::format("/home/{}/projects/app", user.id)},
                       {"recent_files", {pick(spec.files)}},
                       {"git_branch", rng_.bernoulli(0.5) ? "main" : "feature/improve-flow"},
                       {"ide_detected", rng_.bernoulli(0.6) ? "vscode" : "claude-code"}}},
                     {"enhancement_data",
                      {{"selected_template", s.template_id},
                       {"template_version", "1"},
                       {"enhancement_applied", true},
                       {"enhancement_time_ms", rng_.uniform(5, 40)},
                       {"enhanced_prompt_length", static_cast<std::int64_t>(prompt.size() * 2)}}}};
    double total = std::max(20.0, rng_.normal(120, 30));
    s.performance = {{"interaction_id", s.interaction_id},
                     {"performance_metrics",
                      {{"total_processing_time_ms", total},
                       {"template_selection_time_ms", total * 0.1},
                       {"enhancement_generation_time_ms", total * 0.6},
                       {"validation_time_ms", total * 0.2},
                       {"cleanup_time_ms", total * 0.1},
                       {"resource_usage", {{"memory_peak_mb", rng_.uniform(40, 90)}, {"cpu_usage_percent", rng_.uniform(5, 60)}, {"disk_io_mb", rng_.uniform(0, 2)}}},
                       {"cache_performance", {{"template_cache_hit", rng_.bernoulli(0.8)}, {"analysis_cache_hit", rng_.bernoulli(0.6)}, {"cache_hit_rate", rng_.uniform(0.5, 0.95)}}}}}};
    s.quality = std::clamp(rng_.normal(true_quality(d, t, user.skill), 1.0), 0.0, 10.0);
    double q01 = s.quality / 10.0;
    s.outcome = {{"interaction_id", s.interaction_id},
                 {"outcome_data",
                  {{"claude_response_time_ms", std::max(200.0, rng_.normal(2500, 600))},
                   {"response_quality_score", s.quality},
                   {"user_satisfaction_rating", std::clamp(1.0 + 9.0 * q01 + rng_.normal(0, 0.5), 1.0, 10.0)},
                   {"quality_metrics", {{"completeness", q01}, {"accuracy", std::clamp(q01 + rng_.normal(0, 0.05), 0.0, 1.0)}, {"relevance", q01}, {"structure", q01}}},
                   {"feedback_data", {{"implicit_feedback", {{"copy_action_count", rng_.uniform_int(0, 3)}, {"edit_action_count", rng_.uniform_int(0, 4)}, {"acceptance_rate", q01}}}}}}}};
    return s;
  }

  Rng& rng() { return rng_; }

 private:
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(rng_.uniform_int(0, static_cast<std::int64_t>(v.size()) - 1))];
  }

  Rng rng_;
  std::vector<SimUser> users_;
  bool shifted_ = false;
};

}  // namespace promptlearn::sim
