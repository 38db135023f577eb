#!/usr/bin/python3
"""One SGD step of the FedAvg CNN (or 2NN MLP) in PyTorch, timed like
raftfl-bench-train-step so that the two can be compared on the same machine.

Usage: perf/train_step_pytorch.py [--model cnn|mlp] [--batch 32] [--steps 50]
                                  [--warmup 5] [--threads 1]
Runs with Debian's interpreter (python3-torch installs there, not into a pyenv one).
Prints one human line and one JSON line with the same keys as the C++ benchmark.
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(7 * 7 * 64, 512)
        self.fc2 = nn.Linear(512, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 200)
        self.fc2 = nn.Linear(200, 200)
        self.fc3 = nn.Linear(200, 10)

    def forward(self, x):
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = Cnn() if args.model == "cnn" else Mlp()
    assert sum(p.numel() for p in model.parameters()) == (1663370 if args.model == "cnn" else 199210)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    # The C++ benchmark converts uint8 pixels to normalised floats inside each step; do the
    # same here so that the figures cover the same work.
    pixels = torch.randint(0, 256, (1024, 1, 28, 28), dtype=torch.uint8)
    labels = torch.arange(1024) % 10

    def step(i):
        idx = torch.randint(0, 1024, (args.batch,), generator=torch.Generator().manual_seed(i))
        x = (pixels[idx].float() / 255.0 - 0.2860) / 0.3530
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), labels[idx])
        loss.backward()
        optimizer.step()
        return loss.item()

    for i in range(args.warmup):
        step(i)
    times = []
    for i in range(args.steps):
        start = time.perf_counter()
        step(args.warmup + i)
        times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    median = statistics.median(times)
    p90 = times[len(times) * 9 // 10]
    print(f"pytorch {torch.__version__} {args.model} batch {args.batch}: median {median:.3f} ms per SGD step, "
          f"p90 {p90:.3f} ms ({args.steps} steps, {args.threads} threads)")
    print(json.dumps({"model": args.model, "batch": args.batch, "steps": args.steps, "threads": args.threads,
                      "median_ms": round(median, 4), "p90_ms": round(p90, 4)}, separators=(",", ":")))


if __name__ == "__main__":
    main()
