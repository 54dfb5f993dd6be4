#include <catch2/catch.hpp>
// placeholder: being written
TEST_CASE("optimize_pareto placeholder", "[optimize]") { SUCCEED(); }
