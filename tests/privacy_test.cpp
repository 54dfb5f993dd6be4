// Privacy: keys, keyed identifier hashes, encryption at rest, and learning.privacy applied by the engine to
// what it stores (real files on disk).
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/privacy/crypto.hpp"
#include "promptlearn/privacy/protector.hpp"
#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using namespace promptlearn;
using nlohmann::json;

namespace {

const std::string kKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

json event(const std::string& id, const std::string& user, const std::string& prompt,
           const std::string& ts = "2026-02-01T12:34:56.789Z") {
  json j = test::interaction_doc(id, prompt);
  j["user_id"] = user;
  j["session_id"] = "session-of-" + user;
  j["timestamp"] = ts;
  return j;
}

std::string one_text(const std::string& db, const std::string& sql) {
  store::Store st(db);
  store::Statement q(st.db(), sql);
  REQUIRE(q.step());
  return q.is_null(0) ? std::string("<null>") : q.column_text(0);
}

}  // namespace

TEST_CASE("SecretKey reads hex and raw bytes and names the field of a bad key without printing it", "[privacy]") {
  auto k = privacy::SecretKey::from_text(kKeyHex, "k");
  CHECK(k.hex() == kKeyHex);
  auto raw = privacy::SecretKey::from_text(std::string(32, 'x'), "k");
  CHECK_FALSE(raw.empty());
  CHECK(privacy::SecretKey::from_text("  " + kKeyHex + "\n", "k").hex() == kKeyHex);
  try {
    privacy::SecretKey::from_text("secret-value-zz", "learning.privacy.key_file");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.key() == "learning.privacy.key_file");
    CHECK(std::string(e.what()).find("secret-value-zz") == std::string::npos);
  }
  CHECK_THROWS_AS(privacy::SecretKey::from_text(std::string(63, 'a') + "g", "k"), ConfigError);
  CHECK_THROWS_AS(privacy::SecretKey::from_file("/nonexistent/key", "learning.privacy.key_file"), ConfigError);
  CHECK(privacy::SecretKey::random().hex() != privacy::SecretKey::random().hex());
}

TEST_CASE("identifier hashes are keyed, stable and recognisable", "[privacy]") {
  const auto k1 = privacy::SecretKey::from_text(kKeyHex, "k");
  const auto k2 = privacy::SecretKey::random();
  privacy::IdentifierHasher h1(k1), h1b(k1), h2(k2);
  const std::string a = h1("alice");
  CHECK(a == h1b("alice"));
  CHECK(a != h1("alicf"));
  CHECK(a != h2("alice"));
  CHECK(a.size() == 35);
  CHECK(privacy::IdentifierHasher::is_hash(a));
  CHECK_FALSE(privacy::IdentifierHasher::is_hash("alice"));
  CHECK_FALSE(privacy::IdentifierHasher::is_hash("h1:" + std::string(32, 'G')));
  // The subkey is not the master key: a plain BLAKE2b keyed with the master would differ.
  CHECK(a.find("alice") == std::string::npos);
}

TEST_CASE("encrypted text round-trips, and tampering or a wrong key is an error naming the field", "[privacy]") {
  const auto key = privacy::SecretKey::from_text(kKeyHex, "k");
  privacy::TextCipher c(key), other(privacy::SecretKey::random());
  const std::string plain = "Refactor the payment module; my card is 4111 1111 1111 1111";
  const std::string e1 = c.encrypt(plain), e2 = c.encrypt(plain);
  CHECK(privacy::TextCipher::is_encrypted(e1));
  CHECK(e1 != e2);  // fresh nonce each time
  CHECK(e1.find("payment") == std::string::npos);
  CHECK(c.decrypt(e1, "f") == plain);
  CHECK(c.decrypt(c.encrypt(""), "f").empty());
  std::string tampered = e1;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  try {
    c.decrypt(tampered, "interactions.raw_prompt");
    FAIL("no error");
  } catch (const ValidationError& e) {
    CHECK(e.path() == "interactions.raw_prompt");
  }
  CHECK_THROWS_AS(other.decrypt(e1, "f"), ValidationError);
  CHECK_THROWS_AS(c.decrypt("enc1:!!!", "f"), ValidationError);
  CHECK_THROWS_AS(c.decrypt("enc1:AAAA", "f"), ValidationError);
  CHECK_THROWS_AS(c.decrypt("plain", "f"), ValidationError);
}

