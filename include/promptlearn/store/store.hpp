#pragma once
/// @file The promptlearn SQLite file: schema, migrations and one small repository per table.
/// Table and column names are a contract a host may query with the plain sqlite3 tool
/// (see docs/schema.md). Timestamps are RFC 3339 UTC text with milliseconds ("...T10:30:00.000Z"),
/// fixed width so they sort and compare as text; JSON is stored as JSON text.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "promptlearn/core/clock.hpp"
#include "promptlearn/core/records.hpp"
#include "promptlearn/store/database.hpp"

namespace promptlearn::store {

/// The schema version this library writes (PRAGMA user_version).
inline constexpr int kSchemaVersion = 1;
/// PRAGMA application_id of a promptlearn file ("Plrn").
inline constexpr std::int64_t kApplicationId = 0x506C726E;

/// Refuses (without writing anything) a file with a newer schema or one that belongs to another
/// application. A new, empty file passes. @throws StorageError
void check_ownership(Database& db);

/// Brings the file to kSchemaVersion: creates a new file's schema, runs forward migrations on an older
/// one (never destructive), refuses a newer schema or a foreign SQLite file without touching it.
/// @throws StorageError
void migrate(Database& db);

/// A performance or outcome section that arrived before its interaction.
struct PendingRow {
  std::int64_t id;
  std::string kind;        ///< "performance" or "outcome"
  std::string payload;     ///< the full wire document (JSON text)
};

/// Row counts of the main tables.
struct TableCounts {
  std::int64_t interactions = 0, performance = 0, outcomes = 0, pending_events = 0, rejected_events = 0,
               decisions = 0, templates = 0, models = 0, audit_log = 0;
};

/// Repositories over one connection. Writers expect the caller to hold a Transaction.
/// Thread-safety: none; the owner serialises use.
class Store {
 public:
  /// Opens the file and migrates it. @throws StorageError
  explicit Store(const std::string& path, OpenOptions options = {});

  Database& db() { return db_; }
  int schema_version();

  /// Inserts the interaction row; false if the interaction_id is already recorded (nothing written).
  bool insert_interaction(const Event& e, TimeMs timestamp, const std::string& features_json, TimeMs received);
  bool interaction_exists(const std::string& interaction_id);
  /// Inserts or replaces the performance row (later reports of the same interaction win).
  void upsert_performance(const std::string& interaction_id, TimeMs timestamp, const Performance& p, TimeMs received);
  /// Inserts or replaces the outcome row; `revision` counts the reports received.
  void upsert_outcome(const std::string& interaction_id, TimeMs timestamp, const Outcome& o, TimeMs received);
  void insert_pending(const std::string& interaction_id, const std::string& kind, const std::string& payload,
                      TimeMs received);
  /// Returns and deletes the pending rows of an interaction, oldest first.
  std::vector<PendingRow> take_pending(const std::string& interaction_id);
  void insert_rejected(TimeMs received, const std::string& reason, const std::string& field,
                       const std::string& payload);
  void audit(TimeMs when, const std::string& actor, const std::string& action, const std::string& details_json);

  std::optional<std::string> setting(const std::string& key);
  void put_setting(const std::string& key, const std::string& value, TimeMs when);
  /// Stored corpus statistics blob (document frequencies for TF-IDF), if any.
  std::optional<std::string> corpus_blob();
  void put_corpus_blob(const std::string& blob, std::int64_t documents, TimeMs when);

  TableCounts counts();
  /// PRAGMA integrity_check: "ok" or SQLite's list of problems.
  std::string integrity_check();

 private:
  /// The repository statements, each prepared once on first use and then reused.
  enum Slot : std::size_t {
    kInsertInteraction, kInteractionExists, kUpsertPerformance, kUpsertOutcome, kInsertPending, kSelectPending,
    kDeletePending, kInsertRejected, kAudit, kSelectSetting, kPutSetting, kSelectCorpus, kPutCorpus, kSlotCount
  };
  Statement& statement(Slot slot, const char* sql);

  Database db_;
  std::array<std::unique_ptr<Statement>, kSlotCount> statements_;
};

}  // namespace promptlearn::store
