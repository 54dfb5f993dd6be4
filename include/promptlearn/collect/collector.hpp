#pragma once
/// @file Collector: validate -> enrich -> buffer -> batch-write. Nothing accepted is lost; nothing
/// invalid is dropped (it goes to rejected_events with its reason and the raw text).
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <optional>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "promptlearn/config.hpp"
#include "promptlearn/core/clock.hpp"
#include "promptlearn/core/records.hpp"
#include "promptlearn/features/extractor.hpp"
#include "promptlearn/store/store.hpp"

namespace promptlearn {
namespace privacy {
class Protector;  // promptlearn/privacy/protector.hpp
}

/// The feature extractor's view of a record's context_data.
features::ContextInput context_input(const ContextData& context);

/// Running totals of one collector. Invariant: accepted == committed + queued.
struct CollectorCounters {
  std::uint64_t received = 0;   ///< documents handed in
  std::uint64_t accepted = 0;   ///< passed validation and were not duplicates
  std::uint64_t rejected = 0;   ///< invalid or duplicate: kept in rejected_events
  std::uint64_t committed = 0;  ///< accepted and committed to the file (acknowledged)
  std::uint64_t queued = 0;     ///< accepted, waiting in the buffer (buffered mode)
};

/// What happened to one document.
struct RecordResult {
  bool accepted = false;
  std::string interaction_id;   ///< when it could be read
  std::string field;            ///< JSON path of the error ("" for the document)
  std::string error;            ///< the validation message when rejected
};

/// Validates, enriches and writes events to the store.
/// Thread-safety: all public functions may be called from several threads; writes are serialised
/// and keep the order in which documents were accepted. Store access by others goes through with_store().
class Collector {
 public:
  /// The store must outlive the collector. @throws StorageError reading the stored corpus statistics.
  /// `privacy` (may be null: nothing is protected) must outlive the collector; it is applied to
  /// everything written (privacy/protector.hpp).
  Collector(store::Store& store, const Config& config, const Clock& clock,
            features::FeatureOptions feature_options = {}, const privacy::Protector* privacy = nullptr);
  /// Flushes what is buffered (errors are swallowed here: call close() to see them).
  ~Collector();
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  /// Validates and records one JSON document. In synchronous mode it is committed before return;
  /// in buffered mode it is queued (and the batch written when full); a duplicate interaction_id is
  /// then only found when the batch is written (it goes to rejected_events and counters().rejected). Invalid input never throws:
  /// the result says why and the raw text is kept in rejected_events.
  /// @throws StorageError when the file cannot be written (the event is then not acknowledged).
  RecordResult record(std::string_view json_text);
  RecordResult record(const char* json_text) { return record(std::string_view(json_text)); }
  RecordResult record(const std::string& json_text) { return record(std::string_view(json_text)); }
  RecordResult record(const nlohmann::json& document);
  RecordResult record(const Event& event);

  /// Logs a template decision: written before return in synchronous mode (returns its decision_id),
  /// queued with the events in buffered mode (returns 0). @throws StorageError
  std::int64_t log_decision(store::DecisionRow decision);

  /// Records many documents in one transaction (whatever the mode); committed before return.
  std::vector<RecordResult> record_batch(const std::vector<std::string>& json_lines);

  /// Commits everything buffered. @throws StorageError (the buffer is kept for a retry)
  void flush();
  /// Flushes and persists the accumulated corpus statistics.
  void close();

  CollectorCounters counters() const;
  CollectionMode mode() const { return mode_; }

  /// Runs `fn(store)` under the writer lock (for the engine's reads and writes).
  template <typename F>
  auto with_store(F&& fn) {
    std::lock_guard<std::mutex> lock(write_mu_);
    return fn(store_);
  }

  /// Features of a prompt with keywords ranked against the corpus statistics seen so far (no copy of them).
  features::PromptFeatures extract(const features::FeatureExtractor& extractor, std::string_view prompt,
                                   const features::ContextInput& context) const {
    std::lock_guard<std::mutex> lock(corpus_mu_);
    return extractor.extract(prompt, context, corpus_);
  }

  /// Corpus statistics (document frequencies) seen so far, for TF-IDF.
  features::CorpusStats corpus() const;
  const features::FeatureExtractor& extractor() const { return extractor_; }
  /// The privacy rules applied to what is written (null: none).
  const privacy::Protector* privacy() const { return privacy_; }

 private:
  struct Accepted {
    Event event;
    std::string payload;       // the text as received (kept if it turns out a duplicate)
    TimeMs timestamp;
    TimeMs received;
    std::string features_json;
    /// The payload kept for a duplicate is `event` itself (protected, or without its raw prompt), not the
    /// text received: serialised only when the interaction turns out to be a duplicate.
    bool payload_is_event = false;
  };
  struct Rejected {
    TimeMs received;
    std::string reason, field, payload;
  };
  using Item = std::variant<Accepted, Rejected, store::DecisionRow>;

  std::string protect_rejected(std::string payload) const;
  Item prepare_text(std::string_view text, RecordResult& result);
  Item prepare_json(const nlohmann::json& doc, std::string payload, RecordResult& result);
  Item prepare_event(Event event, std::string payload, RecordResult& result);
  void enrich(Accepted& a);
  RecordResult submit(Item item, RecordResult result);
  /// A duplicate interaction is only found when written: report it in the result.
  static void mark_duplicate(const Item& written, RecordResult& result);
  /// Writes items in one transaction; returns how many accepted items turned out duplicates.
  void write_batch(std::vector<Item>& items);
  void apply_sections(const Event& e, TimeMs ts, TimeMs received, const char* only_kind);
  struct CorpusWrite {
    features::CorpusStats snapshot, stored;
    std::uint64_t unsaved = 0;
  };
  /// Adds this process's new document frequencies to the file's (inside the caller's transaction).
  CorpusWrite write_corpus();
  /// After the commit: the file's statistics become the new base.
  void corpus_written(const CorpusWrite& w);
  void flush_locked();

  store::Store& store_;
  const Clock& clock_;
  features::FeatureExtractor extractor_;
  ValidationLimits limits_;
  CollectionMode mode_;
  std::size_t batch_size_;
  std::size_t capacity_;
  bool store_raw_prompt_;
  const privacy::Protector* privacy_;

  mutable std::mutex corpus_mu_;
  features::CorpusStats corpus_;
  features::CorpusStats corpus_base_;  // what the file held when last read
  std::uint64_t corpus_unsaved_ = 0;

  std::mutex write_mu_;                // serialises store access; taken before queue_mu_
  mutable std::mutex queue_mu_;
  std::condition_variable not_full_;
  std::deque<Item> queue_;
  CollectorCounters counters_;         // guarded by queue_mu_
};

}  // namespace promptlearn
