"""Times training steps of the GPT of tests/torch/gpt_reference.py under PyTorch DistributedDataParallel
(gloo, CPU): WORLD processes with THREADS threads each, the global batch split over them, random tokens;
forward, backward (DDP's bucketed all-reduce overlaps it), clip, AdamW. Prints one JSON line with the median
step time, as bench_train_step does."""
import argparse
import json
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "torch"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "train"))
import gpt_reference  # noqa: E402
from torch_train_step import step_seconds  # noqa: E402


def worker(rank, a, port, out):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(a.threads)
    dist.init_process_group("gloo", rank=rank, world_size=a.world)
    torch.manual_seed(1)
    model = torch.nn.parallel.DistributedDataParallel(
        gpt_reference.Gpt(a.layers, a.d_model, a.heads, a.seq_len, a.vocab))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    rows = a.batch // a.world
    gen = torch.Generator().manual_seed(100 + rank)
    inputs = torch.randint(0, a.vocab, (rows, a.seq_len), generator=gen)
    targets = torch.randint(0, a.vocab, (rows, a.seq_len), generator=gen)
    seconds = step_seconds(model, opt, inputs, targets, a.steps, before_step=dist.barrier)
    if rank == 0:
        median = seconds[len(seconds) // 2]
        out.put({"impl": f"torch-ddp-{a.world}x{a.threads}", "tokens_per_s": a.batch * a.seq_len / median,
                 "step_ms": median * 1e3})
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    for flag, default in [("layers", 4), ("d-model", 256), ("heads", 4), ("seq-len", 256), ("vocab", 8192),
                          ("batch", 8), ("steps", 10), ("threads", 1), ("world", 2), ("port", 29533)]:
        ap.add_argument("--" + flag, type=int, default=default)
    a = ap.parse_args()
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    mp.start_processes(worker, args=(a, a.port, out), nprocs=a.world, start_method="spawn")
    print(json.dumps(out.get()))


if __name__ == "__main__":
    main()
