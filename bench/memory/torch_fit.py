"""PyTorch side of the largest-model benchmark (bench/memory/largest_model.sh): the same GPT as triad
(tests/torch/gpt_reference.py: pre-LayerNorm blocks, GELU MLP, tied LM head), AdamW with fp32 states
(torch.optim.AdamW, betas 0.9/0.95, weight decay 0.1), gradient clipping to 1, and torch.utils.checkpoint
around every block, trained on the windows of a triad token shard. Prints one JSON line: parameters, each
step's loss, tokens/s over the steps after the first, and the process's peak RSS.

usage: torch_fit.py --layers L --d-model C --heads H --seq-len T --batch B --data DIR [--steps 5]"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.utils.checkpoint

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "torch"))
import gpt_reference  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    for name, default in [("layers", 12), ("d-model", 768), ("heads", 12), ("seq-len", 64), ("batch", 2),
                          ("steps", 5), ("threads", 2), ("seed", 1234), ("warmup", 0)]:
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--data", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    shard = os.path.join(a.data, "train-00000.tok")
    header = np.fromfile(shard, dtype=np.uint8, count=128)
    vocab = int(header[32:36].view(np.uint32)[0])
    tokens = np.memmap(shard, dtype=np.uint16, mode="r", offset=128)
    model = gpt_reference.Gpt(a.layers, a.d_model, a.heads, a.seq_len, vocab)
    for block in model.h:  # per-block checkpointing: only each block's input is kept for the backward
        block.forward = (lambda f: (lambda x: torch.utils.checkpoint.checkpoint(f, x, use_reentrant=False)))(
            block.forward)
    with torch.no_grad():  # GPT-2's initialisation, as triad's (init_weights): N(0, 0.02), zero biases
        for n, p in model.named_parameters():
            if n.endswith("bias"):
                p.zero_()
            elif p.dim() == 2:
                p.normal_(0.0, 0.02)
    params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and n.startswith("h.")]
    rest = [p for n, p in model.named_parameters() if not (p.dim() == 2 and n.startswith("h."))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), foreach=False)
    # triad's linear warm-up (train/options.cc learning_rate): lr * (step + 1) / warmup, then constant here
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / max(1, a.warmup)))
    rng = np.random.default_rng(a.seed)
    losses, times = [], []
    for _ in range(a.steps):
        starts = rng.integers(0, len(tokens) - a.seq_len - 1, a.batch)
        w = torch.from_numpy(np.stack([tokens[s:s + a.seq_len + 1].astype(np.int64) for s in starts]))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _, loss = model(w[:, :-1].contiguous(), w[:, 1:].contiguous())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        warmup.step()
        times.append(time.perf_counter() - t0)
        losses.append(round(loss.item(), 4))
    later = times[1:] or times
    print(json.dumps({"framework": "pytorch " + torch.__version__, "layers": a.layers, "d_model": a.d_model,
                      "parameters": params, "losses": losses,
                      "tokens_per_s": round(a.batch * a.seq_len * len(later) / sum(later), 1),
                      "step_s": [round(t, 2) for t in times],
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main()
