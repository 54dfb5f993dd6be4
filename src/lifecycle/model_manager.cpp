// The predictive models in the engine: training rows from the file, fitting, held-out metrics,
// checkpoints in `models`, predictions from the active versions.
#include "promptlearn/lifecycle/model_manager.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>

#include "promptlearn/collect/collector.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/core/stats.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/models/cross_validation.hpp"
#include "promptlearn/models/forest.hpp"
#include "promptlearn/models/gbm.hpp"
#include "promptlearn/models/mlp.hpp"
#include "promptlearn/store/store.hpp"

namespace promptlearn {

/// The active versions, with what turns a (context, template) into a model input.
struct ModelManager::Loaded {
  std::shared_ptr<const models::QualityPredictor> quality;
  std::shared_ptr<const models::TemplateClassifier> classifier;
  std::shared_ptr<const models::PatternNet> success;
  std::int64_t quality_version = 0, classifier_version = 0, success_version = 0;
  // Per model: context dimension and the templates of the one-hot code (sorted).
  Eigen::Index quality_dim = 0, classifier_dim = 0, success_dim = 0;
  std::vector<std::string> quality_templates, success_templates;
};

namespace {

constexpr const char* kFormat = "promptlearn.model.v1";

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// The input row of a (context, template) pair: the context, then the template's one-hot code.
Eigen::VectorXd input_row(const Eigen::VectorXd& context, const std::vector<std::string>& templates,
                          const std::string& template_id) {
  Eigen::VectorXd x = Eigen::VectorXd::Zero(context.size() + static_cast<Eigen::Index>(templates.size()));
  x.head(context.size()) = context;
  const auto it = std::lower_bound(templates.begin(), templates.end(), template_id);
  if (it != templates.end() && *it == template_id) x(context.size() + (it - templates.begin())) = 1.0;
  return x;
}

void check_dimension(const char* model, const Eigen::VectorXd& context, Eigen::Index expected) {
  if (context.size() != expected)
    throw ValidationError("context", fmt::format("has {} values; the {} model was trained on {}", context.size(), model, expected));
}

/// Training rows parsed: contexts of the newest row's dimension (others counted and left out).
struct Data {
  Eigen::MatrixXd contexts;
  std::vector<std::string> templates;           // per row
  std::vector<std::optional<double>> quality;   // per row
  std::vector<std::optional<bool>> success;     // per row
  std::size_t read = 0, other_dimension = 0, unreadable = 0;
};

Data parse_rows(const std::vector<store::ModelDataRow>& rows) {
  Data d;
  d.read = rows.size();
  std::vector<std::vector<double>> ctx;
  std::size_t dim = 0;
  for (const auto& r : rows) {
    nlohmann::json j = nlohmann::json::parse(r.context, nullptr, false);
    if (!j.is_array() || j.empty()) {
      ++d.unreadable;
      continue;
    }
    std::vector<double> v;
    v.reserve(j.size());
    bool ok = true;
    for (const auto& e : j) {
      if (!e.is_number() || !std::isfinite(e.get<double>())) {
        ok = false;
        break;
      }
      v.push_back(e.get<double>());
    }
    if (!ok) {
      ++d.unreadable;
      continue;
    }
    if (dim == 0) dim = v.size();
    if (v.size() != dim) {
      ++d.other_dimension;
      continue;
    }
    ctx.push_back(std::move(v));
    d.templates.push_back(r.template_id);
    d.quality.push_back(r.quality);
    std::optional<bool> success;
    if (r.quality) success = *r.quality >= 7.0;
    else if (r.acceptance) success = *r.acceptance >= 0.5;
    d.success.push_back(success);
  }
  d.contexts.resize(static_cast<Eigen::Index>(ctx.size()), static_cast<Eigen::Index>(dim));
  for (std::size_t i = 0; i < ctx.size(); ++i)
    d.contexts.row(static_cast<Eigen::Index>(i)) = Eigen::Map<const Eigen::RowVectorXd>(ctx[i].data(), static_cast<Eigen::Index>(dim));
  return d;
}

/// The templates of rows `idx`.
std::vector<std::string> templates_of(const Data& d, const std::vector<Eigen::Index>& idx) {
  std::vector<std::string> ids;
  for (Eigen::Index i : idx) ids.push_back(d.templates[static_cast<std::size_t>(i)]);
  return ids;
}

/// The input rows (context + one-hot template) of rows `idx`.
Eigen::MatrixXd design_matrix(const Data& d, const std::vector<Eigen::Index>& idx, const std::vector<std::string>& ids,
                              const std::vector<std::string>& templates) {
  Eigen::MatrixXd X(static_cast<Eigen::Index>(idx.size()), d.contexts.cols() + static_cast<Eigen::Index>(templates.size()));
  for (std::size_t k = 0; k < idx.size(); ++k)
    X.row(static_cast<Eigen::Index>(k)) = input_row(d.contexts.row(idx[k]).transpose(), templates, ids[k]).transpose();
  return X;
}

std::vector<std::string> sorted_templates(const std::vector<std::string>& ids) {
  std::set<std::string> s(ids.begin(), ids.end());
  return {s.begin(), s.end()};
}

/// Writes a new active version of `name` (the previous active retired, old ones pruned).
std::int64_t checkpoint(store::Store& st, const std::string& name, const nlohmann::json& state,
                        const nlohmann::json& metrics, int keep, TimeMs now) {
  store::Transaction tx(st.db());
  const std::int64_t version = st.max_model_version(name) + 1;
  if (auto prev = st.latest_model(name, "active")) st.set_model_status(name, prev->version, "retired");
  const std::vector<std::uint8_t> blob = nlohmann::json::to_cbor(state);
  st.put_model({name, version, std::string(blob.begin(), blob.end()), metrics.dump(), "active", now});
  st.prune_models(name, keep);
  st.audit(now, "engine", "model_trained", nlohmann::json{{"model", name}, {"version", version}, {"metrics", metrics}}.dump());
  tx.commit();
  return version;
}

/// The state stored for a model: its input layout and the model's own JSON.
nlohmann::json state_of(const nlohmann::json& model, Eigen::Index dim, const std::vector<std::string>& templates) {
  return {{"format", kFormat}, {"context_dimension", dim}, {"templates", templates}, {"model", model}};
}

const nlohmann::json& field(const nlohmann::json& j, const std::string& name, const std::string& model) {
  if (!j.is_object() || !j.contains(name)) throw ValidationError(model + "." + name, "is missing");
  return j.at(name);
}

}  // namespace

nlohmann::json to_json(const ModelTrainingReport& r) {
  return {{"rows", r.rows}, {"trained", r.trained}, {"skipped", r.skipped}, {"metrics", r.metrics}};
}

ModelManager::ModelManager(Collector& collector, const Config& config, const Clock& clock)
    : collector_(collector), config_(config), clock_(clock) {
  refresh();
}

ModelManager::~ModelManager() = default;

std::shared_ptr<const ModelManager::Loaded> ModelManager::snapshot() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return loaded_;
}

