// Tests of the configuration: defaults, parsing, round trips and the exact text of every kind of error.
#include "promptlearn/config.hpp"

#include <cmath>
#include <limits>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"

using nlohmann::json;
using promptlearn::CollectionMode;
using promptlearn::Config;
using promptlearn::ConfigError;
using promptlearn::Frequency;
using promptlearn::StrategyConfig;
using promptlearn::SynchronousCommit;

namespace {

/// The ConfigError message thrown by from_string(text), or "no error".
std::string error_of(const std::string& text) {
  try {
    Config::from_string(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

/// The ConfigError message thrown by validate(), or "no error".
std::string validate_error(const Config& config) {
  try {
    config.validate();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

/// A document with `value` (JSON text) at learning.<section>.<key>.
std::string learning_doc(const std::string& section, const std::string& key, const std::string& value) {
  return R"({"learning": {")" + section + R"(": {")" + key + R"(": )" + value + "}}}";
}

/// A document with `strategy` (JSON text) at learning_strategies.<slot>.
std::string strategy_doc(const std::string& slot, const std::string& strategy) {
  return R"({"learning_strategies": {")" + slot + R"(": )" + strategy + "}}";
}

}  // namespace

TEST_CASE("defaults equal the specification's values", "[config]") {
  const Config c = Config::defaults();
  const auto& l = c.learning;
  CHECK(l.historical_learning_enabled);
  CHECK(l.adaptive_refinement_enabled);
  CHECK(l.performance_tracking_enabled);
  CHECK(l.pattern_recognition_enabled);

  CHECK(l.data_retention.interaction_data_days == 90);
  CHECK(l.data_retention.performance_data_days == 365);
  CHECK(l.data_retention.pattern_data_days == 180);
  CHECK(l.data_retention.model_checkpoints_kept == 10);

  CHECK(l.learning_parameters.learning_rate == 0.1);
  CHECK(l.learning_parameters.discount_factor == 0.95);
  CHECK(l.learning_parameters.exploration_rate == 0.1);
  CHECK(l.learning_parameters.adaptation_threshold == 0.05);
  CHECK(l.learning_parameters.min_samples_for_adaptation == 50);
  CHECK(l.learning_parameters.max_adaptation_per_day == 5);

  CHECK(l.model_training.batch_size == 100);
  CHECK(l.model_training.validation_split == 0.2);
  CHECK(l.model_training.early_stopping_patience == 10);
  CHECK(l.model_training.max_epochs == 100);
  CHECK(l.model_training.model_retraining_frequency == Frequency::monthly);
  CHECK(l.model_training.random_seed == 42u);

  CHECK(l.optimization.pattern_update_frequency == Frequency::hourly);
  CHECK(l.optimization.template_optimization_frequency == Frequency::daily);
  CHECK(l.optimization.parameter_tuning_frequency == Frequency::weekly);

  CHECK(l.data_collection.batch_size == 100);
  CHECK(l.data_collection.buffer_capacity == 10000);
  CHECK(l.data_collection.mode == CollectionMode::synchronous);
  CHECK(l.data_collection.max_prompt_chars == 200000);
  CHECK(l.data_collection.store_raw_prompt);
  CHECK(l.data_collection.synchronous_commit == SynchronousCommit::full);

  const auto& s = c.learning_strategies;
  CHECK(s.template_selection.algorithm == "linucb");
  CHECK(s.template_selection.parameters == json{{"alpha", 0.5}, {"epsilon_floor", 0.05}, {"ridge_lambda", 1.0}});
  CHECK(s.parameter_optimization.algorithm == "bayesian_optimization");
  CHECK(s.parameter_optimization.parameters ==
        json{{"acquisition_function", "expected_improvement"}, {"n_iterations", 50}, {"initial_points", 10}});
  CHECK(s.pattern_recognition.algorithm == "dbscan");
  CHECK(s.pattern_recognition.parameters == json{{"eps", 0.3}, {"min_samples", 5}});
  // Integers are stored as JSON integers, numbers as JSON floats.
  CHECK(s.parameter_optimization.parameters.at("n_iterations").is_number_integer());
  CHECK(s.template_selection.parameters.at("alpha").is_number_float());

  CHECK(c == Config{});
  CHECK_NOTHROW(c.validate());
}

TEST_CASE("reward section: defaults and ranges", "[config]") {
  const Config c = Config::defaults();
  CHECK(c.learning.reward.quality_weight == 0.4);
  CHECK(c.learning.reward.satisfaction_weight == 0.3);
  CHECK(c.learning.reward.acceptance_weight == 0.2);
  CHECK(c.learning.reward.edit_weight == 0.05);
  CHECK(c.learning.reward.latency_weight == 0.05);
  CHECK(c.learning.reward.edits_cap == 5);
  CHECK(c.learning.reward.latency_budget_ms == 30000);
  CHECK(c.learning.reward.default_reward == 0.0);
  CHECK(c.learning.reward.reward_wait_hours == 24);
  CHECK_THROWS_WITH(Config::from_string(R"({"learning": {"reward": {"default_reward": 1.5}}})"),
                    "learning.reward.default_reward: 1.5 is outside [0, 1]");
  CHECK_THROWS_WITH(Config::from_string(R"({"learning": {"reward": {"quality_weight": -1}}})"),
                    Catch::StartsWith("learning.reward.quality_weight: -1"));
  CHECK_THROWS_WITH(Config::from_string(R"({"learning": {"reward": {"bonus": 1}}})"),
                    "learning.reward.bonus: unknown key");
}

TEST_CASE("an empty object gives the defaults", "[config]") {
  CHECK(Config::from_json(json::object()) == Config::defaults());
  CHECK(Config::from_string("{}") == Config::defaults());
  CHECK(Config::from_string(R"({"learning": {}, "learning_strategies": {}})") == Config::defaults());
  CHECK(Config::from_string(R"({"learning": {"data_retention": {}, "learning_parameters": {}}})") ==
        Config::defaults());
  CHECK(Config::from_string(R"({"learning_strategies": {"template_selection": {}}})") == Config::defaults());
}

TEST_CASE("to_json writes every key and round-trips", "[config]") {
  const json j = Config::defaults().to_json();
  CHECK(j.size() == 2);
  CHECK(j.at("learning").size() == 12);
  CHECK(j.at("learning").at("privacy").size() == 8);
  CHECK(j.at("learning").at("selection") == json{{"apprentice_mode", false}, {"apprentice_exploration", 0.2}});
  CHECK(j.at("learning").at("reward").size() == 9);
  CHECK(j.at("learning").at("data_retention").size() == 4);
  CHECK(j.at("learning").at("learning_parameters").size() == 6);
  CHECK(j.at("learning").at("model_training").size() == 6);
  CHECK(j.at("learning").at("optimization").size() == 3);
  CHECK(j.at("learning").at("data_collection").size() == 6);
  CHECK(j.at("learning_strategies").size() == 3);
  CHECK(j.at("learning").at("learning_parameters").at("learning_rate") == 0.1);
  CHECK(j.at("learning").at("model_training").at("model_retraining_frequency") == "monthly");
  CHECK(j.at("learning").at("data_collection").at("synchronous_commit") == "full");
  CHECK(j.at("learning_strategies").at("pattern_recognition") ==
        json{{"algorithm", "dbscan"}, {"parameters", {{"eps", 0.3}, {"min_samples", 5}}}});

  SECTION("defaults") {
    CHECK(Config::from_json(j) == Config::defaults());
    CHECK(Config::from_string(j.dump()) == Config::defaults());
  }
  SECTION("every field changed") {
    Config c;
    c.learning.historical_learning_enabled = false;
    c.learning.adaptive_refinement_enabled = false;
    c.learning.performance_tracking_enabled = false;
    c.learning.pattern_recognition_enabled = false;
    c.learning.data_retention = {7, 30, 14, 3};
    c.learning.learning_parameters = {1.0, 0.0, 1.0 / 3.0, 0.0, 1, 0};
    c.learning.model_training = {32, 0.1, 1, 1, Frequency::never, std::numeric_limits<std::uint64_t>::max()};
    c.learning.optimization = {Frequency::daily, Frequency::weekly, Frequency::monthly};
    c.learning.data_collection = {1, 1, CollectionMode::buffered, 10000000, false, SynchronousCommit::normal};
    c.learning_strategies.template_selection = StrategyConfig::for_algorithm("thompson");
    c.learning_strategies.template_selection.parameters["v"] = 0.5;
    c.learning_strategies.parameter_optimization.parameters = {
        {"acquisition_function", "upper_confidence_bound"}, {"n_iterations", 7}, {"initial_points", 7}};
    c.learning_strategies.pattern_recognition.parameters = {{"eps", 2.0}, {"min_samples", 1}};
    REQUIRE_NOTHROW(c.validate());
    REQUIRE(c != Config{});

    CHECK(Config::from_json(c.to_json()) == c);
    CHECK(Config::from_string(c.to_json().dump()) == c);
    CHECK(Config::from_string(c.to_json().dump(2)).to_json() == c.to_json());
  }
  SECTION("nlohmann hooks") {
    Config c;
    c.learning.data_retention.pattern_data_days = 1;
    const json hooked = c;
    CHECK(hooked == c.to_json());
    CHECK(hooked.get<Config>() == c);
  }
}

TEST_CASE("partial documents keep the other defaults", "[config]") {
  const Config c = Config::from_string(R"({
    "learning": {
      "pattern_recognition_enabled": false,
      "learning_parameters": {"learning_rate": 0.25},
      "model_training": {"model_retraining_frequency": "weekly"},
      "data_collection": {"mode": "buffered"}
    },
    "learning_strategies": {"pattern_recognition": {"parameters": {"min_samples": 8}}}
  })");
  Config expected;
  expected.learning.pattern_recognition_enabled = false;
  expected.learning.learning_parameters.learning_rate = 0.25;
  expected.learning.model_training.model_retraining_frequency = Frequency::weekly;
  expected.learning.data_collection.mode = CollectionMode::buffered;
  expected.learning_strategies.pattern_recognition.parameters["min_samples"] = 8;
  CHECK(c == expected);
  CHECK(c.learning_strategies.pattern_recognition.parameters.at("eps") == 0.3);
  CHECK(c.learning.learning_parameters.discount_factor == 0.95);
  CHECK(c.learning.data_collection.buffer_capacity == 10000);
}

TEST_CASE("numbers: integers given as integral floats are accepted, integers as numbers", "[config]") {
  const Config c = Config::from_string(R"({"learning": {
      "data_retention": {"interaction_data_days": 10.0},
      "learning_parameters": {"learning_rate": 1},
      "model_training": {"random_seed": 18446744073709551615}},
    "learning_strategies": {"parameter_optimization": {"parameters": {"n_iterations": 60.0}},
                            "template_selection": {"parameters": {"alpha": 2}}}})");
  CHECK(c.learning.data_retention.interaction_data_days == 10);
  CHECK(c.learning.learning_parameters.learning_rate == 1.0);
  CHECK(c.learning.model_training.random_seed == std::numeric_limits<std::uint64_t>::max());
  const json& bo = c.learning_strategies.parameter_optimization.parameters;
  CHECK(bo.at("n_iterations").is_number_integer());
  CHECK(bo.at("n_iterations") == 60);
  const json& alpha = c.learning_strategies.template_selection.parameters.at("alpha");
  CHECK(alpha.is_number_float());
  CHECK(alpha.get<double>() == 2.0);
}

TEST_CASE("choosing an algorithm fills that algorithm's default parameters", "[config]") {
  auto selection = [](const std::string& strategy) {
    return Config::from_string(strategy_doc("template_selection", strategy)).learning_strategies.template_selection;
  };
  CHECK(selection(R"({"algorithm": "softmax"})").parameters == json{{"temperature", 0.1}});
  CHECK(selection(R"({"algorithm": "epsilon_greedy"})").parameters == json{{"epsilon", 0.1}});
  CHECK(selection(R"({"algorithm": "thompson"})").parameters ==
        json{{"v", 0.15}, {"epsilon_floor", 0.05}, {"ridge_lambda", 1.0}});
  CHECK(selection(R"({"algorithm": "q_learning", "parameters": {"discount_factor": 0.5}})").parameters ==
        json{{"learning_rate", 0.1}, {"discount_factor", 0.5}, {"exploration_rate", 0.1}});
  CHECK(selection(R"({"algorithm": "linucb", "parameters": {"alpha": 0.5}})").parameters ==
        json{{"alpha", 0.5}, {"epsilon_floor", 0.05}, {"ridge_lambda", 1.0}});

  CHECK(StrategyConfig::for_algorithm("dbscan").parameters == json{{"eps", 0.3}, {"min_samples", 5}});
  try {
    StrategyConfig::for_algorithm("kmeans");
    FAIL("no exception");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) ==
          "algorithm: \"kmeans\" is not one of linucb, thompson, epsilon_greedy, softmax, q_learning, "
          "bayesian_optimization, dbscan");
  }
}

