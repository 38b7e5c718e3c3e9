"""PyTorch reference for the rematerialisation benchmark: the same GPT (tests/torch/gpt_reference.py), one
training step with and without torch.utils.checkpoint around each block. Prints one JSON line: median step
times and the process's peak RSS for the mode given.

usage: torch_checkpoint.py --config B|C --checkpoint 0|1 [--steps 4]"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.utils.checkpoint

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "torch"))
import gpt_reference  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="B")
    ap.add_argument("--checkpoint", type=int, default=0)
    ap.add_argument("--steps", type=int, default=4)
    a = ap.parse_args()
    torch.set_num_threads(2)
    L, C, H, T, B, V = (12, 768, 12, 128, 4, 32000) if a.config == "C" else (6, 384, 6, 256, 8, 16384)
    model = gpt_reference.Gpt(L, C, H, T, V)
    if a.checkpoint:
        for block in model.h:
            block.forward = (lambda f: (lambda x: torch.utils.checkpoint.checkpoint(f, x, use_reentrant=False)))(
                block.forward)
    x = torch.randint(0, V, (B, T))
    y = torch.randint(0, V, (B, T))
    times = []
    for i in range(2 + a.steps):
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    print(json.dumps({"step_ms": times[len(times) // 2] * 1e3,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main()
