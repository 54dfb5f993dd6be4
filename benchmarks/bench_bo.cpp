// placeholder: being written
int bench_bo(int, char**) { return 1; }
