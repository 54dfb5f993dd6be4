#pragma once
/// @file Linear contextual bandits over per-action ridge regression: LinUCB and linear Thompson sampling.
///
/// Every action a keeps the ridge statistics of the contexts it was chosen in,
///     A_a = lambda I + sum z z^T,   b_a = sum r z,   theta_a = A_a^-1 b_a,
/// where z is the *scaled* context (see FeatureScaling). A_a^-1 is kept up to date by the Sherman-Morrison
/// rank-1 formula  (A + z z^T)^-1 = A^-1 - (A^-1 z)(A^-1 z)^T / (1 + z^T A^-1 z),  so a decision never
/// inverts a matrix (O(K D^2) per decision and O(D^2) per update, D = dimension + 1). A_a itself is kept
/// too (one extra rank-1 update) so that shards can be merged exactly and checkpoints are self-checking.
///
/// Exploration rules (both finish with an exploration floor, p = (1 - eps) p_rule + eps / K):
///  - LinUCB (Li, Chu, Langford & Schapire 2010, "A contextual-bandit approach to personalized news article
///    recommendation", disjoint model): score_a = theta_a^T z + alpha sqrt(z^T A_a^-1 z); the rule is greedy
///    on the score, ties split evenly.
///  - Linear Thompson sampling (Agrawal & Goyal 2013, "Thompson sampling for contextual bandits with linear
///    payoffs"): theta~_a ~ N(theta_a, v^2 A_a^-1), play argmax theta~_a^T z. Because the sampled score of
///    action a is theta~_a^T z ~ N(theta_a^T z, v^2 z^T A_a^-1 z) and the actions' posteriors are independent,
///    drawing the scalar scores is exactly equivalent to drawing the full parameter vectors (and costs O(K)
///    instead of O(K D^2) per draw). The rule's distribution P(a is the argmax) is estimated from
///    `draws` (default 256) Monte-Carlo draws taken from the caller's Rng: each estimated probability has a
///    standard error sqrt(p (1 - p) / draws) <= 0.031 (0.5 / sqrt(256)). The distribution returned is the one
///    the caller samples from, so the logged propensity is exact for the decision actually made; the
///    Monte-Carlo error only makes the decision rule differ slightly from ideal Thompson sampling.
///
/// Feature scaling: contexts arrive raw, of any scale. The default (FeatureScaling::kSymlogStandardize)
/// maps each coordinate through the symmetric log s_i = sign(x_i) log(1 + |x_i|) (tames heavy tails such as
/// token counts), then standardises it with the running mean and standard deviation of s over every update
/// and divides by sqrt(d), and appends a constant 1 (bias): z = [(s - m) / (sd sqrt(d)), 1]. Every
/// coordinate then has variance 1/d whatever its units or offset, so alpha, v and lambda mean the same on
/// every data set. The map is re-estimated when the update count doubles (8, 16, 32, ...); each rescale
/// re-expresses every action's A and b exactly in the new coordinates (RidgeModels::rescale), so the
/// statistics stay those of ridge regression on all past contexts under the current map, and shards still
/// merge (re-expressed, added, moments pooled). kSymlogUnitNorm (z = [s / ||s||, 1], a fixed map),
/// kUnitNorm (z = [x / ||x||, 1]) and kNone (z = [x, 1]) remain for callers that want them; measured
/// against each other in docs/selection.md.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/select/policy.hpp"

namespace promptlearn::select {

/// How a raw context x becomes the model's input z (always with a bias 1 appended).
enum class FeatureScaling {
  kSymlogStandardize,  ///< s_i = sign(x_i) log(1 + |x_i|), z = [(s - mean) / (sd sqrt(d)), 1], running moments (default)
  kSymlogUnitNorm,  ///< s_i = sign(x_i) log(1 + |x_i|), z = [s / ||s||_2, 1]
  kUnitNorm,        ///< z = [x / ||x||_2, 1]
  kNone,            ///< z = [x, 1]: the caller has standardised x
};

/// Factor applied to a parent's learned statistics (A - lambda I, b and the count) when an action is
/// added with a parent: the child starts at the parent's estimate shrunk towards 0 with half the evidence,
/// so its confidence width is about sqrt(2) times the parent's and its own data soon dominates.
inline constexpr double kWarmStartFactor = 0.5;

namespace detail {

inline std::string scaling_name(FeatureScaling s) {
  switch (s) {
    case FeatureScaling::kSymlogStandardize: return "symlog_standardize";
    case FeatureScaling::kSymlogUnitNorm: return "symlog_unit_norm";
    case FeatureScaling::kUnitNorm: return "unit_norm";
    case FeatureScaling::kNone: break;
  }
  return "none";
}

inline nlohmann::json vector_to_json(const Eigen::VectorXd& v) {
  nlohmann::json out = nlohmann::json::array();
  for (Eigen::Index i = 0; i < v.size(); ++i) out.push_back(v(i));
  return out;
}

/// A matrix as an array of rows of doubles (nlohmann writes doubles with round-trip precision).
inline nlohmann::json matrix_to_json(const Eigen::MatrixXd& m) {
  nlohmann::json out = nlohmann::json::array();
  for (Eigen::Index r = 0; r < m.rows(); ++r) out.push_back(vector_to_json(m.row(r).transpose()));
  return out;
}

/// Binary subtypes of the compact checkpoint encoding (Policy::to_binary_json): little-endian IEEE doubles.
inline constexpr std::uint64_t kPackedSymmetricSubtype = 1;  ///< upper triangle of a symmetric n x n matrix, row by row
inline constexpr std::uint64_t kVectorSubtype = 2;           ///< a vector of n doubles

inline void put_double(std::vector<std::uint8_t>& out, double v) {
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(bits >> (8 * i)));
}

/// Decodes `count` little-endian doubles at `p` into `out`.
inline void get_doubles(const std::uint8_t* p, std::size_t count, double* out) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  std::memcpy(out, p, count * sizeof(double));
#else
  for (std::size_t k = 0; k < count; ++k, p += 8) {
    std::uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    std::memcpy(out + k, &bits, sizeof(double));
  }
#endif
}

