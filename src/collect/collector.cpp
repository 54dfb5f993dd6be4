#include "promptlearn/collect/collector.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/privacy/protector.hpp"

namespace promptlearn {
namespace {

constexpr std::uint64_t kCorpusPersistEvery = 1000;  // documents between corpus-statistics writes

}  // namespace

features::ContextInput context_input(const ContextData& c) {
  features::ContextInput in;
  in.working_directory = c.working_directory.value_or("");
  in.recent_files = c.recent_files.value_or(std::vector<std::string>{});
  in.git_branch = c.git_branch.value_or("");
  in.ide_detected = c.ide_detected.value_or("");
  return in;
}

Collector::Collector(store::Store& store, const Config& config, const Clock& clock,
                     features::FeatureOptions feature_options, const privacy::Protector* privacy)
    : store_(store), clock_(clock), extractor_(feature_options), privacy_(privacy) {
  const auto& dc = config.learning.data_collection;
  limits_.max_prompt_chars = static_cast<std::size_t>(dc.max_prompt_chars);
  mode_ = dc.mode;
  batch_size_ = static_cast<std::size_t>(dc.batch_size);
  capacity_ = static_cast<std::size_t>(dc.buffer_capacity);
  store_raw_prompt_ = dc.store_raw_prompt;
  if (auto blob = store_.corpus_blob()) corpus_ = features::CorpusStats::from_blob(*blob);
  corpus_base_ = corpus_;
}

Collector::~Collector() {
  try {
    close();
  } catch (...) {
    // Nothing can be reported from a destructor; buffered events that could not be written were
    // never acknowledged (flush() and close() report the error to a caller who asks).
  }
}

features::CorpusStats Collector::corpus() const {
  std::lock_guard<std::mutex> lock(corpus_mu_);
  return corpus_;
}

CollectorCounters Collector::counters() const {
  std::lock_guard<std::mutex> lock(queue_mu_);
  CollectorCounters c = counters_;
  std::uint64_t queued_rejected = 0;
  std::uint64_t queued_decisions = 0;
  for (const auto& it : queue_) {
    queued_rejected += std::holds_alternative<Rejected>(it) ? 1 : 0;
    queued_decisions += std::holds_alternative<store::DecisionRow>(it) ? 1 : 0;
  }
  c.queued = queue_.size() - queued_rejected - queued_decisions;
  c.accepted = c.committed + c.queued;
  c.received = c.committed + c.rejected + c.queued + queued_rejected;
  return c;
}

// ----------------------------------------------------------------- validate + enrich

std::string Collector::protect_rejected(std::string payload) const {
  return privacy_ ? privacy_->protect_rejected(std::move(payload)) : payload;
}

Collector::Item Collector::prepare_text(std::string_view text, RecordResult& result) {
  if (json_text_nests_deeper(text, kMaxJsonDepth)) {
    result.error = fmt::format("the document nests deeper than {} levels", kMaxJsonDepth);
    return Rejected{clock_.now_ms(), result.error, "", protect_rejected(std::string(text))};
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& ex) {
    result.error = fmt::format("malformed JSON: {}", ex.what());
    return Rejected{clock_.now_ms(), result.error, "", protect_rejected(std::string(text))};
  }
  return prepare_json(doc, std::string(text), result);
}

Collector::Item Collector::prepare_json(const nlohmann::json& doc, std::string payload, RecordResult& result) {
  if (doc.is_object()) {
    auto it = doc.find("interaction_id");
    if (it != doc.end() && it->is_string()) result.interaction_id = it->get<std::string>();
  }
  try {
    // Parsed before the payload is handed on: in one call expression the payload could be moved into
    // prepare_event's parameter before parse_event throws, and the rejected row would keep no text.
    Event event = parse_event(doc, limits_);
    return prepare_event(std::move(event), std::move(payload), result);
  } catch (const ValidationError& e) {
    result.error = e.what();
    result.field = e.path();
    return Rejected{clock_.now_ms(), e.what(), e.path(), protect_rejected(std::move(payload))};
  }
}

Collector::Item Collector::prepare_event(Event event, std::string payload, RecordResult& result) {
  result.interaction_id = event.interaction_id;
  Accepted a{std::move(event), std::move(payload), 0, clock_.now_ms(), {}};
  a.timestamp = a.event.timestamp.value_or(a.received);
  if (privacy_) {
    a.timestamp = privacy_->generalise(a.timestamp);
    privacy_->protect_ids(a.event);
  }
  a.event.timestamp = a.timestamp;
  enrich(a);
  if (privacy_ && privacy_->active()) {
    // After the features were derived from the text: what is stored is the protected event, and the
    // payload kept for a duplicate report is that event too (never the text as received).
    privacy_->protect_text(a.event);
    a.payload.clear();
    a.payload_is_event = true;
  }
  result.accepted = true;
  return a;
}

void Collector::enrich(Accepted& a) {
  if (!a.event.input_data) return;
  InputData& in = *a.event.input_data;
  features::ContextInput ctx = context_input(a.event.context_data.value_or(ContextData{}));
  features::PromptFeatures f;
  {
    std::lock_guard<std::mutex> lock(corpus_mu_);
    corpus_.add_document(extractor_.terms(in.raw_prompt));
    ++corpus_unsaved_;
    f = extractor_.extract(in.raw_prompt, ctx, corpus_);
  }
  // Fill what the host left empty; never overwrite what it supplied.
  if (!in.processed_input) in.processed_input = f.processed_input;
  if (!in.token_count) in.token_count = f.token_count;
  if (!in.complexity_score) in.complexity_score = f.complexity_score;
  if (!in.detected_keywords) in.detected_keywords = f.detected_keywords;
  if (!in.domain) in.domain = f.domain;
  nlohmann::json fj = {{"languages", f.languages},
                       {"branch_kind", f.branch_kind},
                       {"ide", f.ide},
                       {"domain", f.domain},
                       {"domain_confidence", f.domain_confidence},
                       {"code_blocks", f.code_blocks},
                       {"requirements", f.requirements},
                       {"technical_density", f.technical_density},
                       {"char_count", f.char_count},
                       {"word_count", f.word_count},
                       {"hour_of_day", hour_of_day_utc(a.timestamp)},
                       {"day_of_week", day_of_week_utc(a.timestamp)}};
  a.features_json = fj.dump();
  if (!store_raw_prompt_) {
    in.raw_prompt.clear();
    a.payload.clear();  // the raw text must not survive in rejected_events either
    a.payload_is_event = true;
  }
}

// ----------------------------------------------------------------- record

RecordResult Collector::record(std::string_view json_text) {
  RecordResult r;
  Item item = prepare_text(json_text, r);
  return submit(std::move(item), std::move(r));
}

RecordResult Collector::record(const nlohmann::json& document) {
  RecordResult r;
  if (json_nests_deeper(document, kMaxJsonDepth)) {
    // Too deep to serialise safely: keep a description instead of the text.
    r.error = fmt::format("the document nests deeper than {} levels", kMaxJsonDepth);
    return submit(Rejected{clock_.now_ms(), r.error, "", "(a JSON document nested too deeply to store)"}, r);
  }
  Item item = prepare_json(document, document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), r);
  return submit(std::move(item), std::move(r));
}

