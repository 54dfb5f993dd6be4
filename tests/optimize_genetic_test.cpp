#include <catch2/catch.hpp>
// placeholder: being written
TEST_CASE("optimize_genetic placeholder", "[optimize]") { SUCCEED(); }
