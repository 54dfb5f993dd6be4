#pragma once
/// @file
/// The predictive models in the engine (layer 4): trained on the file's logged decisions and their
/// outcomes, checkpointed in `models`, served to the host.
///
///   quality_predictor    QualityPredictor (gradient-boosted trees, quantile interval): outcome quality
///                        (response_quality_score, 0..10) of a template in a context
///   template_classifier  TemplateClassifier (random forest, isotonic calibration): which template the
///                        decisions that succeeded used in such a context, ranked by calibrated probability
///   success_net          PatternNet (MLP): probability that an interaction succeeds with a template
///
/// A training row is one logged decision with an outcome: its context is the vector the selection policy
/// saw (the `decisions.context` column), its template the one chosen; the model input is the context
/// followed by a one-hot code of the template (the classifier sees the context alone). "Success" is
/// quality >= 7 when the outcome has a quality score, else acceptance_rate >= 0.5. The logged templates
/// were chosen by the policy, so the classifier estimates P(template | context, success) under the
/// logging policy, not under uniform exploration.
///
/// The rows are split 80/20 (model_training.random_seed); each model is fitted on the 80% and its
/// metrics measured on the 20% it never saw, then the fitted model is checkpointed as a new active
/// version (the previous one retired, data_retention.model_checkpoints_kept kept).
#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "promptlearn/config.hpp"
#include "promptlearn/core/clock.hpp"

namespace promptlearn {

class Collector;

/// predict_quality's answer: the point estimate and an interval at the predictor's level (0.9).
struct QualityEstimate {
  double predicted_quality = 0;  ///< expected response_quality_score (0..10)
  double uncertainty = 0;        ///< the interval's half-width in standard deviations of a normal (see gbm.hpp)
  double ci_low = 0, ci_high = 0;
};

/// One template with its calibrated probability (predict_template).
struct TemplateProbability {
  std::string template_id;
  double probability = 0;
};

/// What one training run did.
struct ModelTrainingReport {
  std::size_t rows = 0;               ///< decisions with an outcome and a context that were read
  std::vector<std::string> trained;   ///< names of the models checkpointed
  std::vector<std::string> skipped;   ///< "name: reason" for models not trained (too little data)
  nlohmann::json metrics = nlohmann::json::object();  ///< per model: held-out metrics, rows, seconds
};
nlohmann::json to_json(const ModelTrainingReport& r);

/// Trains, checkpoints and serves the predictive models of one file.
/// Thread-safety: all members may be called concurrently (predictions share a loaded snapshot).
class ModelManager {
 public:
  static constexpr const char* kQualityModel = "quality_predictor";
  static constexpr const char* kTemplateModel = "template_classifier";
  static constexpr const char* kSuccessModel = "success_net";
  /// The newest decisions read for training (bounds a run's time and memory).
  static constexpr std::size_t kMaxTrainingRows = 20000;
  /// Fewer rows than this and a model is not trained.
  static constexpr std::size_t kMinTrainingRows = 100;

  /// Loads the active checkpoints (if any). @throws StorageError
  ModelManager(Collector& collector, const Config& config, const Clock& clock);
  ~ModelManager();

  /// Trains every model on the newest decisions with outcomes and checkpoints those trained.
  /// @throws StorageError
  ModelTrainingReport train(TimeMs now);
  /// Re-reads the active checkpoints (another process may have trained).
  void refresh();

  /// Expected quality of `template_id` in `context` (the policy's context vector); nullopt before the
  /// quality model is trained. An unknown template gets the all-zero template code.
  /// @throws ValidationError when the context has the wrong dimension
  std::optional<QualityEstimate> predict_quality(const Eigen::VectorXd& context, const std::string& template_id) const;
  /// Templates ranked by calibrated probability; empty before the classifier is trained.
  std::vector<TemplateProbability> predict_template(const Eigen::VectorXd& context) const;
  /// Probability that the interaction succeeds with `template_id`; nullopt before success_net is trained.
  std::optional<double> predict_success(const Eigen::VectorXd& context, const std::string& template_id) const;
  /// Active version of a model (0 = none).
  std::int64_t version(const std::string& name) const;

 private:
  struct Loaded;
  std::shared_ptr<const Loaded> snapshot() const;

  Collector& collector_;
  Config config_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Loaded> loaded_;
};

}  // namespace promptlearn
