#include "promptlearn/engine.hpp"

#include <nlohmann/json.hpp>

#include "promptlearn/store/store.hpp"

namespace promptlearn {

nlohmann::json to_json(const EngineStats& s) {
  const auto& c = s.collector;
  const auto& t = s.tables;
  return {{"path", s.path},
          {"schema_version", s.schema_version},
          {"session", {{"received", c.received}, {"accepted", c.accepted}, {"rejected", c.rejected},
                       {"committed", c.committed}, {"queued", c.queued}}},
          {"tables", {{"interactions", t.interactions}, {"performance", t.performance}, {"outcomes", t.outcomes},
                      {"pending_events", t.pending_events}, {"rejected_events", t.rejected_events},
                      {"decisions", t.decisions}, {"templates", t.templates}, {"models", t.models},
                      {"audit_log", t.audit_log}}},
          {"corpus_documents", s.corpus_documents}};
}

LearningEngine::LearningEngine(const std::string& path, Config config, EngineOptions options)
    : path_(path), config_(std::move(config)), clock_(options.clock ? options.clock : &system_clock_) {
  config_.validate();
  options.features.validate();
  store::OpenOptions open;
  open.busy_timeout_ms = options.busy_timeout_ms;
  open.synchronous_full = config_.learning.data_collection.synchronous_commit != SynchronousCommit::normal;
  store_ = std::make_unique<store::Store>(path_, open);
  collector_ = std::make_unique<Collector>(*store_, config_, *clock_, options.features);
}

LearningEngine::~LearningEngine() = default;  // the collector flushes in its destructor

RecordResult LearningEngine::record(std::string_view json_text) { return collector_->record(json_text); }
RecordResult LearningEngine::record(const nlohmann::json& document) { return collector_->record(document); }
RecordResult LearningEngine::record(const Event& event) { return collector_->record(event); }
std::vector<RecordResult> LearningEngine::record_batch(const std::vector<std::string>& lines) {
  return collector_->record_batch(lines);
}

void LearningEngine::flush() { collector_->flush(); }
void LearningEngine::close() { collector_->close(); }

EngineStats LearningEngine::stats() {
  EngineStats s;
  s.path = path_;
  s.collector = collector_->counters();
  collector_->with_store([&](store::Store& st) {
    s.schema_version = st.schema_version();
    s.tables = st.counts();
  });
  s.corpus_documents = collector_->corpus().documents();
  return s;
}

features::PromptFeatures LearningEngine::extract_features(std::string_view prompt, const ContextData& context) const {
  return collector_->extractor().extract(prompt, context_input(context), collector_->corpus());
}

std::string LearningEngine::integrity_check() {
  return collector_->with_store([](store::Store& st) { return st.integrity_check(); });
}

}  // namespace promptlearn
