"""Does `triad prune --remove-heads` rank heads well? An independent check in PyTorch (tests/torch/gpt_reference.py):
for every head of a checkpoint, the validation loss with that head silenced (its attn.proj columns zeroed, so
it adds nothing) against the importance prune.cc ranks by, ‖[v.weight_h | v.bias_h]‖_F · ‖proj.weight[:, h]‖_F.

usage: head_ablation.py CKPT DATA_DIR [WINDOWS]
  CKPT: a checkpoint directory (manifest.json, model.safetensors); DATA_DIR: prepared data (val-*.tok);
  WINDOWS: validation windows of seq_len + 1 tokens to average over (default 64).
Prints one JSON line per layer (importance and loss increase per head, and whether the least important head
is the one whose removal costs least) and a summary line."""
import glob
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../tests/torch"))
import gpt_reference  # noqa: E402
import safetensors_io  # noqa: E402

SHARD_HEADER_BYTES = 128  # src/triad/data/shard.h: the header, then little-endian uint16 tokens


def val_windows(data_dir, length, count):
    tokens = np.concatenate([np.fromfile(p, dtype="<u2", offset=SHARD_HEADER_BYTES)
                             for p in sorted(glob.glob(os.path.join(data_dir, "val-*.tok")))])
    n = min(count, len(tokens) // length)
    return torch.from_numpy(tokens[: n * length].astype(np.int64).reshape(n, length))


def main():
    ckpt, data_dir = sys.argv[1:3]
    windows = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    torch.manual_seed(0)
    torch.set_num_threads(2)
    cfg = json.load(open(os.path.join(ckpt, "manifest.json")))["model"]
    model = gpt_reference.Gpt(cfg["layers"], cfg["d_model"], cfg["heads"], cfg["seq_len"], cfg["vocab"],
                              cfg.get("head_size", 0), cfg.get("mlp_width", 0))
    model.load_state_dict(safetensors_io.load(os.path.join(ckpt, "model.safetensors")))
    model.eval()
    batch = val_windows(data_dir, cfg["seq_len"] + 1, windows)

    def loss():
        with torch.no_grad():
            return sum(model(b[None, :-1], b[None, 1:])[1].item() for b in batch) / len(batch)

    base = loss()
    hs = model.h[0].attn.head_size
    width = model.h[0].attn.heads * hs
    agree = 0
    for l, block in enumerate(model.h):
        qkv_w, qkv_b, proj = block.attn.qkv.weight, block.attn.qkv.bias, block.attn.proj.weight
        importance, increase = [], []
        for h in range(block.attn.heads):
            rows = slice(2 * width + h * hs, 2 * width + (h + 1) * hs)
            value = torch.cat([qkv_w[rows].flatten(), qkv_b[rows]]).norm()
            importance.append((value * proj[:, h * hs:(h + 1) * hs].norm()).item())
            saved = proj.data[:, h * hs:(h + 1) * hs].clone()
            proj.data[:, h * hs:(h + 1) * hs] = 0
            increase.append(loss() - base)
            proj.data[:, h * hs:(h + 1) * hs] = saved
        least_important, least_costly = int(np.argmin(importance)), int(np.argmin(increase))
        agree += least_important == least_costly
        print(json.dumps({"layer": l, "importance": [round(x, 4) for x in importance],
                          "loss_increase": [round(x, 5) for x in increase],
                          "least_important": least_important, "least_costly": least_costly}))
    print(json.dumps({"val_loss": base, "windows": len(batch), "layers_where_least_important_is_least_costly":
                      agree, "layers": len(model.h)}))


if __name__ == "__main__":
    main()
