"""Parity check driver: loads triad's weights and tokens, runs the PyTorch reference in float64 and writes
the loss and every parameter's gradient for the C++ test to compare.

usage: parity.py CONFIG.json WEIGHTS.safetensors TOKENS.json OUT.safetensors"""
import json
import sys

import torch

import gpt_reference
import safetensors_io


def main():
    config_path, weights_path, tokens_path, out_path = sys.argv[1:5]
    config = json.load(open(config_path))
    tokens = json.load(open(tokens_path))
    model = gpt_reference.Gpt(config["layers"], config["d_model"], config["heads"], config["seq_len"], config["vocab"],
                              config.get("head_size", 0), config.get("mlp_width", 0))
    model.load_state_dict(safetensors_io.load(weights_path))
    model = model.double()
    inputs = torch.tensor(tokens["inputs"], dtype=torch.long)
    targets = torch.tensor(tokens["targets"], dtype=torch.long)
    _, loss = model(inputs, targets)
    loss.backward()
    out = {"loss": loss.detach().reshape(1)}
    for name, p in model.named_parameters():
        out["grad." + name] = p.grad
    safetensors_io.save(out_path, out)


if __name__ == "__main__":
    main()
