#!/usr/bin/python3
"""Writes the regression data set of `promptlearn_bench gbm` (issue 5).

Friedman #1 (Friedman 1991, "Multivariate adaptive regression splines"; scikit-learn's make_friedman1):
    y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise * N(0, 1),   x ~ U[0, 1]^20,
so 5 of the 20 features matter (non-linearly, with an interaction) and 15 are pure noise. noise = 1.0
gives a Bayes-optimal test R2 of about 0.96 (Var y is about 24 + 1).

One draw of train_rows + test_rows rows with a fixed seed; the first train_rows rows are the train file,
the rest the test file. Columns x0 .. x19 and y, with a header row.

    /usr/bin/python3 benchmarks/gbm_data.py --out-dir /tmp/gbm [--train-rows 100000] [--test-rows 20000]
        [--seed 0] [--noise 1.0]
writes OUT_DIR/gbm_train.csv and OUT_DIR/gbm_test.csv (target column "y").
"""
import argparse
import os

import numpy as np
from sklearn.datasets import make_friedman1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--train-rows", type=int, default=100_000)
    ap.add_argument("--test-rows", type=int, default=20_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--noise", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    X, y = make_friedman1(n_samples=a.train_rows + a.test_rows, n_features=a.features, noise=a.noise,
                          random_state=a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    header = ",".join([f"x{j}" for j in range(a.features)] + ["y"])
    data = np.column_stack([X, y])
    for name, part in (("gbm_train.csv", data[: a.train_rows]), ("gbm_test.csv", data[a.train_rows :])):
        path = os.path.join(a.out_dir, name)
        # %.17g round-trips every double exactly, so C++ and Python read identical values.
        np.savetxt(path, part, delimiter=",", header=header, comments="", fmt="%.17g")
        print(f"wrote {path}: {part.shape[0]} rows x {part.shape[1] - 1} features + target")


if __name__ == "__main__":
    main()
