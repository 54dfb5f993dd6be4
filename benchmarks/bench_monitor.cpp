// Placeholder: being written (issue 7).
#include <iostream>
int bench_monitor(int, char**) { std::cerr << "bench monitor: not built yet\n"; return 2; }
