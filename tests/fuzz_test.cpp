// Property-style fuzzing of the wire-format parser and the collector. Deterministic: every input comes
// from a seeded std::mt19937_64 mutating the specification's examples and a few synthetic documents,
// on the JSON tree (delete / insert / replace / swap / rename) and on the text (truncate, flip and
// insert bytes including NUL and invalid UTF-8, duplicate keys). Properties:
//   1. parse_event_text returns an Event or throws ValidationError with a message, nothing else; an
//      accepted event's to_json re-parses to the same document.
//   2. Through a real LearningEngine on a file: every result is accepted or carries an error; the file
//      then holds exactly one rejected_events row per rejection and the rows every acceptance implies.
//   3. Random bytes, huge prompts and deep nesting never crash the parser or record().
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <typeinfo>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "promptlearn/config.hpp"
#include "promptlearn/core/clock.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/core/records.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/store/database.hpp"
#include "../src/cli/prompt_file.hpp"
#include "test_util.hpp"

using namespace promptlearn;
using nlohmann::json;

namespace {

using Gen = std::mt19937_64;

std::size_t below(Gen& g, std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(g() % n); }
bool chance(Gen& g, double p) { return std::uniform_real_distribution<double>(0.0, 1.0)(g) < p; }
template <typename T, std::size_t N>
const T& pick(Gen& g, const T (&items)[N]) {
  return items[below(g, N)];
}

/// Printable excerpt of an input for failure messages (bytes outside ASCII shown as \xNN).
std::string excerpt(const std::string& s, std::size_t max = 240) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && out.size() < max; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (out.size() >= max) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

// ------------------------------------------------------------------------------ seed documents

std::vector<json> seed_documents() {
  const json interaction = test::fixture("spec_interaction.json");
  const json performance = test::fixture("spec_performance.json");
  const json outcome = test::fixture("spec_outcome.json");
  std::vector<json> seeds = {interaction, performance, outcome};
  seeds.push_back(test::interaction_doc(test::uuid_for(1)));
  json all = interaction;  // every section at once
  all["performance_metrics"] = performance["performance_metrics"];
  all["outcome_data"] = outcome["outcome_data"];
  all["outcome_data"]["reward"] = 0.5;
  all["enhancement_data"]["template_version"] = 3;
  seeds.push_back(all);
  seeds.push_back({{"interaction_id", test::uuid_for(2)}, {"outcome_data", {{"reward", 1}}}});
  json edgy = test::interaction_doc(test::uuid_for(3), "Prompt with \"quotes\", \\ backslash, tab\t, é, 日本, 🙂");
  edgy["session_id"] = nullptr;  // JSON null counts as absent
  edgy["context_data"] = json::object();
  edgy["input_data"]["token_count"] = 12.0;
  edgy["timestamp"] = "2024-02-29T23:59:60.123456789+05:30";
  seeds.push_back(edgy);
  json perf_min = {{"interaction_id", test::uuid_for(4)},
                   {"timestamp", "2025-01-15T10:30:00.5-01:00"},
                   {"performance_metrics", {{"cache_performance", {{"cache_hit_rate", 0}}}}}};
  seeds.push_back(perf_min);
  return seeds;
}

// ------------------------------------------------------------------------------ random values

const char* const kTimestamps[] = {
    "2025-01-15T10:30:00Z",       "2025-01-15t10:30:00.999z",  "2024-02-29T12:00:00+14:00",
    "1970-01-01T00:00:00Z",       "1969-12-31T23:59:59.999Z",  "2025-02-29T12:00:00Z",
    "2025-01-15T10:30:60Z",       "2025-01-15T24:00:00Z",      "2025-01-15T10:30:00.1234567891Z",
    "2025-01-15 10:30:00Z",       "2025-01-15T10:30:00+24:00", "2025-01-15T10:30:00",
    "",                           "0000-01-01T00:00:00Z",      "9999-12-31T23:59:59Z",
    // Boundary values whose UTC instant falls outside years 0000-9999.
    "0000-01-01T00:00:00+00:01",  "9999-12-31T23:59:59-00:01", "0000-01-01T00:00:00+23:59",
};

const std::string kStrings[] = {"", " ", "a", "null", "true", "0", "-1", "NaN", "Infinity", "-Infinity", "1e999",
                                "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x99\x82", std::string("nul\0inside", 10),
                                "\x01\x1f\x7f", "\"quoted\"", "back\\slash", "web_development", "2.1"};

std::string short_string(Gen& g) {
  static const char* const kPieces[] = {"a", "Z", "_", "-", " ", "/", "\\", "\"", "\t", "\n", "\x01",
                                        "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x99\x82", "0", "9", ".", "{", "]"};
  std::string s;
  std::size_t n = below(g, 40);
  for (std::size_t i = 0; i < n; ++i) s += pick(g, kPieces);
  return s;
}

std::string long_string(Gen& g) {
  static const std::size_t kLengths[] = {201, 257, 4097, 10001, 70000, 200001, 300000};
  std::size_t n = pick(g, kLengths);
  std::string s;
  s.reserve(n);
  const char* unit = chance(g, 0.5) ? "word " : "\xe6\x97\xa5";  // ASCII words or 3-byte characters
  while (s.size() + 5 <= n) s += unit;
  while (s.size() < n) s += 'x';
  return s;
}

json deep_value(Gen& g, std::size_t depth) {
  json v = below(g, 2) ? json(1) : json("leaf");
  for (std::size_t i = 0; i < depth; ++i) {
    if (chance(g, 0.5)) {
      json a = json::array();
      a.push_back(std::move(v));
      v = std::move(a);
    } else {
      json o = json::object();
      o["raw_prompt"] = std::move(v);
      v = std::move(o);
    }
  }
  return v;
}

json random_value(Gen& g, int budget = 3) {
  switch (below(g, 24)) {
    case 0: return nullptr;
    case 1: return chance(g, 0.5);
    case 2: return static_cast<std::int64_t>(below(g, 30)) - 5;
    case 3: return std::numeric_limits<std::int64_t>::min();
    case 4: return std::numeric_limits<std::uint64_t>::max();
    case 5: return static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1;
    case 6: return chance(g, 0.5) ? 1e308 : -1e308;
    case 7: return chance(g, 0.5) ? -1.5 : -0.0;
    case 8: return std::uniform_real_distribution<double>(0.0, 1.0)(g);
    case 9: return std::uniform_real_distribution<double>(-20.0, 20.0)(g);
    case 10: return chance(g, 0.5) ? 10.0 : 10.5;
    case 11: return 5e-324;
    case 12: return pick(g, kStrings);
    case 13: return short_string(g);
    case 14: return chance(g, 0.3) ? long_string(g) : short_string(g);
    case 15: return std::string(pick(g, kTimestamps));
    case 16: return chance(g, 0.5) ? test::uuid_for(g() % 1000, 9) : "550E8400-E29B-41D4-A716-446655440000";
    case 17: return deep_value(g, 1 + below(g, chance(g, 0.1) ? 400 : 8));
    case 18: return chance(g, 0.5) ? json::object() : json::array();
    case 19: {
      json a = json::array();
      std::size_t n = chance(g, 0.05) ? 1001 : below(g, 6);
      for (std::size_t i = 0; i < n; ++i) a.push_back(budget > 0 && chance(g, 0.2) ? random_value(g, budget - 1) : json(short_string(g)));
      return a;
    }
    case 20: {
      json o = json::object();
      std::size_t n = below(g, 4);
      for (std::size_t i = 0; i < n; ++i) o[short_string(g)] = budget > 0 ? random_value(g, budget - 1) : json(1);
      return o;
    }
    case 21: return 1e-7;
    case 22: return 9.0e18 + 4096.0;
    default: return static_cast<std::int64_t>(g() >> 1);
  }
}

// ------------------------------------------------------------------------------ tree mutations

void collect_pointers(const json& j, const json::json_pointer& here, std::vector<json::json_pointer>& out, int depth) {
  out.push_back(here);
  if (depth > 6 || out.size() > 400) return;
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) collect_pointers(*it, here / it.key(), out, depth + 1);
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < std::min<std::size_t>(j.size(), 4); ++i) collect_pointers(j[i], here / i, out, depth + 1);
  }
}

