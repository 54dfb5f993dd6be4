#!/usr/bin/env python3
"""Export scikit-learn's bundled (offline) classification datasets to CSV for `promptlearn_bench bandit`.

Usage: python3 benchmarks/export_datasets.py OUT_DIR
Writes OUT_DIR/{digits,iris,wine,breast_cancer}.csv: a header row, the raw numeric feature columns
(f0, f1, ...) and an integer class column `label`. Nothing is downloaded; these four datasets ship
inside scikit-learn (Debian: python3-sklearn). A reference tool, not a build dependency.
Also writes OUT_DIR/synthetic_scaled.csv, a held-out check of scale robustness: make_classification
(3000 rows, 20 features of which 8 informative, 5 classes, random_state=0) with each column multiplied by
10^u, u ~ U(-2, 3), and shifted by a random offset (fixed seed), so the raw columns differ in scale by up
to 10^5 and are not centred.
"""
import csv
import os
import sys


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 2 if len(argv) != 2 else 0
    try:
        from sklearn import datasets
    except ImportError:
        sys.stderr.write("export_datasets.py: scikit-learn is not importable "
                         "(Debian: apt-get install python3-sklearn; with pyenv try /usr/bin/python3)\n")
        return 1
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    loaders = {
        "digits": datasets.load_digits,
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
    }
    for name, load in loaders.items():
        bunch = load()
        x, y = bunch.data, bunch.target
        path = os.path.join(out, name + ".csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["f%d" % j for j in range(x.shape[1])] + ["label"])
            for row, label in zip(x, y):
                w.writerow([repr(float(v)) for v in row] + [int(label)])
        print("%s: %d rows, %d features, %d classes -> %s" % (name, x.shape[0], x.shape[1], len(set(y)), path))
    import numpy as np
    x, y = datasets.make_classification(n_samples=3000, n_features=20, n_informative=8, n_redundant=4,
                                        n_classes=5, n_clusters_per_class=1, random_state=0)
    rng = np.random.RandomState(0)
    scale = 10.0 ** rng.uniform(-2, 3, size=x.shape[1])
    x = x * scale + rng.uniform(0, 3, size=x.shape[1]) * scale
    path = os.path.join(out, "synthetic_scaled.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["f%d" % j for j in range(x.shape[1])] + ["label"])
        for row, label in zip(x, y):
            w.writerow([repr(float(v)) for v in row] + [int(label)])
    print("synthetic_scaled: %d rows, %d features, %d classes -> %s" % (x.shape[0], x.shape[1], len(set(y)), path))
    x, y = datasets.make_classification(n_samples=4000, n_features=30, n_informative=10, n_redundant=5,
                                        n_classes=8, n_clusters_per_class=2, random_state=7)
    rng = np.random.RandomState(7)
    x[:, :10] = np.round(10.0 * np.exp(x[:, :10]))
    x[:, 10:15] = (x[:, 10:15] > 0).astype(float)
    x[:, 15:] = x[:, 15:] * 10.0 ** rng.uniform(-1, 2, size=x.shape[1] - 15)
    write(os.path.join(out, "heldout_mixed.csv"), x, y)
    print("heldout_mixed: %d rows, %d features, %d classes" % (x.shape[0], x.shape[1], len(set(y))))
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    for name in list(loaders) + ["synthetic_scaled", "heldout_mixed"]:
        data = np.loadtxt(os.path.join(out, name + ".csv"), delimiter=",", skiprows=1)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
        acc = cross_val_score(model, data[:, :-1], data[:, -1].astype(int), cv=folds).mean()
        print('{"dataset": "%s", "reference": "logistic_regression_full_information_cv5_shuffled", "accuracy": %.4f}' % (name, acc))
    return 0


def write(path, x, y):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["f%d" % j for j in range(x.shape[1])] + ["label"])
        for row, label in zip(x, y):
            w.writerow([repr(float(v)) for v in row] + [int(label)])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
