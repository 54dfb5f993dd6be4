#pragma once
/// @file
/// PatternNet: a small multi-layer perceptron for binary pattern recognition ("will this interaction
/// succeed?"), layer 2 (header-only, no I/O, no clock, no threads). ReLU hidden layers with inverted
/// dropout, one sigmoid output, binary cross-entropy, Adam, mini-batches, early stopping on a held-out
/// validation split that restores the best weights. Deterministic given `MlpParams::seed`.
///
///     promptlearn::models::MlpParams p;            // {64, 32}, dropout 0.2, Adam 1e-3, batch 100, 100 epochs
///     promptlearn::models::PatternNet net(p);
///     net.fit(X, y);                               // y in {0, 1} (or probabilities in [0, 1])
///     double p_success = net.predict_proba_one(x); // x: one row of features
///     nlohmann::json state = net.to_json();        // PatternNet::from_json(state) predicts identically
///
/// The model, for an input row x (standardised: x' = (x - mean) / scale, mean and scale from the training
/// rows) and hidden layers l = 1..L-1:
///     a_0 = x',   h_l = relu(a_{l-1} W_l + b_l),   a_l = h_l * m_l / (1 - p)  (training only, m_l ~ Bernoulli(1 - p)),
///     s = a_{L-1} W_L + b_L (the logit),   P(y = 1 | x) = sigmoid(s) = 1 / (1 + exp(-s)).
/// Inverted dropout (Srivastava et al. 2014, JMLR 15:1929) scales the kept units at training time, so
/// inference uses the weights unchanged and no randomness.
/// Objective minimised on the training rows (mean over a mini-batch B):
///     J = (1/|B|) sum_i l(s_i, y_i) + (lambda / 2) sum_l ||W_l||_F^2   (biases are not decayed),
///     l(s, y) = -[y log sigmoid(s) + (1 - y) log(1 - sigmoid(s))] = max(s, 0) - s y + log(1 + exp(-|s|)),
/// the last form computed from the logit so that it never takes log(0) or overflows; dl/ds = sigmoid(s) - y.
/// Initialisation: hidden weights ~ N(0, 2 / fan_in) (He et al. 2015, "Delving deep into rectifiers",
/// ICCV), output weights ~ N(0, 2 / (fan_in + fan_out)) (Glorot & Bengio 2010, AISTATS), biases 0.
/// Adam (Kingma & Ba 2015, ICLR, Algorithm 1), for each parameter theta with gradient g at step t >= 1:
///     m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2,
///     theta -= alpha * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + epsilon).
/// Early stopping (Prechelt 1998, "Early stopping - but when?"): after every epoch the validation loss
/// (mean l on the held-out rows, dropout off) is computed; training stops after `early_stopping_patience`
/// epochs without an improvement larger than `min_delta`, and the weights of the epoch with the lowest
/// validation loss are restored.
#include <Eigen/Core>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/models/cross_validation.hpp"

namespace promptlearn::models {

/// PatternNet hyper-parameters; the member initialisers are the specification's defaults.
/// Thread-safety: plain value.
struct MlpParams {
  std::vector<int> hidden_layers{64, 32};  ///< widths of the ReLU hidden layers, each in [1, 100000]; at most 64
                                           ///< layers; empty = logistic regression
  double dropout = 0.2;                    ///< probability of dropping a hidden unit in training, [0, 1)
  double learning_rate = 1e-3;             ///< Adam step size alpha, (0, 10]
  double beta1 = 0.9;                      ///< Adam first-moment decay, [0, 1)
  double beta2 = 0.999;                    ///< Adam second-moment decay, [0, 1)
  double epsilon = 1e-8;                   ///< Adam denominator guard, (0, 1]
  double weight_decay = 0.0;               ///< L2 coefficient lambda on the weights (not biases), [0, 1e6]
  int batch_size = 100;                    ///< rows per mini-batch, [1, 1e9]
  int max_epochs = 100;                    ///< passes over the training rows, [1, 1e6]
  double validation_split = 0.2;           ///< fraction held out for early stopping, [0, 1); 0 = no early stopping
  int early_stopping_patience = 10;        ///< epochs without improvement before stopping, [1, 1e6]
  double min_delta = 0.0;                  ///< an improvement must lower the validation loss by more than this, [0, 1e6]
  bool standardize_inputs = true;          ///< scale each input to mean 0, sd 1 on the training rows
  std::uint64_t seed = 42;                 ///< seeds the split, the initialisation, the shuffles and dropout