const char* const kKeys[] = {"interaction_id", "timestamp", "session_id", "user_id", "input_data", "context_data",
                             "enhancement_data", "performance_metrics", "outcome_data", "raw_prompt", "reward",
                             "quality_metrics", "feedback_data", "implicit_feedback", "resource_usage",
                             "cache_performance", "token_count", "detected_keywords", "template_version",
                             "accuracy", "Interaction_Id", "input_data ", "unknown_field", ""};

void mutate_tree(json& doc, Gen& g) {
  std::vector<json::json_pointer> ptrs;
  collect_pointers(doc, json::json_pointer(), ptrs, 0);
  const json::json_pointer p = ptrs[below(g, ptrs.size())];
  switch (below(g, 9)) {
    case 0:  // delete a key or an element
      if (!p.empty()) {
        json& parent = doc[p.parent_pointer()];
        if (parent.is_object()) {
          parent.erase(p.back());
        } else if (parent.is_array()) {
          std::size_t idx = std::stoul(p.back());
          if (idx < parent.size()) parent.erase(idx);
        }
      }
      break;
    case 1: {  // insert an unknown (or known but misplaced) key
      json& target = doc[p];
      if (target.is_object()) {
        target[chance(g, 0.5) ? std::string("x_unknown_") + std::to_string(below(g, 9)) : std::string(pick(g, kKeys))] =
            random_value(g);
      } else {
        target = random_value(g);
      }
      break;
    }
    case 2:
    case 3:  // replace a value by one of a random type
      doc[p] = random_value(g);
      break;
    case 4: {  // swap two top-level sections
      if (!doc.is_object() || doc.size() < 2) break;
      std::vector<std::string> keys;
      for (auto it = doc.begin(); it != doc.end(); ++it) keys.push_back(it.key());
      std::string a = keys[below(g, keys.size())], b = keys[below(g, keys.size())];
      std::swap(doc[a], doc[b]);
      break;
    }
    case 5: {  // rename a key
      if (p.empty()) break;
      json& parent = doc[p.parent_pointer()];
      if (!parent.is_object()) break;
      json v = parent[p.back()];
      parent.erase(p.back());
      parent[std::string(pick(g, kKeys))] = std::move(v);
      break;
    }
    case 6:  // null
      doc[p] = nullptr;
      break;
    case 7:  // a different, possibly invalid, interaction id
      if (doc.is_object()) {
        static const char* const kIds[] = {"550e8400-e29b-11d4-a716-446655440000", "550e8400-e29b-41d4-c716-446655440000",
                                           "550E8400-E29B-41D4-A716-446655440000", "not-a-uuid", ""};
        doc["interaction_id"] = chance(g, 0.5) ? json(pick(g, kIds)) : random_value(g);
      }
      break;
    default:  // move a section inside another one
      if (doc.is_object() && doc.size() >= 2) {
        std::vector<std::string> keys;
        for (auto it = doc.begin(); it != doc.end(); ++it) keys.push_back(it.key());
        std::string from = keys[below(g, keys.size())], to = keys[below(g, keys.size())];
        if (from != to && doc[to].is_object()) {
          json v = doc[from];
          doc.erase(from);
          doc[to][from] = std::move(v);
        }
      }
      break;
  }
}