inline nlohmann::json vector_to_binary(const Eigen::VectorXd& v) {
  std::vector<std::uint8_t> out;
  out.reserve(static_cast<std::size_t>(v.size()) * 8);
  for (Eigen::Index i = 0; i < v.size(); ++i) put_double(out, v(i));
  return nlohmann::json::binary(std::move(out), kVectorSubtype);
}

/// A symmetric matrix's upper triangle (the lower one is its mirror: A and A^-1 are symmetric).
inline nlohmann::json symmetric_to_binary(const Eigen::MatrixXd& m) {
  std::vector<std::uint8_t> out;
  out.reserve(static_cast<std::size_t>(m.rows() * (m.rows() + 1) / 2) * 8);
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = r; c < m.cols(); ++c) put_double(out, m(r, c));
  return nlohmann::json::binary(std::move(out), kPackedSymmetricSubtype);
}

/// The bytes of a binary field with the expected subtype and count of doubles, or a ValidationError.
inline const std::vector<std::uint8_t>& binary_doubles(const nlohmann::json& j, const std::string& path,
                                                       std::uint64_t subtype, Eigen::Index count) {
  const auto& bytes = j.get_binary();
  if (!bytes.has_subtype() || bytes.subtype() != subtype)
    throw ValidationError(path, "binary field has the wrong subtype (expected " + std::to_string(subtype) + ")");
  if (bytes.size() != static_cast<std::size_t>(count) * 8)
    throw ValidationError(path, "expected " + std::to_string(count) + " doubles, got " + std::to_string(bytes.size()) +
                                    " bytes");
  return bytes;
}

/// The field `key` of object `j`, or a ValidationError naming `path.key`.
inline const nlohmann::json& field(const nlohmann::json& j, const std::string& path, const std::string& key) {
  if (!j.is_object()) throw ValidationError(path, "expected an object, got " + j.dump());
  auto it = j.find(key);
  if (it == j.end()) throw ValidationError(path.empty() ? key : path + "." + key, "missing");
  return *it;
}

inline double number_field(const nlohmann::json& j, const std::string& path, const std::string& key) {
  const nlohmann::json& v = field(j, path, key);
  std::string p = path.empty() ? key : path + "." + key;
  if (!v.is_number()) throw ValidationError(p, "expected a number, got " + v.dump());
  double d = v.get<double>();
  if (!std::isfinite(d)) throw ValidationError(p, "expected a finite number");
  return d;
}

/// A vector from either encoding: an array of numbers, or binary doubles (kVectorSubtype).
inline Eigen::VectorXd vector_from_json(const nlohmann::json& j, const std::string& path, Eigen::Index n) {
  if (j.is_binary()) {
    const auto& bytes = binary_doubles(j, path, kVectorSubtype, n);
    Eigen::VectorXd v(n);
    get_doubles(bytes.data(), static_cast<std::size_t>(n), v.data());
    for (Eigen::Index i = 0; i < n; ++i)
      if (!std::isfinite(v(i))) throw ValidationError(path + "[" + std::to_string(i) + "]", "expected a finite number");
    return v;
  }
  if (!j.is_array() || static_cast<Eigen::Index>(j.size()) != n)
    throw ValidationError(path, "expected an array of " + std::to_string(n) + " numbers");
  Eigen::VectorXd v(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const nlohmann::json& e = j[static_cast<std::size_t>(i)];
    if (!e.is_number() || !std::isfinite(e.get<double>()))
      throw ValidationError(path + "[" + std::to_string(i) + "]", "expected a finite number, got " + e.dump());
    v(i) = e.get<double>();
  }
  return v;
}

/// A matrix from either encoding: an array of rows, or a packed upper triangle (kPackedSymmetricSubtype).
inline Eigen::MatrixXd matrix_from_json(const nlohmann::json& j, const std::string& path, Eigen::Index n) {
  if (j.is_binary()) {
    const auto& bytes = binary_doubles(j, path, kPackedSymmetricSubtype, n * (n + 1) / 2);
    Eigen::MatrixXd m(n, n);
    // Row r of the upper triangle is column r of the lower one, contiguous in Eigen's column-major storage.
    const std::uint8_t* p = bytes.data();
    for (Eigen::Index r = 0; r < n; p += 8 * (n - r), ++r)
      get_doubles(p, static_cast<std::size_t>(n - r), m.col(r).data() + r);
    m.triangularView<Eigen::StrictlyUpper>() = m.transpose();
    if (!m.allFinite())
      for (Eigen::Index r = 0; r < n; ++r)
        for (Eigen::Index c = r; c < n; ++c)
          if (!std::isfinite(m(r, c)))
            throw ValidationError(path + "[" + std::to_string(r) + "][" + std::to_string(c) + "]", "expected a finite number");
    return m;
  }
  if (!j.is_array() || static_cast<Eigen::Index>(j.size()) != n)
    throw ValidationError(path, "expected " + std::to_string(n) + " rows of " + std::to_string(n) + " numbers");
  Eigen::MatrixXd m(n, n);
  for (Eigen::Index r = 0; r < n; ++r)
    m.row(r) = vector_from_json(j[static_cast<std::size_t>(r)], path + "[" + std::to_string(r) + "]", n).transpose();
  return m;
}

/// Sorts a distribution by probability, then score (both descending), then action key.
inline void rank(Distribution& d) {
  std::sort(d.begin(), d.end(), [](const ActionProbability& a, const ActionProbability& b) {
    if (a.probability != b.probability) return a.probability > b.probability;
    if (a.score != b.score) return a.score > b.score;
    return a.action < b.action;
  });
}

