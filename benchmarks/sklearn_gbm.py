#!/usr/bin/python3
"""Baselines of `promptlearn_bench gbm`: scikit-learn's GradientBoostingRegressor and
HistGradientBoostingRegressor with the specification's settings, on the same CSV files, printing the same
metrics as the C++ bench (one JSON object per line).

    OMP_NUM_THREADS is forced to 1 before scikit-learn is imported (HGB's histograms use OpenMP).
    /usr/bin/python3 benchmarks/sklearn_gbm.py --train FILE --test FILE --target NAME [--model gbr|hgb|all]
        [--trees 200] [--depth 6] [--lr 0.1] [--single-rows 1000]

Metrics: test_r2, test_rmse, train_seconds (fit only, CSV reading excluded), predict_us_per_row (one
predict call on the whole test set, divided by its rows) and predict_single_us_per_row (predict called on
one row at a time, --single-rows rows; includes scikit-learn's per-call overhead).
"""
import os

os.environ["OMP_NUM_THREADS"] = "1"  # before numpy / scikit-learn load their thread pools

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor  # noqa: E402
from sklearn.metrics import mean_squared_error, r2_score  # noqa: E402


def read(path, target):
    with open(path) as f:
        header = [h.strip() for h in f.readline().strip().split(",")]
    if target not in header:
        raise SystemExit(f"{path}: no column named \"{target}\" (columns: {', '.join(header)})")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    t = header.index(target)
    return np.delete(data, t, axis=1), data[:, t]


def emit(model, metric, value, unit, extra):
    print(json.dumps({"bench": "gbm", "impl": f"sklearn_{model}", "metric": metric, "value": value, "unit": unit,
                      **extra}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--model", default="all", choices=["gbr", "hgb", "all"])
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--single-rows", type=int, default=1000)
    a = ap.parse_args()
    Xtr, ytr = read(a.train, a.target)
    Xte, yte = read(a.test, a.target)
    models = {
        "gbr": lambda: GradientBoostingRegressor(n_estimators=a.trees, learning_rate=a.lr, max_depth=a.depth,
                                                 random_state=42),
        "hgb": lambda: HistGradientBoostingRegressor(max_iter=a.trees, learning_rate=a.lr, max_depth=a.depth,
                                                     max_leaf_nodes=None, early_stopping=False, random_state=42),
    }
    for name in (["gbr", "hgb"] if a.model == "all" else [a.model]):
        m = models[name]()
        t0 = time.perf_counter()
        m.fit(Xtr, ytr)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = m.predict(Xte)
        batch_us = (time.perf_counter() - t0) * 1e6 / len(yte)
        k = min(a.single_rows, len(yte))
        t0 = time.perf_counter()
        for i in range(k):
            m.predict(Xte[i:i + 1])
        single_us = (time.perf_counter() - t0) * 1e6 / k
        extra = {"rows_train": int(len(ytr)), "rows_test": int(len(yte)), "features": int(Xtr.shape[1]),
                 "trees": a.trees, "depth": a.depth, "lr": a.lr, "omp_num_threads": os.environ["OMP_NUM_THREADS"]}
        emit(name, "test_r2", float(r2_score(yte, pred)), "r2", extra)
        emit(name, "test_rmse", float(np.sqrt(mean_squared_error(yte, pred))), a.target, extra)
        emit(name, "train_seconds", train_s, "s", extra)
        emit(name, "predict_us_per_row", batch_us, "us", extra)
        emit(name, "predict_single_us_per_row", single_us, "us", extra)


if __name__ == "__main__":
    main()