TEST_CASE("unknown keys are errors at every level", "[config]") {
  CHECK(error_of(R"({"learnin": {}})") == "learnin: unknown key");
  CHECK(error_of(R"({"learning": {"historical_learning": true}})") == "learning.historical_learning: unknown key");
  CHECK(error_of(learning_doc("data_retention", "interaction_days", "90")) ==
        "learning.data_retention.interaction_days: unknown key");
  CHECK(error_of(learning_doc("learning_parameters", "learnig_rate", "0.1")) ==
        "learning.learning_parameters.learnig_rate: unknown key");
  CHECK(error_of(learning_doc("model_training", "epochs", "3")) == "learning.model_training.epochs: unknown key");
  CHECK(error_of(learning_doc("optimization", "tuning", "\"daily\"")) ==
        "learning.optimization.tuning: unknown key");
  CHECK(error_of(learning_doc("data_collection", "queue", "1")) == "learning.data_collection.queue: unknown key");
  CHECK(error_of(R"({"learning_strategies": {"anomaly_detection": {}}})") ==
        "learning_strategies.anomaly_detection: unknown key");
  CHECK(error_of(strategy_doc("template_selection", R"({"algo": "linucb"})")) ==
        "learning_strategies.template_selection.algo: unknown key");

  // The ConfigError carries the key path on its own too.
  try {
    Config::from_string(learning_doc("learning_parameters", "learnig_rate", "0.1"));
    FAIL("no exception");
  } catch (const ConfigError& e) {
    CHECK(e.key() == "learning.learning_parameters.learnig_rate");
  }
}