  /// @throws ConfigError naming `mlp.<member>` when a value is out of range,
  ///         e.g. `mlp.dropout: 1 is outside [0, 1)`.
  void validate() const {
    auto in = [](const char* key, double v, double lo, double hi, bool lo_open, bool hi_open) {
      const bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
      if (!ok)
        throw ConfigError(std::string("mlp.") + key, fmt::format("{} is outside {}{}, {}{}", v, lo_open ? '(' : '[', lo,
                                                                 hi, hi_open ? ')' : ']'));
    };
    if (hidden_layers.size() > 64)
      throw ConfigError("mlp.hidden_layers", fmt::format("{} layers is more than 64", hidden_layers.size()));
    for (std::size_t i = 0; i < hidden_layers.size(); ++i)
      if (hidden_layers[i] < 1 || hidden_layers[i] > 100000)
        throw ConfigError(fmt::format("mlp.hidden_layers[{}]", i), fmt::format("{} is outside [1, 100000]", hidden_layers[i]));
    in("dropout", dropout, 0, 1, false, true);
    in("learning_rate", learning_rate, 0, 10, true, false);
    in("beta1", beta1, 0, 1, false, true);
    in("beta2", beta2, 0, 1, false, true);
    in("epsilon", epsilon, 0, 1, true, false);
    in("weight_decay", weight_decay, 0, 1e6, false, false);
    in("batch_size", batch_size, 1, 1e9, false, false);
    in("max_epochs", max_epochs, 1, 1e6, false, false);
    in("validation_split", validation_split, 0, 1, false, true);
    in("early_stopping_patience", early_stopping_patience, 1, 1e6, false, false);
    in("min_delta", min_delta, 0, 1e6, false, false);
  }
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MlpParams, hidden_layers, dropout, learning_rate, beta1, beta2,
                                                epsilon, weight_decay, batch_size, max_epochs, validation_split,
                                                early_stopping_patience, min_delta, standardize_inputs, seed)

/// One dense layer: outputs = inputs * weights + bias (row-vector convention).
/// Thread-safety: plain value.
struct MlpLayer {
  Eigen::MatrixXd weights;  ///< fan_in x fan_out
  Eigen::VectorXd bias;     ///< fan_out
};

/// What happened during fit(). Thread-safety: plain value.
struct MlpHistory {
  std::vector<double> train_loss;       ///< per epoch: mean cross-entropy over that epoch's mini-batches (with
                                        ///< dropout, as optimised; the L2 term is not included)
  std::vector<double> validation_loss;  ///< per epoch: mean cross-entropy on the validation rows, dropout off;
                                        ///< empty when validation_split is 0
  int best_epoch = -1;                  ///< 0-based epoch whose weights the model holds (last epoch without validation)
  int epochs_run = 0;                   ///< epochs trained
  bool stopped_early = false;           ///< true when patience ran out before max_epochs
};

namespace detail::mlp {

/// Uniform double in [0, 1) from 53 random bits (portable, unlike std::uniform_real_distribution).
inline double unit(Rng& rng) { return static_cast<double>(rng.next_u64() >> 11) * 0x1.0p-53; }

/// Standard normal by Box-Muller (Box & Muller 1958) on unit() draws.
inline double standard_normal(Rng& rng) {
  const double u1 = 1.0 - unit(rng);  // (0, 1]
  const double u2 = unit(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
}

/// splitmix64 finaliser: the training stream's seed, decorrelated from the split's Rng(seed).
inline std::uint64_t mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Numerically stable sigmoid.
inline double sigmoid(double s) {
  if (s >= 0) return 1.0 / (1.0 + std::exp(-s));
  const double e = std::exp(s);
  return e / (1.0 + e);
}

/// Mean binary cross-entropy from logits: mean of max(s, 0) - s y + log1p(exp(-|s|)).
inline double mean_bce(const Eigen::Ref<const Eigen::VectorXd>& s, const Eigen::Ref<const Eigen::VectorXd>& y) {
  const auto sa = s.array();
  return (sa.max(0.0) - sa * y.array() + (-sa.abs()).exp().log1p()).mean();
}

/// (X - mean) / scale, row by row.
inline Eigen::MatrixXd standardise(const Eigen::Ref<const Eigen::MatrixXd>& X, const Eigen::VectorXd& mean,
                                   const Eigen::VectorXd& scale) {
  return ((X.rowwise() - mean.transpose()).array().rowwise() / scale.transpose().array()).matrix();
}

/// Logits of standardised rows, dropout off (batched matrix products).
inline Eigen::VectorXd forward_logits(const std::vector<MlpLayer>& layers, const Eigen::Ref<const Eigen::MatrixXd>& Xs) {
  const std::size_t last = layers.size() - 1;
  Eigen::MatrixXd a = Xs;
  for (std::size_t l = 0; l < last; ++l)
    a = ((a * layers[l].weights).rowwise() + layers[l].bias.transpose()).cwiseMax(0.0);
  return (a * layers[last].weights.col(0)).array() + layers[last].bias(0);
}

/// (lambda / 2) sum_l ||W_l||_F^2.
inline double l2_penalty(const std::vector<MlpLayer>& layers, double lambda) {
  if (lambda == 0) return 0;
  double s = 0;
  for (const auto& L : layers) s += L.weights.squaredNorm();
  return 0.5 * lambda * s;
}

/// Forward and backward pass on one batch of standardised rows. Returns the mean cross-entropy (without the
/// L2 term) and writes dJ/dW, dJ/db (with the L2 term lambda W) into `grads` (resized to match `layers`).
/// With `dropout_rng` non-null each hidden unit of each row is dropped with probability `dropout`.
inline double batch_gradient(const std::vector<MlpLayer>& layers, const Eigen::Ref<const Eigen::MatrixXd>& Xs,
                             const Eigen::Ref<const Eigen::VectorXd>& y, double lambda, double dropout, Rng* dropout_rng,
                             std::vector<MlpLayer>& grads) {
  const std::size_t n_layers = layers.size(), last = n_layers - 1;
  const auto m = static_cast<double>(Xs.rows());
  const bool drop = dropout_rng != nullptr && dropout > 0;
  std::vector<Eigen::MatrixXd> acts(n_layers);   // acts[l]: input of layer l
  std::vector<Eigen::MatrixXd> relu(last);       // relu[l]: h of hidden layer l (before dropout)
  std::vector<Eigen::MatrixXd> masks(drop ? last : 0);
  acts[0] = Xs;
  const double keep_scale = 1.0 / (1.0 - dropout);
  for (std::size_t l = 0; l < last; ++l) {
    relu[l] = ((acts[l] * layers[l].weights).rowwise() + layers[l].bias.transpose()).cwiseMax(0.0);
    if (drop) {
      Eigen::MatrixXd& mask = masks[l];
      mask.resize(relu[l].rows(), relu[l].cols());
      double* p = mask.data();
      for (Eigen::Index i = 0; i < mask.size(); ++i) p[i] = unit(*dropout_rng) < dropout ? 0.0 : keep_scale;
      acts[l + 1] = relu[l].cwiseProduct(mask);
    } else {
      acts[l + 1] = relu[l];
    }
  }
  const Eigen::VectorXd s = (acts[last] * layers[last].weights.col(0)).array() + layers[last].bias(0);
  const double loss = mean_bce(s, y);
  // dJ/ds_i = (sigmoid(s_i) - y_i) / m.
  Eigen::MatrixXd delta = (s.unaryExpr([](double v) { return sigmoid(v); }) - y) / m;
  grads.resize(n_layers);
  for (std::size_t k = n_layers; k-- > 0;) {
    grads[k].weights.noalias() = acts[k].transpose() * delta;
    if (lambda != 0) grads[k].weights += lambda * layers[k].weights;
    grads[k].bias = delta.colwise().sum().transpose();
    if (k == 0) break;
    Eigen::MatrixXd back = delta * layers[k].weights.transpose();  // dJ/da_{k}
    if (drop) back = back.cwiseProduct(masks[k - 1]);
    delta = (relu[k - 1].array() > 0.0).select(back.array(), 0.0).matrix();  // relu'(z) = [z > 0] = [h > 0]
  }
  return loss;
}

// ---- strict JSON reading: every failure is a ValidationError naming the field ----

inline std::string join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

inline const nlohmann::json& field(const nlohmann::json& j, const std::string& path, const std::string& key) {
  if (!j.is_object()) throw ValidationError(path, "expected an object, got " + j.dump());
  auto it = j.find(key);
  if (it == j.end()) throw ValidationError(join(path, key), "missing");
  return *it;
}

inline double finite_number(const nlohmann::json& v, const std::string& path) {
  if (!v.is_number()) throw ValidationError(path, "expected a finite number, got " + v.dump());
  const double d = v.get<double>();
  if (!std::isfinite(d)) throw ValidationError(path, "expected a finite number, got " + v.dump());
  return d;
}

inline std::int64_t integer(const nlohmann::json& v, const std::string& path, std::int64_t lo, std::int64_t hi) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < lo || v.get<std::int64_t>() > hi)
    throw ValidationError(path, fmt::format("expected an integer in [{}, {}], got {}", lo, hi, v.dump()));
  return v.get<std::int64_t>();
}

inline Eigen::VectorXd vector(const nlohmann::json& v, const std::string& path, Eigen::Index n) {
  if (!v.is_array() || static_cast<Eigen::Index>(v.size()) != n)
    throw ValidationError(path, fmt::format("expected an array of {} numbers", n));
  Eigen::VectorXd out(n);
  for (Eigen::Index i = 0; i < n; ++i) out(i) = finite_number(v[static_cast<std::size_t>(i)], fmt::format("{}[{}]", path, i));
  return out;
}

inline Eigen::MatrixXd matrix(const nlohmann::json& v, const std::string& path, Eigen::Index rows, Eigen::Index cols) {
  const auto shape_error = [&] { return ValidationError(path, fmt::format("expected {} rows of {} numbers", rows, cols)); };
  if (!v.is_array() || static_cast<Eigen::Index>(v.size()) != rows) throw shape_error();
  for (const auto& row : v)
    if (!row.is_array() || static_cast<Eigen::Index>(row.size()) != cols) throw shape_error();
  Eigen::MatrixXd out(rows, cols);
  for (Eigen::Index r = 0; r < rows; ++r)
    out.row(r) = vector(v[static_cast<std::size_t>(r)], fmt::format("{}[{}]", path, r), cols).transpose();
  return out;
}

/// History losses may be non-finite (a diverging epoch); JSON writes those as null.
inline std::vector<double> losses(const nlohmann::json& v, const std::string& path) {
  if (!v.is_array()) throw ValidationError(path, "expected an array of numbers");
  std::vector<double> out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i].is_null()) out.push_back(std::numeric_limits<double>::quiet_NaN());
    else if (v[i].is_number()) out.push_back(v[i].get<double>());
    else throw ValidationError(fmt::format("{}[{}]", path, i), "expected a number or null, got " + v[i].dump());
  }
  return out;
}

