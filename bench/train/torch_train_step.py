"""Times full training steps of the same GPT in PyTorch (tests/torch/gpt_reference.py): forward, backward,
clip, AdamW, on random tokens. Prints one JSON line like build/bench_train_step."""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "torch"))
import gpt_reference  # noqa: E402


def step_seconds(model, opt, inputs, targets, steps, before_step=lambda: None):
    """Sorted wall times of `steps` training steps (forward, backward, clip, AdamW) after 2 untimed ones."""
    seconds = []
    for s in range(2 + steps):
        before_step()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _, loss = model(inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if s >= 2:
            seconds.append(time.perf_counter() - t0)
    return sorted(seconds)


def main():
    ap = argparse.ArgumentParser()
    for flag, default in [("layers", 4), ("d-model", 256), ("heads", 4), ("seq-len", 256), ("vocab", 8192),
                          ("batch", 8), ("steps", 6), ("threads", 2)]:
        ap.add_argument("--" + flag, type=int, default=default)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = gpt_reference.Gpt(a.layers, a.d_model, a.heads, a.seq_len, a.vocab)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    inputs = torch.randint(0, a.vocab, (a.batch, a.seq_len))
    targets = torch.randint(0, a.vocab, (a.batch, a.seq_len))
    seconds = step_seconds(model, opt, inputs, targets, a.steps)
    median = seconds[len(seconds) // 2]
    print(json.dumps({"impl": "torch", "tokens_per_s": a.batch * a.seq_len / median, "step_ms": median * 1e3,
                      "params": sum(p.numel() for p in model.parameters()),
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main()