TEST_CASE("unknown strategy parameters are errors that list the known ones", "[config]") {
  CHECK(error_of(strategy_doc("template_selection", R"({"parameters": {"beta": 1}})")) ==
        "learning_strategies.template_selection.parameters.beta: unknown key for algorithm \"linucb\" "
        "(known keys: alpha, epsilon_floor, ridge_lambda)");
  // Parameters of the default algorithm do not carry over to another one.
  CHECK(error_of(strategy_doc("template_selection", R"({"algorithm": "softmax", "parameters": {"alpha": 1}})")) ==
        "learning_strategies.template_selection.parameters.alpha: unknown key for algorithm \"softmax\" "
        "(known keys: temperature)");
  CHECK(error_of(strategy_doc("pattern_recognition", R"({"parameters": {"epsilon": 0.3}})")) ==
        "learning_strategies.pattern_recognition.parameters.epsilon: unknown key for algorithm \"dbscan\" "
        "(known keys: eps, min_samples)");
}

TEST_CASE("wrong types are errors naming what was expected and what was given", "[config]") {
  CHECK(error_of(learning_doc("learning_parameters", "learning_rate", "\"fast\"")) ==
        "learning.learning_parameters.learning_rate: expected a number, got \"fast\"");
  CHECK(error_of(R"({"learning": {"historical_learning_enabled": 1}})") ==
        "learning.historical_learning_enabled: expected a boolean, got 1");
  CHECK(error_of(learning_doc("data_collection", "store_raw_prompt", "\"true\"")) ==
        "learning.data_collection.store_raw_prompt: expected a boolean, got \"true\"");
  CHECK(error_of(learning_doc("data_retention", "interaction_data_days", "10.5")) ==
        "learning.data_retention.interaction_data_days: expected an integer, got 10.5");
  CHECK(error_of(learning_doc("data_retention", "interaction_data_days", "\"90\"")) ==
        "learning.data_retention.interaction_data_days: expected an integer, got \"90\"");
  CHECK(error_of(learning_doc("model_training", "random_seed", "4.2")) ==
        "learning.model_training.random_seed: expected an integer, got 4.2");
  CHECK(error_of(learning_doc("optimization", "pattern_update_frequency", "3600")) ==
        "learning.optimization.pattern_update_frequency: expected a string, got 3600");
  CHECK(error_of(learning_doc("learning_parameters", "discount_factor", "null")) ==
        "learning.learning_parameters.discount_factor: expected a number, got null");
  CHECK(error_of(R"({"learning": {"data_retention": [90]}})") ==
        "learning.data_retention: expected an object, got [90]");
  CHECK(error_of(R"({"learning": true})") == "learning: expected an object, got true");
  CHECK(error_of(R"([1, 2])") == "config: expected an object, got [1,2]");
  CHECK(error_of(strategy_doc("template_selection", "\"linucb\"")) ==
        "learning_strategies.template_selection: expected an object, got \"linucb\"");
  CHECK(error_of(strategy_doc("template_selection", R"({"algorithm": 1})")) ==
        "learning_strategies.template_selection.algorithm: expected a string, got 1");
  CHECK(error_of(strategy_doc("template_selection", R"({"parameters": [1.0]})")) ==
        "learning_strategies.template_selection.parameters: expected an object, got [1.0]");
  CHECK(error_of(strategy_doc("template_selection", R"({"parameters": null})")) ==
        "learning_strategies.template_selection.parameters: expected an object, got null");
  CHECK(error_of(strategy_doc("template_selection", R"({"parameters": {"alpha": "1"}})")) ==
        "learning_strategies.template_selection.parameters.alpha: expected a number, got \"1\"");
  CHECK(error_of(strategy_doc("pattern_recognition", R"({"parameters": {"min_samples": 2.5}})")) ==
        "learning_strategies.pattern_recognition.parameters.min_samples: expected an integer, got 2.5");
  // Long values are shortened in the message.
  const std::string long_text(100, 'x');
  CHECK(error_of(learning_doc("learning_parameters", "learning_rate", "\"" + long_text + "\"")) ==
        "learning.learning_parameters.learning_rate: expected a number, got \"" + std::string(59, 'x') + "...");
}

