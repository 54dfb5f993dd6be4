#pragma once
/// @file Bayesian optimisation with an ask/tell interface (issue 6; layer 2, header-only, no I/O, no clock,
/// no threads): a Gaussian process (Matern 5/2 ARD, gaussian_process.hpp) over a search space of
/// continuous, integer and categorical parameters, a space-filling initial design, and expected
/// improvement (or UCB) maximised by multi-start projected L-BFGS.
///
/// Example (one evaluation may take a day: persist to_json() between ask and tell):
///     using namespace promptlearn::optimize;
///     SearchSpace space;
///     space.parameters = {{"temperature", Parameter::Kind::continuous, 0.0, 1.5},
///                         {"max_examples", Parameter::Kind::integer, 0, 8}};
///     BayesianOptimizer bo(space);
///     nlohmann::json next = bo.ask();          // {"temperature": 0.73, "max_examples": 3}
///     bo.tell(next, measured_loss);            // minimised (BayesianParams::minimize)
///     nlohmann::json saved = bo.to_json();     // ... restart ...
///     auto again = BayesianOptimizer::from_json(saved);
///
/// Encoding (internal): every parameter maps to [0, 1] -- continuous linearly (or in log space with
/// log_scale); an integer in [low, high] to the centre of its bin among high - low + 1 equal bins of
/// [T(low - 0.5), T(high + 0.5)] (T = identity or log), decoded by rounding; a categorical parameter to a
/// one-hot block of one coordinate per choice, decoded by argmax. The GP always sees decoded-then-encoded
/// ("snapped") points, so integer and categorical values it models are the ones evaluated (Garrido-Merchan
/// & Hernandez-Lobato 2020 transform the inputs the same way). The acquisition is maximised over the
/// continuous relaxation, then each local optimum and screening candidate is snapped and re-scored, and the
/// best snapped point not already evaluated or pending is returned.
#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/core/stats.hpp"
#include "promptlearn/optimize/gaussian_process.hpp"

namespace promptlearn::optimize {

/// One dimension of the search space.
struct Parameter {
  std::string name;
  enum class Kind { continuous, integer, categorical } kind = Kind::continuous;
  double low = 0, high = 1;          ///< bounds (continuous/integer, inclusive)
  bool log_scale = false;            ///< continuous/integer: search in log space (needs low > 0)
  std::vector<std::string> choices;  ///< categorical
};

/// The parameters to tune, in order.
struct SearchSpace {
  std::vector<Parameter> parameters;

  /// @throws ConfigError naming the key, e.g. `space.parameters[1].high: 0 is not above low = 1`.
  void validate() const {
    if (parameters.empty()) throw ConfigError("space.parameters", "is empty (expected at least one parameter)");
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      const Parameter& p = parameters[i];
      const std::string key = "space.parameters[" + std::to_string(i) + "]";
      if (p.name.empty()) throw ConfigError(key + ".name", "is empty");
      for (std::size_t j = 0; j < i; ++j)
        if (parameters[j].name == p.name)
          throw ConfigError(key + ".name", "\"" + p.name + "\" repeats space.parameters[" + std::to_string(j) + "]");
      if (p.kind == Parameter::Kind::categorical) {
        if (p.choices.empty()) throw ConfigError(key + ".choices", "is empty (expected at least one choice)");
        for (std::size_t a = 0; a < p.choices.size(); ++a)
          for (std::size_t b = 0; b < a; ++b)
            if (p.choices[a] == p.choices[b])
              throw ConfigError(key + ".choices[" + std::to_string(a) + "]", "\"" + p.choices[a] + "\" repeats");
        continue;
      }
      if (!std::isfinite(p.low)) throw ConfigError(key + ".low", "is not a finite number");
      if (!std::isfinite(p.high)) throw ConfigError(key + ".high", "is not a finite number");
      if (p.kind == Parameter::Kind::integer) {
        if (p.low != std::floor(p.low)) throw ConfigError(key + ".low", num(p.low) + " is not an integer");
        if (p.high != std::floor(p.high)) throw ConfigError(key + ".high", num(p.high) + " is not an integer");
        if (p.high < p.low) throw ConfigError(key + ".high", num(p.high) + " is below low = " + num(p.low));
      } else if (!(p.high > p.low)) {
        throw ConfigError(key + ".high", num(p.high) + " is not above low = " + num(p.low));
      }
      if (p.log_scale && !(p.low > 0))
        throw ConfigError(key + ".low", num(p.low) + " must be > 0 with log_scale");
    }
  }

