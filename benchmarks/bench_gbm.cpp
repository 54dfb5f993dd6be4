// placeholder: being written
int bench_gbm(int, char**) { return 1; }