/// p = (1 - eps) p + eps / K.
inline void apply_floor(std::vector<double>& p, double eps) {
  const double k = static_cast<double>(p.size());
  for (double& v : p) v = (1.0 - eps) * v + eps / k;
}

/// Greedy probabilities: the maxima of `scores` (within a relative 1e-12) share 1 evenly.
inline std::vector<double> greedy_split(const std::vector<double>& scores) {
  double best = -std::numeric_limits<double>::infinity();
  for (double s : scores) best = std::max(best, s);
  const double tol = 1e-12 * (1.0 + std::abs(best));
  std::vector<double> p(scores.size(), 0.0);
  int ties = 0;
  for (double s : scores) ties += s >= best - tol ? 1 : 0;
  for (std::size_t i = 0; i < scores.size(); ++i) p[i] = scores[i] >= best - tol ? 1.0 / ties : 0.0;
  return p;
}

/// A double in its shortest round-trip spelling, e.g. "1.7".
inline std::string num(double v) { return std::isfinite(v) ? nlohmann::json(v).dump() : std::to_string(v); }

inline void check_reward(double reward, double propensity) {
  if (!(reward >= 0.0 && reward <= 1.0)) throw ValidationError("reward", num(reward) + " is outside [0, 1]");
  if (!(propensity > 0.0 && propensity <= 1.0))
    throw ValidationError("propensity", num(propensity) + " is outside (0, 1]");
}

/// Runs `validate` and turns its ConfigError into a ValidationError at `parameters.<key>` (checkpoints).
template <class Params>
void validate_as_state(const Params& p) {
  try {
    p.validate();
  } catch (const ConfigError& e) {
    std::string message = e.what();
    message.erase(0, e.key().size() + 2);
    throw ValidationError("parameters." + e.key(), message);
  }
}

inline void check_context(const Eigen::VectorXd& x, int dimension) {
  if (x.size() != dimension)
    throw ValidationError("context", "has dimension " + std::to_string(x.size()) + ", expected " +
                                         std::to_string(dimension));
  for (Eigen::Index i = 0; i < x.size(); ++i)
    if (!std::isfinite(x(i))) throw ValidationError("context[" + std::to_string(i) + "]", "is not finite");
}

/// One action's ridge statistics.
struct RidgeArm {
  std::string key;
  bool valid = true;
  double count = 0;        ///< updates seen (warm starts carry kWarmStartFactor of the parent's)
  /// A^-1 with A = lambda I + sum z z^T, kept by Sherman-Morrison. A itself is not stored (it would
  /// double the memory and the checkpoint that a hook process loads); gram() recomputes it when a merge
  /// or a warm start needs it.
  Eigen::MatrixXd a_inv;
  Eigen::VectorXd b;       ///< sum r z
  Eigen::VectorXd theta;   ///< A^-1 b
  /// The upper triangle of A^-1 packed row by row in single precision, off-diagonal entries doubled, so
  /// that z^T A^-1 z = a_inv_packed . packed_outer(z): one contiguous dot product of n(n+1)/2 floats. For
  /// scoring only (the statistics stay in double precision); it streams a quarter of the bytes of a double
  /// matrix-vector product, and decisions are bound by that memory traffic (docs/selection.md).
  Eigen::VectorXf a_inv_packed;

  /// Recomputes what derives from A^-1 and b; called after every change of them.
  void refresh() {
    theta = a_inv * b;
    const Eigen::Index n = a_inv.rows();
    a_inv_packed.resize(n * (n + 1) / 2);
    Eigen::Index k = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      a_inv_packed(k++) = static_cast<float>(a_inv(i, i));
      for (Eigen::Index j = i + 1; j < n; ++j) a_inv_packed(k++) = static_cast<float>(a_inv(i, j) + a_inv(j, i));
    }
  }

  /// A = (A^-1)^-1, by a Cholesky solve: O(n^3), for merges and warm starts only.
  Eigen::MatrixXd gram() const {
    const Eigen::MatrixXd g = a_inv.llt().solve(Eigen::MatrixXd::Identity(a_inv.rows(), a_inv.cols()));
    return 0.5 * (g + g.transpose());
  }

  /// z^T A^-1 z (>= 0) given q = packed_outer(z).
  double width_squared(const Eigen::VectorXf& q) const {
    return std::max(0.0, static_cast<double>(a_inv_packed.dot(q)));
  }
};

/// The products z_i z_j (i <= j) in RidgeArm::a_inv_packed's order, in single precision.
inline Eigen::VectorXf packed_outer(const Eigen::VectorXd& z) {
  const Eigen::Index n = z.size();
  const Eigen::VectorXf zf = z.cast<float>();
  Eigen::VectorXf q(n * (n + 1) / 2);
  Eigen::Index k = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    q.segment(k, n - i) = zf(i) * zf.tail(n - i);
    k += n - i;
  }
  return q;
}

/// The per-action ridge models shared by every linear policy (LinUCB, Thompson, epsilon-greedy, softmax).
/// Thread-safety: none (const member functions may be called concurrently).
class RidgeModels {
 public:
  RidgeModels(int dimension, double lambda, FeatureScaling scaling)
      : dimension_(dimension), lambda_(lambda), scaling_(scaling) {
    if (dimension < 1) throw ValidationError("dimension", std::to_string(dimension) + " is outside [1, int max]");
    if (!(lambda > 0.0) || !std::isfinite(lambda))
      throw ValidationError("ridge_lambda", num(lambda) + " is outside (0, inf)");
    // Until the first rescale: no shift, unit scale per coordinate (then |z_head|^2 = |s|^2 / d).
    mean_ = m2_ = shift_ = Eigen::VectorXd::Zero(dimension);
    inv_scale_ = Eigen::VectorXd::Constant(dimension, 1.0 / std::sqrt(static_cast<double>(dimension)));
  }

