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
  // The newest `limit` rows of the window, then returned oldest first.
  Statement st(db_,
               "SELECT i.interaction_id, i.timestamp, i.user_id, i.session_id, i.selected_template, "
               "i.enhancement_applied, i.domain, i.complexity_score, i.token_count, i.detected_keywords, "
               "o.interaction_id IS NOT NULL, o.response_quality_score, o.user_satisfaction_rating, "
               "o.acceptance_rate, o.claude_response_time_ms, p.total_processing_time_ms, "
               "p.template_selection_time_ms, p.enhancement_generation_time_ms, p.validation_time_ms, "
               "p.cleanup_time_ms FROM interactions i LEFT JOIN outcomes o USING (interaction_id) "
               "LEFT JOIN performance p USING (interaction_id) WHERE i.timestamp >= ?1 AND i.timestamp < ?2 "
               "ORDER BY i.timestamp DESC LIMIT ?3");
  st.bind(1, format_rfc3339(from)).bind(2, format_rfc3339(to)).bind(3, static_cast<std::int64_t>(limit));
  std::vector<patterns::EventRecord> out;
  while (st.step()) {
    patterns::EventRecord& e = out.emplace_back();
    e.interaction_id = st.column_text(0);
    const auto t = try_parse_rfc3339(st.column_view(1));
    if (!t) throw StorageError(-1, "interactions.timestamp of " + e.interaction_id + " is not RFC 3339");
    e.time = *t;
    e.user_id = st.column_text(2);
    e.session_id = st.column_text(3);
    e.template_id = st.column_text(4);
    e.enhancement_applied = st.is_null(5) || st.column_int64(5) != 0;
    e.domain = st.column_text(6);
    e.complexity = st.is_null(7) ? 0 : static_cast<int>(st.column_double(7) + 0.5);
    e.token_count = st.is_null(8) ? 0 : static_cast<int>(st.column_int64(8));
    read_keywords(st.column_view(9), e.keywords);
    e.has_outcome = st.column_int64(10) != 0;
    e.quality = optional_double(st, 11);
    e.satisfaction = optional_double(st, 12);
    e.accepted = !st.is_null(13) && st.column_double(13) >= 0.5;
    e.response_time_ms = optional_double(st, 14);
    e.total_processing_ms = optional_double(st, 15);
    e.template_selection_ms = optional_double(st, 16);
    e.enhancement_generation_ms = optional_double(st, 17);
    e.validation_ms = optional_double(st, 18);
    e.cleanup_ms = optional_double(st, 19);
  }
  std::reverse(out.begin(), out.end());
  return out;
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
