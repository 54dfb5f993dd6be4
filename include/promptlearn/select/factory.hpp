#pragma once
/// @file Builds a template-selection policy from its configured algorithm and parameters, or from a
/// checkpoint (Policy::to_json()).
///
/// Example:
///     auto policy = promptlearn::select::make_policy("linucb", {{"alpha", 0.5}}, 64);
///     auto copy = promptlearn::select::make_policy_from_json(policy->to_json());
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/select/linear_bandit.hpp"
#include "promptlearn/select/policy.hpp"
#include "promptlearn/select/q_learning.hpp"
#include "promptlearn/select/value_policies.hpp"

namespace promptlearn::select {

namespace detail {

inline const std::string kParametersPath = "learning_strategies.template_selection.parameters";

/// Reads number `key` of `parameters` into `out` if present, checking its type and that it is known.
class ParameterReader {
 public:
  ParameterReader(const std::string& algorithm, const nlohmann::json& parameters,
                  std::initializer_list<const char*> known)
      : algorithm_(algorithm), parameters_(parameters), known_(known) {
    if (!parameters.is_null() && !parameters.is_object())
      throw ConfigError(kParametersPath, "expected an object, got " + parameters.dump());
    if (parameters.is_object()) {
      for (auto it = parameters.begin(); it != parameters.end(); ++it) {
        bool ok = false;
        for (const char* k : known_) ok = ok || it.key() == k;
        if (!ok) {
          std::string list;
          for (const char* k : known_) list += (list.empty() ? "" : ", ") + std::string(k);
          throw ConfigError(kParametersPath + "." + it.key(),
                            "unknown key for algorithm \"" + algorithm_ + "\" (known keys: " + list + ")");
        }
      }
    }
  }

  void read(const char* key, double& out) const {
    if (!parameters_.is_object()) return;
    auto it = parameters_.find(key);
    if (it == parameters_.end()) return;
    if (!it->is_number()) throw ConfigError(kParametersPath + "." + key, "expected a number, got " + it->dump());
    out = it->get<double>();
  }

