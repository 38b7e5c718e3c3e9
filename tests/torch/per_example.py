"""Per-example gradients for the DP-SGD test, independently of triad: one forward of the whole batch through
the PyTorch reference model in float64, then for each example torch.autograd.grad of its own loss (the mean
over its tokens, as in triad) through that shared graph. triad instead runs each example alone; the two
agree only if both are exact. (torch.func's vmap(grad) does the same, but Debian's torch 1.13 lacks it.)
Also writes the DP-SGD gradient without noise, (sum_i min(1, C / |g_i|) g_i) / B, for the clip norm C given.

usage: per_example.py CONFIG.json WEIGHTS.safetensors TOKENS.json CLIP OUT.safetensors
OUT holds "grad.<name>" of shape (B, ...) per parameter, "norm" (B,) and "dp.<name>"."""
import json
import sys

import torch
import torch.nn.functional as F

import gpt_reference
import safetensors_io


def main():
    config_path, weights_path, tokens_path, clip, out_path = sys.argv[1:6]
    clip = float(clip)
    config = json.load(open(config_path))
    tokens = json.load(open(tokens_path))
    model = gpt_reference.Gpt(config["layers"], config["d_model"], config["heads"], config["seq_len"], config["vocab"])
    model.load_state_dict(safetensors_io.load(weights_path))
    model = model.double()
    names = [name for name, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    inputs = torch.tensor(tokens["inputs"], dtype=torch.long)
    targets = torch.tensor(tokens["targets"], dtype=torch.long)
    logits, _ = model(inputs)
    V = logits.size(-1)
    token_losses = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none")
    example_losses = token_losses.view(inputs.shape).mean(dim=1)
    per_example = [torch.autograd.grad(loss, params, retain_graph=True) for loss in example_losses]
    grads = {name: torch.stack([g[i] for g in per_example]) for i, name in enumerate(names)}
    B = inputs.shape[0]
    norms = torch.sqrt(sum(g.reshape(B, -1).pow(2).sum(dim=1) for g in grads.values()))
    factors = torch.clamp(clip / norms, max=1.0)
    out = {"norm": norms}
    for name, g in grads.items():
        out["grad." + name] = g
        out["dp." + name] = (g * factors.view(B, *([1] * (g.dim() - 1)))).sum(dim=0) / B
    safetensors_io.save(out_path, out)


if __name__ == "__main__":
    main()