  int dimension() const { return dimension_; }
  double lambda() const { return lambda_; }
  FeatureScaling scaling() const { return scaling_; }
  const std::vector<RidgeArm>& arms() const { return arms_; }

  /// The scaled context z (validated).
  Eigen::VectorXd transform(const Eigen::VectorXd& x) const {
    check_context(x, dimension_);
    Eigen::VectorXd z(dimension_ + 1);
    z(dimension_) = 1.0;
    if (scaling_ == FeatureScaling::kSymlogStandardize) {
      z.head(dimension_) = (symlog(x) - shift_).cwiseProduct(inv_scale_);
      return z;
    }
    Eigen::VectorXd xs = scaling_ == FeatureScaling::kSymlogUnitNorm ? symlog(x) : x;
    double norm = scaling_ != FeatureScaling::kNone ? xs.norm() : 1.0;
    if (norm > 0.0 && std::isfinite(norm)) z.head(dimension_) = xs / norm;
    else z.head(dimension_).setZero();
    return z;
  }

  static Eigen::VectorXd symlog(const Eigen::VectorXd& x) { return x.array().sign() * x.array().abs().log1p(); }

  /// Updates seen by the running moments of symlog(x) (kSymlogStandardize).
  double seen() const { return seen_; }
  /// The map in use: z = [(symlog(x) - shift) * inv_scale, 1] (kSymlogStandardize).
  const Eigen::VectorXd& shift() const { return shift_; }
  const Eigen::VectorXd& inv_scale() const { return inv_scale_; }

  /// Re-estimates the standardisation (kSymlogStandardize) from the moments of every context learned so
  /// far and re-expresses each action's statistics in the new coordinates: with z' = T z,
  /// A' = lambda I + T (A - lambda I) T^T and b' = T b, so the data part is carried over exactly and the
  /// prior stays lambda I in the current coordinates. O(K D^3); runs when the update count doubles.
  void rescale() {
    if (scaling_ != FeatureScaling::kSymlogStandardize || seen_ < 2) return;
    Eigen::VectorXd shift = mean_, inv_scale(dimension_);
    const double root_d = std::sqrt(static_cast<double>(dimension_));
    for (Eigen::Index j = 0; j < dimension_; ++j) {
      const double sd = std::sqrt(std::max(0.0, m2_(j) / seen_));
      // A constant coordinate (sd ~ 0 relative to its level) keeps unit scale: it is 0 after centring.
      inv_scale(j) = sd > 1e-9 * (1.0 + std::abs(mean_(j))) ? 1.0 / (sd * root_d) : 1.0 / root_d;
    }
    const Eigen::MatrixXd t = change_of_coordinates(shift_, inv_scale_, shift, inv_scale);
    for (RidgeArm& arm : arms_) {
      arm.a_inv = inverse_spd(lambda_prior() + t * (arm.gram() - lambda_prior()) * t.transpose());
      arm.b = t * arm.b;
      arm.refresh();
    }
    shift_ = std::move(shift);
    inv_scale_ = std::move(inv_scale);
  }

  void add(const std::string& key, const std::string& parent) {
    if (key.empty()) throw ValidationError("action", "is empty");
    if (auto it = index_.find(key); it != index_.end()) {
      arms_[it->second].valid = true;  // re-adding a retired action restores it with its statistics
      return;
    }
    const Eigen::Index n = dimension_ + 1;
    RidgeArm arm;
    arm.key = key;
    const Eigen::MatrixXd prior = lambda_ * Eigen::MatrixXd::Identity(n, n);
    if (auto p = index_.find(parent); !parent.empty() && p != index_.end()) {
      const RidgeArm& from = arms_[p->second];
      arm.a_inv = inverse_spd(prior + kWarmStartFactor * (from.gram() - prior));
      arm.b = kWarmStartFactor * from.b;
      arm.count = kWarmStartFactor * from.count;
    } else {
      arm.a_inv = Eigen::MatrixXd::Identity(n, n) / lambda_;
      arm.b = Eigen::VectorXd::Zero(n);
    }
    arm.refresh();
    index_.emplace(key, arms_.size());
    arms_.push_back(std::move(arm));
  }

  void retire(const std::string& key) {
    if (auto it = index_.find(key); it != index_.end()) arms_[it->second].valid = false;
  }

  std::vector<std::string> valid_actions() const {
    std::vector<std::string> out;
    for (const RidgeArm& a : arms_)
      if (a.valid) out.push_back(a.key);
    return out;
  }

  /// The valid arms, in insertion order. @throws ValidationError if there is none.
  std::vector<const RidgeArm*> valid_arms() const {
    std::vector<const RidgeArm*> out;
    for (const RidgeArm& a : arms_)
      if (a.valid) out.push_back(&a);
    if (out.empty()) throw ValidationError("actions", "no valid action");
    return out;
  }

  /// Rank-1 update of the chosen action's statistics (retired actions still learn from late feedback).
  void update(const Eigen::VectorXd& x, const std::string& key, double reward, double propensity) {
    check_reward(reward, propensity);
    auto it = index_.find(key);
    if (it == index_.end()) throw ValidationError("action", "\"" + key + "\" is not a known action");
    const Eigen::VectorXd z = transform(x);
    RidgeArm& arm = arms_[it->second];
    const Eigen::VectorXd u = arm.a_inv * z;
    arm.a_inv.noalias() -= (u * u.transpose()) / (1.0 + z.dot(u));
    arm.b += reward * z;
    arm.refresh();
    arm.count += 1;
    if (scaling_ == FeatureScaling::kSymlogStandardize) {
      const Eigen::VectorXd s = symlog(x);
      seen_ += 1;
      const Eigen::VectorXd delta = s - mean_;
      mean_ += delta / seen_;
      m2_ += delta.cwiseProduct(s - mean_);
      if (seen_ >= next_rescale_) {
        rescale();
        next_rescale_ *= 2;
      }
    }
  }