TEST_CASE("out-of-range values are errors naming the allowed interval", "[config]") {
  CHECK(error_of(learning_doc("learning_parameters", "learning_rate", "1.5")) ==
        "learning.learning_parameters.learning_rate: 1.5 is outside (0, 1]");
  CHECK(error_of(learning_doc("learning_parameters", "learning_rate", "0")) ==
        "learning.learning_parameters.learning_rate: 0 is outside (0, 1]");
  CHECK(error_of(learning_doc("learning_parameters", "discount_factor", "-0.1")) ==
        "learning.learning_parameters.discount_factor: -0.1 is outside [0, 1]");
  CHECK(error_of(learning_doc("learning_parameters", "exploration_rate", "1.01")) ==
        "learning.learning_parameters.exploration_rate: 1.01 is outside [0, 1]");
  CHECK(error_of(learning_doc("learning_parameters", "adaptation_threshold", "2")) ==
        "learning.learning_parameters.adaptation_threshold: 2 is outside [0, 1]");
  CHECK(error_of(learning_doc("learning_parameters", "min_samples_for_adaptation", "0")) ==
        "learning.learning_parameters.min_samples_for_adaptation: 0 is outside [1, 2147483647]");
  CHECK(error_of(learning_doc("learning_parameters", "max_adaptation_per_day", "-1")) ==
        "learning.learning_parameters.max_adaptation_per_day: -1 is outside [0, 2147483647]");
  CHECK(error_of(learning_doc("data_retention", "interaction_data_days", "0")) ==
        "learning.data_retention.interaction_data_days: 0 is outside [1, 2147483647]");
  CHECK(error_of(learning_doc("data_retention", "model_checkpoints_kept", "1e12")) ==
        "learning.data_retention.model_checkpoints_kept: 1000000000000 is outside [1, 2147483647]");
  CHECK(error_of(learning_doc("data_retention", "pattern_data_days", "18446744073709551615")) ==
        "learning.data_retention.pattern_data_days: 18446744073709551615 is outside [1, 2147483647]");
  CHECK(error_of(learning_doc("model_training", "validation_split", "1")) ==
        "learning.model_training.validation_split: 1 is outside (0, 1)");
  CHECK(error_of(learning_doc("model_training", "max_epochs", "0")) ==
        "learning.model_training.max_epochs: 0 is outside [1, 2147483647]");
  CHECK(error_of(learning_doc("model_training", "random_seed", "-1")) ==
        "learning.model_training.random_seed: -1 is outside [0, 18446744073709551615]");
  CHECK(error_of(learning_doc("data_collection", "batch_size", "100001")) ==
        "learning.data_collection.batch_size: 100001 is outside [1, 100000]");
  CHECK(error_of(learning_doc("data_collection", "max_prompt_chars", "0")) ==
        "learning.data_collection.max_prompt_chars: 0 is outside [1, 10000000]");
  CHECK(error_of(learning_doc("data_collection", "buffer_capacity", "50")) ==
        "learning.data_collection.buffer_capacity: 50 is less than batch_size (100)");
  CHECK(error_of(R"({"learning": {"data_collection": {"batch_size": 20, "buffer_capacity": 20}}})") == "no error");

  CHECK(error_of(strategy_doc("template_selection", R"({"parameters": {"alpha": 0}})")) ==
        "learning_strategies.template_selection.parameters.alpha: 0 is outside (0, inf)");
  CHECK(error_of(strategy_doc("template_selection", R"({"parameters": {"epsilon_floor": 1}})")) ==
        "learning_strategies.template_selection.parameters.epsilon_floor: 1 is outside [0, 1)");
  CHECK(error_of(strategy_doc("template_selection",
                              R"({"algorithm": "softmax", "parameters": {"temperature": -2}})")) ==
        "learning_strategies.template_selection.parameters.temperature: -2 is outside (0, inf)");
  CHECK(error_of(strategy_doc("pattern_recognition", R"({"parameters": {"eps": 2.5}})")) ==
        "learning_strategies.pattern_recognition.parameters.eps: 2.5 is outside (0, 2]");
  CHECK(error_of(strategy_doc("pattern_recognition", R"({"parameters": {"min_samples": 0}})")) ==
        "learning_strategies.pattern_recognition.parameters.min_samples: 0 is outside [1, 2147483647]");
  CHECK(error_of(strategy_doc("parameter_optimization", R"({"parameters": {"initial_points": 60}})")) ==
        "learning_strategies.parameter_optimization.parameters.initial_points: 60 is greater than n_iterations (50)");
  CHECK(error_of(strategy_doc("parameter_optimization", R"({"parameters": {"n_iterations": 0}})")) ==
        "learning_strategies.parameter_optimization.parameters.n_iterations: 0 is outside [1, 2147483647]");
}