inline nlohmann::json losses_to_json(const std::vector<double>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (double x : v) a.push_back(std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr));
  return a;
}

inline nlohmann::json matrix_to_json(const Eigen::MatrixXd& m) {
  nlohmann::json rows = nlohmann::json::array();
  for (Eigen::Index r = 0; r < m.rows(); ++r) {
    nlohmann::json row = nlohmann::json::array();
    for (Eigen::Index c = 0; c < m.cols(); ++c) row.push_back(m(r, c));
    rows.push_back(std::move(row));
  }
  return rows;
}

inline nlohmann::json vector_to_json(const Eigen::VectorXd& v) { return std::vector<double>(v.data(), v.data() + v.size()); }

/// Strict reading of a saved MlpParams: every key present with the right type, no unknown keys, in range.
inline MlpParams params_from_json(const nlohmann::json& pj) {
  static const char* const kKeys[] = {"hidden_layers", "dropout", "learning_rate", "beta1", "beta2",
                                      "epsilon", "weight_decay", "batch_size", "max_epochs", "validation_split",
                                      "early_stopping_patience", "min_delta", "standardize_inputs", "seed"};
  if (!pj.is_object()) throw ValidationError("params", "expected an object, got " + pj.dump());
  for (const auto& item : pj.items())
    if (std::find_if(std::begin(kKeys), std::end(kKeys), [&](const char* k) { return item.key() == k; }) == std::end(kKeys))
      throw ValidationError("params." + item.key(), "is not a known parameter");
  MlpParams p;
  const nlohmann::json& hl = field(pj, "params", "hidden_layers");
  if (!hl.is_array()) throw ValidationError("params.hidden_layers", "expected an array of integers, got " + hl.dump());
  p.hidden_layers.clear();
  for (std::size_t i = 0; i < hl.size(); ++i)
    p.hidden_layers.push_back(static_cast<int>(integer(hl[i], fmt::format("params.hidden_layers[{}]", i), 1, 100000)));
  auto num = [&](const char* key) { return finite_number(field(pj, "params", key), std::string("params.") + key); };
  auto whole = [&](const char* key) {
    return static_cast<int>(integer(field(pj, "params", key), std::string("params.") + key, 1, 1000000000));
  };
  p.dropout = num("dropout");
  p.learning_rate = num("learning_rate");
  p.beta1 = num("beta1");
  p.beta2 = num("beta2");
  p.epsilon = num("epsilon");
  p.weight_decay = num("weight_decay");
  p.batch_size = whole("batch_size");
  p.max_epochs = whole("max_epochs");
  p.validation_split = num("validation_split");
  p.early_stopping_patience = whole("early_stopping_patience");
  p.min_delta = num("min_delta");
  const nlohmann::json& st = field(pj, "params", "standardize_inputs");
  if (!st.is_boolean()) throw ValidationError("params.standardize_inputs", "expected a boolean, got " + st.dump());
  p.standardize_inputs = st.get<bool>();
  const nlohmann::json& seed = field(pj, "params", "seed");
  if (!seed.is_number_integer() || (seed.is_number_integer() && !seed.is_number_unsigned() && seed.get<std::int64_t>() < 0))
    throw ValidationError("params.seed", "expected an unsigned integer, got " + seed.dump());
  p.seed = seed.get<std::uint64_t>();
  try {
    p.validate();
  } catch (const ConfigError& e) {
    // "mlp.dropout: 1 is outside [0, 1)" -> "params.dropout: 1 is outside [0, 1)"
    const std::string what = e.what();
    throw ValidationError("params" + e.key().substr(3), what.substr(e.key().size() + 2));
  }
  return p;
}

}  // namespace detail::mlp