  /// Reverses one update(x, key, reward) exactly: A <- A - z z^T by the Sherman-Morrison downdate
  /// A^-1 <- A^-1 + u u^T / (1 - z^T u), u = A^-1 z, and b <- b - r z, with z the context in the current
  /// coordinates (rescale() re-expresses the statistics exactly, so the update's share of A is z z^T in
  /// whatever coordinates are in force); the running moments of symlog(x) are reversed too (the map in
  /// force is kept: it is a fixed change of coordinates, not data).
  /// @throws ValidationError if the action is unknown or z z^T cannot be part of A (1 - z^T A^-1 z <= 0).
  void downdate(const Eigen::VectorXd& x, const std::string& key, double reward) {
    if (!std::isfinite(reward)) throw ValidationError("reward", num(reward) + " is not finite");
    auto it = index_.find(key);
    if (it == index_.end()) throw ValidationError("action", "\"" + key + "\" is not a known action");
    const Eigen::VectorXd z = transform(x);
    RidgeArm& arm = arms_[it->second];
    const Eigen::VectorXd u = arm.a_inv * z;
    const double denom = 1.0 - z.dot(u);
    if (!(denom > 1e-12))
      throw ValidationError("context", "cannot be removed from action \"" + key + "\": it was not learned by it");
    arm.a_inv.noalias() += (u * u.transpose()) / denom;
    arm.b -= reward * z;
    arm.refresh();
    arm.count = std::max(0.0, arm.count - 1);
    if (scaling_ == FeatureScaling::kSymlogStandardize && seen_ >= 1) {
      const Eigen::VectorXd s = symlog(x);
      if (seen_ <= 1) {
        mean_.setZero();
        m2_.setZero();
        seen_ = 0;
      } else {
        const Eigen::VectorXd mean_before = (seen_ * mean_ - s) / (seen_ - 1);
        m2_ -= (s - mean_before).cwiseProduct(s - mean_);
        m2_ = m2_.cwiseMax(0.0);
        mean_ = mean_before;
        seen_ -= 1;
      }
    }
  }

  /// A = A1 + A2 - lambda I, b = b1 + b2 per action (actions only in `other` are appended).
  void merge(const RidgeModels& other) {
    if (other.dimension_ != dimension_ || other.lambda_ != lambda_ || other.scaling_ != scaling_)
      throw Error("merge: policies differ in dimension, ridge_lambda or scaling");
    const Eigen::MatrixXd prior = lambda_prior();
    // The other shard's statistics re-expressed in this one's coordinates (identity unless standardising).
    const Eigen::MatrixXd t = change_of_coordinates(other.shift_, other.inv_scale_, shift_, inv_scale_);
    for (const RidgeArm& o : other.arms_) {
      const Eigen::MatrixXd data = t * (o.gram() - prior) * t.transpose();
      auto it = index_.find(o.key);
      if (it == index_.end()) {
        RidgeArm arm = o;
        arm.a_inv = inverse_spd(prior + data);
        arm.b = t * o.b;
        arm.refresh();
        index_.emplace(o.key, arms_.size());
        arms_.push_back(std::move(arm));
        continue;
      }
      RidgeArm& arm = arms_[it->second];
      arm.a_inv = inverse_spd(arm.gram() + data);
      arm.b += t * o.b;
      arm.count += o.count;
      arm.valid = arm.valid || o.valid;
      arm.refresh();
    }
    if (scaling_ == FeatureScaling::kSymlogStandardize && other.seen_ > 0) {
      // Pooled moments (Chan et al.), then the standardisation they imply.
      const double n = seen_ + other.seen_;
      const Eigen::VectorXd delta = other.mean_ - mean_;
      m2_ += other.m2_ + delta.cwiseProduct(delta) * (seen_ * other.seen_ / n);
      mean_ += delta * (other.seen_ / n);
      seen_ = n;
      while (next_rescale_ <= seen_) next_rescale_ *= 2;
      rescale();
    }
  }

  /// The statistics; `binary` writes A^-1 as a packed upper triangle and b as raw doubles (compact, for
  /// encode_checkpoint), otherwise as arrays of numbers (readable).
  nlohmann::json to_json(bool binary) const {
    nlohmann::json arms = nlohmann::json::array();
    for (const RidgeArm& a : arms_)
      arms.push_back({{"action", a.key},
                      {"valid", a.valid},
                      {"count", a.count},
                      {"A_inv", binary ? symmetric_to_binary(a.a_inv) : matrix_to_json(a.a_inv)},
                      {"b", binary ? vector_to_binary(a.b) : vector_to_json(a.b)}});
    nlohmann::json j = {{"dimension", dimension_}, {"ridge_lambda", lambda_}, {"scaling", scaling_name(scaling_)},
                        {"actions", arms}};
    if (scaling_ == FeatureScaling::kSymlogStandardize) {
      auto vec = [binary](const Eigen::VectorXd& v) { return binary ? vector_to_binary(v) : vector_to_json(v); };
      j["standardization"] = {{"seen", seen_},          {"next_rescale", next_rescale_}, {"mean", vec(mean_)},
                              {"m2", vec(m2_)},         {"shift", vec(shift_)},          {"inv_scale", vec(inv_scale_)}};
    }
    return j;
  }

