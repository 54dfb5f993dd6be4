// Placeholder: being written (issue 7).
#include <catch2/catch.hpp>