 private:
  static std::string num(double v) { return nlohmann::json(v).dump(); }
};

NLOHMANN_JSON_SERIALIZE_ENUM(Parameter::Kind, {{Parameter::Kind::continuous, "continuous"},
                                               {Parameter::Kind::integer, "integer"},
                                               {Parameter::Kind::categorical, "categorical"}})

/// {"name", "kind": "continuous"|"integer"|"categorical", "low", "high", "log_scale", "choices"}.
inline void to_json(nlohmann::json& j, const Parameter& p) {
  j = {{"name", p.name}, {"kind", p.kind}};
  if (p.kind == Parameter::Kind::categorical) {
    j["choices"] = p.choices;
  } else {
    j["low"] = p.low;
    j["high"] = p.high;
    j["log_scale"] = p.log_scale;
  }
}
/// Missing members take the struct's defaults. @throws ConfigError for an unknown kind.
inline void from_json(const nlohmann::json& j, Parameter& p) {
  p = Parameter{};
  p.name = j.value("name", std::string{});
  if (j.contains("kind")) {
    const std::string k = j.at("kind").get<std::string>();
    if (k == "continuous") p.kind = Parameter::Kind::continuous;
    else if (k == "integer") p.kind = Parameter::Kind::integer;
    else if (k == "categorical") p.kind = Parameter::Kind::categorical;
    else throw ConfigError("kind", "\"" + k + "\" is not one of continuous, integer, categorical");
  }
  p.low = j.value("low", 0.0);
  p.high = j.value("high", 1.0);
  p.log_scale = j.value("log_scale", false);
  p.choices = j.value("choices", std::vector<std::string>{});
}
inline void to_json(nlohmann::json& j, const SearchSpace& s) { j = {{"parameters", s.parameters}}; }
inline void from_json(const nlohmann::json& j, SearchSpace& s) {
  s.parameters = j.at("parameters").get<std::vector<Parameter>>();
}

/// Settings of BayesianOptimizer; defaults are the specification's (initial_points 10, n_iterations 50,
/// expected improvement).
struct BayesianParams {
  int initial_points = 10;                              ///< space-filling (maximin Latin hypercube) points
  int n_iterations = 50;                                ///< model-guided points after the design
  std::string acquisition = "expected_improvement";     ///< or "upper_confidence_bound"
  double ucb_beta = 2.0;                                ///< UCB: mean -/+ sqrt(beta) sd
  double xi = 0.0;                                      ///< EI: improvement margin (standardised units)
  int restarts = 1;                                     ///< random restarts of the hyperparameter fit
  int acquisition_samples = 1000;                       ///< screening points for the acquisition search
  int acquisition_starts = 5;                           ///< local searches started from the best of them
  std::uint64_t seed = 42;
  bool minimize = true;

