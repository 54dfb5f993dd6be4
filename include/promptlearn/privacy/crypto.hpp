#pragma once
/// @file
/// Keys, keyed hashes of identifiers and encryption at rest (libsodium; its header is not included here).
///
/// One 32-byte master key, given by the host (EngineOptions::privacy_key) or read from the file named by
/// learning.privacy.key_file, is never used directly: two subkeys are derived from it (crypto_kdf, BLAKE2b)
/// -- one for the keyed hashes of user and session ids, one for XSalsa20-Poly1305 (crypto_secretbox) of
/// stored text -- so a hash never reveals anything about the encryption key and the reverse.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace promptlearn::privacy {

/// A 32-byte secret, wiped from memory when destroyed.
class SecretKey {
 public:
  static constexpr std::size_t kSize = 32;
  SecretKey() = default;
  /// From 64 hexadecimal characters (surrounding whitespace ignored) or exactly 32 raw bytes.
  /// @throws ConfigError naming `field` when the text is neither (the key itself is never printed).
  static SecretKey from_text(std::string_view text, const std::string& field);
  /// The key in a file (64 hex characters, or 32 raw bytes). @throws ConfigError naming `field` and the path.
  static SecretKey from_file(const std::string& path, const std::string& field);
  /// A fresh random key (for tests and `promptlearn keygen`-style setup).
  static SecretKey random();
  SecretKey(const SecretKey& other) = default;
  SecretKey& operator=(const SecretKey& other) = default;
  ~SecretKey();
  bool empty() const noexcept { return !set_; }
  const unsigned char* data() const noexcept { return bytes_.data(); }
  /// The key as 64 lowercase hex characters.
  std::string hex() const;
  /// The subkey number `id` for `context` (8 characters), derived with crypto_kdf_derive_from_key.
  SecretKey derive(std::uint64_t id, const char (&context)[9]) const;

 private:
  std::array<unsigned char, kSize> bytes_{};
  bool set_ = false;
};

/// Keyed hashes of identifiers: "h1:" followed by 32 hex characters (BLAKE2b-128 keyed with a subkey of the
/// master key). The same id and key always give the same hash; without the key nobody can test a guess.
class IdentifierHasher {
 public:
  explicit IdentifierHasher(const SecretKey& master);
  std::string operator()(std::string_view id) const;
  /// True if `text` has the shape of a hash this class makes (so it is not hashed twice).
  static bool is_hash(std::string_view text) noexcept;

 private:
  SecretKey key_;
};

/// Authenticated encryption of stored text: "enc1:" + base64(nonce | MAC | ciphertext) (crypto_secretbox,
/// a fresh random nonce per value). Decryption checks the MAC: a tampered value is an error, never garbage.
class TextCipher {
 public:
  explicit TextCipher(const SecretKey& master);
  std::string encrypt(std::string_view plain) const;
  /// @throws ValidationError naming `field` when the value is not ours, truncated, or fails authentication.
  std::string decrypt(std::string_view stored, const std::string& field) const;
  static bool is_encrypted(std::string_view stored) noexcept;

 private:
  SecretKey key_;
};

}  // namespace promptlearn::privacy