 private:
  std::string algorithm_;
  const nlohmann::json& parameters_;
  std::initializer_list<const char*> known_;
};

/// Runs `validate` and re-throws its ConfigError under the full key path.
template <class Params>
void validate_as_config(const Params& p) {
  try {
    p.validate();
  } catch (const ConfigError& e) {
    std::string message = e.what();
    message.erase(0, e.key().size() + 2);
    throw ConfigError(kParametersPath + "." + e.key(), message);
  }
}

}  // namespace detail

/// A fresh policy for `algorithm` (linucb | thompson | epsilon_greedy | softmax | q_learning) with the
/// given parameters (config keys; a missing key takes the config default) over contexts of `dimension`.
/// `seed` is accepted for policies with their own randomness; the current ones draw only from the Rng given
/// to distribution(), so it does not change them.
/// @throws ConfigError naming `learning_strategies.template_selection.algorithm` for an unknown algorithm,
///         or the parameter's key path for an unknown key, wrong type or out-of-range value;
///         ValidationError if dimension < 1.
inline std::unique_ptr<Policy> make_policy(const std::string& algorithm, const nlohmann::json& parameters,
                                           int dimension, std::uint64_t seed = 42) {
  (void)seed;
  if (algorithm == "linucb") {
    detail::ParameterReader r(algorithm, parameters, {"alpha", "epsilon_floor", "ridge_lambda"});
    LinUcbParams p;
    r.read("alpha", p.alpha);
    r.read("epsilon_floor", p.epsilon_floor);
    r.read("ridge_lambda", p.ridge_lambda);
    detail::validate_as_config(p);
    return std::make_unique<LinUcbPolicy>(dimension, p);
  }
  if (algorithm == "thompson") {
    detail::ParameterReader r(algorithm, parameters, {"v", "epsilon_floor", "ridge_lambda"});
    ThompsonParams p;
    r.read("v", p.v);
    r.read("epsilon_floor", p.epsilon_floor);
    r.read("ridge_lambda", p.ridge_lambda);
    detail::validate_as_config(p);
    return std::make_unique<ThompsonPolicy>(dimension, p);
  }
  if (algorithm == "epsilon_greedy") {
    detail::ParameterReader r(algorithm, parameters, {"epsilon"});
    EpsilonGreedyParams p;
    r.read("epsilon", p.epsilon);
    detail::validate_as_config(p);
    return std::make_unique<EpsilonGreedyPolicy>(dimension, p);
  }
  if (algorithm == "softmax") {
    detail::ParameterReader r(algorithm, parameters, {"temperature"});
    SoftmaxParams p;
    r.read("temperature", p.temperature);
    detail::validate_as_config(p);
    return std::make_unique<SoftmaxPolicy>(dimension, p);
  }
  if (algorithm == "q_learning") {
    detail::ParameterReader r(algorithm, parameters, {"learning_rate", "discount_factor", "exploration_rate"});
    QLearningParams p;
    r.read("learning_rate", p.learning_rate);
    r.read("discount_factor", p.discount_factor);
    r.read("exploration_rate", p.exploration_rate);
    detail::validate_as_config(p);
    return std::make_unique<QLearningPolicy>(dimension, p);
  }
  throw ConfigError("learning_strategies.template_selection.algorithm",
                    nlohmann::json(algorithm).dump() + " is not one of linucb, thompson, epsilon_greedy, softmax, q_learning");
}

/// The policy a checkpoint (Policy::to_json()) describes; it behaves identically to the one saved.
/// @throws ValidationError naming the offending field (e.g. `actions[0].A_inv`).
inline std::unique_ptr<Policy> make_policy_from_json(const nlohmann::json& state) {
  const nlohmann::json& algorithm = detail::field(state, "", "algorithm");
  if (!algorithm.is_string()) throw ValidationError("algorithm", "expected a string, got " + algorithm.dump());
  const nlohmann::json& format = detail::field(state, "", "format");
  if (format != 1) throw ValidationError("format", format.dump() + " is not a supported format (expected 1)");
  const std::string name = algorithm.get<std::string>();
  if (name == "linucb") return LinUcbPolicy::from_json(state);
  if (name == "thompson") return ThompsonPolicy::from_json(state);
  if (name == "epsilon_greedy") return EpsilonGreedyPolicy::from_json(state);
  if (name == "softmax") return SoftmaxPolicy::from_json(state);
  if (name == "q_learning") return QLearningPolicy::from_json(state);
  throw ValidationError("algorithm", algorithm.dump() + " is not one of linucb, thompson, epsilon_greedy, softmax, q_learning");
}

namespace detail {

inline constexpr char kCheckpointMagic[8] = {'P', 'L', 'C', 'K', 'P', 'T', '0', '1'};

/// Moves every JSON binary value of `j` into `region`, leaving {"$binary": [offset, length, subtype]}.
inline void extract_binaries(nlohmann::json& j, std::string& region) {
  if (j.is_binary()) {
    const auto& b = j.get_binary();
    const std::size_t offset = region.size();
    region.append(reinterpret_cast<const char*>(b.data()), b.size());
    j = nlohmann::json{{"$binary", {offset, b.size(), b.has_subtype() ? static_cast<std::int64_t>(b.subtype()) : -1}}};
  } else if (j.is_structured()) {
    for (auto& child : j) extract_binaries(child, region);
  }
}

/// A 64-bit checksum of `n` bytes (8 at a time, multiply-xorshift mixing): detects any corrupted or
/// truncated byte of a checkpoint with probability 1 - 2^-64; not a cryptographic hash.
inline std::uint64_t checksum(const char* p, std::size_t n) {
  std::uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
  auto mix = [&h](std::uint64_t w) {
    h ^= w;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
  };
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w = 0;
    for (int k = 0; k < 8; ++k) w |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i + k])) << (8 * k);
    mix(w);
  }
  std::uint64_t tail = 0;
  for (int k = 0; i < n; ++i, ++k) tail |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * k);
  mix(tail);
  return h;
}

inline void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline std::uint64_t get_u64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

