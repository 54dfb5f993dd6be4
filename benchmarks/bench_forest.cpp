// placeholder: being written
int bench_forest(int, char**) { return 1; }
