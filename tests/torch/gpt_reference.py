"""The triad GPT in PyTorch, with the parameter names of triad's checkpoints (docs/checkpoints.md), so
`model.load_state_dict(weights)` takes a triad model.safetensors as it is. Used by the parity test and the
throughput benchmark."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    """head_size 0: d_model / heads; otherwise the attention width heads * head_size may differ from d_model."""

    def __init__(self, d_model, heads, head_size=0):
        super().__init__()
        self.heads = heads
        self.head_size = head_size or d_model // heads
        width = heads * self.head_size
        self.qkv = nn.Linear(d_model, 3 * width)
        self.proj = nn.Linear(width, d_model)

    def forward(self, x):
        B, T, _ = x.shape
        A = self.heads * self.head_size
        q, k, v = self.qkv(x).split(A, dim=2)
        q, k, v = (t.view(B, T, self.heads, self.head_size).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_size)
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=x.device))
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, A)
        return self.proj(y)


class Mlp(nn.Module):
    def __init__(self, d_model, mlp_width=0):
        super().__init__()
        width = mlp_width or 4 * d_model
        self.fc = nn.Linear(d_model, width)
        self.proj = nn.Linear(width, d_model)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, d_model, heads, head_size=0, mlp_width=0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, heads, head_size)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = Mlp(d_model, mlp_width)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Gpt(nn.Module):
    def __init__(self, layers, d_model, heads, seq_len, vocab, head_size=0, mlp_width=0):
        super().__init__()
        self.wte = nn.Embedding(vocab, d_model)
        self.wpe = nn.Embedding(seq_len, d_model)
        self.h = nn.ModuleList(Block(d_model, heads, head_size, mlp_width) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d_model)

    def forward(self, inputs, targets=None):
        B, T = inputs.shape
        x = self.wte(inputs) + self.wpe(torch.arange(T, device=inputs.device))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()  # tied LM head
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
