// Template-selection policies: hand-computed scores and updates, Sherman-Morrison against Eigen's inverse,
// distribution properties, action lifecycle, warm start, checkpoints, merge, determinism, Thompson's
// Monte-Carlo propensities, and learning on a synthetic linear-reward problem.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/LU>
#include <nlohmann/json.hpp>

#include "promptlearn/core/error.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/select/factory.hpp"
#include "promptlearn/select/linear_bandit.hpp"
#include "promptlearn/select/q_learning.hpp"
#include "promptlearn/select/value_policies.hpp"

using namespace promptlearn;
using namespace promptlearn::select;
using nlohmann::json;

namespace {

const std::vector<std::string> kAlgorithms = {"linucb", "thompson", "epsilon_greedy", "softmax", "q_learning"};
const std::vector<std::string> kLinear = {"linucb", "thompson", "epsilon_greedy", "softmax"};

Eigen::VectorXd vec(std::initializer_list<double> v) {
  Eigen::VectorXd x(static_cast<Eigen::Index>(v.size()));
  Eigen::Index i = 0;
  for (double d : v) x(i++) = d;
  return x;
}

/// A raw context of mixed scale: coordinates from U(-1, 1) times 10^U(-1, 2).
Eigen::VectorXd random_context(Rng& rng, int d) {
  Eigen::VectorXd x(d);
  for (int i = 0; i < d; ++i) x(i) = rng.uniform(-1, 1) * std::pow(10.0, rng.uniform(-1, 2));
  return x;
}

double probability_of(const Distribution& d, const std::string& action) {
  for (const auto& ap : d)
    if (ap.action == action) return ap.probability;
  return 0.0;
}

/// Feeds `n` random (context, action, reward) triples to `p`; actions cycle through `actions`.
void feed(Policy& p, Rng& rng, int n, const std::vector<std::string>& actions) {
  for (int t = 0; t < n; ++t) {
    Eigen::VectorXd x = random_context(rng, p.dimension());
    const std::string& a = actions[static_cast<std::size_t>(t) % actions.size()];
    p.update(x, a, rng.uniform(), 0.5);
  }
}

std::string validation_path(const json& state) {
  try {
    make_policy_from_json(state);
  } catch (const ValidationError& e) {
    return e.path();
  }
  return "<no error>";
}

}  // namespace

// The exploration bonus sqrt(z^T A^-1 z) is computed from a single-precision copy of A^-1 (see
// RidgeArm::a_inv_packed): float's unit roundoff 6e-8 over a 6-term dot product bounds the relative
// error of the bonus by ~1e-7; 1e-6 leaves a margin and is still far tighter than any decision needs.
constexpr double kScoreTol = 1e-6;

TEST_CASE("LinUCB scores of a 2-action, 2-feature example match the hand computation", "[select]") {
  // Unscaled features (z = [x1, x2, 1]), lambda = 1, alpha = 1, floor 0.01.
  // Action "a" sees x = (1, 0) with reward r:  z = (1, 0, 1),
  //   A = I + z z^T = [[2,0,1],[0,1,0],[1,0,2]],  A^-1 = [[2/3,0,-1/3],[0,1,0],[-1/3,0,2/3]],  b = r z,
  //   theta = A^-1 b = r (1/3, 0, 1/3).
  // Query x = (1, 0), z = (1, 0, 1): mean_a = 2r/3, z^T A^-1 z = 2/3 + 2/3 - 2/3 = 2/3, width = sqrt(2/3).
  // Query x = (0, 1), z = (0, 1, 1): mean_a = r/3,  z^T A^-1 z = 1 + 2/3 = 5/3,           width = sqrt(5/3).
  // Action "b" has no data: theta = 0, A^-1 = I, so its score is sqrt(|z|^2) = sqrt(2) for both queries.
  LinUcbParams params;
  params.alpha = 1.0;
  params.ridge_lambda = 1.0;
  params.epsilon_floor = 0.01;
  params.scaling = FeatureScaling::kNone;
  Rng rng(1);

  SECTION("reward 1: a's optimism and mean beat b") {
    LinUcbPolicy p(2, params);
    p.add_action("a");
    p.add_action("b");
    p.update(vec({1, 0}), "a", 1.0, 0.5);
    std::vector<double> s = p.scores(vec({1, 0}));
    CHECK(s[0] == Approx(2.0 / 3.0 + std::sqrt(2.0 / 3.0)).epsilon(kScoreTol));  // 1.48316
    CHECK(s[1] == Approx(std::sqrt(2.0)).epsilon(kScoreTol));                    // 1.41421
    s = p.scores(vec({0, 1}));
    CHECK(s[0] == Approx(1.0 / 3.0 + std::sqrt(5.0 / 3.0)).epsilon(kScoreTol));  // 1.62433
    CHECK(s[1] == Approx(std::sqrt(2.0)).epsilon(kScoreTol));
    // Greedy on the score with a 1% floor over K = 2: 0.99 + 0.005 and 0.005.
    Distribution d = p.distribution(vec({1, 0}), rng);
    REQUIRE(d.size() == 2);
    CHECK(d[0].action == "a");
    CHECK(d[0].probability == Approx(0.995));
    CHECK(d[1].probability == Approx(0.005));
  }
  SECTION("reward 0: a's bound sqrt(2/3) falls below b's sqrt(2)") {
    LinUcbPolicy p(2, params);
    p.add_action("a");
    p.add_action("b");
    p.update(vec({1, 0}), "a", 0.0, 0.5);
    std::vector<double> s = p.scores(vec({1, 0}));
    CHECK(s[0] == Approx(std::sqrt(2.0 / 3.0)).epsilon(kScoreTol));
    Distribution d = p.distribution(vec({1, 0}), rng);
    CHECK(d[0].action == "b");
    CHECK(d[0].probability == Approx(0.995));
  }
  SECTION("a fresh policy splits ties evenly") {
    LinUcbPolicy p(2, params);
    for (const char* a : {"a", "b", "c"}) p.add_action(a);
    for (const auto& ap : p.distribution(vec({3, -1}), rng)) CHECK(ap.probability == Approx(1.0 / 3.0));
  }
}