// ------------------------------------------------------------------------------ text mutations

void mutate_text(std::string& s, Gen& g) {
  static const char kBytes[] = {'\0', '\xff', '\xfe', '\xc0', '\x80', '\xed', '\xf5', '"', '{', '}', '[', ']',
                                ',',  ':',    '\\',   ' ',    'e',    '-',    '0',    '.', '\n', 'u', '\x1f'};
  static const char* const kInvalidUtf8[] = {"\xc3\x28", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf", "\x80",
                                             "\xe2\x82", "\\ud800",      "\\udc00x",         "\\u0000", "\\uZZZZ",
                                             "\\x41",    "\xef\xbb\xbf"};
  std::size_t pos = below(g, s.size() + 1);
  switch (below(g, 10)) {
    case 0: s.resize(pos); break;  // truncate
    case 1:                        // flip bits
      for (std::size_t k = 0, n = 1 + below(g, 4); k < n && !s.empty(); ++k) s[below(g, s.size())] ^= static_cast<char>(1u << below(g, 8));
      break;
    case 2:  // insert bytes
      for (std::size_t k = 0, n = 1 + below(g, 4); k < n; ++k)
        s.insert(below(g, s.size() + 1), 1, chance(g, 0.7) ? pick(g, kBytes) : static_cast<char>(g() & 0xFF));
      break;
    case 3: {  // invalid UTF-8 or bad escapes inside a string
      std::size_t q = s.find('"', pos);
      if (q == std::string::npos) q = s.find('"');
      if (q != std::string::npos) s.insert(q + 1, pick(g, kInvalidUtf8));
      break;
    }
    case 4: {  // duplicate key right after the first brace (the later occurrence wins in nlohmann)
      static const char* const kDup[] = {"\"interaction_id\":\"550e8400-e29b-41d4-a716-446655440001\",",
                                         "\"input_data\":{\"raw_prompt\":\"dup\"},", "\"timestamp\":\"bad\",",
                                         "\"outcome_data\":{\"reward\":2},"};
      std::size_t b = s.find('{');
      if (b != std::string::npos) s.insert(b + 1, pick(g, kDup));
      // ...or at the end of the document, so that the duplicate wins.
      std::size_t e = s.rfind('}');
      if (e != std::string::npos && chance(g, 0.5)) {
        std::string d = pick(g, kDup);
        d.pop_back();
        s.insert(e, "," + d);
      }
      break;
    }
    case 5:  // delete a span
      if (!s.empty()) s.erase(pos, 1 + below(g, 16));
      break;
    case 6: {  // trailing or leading junk
      static const char* const kJunk[] = {" ", "\n", "x", "{}", "]", "\xef\xbb\xbf"};
      std::string j = pick(g, kJunk);
      if (chance(g, 0.2)) j = std::string(1, '\0');
      if (chance(g, 0.5)) s += j; else s.insert(0, j);
      break;
    }
    case 7: {  // literal spelling
      static const char* const kFrom[] = {"true", "false", "null", ":", "0."};
      static const char* const kTo[] = {"True", "fals", "NULL", "=", "0.e"};
      std::size_t k = below(g, 5);
      std::size_t at = s.find(kFrom[k]);
      if (at != std::string::npos) s.replace(at, std::string(kFrom[k]).size(), kTo[k]);
      break;
    }
    case 8: {  // splice a deep nesting into a value position
      std::size_t c = s.find(':', pos);
      if (c != std::string::npos) {
        std::size_t d = 1 + below(g, 300);
        s.insert(c + 1, std::string(d, '[') + "1" + std::string(d, ']') + ",\"zz\":");
      }
      break;
    }
    default: {  // a number text the double type cannot hold
      static const char* const kNums[] = {"1e400", "-1e400", "123456789012345678901234567890", "-0", "1E-400",
                                          "0x10", "01", ".5", "+1", "NaN", "Infinity"};
      std::size_t c = s.find(':', pos);
      if (c != std::string::npos) {
        std::size_t end = s.find_first_of(",}", c + 1);
        if (end != std::string::npos) s.replace(c + 1, end - c - 1, pick(g, kNums));
      }
      break;
    }
  }
}

/// One fuzz input: a seed, 0-3 tree mutations, then (sometimes) text mutations.
std::string mutated_text(const std::vector<json>& seeds, Gen& g, double p_tree, double p_text) {
  json doc = seeds[below(g, seeds.size())];
  if (chance(g, p_tree))
    for (std::size_t k = 0, n = 1 + below(g, 3); k < n; ++k) mutate_tree(doc, g);
  std::string text = doc.dump(chance(g, 0.2) ? 2 : -1);
  if (chance(g, p_text))
    for (std::size_t k = 0, n = 1 + below(g, 2); k < n; ++k) mutate_text(text, g);
  return text;
}

// ------------------------------------------------------------------------------ property 1

struct Tally {
  std::size_t accepted = 0, rejected = 0, failures = 0;
  std::vector<std::string> examples;
  void fail(const std::string& what) {
    ++failures;
    if (examples.size() < 6) examples.push_back(what);
  }
};

/// parse_event_text(text) returns or throws ValidationError with a message; an accepted event round-trips.
void check_parse(const std::string& text, Tally& t) {
  std::optional<Event> event;
  try {
    event = parse_event_text(text);
  } catch (const ValidationError& e) {
    ++t.rejected;
    if (std::string(e.what()).empty()) t.fail("ValidationError with an empty message for: " + excerpt(text));
    return;
  } catch (const std::exception& e) {
    t.fail(std::string("wrong exception type ") + typeid(e).name() + " (" + excerpt(e.what()) + ") for: " + excerpt(text));
    return;
  } catch (...) {
    t.fail("a non-std exception for: " + excerpt(text));
    return;
  }
  ++t.accepted;
  try {
    json first = to_json(*event);
    std::string dumped = first.dump();
    try {
      json second = to_json(parse_event_text(dumped));
      if (second != first) t.fail("to_json is not idempotent: " + excerpt(dumped) + " became " + excerpt(second.dump()));
    } catch (const ValidationError& e) {
      t.fail("to_json output of an accepted event does not re-parse: " + excerpt(e.what()) + "; input " + excerpt(text));
    }
  } catch (const std::exception& e) {
    t.fail(std::string("to_json threw ") + typeid(e).name() + " (" + excerpt(e.what()) + ") for: " + excerpt(text));
  }
}

