// learning.privacy applied to events before they are stored (see privacy/protector.hpp).
#include "promptlearn/privacy/protector.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/privacy/scrub.hpp"

namespace promptlearn::privacy {
namespace {

/// Writes `text` to a new file `path` with mode 0600 unless it exists: a temporary file linked into place
/// (link() fails if the name exists, so two processes creating the key at once agree on one key).
/// Returns false when the file already existed.
bool create_exclusive(const std::string& path, const std::string& text) {
  const std::string tmp = fmt::format("{}.tmp-{}", path, ::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    throw ConfigError("learning.privacy.auto_key", fmt::format("cannot create the key file '{}': {}", tmp, std::strerror(errno)));
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!written) {
    ::unlink(tmp.c_str());
    throw ConfigError("learning.privacy.auto_key", fmt::format("cannot write the key file '{}'", tmp));
  }
  const int rc = ::link(tmp.c_str(), path.c_str());
  const int err = errno;
  ::unlink(tmp.c_str());
  if (rc == 0) return true;
  if (err == EEXIST) return false;
  throw ConfigError("learning.privacy.auto_key", fmt::format("cannot create the key file '{}': {}", path, std::strerror(err)));
}

bool in_memory(const std::string& path) { return path.empty() || path == ":memory:" || path.rfind("file::memory:", 0) == 0; }

}  // namespace

std::string_view to_string(KeySource s) noexcept {
  switch (s) {
    case KeySource::none: return "none";
    case KeySource::host: return "host";
    case KeySource::key_file: return "key_file";
    case KeySource::auto_key_file: return "auto_key_file";
  }
  return "none";
}

Protector::Protector(const PrivacyConfig& config, const SecretKey& host_key, const std::string& database_path)
    : config_(config) {
  SecretKey key;
  if (!host_key.empty()) {
    key = host_key;
    source_ = KeySource::host;
  } else if (!config_.key_file.empty()) {
    key = SecretKey::from_file(config_.key_file, "learning.privacy.key_file");
    source_ = KeySource::key_file;
  } else if (config_.auto_key && (config_.hash_identifiers || config_.encrypt_text)) {
    if (in_memory(database_path)) {
      key = SecretKey::random();  // nothing outlives an in-memory database
    } else {
      const std::string path = database_path + ".key";
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0) create_exclusive(path, SecretKey::random().hex() + "\n");
      key = SecretKey::from_file(path, "learning.privacy.auto_key");
    }
    source_ = KeySource::auto_key_file;
  }
  if (config_.encrypt_text && key.empty())
    throw ConfigError("learning.privacy.encrypt_text",
                      "is true but there is no key (give EngineOptions::privacy_key or learning.privacy.key_file, or "
                      "set learning.privacy.auto_key)");
  if (!key.empty() && config_.hash_identifiers) hasher_ = std::make_unique<IdentifierHasher>(key);
  if (!key.empty()) cipher_ = std::make_unique<TextCipher>(key);  // also to read what was encrypted before
  if (config_.scrub_pii) {
    std::string kinds;
    for (const auto& k : config_.scrub_kinds) kinds += (kinds.empty() ? "" : ",") + k;
    scrub_ = std::make_unique<ScrubOptions>(parse_kinds(kinds));
  }
  active_ = config_.hash_identifiers || config_.scrub_pii || config_.encrypt_text ||
            config_.timestamp_granularity_seconds > 0 || !config_.omit_fields.empty();
}

Protector::~Protector() = default;

bool Protector::omits(std::string_view field) const {
  return std::find(config_.omit_fields.begin(), config_.omit_fields.end(), field) != config_.omit_fields.end();
}

std::optional<std::string> Protector::stored_id(std::string_view id) const {
  if (!config_.hash_identifiers) return std::string(id);
  if (!hasher_) return std::nullopt;
  if (IdentifierHasher::is_hash(id)) return std::string(id);  // already hashed (e.g. re-read from the file)
  return (*hasher_)(id);
}

void Protector::protect_ids(Event& e) const {
  if (!config_.hash_identifiers) return;
  if (e.user_id) e.user_id = stored_id(*e.user_id);
  if (e.session_id) e.session_id = stored_id(*e.session_id);
}

TimeMs Protector::generalise(TimeMs t) const noexcept {
  const TimeMs g = static_cast<TimeMs>(config_.timestamp_granularity_seconds) * 1000;
  if (g <= 0) return t;
  TimeMs q = t / g;
  if (t % g != 0 && t < 0) --q;  // floor, also before 1970
  return q * g;
}

std::string Protector::scrub(std::string_view text) const {
  return scrub_ ? scrub_text(text, *scrub_) : std::string(text);
}

std::string Protector::protect_value(std::string_view text) const {
  std::string s = scrub(text);
  return config_.encrypt_text ? cipher_->encrypt(s) : s;
}

void Protector::protect_text(Event& e) const {
  if (!active_) return;
  if (e.input_data) {
    InputData& in = *e.input_data;
    if (omits("raw_prompt")) in.raw_prompt.clear();
    else if (!in.raw_prompt.empty()) in.raw_prompt = protect_value(in.raw_prompt);
    if (in.processed_input) {
      if (omits("processed_input")) in.processed_input.reset();
      else in.processed_input = protect_value(*in.processed_input);
    }
  }
  if (e.context_data) {
    ContextData& c = *e.context_data;
    if (omits("working_directory")) c.working_directory.reset();
    else if (c.working_directory) c.working_directory = scrub(*c.working_directory);
    if (omits("recent_files")) c.recent_files.reset();
    else if (c.recent_files)
      for (auto& f : *c.recent_files) f = scrub(f);
    if (omits("git_branch")) c.git_branch.reset();
  }
  if (e.outcome_data && e.outcome_data->feedback_data && e.outcome_data->feedback_data->explicit_feedback) {
    auto& fb = e.outcome_data->feedback_data->explicit_feedback;
    if (omits("explicit_feedback")) fb.reset();
    else fb = protect_value(*fb);
  }
}

std::string Protector::protect_rejected(std::string payload) const {
  if (!active_) return payload;
  if (config_.hash_identifiers || omits("raw_prompt")) {
    nlohmann::json j = nlohmann::json::parse(payload, nullptr, false);
    if (j.is_object()) {
      bool changed = false;
      auto in = j.find("input_data");
      if (omits("raw_prompt") && in != j.end() && in->is_object() && in->contains("raw_prompt")) {
        in->erase("raw_prompt");
        changed = true;
      }
      for (const char* key : {"user_id", "session_id"}) {
        auto it = j.find(key);
        if (config_.hash_identifiers && it != j.end() && it->is_string()) {
          auto h = stored_id(it->get<std::string>());
          if (h) *it = *h;
          else j.erase(it);
          changed = true;
        }
      }
      if (changed) payload = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }
  return protect_value(payload);
}

std::string Protector::reveal(std::string_view stored, const std::string& field) const {
  if (!TextCipher::is_encrypted(stored)) return std::string(stored);
  if (!cipher_) {
    throw ValidationError(field, "is encrypted and this engine has no encryption key (learning.privacy.encrypt_text)");
  }
  return cipher_->decrypt(stored, field);
}

}  // namespace promptlearn::privacy