  /// @throws ValidationError naming the field.
  static RidgeModels from_json(const nlohmann::json& j) {
    const double dim = number_field(j, "", "dimension");
    if (dim != std::floor(dim) || dim < 1 || dim > 100000) throw ValidationError("dimension", "expected an integer in [1, 100000]");
    const double lambda = number_field(j, "", "ridge_lambda");
    const nlohmann::json& s = field(j, "", "scaling");
    FeatureScaling scaling;
    if (s == "symlog_standardize") scaling = FeatureScaling::kSymlogStandardize;
    else if (s == "symlog_unit_norm") scaling = FeatureScaling::kSymlogUnitNorm;
    else if (s == "unit_norm") scaling = FeatureScaling::kUnitNorm;
    else if (s == "none") scaling = FeatureScaling::kNone;
    else throw ValidationError("scaling", s.dump() + " is not one of symlog_standardize, symlog_unit_norm, unit_norm, none");
    RidgeModels m(static_cast<int>(dim), lambda, scaling);
    if (scaling == FeatureScaling::kSymlogStandardize) {
      const nlohmann::json& st = field(j, "", "standardization");
      const std::string sp = "standardization";
      m.seen_ = number_field(st, sp, "seen");
      m.next_rescale_ = number_field(st, sp, "next_rescale");
      if (m.seen_ < 0) throw ValidationError(sp + ".seen", num(m.seen_) + " is negative");
      if (!(m.next_rescale_ >= 1)) throw ValidationError(sp + ".next_rescale", num(m.next_rescale_) + " is below 1");
      m.mean_ = vector_from_json(field(st, sp, "mean"), sp + ".mean", m.dimension_);
      m.m2_ = vector_from_json(field(st, sp, "m2"), sp + ".m2", m.dimension_);
      m.shift_ = vector_from_json(field(st, sp, "shift"), sp + ".shift", m.dimension_);
      m.inv_scale_ = vector_from_json(field(st, sp, "inv_scale"), sp + ".inv_scale", m.dimension_);
      if (m.m2_.minCoeff() < 0) throw ValidationError(sp + ".m2", "has a negative entry");
      if (!(m.inv_scale_.minCoeff() > 0)) throw ValidationError(sp + ".inv_scale", "has an entry <= 0");
    }
    const nlohmann::json& arms = field(j, "", "actions");
    if (!arms.is_array()) throw ValidationError("actions", "expected an array");
    const Eigen::Index n = m.dimension_ + 1;
    for (std::size_t i = 0; i < arms.size(); ++i) {
      const std::string p = "actions[" + std::to_string(i) + "]";
      const nlohmann::json& aj = arms[i];
      RidgeArm arm;
      const nlohmann::json& key = field(aj, p, "action");
      if (!key.is_string() || key.get<std::string>().empty()) throw ValidationError(p + ".action", "expected a non-empty string");
      arm.key = key.get<std::string>();
      if (m.index_.count(arm.key)) throw ValidationError(p + ".action", "duplicate action \"" + arm.key + "\"");
      const nlohmann::json& valid = field(aj, p, "valid");
      if (!valid.is_boolean()) throw ValidationError(p + ".valid", "expected a boolean");
      arm.valid = valid.get<bool>();
      arm.count = number_field(aj, p, "count");
      const nlohmann::json& a_inv = field(aj, p, "A_inv");
      arm.a_inv = matrix_from_json(a_inv, p + ".A_inv", n);
      arm.b = vector_from_json(field(aj, p, "b"), p + ".b", n);
      // The binary form comes inside encode_checkpoint's container, whose checksum covers every byte. The
      // text form (hand-written, or edited) is checked here: A^-1 must be symmetric positive definite.
      if (!a_inv.is_binary()) {
        const double asym = (arm.a_inv - arm.a_inv.transpose()).cwiseAbs().maxCoeff();
        if (!(asym <= 1e-9 * arm.a_inv.cwiseAbs().maxCoeff()))
          throw ValidationError(p + ".A_inv", "is not symmetric (max asymmetry " + num(asym) + ")");
        if (arm.a_inv.llt().info() != Eigen::Success) throw ValidationError(p + ".A_inv", "is not positive definite");
      }
      arm.refresh();
      m.index_.emplace(arm.key, m.arms_.size());
      m.arms_.push_back(std::move(arm));
    }
    return m;
  }

 private:
  Eigen::MatrixXd lambda_prior() const {
    return lambda_ * Eigen::MatrixXd::Identity(dimension_ + 1, dimension_ + 1);
  }

  /// T with z_new = T z_old for z = [(s - shift) * inv_scale, 1]: s = z / k + shift, so
  /// z_new = z * (k'/k) + (shift - shift') * k'; T = [[diag(k'/k), (shift - shift') * k'], [0, 1]].
  static Eigen::MatrixXd change_of_coordinates(const Eigen::VectorXd& shift, const Eigen::VectorXd& k,
                                               const Eigen::VectorXd& shift_new, const Eigen::VectorXd& k_new) {
    const Eigen::Index d = shift.size();
    Eigen::MatrixXd t = Eigen::MatrixXd::Zero(d + 1, d + 1);
    t.topLeftCorner(d, d).diagonal() = k_new.cwiseQuotient(k);
    t.topRightCorner(d, 1) = (shift - shift_new).cwiseProduct(k_new);
    t(d, d) = 1.0;
    return t;
  }

  static Eigen::MatrixXd inverse_spd(const Eigen::MatrixXd& a) {
    // Symmetrised: checkpoints store one triangle, and Sherman-Morrison keeps exact symmetry from here on.
    const Eigen::MatrixXd inv = a.llt().solve(Eigen::MatrixXd::Identity(a.rows(), a.cols()));
    return 0.5 * (inv + inv.transpose());
  }

