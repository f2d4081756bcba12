"""Samples/s of one MNIST training epoch in PyTorch (Debian's python3-torch), the same models, data, batch size,
optimizer and loop shape as the TorchSharp benchmark. Prints "RATE <model> pytorch <samples/s>".
Usage: pytorch_bench.py <datasets dir> <mlp samples> <cnn samples> <threads>"""
import gzip
import os
import sys
import time

import numpy as np
import torch
from torch import nn

datasets, n_mlp, n_cnn, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
BATCH = 64
n_max = max(n_mlp, n_cnn)
if n_max > 10000:
    sys.exit("pytorch_bench.py reads part 0 of mnist-train (10,000 images): use at most 10000 samples")
d = os.path.join(datasets, "mnist-train")
with gzip.open(os.path.join(d, "train-images-idx3-ubyte.part0-of-6.gz")) as f:
    images = np.frombuffer(f.read(), dtype=np.uint8, offset=16)[: n_max * 784]
with gzip.open(os.path.join(d, "train-labels-idx1-ubyte.part0-of-6.gz")) as f:
    labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)[:n_max]
x_all = torch.from_numpy(((images.astype(np.float32) / 255.0 - 0.1307) / 0.3081).reshape(-1, 1, 28, 28).copy())
y_all = torch.from_numpy(labels.astype(np.int64))


def build(model):
    if model == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def epoch(net, opt, x, y):
    net.train()
    g = torch.Generator().manual_seed(42)
    perm = torch.randperm(x.shape[0], generator=g)
    for start in range(0, x.shape[0], BATCH):
        idx = perm[start:start + BATCH]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x.index_select(0, idx)), y.index_select(0, idx))
        loss.backward()
        opt.step()


for model, n in (("mlp", n_mlp), ("cnn", n_cnn)):
    torch.manual_seed(1)
    net = build(model)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = x_all[:n], y_all[:n]
    epoch(net, opt, x[:640], y[:640])
    epochs = 4 if model == "mlp" else 1  # as in the TorchSharp benchmark
    t = time.perf_counter()
    for _ in range(epochs):
        epoch(net, opt, x, y)
    print(f"RATE {model} pytorch {epochs * n / (time.perf_counter() - t):.1f}", flush=True)
