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
  std::vector<std::vector<patterns::EventRecord>> parts;
  parts.push_back(analysis_events_in_keys(from, to, "", ""));
  return time_ordered(std::move(parts), limit);
}

std::vector<patterns::EventRecord> Store::analysis_events_in_keys(TimeMs from, TimeMs to, const std::string& key_lo,
                                                                  const std::string& key_hi) {
  // Three scans in primary-key order merged in memory, not a join: a join looks each interaction up in
  // outcomes and performance (two B-tree searches per row: 34 s for a million rows in a 1.8 GB file),
  // while the three sequential scans and the merge take ~2 s. The time filter is applied while scanning;
  // the key range is a B-tree range of each table.
  std::string keys;
  if (!key_lo.empty()) keys += " AND interaction_id >= ?3";
  if (!key_hi.empty()) keys += " AND interaction_id < ?4";
  auto bind_keys = [&](Statement& st) {
    if (!key_lo.empty()) st.bind(3, key_lo);
    if (!key_hi.empty()) st.bind(4, key_hi);
  };
  Statement iq(db_,
               "SELECT interaction_id, timestamp, user_id, session_id, selected_template, enhancement_applied, "
               "domain, complexity_score, token_count, detected_keywords FROM interactions "
               "WHERE +timestamp >= ?1 AND +timestamp < ?2" + keys +
                   " ORDER BY interaction_id");  // '+': scan in key order (NOT INDEXED is not honoured on
                                                 // WITHOUT ROWID tables)
  iq.bind(1, format_rfc3339(from)).bind(2, format_rfc3339(to));
  bind_keys(iq);
  std::vector<patterns::EventRecord> out;
  if (key_lo.empty() && key_hi.empty())
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
  auto merge = [&](const std::string& sql, auto&& fill) {
    Statement q(db_, sql + (keys.empty() ? "" : " WHERE 1" + keys) + " ORDER BY interaction_id");
    bind_keys(q);
    std::size_t k = 0;
    while (q.step() && k < out.size()) {
      const std::string_view id = q.column_view(0);
      while (k < out.size() && std::string_view(out[k].interaction_id) < id) ++k;
      if (k < out.size() && std::string_view(out[k].interaction_id) == id) fill(out[k], q);
    }
  };
  merge("SELECT interaction_id, response_quality_score, user_satisfaction_rating, acceptance_rate, "
        "claude_response_time_ms FROM outcomes",
        [](patterns::EventRecord& e, const Statement& q) {
          e.has_outcome = true;
          e.quality = optional_double(q, 1);
          e.satisfaction = optional_double(q, 2);
          e.accepted = !q.is_null(3) && q.column_double(3) >= 0.5;
          e.response_time_ms = optional_double(q, 4);
        });
  merge("SELECT interaction_id, total_processing_time_ms, template_selection_time_ms, "
        "enhancement_generation_time_ms, validation_time_ms, cleanup_time_ms FROM performance",
        [](patterns::EventRecord& e, const Statement& q) {
          e.total_processing_ms = optional_double(q, 1);
          e.template_selection_ms = optional_double(q, 2);
          e.enhancement_generation_ms = optional_double(q, 3);
          e.validation_ms = optional_double(q, 4);
          e.cleanup_ms = optional_double(q, 5);
        });
  return out;
}

std::vector<std::string> Store::interaction_key_splits(int parts, TimeMs from, TimeMs to) {
  std::vector<std::string> out;
  if (parts < 2 || to <= from) return out;
  // A sample of the window's ids: the first interaction at or after each of kSamples evenly spaced times
  // (one index seek each), whose quantiles are the boundaries. The split is always a partition; the
  // sample only decides how even it is.
  constexpr int kSamples = 512;
  Statement q(db_, "SELECT interaction_id FROM interactions WHERE timestamp >= ?1 AND timestamp < ?2 ORDER BY timestamp LIMIT 1");
  std::vector<std::string> sample;
  for (int k = 0; k < kSamples; ++k) {
    const TimeMs t = from + static_cast<TimeMs>(static_cast<double>(to - from) * k / kSamples);
    q.reset();
    q.bind(1, format_rfc3339(t)).bind(2, format_rfc3339(to));
    if (q.step()) sample.push_back(q.column_text(0));
  }
  std::sort(sample.begin(), sample.end());
  sample.erase(std::unique(sample.begin(), sample.end()), sample.end());
  if (sample.size() < static_cast<std::size_t>(parts)) return out;
  for (int k = 1; k < parts; ++k) {
    std::string s = sample[sample.size() * static_cast<std::size_t>(k) / static_cast<std::size_t>(parts)];
    if (out.empty() || s > out.back()) out.push_back(std::move(s));
  }
  return out;
}

std::vector<patterns::EventRecord> Store::time_ordered(std::vector<std::vector<patterns::EventRecord>>&& parts,
                                                       std::size_t limit) {
  // (time, position) pairs sorted directly (contiguous, 16 bytes each; ties by position = id order across
  // the parts, which are in key order), then each record moved once; the newest `limit` kept.
  std::vector<std::pair<TimeMs, std::uint64_t>> order;
  std::size_t total = 0;
  for (const auto& p : parts) total += p.size();
  order.reserve(total);
  for (std::size_t k = 0; k < parts.size(); ++k)
    for (std::size_t i = 0; i < parts[k].size(); ++i) order.emplace_back(parts[k][i].time, (std::uint64_t{k} << 40) | i);
  std::sort(order.begin(), order.end());
  const std::size_t skip = total > limit ? total - limit : 0;
  std::vector<patterns::EventRecord> sorted;
  sorted.reserve(total - skip);
  for (std::size_t i = skip; i < order.size(); ++i)
    sorted.push_back(std::move(parts[order[i].second >> 40][order[i].second & ((std::uint64_t{1} << 40) - 1)]));
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