  /// @throws ConfigError naming the key, e.g. `bayesian.initial_points: 0 is below 1`.
  void validate() const {
    if (initial_points < 1) throw ConfigError("bayesian.initial_points", std::to_string(initial_points) + " is below 1");
    if (n_iterations < 0) throw ConfigError("bayesian.n_iterations", std::to_string(n_iterations) + " is below 0");
    if (acquisition != "expected_improvement" && acquisition != "upper_confidence_bound")
      throw ConfigError("bayesian.acquisition",
                        "\"" + acquisition + "\" is not expected_improvement or upper_confidence_bound");
    if (!(ucb_beta >= 0) || !std::isfinite(ucb_beta))
      throw ConfigError("bayesian.ucb_beta", nlohmann::json(ucb_beta).dump() + " is not a finite number >= 0");
    if (!(xi >= 0) || !std::isfinite(xi))
      throw ConfigError("bayesian.xi", nlohmann::json(xi).dump() + " is not a finite number >= 0");
    if (restarts < 0) throw ConfigError("bayesian.restarts", std::to_string(restarts) + " is below 0");
    if (acquisition_samples < 1)
      throw ConfigError("bayesian.acquisition_samples", std::to_string(acquisition_samples) + " is below 1");
    if (acquisition_starts < 0)
      throw ConfigError("bayesian.acquisition_starts", std::to_string(acquisition_starts) + " is below 0");
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(BayesianParams, initial_points, n_iterations, acquisition, ucb_beta,
                                                xi, restarts, acquisition_samples, acquisition_starts, seed, minimize)

/// An acquisition value with its partial derivatives in the posterior mean and standard deviation.
struct AcquisitionValue {
  double value = 0, d_mean = 0, d_sd = 0;
};

/// Expected improvement below the incumbent `best` (minimisation), closed form (Jones, Schonlau & Welch
/// 1998, eq. 15): with z = (best - mu - xi) / s, EI = (best - mu - xi) Phi(z) + s phi(z);
/// dEI/dmu = -Phi(z), dEI/ds = phi(z). For s = 0 it is max(best - mu - xi, 0).
struct ExpectedImprovement {
  double xi = 0.0;
  AcquisitionValue operator()(double mean, double sd, double best) const {
    const double imp = best - mean - xi;
    if (!(sd > 1e-300)) return {std::max(imp, 0.0), imp > 0 ? -1.0 : 0.0, 0.0};
    const double z = imp / sd, cdf = normal_cdf(z), pdf = std::exp(-0.5 * z * z) * 0.3989422804014327;
    return {imp * cdf + sd * pdf, -cdf, pdf};
  }
};

/// Upper confidence bound for minimisation, as a quantity to maximise: -(mu - sqrt(beta) s)
/// (GP-UCB, Srinivas, Krause, Kakade & Seeger 2010, with a constant beta).
struct UpperConfidenceBound {
  double beta = 2.0;
  AcquisitionValue operator()(double mean, double sd, double /*best*/) const {
    const double k = std::sqrt(beta);
    return {-(mean - k * sd), -1.0, k};
  }
};

/// Bayesian optimisation over a SearchSpace with an ask/tell interface; minimises (or maximises with
/// BayesianParams::minimize = false) an expensive black-box objective.
/// Each ask() after the initial design fits the GP (hyperparameters warm-started from the previous ask,
/// plus `restarts` random restarts), screens `acquisition_samples` uniform points and Gaussian
/// perturbations of the three best observations, runs projected L-BFGS from the `acquisition_starts` best,
/// and returns the best snapped point. Asks still pending (asked, not told) enter the GP with the
/// incumbent's value ("constant liar", Ginsbourger, Le Riche & Carraro 2010) so that several asks in a row
/// spread out. Deterministic given the seed; to_json() holds the full state (observations, pending asks,
/// design, hyperparameters and the RNG position), so ask() after from_json() returns what it would have.
/// Thread-safety: none; use one optimizer per thread or lock around it.
class BayesianOptimizer {
 public:
  /// @throws ConfigError from SearchSpace::validate or BayesianParams::validate.
  explicit BayesianOptimizer(SearchSpace space, BayesianParams params = {})
      : space_(std::move(space)), params_(std::move(params)), rng_(params_.seed) {
    space_.validate();
    params_.validate();
    dim_ = 0;
    for (const Parameter& p : space_.parameters)
      dim_ += p.kind == Parameter::Kind::categorical ? static_cast<Eigen::Index>(p.choices.size()) : 1;
  }

  const SearchSpace& space() const noexcept { return space_; }
  const BayesianParams& params() const noexcept { return params_; }
  /// Number of coordinates of the internal [0, 1] encoding.
  Eigen::Index encoded_dim() const noexcept { return dim_; }

  /// The next parameters to evaluate, as {name: value} (numbers; integer parameters as JSON integers;
  /// categorical as the choice string). The point is recorded as pending until told.
  nlohmann::json ask() {
    nlohmann::json p = decode(next_point());
    pending_.push_back(p);
    pending_enc_.push_back(encode(p, "params"));
    return p;
  }

  /// Records the objective's value at `params` (which need not have come from ask()); removes the matching
  /// pending ask if there is one.
  /// @throws ValidationError naming the field: `params.NAME` (unknown, missing, wrong type, not an integer,
  /// outside the bounds, not a choice) or `value` (not finite).
  void tell(const nlohmann::json& params, double value) {
    const Eigen::VectorXd u = encode(params, "params");
    if (!std::isfinite(value)) throw ValidationError("value", nlohmann::json(value).dump() + " is not a finite number");
    for (std::size_t i = 0; i < pending_.size(); ++i)
      if (pending_[i] == normalized(params)) {
        pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
        pending_enc_.erase(pending_enc_.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    obs_params_.push_back(normalized(params));
    obs_enc_.push_back(u);
    obs_value_.push_back(value);
  }

  /// The best parameters told so far and their value (lowest when minimising), or nullopt before any tell.
  std::optional<std::pair<nlohmann::json, double>> best() const {
    if (obs_value_.empty()) return std::nullopt;
    std::size_t b = 0;
    for (std::size_t i = 1; i < obs_value_.size(); ++i)
      if (params_.minimize ? obs_value_[i] < obs_value_[b] : obs_value_[i] > obs_value_[b]) b = i;
    return std::make_pair(obs_params_[b], obs_value_[b]);
  }

  std::size_t evaluations() const noexcept { return obs_value_.size(); }
  /// Asks returned and not yet told.
  std::size_t pending() const noexcept { return pending_.size(); }
  /// True after initial_points + n_iterations tells.
  bool done() const noexcept {
    return obs_value_.size() >= static_cast<std::size_t>(params_.initial_points) + static_cast<std::size_t>(params_.n_iterations);
  }

  /// Runs ask / objective / tell until done(); returns the best parameters.
  nlohmann::json optimize(const std::function<double(const nlohmann::json&)>& objective) {
    while (!done()) {
      nlohmann::json p = ask();
      tell(p, objective(p));
    }
    return best() ? best()->first : nlohmann::json::object();
  }

  /// The full state: {"format", "version", "space", "params", "rng", "design", "design_next",
  /// "observations": [{"params", "value"}], "pending", "hyperparameters"}.
  nlohmann::json to_json() const {
    std::ostringstream rng;
    Rng copy = rng_;
    rng << copy.engine();
    nlohmann::json design = nlohmann::json::array();
    for (const Eigen::VectorXd& d : design_) design.push_back(std::vector<double>(d.data(), d.data() + d.size()));
    nlohmann::json obs = nlohmann::json::array();
    for (std::size_t i = 0; i < obs_value_.size(); ++i) obs.push_back({{"params", obs_params_[i]}, {"value", obs_value_[i]}});
    return {{"format", "promptlearn.bayesian_optimizer"},
            {"version", 1},
            {"space", space_},
            {"params", params_},
            {"rng", rng.str()},
            {"design", design},
            {"design_next", design_next_},
            {"observations", obs},
            {"pending", pending_},
            {"hyperparameters", std::vector<double>(theta_.data(), theta_.data() + theta_.size())}};
  }

  /// Restores an optimizer saved by to_json().
  /// @throws ConfigError for a wrong format or an invalid space / params; ValidationError for bad points.
  static BayesianOptimizer from_json(const nlohmann::json& j) {
    if (j.value("format", std::string{}) != "promptlearn.bayesian_optimizer")
      throw ConfigError("format", "expected \"promptlearn.bayesian_optimizer\"");
    if (j.value("version", 0) != 1) throw ConfigError("version", j.value("version", nlohmann::json()).dump() + " is not 1");
    BayesianOptimizer bo(j.at("space").get<SearchSpace>(), j.at("params").get<BayesianParams>());
    std::istringstream rng(j.at("rng").get<std::string>());
    rng >> bo.rng_.engine();
    if (!rng) throw ConfigError("rng", "is not a saved mt19937_64 state");
    for (const auto& d : j.at("design")) {
      const std::vector<double> v = d.get<std::vector<double>>();
      if (static_cast<Eigen::Index>(v.size()) != bo.dim_)
        throw ConfigError("design", "point of size " + std::to_string(v.size()) + ", expected " + std::to_string(bo.dim_));
      bo.design_.push_back(Eigen::Map<const Eigen::VectorXd>(v.data(), bo.dim_));
    }
    bo.design_next_ = j.at("design_next").get<std::size_t>();
    for (const auto& o : j.at("observations")) bo.tell(o.at("params"), o.at("value").get<double>());
    for (const auto& p : j.at("pending")) {
      bo.pending_enc_.push_back(bo.encode(p, "pending"));
      bo.pending_.push_back(bo.normalized(p));
    }
    const std::vector<double> t = j.at("hyperparameters").get<std::vector<double>>();
    bo.theta_ = Eigen::Map<const Eigen::VectorXd>(t.data(), static_cast<Eigen::Index>(t.size()));
    return bo;
  }

  /// [0, 1]^encoded_dim coordinates of a parameter object (see the file comment).
  /// @throws ValidationError with paths `<where>.NAME`.
  Eigen::VectorXd encode(const nlohmann::json& params, const std::string& where = "params") const {
    if (!params.is_object()) throw ValidationError(where, "expected a JSON object, got " + params.dump());
    for (const auto& item : params.items())
      if (index_of(item.key()) < 0) throw ValidationError(where + "." + item.key(), "is not a parameter of the space");
    Eigen::VectorXd u = Eigen::VectorXd::Zero(dim_);
    Eigen::Index c = 0;
    for (const Parameter& p : space_.parameters) {
      const std::string path = where + "." + p.name;
      if (!params.contains(p.name)) throw ValidationError(path, "is missing");
      const nlohmann::json& v = params.at(p.name);
      if (p.kind == Parameter::Kind::categorical) {
        if (!v.is_string()) throw ValidationError(path, v.dump() + " is not a string (expected one of the choices)");
        const auto it = std::find(p.choices.begin(), p.choices.end(), v.get<std::string>());
        if (it == p.choices.end()) throw ValidationError(path, v.dump() + " is not one of the choices");
        u(c + (it - p.choices.begin())) = 1.0;
        c += static_cast<Eigen::Index>(p.choices.size());
        continue;
      }
      if (!v.is_number()) throw ValidationError(path, v.dump() + " is not a number");
      const double x = v.get<double>();
      if (!std::isfinite(x)) throw ValidationError(path, v.dump() + " is not a finite number");
      if (p.kind == Parameter::Kind::integer && x != std::floor(x)) throw ValidationError(path, v.dump() + " is not an integer");
      if (x < p.low || x > p.high)
        throw ValidationError(path, v.dump() + " is outside [" + nlohmann::json(p.low).dump() + ", " +
                                        nlohmann::json(p.high).dump() + "]");
      const auto [a, b] = edges(p);
      u(c++) = std::clamp((transform(p, x) - a) / (b - a), 0.0, 1.0);
    }
    return u;
  }

  /// The parameter object of a point of [0, 1]^encoded_dim (integers rounded, categorical by argmax).
  nlohmann::json decode(const Eigen::Ref<const Eigen::VectorXd>& u) const {
    nlohmann::json out = nlohmann::json::object();
    Eigen::Index c = 0;
    for (const Parameter& p : space_.parameters) {
      if (p.kind == Parameter::Kind::categorical) {
        const auto k = static_cast<Eigen::Index>(p.choices.size());
        Eigen::Index arg = 0;
        for (Eigen::Index i = 1; i < k; ++i)
          if (u(c + i) > u(c + arg)) arg = i;
        out[p.name] = p.choices[static_cast<std::size_t>(arg)];
        c += k;
        continue;
      }
      const auto [a, b] = edges(p);
      const double t = a + std::clamp(u(c++), 0.0, 1.0) * (b - a);
      double x = p.log_scale ? std::exp(t) : t;
      if (p.kind == Parameter::Kind::integer)
        out[p.name] = static_cast<std::int64_t>(std::clamp(std::round(x), p.low, p.high));
      else
        out[p.name] = std::clamp(x, p.low, p.high);
    }
    return out;
  }

 private:
  // Transformed bin edges: [T(low), T(high)] for continuous, [T(low - 0.5), T(high + 0.5)] for integers.
  static std::pair<double, double> edges(const Parameter& p) {
    const double h = p.kind == Parameter::Kind::integer ? 0.5 : 0.0;
    return {transform(p, p.low - h), transform(p, p.high + h)};
  }
  static double transform(const Parameter& p, double x) { return p.log_scale ? std::log(x) : x; }

  long index_of(const std::string& name) const {
    for (std::size_t i = 0; i < space_.parameters.size(); ++i)
      if (space_.parameters[i].name == name) return static_cast<long>(i);
    return -1;
  }
  // Parameters in space order with integers as JSON integers (so equal points compare equal).
  nlohmann::json normalized(const nlohmann::json& params) const {
    nlohmann::json out = nlohmann::json::object();
    for (const Parameter& p : space_.parameters) {
      const nlohmann::json& v = params.at(p.name);
      if (p.kind == Parameter::Kind::integer) out[p.name] = static_cast<std::int64_t>(v.get<double>());
      else out[p.name] = v;
    }
    return out;
  }
  // encode(decode(u)) without the JSON round trip: clamp continuous coordinates, move an integer's to the
  // centre of its bin, make a categorical block one-hot at its argmax.
  Eigen::VectorXd snap(const Eigen::Ref<const Eigen::VectorXd>& u) const {
    Eigen::VectorXd s = u.cwiseMax(0.0).cwiseMin(1.0);
    Eigen::Index c = 0;
    for (const Parameter& p : space_.parameters) {
      if (p.kind == Parameter::Kind::categorical) {
        const auto k = static_cast<Eigen::Index>(p.choices.size());
        Eigen::Index arg = 0;
        for (Eigen::Index i = 1; i < k; ++i)
          if (u(c + i) > u(c + arg)) arg = i;
        s.segment(c, k).setZero();
        s(c + arg) = 1.0;
        c += k;
      } else if (p.kind == Parameter::Kind::integer) {
        const auto [a, b] = edges(p);
        const double t = a + s(c) * (b - a);
        const double x = std::clamp(std::round(p.log_scale ? std::exp(t) : t), p.low, p.high);
        s(c++) = std::clamp((transform(p, x) - a) / (b - a), 0.0, 1.0);
      } else {
        ++c;
      }
    }
    return s;
  }

  Eigen::VectorXd random_point() {
    Eigen::VectorXd u(dim_);
    for (Eigen::Index i = 0; i < dim_; ++i) u(i) = detail::unit_uniform(rng_);
    return u;
  }

  // Maximin Latin hypercube: the best of 20 random LHS designs by smallest pairwise distance
  // (Morris & Mitchell 1995). Permutations by Fisher-Yates on raw draws.
  std::vector<Eigen::VectorXd> latin_hypercube(int n) {
    std::vector<Eigen::VectorXd> best;
    double best_d = -1;
    for (int trial = 0; trial < 20; ++trial) {
      Eigen::MatrixXd D(n, dim_);
      for (Eigen::Index j = 0; j < dim_; ++j) {
        std::vector<int> perm(static_cast<std::size_t>(n));
        std::iota(perm.begin(), perm.end(), 0);
        for (std::size_t i = perm.size(); i > 1; --i) {
          const std::uint64_t bound = i, reject_below = (0 - bound) % bound;
          std::uint64_t r = rng_.next_u64();
          while (r < reject_below) r = rng_.next_u64();
          std::swap(perm[i - 1], perm[static_cast<std::size_t>(r % bound)]);
        }
        for (int i = 0; i < n; ++i) D(i, j) = (perm[static_cast<std::size_t>(i)] + detail::unit_uniform(rng_)) / n;
      }
      double mind = std::numeric_limits<double>::infinity();
      for (int a = 0; a < n; ++a)
        for (int b = 0; b < a; ++b) mind = std::min(mind, (D.row(a) - D.row(b)).squaredNorm());
      if (mind > best_d) {
        best_d = mind;
        best.clear();
        for (int i = 0; i < n; ++i) best.push_back(D.row(i).transpose());
      }
    }
    return best;
  }

  bool is_known(const Eigen::VectorXd& u) const {
    for (const auto& o : obs_enc_)
      if ((o - u).squaredNorm() < 1e-20) return true;
    for (const auto& o : pending_enc_)
      if ((o - u).squaredNorm() < 1e-20) return true;
    return false;
  }

  Eigen::VectorXd next_point() {
    const std::size_t n_obs = obs_value_.size(), n_pend = pending_enc_.size();
    if (n_obs == 0 || n_obs + n_pend < static_cast<std::size_t>(params_.initial_points)) {
      if (design_.empty()) design_ = latin_hypercube(params_.initial_points);
      if (design_next_ < design_.size()) return design_[design_next_++];
      return random_point();
    }
    return model_point();
  }

  Eigen::VectorXd model_point() {
    const std::size_t n_obs = obs_value_.size(), n = n_obs + pending_enc_.size();
    Eigen::MatrixXd X(static_cast<Eigen::Index>(n), dim_);
    Eigen::VectorXd y(static_cast<Eigen::Index>(n));
    double incumbent = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < n_obs; ++i) {
      X.row(static_cast<Eigen::Index>(i)) = obs_enc_[i].transpose();
      y(static_cast<Eigen::Index>(i)) = params_.minimize ? obs_value_[i] : -obs_value_[i];
      incumbent = std::min(incumbent, y(static_cast<Eigen::Index>(i)));
    }
    for (std::size_t i = 0; i < pending_enc_.size(); ++i) {  // constant liar
      X.row(static_cast<Eigen::Index>(n_obs + i)) = pending_enc_[i].transpose();
      y(static_cast<Eigen::Index>(n_obs + i)) = incumbent;
    }
    GaussianProcess<> gp{Matern52Ard(dim_)};
    if (theta_.size() == dim_ + 2) gp.set_hyperparameters(theta_);
    gp.set_data(X, y);
    gp.fit_hyperparameters(rng_, params_.restarts);
    theta_ = gp.hyperparameters();
    const double best_n = gp.normalized_targets().minCoeff();

    const bool ei = params_.acquisition == "expected_improvement";
    const ExpectedImprovement eif{params_.xi};
    const UpperConfidenceBound ucb{params_.ucb_beta};
    auto acq = [&](double mu, double var) {
      return ei ? eif(mu, std::sqrt(var), best_n) : ucb(mu, std::sqrt(var), best_n);
    };

    // Screening: uniform points plus perturbations of the three best observations.
    std::vector<std::size_t> order(n_obs);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return y(static_cast<Eigen::Index>(a)) < y(static_cast<Eigen::Index>(b));
    });
    const int n_local_per = 30, n_top = static_cast<int>(std::min<std::size_t>(3, n_obs));
    const Eigen::Index m = params_.acquisition_samples + n_top * n_local_per;
    Eigen::MatrixXd C(m, dim_);
    Eigen::Index row = 0;
    for (; row < params_.acquisition_samples; ++row) C.row(row) = random_point().transpose();
    for (int t = 0; t < n_top; ++t)
      for (int k = 0; k < n_local_per; ++k, ++row) {
        const double sd = k % 2 == 0 ? 0.05 : 0.005;
        for (Eigen::Index i = 0; i < dim_; ++i)
          C(row, i) = std::clamp(obs_enc_[order[static_cast<std::size_t>(t)]](i) + sd * detail::standard_normal(rng_), 0.0, 1.0);
      }
    Eigen::VectorXd mu, var;
    gp.predict_normalized_batch(C, mu, var);
    std::vector<std::pair<double, Eigen::Index>> scored(static_cast<std::size_t>(m));
    for (Eigen::Index i = 0; i < m; ++i) scored[static_cast<std::size_t>(i)] = {acq(mu(i), var(i)).value, i};
    std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });

