#!/usr/bin/env bash
# Training state per parameter with fp32 and 8-bit AdamW moments (--optimizer-states), each with and without
# the fused update (--fused-update; and with --clip 0, its one-pass form), on a model big enough
# that the parameters' state dominates the process (L12 d768, ~91M parameters; batch 2 x 64 tokens keeps
# activations small). Prints, per setting, AdamW's state_bytes (metrics' optimizer_bytes) and the peak RSS
# after 3 steps, as JSON lines. Run under flock /tmp/triad-cpu.lock; DATA defaults to data/bundled.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${DATA:-data/bundled}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for setting in "fp32" "8bit" "fp32 --fused-update" "8bit --fused-update" "8bit --fused-update --clip 0"; do
  name=${setting// /_}
  # shellcheck disable=SC2086 # the setting's words are flags
  build/triad train -q --data "$data" --out "$out/$name" --layers 12 --d-model 768 --heads 12 --seq-len 64 \
    --batch 2 --steps 3 --eval-every 0 --ckpt-every 0 --sample-prompt '' --threads 2 \
    --optimizer-states $setting >/dev/null
  python3 - "$out/$name" "$setting" <<'PY'
import json, sys
run, states = sys.argv[1], sys.argv[2]
steps = [json.loads(l) for l in open(run + "/metrics.jsonl") if '"loss"' in l and 'val_loss' not in l]
params = json.load(open(run + "/run.json"))["model"]
last = steps[-1]
print(json.dumps({"states": states, "model": params, "optimizer_bytes": last["optimizer_bytes"],
                  "peak_rss_bytes": last["peak_rss_bytes"], "losses": [round(s["loss"], 4) for s in steps],
                  "step_ms": [round(s["step_ms"]) for s in steps]}))
PY
done