void report(const char* name, const Tally& t, double seconds) {
  std::cout << "[fuzz] " << name << ": " << (t.accepted + t.rejected + t.failures) << " inputs, " << t.accepted
            << " accepted, " << t.rejected << " rejected, " << t.failures << " failures, " << seconds << " s\n";
  for (const auto& e : t.examples) FAIL_CHECK(e);
  CHECK(t.failures == 0);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ------------------------------------------------------------------------------ property 2

/// What the file must hold after a run, computed from the results and an independent parse.
struct Model {
  std::set<std::string> recorded;                   // interactions that got a row
  std::set<std::string> with_performance;           // ids with an accepted performance report
  std::map<std::string, std::int64_t> outcomes;     // accepted outcome reports per id
  std::map<std::string, std::int64_t> pending;      // sections reported before (or without) the interaction
  std::size_t accepted = 0, rejected = 0, duplicates_reported_accepted = 0;
  Tally problems;

  void observe(const std::string& text, const RecordResult& r) {
    std::optional<Event> mine;
    try {
      mine = parse_event_text(text);
    } catch (const ValidationError&) {
    }
    if (!r.accepted) {
      ++rejected;
      if (r.error.empty()) problems.fail("rejected without an error message: " + excerpt(text));
      bool duplicate = mine && mine->input_data && recorded.count(mine->interaction_id);
      if (mine && !duplicate) problems.fail("rejected a valid document (" + excerpt(r.error) + "): " + excerpt(text));
      return;
    }
    ++accepted;
    if (!mine) {
      problems.fail("accepted a document parse_event_text rejects: " + excerpt(text));
      return;
    }
    const std::string& id = mine->interaction_id;
    if (r.interaction_id != id) problems.fail("result names " + r.interaction_id + " instead of " + id);
    if (mine->input_data) {
      if (recorded.count(id)) {  // goes to rejected_events at commit, with the whole document
        ++duplicates_reported_accepted;
        return;
      }
      recorded.insert(id);
    } else {
      pending[id] += (mine->performance_metrics ? 1 : 0) + (mine->outcome_data ? 1 : 0);
    }
    if (mine->performance_metrics) with_performance.insert(id);
    if (mine->outcome_data) ++outcomes[id];
  }
};

struct RunSummary {
  std::size_t documents = 0;
  double seconds = 0;
};

/// Feeds `n` mutated documents to an engine on `path` and checks the file against the model.
RunSummary run_engine(const std::string& path, const Config& config, std::size_t n, std::uint64_t seed,
                      const char* name) {
  const std::vector<json> seeds = seed_documents();
  Gen g(seed);
  std::vector<std::string> ids;
  for (std::uint64_t i = 0; i < n / 4 + 1; ++i) ids.push_back(test::uuid_for(i, seed));
  static const char* const kWords[] = {"Fix",   "the",  "failing", "unit", "test", "in",     "auth.py", "Refactor",
                                       "React", "hook", "SQL",     "join", "slow", "deploy", "k8s",     "```py\nx=1\n```"};
  ManualClock clock(1736937000000LL);
  EngineOptions options;
  options.clock = &clock;
  Model model;
  auto t0 = std::chrono::steady_clock::now();
  {
    LearningEngine engine(path, config, options);
    for (std::size_t i = 0; i < n; ++i) {
      json doc = seeds[below(g, seeds.size())];
      doc["interaction_id"] = ids[below(g, ids.size())];
      if (doc.contains("input_data")) {
        std::string prompt;
        for (std::size_t w = 0, k = 1 + below(g, 12); w < k; ++w) prompt += std::string(pick(g, kWords)) + " ";
        doc["input_data"]["raw_prompt"] = prompt;
        if (chance(g, 0.5)) doc["input_data"].erase("detected_keywords");
      }
      if (chance(g, 0.45))
        for (std::size_t k = 0, m = 1 + below(g, 2); k < m; ++k) mutate_tree(doc, g);
      std::string text = doc.dump();
      if (chance(g, 0.1)) mutate_text(text, g);
      clock.advance(1000);
      RecordResult r;
      try {
        r = engine.record(std::string_view(text));
      } catch (const std::exception& e) {
        model.problems.fail(std::string("record() threw ") + typeid(e).name() + ": " + excerpt(e.what()) +
                            " for: " + excerpt(text));
        continue;
      } catch (...) {
        model.problems.fail("record() threw a non-std exception for: " + excerpt(text));
        continue;
      }
      model.observe(text, r);
    }
    engine.close();
    EngineStats stats = engine.stats();
    CHECK(stats.collector.rejected == model.rejected + model.duplicates_reported_accepted);
    CHECK(stats.collector.queued == 0);
    CHECK(stats.collector.committed == model.accepted - model.duplicates_reported_accepted);
    CHECK(engine.integrity_check() == "ok");
  }
  RunSummary summary{n, seconds_since(t0)};

  std::cout << "[fuzz] engine " << name << ": " << n << " documents, " << model.accepted << " accepted ("
            << model.duplicates_reported_accepted << " of them duplicates kept in rejected_events), " << model.rejected
            << " rejected, " << model.recorded.size() << " interactions, " << summary.seconds << " s\n";
  for (const auto& e : model.problems.examples) FAIL_CHECK(e);
  CHECK(model.problems.failures == 0);
  if (config.learning.data_collection.mode == CollectionMode::synchronous) {
    // A synchronous record() has committed before it returns: it knows about a duplicate and must say so
    // (see "a duplicate interaction recorded synchronously is reported as rejected").
    CHECK(model.duplicates_reported_accepted == 0);
  }

  store::Database db(path);
  // Nothing invalid is dropped and nothing is lost: one rejected row per rejection (duplicates included).
  CHECK(db.query_int("SELECT count(*) FROM rejected_events") ==
        static_cast<std::int64_t>(model.rejected + model.duplicates_reported_accepted));
  CHECK(db.query_int("SELECT count(*) FROM rejected_events WHERE reason = ''") == 0);
  CHECK(db.query_int("SELECT count(*) FROM interactions") == static_cast<std::int64_t>(model.recorded.size()));
  std::size_t missing = 0, wrong_revision = 0, wrong_pending = 0, expected_perf = 0, expected_outcomes = 0;
  std::int64_t expected_pending = 0;
  store::Statement has_interaction(db, "SELECT count(*) FROM interactions WHERE interaction_id = ?1");
  store::Statement has_perf(db, "SELECT count(*) FROM performance WHERE interaction_id = ?1");
  store::Statement revision(db, "SELECT revision FROM outcomes WHERE interaction_id = ?1");
  store::Statement pending(db, "SELECT count(*) FROM pending_events WHERE interaction_id = ?1");
  for (const auto& id : model.recorded) {
    has_interaction.reset();
    has_interaction.bind(1, id);
    missing += has_interaction.step() && has_interaction.column_int64(0) == 1 ? 0 : 1;
    if (model.with_performance.count(id)) {
      ++expected_perf;
      has_perf.reset();
      has_perf.bind(1, id);
      missing += has_perf.step() && has_perf.column_int64(0) == 1 ? 0 : 1;
    }
    if (auto it = model.outcomes.find(id); it != model.outcomes.end()) {
      ++expected_outcomes;
      revision.reset();
      revision.bind(1, id);
      if (!revision.step()) {
        ++missing;
      } else if (revision.column_int64(0) != it->second) {
        ++wrong_revision;
      }
    }
  }
  for (const auto& [id, sections] : model.pending) {
    pending.reset();
    pending.bind(1, id);
    REQUIRE(pending.step());
    std::int64_t want = model.recorded.count(id) ? 0 : sections;
    expected_pending += want;
    wrong_pending += pending.column_int64(0) == want ? 0 : 1;
  }
  CHECK(missing == 0);
  CHECK(wrong_revision == 0);
  CHECK(wrong_pending == 0);
  CHECK(db.query_int("SELECT count(*) FROM performance") == static_cast<std::int64_t>(expected_perf));
  CHECK(db.query_int("SELECT count(*) FROM outcomes") == static_cast<std::int64_t>(expected_outcomes));
  CHECK(db.query_int("SELECT count(*) FROM pending_events") == expected_pending);
  return summary;
}

/// Runs fn in a child process: "" when it returned 0, otherwise how it ended (a crash stays in the child).
std::string in_child(const std::function<int()>& fn) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    // Catch2's handlers would report the crash from the child as if it were the test process.
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE}) std::signal(sig, SIG_DFL);
    int rc = 3;
    try {
      rc = fn();
    } catch (...) {
      rc = 4;
    }
    std::_Exit(rc);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return "waitpid failed";
  if (WIFSIGNALED(status))
    return "killed by signal " + std::to_string(WTERMSIG(status)) +
           (WTERMSIG(status) == SIGSEGV ? " (SIGSEGV, e.g. a stack overflow)" : "");
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    return "exited with " + std::to_string(WEXITSTATUS(status)) + " (2 = wrong exception type, 4 = other exception)";
  return "";
}

