// Splits for model training: every row held out exactly once, sizes, stratification, determinism, errors.
#include <catch2/catch.hpp>

#include <set>

#include "promptlearn/models/cross_validation.hpp"

using namespace promptlearn;
using namespace promptlearn::models;

TEST_CASE("train_validation_split holds out the requested share, disjoint and complete", "[models][cv]") {
  const Split s = train_validation_split(101, 0.2, 7);
  CHECK(s.validation.size() == 20);  // round(20.2)
  CHECK(s.train.size() == 81);
  std::set<Eigen::Index> all(s.train.begin(), s.train.end());
  for (Eigen::Index r : s.validation) CHECK(all.insert(r).second);
  CHECK(all.size() == 101);
  CHECK(*all.rbegin() == 100);
  CHECK(std::is_sorted(s.train.begin(), s.train.end()));
  // Deterministic given the seed, different for another seed.
  CHECK(train_validation_split(101, 0.2, 7).validation == s.validation);
  CHECK(train_validation_split(101, 0.2, 8).validation != s.validation);
  // Never empty on either side.
  CHECK(train_validation_split(2, 0.01, 1).validation.size() == 1);
  CHECK(train_validation_split(2, 0.99, 1).train.size() == 1);
  CHECK_THROWS_WITH(train_validation_split(10, 1.0, 1), "validation_split: 1 is outside (0, 1)");
  CHECK_THROWS_AS(train_validation_split(1, 0.5, 1), ConfigError);
}

TEST_CASE("kfold holds every row out exactly once, fold sizes differ by at most one", "[models][cv]") {
  for (bool shuffle : {true, false}) {
    const auto folds = kfold(23, 5, 3, shuffle);
    REQUIRE(folds.size() == 5);
    std::vector<int> held(23, 0);
    for (const Split& f : folds) {
      CHECK((f.validation.size() == 4 || f.validation.size() == 5));
      CHECK(f.train.size() + f.validation.size() == 23);
      for (Eigen::Index r : f.validation) ++held[static_cast<std::size_t>(r)];
      std::set<Eigen::Index> t(f.train.begin(), f.train.end());
      for (Eigen::Index r : f.validation) CHECK(t.count(r) == 0);
    }
    for (int h : held) CHECK(h == 1);
  }
  // Unshuffled folds are contiguous blocks.
  const auto plain = kfold(10, 3, 0, false);
  CHECK(plain[0].validation == std::vector<Eigen::Index>{0, 1, 2, 3});
  CHECK(plain[2].validation == std::vector<Eigen::Index>{7, 8, 9});
  CHECK_THROWS_WITH(kfold(3, 5, 1), "folds: 5 folds need at least 5 rows, got 3");
  CHECK_THROWS_WITH(kfold(10, 1, 1), "folds: 1 is less than 2");
}

TEST_CASE("stratified_kfold keeps each class's share in every fold", "[models][cv]") {
  std::vector<int> labels;
  for (int i = 0; i < 90; ++i) labels.push_back(0);
  for (int i = 0; i < 30; ++i) labels.push_back(1);
  for (int i = 0; i < 10; ++i) labels.push_back(2);
  const auto folds = stratified_kfold(labels, 5, 11);
  std::vector<int> held(labels.size(), 0);
  for (const Split& f : folds) {
    int count[3] = {0, 0, 0};
    for (Eigen::Index r : f.validation) ++count[labels[static_cast<std::size_t>(r)]], ++held[static_cast<std::size_t>(r)];
    CHECK(count[0] == 18);
    CHECK(count[1] == 6);
    CHECK(count[2] == 2);
  }
  for (int h : held) CHECK(h == 1);
}

TEST_CASE("take_rows, take_values and check_training_data", "[models][cv]") {
  Eigen::MatrixXd X(3, 2);
  X << 1, 2, 3, 4, 5, 6;
  Eigen::VectorXd y(3);
  y << 10, 20, 30;
  const Eigen::MatrixXd Xs = take_rows(X, {2, 0});
  CHECK(Xs(0, 0) == 5);
  CHECK(Xs(1, 1) == 2);
  CHECK(take_values(y, {1})(0) == 20);
  CHECK_NOTHROW(check_training_data(X, y));
  X(1, 1) = std::nan("");
  CHECK_THROWS_WITH(check_training_data(X, y), "X[1][1]: nan is not a finite number");
  X(1, 1) = 0;
  CHECK_THROWS_WITH(check_training_data(X, Eigen::VectorXd::Zero(2)), "y: has 2 values for 3 rows of X");
}
