"""Reference values for tests/explain_metrics_test.cc, computed with scikit-learn and numpy.

Input (argv[1]): JSON {"ap": [{"rationale": [0/1...], "scores": [...]}...],
                       "prf": [{"rationale": [...], "predicted": [...]}...],
                       "rollout": [{"tokens": T, "layers": [[T*T row-major]...], "residual": r}...]}.
Output (stdout): JSON {"ap": [...], "prf": [[p, r, f1]...], "rollout": [[T*T]...]}; an AP without a positive
token is null (scikit-learn warns and returns a meaningless value there).
"""
import json
import sys
import warnings

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_fscore_support


def rollout(case):
    t, r = case["tokens"], case["residual"]
    out = np.eye(t)
    for a in case["layers"]:
        hat = r * np.eye(t) + (1 - r) * np.array(a, dtype=np.float64).reshape(t, t)
        hat = hat / hat.sum(axis=1, keepdims=True)
        out = hat @ out
    return out.reshape(-1).tolist()


def main():
    spec = json.load(open(sys.argv[1]))
    warnings.simplefilter("ignore")
    ap = [average_precision_score(c["rationale"], c["scores"]) if any(c["rationale"]) else None
          for c in spec["ap"]]
    prf = []
    for c in spec["prf"]:
        p, r, f, _ = precision_recall_fscore_support(c["rationale"], c["predicted"], average="binary",
                                                     zero_division=0)
        prf.append([float(p), float(r), float(f)])
    json.dump({"ap": ap, "prf": prf, "rollout": [rollout(c) for c in spec["rollout"]]}, sys.stdout)


main()