void ModelManager::refresh() {
  const auto current = snapshot();
  auto fresh = current ? std::make_shared<Loaded>(*current) : std::make_shared<Loaded>();
  collector_.with_store([&](store::Store& st) {
    // Reloads `name` when its active version differs from the loaded one (parsing a forest's state is
    // the expensive part, so an unchanged version is kept as it is).
    auto load = [&](const char* name, std::int64_t loaded_version, auto&& restore) -> std::int64_t {
      const auto active = st.active_model_version(name);
      if (active == loaded_version) return loaded_version;
      auto row = st.model(name, active);
      if (!row) return 0;
      nlohmann::json state = nlohmann::json::from_cbor(row->state, true, false);
      if (state.is_discarded() || !state.is_object() || state.value("format", "") != kFormat)
        throw StorageError(-1, fmt::format("models row {} v{} is not a {} state", name, row->version, kFormat));
      try {
        restore(state);
      } catch (const Error& e) {
        throw StorageError(-1, fmt::format("models row {} v{}: {}", name, row->version, e.what()));
      } catch (const nlohmann::json::exception& e) {
        throw StorageError(-1, fmt::format("models row {} v{}: {}", name, row->version, e.what()));
      }
      return row->version;
    };
    fresh->quality_version = load(kQualityModel, fresh->quality_version, [&](const nlohmann::json& s) {
      fresh->quality_dim = field(s, "context_dimension", kQualityModel).get<Eigen::Index>();
      fresh->quality_templates = field(s, "templates", kQualityModel).get<std::vector<std::string>>();
      fresh->quality = std::make_shared<const models::QualityPredictor>(
          models::QualityPredictor::from_json(field(s, "model", kQualityModel)));
    });
    fresh->classifier_version = load(kTemplateModel, fresh->classifier_version, [&](const nlohmann::json& s) {
      fresh->classifier_dim = field(s, "context_dimension", kTemplateModel).get<Eigen::Index>();
      fresh->classifier = std::make_shared<const models::TemplateClassifier>(
          models::TemplateClassifier::from_json(field(s, "model", kTemplateModel)));
    });
    fresh->success_version = load(kSuccessModel, fresh->success_version, [&](const nlohmann::json& s) {
      fresh->success_dim = field(s, "context_dimension", kSuccessModel).get<Eigen::Index>();
      fresh->success_templates = field(s, "templates", kSuccessModel).get<std::vector<std::string>>();
      fresh->success = std::make_shared<const models::PatternNet>(models::PatternNet::from_json(field(s, "model", kSuccessModel)));
    });
    if (fresh->quality_version == 0) fresh->quality.reset();
    if (fresh->classifier_version == 0) fresh->classifier.reset();
    if (fresh->success_version == 0) fresh->success.reset();
  });
  const std::lock_guard<std::mutex> lock(mutex_);
  loaded_ = std::move(fresh);
}

