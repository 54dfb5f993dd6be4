#include <fmt/format.h>

#include "promptlearn/core/error.hpp"
#include "promptlearn/store/store.hpp"

namespace promptlearn::store {
namespace {

// Schema version 1. Every later version appends a migration to kMigrations; none edits an earlier one.
constexpr const char* kSchemaV1 = R"SQL(
CREATE TABLE interactions (
  interaction_id         TEXT PRIMARY KEY NOT NULL,
  timestamp              TEXT NOT NULL,
  session_id             TEXT,
  user_id                TEXT,
  raw_prompt             TEXT,
  processed_input        TEXT,
  token_count            INTEGER,
  complexity_score       REAL,
  detected_keywords      TEXT,           -- JSON array
  domain                 TEXT,
  working_directory      TEXT,
  recent_files           TEXT,           -- JSON array
  git_branch             TEXT,
  ide_detected           TEXT,
  selected_template      TEXT,
  template_version       TEXT,
  enhancement_applied    INTEGER,        -- 0/1
  enhancement_time_ms    REAL,
  enhanced_prompt_length INTEGER,
  features               TEXT,           -- JSON object: derived context features
  received_at            TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX interactions_timestamp ON interactions(timestamp);
CREATE INDEX interactions_user ON interactions(user_id, timestamp);
CREATE INDEX interactions_session ON interactions(session_id, timestamp);

CREATE TABLE performance (
  interaction_id                 TEXT PRIMARY KEY NOT NULL REFERENCES interactions(interaction_id) ON DELETE CASCADE,
  timestamp                      TEXT NOT NULL,
  total_processing_time_ms       REAL,
  template_selection_time_ms     REAL,
  enhancement_generation_time_ms REAL,
  validation_time_ms             REAL,
  cleanup_time_ms                REAL,
  memory_peak_mb                 REAL,
  cpu_usage_percent              REAL,
  disk_io_mb                     REAL,
  template_cache_hit             INTEGER,
  analysis_cache_hit             INTEGER,
  cache_hit_rate                 REAL,
  received_at                    TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX performance_timestamp ON performance(timestamp);

CREATE TABLE outcomes (
  interaction_id           TEXT PRIMARY KEY NOT NULL REFERENCES interactions(interaction_id) ON DELETE CASCADE,
  timestamp                TEXT NOT NULL,
  claude_response_time_ms  REAL,
  response_quality_score   REAL,
  user_satisfaction_rating REAL,
  completeness             REAL,
  accuracy                 REAL,
  relevance                REAL,
  structure                REAL,
  explicit_feedback        TEXT,
  copy_action_count        INTEGER,
  edit_action_count        INTEGER,
  acceptance_rate          REAL,
  reward                   REAL,
  revision                 INTEGER NOT NULL DEFAULT 1,
  received_at              TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX outcomes_timestamp ON outcomes(timestamp);

CREATE TABLE pending_events (
  id             INTEGER PRIMARY KEY,
  interaction_id TEXT NOT NULL,
  kind           TEXT NOT NULL CHECK (kind IN ('performance', 'outcome')),
  payload        TEXT NOT NULL,          -- the wire document, JSON
  received_at    TEXT NOT NULL
);
CREATE INDEX pending_events_interaction ON pending_events(interaction_id);

CREATE TABLE rejected_events (
  id          INTEGER PRIMARY KEY,
  received_at TEXT NOT NULL,
  reason      TEXT NOT NULL,
  field       TEXT NOT NULL,             -- JSON path of the offending field ('' for the document)
  payload     TEXT NOT NULL              -- the raw text as received
);

CREATE TABLE templates (
  template_id    TEXT NOT NULL,
  version        TEXT NOT NULL,
  body           TEXT NOT NULL,
  status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('candidate', 'active', 'retired')),
  parent_id      TEXT,
  parent_version TEXT,
  metadata       TEXT,                   -- JSON
  created_at     TEXT NOT NULL,
  PRIMARY KEY (template_id, version)
);

CREATE TABLE decisions (
  decision_id      INTEGER PRIMARY KEY,
  interaction_id   TEXT NOT NULL,
  timestamp        TEXT NOT NULL,
  policy_name      TEXT NOT NULL,
  policy_version   INTEGER NOT NULL,
  action_set       TEXT NOT NULL,        -- JSON array of {template_id, version, probability, score}
  chosen_template  TEXT NOT NULL,
  chosen_version   TEXT NOT NULL,
  propensity       REAL NOT NULL CHECK (propensity > 0 AND propensity <= 1),
  context          TEXT,                 -- JSON: the features the policy saw
  reward           REAL
);
CREATE INDEX decisions_interaction ON decisions(interaction_id);
CREATE INDEX decisions_timestamp ON decisions(timestamp);

CREATE TABLE models (
  name       TEXT NOT NULL,
  version    INTEGER NOT NULL,
  state      BLOB NOT NULL,
  metrics    TEXT,                       -- JSON
  status     TEXT NOT NULL CHECK (status IN ('candidate', 'active', 'retired')),
  created_at TEXT NOT NULL,
  PRIMARY KEY (name, version)
);

CREATE TABLE audit_log (
  id        INTEGER PRIMARY KEY,
  timestamp TEXT NOT NULL,
  actor     TEXT NOT NULL,
  action    TEXT NOT NULL,
  details   TEXT                         -- JSON
);

CREATE TABLE settings (
  key        TEXT PRIMARY KEY NOT NULL,
  value      TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE corpus_stats (
  name       TEXT PRIMARY KEY NOT NULL,
  documents  INTEGER NOT NULL,
  buckets    BLOB NOT NULL,              -- hashed document frequencies (features::CorpusStats blob)
  updated_at TEXT NOT NULL
);
)SQL";

// Version 2: per-user statistics for personalised selection (read by primary key at decision time).
constexpr const char* kSchemaV2 = R"SQL(
CREATE TABLE user_stats (
  user_id      TEXT PRIMARY KEY NOT NULL,
  interactions INTEGER NOT NULL DEFAULT 0,
  reward_sum   REAL NOT NULL DEFAULT 0,
  reward_count INTEGER NOT NULL DEFAULT 0,
  last_seen    TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO user_stats (user_id, interactions, last_seen)
  SELECT user_id, count(*), max(timestamp) FROM interactions WHERE user_id IS NOT NULL GROUP BY user_id;
)SQL";

// Version 3: A/B experiments in production (lifecycle/experiments.hpp). `config` is the AbTestConfig as
// JSON; one assignment row per (experiment, interaction), the arm derived from the unit's stable hash.
// IF NOT EXISTS: a file whose user_version was lowered by hand (tests do that to fake an older file)
// still migrates.
constexpr const char* kSchemaV3 = R"SQL(
CREATE TABLE IF NOT EXISTS ab_tests (
  experiment_id TEXT PRIMARY KEY NOT NULL,
  config        TEXT NOT NULL,           -- JSON: the AbTestConfig
  status        TEXT NOT NULL CHECK (status IN ('running', 'stopped')),
  created_at    TEXT NOT NULL,
  stopped_at    TEXT
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS ab_assignments (
  experiment_id  TEXT NOT NULL REFERENCES ab_tests(experiment_id) ON DELETE CASCADE,
  interaction_id TEXT NOT NULL,
  unit_id        TEXT NOT NULL,
  arm            TEXT NOT NULL,
  assigned_at    TEXT NOT NULL,
  PRIMARY KEY (experiment_id, interaction_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ab_assignments_arm ON ab_assignments(experiment_id, arm);
)SQL";

// Version 4: each user's recent outcomes per template (exponentially decayed sums), a selection feature.
constexpr const char* kSchemaV4 = R"SQL(
CREATE TABLE IF NOT EXISTS user_template_stats (
  user_id      TEXT NOT NULL,
  template_key TEXT NOT NULL,              -- "template_id@version"
  weight       REAL NOT NULL,              -- decayed count: weight <- 0.9 weight + 1
  reward_sum   REAL NOT NULL,              -- decayed sum:   sum <- 0.9 sum + reward
  updated_at   TEXT NOT NULL,
  PRIMARY KEY (user_id, template_key)
) WITHOUT ROWID;
)SQL";

// Version 5: results of the pattern analysis (patterns/analysis.hpp): insights and detected patterns, and
// the anomalies found in the stored metrics. Both are pruned after data_retention.pattern_data_days.
constexpr const char* kSchemaV5 = R"SQL(
CREATE TABLE IF NOT EXISTS patterns (
  id           INTEGER PRIMARY KEY,
  kind         TEXT NOT NULL,            -- 'insight' or 'pattern'
  type         TEXT NOT NULL,            -- e.g. peak_hours, dominant_template, skill_progression, bottleneck
  subject      TEXT NOT NULL,            -- a user id, template or domain; '' for the whole population
  confidence   REAL NOT NULL,            -- 0..1
  description  TEXT NOT NULL,
  recommendation TEXT NOT NULL,
  evidence     TEXT NOT NULL,            -- JSON object: the figures behind it
  window_start TEXT NOT NULL,
  window_end   TEXT NOT NULL,
  created_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS patterns_created ON patterns(created_at);
CREATE INDEX IF NOT EXISTS patterns_type ON patterns(type, subject);
CREATE TABLE IF NOT EXISTS anomalies (
  id             INTEGER PRIMARY KEY,
  metric         TEXT NOT NULL,          -- e.g. response_quality_score, total_processing_time_ms
  subject        TEXT NOT NULL,          -- context key (template|domain) or '' for the whole stream
  interaction_id TEXT,
  timestamp      TEXT NOT NULL,          -- of the anomalous point
  value          REAL NOT NULL,
  score          REAL NOT NULL,          -- the detector's score (larger = more anomalous)
  detector       TEXT NOT NULL,
  created_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS anomalies_timestamp ON anomalies(timestamp);
)SQL";

// Version 6: tuning studies (optimize/bayesian.hpp): each study's full optimiser state, and its trials as
// asked and told (the history a person reads; the state alone is what the optimiser needs).
constexpr const char* kSchemaV6 = R"SQL(
CREATE TABLE IF NOT EXISTS studies (
  name       TEXT PRIMARY KEY NOT NULL,
  state      TEXT NOT NULL,              -- JSON: BayesianOptimizer::to_json()
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS study_trials (
  study     TEXT NOT NULL,
  trial     INTEGER NOT NULL,            -- 1, 2, ... in the order asked
  params    TEXT NOT NULL,               -- JSON object
  value     REAL,                        -- NULL until told
  asked_at  TEXT NOT NULL,
  told_at   TEXT,
  PRIMARY KEY (study, trial)
) WITHOUT ROWID;
)SQL";

// Version 7: monitoring, privacy and the scheduler. Rollups keep mergeable sketches of an hour or a day of
// performance data (monitor/metrics.hpp) so long views never rescan raw rows, and outlive them; alerts as
// fired; every scheduled job run with its outcome, and the lease that keeps two processes from running the
// same job at once. (decisions.learned_into, the candidate version a decision was learned into, is added
// by migrate(): ALTER TABLE has no IF NOT EXISTS.)
constexpr const char* kSchemaV7 = R"SQL(
CREATE TABLE IF NOT EXISTS metric_rollups (
  granularity  TEXT NOT NULL CHECK (granularity IN ('hour', 'day')),
  bucket_start TEXT NOT NULL,
  requests     INTEGER NOT NULL,
  window       BLOB NOT NULL,             -- monitor::MetricsWindow::to_bytes()
  updated_at   TEXT NOT NULL,
  PRIMARY KEY (granularity, bucket_start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
  id        INTEGER PRIMARY KEY,
  rule      TEXT NOT NULL,
  metric    TEXT NOT NULL,
  severity  TEXT NOT NULL,
  fired_at  TEXT NOT NULL,
  value     REAL,
  threshold REAL,
  message   TEXT NOT NULL,
  dedup_key TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_fired ON alerts(fired_at);
CREATE TABLE IF NOT EXISTS job_runs (
  id          INTEGER PRIMARY KEY,
  job         TEXT NOT NULL,
  holder      TEXT NOT NULL,
  started_at  TEXT NOT NULL,              -- the job's clock (virtual in simulations)
  finished_at TEXT,
  status      TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
  details     TEXT                        -- JSON: what the job did, or the error
);
CREATE INDEX IF NOT EXISTS job_runs_job ON job_runs(job, started_at);
CREATE TABLE IF NOT EXISTS job_leases (
  job         TEXT PRIMARY KEY NOT NULL,
  holder      TEXT NOT NULL,
  acquired_at TEXT NOT NULL,
  expires_at  TEXT NOT NULL
) WITHOUT ROWID;
)SQL";

constexpr const char* kMigrations[] = {kSchemaV1, kSchemaV2, kSchemaV3, kSchemaV4, kSchemaV5, kSchemaV6, kSchemaV7};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion, "one migration per schema version");

}  // namespace

void check_ownership(Database& db) {
  // One statement, so one consistent snapshot: another process may be migrating the file right now.
  Statement st(db,
               "SELECT (SELECT user_version FROM pragma_user_version), "
               "(SELECT application_id FROM pragma_application_id), (SELECT count(*) FROM sqlite_schema)");
  st.step();
  const std::int64_t version = st.column_int64(0), app = st.column_int64(1), objects = st.column_int64(2);
  if (version > kSchemaVersion)
    throw StorageError(-1, fmt::format("'{}' has schema version {}, newer than this library's {}; upgrade "
                                       "promptlearn to open it (the file was not modified)",
                                       db.path(), version, kSchemaVersion));
  if (version == 0) {
    if (objects != 0 || (app != 0 && app != kApplicationId))
      throw StorageError(-1, fmt::format("'{}' is an SQLite database of another application ({} objects, "
                                         "application_id {}); refusing to add promptlearn tables to it",
                                         db.path(), objects, app));
  } else if (app != kApplicationId) {
    throw StorageError(-1, fmt::format("'{}' is not a promptlearn database (application_id {})", db.path(), app));
  }
}

void check_current(Database& db) {
  check_ownership(db);
  const std::int64_t version = db.query_int("PRAGMA user_version");
  if (version != kSchemaVersion)
    throw StorageError(-1, fmt::format("'{}' has schema version {}, expected {}; open it once for writing with this "
                                       "version of promptlearn to migrate it (opened read-only, not migrated)",
                                       db.path(), version, kSchemaVersion));
}

Database open_read_only(const std::string& path) {
  OpenOptions oo;
  oo.create = false;
  oo.read_only = true;
  oo.wal = false;
  Database db(path, oo);
  check_current(db);
  return db;
}

void migrate(Database& db) {
  check_ownership(db);
  if (db.query_int("PRAGMA user_version") == kSchemaVersion) return;
  Transaction tx(db);
  // Check again inside the write lock: another process may have migrated (or written) meanwhile.
  check_ownership(db);
  std::int64_t version = db.query_int("PRAGMA user_version");
  for (std::int64_t v = version; v < kSchemaVersion; ++v) {
    db.exec(kMigrations[v]);
    if (v + 1 == 7 && db.query_int("SELECT count(*) FROM pragma_table_info('decisions') WHERE name = 'learned_into'") == 0)
      db.exec("ALTER TABLE decisions ADD COLUMN learned_into INTEGER");
  }
  db.exec(fmt::format("PRAGMA application_id={}; PRAGMA user_version={}", kApplicationId, kSchemaVersion));
  tx.commit();
}

}  // namespace promptlearn::store