RecordResult Collector::record(const Event& event) {
  // Structs built in C++ get exactly the validation a JSON document gets.
  return record(to_json(event));
}

RecordResult Collector::submit(Item item, RecordResult result) {
  if (mode_ == CollectionMode::synchronous) {
    std::lock_guard<std::mutex> lock(write_mu_);
    std::vector<Item> batch;
    batch.push_back(std::move(item));
    write_batch(batch);
    mark_duplicate(batch.front(), result);
    return result;
  }
  bool flush_now = false;
  {
    std::unique_lock<std::mutex> q(queue_mu_);
    while (queue_.size() >= capacity_) {  // back-pressure: wait for (or do) a flush, never drop
      q.unlock();
      flush();
      q.lock();
    }
    queue_.push_back(std::move(item));
    flush_now = queue_.size() >= batch_size_;
  }
  if (flush_now) flush();
  return result;
}

std::int64_t Collector::log_decision(store::DecisionRow decision) {
  if (mode_ == CollectionMode::synchronous) {
    std::lock_guard<std::mutex> lock(write_mu_);
    store::Transaction tx(store_.db());
    std::int64_t id = store_.insert_decision(decision);
    tx.commit();
    return id;
  }
  submit(std::move(decision), RecordResult{});
  return 0;
}

std::vector<RecordResult> Collector::record_batch(const std::vector<std::string>& lines) {
  std::vector<RecordResult> results(lines.size());
  std::vector<Item> items;
  items.reserve(lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) items.push_back(prepare_text(lines[i], results[i]));
  std::lock_guard<std::mutex> lock(write_mu_);
  flush_locked();  // keep arrival order: anything buffered goes first
  write_batch(items);
  for (std::size_t i = 0; i < items.size(); ++i) mark_duplicate(items[i], results[i]);
  return results;
}

void Collector::mark_duplicate(const Item& written, RecordResult& result) {
  if (auto* rj = std::get_if<Rejected>(&written); rj && result.accepted) {
    result.accepted = false;  // a duplicate found at write time
    result.error = rj->reason;
    result.field = rj->field;
  }
}

void Collector::flush() {
  std::lock_guard<std::mutex> lock(write_mu_);
  flush_locked();
}

void Collector::flush_locked() {
  std::vector<Item> batch;
  {
    std::lock_guard<std::mutex> q(queue_mu_);
    if (queue_.empty()) return;
    batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
    queue_.clear();
  }
  try {
    write_batch(batch);
  } catch (...) {
    std::lock_guard<std::mutex> q(queue_mu_);
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue_.push_front(std::move(*it));
    throw;
  }
}

