// Placeholder: being written (issue 8).
#include <iostream>
#include "cli.hpp"
namespace promptlearn::cli {
int run_report(const Args&) { std::cerr << "promptlearn report: not built yet\n"; return 2; }
}  // namespace promptlearn::cli