ModelTrainingReport ModelManager::train(TimeMs now) {
  ModelTrainingReport report;
  const auto rows = collector_.with_store([&](store::Store& st) { return st.model_training_rows(kMaxTrainingRows); });
  const Data d = parse_rows(rows);
  report.rows = d.read;
  const auto& mt = config_.learning.model_training;
  const int keep = config_.learning.data_retention.model_checkpoints_kept;
  const Eigen::Index dim = d.contexts.cols();
  const auto n = static_cast<Eigen::Index>(d.templates.size());
  auto skip = [&](const char* name, const std::string& why) { report.skipped.push_back(std::string(name) + ": " + why); };
  if (d.other_dimension + d.unreadable > 0)
    report.metrics["left_out"] = {{"other_context_dimension", d.other_dimension}, {"unreadable_context", d.unreadable}};

  // quality_predictor: rows with a quality score.
  {
    std::vector<Eigen::Index> idx;
    for (Eigen::Index i = 0; i < n; ++i)
      if (d.quality[static_cast<std::size_t>(i)]) idx.push_back(i);
    if (idx.size() < kMinTrainingRows) {
      skip(kQualityModel, fmt::format("{} rows with a quality score (need {})", idx.size(), kMinTrainingRows));
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      const std::vector<std::string> ids = templates_of(d, idx), templates = sorted_templates(ids);
      const Eigen::MatrixXd X = design_matrix(d, idx, ids, templates);
      Eigen::VectorXd y(X.rows());
      for (std::size_t k = 0; k < idx.size(); ++k) y(static_cast<Eigen::Index>(k)) = *d.quality[static_cast<std::size_t>(idx[k])];
      const models::Split split = models::train_validation_split(X.rows(), 0.2, mt.random_seed);
      models::QualityPredictorParams p;
      p.gbm.validation_split = mt.validation_split;
      p.gbm.early_stopping_patience = mt.early_stopping_patience;
      p.gbm.seed = mt.random_seed;
      models::QualityPredictor qp(p);
      qp.fit(models::take_rows(X, split.train), models::take_values(y, split.train));
      double se = 0, ss = 0, covered = 0;
      RunningMoments mean;
      for (Eigen::Index r : split.validation) mean.add(y(r));
      for (Eigen::Index r : split.validation) {
        const Eigen::VectorXd row = X.row(r).transpose();
        const models::QualityPrediction q = qp.predict_quality(row.data());
        se += (q.predicted_quality - y(r)) * (q.predicted_quality - y(r));
        ss += (y(r) - mean.mean()) * (y(r) - mean.mean());
        covered += (y(r) >= q.ci_low && y(r) <= q.ci_high) ? 1 : 0;
      }
      const double m = static_cast<double>(split.validation.size());
      const nlohmann::json metrics = {{"rows", idx.size()},
                                      {"templates", templates.size()},
                                      {"heldout_rows", split.validation.size()},
                                      {"heldout_rmse", std::sqrt(se / m)},
                                      {"heldout_r2", ss > 0 ? 1 - se / ss : 0.0},
                                      {"heldout_interval_coverage", covered / m},
                                      {"interval_level", p.interval_level},
                                      {"fit_seconds", seconds_since(t0)}};
      collector_.with_store([&](store::Store& st) {
        checkpoint(st, kQualityModel, state_of(qp.to_json(), dim, templates), metrics, keep, now);
      });
      report.trained.push_back(kQualityModel);
      report.metrics[kQualityModel] = metrics;
    }
  }

  // template_classifier: the contexts of successful decisions, labelled by their template.
  {
    std::vector<Eigen::Index> idx;
    for (Eigen::Index i = 0; i < n; ++i)
      if (d.success[static_cast<std::size_t>(i)].value_or(false)) idx.push_back(i);
    const std::vector<std::string> ids = templates_of(d, idx);
    const std::size_t distinct = sorted_templates(ids).size();
    models::CalibrationParams cp;
    cp.seed = mt.random_seed;
    // Each class needs a row in every calibration fold's training part.
    std::map<std::string, std::size_t> per_template;
    for (const auto& t : ids) ++per_template[t];
    std::size_t rarest = ids.empty() ? 0 : ids.size();
    for (const auto& [t, c] : per_template) rarest = std::min(rarest, c);
    if (idx.size() < kMinTrainingRows || distinct < 2) {
      skip(kTemplateModel, fmt::format("{} successful rows over {} templates (need {} over >= 2)", idx.size(), distinct,
                                       kMinTrainingRows));
    } else if (rarest < static_cast<std::size_t>(cp.folds)) {
      skip(kTemplateModel, fmt::format("a template has {} successful rows (need {} for the calibration folds)", rarest, cp.folds));
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      const Eigen::MatrixXd X = models::take_rows(d.contexts, idx);
      const models::Split split = models::train_validation_split(X.rows(), 0.2, mt.random_seed);
      std::vector<std::string> train_ids, test_ids;
      for (Eigen::Index r : split.train) train_ids.push_back(ids[static_cast<std::size_t>(r)]);
      for (Eigen::Index r : split.validation) test_ids.push_back(ids[static_cast<std::size_t>(r)]);
      models::ForestParams fp;
      fp.seed = mt.random_seed;
      models::TemplateClassifier tc(fp, cp);
      tc.fit(models::take_rows(X, split.train), train_ids);
      double hits = 0, log_loss = 0;
      for (std::size_t k = 0; k < split.validation.size(); ++k) {
        const auto ranked = tc.predict_template(X.row(split.validation[k]).transpose());
        hits += !ranked.empty() && ranked.front().template_id == test_ids[k];
        double p = 0;
        for (const auto& s : ranked)
          if (s.template_id == test_ids[k]) p = s.probability;
        log_loss -= std::log(std::clamp(p, 1e-15, 1.0));
      }
      const double m = static_cast<double>(split.validation.size());
      const nlohmann::json metrics = {{"rows", idx.size()},
                                      {"templates", distinct},
                                      {"heldout_rows", split.validation.size()},
                                      {"heldout_accuracy", hits / m},
                                      {"heldout_log_loss", log_loss / m},
                                      {"fit_seconds", seconds_since(t0)}};
      collector_.with_store([&](store::Store& st) {
        checkpoint(st, kTemplateModel, state_of(tc.to_json(), dim, {}), metrics, keep, now);
      });
      report.trained.push_back(kTemplateModel);
      report.metrics[kTemplateModel] = metrics;
    }
  }

  // success_net: rows whose outcome says success or not.
  {
    std::vector<Eigen::Index> idx;
    std::size_t positives = 0;
    for (Eigen::Index i = 0; i < n; ++i)
      if (const auto s = d.success[static_cast<std::size_t>(i)]) idx.push_back(i), positives += *s;
    if (idx.size() < kMinTrainingRows || positives == 0 || positives == idx.size()) {
      skip(kSuccessModel, fmt::format("{} rows with an outcome, {} successful (need {} with both kinds)", idx.size(),
                                      positives, kMinTrainingRows));
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      const std::vector<std::string> ids = templates_of(d, idx), templates = sorted_templates(ids);
      const Eigen::MatrixXd X = design_matrix(d, idx, ids, templates);
      Eigen::VectorXd y(X.rows());
      for (std::size_t k = 0; k < idx.size(); ++k) y(static_cast<Eigen::Index>(k)) = *d.success[static_cast<std::size_t>(idx[k])] ? 1.0 : 0.0;
      const models::Split split = models::train_validation_split(X.rows(), 0.2, mt.random_seed);
      models::MlpParams p;
      p.batch_size = mt.batch_size;
      p.max_epochs = mt.max_epochs;
      p.validation_split = mt.validation_split;
      p.early_stopping_patience = mt.early_stopping_patience;
      p.seed = mt.random_seed;
      models::PatternNet net(p);
      net.fit(models::take_rows(X, split.train), models::take_values(y, split.train));
      const Eigen::VectorXd prob = net.predict_proba(models::take_rows(X, split.validation));
      double hits = 0, log_loss = 0, base = 0;
      for (std::size_t k = 0; k < split.validation.size(); ++k) base += y(split.validation[k]);
      base /= static_cast<double>(split.validation.size());
      double base_loss = 0;
      for (std::size_t k = 0; k < split.validation.size(); ++k) {
        const double t = y(split.validation[k]), q = std::clamp(prob(static_cast<Eigen::Index>(k)), 1e-15, 1 - 1e-15);
        hits += (q >= 0.5) == (t >= 0.5);
        log_loss -= t * std::log(q) + (1 - t) * std::log(1 - q);
        const double b = std::clamp(base, 1e-15, 1 - 1e-15);
        base_loss -= t * std::log(b) + (1 - t) * std::log(1 - b);
      }
      const double m = static_cast<double>(split.validation.size());
      const nlohmann::json metrics = {{"rows", idx.size()},
                                      {"success_rate", static_cast<double>(positives) / static_cast<double>(idx.size())},
                                      {"heldout_rows", split.validation.size()},
                                      {"heldout_accuracy", hits / m},
                                      {"heldout_log_loss", log_loss / m},
                                      {"heldout_log_loss_of_base_rate", base_loss / m},
                                      {"fit_seconds", seconds_since(t0)}};
      collector_.with_store([&](store::Store& st) {
        checkpoint(st, kSuccessModel, state_of(net.to_json(), dim, templates), metrics, keep, now);
      });
      report.trained.push_back(kSuccessModel);
      report.metrics[kSuccessModel] = metrics;
    }
  }
  if (!report.trained.empty()) refresh();
  return report;
}