/// A small MLP classifier for binary outcomes: ReLU hidden layers, inverted dropout, sigmoid output,
/// trained with Adam on binary cross-entropy with early stopping (formulas and papers in the file comment).
///
///     PatternNet net;                       // MlpParams defaults
///     const MlpHistory& h = net.fit(X, y);  // h.best_epoch, h.validation_loss, ...
///     Eigen::VectorXd p = net.predict_proba(X_new);
///
/// Thread-safety: const members (predictions, loss, to_json) may run concurrently; fit(),
/// set_parameters() and assignment need exclusive access.
class PatternNet {
 public:
  /// An unfitted network. @throws ConfigError naming the key when `params` is invalid.
  explicit PatternNet(MlpParams params = {}) : params_(std::move(params)) { params_.validate(); }

  /// The hyper-parameters.
  const MlpParams& params() const noexcept { return params_; }
  /// True after fit() or from_json() of a fitted network.
  bool fitted() const noexcept { return !layers_.empty(); }
  /// Number of input columns (0 before fitting).
  Eigen::Index n_inputs() const noexcept { return mean_.size(); }
  /// The layers, input first; the last has one output (the logit).
  const std::vector<MlpLayer>& layers() const noexcept { return layers_; }
  /// Per-column shift applied before the first layer (zeros when standardize_inputs is false).
  const Eigen::VectorXd& input_mean() const noexcept { return mean_; }
  /// Per-column divisor applied before the first layer (the training rows' population sd; 1 for a constant
  /// column or when standardize_inputs is false).
  const Eigen::VectorXd& input_scale() const noexcept { return scale_; }
  /// What the last fit() did.
  const MlpHistory& history() const noexcept { return history_; }