TEST_CASE("symlog unit-norm scaling: symlog, unit norm, then a bias", "[select]") {
  LinUcbParams params;
  params.scaling = FeatureScaling::kSymlogUnitNorm;
  LinUcbPolicy p(2, params);
  // x = (3, -4): s = (log 4, -log 5), z = [s / |s|, 1]; multiplying x does change z (symlog is not linear)
  // but z always has norm sqrt(2), whatever the units.
  Eigen::VectorXd z = p.models().transform(vec({3, -4}));
  const double n = std::hypot(std::log(4.0), std::log(5.0));
  CHECK(z(0) == Approx(std::log(4.0) / n));
  CHECK(z(1) == Approx(-std::log(5.0) / n));
  CHECK(z(2) == 1.0);
  CHECK(p.models().transform(vec({3e6, -4e9})).norm() == Approx(std::sqrt(2.0)));
  CHECK(p.models().transform(vec({0, 0})) == vec({0, 0, 1}));
  CHECK_THROWS_AS(p.models().transform(vec({1, 2, 3})), ValidationError);
  CHECK_THROWS_AS(p.models().transform(vec({1, std::nan("")})), ValidationError);
}

TEST_CASE("default scaling: running standardisation of symlog(x), rescaled as the count doubles", "[select]") {
  LinUcbPolicy p(2);
  p.add_action("a");
  // Before any update: no shift, unit scale, z = [symlog(x) / sqrt(d), 1].
  Eigen::VectorXd z = p.models().transform(vec({3, -4}));
  CHECK(z(0) == Approx(std::log(4.0) / std::sqrt(2.0)));
  CHECK(z(1) == Approx(-std::log(5.0) / std::sqrt(2.0)));
  CHECK(z(2) == 1.0);
  // Two columns on wildly different scales and offsets: after 64 updates (rescales at 8, 16, 32, 64) the
  // map is the moments of symlog(x) over all of them, and each coordinate has variance 1/d.
  Rng rng(3);
  std::vector<Eigen::VectorXd> s;
  for (int t = 0; t < 64; ++t) {
    Eigen::VectorXd x = vec({1e4 * (2.0 + rng.normal()), 1e-3 * rng.normal()});
    p.update(x, "a", 0.5, 1.0);
    s.push_back(detail::RidgeModels::symlog(x));
  }
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(2), var = Eigen::VectorXd::Zero(2);
  for (const auto& v : s) mean += v / 64.0;
  for (const auto& v : s) var += (v - mean).cwiseAbs2() / 64.0;
  CHECK(p.models().seen() == 64);
  for (int j = 0; j < 2; ++j) {
    CHECK(p.models().shift()(j) == Approx(mean(j)).epsilon(1e-12));
    CHECK(p.models().inv_scale()(j) == Approx(1.0 / std::sqrt(2.0 * var(j))).epsilon(1e-9));
  }
  // The mean context maps to the origin.
  Eigen::VectorXd at_mean(2);
  for (int j = 0; j < 2; ++j) at_mean(j) = (mean(j) > 0 ? 1 : -1) * std::expm1(std::abs(mean(j)));
  CHECK(p.models().transform(at_mean).head(2).norm() < 1e-9);
  CHECK_THROWS_AS(p.models().transform(vec({1, std::nan("")})), ValidationError);
}

