#include <catch2/catch.hpp>
// placeholder: being written
TEST_CASE("models gbm placeholder", "[models]") { SUCCEED(); }
