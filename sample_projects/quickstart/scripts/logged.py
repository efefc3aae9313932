"""A plain training script tracked with two lines: ``workbench.init`` and ``run.log``.

It fits a small MLP to a noisy sine wave with a hand-written loop. Run it by hand
(``python scripts/logged.py --epochs 3``: a run of kind ``attached`` appears in the index,
with the script's config and a snapshot of the code), or as a launched run
(``workbench run logged -s lr=0.01``: ``workbench.init`` attaches to that run).
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import nn

import workbench

parser = argparse.ArgumentParser(description="Fit an MLP to a noisy sine wave, tracked with workbench.init")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--lr", type=float, default=3e-3)
parser.add_argument("--hidden", type=int, default=64)
parser.add_argument("--samples", type=int, default=4000)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

run = workbench.init(config=vars(args))  # the two lines: this one ...

torch.manual_seed(args.seed)
x = torch.rand(args.samples, 1) * 2 * math.pi
y = torch.sin(x) + 0.1 * torch.randn_like(x)
split = args.samples // 10
model = nn.Sequential(nn.Linear(1, args.hidden), nn.Tanh(), nn.Linear(args.hidden, args.hidden), nn.Tanh(),
                      nn.Linear(args.hidden, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
step = 0
for epoch in range(1, args.epochs + 1):
    order = torch.randperm(args.samples - split) + split
    for batch in order.split(32):
        loss = nn.functional.mse_loss(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        run.log({"train/loss": loss.item()}, step=step)  # ... and this one
    with torch.no_grad():
        val = nn.functional.mse_loss(model(x[:split]), y[:split]).item()
    run.log({"val/loss": val, "epoch": epoch}, step=step)
    print(f"epoch {epoch}: val/loss {val:.4f}", flush=True)