std::optional<QualityEstimate> ModelManager::predict_quality(const Eigen::VectorXd& context, const std::string& template_id) const {
  const auto s = snapshot();
  if (!s || !s->quality) return std::nullopt;
  check_dimension(kQualityModel, context, s->quality_dim);
  const Eigen::VectorXd x = input_row(context, s->quality_templates, template_id);
  const models::QualityPrediction q = s->quality->predict_quality(x.data());
  return QualityEstimate{q.predicted_quality, q.uncertainty, q.ci_low, q.ci_high};
}

std::vector<TemplateProbability> ModelManager::predict_template(const Eigen::VectorXd& context) const {
  const auto s = snapshot();
  if (!s || !s->classifier) return {};
  check_dimension(kTemplateModel, context, s->classifier_dim);
  std::vector<TemplateProbability> out;
  for (const auto& t : s->classifier->predict_template(context)) out.push_back({t.template_id, t.probability});
  return out;
}

std::optional<double> ModelManager::predict_success(const Eigen::VectorXd& context, const std::string& template_id) const {
  const auto s = snapshot();
  if (!s || !s->success) return std::nullopt;
  check_dimension(kSuccessModel, context, s->success_dim);
  return s->success->predict_proba_one(input_row(context, s->success_templates, template_id));
}

std::int64_t ModelManager::version(const std::string& name) const {
  const auto s = snapshot();
  if (!s) return 0;
  if (name == kQualityModel) return s->quality_version;
  if (name == kTemplateModel) return s->classifier_version;
  if (name == kSuccessModel) return s->success_version;
  return 0;
}

}  // namespace promptlearn