TEST_CASE("Sherman-Morrison and the rescales keep the exact inverse of the accumulated A", "[select]") {
  // A = lambda I + sum z z^T and b = sum r z with every z under the map in use at the end: each rescale
  // carries the data part over exactly (A' = lambda I + T (A - lambda I) T^T).
  Rng rng(7);
  LinUcbParams params;
  params.ridge_lambda = 0.1;
  LinUcbPolicy p(6, params);
  p.add_action("a");
  std::vector<std::pair<Eigen::VectorXd, double>> seen;
  for (int t = 0; t < 500; ++t) {
    Eigen::VectorXd x = random_context(rng, 6);
    x(0) = 100.0 * x(0) + 300.0;  // off-centre and large: the rescales move this coordinate the most
    double r = rng.uniform();
    p.update(x, "a", r, 1.0);
    seen.emplace_back(x, r);
  }
  Eigen::MatrixXd a = 0.1 * Eigen::MatrixXd::Identity(7, 7);
  Eigen::VectorXd b = Eigen::VectorXd::Zero(7);
  for (const auto& [x, r] : seen) {
    Eigen::VectorXd z = p.models().transform(x);
    a += z * z.transpose();
    b += r * z;
  }
  const detail::RidgeArm& arm = p.models().arms()[0];
  const Eigen::MatrixXd inv = a.inverse();
  CHECK((arm.gram() - a).cwiseAbs().maxCoeff() < 1e-9 * a.cwiseAbs().maxCoeff());
  CHECK((arm.a_inv - inv).cwiseAbs().maxCoeff() < 1e-9 * inv.cwiseAbs().maxCoeff());
  CHECK((arm.theta - inv * b).cwiseAbs().maxCoeff() < 1e-9);
}

TEST_CASE("distributions sum to 1, respect the floor and cover only valid actions", "[select]") {
  for (const std::string& algo : kAlgorithms) {
    INFO(algo);
    auto p = make_policy(algo, json::object(), 5);
    for (const char* a : {"a", "b", "c", "d"}) p->add_action(a);
    Rng rng(3);
    feed(*p, rng, 300, {"a", "b", "c", "d"});
    // The smallest probability each rule guarantees with K = 4 and its default parameters.
    const std::map<std::string, double> floor = {
        {"linucb", 0.01 / 4}, {"thompson", 0.01 / 4}, {"epsilon_greedy", 0.1 / 4}, {"q_learning", 0.1 / 4},
        {"softmax", std::exp(-1.0 / 0.1) / 4}};  // estimates within a spread of about 1 of each other
    for (int t = 0; t < 50; ++t) {
      Distribution d = p->distribution(random_context(rng, 5), rng);
      REQUIRE(d.size() == 4);
      double sum = 0;
      for (const auto& ap : d) {
        sum += ap.probability;
        CHECK(ap.probability >= floor.at(algo) * (1 - 1e-12));
      }
      CHECK(sum == Approx(1.0).epsilon(1e-12));
      for (std::size_t i = 1; i < d.size(); ++i) CHECK(d[i - 1].probability >= d[i].probability);
    }
  }
}

TEST_CASE("retired actions get probability 0 and re-adding restores their statistics", "[select]") {
  for (const std::string& algo : kAlgorithms) {
    INFO(algo);
    auto p = make_policy(algo, json::object(), 3);
    for (const char* a : {"a", "b", "c"}) p->add_action(a);
    Rng rng(11);
    feed(*p, rng, 200, {"a", "b", "c"});
    const Eigen::VectorXd x = vec({1, -2, 30});
    Rng r1(5), r2(5), r3(5);
    const Distribution before = p->distribution(x, r1);
    p->retire_action("b");
    CHECK(p->actions() == std::vector<std::string>{"a", "c"});
    Distribution d = p->distribution(x, r2);
    CHECK(d.size() == 2);
    CHECK(probability_of(d, "b") == 0.0);
    p->add_action("b");  // re-add: known statistics come back
    CHECK(p->actions() == std::vector<std::string>{"a", "b", "c"});
    const Distribution after = p->distribution(x, r3);
    REQUIRE(after.size() == before.size());
    for (std::size_t i = 0; i < after.size(); ++i) {
      CHECK(after[i].action == before[i].action);
      CHECK(after[i].probability == before[i].probability);
      CHECK(after[i].score == before[i].score);
    }
    p->retire_action("a");
    p->retire_action("b");
    p->retire_action("c");
    CHECK_THROWS_AS(p->distribution(x, r3), ValidationError);
    CHECK_THROWS_AS(p->update(x, "zzz", 1.0, 0.5), ValidationError);
    CHECK_THROWS_AS(p->update(x, "a", 1.5, 0.5), ValidationError);
    CHECK_THROWS_AS(p->update(x, "a", 1.0, 0.0), ValidationError);
  }
}

