#!/usr/bin/env python3
"""Reference values for tests/fairness_metrics_test.cc, from scikit-learn, numpy and scipy.

Usage: sklearn_reference.py INPUT.json > OUTPUT.json

INPUT: {"cases": [{"scores", "labels" (-1: unknown), "weights", "threshold", "bins", "power",
                   "groups": [{"attribute", "name", "member"}]}],
        "ttests": [{"baseline", "mitigated", "confidence"}],
        "percentiles": [{"values", "q"}]}
Each metric is computed straight from its definition (docs/fairness.md) on the examples repeated by their
weights: AUCs by roc_auc_score on the defined subsets, calibration by numpy binning, the paired test by
scipy.stats.ttest_rel. None (null) where a metric is undefined.
"""
import json
import sys

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score


def auc(y, s):
    if len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, s))


def ece(y, s, bins):
    if len(y) == 0:
        return None
    index = np.minimum(np.floor(s * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = index == b
        if m.any():
            total += m.sum() / len(y) * abs(y[m].mean() - s[m].mean())
    return float(total)


def mean_of(flags, mask):
    return float(flags[mask].mean()) if mask.any() else None


def gap(values):
    v = [x for x in values if x is not None]
    return max(v) - min(v) if len(v) >= 2 else None


def power_mean(values, p):
    v = np.array([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return None
    with np.errstate(divide="ignore"):
        return float(np.mean(v ** p) ** (1.0 / p))


def case_metrics(case):
    w = np.array(case["weights"], dtype=int)
    s = np.repeat(np.array(case["scores"], dtype=float), w)
    y = np.repeat(np.array(case["labels"], dtype=int), w)
    labelled = y >= 0
    pred = s >= case["threshold"]
    bins, p = case["bins"], case["power"]
    out = {"overall_auc": auc(y[labelled], s[labelled]),
           "overall_ece": ece(y[labelled], s[labelled], bins), "groups": [], "attributes": []}
    attributes = []
    for g in case["groups"]:
        m = np.repeat(np.array(g["member"], dtype=bool), w)
        in_g = m & labelled
        bpsn = labelled & ((m & (y == 0)) | (~m & (y == 1)))
        bnsp = labelled & ((m & (y == 1)) | (~m & (y == 0)))
        out["groups"].append({
            "subgroup_auc": auc(y[in_g], s[in_g]),
            "bpsn_auc": auc(y[bpsn], s[bpsn]),
            "bnsp_auc": auc(y[bnsp], s[bnsp]),
            "positive_rate": mean_of(pred, m),
            "tpr": mean_of(pred, m & (y == 1)),
            "fpr": mean_of(pred, m & (y == 0)),
            "ece": ece(y[in_g], s[in_g], bins),
        })
        if g["attribute"] not in attributes:
            attributes.append(g["attribute"])
    for a in attributes:
        rows = [r for r, g in zip(out["groups"], case["groups"]) if g["attribute"] == a]
        tpr_gap, fpr_gap = gap([r["tpr"] for r in rows]), gap([r["fpr"] for r in rows])
        out["attributes"].append({
            "subgroup_auc_gap": gap([r["subgroup_auc"] for r in rows]),
            "dpd": gap([r["positive_rate"] for r in rows]),
            "eod": tpr_gap,
            "fpr_gap": fpr_gap,
            "equalized_odds": None if tpr_gap is None or fpr_gap is None else max(tpr_gap, fpr_gap),
            "bpsn_auc_gap": gap([r["bpsn_auc"] for r in rows]),
            "bnsp_auc_gap": gap([r["bnsp_auc"] for r in rows]),
        })
    means = [power_mean([r[k] for r in out["groups"]], p) for k in ("subgroup_auc", "bpsn_auc", "bnsp_auc")]
    out["power_means"] = means
    parts = [out["overall_auc"]] + means
    out["final_bias"] = None if None in parts else 0.25 * sum(parts)
    eces = [r["ece"] for r in out["groups"] if r["ece"] is not None]
    out["ece_max"] = max(eces) if eces else None
    return out


def ttest(t):
    b, m = np.array(t["baseline"], dtype=float), np.array(t["mitigated"], dtype=float)
    res = stats.ttest_rel(m, b)
    d = m - b
    n = len(d)
    half = stats.t.ppf((1 + t["confidence"]) / 2, n - 1) * d.std(ddof=1) / np.sqrt(n)
    return {"t": float(res.statistic), "p": float(res.pvalue), "mean_difference": float(d.mean()),
            "ci": [float(d.mean() - half), float(d.mean() + half)]}


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    out = {"cases": [case_metrics(c) for c in spec.get("cases", [])],
           "ttests": [ttest(t) for t in spec.get("ttests", [])],
           "percentiles": [[float(x) for x in np.percentile(np.array(p["values"], dtype=float), p["q"])]
                           for p in spec.get("percentiles", [])]}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
