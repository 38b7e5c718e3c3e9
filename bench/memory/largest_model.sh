#!/usr/bin/env bash
# The largest GPT that trains 5 steps with decreasing loss within LIMIT of peak RSS: triad with
# --memory-limit (which picks 8-bit states, the fused update and a remat budget as needed) against PyTorch
# 1.13 (fp32 AdamW, per-block torch.utils.checkpoint: bench/memory/torch_fit.py). Models grow depth and width
# together, GPT-2's aspect ratio of 64 (d_model = 64 L, L heads of 64), batch 2 x 64 tokens, vocabulary of
# the data (8192 for data/bundled). Both train at the constant learning rate LR (default 1e-6) after a
# linear warm-up over WARMUP steps (default 1: none). At batch 2 x 64 one AdamW step moves every weight by
# about lr, and at 1e-5 that made a 2.7B model fit the batch it saw (its loss 9.49 -> 4.92) and fail the
# next; at 1e-6 triad's L38 and PyTorch's L28 lower theirs (docs/results/2026-12-05-memory-fit.md).
#
#   flock /tmp/triad-cpu.lock bench/memory/largest_model.sh triad|torch LIMIT_GIB L...
#
# Tries the sizes L in the order given (small to large: stop at the first failure) and prints a JSON line
# per run. A run fails when it is refused, dies, ends with a loss that did not decrease, or peaks above the
# limit. Each run is capped at the limit + 2 GiB of address space (ulimit -v) as a guard against a runaway
# on a shared machine, and at TIMEOUT seconds (default 1800).
set -uo pipefail
cd "$(dirname "$0")/../.."
framework=$1 limit_gib=$2
shift 2
data=${DATA:-data/bundled}
timeout=${TIMEOUT:-1800}
lr=${LR:-1e-6}
warmup=${WARMUP:-1}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cap_kib=$(((limit_gib + 2) * 1024 * 1024))
for L in "$@"; do
  C=$((64 * L))
  if [ "$framework" = triad ]; then
    (ulimit -v $((cap_kib + 8 * 1024 * 1024)) # triad maps its arena lazily: more address space than RSS
     # The whole process's peak (the end-of-run checkpoint included), not only the steps' own records.
     python3 -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024))
sys.exit(rc)' "$out/peak" timeout "$timeout" build/triad train --data "$data" --out "$out/L$L" --force --layers "$L" --d-model "$C" \
       --heads "$L" --seq-len 64 --batch 2 --steps 5 --warmup "$warmup" --lr "$lr" --min-lr-ratio 1 --eval-every 0 --ckpt-every 0 \
       --sample-prompt '' --log-every 1 --threads 2 --memory-limit "${limit_gib}GiB") >"$out/log" 2>&1
    rc=$?
    python3 - "$out/L$L" "$L" "$C" "$rc" "$limit_gib" "$out/log" "$out/peak" <<'PY'
import json, os, sys
run, L, C, rc, limit, log, peak = sys.argv[1:]
chose = [l.strip() for l in open(log) if "--memory-limit" in l]
r = {"framework": "triad", "layers": int(L), "d_model": int(C), "exit": int(rc), "chose": chose[:1]}
path = run + "/metrics.jsonl"
steps = [json.loads(l) for l in open(path)] if os.path.exists(path) else []
steps = [s for s in steps if "loss" in s and "step" in s and "val_loss" not in s]
if steps:
    model = json.load(open(run + "/run.json"))["model"]  # "L12 d768 h12 T64 V8192, 91.40M parameters"
    r["parameters"] = round(float(model.split(", ")[1].split("M")[0]) * 1e6)
    r["losses"] = [round(s["loss"], 4) for s in steps]
    later = steps[1:] or steps
    r["tokens_per_s"] = round(sum(s["tokens_per_s"] for s in later) / len(later), 1)
    r["step_s"] = [round(s["step_ms"] / 1e3, 2) for s in steps]
    r["step_peak_rss_bytes"] = max(s["peak_rss_bytes"] for s in steps)
    process = open(peak).read().strip() if os.path.exists(peak) else ""
    r["peak_rss_bytes"] = max([r["step_peak_rss_bytes"]] + ([int(process)] if process else []))
    r["optimizer_bytes"] = steps[-1].get("optimizer_bytes")
r["ok"] = (int(rc) == 0 and len(steps) == 5 and r["losses"][-1] < r["losses"][0]
           and r["peak_rss_bytes"] <= float(limit) * 2**30)
if int(rc) != 0:
    r["error"] = open(log).read().strip().splitlines()[-1:] 
print(json.dumps(r), flush=True)
sys.exit(0 if r["ok"] else 1)
PY
  else
    (ulimit -v $((cap_kib + 4 * 1024 * 1024))
     timeout "$timeout" /usr/bin/python3 bench/memory/torch_fit.py --data "$data" --layers "$L" --d-model "$C" \
       --heads "$L" --seq-len 64 --batch 2 --steps 5 --lr "$lr" --warmup "$warmup") >"$out/log" 2>&1
    rc=$?
    python3 - "$L" "$C" "$rc" "$limit_gib" "$out/log" <<'PY'
import json, sys
L, C, rc, limit, log = sys.argv[1:]
lines = open(log).read().strip().splitlines()
try:
    r = json.loads(lines[-1])
except (IndexError, ValueError):
    r = {"framework": "pytorch", "layers": int(L), "d_model": int(C), "error": lines[-1:]}
r["exit"] = int(rc)
r["ok"] = (int(rc) == 0 and "losses" in r and r["losses"][-1] < r["losses"][0]
           and r["peak_rss_bytes"] <= float(limit) * 2**30)
print(json.dumps(r), flush=True)
sys.exit(0 if r["ok"] else 1)
PY
  fi
  [ $? -eq 0 ] || break
done
