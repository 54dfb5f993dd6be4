#include <catch2/catch.hpp>
// placeholder: being written
TEST_CASE("optimize_bayesian placeholder", "[optimize]") { SUCCEED(); }