  /// Trains from a fresh initialisation on rows X (n x d) and targets y (n values in [0, 1]; usually 0/1).
  /// With validation_split > 0 the rows `train_validation_split(n, validation_split, seed).validation` are
  /// held out for early stopping and the best epoch's weights are kept; standardisation statistics come from
  /// the training rows only. Same data and params give bit-identical weights. The model is unchanged when
  /// this throws.
  /// @throws ValidationError naming the argument (`X[3][1]: nan is not a finite number`,
  ///         `y[4]: 1.5 is outside [0, 1]`); Error when training diverges (no finite validation loss).
  const MlpHistory& fit(const Eigen::Ref<const Eigen::MatrixXd>& X, const Eigen::Ref<const Eigen::VectorXd>& y) {
    check_training_data(X, y);
    check_targets(y);
    if (X.cols() < 1) throw ValidationError("X", "has no columns");
    const bool has_validation = params_.validation_split > 0;
    if (has_validation && X.rows() < 2)
      throw ValidationError("X", fmt::format("{} row cannot be split into training and validation rows "
                                             "(set mlp.validation_split to 0)", X.rows()));
    const Eigen::Index d = X.cols();

    Eigen::MatrixXd Xtr, Xva;
    Eigen::VectorXd ytr, yva;
    if (has_validation) {
      const Split split = train_validation_split(X.rows(), params_.validation_split, params_.seed);
      Xtr = take_rows(X, split.train);
      ytr = take_values(y, split.train);
      Xva = take_rows(X, split.validation);
      yva = take_values(y, split.validation);
    } else {
      Xtr = X;
      ytr = y;
    }

    Eigen::VectorXd mean = Eigen::VectorXd::Zero(d), scale = Eigen::VectorXd::Ones(d);
    if (params_.standardize_inputs) {
      mean = Xtr.colwise().mean().transpose();
      for (Eigen::Index c = 0; c < d; ++c) {
        const double sd = std::sqrt((Xtr.col(c).array() - mean(c)).square().mean());
        scale(c) = (std::isfinite(sd) && sd > 1e-12 * std::max(1.0, std::abs(mean(c)))) ? sd : 1.0;
      }
    }
    const Eigen::MatrixXd Xtr_s = detail::mlp::standardise(Xtr, mean, scale);
    const Eigen::MatrixXd Xva_s = has_validation ? detail::mlp::standardise(Xva, mean, scale) : Eigen::MatrixXd();

    Rng rng(detail::mlp::mix(params_.seed));
    std::vector<MlpLayer> layers = initial_layers(d, rng);
    std::vector<MlpLayer> m1 = zeros_like(layers), m2 = zeros_like(layers), grads;
    std::vector<MlpLayer> best = layers;
    MlpHistory hist;
    double best_loss = std::numeric_limits<double>::infinity(), reference = best_loss;
    int wait = 0;
    std::int64_t step = 0;
    const Eigen::Index n_train = Xtr_s.rows();
    std::vector<Eigen::Index> order(static_cast<std::size_t>(n_train));
    for (Eigen::Index i = 0; i < n_train; ++i) order[static_cast<std::size_t>(i)] = i;
    std::vector<Eigen::Index> batch;

    for (int epoch = 0; epoch < params_.max_epochs; ++epoch) {
      // Fisher-Yates shuffle of the training rows with the seeded stream (the modulo bias, < i / 2^64, is nil).
      for (std::size_t i = order.size(); i > 1; --i)
        std::swap(order[i - 1], order[static_cast<std::size_t>(rng.next_u64() % i)]);
      double loss_sum = 0;
      for (Eigen::Index start = 0; start < n_train; start += params_.batch_size) {
        const Eigen::Index end = std::min<Eigen::Index>(n_train, start + params_.batch_size);
        batch.assign(order.begin() + start, order.begin() + end);
        const Eigen::MatrixXd Xb = take_rows(Xtr_s, batch);
        const Eigen::VectorXd yb = take_values(ytr, batch);
        const double batch_loss = detail::mlp::batch_gradient(layers, Xb, yb, params_.weight_decay, params_.dropout,
                                                              params_.dropout > 0 ? &rng : nullptr, grads);
        loss_sum += batch_loss * static_cast<double>(end - start);
        adam_step(layers, grads, m1, m2, ++step);
      }
      hist.train_loss.push_back(loss_sum / static_cast<double>(n_train));
      hist.epochs_run = epoch + 1;
      if (!has_validation) {
        hist.best_epoch = epoch;
        continue;
      }
      const double val = detail::mlp::mean_bce(detail::mlp::forward_logits(layers, Xva_s), yva);
      hist.validation_loss.push_back(val);
      if (val < best_loss) {  // the weights to restore: the lowest validation loss seen
        best_loss = val;
        best = layers;
        hist.best_epoch = epoch;
      }
      if (val < reference - params_.min_delta) {  // patience counts epochs without a significant improvement
        reference = val;
        wait = 0;
      } else if (++wait >= params_.early_stopping_patience) {
        hist.stopped_early = epoch + 1 < params_.max_epochs;
        break;
      }
    }
    if (has_validation) {
      if (hist.best_epoch < 0)
        throw Error("mlp: training diverged: no epoch had a finite validation loss (lower mlp.learning_rate)");
      layers = std::move(best);
    }
    for (const auto& L : layers)
      if (!L.weights.allFinite() || !L.bias.allFinite())
        throw Error("mlp: training diverged: the weights are not finite (lower mlp.learning_rate)");

    layers_ = std::move(layers);
    mean_ = std::move(mean);
    scale_ = std::move(scale);
    history_ = std::move(hist);
    return history_;
  }