  int dimension_;
  double lambda_;
  FeatureScaling scaling_;
  // kSymlogStandardize: running moments of s = symlog(x) over every update (Welford), and the map in use,
  // z = [(s - shift_) * inv_scale_, 1], re-estimated when the update count reaches next_rescale_ (doubling).
  double seen_ = 0;
  double next_rescale_ = 8;
  Eigen::VectorXd mean_, m2_, shift_, inv_scale_;
  std::vector<RidgeArm> arms_;
  std::unordered_map<std::string, std::size_t> index_;
};

inline void check_unit_interval_open_top(double v, const char* key) {
  if (!(v >= 0.0 && v < 1.0)) throw ConfigError(key, num(v) + " is outside [0, 1)");
}

inline void check_positive(double v, const char* key) {
  if (!(v > 0.0) || !std::isfinite(v)) throw ConfigError(key, num(v) + " is outside (0, inf)");
}

}  // namespace detail

/// Base of the policies built on per-action ridge models: action bookkeeping, updates, merge.
/// Subclasses supply the exploration rule (distribution) and their parameters.
/// Thread-safety: none; const members may be called concurrently.
class LinearPolicy : public Policy {
 public:
  int dimension() const override { return models_.dimension(); }
  void add_action(const std::string& action, const std::string& parent = "") override { models_.add(action, parent); }
  void retire_action(const std::string& action) override { models_.retire(action); }
  std::vector<std::string> actions() const override { return models_.valid_actions(); }
  /// Ridge update of the chosen action (the propensity is validated but unused: a regression on the
  /// observed rewards is unbiased for each action's mean reward whatever the logging policy).
  void update(const Eigen::VectorXd& x, const std::string& action, double reward, double propensity) override {
    models_.update(x, action, reward, propensity);
  }
  bool downdate(const Eigen::VectorXd& x, const std::string& action, double reward) override {
    models_.downdate(x, action, reward);
    return true;
  }
  bool mergeable() const override { return true; }
  void merge(const Policy& other) override {
    const auto* o = dynamic_cast<const LinearPolicy*>(&other);
    if (o == nullptr || o->name() != name()) throw Error(name() + ": cannot merge with " + other.name());
    models_.merge(o->models_);
  }
  /// The ridge statistics (for tests and diagnostics).
  const detail::RidgeModels& models() const { return models_; }

  nlohmann::json to_json() const final { return state(false); }
  /// Re-estimates the feature standardisation now (otherwise automatic when the update count doubles).
  void rescale() { models_.rescale(); }
  nlohmann::json to_binary_json() const final { return state(true); }

  /// Estimated mean reward theta_a^T z of each valid action, in actions() order.
  std::vector<double> estimates(const Eigen::VectorXd& x) const {
    const Eigen::VectorXd z = models_.transform(x);
    std::vector<double> out;
    for (const detail::RidgeArm* a : models_.valid_arms()) out.push_back(a->theta.dot(z));
    return out;
  }

 protected:
  explicit LinearPolicy(detail::RidgeModels models) : models_(std::move(models)) {}

  /// Builds the ranked distribution from per-arm probabilities and scores.
  static Distribution make_distribution(const std::vector<const detail::RidgeArm*>& arms, const std::vector<double>& p,
                                        const std::vector<double>& score) {
    Distribution d;
    d.reserve(arms.size());
    for (std::size_t i = 0; i < arms.size(); ++i) d.push_back({arms[i]->key, p[i], score[i]});
    detail::rank(d);
    return d;
  }

  /// The exploration rule's parameters, as written in checkpoints.
  virtual nlohmann::json parameters_json() const = 0;

 private:
  nlohmann::json state(bool binary) const {
    nlohmann::json j = models_.to_json(binary);
    j["algorithm"] = name();
    j["format"] = 1;
    j["parameters"] = parameters_json();
    return j;
  }

 protected:

  detail::RidgeModels models_;
};

/// LinUCB parameters (config keys `alpha`, `epsilon_floor`, `ridge_lambda`).
struct LinUcbParams {
  double alpha = 0.5;           ///< width of the confidence bound; (0, inf)
  double epsilon_floor = 0.05;  ///< uniform exploration share; [0, 1)
  double ridge_lambda = 1.0;    ///< ridge prior; (0, inf). alpha 0.5 / lambda 1.0 chosen on the bake-off and the engine simulator (docs/selection.md)
  FeatureScaling scaling = FeatureScaling::kSymlogStandardize;
  /// @throws ConfigError naming the key.
  void validate() const {
    detail::check_positive(alpha, "alpha");
    detail::check_unit_interval_open_top(epsilon_floor, "epsilon_floor");
    detail::check_positive(ridge_lambda, "ridge_lambda");
  }
};

/// LinUCB with an exploration floor (see the file comment).
/// Example: `LinUcbPolicy p(8); p.add_action("a@1"); auto d = p.distribution(x, rng);`
/// Thread-safety: none; const members may be called concurrently.
class LinUcbPolicy final : public LinearPolicy {
 public:
  explicit LinUcbPolicy(int dimension, LinUcbParams params = {})
      : LinearPolicy(detail::RidgeModels(dimension, params.ridge_lambda, params.scaling)), params_(params) {
    params_.validate();
  }
  std::string name() const override { return "linucb"; }
  const LinUcbParams& params() const { return params_; }

  /// UCB score theta^T z + alpha sqrt(z^T A^-1 z) of each valid action, in actions() order.
  std::vector<double> scores(const Eigen::VectorXd& x) const {
    const Eigen::VectorXd z = models_.transform(x);
    const auto arms = models_.valid_arms();
    std::vector<double> out;
    out.reserve(arms.size());
    const Eigen::VectorXf q = detail::packed_outer(z);
    for (const detail::RidgeArm* a : arms) out.push_back(a->theta.dot(z) + params_.alpha * std::sqrt(a->width_squared(q)));
    return out;
  }

