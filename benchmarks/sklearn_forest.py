#!/usr/bin/python3
"""scikit-learn reference for `promptlearn_bench forest`: the same protocol, printing the same JSON lines.

Usage: /usr/bin/python3 benchmarks/sklearn_forest.py --csv FILE --label NAME [--folds 5] [--folds-file FILE]
                                                     [--model forest|calibrated|all]

Models (compare each with the promptlearn line of the same "model"):
  forest             RandomForestClassifier(n_estimators=100, max_depth=10, random_state=42, n_jobs=1)
  calibrated_forest  CalibratedClassifierCV(that forest, method="isotonic", cv=5)  (ensemble=True)
Folds: --folds-file (one fold id per data row, as written by `promptlearn_bench forest --folds-out FILE`)
gives exactly promptlearn's folds; without it StratifiedKFold(folds, shuffle=True, random_state=42).
Metrics: cv_accuracy and cv_accuracy_std (numpy.std, ddof 0) over folds; log_loss = mean over folds of
-mean log max(p_true, 1e-15); ece = top-label expected calibration error, 10 equal-width bins, over all
held-out rows; fit_seconds = mean wall time of one fit; predict_one_us = mean wall time of predict_proba
on one row (measured on up to 200 held-out rows per fold: each call costs milliseconds of overhead).
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", required=True)
    ap.add_argument("--label", default="label")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--folds-file")
    ap.add_argument("--model", default="all", choices=["forest", "calibrated", "all"])
    a = ap.parse_args()
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold

    with open(a.csv) as f:
        header = [h.strip() for h in f.readline().strip().split(",")]
    data = np.loadtxt(a.csv, delimiter=",", skiprows=1, ndmin=2)
    li = header.index(a.label)
    raw = data[:, li].astype(int)
    classes = np.unique(raw)
    y = np.searchsorted(classes, raw)
    X = np.delete(data, li, axis=1)
    k = len(classes)
    if a.folds_file:
        fold_of = np.loadtxt(a.folds_file, dtype=int)
        splits = [(np.where(fold_of != f)[0], np.where(fold_of == f)[0]) for f in range(a.folds)]
    else:
        splits = list(StratifiedKFold(a.folds, shuffle=True, random_state=42).split(X, y))
    dataset = os.path.splitext(os.path.basename(a.csv))[0]
    for model in ["forest", "calibrated"]:
        if a.model not in ("all", model):
            continue
        accs, losses, fit_s, pred_s, pred_n = [], [], [], 0.0, 0
        conf, hit = np.zeros(10), np.zeros(10)
        for train, test in splits:
            rf = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=42, n_jobs=1)
            m = rf if model == "forest" else CalibratedClassifierCV(rf, method="isotonic", cv=5)
            t0 = time.perf_counter()
            m.fit(X[train], y[train])
            fit_s.append(time.perf_counter() - t0)
            P = np.zeros((len(test), k))
            P[:, m.classes_] = m.predict_proba(X[test])
            for r in test[:200]:
                t0 = time.perf_counter()
                m.predict_proba(X[r:r + 1])
                pred_s += time.perf_counter() - t0
                pred_n += 1
            yt = y[test]
            accs.append(float(np.mean(np.argmax(P, axis=1) == yt)))
            losses.append(float(-np.mean(np.log(np.maximum(P[np.arange(len(yt)), yt], 1e-15)))))
            top = P.max(axis=1)
            b = np.minimum(9, np.floor(top * 10)).astype(int)
            np.add.at(conf, b, top)
            np.add.at(hit, b, (np.argmax(P, axis=1) == yt).astype(float))
        name = "forest" if model == "forest" else "calibrated_forest"
        for metric, value, unit in [("cv_accuracy", np.mean(accs), "accuracy"), ("cv_accuracy_std", np.std(accs), "accuracy"),
                                    ("log_loss", np.mean(losses), "nats"),
                                    ("ece", float(np.sum(np.abs(hit - conf)) / len(y)), "probability"),
                                    ("fit_seconds", np.mean(fit_s), "s"), ("predict_one_us", pred_s / pred_n * 1e6, "us")]:
            print(json.dumps({"bench": "forest", "dataset": dataset, "model": name, "folds": a.folds, "metric": metric,
                              "value": float(value), "unit": unit, "implementation": "sklearn"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