TEST_CASE("bad choices are errors listing the allowed values", "[config]") {
  CHECK(error_of(learning_doc("model_training", "model_retraining_frequency", "\"fortnightly\"")) ==
        "learning.model_training.model_retraining_frequency: \"fortnightly\" is not one of "
        "hourly, daily, weekly, monthly, never");
  CHECK(error_of(learning_doc("optimization", "parameter_tuning_frequency", "\"Weekly\"")) ==
        "learning.optimization.parameter_tuning_frequency: \"Weekly\" is not one of "
        "hourly, daily, weekly, monthly, never");
  CHECK(error_of(learning_doc("data_collection", "mode", "\"async\"")) ==
        "learning.data_collection.mode: \"async\" is not one of synchronous, buffered");
  CHECK(error_of(learning_doc("data_collection", "synchronous_commit", "\"off\"")) ==
        "learning.data_collection.synchronous_commit: \"off\" is not one of full, normal");
  CHECK(error_of(strategy_doc("parameter_optimization", R"({"parameters": {"acquisition_function": "pi"}})")) ==
        "learning_strategies.parameter_optimization.parameters.acquisition_function: \"pi\" is not one of "
        "expected_improvement, upper_confidence_bound");
}

TEST_CASE("bad algorithms are errors listing the slot's algorithms", "[config]") {
  CHECK(error_of(strategy_doc("template_selection", R"({"algorithm": "ucb1"})")) ==
        "learning_strategies.template_selection.algorithm: \"ucb1\" is not one of "
        "linucb, thompson, epsilon_greedy, softmax, q_learning");
  // An algorithm of another slot is not accepted either.
  CHECK(error_of(strategy_doc("template_selection", R"({"algorithm": "dbscan"})")) ==
        "learning_strategies.template_selection.algorithm: \"dbscan\" is not one of "
        "linucb, thompson, epsilon_greedy, softmax, q_learning");
  CHECK(error_of(strategy_doc("parameter_optimization", R"({"algorithm": "grid_search"})")) ==
        "learning_strategies.parameter_optimization.algorithm: \"grid_search\" is not one of bayesian_optimization");
  CHECK(error_of(strategy_doc("pattern_recognition", R"({"algorithm": "kmeans"})")) ==
        "learning_strategies.pattern_recognition.algorithm: \"kmeans\" is not one of dbscan");
}

