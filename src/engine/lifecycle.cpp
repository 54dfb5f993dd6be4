// LearningEngine's data lifecycle: export and erasure of one user, retention, and the optional background
// thread that runs the scheduled jobs.
#include <fmt/format.h>

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/privacy/protector.hpp"
#include "promptlearn/store/store.hpp"
#include "background.hpp"
#include "monitoring.hpp"
#include "setting_keys.hpp"

namespace promptlearn {

LearningEngine::~LearningEngine() {
  // The background thread uses every member: it stops first. (The collector flushes in its destructor.)
  try {
    stop_background_jobs();
  } catch (...) {
  }
}

std::string LearningEngine::stored_user_id(const std::string& id) const {
  if (id.empty()) throw ValidationError("user_id", "is empty");
  const auto stored = privacy_->stored_id(id);
  if (!stored)
    throw Error("user ids are stored as keyed hashes and this engine has no key (learning.privacy): no row can be "
                "found by id");
  return *stored;
}

nlohmann::json LearningEngine::export_user(const std::string& user_id) {
  flush();
  const std::string stored = stored_user_id(user_id);
  const TimeMs now = clock_->now_ms();
  return collector_->with_store([&](store::Store& st) {
    nlohmann::json out;
    {
      store::Transaction tx(st.db());  // one consistent snapshot (and the audit row with it)
      out = lifecycle::export_user_rows(st, stored, privacy_.get());
      if (!read_only_) {
        st.audit(now, "engine", "export_user",
                 nlohmann::json{{"interactions", out["interactions"].size()}, {"decisions", out["decisions"].size()}}.dump());
        tx.commit();
      }
    }
    out["user_id"] = stored;
    out["exported_at"] = format_rfc3339(now);
    out["schema_version"] = st.schema_version();
    return out;
  });
}

EraseReport LearningEngine::erase_user(const std::string& user_id) {
  require_writable("erase_user");
  flush();
  const std::string stored = stored_user_id(user_id);
  const TimeMs now = clock_->now_ms();
  EraseReport report = collector_->with_store([&](store::Store& st) {
    store::Transaction tx(st.db());
    const auto learned = lifecycle::learned_rows_of_user(st, stored);
    // Hours whose rollups hold the user's performance reports, rebuilt below from the remaining rows
    // (exact while the raw rows are kept; older rollups are anonymous aggregates and stay).
    const std::vector<TimeMs> hours = monitoring::rolled_up_hours_of_user(st, stored);
    const PolicyManager::ForgetReport forgot = policy_->forget(st, learned);
    EraseReport r = lifecycle::delete_user_rows(st, stored, user_id);
    r.policy = forgot;
    monitoring::roll_up_hours(st, hours, now);
    r.rollup_hours = hours.size();
    if (forgot.not_exact > 0) r.retrain.push_back(PolicyManager::kModelName);
    // The predictive models were fitted on the user's rows too: the retraining job runs at the next
    // run_due_jobs (its last run forgotten), on data without them.
    if (st.db().query_int("SELECT count(*) FROM models WHERE name <> 'template_selection'") > 0) {
      store::Statement del(st.db(), "DELETE FROM settings WHERE key = ?1");
      del.bind(1, setting_keys::kModelsLastRun);
      del.run();
      r.retrain.push_back("predictive models");
    }
    st.audit(now, "engine", "erase_user",
             nlohmann::json{{"deleted", to_json(r)["deleted"]}, {"policy_downdates", forgot.downdates},
                            {"retrain", r.retrain}}
                 .dump());
    tx.commit();
    return r;
  });
  policy_->refresh();  // the live policy without the user's decisions
  collector_->with_store([&](store::Store& st) {
    lifecycle::incremental_vacuum(st);
    report.wal_cleared = lifecycle::truncate_wal(st);
  });
  return report;
}

RetentionReport LearningEngine::run_retention(TimeMs now) {
  require_writable("run_retention");
  flush();
  RetentionReport r = collector_->with_store([&](store::Store& st) {
    store::Transaction tx(st.db());
    RetentionReport out = lifecycle::delete_expired(st, config_, now);
    st.audit(now, "engine", "retention", to_json(out).dump());
    tx.commit();
    return out;
  });
  collector_->with_store([&](store::Store& st) { r.pages_freed = lifecycle::incremental_vacuum(st); });
  return r;
}

void LearningEngine::start_background_jobs(std::chrono::milliseconds interval) {
  require_writable("start_background_jobs");
  if (interval.count() <= 0) throw ConfigError("interval", fmt::format("{} ms is not positive", interval.count()));
  if (background_) throw Error("start_background_jobs: already started");
  background_ = std::make_unique<Background>();
  Background* b = background_.get();
  b->thread = std::thread([this, b, interval] {
    std::unique_lock<std::mutex> lock(b->mu);
    while (!b->stop) {
      lock.unlock();
      try {
        JobsReport r = run_due_jobs(clock_->now_ms());
        std::lock_guard<std::mutex> g(b->mu);
        if (!r.failed.empty()) b->last_error = r.failed.front().first + ": " + r.failed.front().second;
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> g(b->mu);
        b->last_error = e.what();
      }
      lock.lock();
      b->wake.wait_for(lock, interval, [b] { return b->stop; });
    }
  });
}

void LearningEngine::stop_background_jobs() {
  if (!background_) return;
  {
    std::lock_guard<std::mutex> g(background_->mu);
    background_->stop = true;
  }
  background_->wake.notify_all();
  if (background_->thread.joinable()) background_->thread.join();
  background_.reset();
}

std::string LearningEngine::last_background_error() const {
  if (!background_) return "";
  std::lock_guard<std::mutex> g(background_->mu);
  return background_->last_error;
}

}  // namespace promptlearn
