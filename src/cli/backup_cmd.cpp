// promptlearn backup: a consistent copy of a database file while other processes write to it, and the
// restore of such a copy into a live file (store::backup_file / store::restore_file).
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "cli.hpp"
#include "promptlearn/store/backup.hpp"

namespace promptlearn::cli {

namespace {

void print_human(const store::BackupReport& r, bool restore) {
  std::cout << fmt::format("{} '{}' {} '{}': {} pages of {} bytes ({:.1f} MiB) in {:.3f} s, {} attempt{}, integrity {}\n",
                           restore ? "restored" : "backed up", restore ? r.destination : r.source,
                           restore ? "from" : "to", restore ? r.source : r.destination, r.pages, r.page_size,
                           static_cast<double>(r.bytes) / (1024.0 * 1024.0), r.seconds, r.attempts,
                           r.attempts == 1 ? "" : "s", r.integrity);
}

}  // namespace

int run_backup(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn backup --db FILE -o OUT [--human]\n"
                 "       promptlearn backup --db FILE --restore BACKUP [--human]\n"
                 "With --o: copies FILE into OUT with SQLite's online backup API while other processes keep\n"
                 "writing to FILE. The copy is one snapshot (one read transaction), passes PRAGMA\n"
                 "integrity_check, is a single self-contained file (no -wal), and replaces OUT atomically.\n"
                 "With --restore: checks that BACKUP is a sound promptlearn file, then copies it into FILE\n"
                 "through a connection to FILE (waiting for other writers), so that processes that have FILE\n"
                 "open see the old or the restored content, never a mixture.\n"
                 "Prints {source, destination, pages, page_size, bytes, seconds, attempts, restarts,\n"
                 "integrity} as JSON (--human: one line). Exit status 0 on success, 1 on a storage error,\n"
                 "2 on bad usage.\n";
    return 0;
  }
  const std::string db = require_db(args);
  const auto out = args.get("o");
  const auto restore = args.get("restore");
  if (out && restore)
    throw std::invalid_argument("give either -o OUT (take a backup) or --restore BACKUP (restore into --db), not both");
  if (!out && !restore)
    throw std::invalid_argument("one of -o OUT (take a backup of --db) or --restore BACKUP (restore it into --db) is needed");
  const store::BackupReport r = out ? store::backup_file(db, *out) : store::restore_file(*restore, db);
  if (args.has("human")) print_human(r, restore.has_value());
  else std::cout << store::to_json(r).dump() << std::endl;
  return 0;
}

}  // namespace promptlearn::cli
