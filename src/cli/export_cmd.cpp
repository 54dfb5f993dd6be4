// Placeholder: being written (issue 8).
#include <iostream>
#include "cli.hpp"
namespace promptlearn::cli {
int run_export(const Args&) { std::cerr << "promptlearn export: not built yet\n"; return 2; }
int run_merge(int, char**) { std::cerr << "promptlearn merge: not built yet\n"; return 2; }
}  // namespace promptlearn::cli