  Distribution distribution(const Eigen::VectorXd& x, Rng& /*rng*/) const override {
    const auto arms = models_.valid_arms();
    const std::vector<double> s = scores(x);
    std::vector<double> p = detail::greedy_split(s);
    detail::apply_floor(p, params_.epsilon_floor);
    return make_distribution(arms, p, s);
  }

  nlohmann::json parameters_json() const override {
    return {{"alpha", params_.alpha}, {"epsilon_floor", params_.epsilon_floor}, {"ridge_lambda", params_.ridge_lambda}};
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<LinUcbPolicy>(*this); }

  /// Restores a policy from to_json() output. @throws ValidationError naming the field.
  static std::unique_ptr<LinUcbPolicy> from_json(const nlohmann::json& j) {
    detail::RidgeModels models = detail::RidgeModels::from_json(j);
    const nlohmann::json& pj = detail::field(j, "", "parameters");
    LinUcbParams p;
    p.alpha = detail::number_field(pj, "parameters", "alpha");
    p.epsilon_floor = detail::number_field(pj, "parameters", "epsilon_floor");
    p.ridge_lambda = models.lambda();
    p.scaling = models.scaling();
    detail::validate_as_state(p);
    return std::unique_ptr<LinUcbPolicy>(new LinUcbPolicy(std::move(models), p));
  }

 private:
  LinUcbPolicy(detail::RidgeModels models, LinUcbParams params) : LinearPolicy(std::move(models)), params_(params) {}
  LinUcbParams params_;
};

/// Linear Thompson sampling parameters (config keys `v`, `epsilon_floor`, `ridge_lambda`).
struct ThompsonParams {
  double v = 0.15;              ///< posterior scale; (0, inf). 0.15 measured best across data sets
  double epsilon_floor = 0.05;  ///< uniform exploration share; [0, 1)
  double ridge_lambda = 1.0;    ///< ridge prior; (0, inf)
  int draws = 256;              ///< Monte-Carlo draws estimating the argmax distribution; [1, 1e6]
  FeatureScaling scaling = FeatureScaling::kSymlogStandardize;
  /// @throws ConfigError naming the key.
  void validate() const {
    detail::check_positive(v, "v");
    detail::check_unit_interval_open_top(epsilon_floor, "epsilon_floor");
    detail::check_positive(ridge_lambda, "ridge_lambda");
    if (draws < 1 || draws > 1000000) throw ConfigError("draws", std::to_string(draws) + " is outside [1, 1000000]");
  }
};

/// Linear Thompson sampling with a Monte-Carlo distribution and an exploration floor (see the file comment).
/// Thread-safety: none; const members may be called concurrently (each with its own Rng).
class ThompsonPolicy final : public LinearPolicy {
 public:
  explicit ThompsonPolicy(int dimension, ThompsonParams params = {})
      : LinearPolicy(detail::RidgeModels(dimension, params.ridge_lambda, params.scaling)), params_(params) {
    params_.validate();
  }
  std::string name() const override { return "thompson"; }
  const ThompsonParams& params() const { return params_; }

  /// Scores are the posterior means theta^T z; probabilities are P(argmax) estimated from `draws` draws.
  Distribution distribution(const Eigen::VectorXd& x, Rng& rng) const override {
    const auto arms = models_.valid_arms();
    const Eigen::VectorXd z = models_.transform(x);
    const std::size_t k = arms.size();
    std::vector<double> mean(k), sd(k), p(k, 0.0);
    const Eigen::VectorXf q = detail::packed_outer(z);
    for (std::size_t i = 0; i < k; ++i) {
      mean[i] = arms[i]->theta.dot(z);
      sd[i] = params_.v * std::sqrt(arms[i]->width_squared(q));
    }
    std::normal_distribution<double> normal(0.0, 1.0);
    const double w = 1.0 / params_.draws;
    for (int t = 0; t < params_.draws; ++t) {
      std::size_t best = 0;
      double best_value = -std::numeric_limits<double>::infinity();
      for (std::size_t i = 0; i < k; ++i) {
        const double value = mean[i] + sd[i] * normal(rng.engine());
        if (value > best_value) best_value = value, best = i;
      }
      p[best] += w;
    }
    detail::apply_floor(p, params_.epsilon_floor);
    return make_distribution(arms, p, mean);
  }

  nlohmann::json parameters_json() const override {
    return {{"v", params_.v}, {"epsilon_floor", params_.epsilon_floor}, {"ridge_lambda", params_.ridge_lambda},
                  {"draws", params_.draws}};
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<ThompsonPolicy>(*this); }

  /// Restores a policy from to_json() output. @throws ValidationError naming the field.
  static std::unique_ptr<ThompsonPolicy> from_json(const nlohmann::json& j) {
    detail::RidgeModels models = detail::RidgeModels::from_json(j);
    const nlohmann::json& pj = detail::field(j, "", "parameters");
    ThompsonParams p;
    p.v = detail::number_field(pj, "parameters", "v");
    p.epsilon_floor = detail::number_field(pj, "parameters", "epsilon_floor");
    const double draws = detail::number_field(pj, "parameters", "draws");
    if (draws != std::floor(draws) || draws < 1 || draws > 1000000)
      throw ValidationError("parameters.draws", "expected an integer in [1, 1000000]");
    p.draws = static_cast<int>(draws);
    p.ridge_lambda = models.lambda();
    p.scaling = models.scaling();
    detail::validate_as_state(p);
    return std::unique_ptr<ThompsonPolicy>(new ThompsonPolicy(std::move(models), p));
  }

 private:
  ThompsonPolicy(detail::RidgeModels models, ThompsonParams params) : LinearPolicy(std::move(models)), params_(params) {}
  ThompsonParams params_;
};

}  // namespace promptlearn::select