  /// P(y = 1 | row) for every row of X (dropout off, deterministic).
  /// @throws Error when not fitted; ValidationError naming `X` (wrong width) or `X[r][c]` (not finite).
  Eigen::VectorXd predict_proba(const Eigen::Ref<const Eigen::MatrixXd>& X) const {
    check_inputs(X);
    return detail::mlp::forward_logits(layers_, detail::mlp::standardise(X, mean_, scale_))
        .unaryExpr([](double s) { return detail::mlp::sigmoid(s); });
  }

  /// P(y = 1 | x) for one row (pass `X.row(i).transpose()` for a row of a matrix).
  /// @throws Error when not fitted; ValidationError naming `x` or `x[c]`.
  double predict_proba_one(const Eigen::Ref<const Eigen::VectorXd>& x) const {
    require_fitted();
    if (x.size() != n_inputs())
      throw ValidationError("x", fmt::format("has {} values, the model was fitted on {} columns", x.size(), n_inputs()));
    for (Eigen::Index c = 0; c < x.size(); ++c)
      if (!std::isfinite(x(c))) throw ValidationError(fmt::format("x[{}]", c), fmt::format("{} is not a finite number", x(c)));
    return one(x);
  }

  /// predict_proba_one() without exceptions for bad input: nullopt when not fitted, of the wrong width or
  /// not finite.
  std::optional<double> try_predict_proba_one(const Eigen::Ref<const Eigen::VectorXd>& x) const {
    if (!fitted() || x.size() != n_inputs() || !x.allFinite()) return std::nullopt;
    return one(x);
  }

  /// The objective J (mean cross-entropy + (weight_decay / 2) sum ||W||^2) on rows X, y at the current
  /// weights, dropout off, with the stored standardisation.
  /// @throws as fit() for bad data; Error when not fitted.
  double loss(const Eigen::Ref<const Eigen::MatrixXd>& X, const Eigen::Ref<const Eigen::VectorXd>& y) const {
    check_training_data(X, y);
    check_targets(y);
    check_inputs(X);
    return detail::mlp::mean_bce(detail::mlp::forward_logits(layers_, detail::mlp::standardise(X, mean_, scale_)), y) +
           detail::mlp::l2_penalty(layers_, params_.weight_decay);
  }

  /// loss(X, y) and its exact gradient with respect to parameters() (back-propagation, dropout off): the
  /// same code fit() uses for each mini-batch.
  double loss_and_gradient(const Eigen::Ref<const Eigen::MatrixXd>& X, const Eigen::Ref<const Eigen::VectorXd>& y,
                           Eigen::VectorXd& gradient) const {
    check_training_data(X, y);
    check_targets(y);
    check_inputs(X);
    std::vector<MlpLayer> grads;
    const double data = detail::mlp::batch_gradient(layers_, detail::mlp::standardise(X, mean_, scale_), y,
                                                    params_.weight_decay, 0.0, nullptr, grads);
    gradient = flatten(grads);
    return data + detail::mlp::l2_penalty(layers_, params_.weight_decay);
  }

  /// Number of weights and biases.
  Eigen::Index parameter_count() const noexcept {
    Eigen::Index n = 0;
    for (const auto& L : layers_) n += L.weights.size() + L.bias.size();
    return n;
  }

  /// All weights and biases in one vector: layer by layer, the weights (column-major) then the bias.
  Eigen::VectorXd parameters() const { return flatten(layers_); }

  /// Replaces the weights and biases (the layout of parameters()).
  /// @throws Error when not fitted; ValidationError naming `theta` (wrong size) or `theta[i]` (not finite).
  void set_parameters(const Eigen::Ref<const Eigen::VectorXd>& theta) {
    require_fitted();
    if (theta.size() != parameter_count())
      throw ValidationError("theta", fmt::format("has {} values, expected {}", theta.size(), parameter_count()));
    for (Eigen::Index i = 0; i < theta.size(); ++i)
      if (!std::isfinite(theta(i))) throw ValidationError(fmt::format("theta[{}]", i), fmt::format("{} is not a finite number", theta(i)));
    Eigen::Index at = 0;
    for (auto& L : layers_) {
      L.weights = Eigen::Map<const Eigen::MatrixXd>(theta.data() + at, L.weights.rows(), L.weights.cols());
      at += L.weights.size();
      L.bias = theta.segment(at, L.bias.size());
      at += L.bias.size();
    }
  }