/// 0 when parse_event_text(text) returns or throws ValidationError, 2 for any other exception.
int parse_outcome(const std::string& text) {
  try {
    parse_event_text(text);
  } catch (const ValidationError&) {
  } catch (...) {
    return 2;
  }
  return 0;
}

}  // namespace

// ================================================================================== property 1

TEST_CASE("fuzz: parse_event_text returns an Event or throws ValidationError and round-trips", "[fuzz]") {
  const std::vector<json> seeds = seed_documents();
  Gen g(0x5EED0001);
  Tally tree, text, both;
  auto t0 = std::chrono::steady_clock::now();
  // The seeds themselves.
  for (const auto& s : seeds) check_parse(s.dump(), tree);
  CHECK(tree.accepted == seeds.size());
  for (int i = 0; i < 9000; ++i) check_parse(mutated_text(seeds, g, 1.0, 0.0), tree);
  for (int i = 0; i < 7000; ++i) check_parse(mutated_text(seeds, g, 0.0, 1.0), text);
  for (int i = 0; i < 6000; ++i) check_parse(mutated_text(seeds, g, 0.7, 0.7), both);
  double secs = seconds_since(t0);
  report("parse, tree mutations", tree, secs);
  report("parse, text mutations", text, secs);
  report("parse, both", both, secs);
  CHECK(tree.accepted + tree.rejected + text.accepted + text.rejected + both.accepted + both.rejected >= 20000);
  // The mutations must exercise both outcomes, or the property says little.
  CHECK(tree.accepted > 500);
  CHECK(tree.rejected > 3000);
  CHECK(text.rejected > 3000);
}

TEST_CASE("fuzz: the same seed gives the same inputs", "[fuzz]") {
  const std::vector<json> seeds = seed_documents();
  Gen a(7), b(7);
  for (int i = 0; i < 200; ++i) REQUIRE(mutated_text(seeds, a, 0.7, 0.7) == mutated_text(seeds, b, 0.7, 0.7));
}

