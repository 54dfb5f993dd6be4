// promptlearn_bench merge: merging shard files (lifecycle/merge.hpp) against its baselines.
int bench_merge(int argc, char** argv);
int bench_merge(int, char**) { return 2; }