TEST_CASE("malformed JSON text is an error at key \"config\" with the parser's position", "[config]") {
  CHECK(error_of(R"({"learning": })") ==
        "config: parse error at line 1, column 14: syntax error while parsing value - unexpected '}'; "
        "expected '[', '{', or a literal");
  const std::string empty = error_of("");
  CHECK_THAT(empty, Catch::StartsWith("config: parse error at line 1, column 1: "));
  const std::string multi_line = error_of("{\n  \"learning\": {\n    \"data_retention\": {,}\n  }\n}");
  CHECK_THAT(multi_line, Catch::StartsWith("config: parse error at line 3, column 24: "));
  // Comments are not JSON.
  CHECK_THAT(error_of("{} // no"), Catch::StartsWith("config: parse error at line 1, column 4: "));
  try {
    Config::from_string("{");
    FAIL("no exception");
  } catch (const ConfigError& e) {
    CHECK(e.key() == "config");
  }
}

TEST_CASE("a key repeated in one object is an error", "[config]") {
  CHECK(error_of(R"({"learning": {"learning_parameters": {"learning_rate": 0.2, "learning_rate": 0.3}}})") ==
        "learning.learning_parameters.learning_rate: duplicate key");
  CHECK(error_of(R"({"learning": {}, "learning": {}})") == "learning: duplicate key");
  // The same key in different objects is fine.
  CHECK(error_of(R"({"learning": {"model_training": {"batch_size": 10}, "data_collection": {"batch_size": 10}}})") ==
        "no error");
}

