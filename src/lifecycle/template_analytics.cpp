// Logs as inputs of the Pareto and rule optimisers (lifecycle/template_analytics.hpp).
#include "promptlearn/lifecycle/template_analytics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "promptlearn/core/time.hpp"
#include "promptlearn/optimize/pareto.hpp"
#include "promptlearn/store/store.hpp"

namespace promptlearn {

std::vector<TemplateTradeoff> template_pareto(LearningEngine& engine, std::size_t min_interactions) {
  engine.flush();
  store::Store st(engine.path());
  store::Statement q(st.db(),
                     "SELECT i.selected_template, count(o.response_quality_score), avg(o.response_quality_score), "
                     "avg(p.total_processing_time_ms), avg(i.enhanced_prompt_length) FROM interactions i "
                     "JOIN outcomes o ON o.interaction_id = i.interaction_id "
                     "LEFT JOIN performance p ON p.interaction_id = i.interaction_id "
                     "WHERE i.selected_template IS NOT NULL AND i.selected_template != '' "
                     "GROUP BY i.selected_template HAVING count(o.response_quality_score) >= ?1");
  q.bind(1, static_cast<std::int64_t>(min_interactions));
  std::vector<TemplateTradeoff> out;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  while (q.step()) {
    TemplateTradeoff t;
    t.template_id = q.column_text(0);
    t.interactions = static_cast<std::size_t>(q.column_int64(1));
    t.mean_quality = q.column_double(2);
    t.mean_latency_ms = q.is_null(3) ? nan : q.column_double(3);
    t.mean_prompt_length = q.is_null(4) ? nan : q.column_double(4);
    out.push_back(std::move(t));
  }
  if (out.empty()) return out;
  // Objectives, all minimised; a missing one counts as the worst observed (or 0 when none has it).
  auto worst = [&](double TemplateTradeoff::*field) {
    double w = 0;
    for (const auto& t : out)
      if (!std::isnan(t.*field)) w = std::max(w, t.*field);
    return w;
  };
  const double worst_latency = worst(&TemplateTradeoff::mean_latency_ms), worst_length = worst(&TemplateTradeoff::mean_prompt_length);
  std::vector<std::vector<double>> f;
  for (const auto& t : out)
    f.push_back({-t.mean_quality, std::isnan(t.mean_latency_ms) ? worst_latency : t.mean_latency_ms,
                 std::isnan(t.mean_prompt_length) ? worst_length : t.mean_prompt_length});
  const auto fronts = optimize::non_dominated_sort(f);
  for (std::size_t k = 0; k < fronts.size(); ++k) {
    const auto crowd = optimize::crowding_distance(f, fronts[k]);
    for (std::size_t i = 0; i < fronts[k].size(); ++i) {
      out[fronts[k][i]].front = k;
      out[fronts[k][i]].crowding = crowd[i];
    }
  }
  std::sort(out.begin(), out.end(), [](const TemplateTradeoff& a, const TemplateTradeoff& b) {
    return a.front != b.front ? a.front < b.front : a.mean_quality > b.mean_quality;
  });
  return out;
}

std::vector<optimize::RuleObservation> rule_observations(LearningEngine& engine, std::size_t limit) {
  engine.flush();
  store::Store st(engine.path());
  store::Statement q(st.db(),
                     "SELECT i.timestamp, i.complexity_score, i.token_count, i.domain, i.selected_template, "
                     "i.enhancement_applied, o.response_quality_score FROM interactions i "
                     "JOIN outcomes o ON o.interaction_id = i.interaction_id "
                     "WHERE o.response_quality_score IS NOT NULL ORDER BY i.timestamp DESC LIMIT ?1");
  q.bind(1, static_cast<std::int64_t>(limit));
  std::vector<optimize::RuleObservation> out;
  while (q.step()) {
    optimize::RuleObservation r;
    if (!q.is_null(1)) r.numbers["complexity"] = q.column_double(1);
    if (!q.is_null(2)) r.numbers["token_count"] = static_cast<double>(q.column_int64(2));
    if (auto t = try_parse_rfc3339(q.column_view(0))) r.numbers["hour"] = static_cast<double>((*t / 3600000LL) % 24);
    if (!q.is_null(3)) r.strings["domain"] = q.column_text(3);
    const std::string tmpl = q.is_null(4) ? "" : q.column_text(4);
    if (!tmpl.empty()) r.strings["template"] = tmpl;
    const bool applied = q.is_null(5) || q.column_int64(5) != 0;
    r.action_taken = applied ? "template:" + tmpl : "bypass";
    r.reward = q.column_double(6) / 10.0;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace promptlearn