void Collector::close() {
  std::lock_guard<std::mutex> lock(write_mu_);
  flush_locked();
  bool unsaved;
  {
    std::lock_guard<std::mutex> c(corpus_mu_);
    unsaved = corpus_unsaved_ > 0;
  }
  if (unsaved) {
    store::Transaction tx(store_.db());
    CorpusWrite w = write_corpus();
    tx.commit();
    corpus_written(w);
  }
}

// ----------------------------------------------------------------- write

void Collector::apply_sections(const Event& e, TimeMs ts, TimeMs received, const char* only_kind) {
  auto wants = [&](const char* kind) { return only_kind == nullptr || std::string_view(only_kind) == kind; };
  if (e.performance_metrics && wants("performance"))
    store_.upsert_performance(e.interaction_id, ts, *e.performance_metrics, received);
  if (e.outcome_data && wants("outcome")) store_.upsert_outcome(e.interaction_id, ts, *e.outcome_data, received);
}

Collector::CorpusWrite Collector::write_corpus() {
  CorpusWrite w;
  {
    std::lock_guard<std::mutex> c(corpus_mu_);
    w.snapshot = corpus_;
    w.unsaved = corpus_unsaved_;
    w.stored = corpus_base_;
  }
  // Other processes add their own increments: read-modify-write inside the caller's write transaction.
  if (auto blob = store_.corpus_blob()) w.stored = features::CorpusStats::from_blob(*blob);
  w.stored.merge(w.snapshot.delta_since(corpus_base_));
  store_.put_corpus_blob(w.stored.to_blob(), static_cast<std::int64_t>(w.stored.documents()), clock_.now_ms());
  return w;
}

void Collector::corpus_written(const CorpusWrite& w) {
  std::lock_guard<std::mutex> c(corpus_mu_);
  features::CorpusStats now = w.stored;
  now.merge(corpus_.delta_since(w.snapshot));  // documents added while the transaction ran
  corpus_ = std::move(now);
  corpus_base_ = w.stored;
  corpus_unsaved_ -= w.unsaved;
}

void Collector::write_batch(std::vector<Item>& items) {
  std::uint64_t accepted = 0, rejected = 0;
  store::Transaction tx(store_.db());
  for (auto& item : items) {
    if (auto* rj = std::get_if<Rejected>(&item)) {
      store_.insert_rejected(rj->received, rj->reason, rj->field, rj->payload);
      ++rejected;
      continue;
    }
    if (auto* dr = std::get_if<store::DecisionRow>(&item)) {
      store_.insert_decision(*dr);
      continue;
    }
    auto& a = std::get<Accepted>(item);
    const Event& e = a.event;
    if (e.input_data) {
      if (!store_.insert_interaction(e, a.timestamp, a.features_json, a.received)) {
        Rejected dup{a.received,
                     fmt::format("interaction_id: \"{}\" is already recorded; the first report is kept",
                                 e.interaction_id),
                     "interaction_id", a.payload_is_event ? to_json(e).dump() : std::move(a.payload)};
        store_.insert_rejected(dup.received, dup.reason, dup.field, dup.payload);
        item = std::move(dup);
        ++rejected;
        continue;
      }
      if (e.user_id) store_.count_user_interaction(*e.user_id, a.timestamp);
      apply_sections(e, a.timestamp, a.received, nullptr);
      for (const auto& p : store_.take_pending(e.interaction_id)) {
        // Payloads were validated before they were stored; parse them the same way again.
        Event pe = parse_event_text(p.payload, limits_);
        apply_sections(pe, pe.timestamp.value_or(a.timestamp), a.received, p.kind.c_str());
      }
    } else if (store_.interaction_exists(e.interaction_id)) {
      apply_sections(e, a.timestamp, a.received, nullptr);
    } else {
      // The canonical document keeps the timestamp the event was given when it arrived.
      const std::string canonical = to_json(e).dump();
      if (e.performance_metrics) store_.insert_pending(e.interaction_id, "performance", canonical, a.received);
      if (e.outcome_data) store_.insert_pending(e.interaction_id, "outcome", canonical, a.received);
    }
    ++accepted;
  }
  bool save_corpus;
  {
    std::lock_guard<std::mutex> c(corpus_mu_);
    save_corpus = corpus_unsaved_ >= kCorpusPersistEvery;
  }
  std::optional<CorpusWrite> corpus_write;
  if (save_corpus) corpus_write = write_corpus();
  tx.commit();
  if (corpus_write) corpus_written(*corpus_write);
  std::lock_guard<std::mutex> q(queue_mu_);
  counters_.committed += accepted;
  counters_.rejected += rejected;
}

}  // namespace promptlearn