// Minimal case found by the fuzzer: a timestamp whose UTC instant falls before year 0000 or after
// year 9999 is accepted, but format_rfc3339 then writes "-001-12-31T..." / "10000-01-01T...", which
// the parser itself rejects (and which break the fixed-width, sortable text column in the store).
TEST_CASE("fuzz regression: accepted timestamps at the year boundaries round-trip", "[fuzz]") {
  for (const char* ts : {"0000-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"}) {
    INFO(ts);
    json doc = test::interaction_doc(test::uuid_for(5));
    doc["timestamp"] = ts;
    std::optional<Event> e;
    try {
      e = parse_event(doc);
    } catch (const ValidationError&) {
      SUCCEED("rejected: acceptable");
      continue;
    }
    std::string formatted = format_rfc3339(*e->timestamp);
    INFO("formatted as " << formatted);
    CHECK(formatted.size() == 24);
    CHECK(try_parse_rfc3339(formatted).has_value());
    CHECK_NOTHROW(parse_event(to_json(*e)));
  }
}

// Minimal case found by the fuzzer: an unknown key beginning with a NUL character ("\u0000timestamp",
// valid JSON) becomes the path of the ValidationError, and what() is a C string: the message reads as
// empty, so the collector reports a rejection without a reason and stores '' in rejected_events.reason.
TEST_CASE("fuzz regression: a NUL character in an unknown key does not empty the error message", "[fuzz]") {
  const std::string text = R"({"interaction_id":"550e8400-e29b-41d4-a716-446655440000","\u0000timestamp":"x"})";
  std::string message = "(not thrown)";
  try {
    parse_event_text(text);
  } catch (const ValidationError& e) {
    message = e.what();
  }
  CHECK_FALSE(message.empty());
  CHECK_THAT(message, Catch::Matchers::Contains("unknown field"));

  test::TempDir dir;
  LearningEngine engine(dir.file("nul.db"), Config::defaults());
  RecordResult r = engine.record(std::string_view(text));
  CHECK_FALSE(r.accepted);
  CHECK_FALSE(r.error.empty());
  engine.close();
  store::Database db(dir.file("nul.db"));
  CHECK(db.query_int("SELECT count(*) FROM rejected_events WHERE reason <> ''") == 1);
}

// ================================================================================== property 2

TEST_CASE("fuzz: the collector accepts or rejects every document and loses none (synchronous)", "[fuzz]") {
  test::TempDir dir;
  Config config = Config::defaults();
  REQUIRE(config.learning.data_collection.mode == CollectionMode::synchronous);
  run_engine(dir.file("sync.db"), config, 3000, 0xC011EC7, "synchronous");
}

TEST_CASE("fuzz: the collector accepts or rejects every document and loses none (buffered with batch 50)", "[fuzz]") {
  test::TempDir dir;
  Config config = Config::defaults();
  config.learning.data_collection.mode = CollectionMode::buffered;
  config.learning.data_collection.batch_size = 50;
  run_engine(dir.file("buffered.db"), config, 3000, 0xB0FFE2, "buffered");
}

// Minimal case: in synchronous mode record() commits before it returns, so it knows that a second
// interaction document with the same id was turned into a rejected_events row; the result must say so
// (record_batch() does). It reports accepted = true with no error instead.
TEST_CASE("fuzz regression: a duplicate interaction recorded synchronously is reported as rejected", "[fuzz]") {
  test::TempDir dir;
  LearningEngine engine(dir.file("dup.db"), Config::defaults());
  const std::string id = test::uuid_for(42);
  RecordResult first = engine.record(std::string_view(test::interaction_doc(id, "first").dump()));
  REQUIRE(first.accepted);
  RecordResult second = engine.record(std::string_view(test::interaction_doc(id, "second").dump()));
  EngineStats stats = engine.stats();
  CHECK(stats.tables.rejected_events == 1);  // the duplicate is kept ...
  CHECK(stats.collector.rejected == 1);      // ... and counted as rejected ...
  CHECK_FALSE(second.accepted);              // ... but the result claims it was accepted
  CHECK_FALSE(second.error.empty());
  CHECK(second.field == "interaction_id");
  // record_batch reports the same situation correctly.
  auto batch = engine.record_batch({test::interaction_doc(id, "third").dump()});
  REQUIRE(batch.size() == 1);
  CHECK_FALSE(batch[0].accepted);
  CHECK(batch[0].field == "interaction_id");
}

// ================================================================================== property 3