  /// The full state: parameters, standardisation, layers (weights as rows of fan_out numbers), history.
  /// `PatternNet::from_json(net.to_json())` predicts bit-identically.
  nlohmann::json to_json() const {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& L : layers_)
      layers.push_back({{"weights", detail::mlp::matrix_to_json(L.weights)}, {"bias", detail::mlp::vector_to_json(L.bias)}});
    return {{"format", "promptlearn.pattern_net"},
            {"version", 1},
            {"params", params_},
            {"fitted", fitted()},
            {"n_inputs", n_inputs()},
            {"input_mean", detail::mlp::vector_to_json(mean_)},
            {"input_scale", detail::mlp::vector_to_json(scale_)},
            {"layers", layers},
            {"history",
             {{"train_loss", detail::mlp::losses_to_json(history_.train_loss)},
              {"validation_loss", detail::mlp::losses_to_json(history_.validation_loss)},
              {"best_epoch", history_.best_epoch},
              {"epochs_run", history_.epochs_run},
              {"stopped_early", history_.stopped_early}}}};
  }

  /// Restores a network from to_json() output, checking every field (layer shapes must follow
  /// params.hidden_layers and n_inputs; every number finite; input_scale > 0).
  /// @throws ValidationError naming the field, e.g. `layers[1].weights[3][0]: expected a finite number, got null`.
  static PatternNet from_json(const nlohmann::json& j) {
    namespace m = detail::mlp;
    const nlohmann::json& format = m::field(j, "", "format");
    if (format != "promptlearn.pattern_net")
      throw ValidationError("format", "expected \"promptlearn.pattern_net\", got " + format.dump());
    m::integer(m::field(j, "", "version"), "version", 1, 1);
    PatternNet net(m::params_from_json(m::field(j, "", "params")));
    const nlohmann::json& fitted = m::field(j, "", "fitted");
    if (!fitted.is_boolean()) throw ValidationError("fitted", "expected a boolean, got " + fitted.dump());
    const nlohmann::json& layers = m::field(j, "", "layers");
    if (!layers.is_array()) throw ValidationError("layers", "expected an array");
    if (!fitted.get<bool>()) {
      if (!layers.empty()) throw ValidationError("layers", "expected [] for an unfitted network");
      return net;
    }
    const auto d = static_cast<Eigen::Index>(m::integer(m::field(j, "", "n_inputs"), "n_inputs", 1, 100000000));
    net.mean_ = m::vector(m::field(j, "", "input_mean"), "input_mean", d);
    net.scale_ = m::vector(m::field(j, "", "input_scale"), "input_scale", d);
    for (Eigen::Index c = 0; c < d; ++c)
      if (!(net.scale_(c) > 0)) throw ValidationError(fmt::format("input_scale[{}]", c), fmt::format("{} is not > 0", net.scale_(c)));
    const auto& widths = net.params_.hidden_layers;
    if (layers.size() != widths.size() + 1)
      throw ValidationError("layers", fmt::format("expected {} layers (params.hidden_layers + output), got {}",
                                                  widths.size() + 1, layers.size()));
    Eigen::Index fan_in = d;
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const std::string path = fmt::format("layers[{}]", l);
      const Eigen::Index fan_out = l < widths.size() ? widths[l] : 1;
      MlpLayer L;
      L.weights = m::matrix(m::field(layers[l], path, "weights"), path + ".weights", fan_in, fan_out);
      L.bias = m::vector(m::field(layers[l], path, "bias"), path + ".bias", fan_out);
      net.layers_.push_back(std::move(L));
      fan_in = fan_out;
    }
    const nlohmann::json& h = m::field(j, "", "history");
    net.history_.train_loss = m::losses(m::field(h, "history", "train_loss"), "history.train_loss");
    net.history_.validation_loss = m::losses(m::field(h, "history", "validation_loss"), "history.validation_loss");
    const auto epochs = static_cast<std::int64_t>(net.history_.train_loss.size());
    net.history_.epochs_run = static_cast<int>(m::integer(m::field(h, "history", "epochs_run"), "history.epochs_run", epochs, epochs));
    net.history_.best_epoch = static_cast<int>(m::integer(m::field(h, "history", "best_epoch"), "history.best_epoch", -1, epochs - 1));
    const nlohmann::json& se = m::field(h, "history", "stopped_early");
    if (!se.is_boolean()) throw ValidationError("history.stopped_early", "expected a boolean, got " + se.dump());
    net.history_.stopped_early = se.get<bool>();
    return net;
  }

  /// to_json() as CBOR (RFC 8949): a compact binary blob for storage; doubles are kept exactly.
  std::vector<std::uint8_t> to_blob() const { return nlohmann::json::to_cbor(to_json()); }

  /// Restores a network from to_blob() output.
  /// @throws ValidationError ("" for bytes that are not CBOR, else naming the field as from_json()).
  static PatternNet from_blob(const std::vector<std::uint8_t>& blob) {
    nlohmann::json j;
    try {
      j = nlohmann::json::from_cbor(blob);
    } catch (const nlohmann::json::exception& e) {
      throw ValidationError("", std::string("not a PatternNet blob: ") + e.what());
    }
    return from_json(j);
  }

 private:
  static void check_targets(const Eigen::Ref<const Eigen::VectorXd>& y) {
    for (Eigen::Index r = 0; r < y.size(); ++r)
      if (!(y(r) >= 0 && y(r) <= 1)) throw ValidationError(fmt::format("y[{}]", r), fmt::format("{} is outside [0, 1]", y(r)));
  }

  void require_fitted() const {
    if (!fitted()) throw Error("PatternNet: not fitted (call fit() or from_json() first)");
  }

  void check_inputs(const Eigen::Ref<const Eigen::MatrixXd>& X) const {
    require_fitted();
    if (X.cols() != n_inputs())
      throw ValidationError("X", fmt::format("has {} columns, the model was fitted on {}", X.cols(), n_inputs()));
    if (!X.allFinite())
      for (Eigen::Index r = 0; r < X.rows(); ++r)
        for (Eigen::Index c = 0; c < X.cols(); ++c)
          if (!std::isfinite(X(r, c)))
            throw ValidationError(fmt::format("X[{}][{}]", r, c), fmt::format("{} is not a finite number", X(r, c)));
  }

  double one(const Eigen::Ref<const Eigen::VectorXd>& x) const {
    const std::size_t last = layers_.size() - 1;
    Eigen::VectorXd a = (x - mean_).cwiseQuotient(scale_);
    for (std::size_t l = 0; l < last; ++l)
      a = (layers_[l].weights.transpose() * a + layers_[l].bias).cwiseMax(0.0);
    return detail::mlp::sigmoid(layers_[last].weights.col(0).dot(a) + layers_[last].bias(0));
  }

  std::vector<MlpLayer> initial_layers(Eigen::Index d, Rng& rng) const {
    std::vector<MlpLayer> layers;
    Eigen::Index fan_in = d;
    for (std::size_t l = 0; l <= params_.hidden_layers.size(); ++l) {
      const bool output = l == params_.hidden_layers.size();
      const Eigen::Index fan_out = output ? 1 : params_.hidden_layers[l];
      const double sd = output ? std::sqrt(2.0 / static_cast<double>(fan_in + fan_out))   // Glorot
                               : std::sqrt(2.0 / static_cast<double>(fan_in));            // He
      MlpLayer L;
      L.weights.resize(fan_in, fan_out);
      double* w = L.weights.data();
      for (Eigen::Index i = 0; i < L.weights.size(); ++i) w[i] = sd * detail::mlp::standard_normal(rng);
      L.bias = Eigen::VectorXd::Zero(fan_out);
      layers.push_back(std::move(L));
      fan_in = fan_out;
    }
    return layers;
  }

  static std::vector<MlpLayer> zeros_like(const std::vector<MlpLayer>& layers) {
    std::vector<MlpLayer> z(layers.size());
    for (std::size_t l = 0; l < layers.size(); ++l) {
      z[l].weights = Eigen::MatrixXd::Zero(layers[l].weights.rows(), layers[l].weights.cols());
      z[l].bias = Eigen::VectorXd::Zero(layers[l].bias.size());
    }
    return z;
  }

  /// One Adam step (Kingma & Ba 2015, Algorithm 1) with bias-corrected moments.
  void adam_step(std::vector<MlpLayer>& layers, const std::vector<MlpLayer>& grads, std::vector<MlpLayer>& m1,
                 std::vector<MlpLayer>& m2, std::int64_t t) const {
    const double b1 = params_.beta1, b2 = params_.beta2, eps = params_.epsilon, alpha = params_.learning_rate;
    const double c1 = 1.0 - std::pow(b1, static_cast<double>(t)), c2 = 1.0 - std::pow(b2, static_cast<double>(t));
    auto update = [&](auto& theta, const auto& g, auto& m, auto& v) {
      m = b1 * m + (1.0 - b1) * g;
      v = b2 * v + (1.0 - b2) * g.cwiseAbs2();
      theta.array() -= alpha * (m.array() / c1) / ((v.array() / c2).sqrt() + eps);
    };
    for (std::size_t l = 0; l < layers.size(); ++l) {
      update(layers[l].weights, grads[l].weights, m1[l].weights, m2[l].weights);
      update(layers[l].bias, grads[l].bias, m1[l].bias, m2[l].bias);
    }
  }

  static Eigen::VectorXd flatten(const std::vector<MlpLayer>& layers) {
    Eigen::Index n = 0;
    for (const auto& L : layers) n += L.weights.size() + L.bias.size();
    Eigen::VectorXd out(n);
    Eigen::Index at = 0;
    for (const auto& L : layers) {
      out.segment(at, L.weights.size()) = Eigen::Map<const Eigen::VectorXd>(L.weights.data(), L.weights.size());
      at += L.weights.size();
      out.segment(at, L.bias.size()) = L.bias;
      at += L.bias.size();
    }
    return out;
  }

  MlpParams params_;
  std::vector<MlpLayer> layers_;
  Eigen::VectorXd mean_;
  Eigen::VectorXd scale_;
  MlpHistory history_;
};

}  // namespace promptlearn::models