TEST_CASE("warm start copies the parent's statistics at half weight", "[select]") {
  Rng rng(13);
  LinUcbPolicy p(4);
  p.add_action("parent");
  feed(p, rng, 400, {"parent"});
  p.add_action("child", "parent");
  p.add_action("cold");
  const auto& arms = p.models().arms();
  const double lambda = p.params().ridge_lambda;
  const Eigen::MatrixXd prior = lambda * Eigen::MatrixXd::Identity(5, 5);
  const Eigen::MatrixXd parent_a = arms[0].gram();
  CHECK((arms[1].gram() - (prior + 0.5 * (parent_a - prior))).cwiseAbs().maxCoeff() < 1e-9 * parent_a.cwiseAbs().maxCoeff());
  CHECK((arms[1].b - 0.5 * arms[0].b).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((arms[1].a_inv * (prior + 0.5 * (parent_a - prior)) - Eigen::MatrixXd::Identity(5, 5)).cwiseAbs().maxCoeff() < 1e-9);
  CHECK(arms[1].count == 200);
  // With 200 effective samples against a prior of 0.1 the child's estimate is the parent's to within the
  // prior's pull (~lambda / n), while its confidence width grows by about sqrt(2).
  const Eigen::VectorXd x = random_context(rng, 4);
  const std::vector<double> est = p.estimates(x);
  CHECK(est[1] == Approx(est[0]).margin(0.02));
  CHECK(est[2] == 0.0);
  const Eigen::VectorXd z = p.models().transform(x);
  const double w_parent = std::sqrt(z.dot(arms[0].a_inv * z)), w_child = std::sqrt(z.dot(arms[1].a_inv * z));
  CHECK(w_child / w_parent == Approx(std::sqrt(2.0)).epsilon(0.05));

  QLearningPolicy q(2);
  q.add_action("parent");
  q.update(vec({1, 0}), "parent", 1.0, 1.0);
  q.add_action("child", "parent");
  CHECK(q.q(q.state_of(vec({1, 0})), "child") == Approx(0.1));
  q.add_action("child", "parent");  // a known action: no-op
  CHECK(q.actions().size() == 2);
}

TEST_CASE("checkpoints round-trip exactly and garbage names the field", "[select]") {
  for (const std::string& algo : kAlgorithms) {
    INFO(algo);
    auto p = make_policy(algo, json::object(), 4);
    for (const char* a : {"a", "b", "c"}) p->add_action(a);
    Rng rng(17);
    feed(*p, rng, 300, {"a", "b", "c"});
    p->retire_action("c");
    const json state = p->to_json();
    auto back = make_policy_from_json(json::parse(state.dump()));  // through text, as stored
    CHECK(back->name() == algo);
    CHECK(back->to_json() == state);
    CHECK(back->actions() == p->actions());
    for (int t = 0; t < 20; ++t) {
      Eigen::VectorXd x = random_context(rng, 4);
      Rng r1(t), r2(t);
      Distribution d1 = p->distribution(x, r1), d2 = back->distribution(x, r2);
      REQUIRE(d1.size() == d2.size());
      for (std::size_t i = 0; i < d1.size(); ++i) {
        CHECK(d1[i].action == d2[i].action);
        CHECK(d1[i].probability == d2[i].probability);
        CHECK(d1[i].score == d2[i].score);
      }
    }
    auto copy = p->clone();
    CHECK(copy->to_json() == state);
  }
  const json good = [] {
    auto p = make_policy("linucb", json::object(), 2);
    p->add_action("a");
    return p->to_json();
  }();
  auto broken = [&](const std::string& pointer, const json& value) {
    json j = good;
    j[json::json_pointer(pointer)] = value;
    return j;
  };
  CHECK(validation_path(json::array()) == "");
  CHECK(validation_path(broken("/algorithm", "ucb")) == "algorithm");
  CHECK(validation_path(broken("/format", 2)) == "format");
  CHECK(validation_path(broken("/dimension", 2.5)) == "dimension");
  CHECK(validation_path(broken("/ridge_lambda", -1)) == "ridge_lambda");
  CHECK(validation_path(broken("/parameters/alpha", "x")) == "parameters.alpha");
  CHECK(validation_path(broken("/parameters/epsilon_floor", 1.0)) == "parameters.epsilon_floor");
  CHECK(validation_path(broken("/actions/0/A_inv/1/2", 5.0)) == "actions[0].A_inv");   // asymmetric
  CHECK(validation_path(broken("/actions/0/A_inv/1/1", -5.0)) == "actions[0].A_inv");  // not positive definite
  CHECK(validation_path(broken("/actions/0/b", json::array({1, 2}))) == "actions[0].b");
  CHECK(validation_path(broken("/actions/0/A_inv/2/0", "x")) == "actions[0].A_inv[2][0]");
  json no_valid = good;
  no_valid["actions"][0].erase("valid");
  CHECK(validation_path(no_valid) == "actions[0].valid");
  json q = make_policy("q_learning", json::object(), 2)->to_json();
  q["table"] = json::array({{{"state", 1}, {"q", json::array({1.0})}}});
  CHECK(validation_path(q) == "table[0].q");
}

TEST_CASE("binary checkpoints round-trip exactly; corrupt bytes name the field", "[select]") {
  for (const std::string& algo : kAlgorithms) {
    INFO(algo);
    auto p = make_policy(algo, json::object(), 6);
    p->add_action("a");
    p->add_action("b");
    p->add_action("warm", "a");  // warm start: A^-1 from a Cholesky solve, symmetrised
    Rng rng(23);
    feed(*p, rng, 200, {"a", "b", "warm"});
    const std::string bytes = encode_checkpoint(*p);
    CHECK(bytes.compare(0, 8, "PLCKPT01") == 0);
    auto back = make_policy_from_checkpoint(bytes);
    CHECK(back->to_json() == p->to_json());
    // The text form is accepted too (hand-written or older checkpoints).
    CHECK(make_policy_from_checkpoint(p->to_json().dump())->to_json() == p->to_json());
  }
  auto p = make_policy("linucb", json::object(), 16);
  p->add_action("a");
  Rng rng(31);
  for (int t = 0; t < 50; ++t) p->update(random_context(rng, 16), "a", rng.uniform(), 1.0);
  const std::string bytes = encode_checkpoint(*p);
  CHECK(bytes.size() < p->to_json().dump().size() / 2);
  auto path_of = [](const std::string& b) {
    try {
      make_policy_from_checkpoint(b);
    } catch (const ValidationError& e) {
      return e.path();
    }
    return std::string("<no error>");
  };
  CHECK(path_of(bytes.substr(0, bytes.size() / 2)) == "checkpoint");  // truncated
  CHECK(path_of("") == "checkpoint");
  CHECK(path_of(std::string("\xff\x00garbage", 9)) == "checkpoint");
  CHECK(path_of("PLCKPT01") == "checkpoint");
  std::string huge_header = bytes;
  huge_header[15] = '\x7f';  // header length's top byte: beyond the file
  CHECK(path_of(huge_header) == "checkpoint");
  std::string flipped = bytes;
  flipped.back() ^= 1;  // the last bit of the data: caught by the checksum
  CHECK(path_of(flipped) == "checkpoint");
  // Every truncation and every single-byte corruption either loads or names a field; nothing crashes.
  Rng fuzz(29);
  for (int t = 0; t < 300; ++t) {
    std::string b = bytes;
    if (t % 2) b.resize(static_cast<std::size_t>(fuzz.uniform() * static_cast<double>(b.size())));
    else b[static_cast<std::size_t>(fuzz.uniform() * static_cast<double>(b.size()))] ^= static_cast<char>(1 + t % 255);
    try {
      make_policy_from_checkpoint(b);
    } catch (const ValidationError& e) {
      CHECK(!e.path().empty());
    }
  }
  json j = p->to_binary_json();
  auto raw = j["actions"][0]["A_inv"].get_binary();
  raw.pop_back();  // one byte short
  j["actions"][0]["A_inv"] = json::binary(std::vector<std::uint8_t>(raw.begin(), raw.end()), raw.subtype());
  CHECK(validation_path(j) == "actions[0].A_inv");
}

TEST_CASE("merging two halves equals processing the whole", "[select]") {
  for (const std::string& algo : kLinear) {
    INFO(algo);
    auto whole = make_policy(algo, json::object(), 5);
    auto left = make_policy(algo, json::object(), 5);
    auto right = make_policy(algo, json::object(), 5);
    for (auto* p : {whole.get(), left.get(), right.get()}) {
      p->add_action("a");
      p->add_action("b");
    }
    right->add_action("only_right");
    whole->add_action("only_right");
    Rng rng(19);
    for (int t = 0; t < 600; ++t) {
      Eigen::VectorXd x = random_context(rng, 5);
      const std::string a = t % 3 == 0 ? "a" : t % 3 == 1 ? "b" : "only_right";
      const double r = rng.uniform();
      whole->update(x, a, r, 0.3);
      Policy& half = t < 300 ? *left : *right;
      if (t < 300 && a == "only_right") continue;  // left never knew it; keep whole consistent:
      half.update(x, a, r, 0.3);
    }
    // Redo `whole` without the skipped updates so both see the same data.
    whole = make_policy(algo, json::object(), 5);
    for (const char* a : {"a", "b", "only_right"}) whole->add_action(a);
    Rng rng2(19);
    for (int t = 0; t < 600; ++t) {
      Eigen::VectorXd x = random_context(rng2, 5);
      const std::string a = t % 3 == 0 ? "a" : t % 3 == 1 ? "b" : "only_right";
      const double r = rng2.uniform();
      if (t < 300 && a == "only_right") continue;
      whole->update(x, a, r, 0.3);
    }
    REQUIRE(left->mergeable());
    left->merge(*right);
    // merge() re-estimates the standardisation from the pooled moments; `whole` last did at 256 updates.
    dynamic_cast<LinearPolicy&>(*whole).rescale();
    const auto& lm = dynamic_cast<const LinearPolicy&>(*left).models();
    const auto& wm = dynamic_cast<const LinearPolicy&>(*whole).models();
    REQUIRE(lm.arms().size() == wm.arms().size());
    for (std::size_t i = 0; i < lm.arms().size(); ++i) {
      CHECK(lm.arms()[i].key == wm.arms()[i].key);
      const Eigen::MatrixXd wa = wm.arms()[i].gram();
      CHECK((lm.arms()[i].gram() - wa).cwiseAbs().maxCoeff() < 1e-9 * wa.cwiseAbs().maxCoeff());
      CHECK((lm.arms()[i].b - wm.arms()[i].b).cwiseAbs().maxCoeff() < 1e-9);
      CHECK((lm.arms()[i].a_inv - wm.arms()[i].a_inv).cwiseAbs().maxCoeff() < 1e-9);
      CHECK((lm.arms()[i].theta - wm.arms()[i].theta).cwiseAbs().maxCoeff() < 1e-9);
    }
  }
  auto lin = make_policy("linucb", json::object(), 5);
  CHECK_THROWS_AS(lin->merge(*make_policy("softmax", json::object(), 5)), Error);
  CHECK_THROWS_AS(lin->merge(*make_policy("linucb", json::object(), 4)), Error);
  auto q = make_policy("q_learning", json::object(), 5);
  CHECK_FALSE(q->mergeable());
  CHECK_THROWS_AS(q->merge(*make_policy("q_learning", json::object(), 5)), Error);
}

TEST_CASE("a bandit run is determined by its seed", "[select]") {
  auto run = [](const std::string& algo, std::uint64_t seed) {
    auto p = make_policy(algo, json::object(), 3);
    for (const char* a : {"a", "b", "c"}) p->add_action(a);
    Rng rng(seed);
    std::vector<std::string> chosen;
    for (int t = 0; t < 200; ++t) {
      Eigen::VectorXd x = random_context(rng, 3);
      Distribution d = p->distribution(x, rng);
      double u = rng.uniform(), acc = 0;
      std::size_t k = 0;
      for (; k + 1 < d.size() && u >= (acc += d[k].probability); ++k) {
      }
      chosen.push_back(d[k].action);
      p->update(x, d[k].action, d[k].action == "b" ? 1.0 : 0.2 * rng.uniform(), d[k].probability);
    }
    return std::make_pair(chosen, p->to_json());
  };
  for (const std::string& algo : kAlgorithms) {
    INFO(algo);
    auto r1 = run(algo, 99), r2 = run(algo, 99), r3 = run(algo, 100);
    CHECK(r1.first == r2.first);
    CHECK(r1.second == r2.second);
    CHECK(r1.first != r3.first);
  }
}

TEST_CASE("Thompson's Monte-Carlo propensities match the long-run frequency of full posterior draws", "[select]") {
  // Independent reference: draw the full parameter vectors theta~_a ~ N(theta_a, v^2 A_a^-1) with a Cholesky
  // factor of A_a^-1 (the policy only draws the scalar scores) and count the argmax over M = 40000 draws.
  // A single distribution() uses 256 draws, so each probability has standard error sqrt(p(1-p)/256) and
  // the reference sqrt(p(1-p)/40000); we allow 4.5 combined standard errors (two-sided, p ~ 7e-6 per
  // check). Averaging 100 calls (25600 draws) gets the same 4.5-sigma bound with the smaller error.
  ThompsonParams params;
  params.epsilon_floor = 0.0;
  ThompsonPolicy p(3, params);
  for (const char* a : {"a", "b", "c"}) p.add_action(a);
  Rng rng(23);
  // Little data, so the posteriors overlap and all three actions have sizeable probabilities.
  for (int t = 0; t < 12; ++t) {
    Eigen::VectorXd x = random_context(rng, 3);
    p.update(x, t % 3 == 0 ? "a" : t % 3 == 1 ? "b" : "c", t % 3 == 0 ? 0.6 : t % 3 == 1 ? 0.5 : 0.4, 1.0);
  }
  const Eigen::VectorXd x = vec({1.0, 2.0, -0.5});
  const Eigen::VectorXd z = p.models().transform(x);
  std::map<std::string, double> freq;
  const int m = 40000;
  Rng ref(29);
  std::vector<Eigen::MatrixXd> chol;
  for (const auto& arm : p.models().arms()) chol.push_back(Eigen::MatrixXd(arm.a_inv.llt().matrixL()));
  for (int t = 0; t < m; ++t) {
    double best = -1e300;
    std::string best_key;
    for (std::size_t i = 0; i < p.models().arms().size(); ++i) {
      const auto& arm = p.models().arms()[i];
      Eigen::VectorXd n(4);
      for (int j = 0; j < 4; ++j) n(j) = ref.normal();
      const double value = (arm.theta + params.v * chol[i] * n).dot(z);
      if (value > best) best = value, best_key = arm.key;
    }
    freq[best_key] += 1.0 / m;
  }
  for (const auto& [key, f] : freq) CHECK(f > 0.05);  // the example is not degenerate
  Rng draws(31);
  std::map<std::string, double> mean;
  for (int call = 0; call < 100; ++call) {
    Distribution d = p.distribution(x, draws);
    for (const auto& ap : d) mean[ap.action] += ap.probability / 100;
    if (call == 0) {
      for (const auto& ap : d) {
        const double f = freq[ap.action];
        const double se = std::sqrt(f * (1 - f) / 256 + f * (1 - f) / m);
        CHECK(std::abs(ap.probability - f) < 4.5 * se);
      }
    }
  }
  for (const auto& [key, f] : freq) {
    const double se = std::sqrt(f * (1 - f) / 25600 + f * (1 - f) / m);
    CHECK(std::abs(mean[key] - f) < 4.5 * se);
  }
}

TEST_CASE("Q-learning follows Q <- Q + lr (r + gamma max Q' - Q)", "[select]") {
  QLearningPolicy q(3);  // lr 0.1, gamma 0.95, epsilon 0.1
  q.add_action("a");
  q.add_action("b");
  const Eigen::VectorXd x = vec({1, 0, 0}), x_next = vec({0, 0, 1});
  const auto s = q.state_of(x), s_next = q.state_of(x_next);
  REQUIRE(s != s_next);
  CHECK(q.state_of(100.0 * x) == s);  // a common rescaling keeps the state
  q.update(x_next, "b", 1.0, 0.5);    // terminal: Q(s', b) = 0 + 0.1 (1 - 0) = 0.1
  CHECK(q.q(s_next, "b") == Approx(0.1));
  q.update(x, "a", 1.0, 0.5);  // terminal: Q(s, a) = 0.1
  CHECK(q.q(s, "a") == Approx(0.1));
  // Q(s, a) = 0.1 + 0.1 (0.5 + 0.95 max(Q(s', a) = 0, Q(s', b) = 0.1) - 0.1) = 0.1 + 0.1 * 0.495 = 0.1495
  q.update_transition(x, "a", 0.5, x_next);
  CHECK(q.q(s, "a") == Approx(0.1495).epsilon(1e-12));
  CHECK(q.q(s, "b") == 0.0);
  // Decisions: epsilon-greedy on Q(s, .): 0.9 + 0.05 for a, 0.05 for b.
  Rng rng(1);
  Distribution d = q.distribution(x, rng);
  CHECK(d[0].action == "a");
  CHECK(d[0].probability == Approx(0.95));
  CHECK(d[1].probability == Approx(0.05));
  // Retiring b removes it from the max: Q(s', .) over {a} = 0.
  q.retire_action("b");
  q.update_transition(x, "a", 0.0, x_next);
  CHECK(q.q(s, "a") == Approx(0.1495 + 0.1 * (0.0 + 0.95 * 0.0 - 0.1495)).epsilon(1e-12));
}

TEST_CASE("the default policy learns a synthetic linear-reward problem", "[select]") {
  // K = 5 actions, raw contexts of mixed scale in R^8. The mean reward of action k is linear in the policy's
  // own feature map: mu_k(x) = 0.5 + 0.3 w_k^T z(x), |w_k| = 1/sqrt(2), so mu_k is in [0.2, 0.8] (|z| = sqrt 2).
  // Rewards are Bernoulli(mu_k). We score the chosen actions' mean rewards (no Bernoulli noise) against
  // uniform (the mean of mu_k) and the oracle (max_k mu_k) on the same contexts.
  // Tolerance. In the second half every action has about n_a = T / (2K) samples, so an estimate mu^_a(x)
  // has a standard error of about sigma sqrt(z^T A_a^-1 z) ~ sigma sqrt(D / n_a) (|z|^2 = 2 spread over D
  // directions; sigma = 0.5 bounds a Bernoulli's sd). A wrong choice needs the difference of two errors
  // (sd ~ sqrt(2) of one) to exceed the true gap, and then costs at most that gap, so the expected regret per
  // round is at most about sqrt(2) sigma sqrt(D / n_a), plus the 1% floor's share eps (oracle - uniform).
  // With T = 20000, K = 5, D = 9: n_a = 2000, bound = 0.047 + 0.001. "Beats uniform": more than half the
  // oracle-over-uniform gap over the whole run. The measured figures are printed by INFO.
  const int d = 8, k = 5, n = 20000;
  auto policy = make_policy("linucb", json::object(), d);
  const auto& models = dynamic_cast<const LinearPolicy&>(*policy).models();
  Rng rng(41);
  std::vector<Eigen::VectorXd> w;
  for (int a = 0; a < k; ++a) {
    Eigen::VectorXd v(d + 1);
    for (int j = 0; j <= d; ++j) v(j) = rng.normal();
    w.push_back(v.normalized() / std::sqrt(2.0));
    policy->add_action("t" + std::to_string(a));
  }
  double got = 0, uniform = 0, oracle = 0, got2 = 0, uniform2 = 0, oracle2 = 0;
  for (int t = 0; t < n; ++t) {
    const Eigen::VectorXd x = random_context(rng, d);
    const Eigen::VectorXd z = models.transform(x);
    std::vector<double> mu(k);
    for (int a = 0; a < k; ++a) mu[static_cast<std::size_t>(a)] = 0.5 + 0.3 * w[static_cast<std::size_t>(a)].dot(z);
    const Distribution dist = policy->distribution(x, rng);
    double u = rng.uniform(), acc = 0;
    std::size_t c = 0;
    for (; c + 1 < dist.size() && u >= (acc += dist[c].probability); ++c) {
    }
    const int a = std::stoi(dist[c].action.substr(1));
    const double m = mu[static_cast<std::size_t>(a)];
    policy->update(x, dist[c].action, rng.bernoulli(m) ? 1.0 : 0.0, dist[c].probability);
    double mean = 0, best = 0;
    for (double v : mu) mean += v / k, best = std::max(best, v);
    got += m, uniform += mean, oracle += best;
    if (t >= n / 2) got2 += m, uniform2 += mean, oracle2 += best;
  }
  got /= n, uniform /= n, oracle /= n, got2 /= n / 2, uniform2 /= n / 2, oracle2 /= n / 2;
  INFO("policy " << got << " uniform " << uniform << " oracle " << oracle << "; second half " << got2 << " "
                 << uniform2 << " " << oracle2);
  CHECK((got - uniform) / (oracle - uniform) > 0.5);
  const double n_a = n / (2.0 * k), big_d = d + 1;
  const double bound = std::sqrt(2.0) * 0.5 * std::sqrt(big_d / n_a) + 0.01 * (oracle2 - uniform2);
  CHECK(oracle2 - got2 < bound);
}

TEST_CASE("factory: config keys, defaults and errors", "[select]") {
  auto p = make_policy("linucb", json::object(), 4);
  const auto& lin = dynamic_cast<const LinUcbPolicy&>(*p);
  CHECK(lin.params().alpha == 0.5);
  CHECK(lin.params().epsilon_floor == 0.05);
  CHECK(lin.params().ridge_lambda == LinUcbParams{}.ridge_lambda);
  auto p2 = make_policy("linucb", {{"alpha", 0.25}, {"ridge_lambda", 2.0}}, 4);
  CHECK(dynamic_cast<const LinUcbPolicy&>(*p2).params().alpha == 0.25);
  CHECK(dynamic_cast<const LinUcbPolicy&>(*p2).params().ridge_lambda == 2.0);
  auto q = make_policy("q_learning", json::object(), 4);
  const auto& qp = dynamic_cast<const QLearningPolicy&>(*q).params();
  CHECK(qp.learning_rate == 0.1);
  CHECK(qp.discount_factor == 0.95);
  CHECK(qp.exploration_rate == 0.1);
  CHECK(dynamic_cast<const SoftmaxPolicy&>(*make_policy("softmax", json::object(), 4)).params().temperature == 0.1);
  CHECK(dynamic_cast<const EpsilonGreedyPolicy&>(*make_policy("epsilon_greedy", json::object(), 4)).params().epsilon == 0.1);
  CHECK(dynamic_cast<const ThompsonPolicy&>(*make_policy("thompson", json::object(), 4)).params().v == ThompsonParams{}.v);

  auto message = [](const std::string& algo, const json& params) -> std::string {
    try {
      make_policy(algo, params, 4);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(message("ucb", json::object()) ==
        "learning_strategies.template_selection.algorithm: \"ucb\" is not one of linucb, thompson, epsilon_greedy, "
        "softmax, q_learning");
  CHECK(message("linucb", {{"beta", 1}}) ==
        "learning_strategies.template_selection.parameters.beta: unknown key for algorithm \"linucb\" (known keys: "
        "alpha, epsilon_floor, ridge_lambda)");
  CHECK(message("linucb", {{"alpha", "fast"}}) ==
        "learning_strategies.template_selection.parameters.alpha: expected a number, got \"fast\"");
  CHECK(message("linucb", {{"alpha", -1}}) ==
        "learning_strategies.template_selection.parameters.alpha: -1.0 is outside (0, inf)");
  CHECK(message("q_learning", {{"learning_rate", 1.5}}) ==
        "learning_strategies.template_selection.parameters.learning_rate: 1.5 is outside (0, 1]");
  CHECK(message("epsilon_greedy", {{"epsilon", 2}}) ==
        "learning_strategies.template_selection.parameters.epsilon: 2.0 is outside [0, 1]");
  CHECK_THROWS_AS(make_policy("linucb", json::object(), 0), ValidationError);
}
