// Repositories of the analysis (schema v5): the events the pattern detectors read, and the patterns and
// anomalies they write.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/store/store.hpp"

namespace promptlearn::store {
namespace {

/// The strings of a JSON array of strings (detected_keywords). A hand-written reader for the common
/// case (no escapes: what the collector writes for plain keywords), nlohmann for anything else; reading a
/// million rows, the difference is seconds.
void read_keywords(std::string_view text, std::vector<std::string>& out) {
  out.clear();
  if (text.empty()) return;
  if (text.find('\\') == std::string_view::npos) {
    std::size_t i = text.find('[');
    if (i == std::string_view::npos) return;
    while (true) {
      const std::size_t open = text.find('"', i + 1);
      if (open == std::string_view::npos) return;
      const std::size_t close = text.find('"', open + 1);
      if (close == std::string_view::npos) return;
      out.emplace_back(text.substr(open + 1, close - open - 1));
      i = close;
    }
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return;
  for (const auto& e : j)
    if (e.is_string()) out.push_back(e.get<std::string>());
}

double optional_double(const Statement& st, int col) {
  return st.is_null(col) ? patterns::kMissing : st.column_double(col);
}

}  // namespace

std::vector<patterns::EventRecord> Store::analysis_events(TimeMs from, TimeMs to, std::size_t limit) {
  // Three scans in primary-key order merged in memory, not a join: a join looks each interaction up in
  // outcomes and performance (two B-tree searches per row: 34 s for a million rows in a 1.8 GB file),
  // while the three sequential scans and the merge take ~2 s. The time filter is applied while scanning.
  Statement iq(db_,
               "SELECT interaction_id, timestamp, user_id, session_id, selected_template, enhancement_applied, "
               "domain, complexity_score, token_count, detected_keywords FROM interactions "
               "WHERE +timestamp >= ?1 AND +timestamp < ?2 ORDER BY interaction_id");  // '+': scan in key order
                                                                                     // (NOT INDEXED is not honoured
                                                                                     // on WITHOUT ROWID tables)
  iq.bind(1, format_rfc3339(from)).bind(2, format_rfc3339(to));
  std::vector<patterns::EventRecord> out;
  out.reserve(static_cast<std::size_t>(std::max<std::int64_t>(0, db_.query_int("SELECT count(*) FROM interactions"))));
  while (iq.step()) {
    patterns::EventRecord& e = out.emplace_back();
    e.interaction_id = iq.column_text(0);
    const auto t = try_parse_rfc3339(iq.column_view(1));
    if (!t) throw StorageError(-1, "interactions.timestamp of " + e.interaction_id + " is not RFC 3339");
    e.time = *t;
    e.user_id = iq.column_text(2);
    e.session_id = iq.column_text(3);
    e.template_id = iq.column_text(4);
    e.enhancement_applied = iq.is_null(5) || iq.column_int64(5) != 0;
    e.domain = iq.column_text(6);
    e.complexity = iq.is_null(7) ? 0 : static_cast<int>(iq.column_double(7) + 0.5);
    e.token_count = iq.is_null(8) ? 0 : static_cast<int>(iq.column_int64(8));
    read_keywords(iq.column_view(9), e.keywords);
  }
  // `out` is in interaction_id order, as are the two scans below: a merge.
  auto merge = [&](const char* sql, auto&& fill) {
    Statement q(db_, sql);
    std::size_t k = 0;
    while (q.step() && k < out.size()) {
      const std::string_view id = q.column_view(0);
      while (k < out.size() && std::string_view(out[k].interaction_id) < id) ++k;
      if (k < out.size() && std::string_view(out[k].interaction_id) == id) fill(out[k], q);
    }
  };
  merge("SELECT interaction_id, response_quality_score, user_satisfaction_rating, acceptance_rate, "
        "claude_response_time_ms FROM outcomes ORDER BY interaction_id",
        [](patterns::EventRecord& e, const Statement& q) {
          e.has_outcome = true;
          e.quality = optional_double(q, 1);
          e.satisfaction = optional_double(q, 2);
          e.accepted = !q.is_null(3) && q.column_double(3) >= 0.5;
          e.response_time_ms = optional_double(q, 4);
        });
  merge("SELECT interaction_id, total_processing_time_ms, template_selection_time_ms, "
        "enhancement_generation_time_ms, validation_time_ms, cleanup_time_ms FROM performance ORDER BY interaction_id",
        [](patterns::EventRecord& e, const Statement& q) {
          e.total_processing_ms = optional_double(q, 1);
          e.template_selection_ms = optional_double(q, 2);
          e.enhancement_generation_ms = optional_double(q, 3);
          e.validation_ms = optional_double(q, 4);
          e.cleanup_ms = optional_double(q, 5);
        });
  // Time order (ties by id, as scanned) by sorting indices and moving each record once, then the newest
  // `limit`.
  std::vector<std::uint32_t> order(out.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::uint32_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return out[a].time < out[b].time; });
  const std::size_t skip = out.size() > limit ? out.size() - limit : 0;
  std::vector<patterns::EventRecord> sorted;
  sorted.reserve(out.size() - skip);
  for (std::size_t i = skip; i < order.size(); ++i) sorted.push_back(std::move(out[order[i]]));
  return sorted;
}

void Store::insert_pattern(const PatternRow& p) {
  auto& st = db_.cached(
      "INSERT INTO patterns (kind, type, subject, confidence, description, recommendation, evidence, window_start, "
      "window_end, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  st.bind(1, p.kind).bind(2, p.type).bind(3, p.subject).bind(4, p.confidence).bind(5, p.description);
  st.bind(6, p.recommendation).bind(7, p.evidence).bind(8, format_rfc3339(p.window_start));
  st.bind(9, format_rfc3339(p.window_end)).bind(10, format_rfc3339(p.created_at));
  st.run();
}

void Store::insert_anomaly(const AnomalyRow& a) {
  auto& st = db_.cached(
      "INSERT INTO anomalies (metric, subject, interaction_id, timestamp, value, score, detector, created_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  st.bind(1, a.metric).bind(2, a.subject);
  if (a.interaction_id.empty()) st.bind_null(3);
  else st.bind(3, a.interaction_id);
  st.bind(4, format_rfc3339(a.timestamp)).bind(5, a.value).bind(6, a.score).bind(7, a.detector);
  st.bind(8, format_rfc3339(a.created_at));
  st.run();
}

std::vector<PatternRow> Store::patterns_since(TimeMs since) {
  auto& st = db_.cached(
      "SELECT kind, type, subject, confidence, description, recommendation, evidence, window_start, window_end, "
      "created_at FROM patterns WHERE created_at >= ?1 ORDER BY created_at DESC, id DESC");
  st.bind(1, format_rfc3339(since));
  std::vector<PatternRow> out;
  while (st.step()) {
    PatternRow& p = out.emplace_back();
    p.kind = st.column_text(0);
    p.type = st.column_text(1);
    p.subject = st.column_text(2);
    p.confidence = st.column_double(3);
    p.description = st.column_text(4);
    p.recommendation = st.column_text(5);
    p.evidence = st.column_text(6);
    p.window_start = try_parse_rfc3339(st.column_view(7)).value_or(0);
    p.window_end = try_parse_rfc3339(st.column_view(8)).value_or(0);
    p.created_at = try_parse_rfc3339(st.column_view(9)).value_or(0);
  }
  st.reset();
  return out;
}

std::int64_t Store::prune_patterns(TimeMs before) {
  const std::string cutoff = format_rfc3339(before);
  std::int64_t n = 0;
  for (const char* sql : {"DELETE FROM patterns WHERE created_at < ?1", "DELETE FROM anomalies WHERE created_at < ?1"}) {
    auto& st = db_.cached(sql);
    st.bind(1, cutoff);
    st.run();
    n += db_.changes();
  }
  return n;
}

}  // namespace promptlearn::store
