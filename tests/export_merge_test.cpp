// Placeholder: being written (issue 8).
#include <catch2/catch.hpp>
