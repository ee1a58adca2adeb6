#!/usr/bin/env python3
"""Training throughput in Python PyTorch: the baseline of training_bench.

The same architecture as ours: the model is built from the layer graph that
training_bench --dump-model writes (JSON of impulse.v1.Model), one torch.nn
layer per graph layer (Conv2d, BatchNorm2d/1d, ReLU, ReLU6(inplace=True) as
torchvision's MobileNetV2, MaxPool2d, ZeroPad2d for TensorFlow's asymmetric
"same" padding, AdaptiveAvgPool2d, Flatten, Dropout, Linear, the residual
add), PyTorch's default initialisation, and trained as a PyTorch user
trains: Adam, nn.CrossEntropyLoss on the logits, the loss and accuracy read
every batch, every core (torch.set_num_threads(os.cpu_count())).

Data: the identical uint8 rows (training_bench --export-npy), converted once
to float/255 as users typically do, then either
  --loader dataloader: TensorDataset + DataLoader(shuffle=True), the usual
                       way, or
  --loader index:      one torch.randperm per epoch and X[idx] slices, the
                       fastest way without a DataLoader.
--warmup batches run untimed, then --batches batches are timed. Prints one
JSON line like training_bench's.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def build_layers(model):
    """(modules, inputs, logits) for the graph's layers, in order."""
    layers = model["layers"]
    modules, inputs = [], []
    for i, l in enumerate(layers):
        kind = l["kind"].replace("LAYER_KIND_", "")
        ins = [int(j) for j in l["inputs"]]
        in_shape = layers[ins[0]]["output_shape"] if ins else None
        sym = l["pad_top"] == l["pad_bottom"] and l["pad_left"] == l["pad_right"]
        pad = (l["pad_left"], l["pad_right"], l["pad_top"], l["pad_bottom"])
        stride = (max(1, l["stride_h"]), max(1, l["stride_w"]))
        kernel = (l["kernel_h"], l["kernel_w"])
        if kind == "INPUT" or kind == "SOFTMAX":
            m = None
        elif kind in ("CONV2D", "DEPTHWISE_CONV2D"):
            conv = nn.Conv2d(in_shape[0], l["filters"], kernel, stride=stride,
                             padding=(l["pad_top"], l["pad_left"]) if sym else 0,
                             groups=max(1, l["groups"]), bias=l["bias"])
            m = conv if sym else nn.Sequential(nn.ZeroPad2d(pad), conv)
        elif kind == "BATCH_NORM":
            bn = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
            m = bn(in_shape[0], eps=l["epsilon"] or 1e-3, momentum=l["momentum"] or 0.1)
        elif kind == "RELU":
            m = nn.ReLU(inplace=True)
        elif kind == "RELU6":
            m = nn.ReLU6(inplace=True)
        elif kind in ("MAX_POOL", "AVG_POOL"):
            if kind == "MAX_POOL":
                pool = nn.MaxPool2d(kernel, stride, padding=(l["pad_top"], l["pad_left"]) if sym else 0)
                padder = nn.ConstantPad2d(pad, float("-inf"))
            else:
                pool = nn.AvgPool2d(kernel, stride, padding=(l["pad_top"], l["pad_left"]) if sym else 0,
                                    count_include_pad=False)
                padder = nn.ZeroPad2d(pad)
            m = pool if sym else nn.Sequential(padder, pool)
        elif kind == "GLOBAL_AVG_POOL":
            m = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        elif kind == "FLATTEN":
            m = nn.Flatten()
        elif kind == "DROPOUT":
            m = nn.Dropout(l["rate"])
        elif kind == "DENSE":
            m = nn.Linear(in_shape[0], l["filters"], bias=l["bias"])
        elif kind == "ADD":
            m = "add"
        else:
            sys.exit(f"training_baseline: unknown layer kind {kind}")
        modules.append(m)
        inputs.append(ins)
    last = layers[-1]
    logits = int(last["inputs"][0]) if last["kind"] == "LAYER_KIND_SOFTMAX" else len(layers) - 1
    return modules, inputs, logits


class GraphNet(nn.Module):
    """The layer graph as an nn.Module: a chain, plus the residual adds."""

    def __init__(self, model):
        super().__init__()
        modules, self.inputs, self.logits = build_layers(model)
        self.layers = nn.ModuleList(m if isinstance(m, nn.Module) else nn.Identity()
                                    for m in modules)
        self.is_add = [m == "add" for m in modules]
        # An output read again later (a residual's skip) must not be
        # overwritten by an in-place activation: keep a copy-free reference
        # by running the next layer out of place.
        readers = {}
        for i, ins in enumerate(self.inputs):
            for j in ins:
                readers[j] = readers.get(j, 0) + 1
        for i, ins in enumerate(self.inputs):
            m = modules[i]
            if isinstance(m, (nn.ReLU, nn.ReLU6)) and readers.get(ins[0], 0) > 1:
                m.inplace = False

    def forward(self, x):
        outs = [x]
        for i in range(1, self.logits + 1):
            ins = self.inputs[i]
            if self.is_add[i]:
                y = outs[ins[0]] + outs[ins[1]]
            else:
                y = self.layers[i](outs[ins[0]])
            outs.append(y)
        return outs[self.logits]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="training_bench --dump-model JSON")
    parser.add_argument("--data", required=True, help="training_bench --export-npy prefix")
    parser.add_argument("--config", default="custom")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--loader", choices=("dataloader", "index"), default="dataloader")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    threads = os.cpu_count()
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    with open(args.model) as f:
        net = GraphNet(json.load(f))
    net.train()

    x = torch.from_numpy(np.load(args.data + ".x.npy")).float().div_(255)
    y = torch.from_numpy(np.load(args.data + ".y.npy"))
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    criterion = nn.CrossEntropyLoss()

    if args.loader == "dataloader":
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
                                             batch_size=args.batch, shuffle=True, drop_last=True)

        def batches():
            while True:
                yield from loader
    else:
        def batches():
            while True:
                perm = torch.randperm(len(x))
                for start in range(0, len(x) - args.batch + 1, args.batch):
                    idx = perm[start:start + args.batch]
                    yield x[idx], y[idx]

    total = args.warmup + args.batches
    loss_first = loss_last = 0.0
    correct = 0
    start = None
    for b, (xb, yb) in enumerate(batches()):
        if b == total:
            break
        if b == args.warmup:
            start = time.perf_counter()
        optimizer.zero_grad()
        logits = net(xb)
        loss = criterion(logits, yb)
        loss.backward()
        optimizer.step()
        loss_last = loss.item()
        correct += (logits.argmax(1) == yb).sum().item()
        if b == 0:
            loss_first = loss_last
    seconds = time.perf_counter() - start
    images = args.batches * args.batch
    print(json.dumps({"side": "python", "config": args.config, "loader": args.loader,
                      "threads": threads, "batch": args.batch, "batches": args.batches,
                      "images": images, "seconds": round(seconds, 4),
                      "images_per_s": round(images / seconds, 1),
                      "loss_first": round(loss_first, 4), "loss_last": round(loss_last, 4)}))


if __name__ == "__main__":
    main()