TEST_CASE("the engine stores user and session ids only as keyed hashes (automatic key file)", "[privacy][engine]") {
  test::TempDir dir;
  const std::string db = dir.file("p.db");
  std::string hash;
  {
    LearningEngine engine(db, test::fast_config());
    REQUIRE(engine.record(event(test::uuid_for(1), "alice@example.com", "Fix the failing login test")).accepted);
    hash = one_text(db, "SELECT user_id FROM interactions");
    CHECK(privacy::IdentifierHasher::is_hash(hash));
    CHECK(privacy::IdentifierHasher::is_hash(one_text(db, "SELECT session_id FROM interactions")));
    CHECK(one_text(db, "SELECT user_id FROM user_stats") == hash);
  }
  struct stat st {};
  REQUIRE(::stat((db + ".key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // Another engine on the file finds the same key: the same user gets the same hash.
  LearningEngine again(db, test::fast_config());
  REQUIRE(again.record(event(test::uuid_for(2), "alice@example.com", "Add a test for logout")).accepted);
  CHECK(one_text(db, "SELECT count(DISTINCT user_id) FROM interactions") == "1");
  CHECK(one_text(db, "SELECT interactions FROM user_stats") == "2");
  // The raw id is nowhere in the file's rows.
  CHECK(one_text(db, "SELECT count(*) FROM interactions WHERE instr(user_id, 'alice') OR instr(features, 'alice')") ==
        "0");
  // A rejected event keeps its payload, with the ids hashed.
  json bad = event(test::uuid_for(3), "alice@example.com", "x");
  bad["input_data"]["token_count"] = "many";
  CHECK_FALSE(again.record(bad).accepted);
  const std::string payload = one_text(db, "SELECT payload FROM rejected_events");
  CHECK(payload.find("alice@example.com") == std::string::npos);
  CHECK(payload.find(hash) != std::string::npos);
  // A duplicate interaction keeps the protected event as its payload (serialised only then): hashed ids,
  // its own prompt, the id it repeated.
  json dup = event(test::uuid_for(2), "alice@example.com", "Add a test for logout, again");
  again.record(dup);
  again.flush();
  const std::string dup_payload = one_text(db, "SELECT payload FROM rejected_events WHERE field = 'interaction_id'");
  CHECK(dup_payload.find("alice@example.com") == std::string::npos);
  const json dj = json::parse(dup_payload);
  CHECK(dj["user_id"] == hash);
  CHECK(dj["interaction_id"] == test::uuid_for(2));
  CHECK(dj["input_data"]["raw_prompt"] == "Add a test for logout, again");
  CHECK(one_text(db, "SELECT interactions FROM user_stats") == "2");
}

TEST_CASE("a host key, a key file and no key at all", "[privacy][engine]") {
  test::TempDir dir;
  {
    EngineOptions o;
    o.privacy_key = kKeyHex;
    LearningEngine engine(dir.file("a.db"), test::fast_config(), o);
    REQUIRE(engine.record(event(test::uuid_for(1), "bob", "Explain this stack trace")).accepted);
  }
  const std::string key_file = dir.file("key.hex");
  { std::ofstream(key_file) << kKeyHex << "\n"; }
  {
    Config c = test::fast_config();
    c.learning.privacy.key_file = key_file;
    LearningEngine engine(dir.file("b.db"), c);
    REQUIRE(engine.record(event(test::uuid_for(1), "bob", "Explain this stack trace")).accepted);
  }
  // The same key gives the same hash in both files (shards of one fleet share a key).
  CHECK(one_text(dir.file("a.db"), "SELECT user_id FROM interactions") ==
        one_text(dir.file("b.db"), "SELECT user_id FROM interactions"));
  CHECK_FALSE(std::filesystem::exists(dir.file("a.db.key")));
  {
    Config c = test::fast_config();
    c.learning.privacy.auto_key = false;
    LearningEngine engine(dir.file("c.db"), c);
    REQUIRE(engine.record(event(test::uuid_for(1), "bob", "Explain this stack trace")).accepted);
    CHECK(one_text(dir.file("c.db"), "SELECT user_id FROM interactions") == "<null>");  // refused, not stored raw
    CHECK_THROWS_AS(engine.export_user("bob"), Error);
  }
  {
    Config c = test::fast_config();
    c.learning.privacy.auto_key = false;
    c.learning.privacy.encrypt_text = true;
    try {
      LearningEngine engine(dir.file("d.db"), c);
      FAIL("no error");
    } catch (const ConfigError& e) {
      CHECK(e.key() == "learning.privacy.encrypt_text");
    }
  }
  {
    EngineOptions o;
    o.privacy_key = "not a key";
    CHECK_THROWS_AS(LearningEngine(dir.file("e.db"), test::fast_config(), o), ConfigError);
  }
}

TEST_CASE("encryption at rest: stored text is ciphertext, features still work, export decrypts", "[privacy][engine]") {
  test::TempDir dir;
  const std::string db = dir.file("enc.db");
  Config c = test::fast_config();
  c.learning.privacy.encrypt_text = true;
  EngineOptions o;
  o.privacy_key = kKeyHex;
  const std::string prompt = "Optimize the PostgreSQL query in billing_report.sql that times out";
  {
    LearningEngine engine(db, c, o);
    REQUIRE(engine.record(event(test::uuid_for(1), "carol", prompt)).accepted);
    json outcome = {{"interaction_id", test::uuid_for(1)},
                    {"outcome_data", {{"response_quality_score", 8}, {"feedback_data", {{"explicit_feedback", "great, thanks carol"}}}}}};
    REQUIRE(engine.record(outcome).accepted);
    const std::string stored = one_text(db, "SELECT raw_prompt FROM interactions");
    CHECK(privacy::TextCipher::is_encrypted(stored));
    CHECK(stored.find("PostgreSQL") == std::string::npos);
    CHECK(privacy::TextCipher::is_encrypted(one_text(db, "SELECT explicit_feedback FROM outcomes")));
    CHECK(one_text(db, "SELECT domain FROM interactions") != "<null>");  // derived before encryption
    CHECK(one_text(db, "SELECT detected_keywords FROM interactions").find("postgresql") != std::string::npos);
    json exported = engine.export_user("carol");
    REQUIRE(exported["interactions"].size() == 1);
    CHECK(exported["interactions"][0]["raw_prompt"] == prompt);
    CHECK(exported["outcomes"][0]["explicit_feedback"] == "great, thanks carol");
  }
  // With another key the text cannot be read: the export says so per field instead of failing.
  EngineOptions wrong;
  wrong.privacy_key = privacy::SecretKey::random().hex();
  LearningEngine other(db, c, wrong);
  json exported = other.export_user(one_text(db, "SELECT user_id FROM interactions"));
  REQUIRE(exported["interactions"].size() == 1);
  CHECK(exported["interactions"][0].contains("raw_prompt_error"));
}

TEST_CASE("timestamps generalised, fields omitted, PII scrubbed before storage", "[privacy][engine]") {
  test::TempDir dir;
  const std::string db = dir.file("min.db");
  Config c = test::fast_config();
  c.learning.privacy.timestamp_granularity_seconds = 3600;
  c.learning.privacy.omit_fields = {"processed_input", "git_branch"};
  c.learning.privacy.scrub_pii = true;
  LearningEngine engine(db, c);
  json e = event(test::uuid_for(1), "dave", "Email dave.smith@corp.com a summary of /home/dave/project/notes.md");
  e["context_data"] = {{"git_branch", "feature/dave-secret"}, {"working_directory", "/home/dave/project"}};
  REQUIRE(engine.record(e).accepted);
  CHECK(one_text(db, "SELECT timestamp FROM interactions").rfind("2026-02-01T12:00:00", 0) == 0);
  const std::string raw = one_text(db, "SELECT raw_prompt FROM interactions");
  CHECK(raw.find("dave.smith@corp.com") == std::string::npos);
  CHECK(raw.find("[EMAIL]") != std::string::npos);
  CHECK(raw.find("/home/dave/") == std::string::npos);
  CHECK(one_text(db, "SELECT processed_input FROM interactions") == "<null>");
  CHECK(one_text(db, "SELECT git_branch FROM interactions") == "<null>");
  CHECK(one_text(db, "SELECT working_directory FROM interactions").find("/home/dave") == std::string::npos);
}

TEST_CASE("learning.privacy round-trips through JSON and names bad values", "[privacy][config]") {
  Config c = Config::defaults();
  c.learning.privacy.scrub_pii = true;
  c.learning.privacy.scrub_kinds = {"email", "card"};
  c.learning.privacy.omit_fields = {"raw_prompt"};
  c.learning.privacy.timestamp_granularity_seconds = 60;
  CHECK(Config::from_json(c.to_json()) == c);
  try {
    Config::from_json(json{{"learning", {{"privacy", {{"scrub_kinds", {"email", "ssn"}}}}}}});
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.key() == "learning.privacy.scrub_kinds[1]");
    CHECK(std::string(e.what()).find("ssn") != std::string::npos);
  }
  CHECK_THROWS_AS(Config::from_json(json{{"learning", {{"privacy", {{"omit_fields", {"raw_prompt", "raw_prompt"}}}}}}}),
                  ConfigError);
  CHECK_THROWS_AS(Config::from_json(json{{"learning", {{"privacy", {{"timestamp_granularity_seconds", 90000}}}}}}),
                  ConfigError);
  CHECK_THROWS_AS(Config::from_json(json{{"learning", {{"privacy", {{"key_file", 3}}}}}}), ConfigError);
}