TEST_CASE("fuzz: random bytes never crash parse_event_text or record()", "[fuzz]") {
  Gen g(0xB17E5);
  static const char kJsonish[] = "{}[]\":,0123456789eE+-. \t\ntruefalsenull\\u\"interaction_id\"input_data";
  std::vector<std::string> inputs;
  for (int i = 0; i < 3000; ++i) {
    std::size_t n = below(g, 4097);
    std::string s(n, '\0');
    switch (i % 3) {
      case 0:
        for (char& c : s) c = static_cast<char>(g() & 0xFF);
        break;
      case 1:
        for (char& c : s) c = kJsonish[below(g, sizeof kJsonish - 1)];
        break;
      default: {  // a valid prefix, then bytes
        std::string prefix = test::interaction_doc(test::uuid_for(static_cast<std::uint64_t>(i))).dump();
        prefix.resize(below(g, prefix.size() + 1));
        for (char& c : s) c = static_cast<char>(g() & 0xFF);
        s = prefix + s.substr(0, n / 8);
        break;
      }
    }
    inputs.push_back(std::move(s));
  }
  inputs.push_back("");
  inputs.push_back(std::string(1, '\0'));
  inputs.push_back(std::string(4096, '\0'));
  inputs.push_back(std::string(4096, '{'));
  inputs.push_back(std::string(4096, '['));
  inputs.push_back(std::string(4096, '"'));

  Tally t;
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& s : inputs) check_parse(s, t);
  report("random bytes, parse", t, seconds_since(t0));

  test::TempDir dir;
  std::size_t accepted = 0, rejected = 0, wrong = 0;
  t0 = std::chrono::steady_clock::now();
  {
    LearningEngine engine(dir.file("bytes.db"), Config::defaults());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (i % 6 != 0 && i + 6 < inputs.size()) continue;  // every sixth input, and the special ones
      try {
        RecordResult r = engine.record(std::string_view(inputs[i]));
        (r.accepted ? accepted : rejected) += 1;
        if (!r.accepted && r.error.empty()) ++wrong;
      } catch (...) {
        ++wrong;
      }
    }
    engine.close();
    CHECK(engine.integrity_check() == "ok");
    EngineStats stats = engine.stats();
    CHECK(stats.tables.rejected_events == static_cast<std::int64_t>(rejected));
  }
  std::cout << "[fuzz] random bytes, record(): " << accepted << " accepted, " << rejected << " rejected, "
            << seconds_since(t0) << " s\n";
  CHECK(wrong == 0);
  // The raw bytes are kept as received, NULs and invalid UTF-8 included.
  store::Database db(dir.file("bytes.db"));
  CHECK(db.query_int("SELECT count(*) FROM rejected_events WHERE length(CAST(payload AS BLOB)) = 4096 AND "
                     "hex(payload) = hex(zeroblob(4096))") == 1);
}

TEST_CASE("fuzz: a 150000-character prompt is parsed and recorded", "[fuzz]") {
  Gen g(150000);
  std::vector<std::pair<std::string, std::string>> prompts;
  {
    std::string words;
    static const char* const kWords[] = {"refactor ", "the ", "React ", "component ", "to ", "use ", "hooks ",
                                         "SELECT ", "* ", "FROM ", "users; ", "def ", "f(x): ", "return ", "x\n"};
    while (words.size() < 150000) words += pick(g, kWords);
    words.resize(150000);
    prompts.emplace_back("words", words);
  }
  prompts.emplace_back("one token", std::string(150000, 'a'));
  prompts.emplace_back("whitespace", std::string(150000, ' '));
  {
    std::string fences;
    while (fences.size() < 150000) fences += "```\n";
    fences.resize(150000);
    prompts.emplace_back("code fences", fences);
  }
  {
    std::string cjk;  // 150,000 characters, 450,000 bytes: over the byte limit
    for (int i = 0; i < 150000; ++i) cjk += "\xe6\x97\xa5";
    prompts.emplace_back("3-byte characters", cjk);
  }
  {
    std::string ctl;  // control characters: escaped as \u00XX in the JSON text
    for (int i = 0; i < 150000; ++i) ctl += static_cast<char>(1 + below(g, 127));
    prompts.emplace_back("ASCII incl. control characters", ctl);
  }

  test::TempDir dir;
  LearningEngine engine(dir.file("big.db"), Config::defaults());
  std::size_t i = 0;
  for (const auto& [name, prompt] : prompts) {
    INFO(name);
    const std::string id = test::uuid_for(++i, 150);
    const std::string text = test::interaction_doc(id, prompt).dump();
    const bool fits = prompt.size() <= 200000;
    auto t0 = std::chrono::steady_clock::now();
    Tally t;
    check_parse(text, t);
    for (const auto& e : t.examples) FAIL_CHECK(e);
    CHECK(t.accepted == (fits ? 1u : 0u));
    RecordResult r;
    REQUIRE_NOTHROW(r = engine.record(std::string_view(text)));
    CHECK(r.accepted == fits);
    if (!fits) CHECK_THAT(r.error, Catch::Matchers::Contains("exceeds the limit"));
    // Corrupt the long string in the middle: invalid UTF-8 must be a rejection, not a crash.
    std::string broken = text;
    broken[broken.size() / 2] = '\xff';
    Tally tb;
    check_parse(broken, tb);
    CHECK(tb.rejected == 1);
    RecordResult rb;
    REQUIRE_NOTHROW(rb = engine.record(std::string_view(broken)));
    CHECK_FALSE(rb.accepted);
    std::cout << "[fuzz] 150k prompt (" << name << "): " << (r.accepted ? "accepted" : "rejected") << " in "
              << seconds_since(t0) << " s\n";
    if (fits) {
      engine.flush();
      auto stored = engine.stats();
      CHECK(stored.tables.interactions >= 1);
    }
  }
  engine.close();
  CHECK(engine.integrity_check() == "ok");
  store::Database db(dir.file("big.db"));
  CHECK(db.query_int("SELECT count(*) FROM interactions WHERE length(CAST(raw_prompt AS BLOB)) = 150000") == 5);
}