TEST_CASE("validate() checks a config built in C++ with the same messages", "[config]") {
  Config c;
  CHECK(validate_error(c) == "no error");

  c.learning.learning_parameters.learning_rate = 1.5;
  CHECK(validate_error(c) == "learning.learning_parameters.learning_rate: 1.5 is outside (0, 1]");
  c.learning.learning_parameters.learning_rate = std::nan("");
  CHECK(validate_error(c) == "learning.learning_parameters.learning_rate: nan is outside (0, 1]");
  c = Config{};

  c.learning.data_retention.performance_data_days = 0;
  CHECK(validate_error(c) == "learning.data_retention.performance_data_days: 0 is outside [1, 2147483647]");
  c = Config{};

  c.learning.data_collection.batch_size = 500;
  c.learning.data_collection.buffer_capacity = 499;
  CHECK(validate_error(c) == "learning.data_collection.buffer_capacity: 499 is less than batch_size (500)");
  c = Config{};

  c.learning.model_training.model_retraining_frequency = static_cast<Frequency>(9);
  CHECK(validate_error(c) == "learning.model_training.model_retraining_frequency: 9 is not one of "
                             "hourly, daily, weekly, monthly, never");
  c = Config{};

  c.learning_strategies.template_selection.algorithm = "softmax";  // parameters still linucb's
  CHECK(validate_error(c) ==
        "learning_strategies.template_selection.parameters.alpha: unknown key for algorithm \"softmax\" "
        "(known keys: temperature)");
  c.learning_strategies.template_selection = StrategyConfig::for_algorithm("softmax");
  CHECK(validate_error(c) == "no error");
  c.learning_strategies.template_selection.parameters = json::object();
  CHECK(validate_error(c) == "learning_strategies.template_selection.parameters.temperature: missing key");
  c.learning_strategies.template_selection = StrategyConfig{};
  CHECK(validate_error(c) == "learning_strategies.template_selection.algorithm: \"\" is not one of "
                             "linucb, thompson, epsilon_greedy, softmax, q_learning");
  c = Config{};

  c.learning_strategies.pattern_recognition.parameters["eps"] = 0.0;
  CHECK(validate_error(c) == "learning_strategies.pattern_recognition.parameters.eps: 0 is outside (0, 2]");
  c = Config{};

  // from_json validates too, so a document that passed needs no second check.
  c.learning.model_training.validation_split = 0.0;
  CHECK(error_of(c.to_json().dump()) == "learning.model_training.validation_split: 0 is outside (0, 1)");
}

TEST_CASE("enumerations convert to and from their JSON spelling", "[config]") {
  using promptlearn::collection_mode_from_string;
  using promptlearn::frequency_from_string;
  using promptlearn::synchronous_commit_from_string;
  using promptlearn::to_string;
  for (Frequency f : {Frequency::hourly, Frequency::daily, Frequency::weekly, Frequency::monthly, Frequency::never})
    CHECK(frequency_from_string(to_string(f)) == f);
  CHECK(to_string(Frequency::monthly) == "monthly");
  CHECK(to_string(CollectionMode::buffered) == "buffered");
  CHECK(to_string(SynchronousCommit::normal) == "normal");
  CHECK(collection_mode_from_string("synchronous") == CollectionMode::synchronous);
  CHECK(synchronous_commit_from_string("full") == SynchronousCommit::full);
  CHECK_FALSE(frequency_from_string("Hourly").has_value());
  CHECK_FALSE(collection_mode_from_string("").has_value());
  CHECK(to_string(static_cast<Frequency>(42)).empty());
}
