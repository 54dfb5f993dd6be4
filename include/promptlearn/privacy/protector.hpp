#pragma once
/// @file
/// What the configuration's `learning.privacy` section does to an event before it is stored: identifiers
/// replaced by keyed hashes, timestamps generalised, listed fields dropped, PII scrubbed from text, text
/// encrypted. The collector applies it to everything it writes (accepted events, pending sections, the
/// payloads of rejected events); the engine applies the identifier part to what it is asked to select for,
/// so per-user statistics are found under the same hashed ids.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "promptlearn/config.hpp"
#include "promptlearn/core/records.hpp"
#include "promptlearn/privacy/crypto.hpp"

namespace promptlearn::privacy {

struct ScrubOptions;

/// Where the key came from (reported by stats(); the key itself never is).
enum class KeySource { none, host, key_file, auto_key_file };
std::string_view to_string(KeySource s) noexcept;

class Protector {
 public:
  /// @param host_key the host's key (EngineOptions::privacy_key), or empty.
  /// @param database_path used for the automatic key file "<database_path>.key".
  /// @throws ConfigError naming learning.privacy.* when encryption is asked for without a key, or a key
  /// file cannot be read or created.
  Protector(const PrivacyConfig& config, const SecretKey& host_key, const std::string& database_path);
  ~Protector();
  Protector(const Protector&) = delete;
  Protector& operator=(const Protector&) = delete;

  /// user_id and session_id hashed (or removed when hashing is on and there is no key).
  void protect_ids(Event& e) const;
  /// The stored form of one identifier ("" when it must not be stored).
  std::optional<std::string> stored_id(std::string_view id) const;
  /// The timestamp truncated to the configured granularity.
  TimeMs generalise(TimeMs t) const noexcept;
  /// Text fields after the features were derived from them: omitted fields dropped, PII scrubbed, raw
  /// prompt and explicit feedback encrypted.
  void protect_text(Event& e) const;
  /// The payload of a rejected event: ids hashed when it parses as a JSON object, then scrubbed and
  /// encrypted like a prompt.
  std::string protect_rejected(std::string payload) const;
  /// A stored text value readable again: decrypted when it is encrypted (needs the key).
  /// @throws ValidationError naming `field` when it cannot be decrypted.
  std::string reveal(std::string_view stored, const std::string& field) const;

  bool active() const noexcept { return active_; }
  bool has_key() const noexcept { return hasher_ != nullptr; }
  KeySource key_source() const noexcept { return source_; }
  const PrivacyConfig& config() const noexcept { return config_; }
  bool omits(std::string_view field) const;

 private:
  std::string scrub(std::string_view text) const;
  std::string protect_value(std::string_view text) const;  // scrub + encrypt

  PrivacyConfig config_;
  KeySource source_ = KeySource::none;
  std::unique_ptr<IdentifierHasher> hasher_;
  std::unique_ptr<TextCipher> cipher_;  // whenever there is a key; encrypts only with encrypt_text
  std::unique_ptr<ScrubOptions> scrub_;
  bool active_ = false;  // anything at all to do
};

}  // namespace promptlearn::privacy
