// Keys, keyed identifier hashes and encryption at rest with libsodium (see privacy/crypto.hpp).
#include "promptlearn/privacy/crypto.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "promptlearn/core/error.hpp"

namespace promptlearn::privacy {
namespace {

void ensure_sodium() {
  static const int rc = sodium_init();  // thread-safe, idempotent; < 0 only if no entropy source
  if (rc < 0) throw Error("libsodium could not be initialised (no system entropy source)");
}

constexpr std::string_view kHashPrefix = "h1:";
constexpr std::string_view kCipherPrefix = "enc1:";
constexpr char kIdContext[9] = "plidhash";
constexpr char kTextContext[9] = "pltextbx";

}  // namespace

SecretKey::~SecretKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

SecretKey SecretKey::from_text(std::string_view text, const std::string& field) {
  ensure_sodium();
  SecretKey k;
  if (text.size() == kSize) {  // raw bytes
    std::copy(text.begin(), text.end(), k.bytes_.begin());
    k.set_ = true;
    return k;
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  std::size_t len = 0;
  const char* end = nullptr;
  if (text.size() != 2 * kSize ||
      sodium_hex2bin(k.bytes_.data(), kSize, text.data(), text.size(), nullptr, &len, &end) != 0 || len != kSize ||
      end != text.data() + text.size())
    throw ConfigError(field, fmt::format("is not a key: expected 64 hexadecimal characters or 32 raw bytes, got {} "
                                         "characters (the value is not shown)",
                                         text.size()));
  k.set_ = true;
  return k;
}

SecretKey SecretKey::from_file(const std::string& path, const std::string& field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(field, fmt::format("the key file '{}' cannot be read", path));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  SecretKey k = from_text(text, field + " ('" + path + "')");
  sodium_memzero(text.data(), text.size());
  return k;
}

SecretKey SecretKey::random() {
  ensure_sodium();
  SecretKey k;
  crypto_kdf_keygen(k.bytes_.data());
  k.set_ = true;
  return k;
}

std::string SecretKey::hex() const {
  std::string out(2 * kSize + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes_.data(), kSize);
  out.pop_back();
  return out;
}

SecretKey SecretKey::derive(std::uint64_t id, const char (&context)[9]) const {
  static_assert(crypto_kdf_KEYBYTES == kSize && crypto_kdf_CONTEXTBYTES == 8, "libsodium kdf sizes");
  if (!set_) throw Error("SecretKey::derive: the key is empty");
  ensure_sodium();
  SecretKey k;
  crypto_kdf_derive_from_key(k.bytes_.data(), kSize, id, context, bytes_.data());
  k.set_ = true;
  return k;
}

IdentifierHasher::IdentifierHasher(const SecretKey& master) : key_(master.derive(1, kIdContext)) {}

std::string IdentifierHasher::operator()(std::string_view id) const {
  unsigned char out[16];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(id.data()), id.size(), key_.data(),
                     SecretKey::kSize);
  std::string hex(2 * sizeof out + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), out, sizeof out);
  hex.pop_back();
  return std::string(kHashPrefix) + hex;
}

bool IdentifierHasher::is_hash(std::string_view text) noexcept {
  if (text.size() != kHashPrefix.size() + 32 || text.substr(0, kHashPrefix.size()) != kHashPrefix) return false;
  for (char c : text.substr(kHashPrefix.size()))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

TextCipher::TextCipher(const SecretKey& master) : key_(master.derive(2, kTextContext)) {}

std::string TextCipher::encrypt(std::string_view plain) const {
  std::string box(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plain.size(), '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(box.data());
  randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(nonce + crypto_secretbox_NONCEBYTES, reinterpret_cast<const unsigned char*>(plain.data()),
                        plain.size(), nonce, key_.data());
  const std::size_t b64 = sodium_base64_encoded_len(box.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string out(kCipherPrefix);
  const std::size_t at = out.size();
  out.resize(at + b64);
  sodium_bin2base64(out.data() + at, b64, nonce, box.size(), sodium_base64_VARIANT_ORIGINAL);
  out.pop_back();  // the terminating NUL
  return out;
}

std::string TextCipher::decrypt(std::string_view stored, const std::string& field) const {
  if (!is_encrypted(stored)) throw ValidationError(field, "is not an encrypted value (no \"enc1:\" prefix)");
  const std::string_view b64 = stored.substr(kCipherPrefix.size());
  std::string box(b64.size(), '\0');
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(box.data()), box.size(), b64.data(), b64.size(), nullptr,
                        &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0)
    throw ValidationError(field, "is not valid base64 after \"enc1:\"");
  if (len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
    throw ValidationError(field, fmt::format("is too short to be encrypted text ({} bytes)", len));
  const auto* nonce = reinterpret_cast<const unsigned char*>(box.data());
  const std::size_t clen = len - crypto_secretbox_NONCEBYTES;
  std::string plain(clen - crypto_secretbox_MACBYTES, '\0');
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()), nonce + crypto_secretbox_NONCEBYTES,
                                 clen, nonce, key_.data()) != 0)
    throw ValidationError(field, "failed authentication: a different key, or the value was altered");
  return plain;
}

bool TextCipher::is_encrypted(std::string_view stored) noexcept {
  return stored.size() > kCipherPrefix.size() && stored.substr(0, kCipherPrefix.size()) == kCipherPrefix;
}

}  // namespace promptlearn::privacy