    // Local searches on -acquisition from the best screening points.
    auto neg = [&](const Eigen::VectorXd& x, Eigen::VectorXd& g) {
      double mu1 = 0, var1 = 0;
      Eigen::VectorXd dmu, dvar;
      gp.predict_normalized(x, mu1, var1, &dmu, &dvar);
      const double sd = std::sqrt(var1);
      const AcquisitionValue a = acq(mu1, var1);
      g = -(a.d_mean * dmu + (sd > 1e-12 ? a.d_sd / (2 * sd) : 0.0) * dvar);
      return -a.value;
    };
    const Eigen::VectorXd lo = Eigen::VectorXd::Zero(dim_), hi = Eigen::VectorXd::Ones(dim_);
    std::vector<Eigen::VectorXd> cands;
    const int starts = std::min<int>(params_.acquisition_starts, static_cast<int>(m));
    for (int s = 0; s < starts; ++s) {
      const Eigen::VectorXd x0 = C.row(scored[static_cast<std::size_t>(s)].second).transpose();
      cands.push_back(detail::minimize_box(neg, x0, lo, hi, 50, 1e-9, 1e-12).x);
    }
    for (const auto& sc : scored) cands.push_back(C.row(sc.second).transpose());

    // Snap, re-score, and return the best point not evaluated or pending: the local optima and the best 50
    // screening points first; only when all of those are known (a small discrete space) the rest in order.
    Eigen::VectorXd best_u;
    double best_a = -std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < cands.size(); ++i) {
      if (i >= static_cast<std::size_t>(starts) + 50 && best_u.size() > 0) break;
      const Eigen::VectorXd s = snap(cands[i]);
      if (is_known(s)) continue;
      double mu1 = 0, var1 = 0;
      gp.predict_normalized(s, mu1, var1, nullptr, nullptr);
      const double a = acq(mu1, var1).value;
      if (a > best_a) {
        best_a = a;
        best_u = s;
      }
    }
    if (best_u.size() == 0) return random_point();  // every candidate already evaluated (small discrete space)
    return best_u;
  }

  SearchSpace space_;
  BayesianParams params_;
  Rng rng_;
  Eigen::Index dim_ = 0;
  std::vector<Eigen::VectorXd> design_;
  std::size_t design_next_ = 0;
  std::vector<nlohmann::json> obs_params_;
  std::vector<Eigen::VectorXd> obs_enc_;
  std::vector<double> obs_value_;
  std::vector<nlohmann::json> pending_;
  std::vector<Eigen::VectorXd> pending_enc_;
  Eigen::VectorXd theta_;  // GP hyperparameters of the last ask (warm start of the next)
};

}  // namespace promptlearn::optimize
