// Placeholder: being written (issue 7).
#include <iostream>
int bench_scrub(int, char**) { std::cerr << "bench scrub: not built yet\n"; return 2; }
