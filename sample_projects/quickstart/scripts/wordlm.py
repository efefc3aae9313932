"""A tiny word-level LSTM language model, written like pytorch/examples' word_language_model.

A plain argparse script: it knows nothing of the workbench. It trains on a synthetic corpus
(a random Markov chain over a small vocabulary, fixed by --seed) and prints the same lines
as the example does, which the workbench reads from its output:

    | epoch   1 |    20/   60 batches | lr 20.00 | ms/batch  4.21 | loss  3.63 | ppl    37.71
    | end of epoch   1 | time:  0.31s | valid loss  3.51 | valid ppl    33.45

Run it by hand: ``python scripts/wordlm.py --epochs 2``; or as a run: ``workbench run wordlm``.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch
from torch import nn

parser = argparse.ArgumentParser(description="Tiny word-level LSTM language model (synthetic corpus)")
parser.add_argument("--epochs", type=int, default=3, help="upper epoch limit")
parser.add_argument("--lr", type=float, default=20.0, help="initial learning rate")
parser.add_argument("--batches", type=int, default=60, help="training batches per epoch")
parser.add_argument("--hidden", type=int, default=32, help="LSTM hidden units")
parser.add_argument("--log-interval", type=int, default=20, help="report interval (batches)")
parser.add_argument("--seed", type=int, default=1111, help="random seed")
parser.add_argument("--save", default=os.environ.get("WORKBENCH_ARTIFACTS", "."),
                    help="folder for the checkpoint (default: $WORKBENCH_ARTIFACTS, else here)")
parser.add_argument("--resume", default="", help="a checkpoint to continue from")
args = parser.parse_args()

torch.manual_seed(args.seed)
torch.set_num_threads(1)
VOCAB, BPTT, BATCH = 50, 20, 16

# A corpus with structure to learn: each word has four likely successors.
successors = torch.randint(0, VOCAB, (VOCAB, 4))


def corpus(length: int, generator: torch.Generator) -> torch.Tensor:
    words = [0]
    for _ in range(length - 1):
        words.append(int(successors[words[-1], torch.randint(0, 4, (1,), generator=generator)]))
    return torch.tensor(words)


gen = torch.Generator().manual_seed(args.seed)
train_data = corpus(BATCH * (BPTT * args.batches + 1), gen).view(BATCH, -1).t().contiguous()
valid_data = corpus(BATCH * (BPTT * 10 + 1), gen).view(BATCH, -1).t().contiguous()


class RNNModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Embedding(VOCAB, 16)
        self.rnn = nn.LSTM(16, args.hidden)
        self.decoder = nn.Linear(args.hidden, VOCAB)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.encoder(x))
        return self.decoder(out).view(-1, VOCAB)


model = RNNModel()
criterion = nn.CrossEntropyLoss()
lr, start_epoch = args.lr, 1
if args.resume:
    state = torch.load(args.resume, weights_only=True)
    model.load_state_dict(state["model"])
    lr, start_epoch = float(state["lr"]), int(state["epoch"]) + 1
    print(f"resumed from {args.resume} at epoch {start_epoch}", flush=True)


def batches(data: torch.Tensor):
    for i in range(0, data.size(0) - 1, BPTT):
        seq = min(BPTT, data.size(0) - 1 - i)
        yield data[i:i + seq], data[i + 1:i + 1 + seq].reshape(-1)


def evaluate(data: torch.Tensor) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in batches(data):
            total += len(x) * criterion(model(x), y).item()
            count += len(x)
    return total / count


def train(epoch: int) -> None:
    model.train()
    total, start = 0.0, time.time()
    n = train_data.size(0) // BPTT
    for batch, (x, y) in enumerate(batches(train_data), start=1):
        model.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        total += loss.item()
        if batch % args.log_interval == 0:
            cur = total / args.log_interval
            ms = (time.time() - start) * 1000 / args.log_interval
            print(f"| epoch {epoch:3d} | {batch:5d}/{n:5d} batches | lr {lr:02.2f} | ms/batch {ms:5.2f} | "
                  f"loss {cur:5.2f} | ppl {math.exp(cur):8.2f}", flush=True)
            total, start = 0.0, time.time()


best = None
try:
    for epoch in range(start_epoch, args.epochs + 1):
        epoch_start = time.time()
        train(epoch)
        val_loss = evaluate(valid_data)
        print("-" * 89)
        print(f"| end of epoch {epoch:3d} | time: {time.time() - epoch_start:5.2f}s | valid loss {val_loss:5.2f} | "
              f"valid ppl {math.exp(val_loss):8.2f}")
        print("-" * 89, flush=True)
        if best is None or val_loss < best:
            best = val_loss
        else:
            lr /= 4.0  # anneal when validation stops improving
        os.makedirs(args.save, exist_ok=True)
        path = os.path.join(args.save, f"wordlm-{epoch:03d}.pt")
        torch.save({"model": model.state_dict(), "lr": lr, "epoch": epoch}, path + ".tmp")
        os.replace(path + ".tmp", path)
except KeyboardInterrupt:
    print("-" * 89)
    print("Exiting from training early", flush=True)