// Minimal case found while fuzzing: ValidationError messages render the offending value with
// json::dump(), which recurses once per nesting level; a document nested ~100,000 levels deep
// (200 KB of '[') overflows the stack in parse_event_text and in record(). The JSON parser itself
// is iterative and copes. Each depth runs in a child process so that a crash is reported, not fatal.
TEST_CASE("fuzz: deeply nested documents never crash parse_event_text or record()", "[fuzz]") {
  const std::string head = R"({"interaction_id":"550e8400-e29b-41d4-a716-446655440000",)";
  struct Shape {
    const char* name;
    std::function<std::string(std::size_t)> make;
  };
  const std::vector<Shape> shapes = {
      {"top-level array", [](std::size_t d) { return std::string(d, '[') + std::string(d, ']'); }},
      {"input_data as nested arrays",
       [&](std::size_t d) { return head + "\"input_data\":" + std::string(d, '[') + std::string(d, ']') + "}"; }},
      {"outcome_data.reward as nested objects",
       [&](std::size_t d) {
         std::string s = head + "\"outcome_data\":{\"reward\":";
         for (std::size_t i = 0; i < d; ++i) s += "{\"a\":";
         s += "1";
         s += std::string(d, '}');
         return s + "}}";
       }},
      {"under an unknown key",
       [&](std::size_t d) { return head + "\"zz\":" + std::string(d, '[') + std::string(d, ']') + "}"; }},
  };
  test::TempDir dir;
  for (std::size_t depth : {1000u, 20000u, 100000u, 1000000u}) {
    for (const auto& shape : shapes) {
      const std::string text = shape.make(depth);
      INFO(shape.name << ", depth " << depth << " (" << text.size() << " bytes)");
      CHECK(in_child([&] { return parse_outcome(text); }) == "");
      const std::string path = dir.file("deep_" + std::to_string(depth) + ".db");
      CHECK(in_child([&] {
              LearningEngine engine(path, Config::defaults());
              RecordResult r = engine.record(std::string_view(text));
              return !r.accepted && !r.error.empty() ? 0 : 5;
            }) == "");
    }
  }
}

// ------------------------------------------------------------------ the demo's --prompts files

namespace {

/// Whether `s` is well-formed UTF-8 (no overlong forms or surrogates checked: the cut is what is tested).
bool utf8_ok(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

/// A small valid prompt file of either kind, the seed of the mutations below.
std::string prompt_file_seed(Gen& g, bool csv) {
  static const char* const kPrompts[] = {"Fix the failing login test", "Explain \"quoted\" words, please",
                                         "Line one\nline two", "Résumé in 3 bullets", "a,b,c"};
  std::string s;
  if (csv) {
    s = chance(g, 0.5) ? "id,prompt,domain\r\n" : "prompt\n";
    const bool three = s[0] == 'i';
    for (std::size_t i = 0, n = 1 + below(g, 5); i < n; ++i) {
      std::string p = pick(g, kPrompts), q;
      for (char c : p) q += c == '"' ? std::string("\"\"") : std::string(1, c);
      s += three ? std::to_string(i) + ",\"" + q + "\",code\r\n" : "\"" + q + "\"\n";
    }
  } else {
    static const char* const kFields[] = {"prompt", "raw_prompt", "text", "question", "instruction", "turns"};
    for (std::size_t i = 0, n = 1 + below(g, 5); i < n; ++i) {
      const std::string field = pick(g, kFields);
      json line = {{"id", i}};
      line[field] = field == "turns" ? json::array({pick(g, kPrompts), "next"}) : json(pick(g, kPrompts));
      s += line.dump() + "\n";
    }
  }
  return s;
}

}  // namespace

TEST_CASE("fuzz: a --prompts file gives its prompts or one error naming the file", "[fuzz]") {
  test::TempDir dir;
  Gen g(0x5EED0777);
  std::size_t loaded = 0, refused = 0;
  std::vector<std::string> failures;
  for (int i = 0; i < 3000; ++i) {
    const std::size_t max_chars = 1 + below(g, 40);  // short: cuts fall inside multi-byte characters
    const bool csv = chance(g, 0.5);
    std::string text = prompt_file_seed(g, csv);
    if (chance(g, 0.1)) {  // random bytes
      text.clear();
      for (std::size_t k = 0, n = below(g, 200); k < n; ++k) text += static_cast<char>(g() & 0xFF);
    } else {
      for (std::size_t k = 0, n = below(g, 4); k < n; ++k) {
        static const char* const kBits[] = {"\"", ",", "\n", "\r\n", "{", "}", "[", "]", "\xff", "\xc3", "",
                                            "\"prompt\":", std::string(300, 'x').c_str()};
        const std::size_t pos = below(g, text.size() + 1);
        switch (below(g, 4)) {
          case 0: text.insert(pos, pick(g, kBits)); break;
          case 1: if (!text.empty()) text.erase(pos, 1 + below(g, 12)); break;
          case 2: if (pos < text.size()) text[pos] = static_cast<char>(g() & 0xFF); break;
          default: text.resize(pos); break;
        }
      }
    }
    const std::string path = dir.file("p" + std::to_string(i % 7) + (csv ? ".csv" : ".jsonl"));
    { std::ofstream(path, std::ios::binary | std::ios::trunc) << text; }
    const bool text_is_utf8 = utf8_ok(text);
    const std::string why = in_child([&] {
      try {
        const auto prompts = cli::load_prompts(path, max_chars);
        if (prompts.empty()) return 5;
        for (const auto& p : prompts) {
          if (p.size() > max_chars || p.find_first_not_of(" \t\r\n") == std::string::npos) return 6;
          // A cut never splits a UTF-8 sequence: a file of well-formed UTF-8 gives well-formed prompts.
          if (text_is_utf8 && !utf8_ok(p)) return 7;
        }
        return 0;
      } catch (const std::invalid_argument& e) {
        return std::string(e.what()).rfind(path, 0) == 0 ? 1 : 8;  // names the file first
      }
    });
    // in_child reports exit 1 (a clear refusal) as "exited with 1": count it apart.
    if (why.empty()) ++loaded;
    else if (why.rfind("exited with 1 ", 0) == 0) ++refused;
    else if (failures.size() < 5) failures.push_back(why + " on " + excerpt(text));
  }
  INFO("loaded " << loaded << ", refused " << refused);
  std::string all;
  for (const auto& f : failures) all += f + "\n";
  INFO(all);
  CHECK(failures.empty());
  CHECK(loaded > 500);
  CHECK(refused > 300);
}