/// The inverse of extract_binaries; @throws ValidationError("checkpoint") on references outside the region.
inline void restore_binaries(nlohmann::json& j, const char* region, std::size_t region_size) {
  if (j.is_object() && j.size() == 1 && j.contains("$binary")) {
    const nlohmann::json& ref = j["$binary"];
    if (!ref.is_array() || ref.size() != 3 || !ref[0].is_number_unsigned() || !ref[1].is_number_unsigned() ||
        !ref[2].is_number_integer())
      throw ValidationError("checkpoint", "malformed binary reference " + ref.dump());
    const std::uint64_t offset = ref[0].get<std::uint64_t>(), length = ref[1].get<std::uint64_t>();
    const std::int64_t subtype = ref[2].get<std::int64_t>();
    if (offset > region_size || length > region_size - offset || subtype < -1 || subtype > 255)
      throw ValidationError("checkpoint", "binary reference " + ref.dump() + " is outside the " +
                                              std::to_string(region_size) + " data bytes");
    std::vector<std::uint8_t> bytes(length);
    if (length > 0) std::memcpy(bytes.data(), region + offset, length);
    j = subtype < 0 ? nlohmann::json::binary(std::move(bytes))
                    : nlohmann::json::binary(std::move(bytes), static_cast<std::uint8_t>(subtype));
  } else if (j.is_structured()) {
    for (auto& child : j) restore_binaries(child, region, region_size);
  }
}

}  // namespace detail

/// A policy's checkpoint bytes, as stored in the `models` table:
///
///     "PLCKPT01" | header length n (8 bytes) | checksum (8 bytes) | header: n bytes of JSON text | data
///
/// (integers little-endian). The header is to_binary_json() with each binary value replaced by
/// {"$binary": [offset, length, subtype]} into the data bytes, so loading parses a few kilobytes of text
/// and copies the matrices. The checksum (detail::checksum) covers header and data. A trained 32-template
/// LinUCB at dimension 72 is 0.7 MB and decodes in well under a millisecond; as JSON text (7 MB with A)
/// it took ~90 ms, as CBOR ~5 ms (nlohmann reads binary strings byte by byte): the difference decides a
/// hook process's cold start (docs/selection.md).
inline std::string encode_checkpoint(const Policy& policy) {
  nlohmann::json j = policy.to_binary_json();
  std::string region;
  detail::extract_binaries(j, region);
  const std::string header = j.dump();
  std::string out(detail::kCheckpointMagic, sizeof detail::kCheckpointMagic);
  const std::string body = header + region;
  detail::put_u64(out, header.size());
  detail::put_u64(out, detail::checksum(body.data(), body.size()));
  out += body;
  return out;
}

/// The policy in checkpoint bytes: encode_checkpoint's format, or JSON text (to_json().dump(), also
/// accepted so that hand-written checkpoints load). @throws ValidationError naming the field
/// ("checkpoint" when the container itself is damaged).
inline std::unique_ptr<Policy> make_policy_from_checkpoint(const std::string& bytes) {
  constexpr std::size_t kMagic = sizeof detail::kCheckpointMagic;
  if (bytes.size() < kMagic || bytes.compare(0, kMagic, detail::kCheckpointMagic, kMagic) != 0) {
    nlohmann::json j = nlohmann::json::parse(bytes, nullptr, false);
    if (j.is_discarded())
      throw ValidationError("checkpoint", "is neither a binary checkpoint nor JSON text (" + std::to_string(bytes.size()) +
                                              " bytes)");
    return make_policy_from_json(j);
  }
  constexpr std::size_t kPrefix = kMagic + 16;
  if (bytes.size() < kPrefix) throw ValidationError("checkpoint", "is truncated (" + std::to_string(bytes.size()) + " bytes)");
  const std::uint64_t n = detail::get_u64(bytes.data() + kMagic);
  const std::size_t body = bytes.size() - kPrefix;
  if (n > body)
    throw ValidationError("checkpoint", "header length " + std::to_string(n) + " exceeds the " + std::to_string(body) +
                                            " bytes after the prefix");
  const char* header = bytes.data() + kPrefix;
  if (detail::checksum(header, body) != detail::get_u64(bytes.data() + kMagic + 8))
    throw ValidationError("checkpoint", "checksum mismatch: the checkpoint is corrupt or truncated");
  nlohmann::json j = nlohmann::json::parse(header, header + n, nullptr, false);
  if (j.is_discarded()) throw ValidationError("checkpoint", "header is not valid JSON");
  detail::restore_binaries(j, header + n, body - n);
  return make_policy_from_json(j);
}

}  // namespace promptlearn::select
