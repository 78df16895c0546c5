#!/usr/bin/python3
"""The PyTorch side of bench/train.mjs: the same LLaMA as models/llama.llm, written out in torch
(torch 1.13, Debian's python3-torch), on weights and token windows that bench/train.mjs exchanges
through a directory:

  meta.json     config, tensor table (name, shape, element offset into weights.bin), batches,
                optimiser settings
  weights.bin   the initial weights, f32 little-endian, concatenated

Modes:
  grads  the loss and every gradient of batch 0 at the initial weights -> grads.bin (same layout
         as weights.bin) and result.json {"loss"}
  train  `steps` AdamW steps over the batches (batch i mod len), printing nothing but result.json
         {"losses": [...], "tokens_per_s": ...}

Run as: /usr/bin/python3 bench/train/torch_llama.py DIR grads|train
"""

import json
import math
import sys
import time

import torch


def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope(x, pos, theta):
    # x [T, H, D]; llmc (and llama.cpp's GGUF order) rotates adjacent pairs (x[2j], x[2j+1]).
    d = x.shape[-1]
    inv_freq = 1.0 / theta ** (torch.arange(0, d // 2, dtype=torch.float32) * 2.0 / d)
    angle = pos.to(torch.float32)[:, None] * inv_freq[None, :]  # [T, D/2]
    cos, sin = torch.cos(angle)[:, None, :], torch.sin(angle)[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return out.reshape(x.shape)


def forward(cfg, w, tokens):
    T = tokens.shape[0]
    dim, nh, nkv = cfg["dim"], cfg["n_heads"], cfg["n_kv_heads"]
    hd = dim // nh
    eps, theta = cfg["norm_eps"], cfg["rope_theta"]
    pos = torch.arange(T)
    h = w["embed"][tokens]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(cfg["n_layers"]):
        p = f"layers.{l}."
        x = rms_norm(h, w[p + "attn_norm"], eps)
        q = rope((x @ w[p + "wq"].T).view(T, nh, hd), pos, theta)
        k = rope((x @ w[p + "wk"].T).view(T, nkv, hd), pos, theta)
        v = (x @ w[p + "wv"].T).view(T, nkv, hd)
        group = nh // nkv
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        s = torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + mask
        o = torch.einsum("hts,shd->thd", torch.softmax(s, dim=-1), v).reshape(T, nh * hd)
        h = h + o @ w[p + "wo"].T
        x = rms_norm(h, w[p + "ffn_norm"], eps)
        gate = torch.nn.functional.silu(x @ w[p + "w_gate"].T)
        h = h + (gate * (x @ w[p + "w_up"].T)) @ w[p + "w_down"].T
    head = w["embed"] if cfg.get("tie_embeddings") else w["lm_head"]
    return rms_norm(h, w["output_norm"], eps) @ head.T


def loss_of(cfg, w, tokens, targets):
    logits = forward(cfg, w, tokens)
    return torch.nn.functional.cross_entropy(logits, targets, ignore_index=-1)


def main():
    out_dir, mode = sys.argv[1], sys.argv[2]
    torch.set_num_threads(2)
    meta = json.load(open(f"{out_dir}/meta.json"))
    cfg = meta["config"]
    flat = torch.from_numpy(__import__("numpy").fromfile(f"{out_dir}/weights.bin", dtype="<f4").copy())
    w = {}
    for t in meta["tensors"]:
        n = math.prod(t["shape"])
        w[t["name"]] = flat[t["offset"] : t["offset"] + n].view(*t["shape"]).clone().requires_grad_(True)
    batches = [
        [(torch.tensor(s["tokens"], dtype=torch.long), torch.tensor(s["targets"], dtype=torch.long)) for s in b]
        for b in meta["batches"]
    ]
    if mode == "grads":
        loss = sum(loss_of(cfg, w, x, y) for x, y in batches[0]) / len(batches[0])
        loss.backward()
        grads = torch.cat([w[t["name"]].grad.reshape(-1) for t in meta["tensors"]])
        grads.detach().numpy().astype("<f4").tofile(f"{out_dir}/grads.bin")
        json.dump({"loss": loss.item()}, open(f"{out_dir}/result.json", "w"))
        return
    o = meta["optimizer"]
    decay = [w[t["name"]] for t in meta["tensors"] if len(t["shape"]) >= 2]
    no_decay = [w[t["name"]] for t in meta["tensors"] if len(t["shape"]) < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": o["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
    )
    losses = []
    tokens = 0
    start = time.perf_counter()
    for step in range(meta["steps"]):
        opt.zero_grad()
        batch = batches[step % len(batches)]
        loss = sum(loss_of(cfg, w, x, y) for x, y in batch) / len(batch)
        loss.backward()
        if o.get("clip"):
            torch.nn.utils.clip_grad_norm_(list(w.values()), o["clip"])
        opt.step()
        losses.append(loss.item())
        tokens += sum(len(x) for x, _ in batch)
    elapsed = time.perf_counter() - start
    json.dump({"losses": losses, "tokens_per_s": tokens / elapsed}, open(f"{out_dir}/result.json", "w"))


if __name__ == "__main__":
    main()
