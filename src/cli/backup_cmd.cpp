// Placeholder: being written (issue 7).
#include <iostream>
#include "cli.hpp"
namespace promptlearn::cli {
int run_backup(const Args&) { std::cerr << "promptlearn backup: not built yet\n"; return 2; }
}  // namespace promptlearn::cli
