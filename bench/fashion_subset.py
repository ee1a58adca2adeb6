#!/usr/bin/python3
"""Writes a Fashion-MNIST subset as an IDX dataset folder the client reads.

  fashion_subset.py --classes 5,6,7,8,9 --train-per-class 100 [--test-per-class 50] --out DIR

DIR gets train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, the t10k
pair (every test image of those classes, or --test-per-class of each) and
labels.txt. Labels are renumbered
0..k-1 in the order given, so a model's output i is labels.txt's line i.
"""
import argparse
import gzip
import os
import struct

import numpy as np

SOURCE = "/usr/share/datasets/fashion-mnist"
NAMES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols)
    return np.frombuffer(data, np.uint8, offset=8)


def write_idx(path, array):
    with gzip.open(path, "wb") as f:
        if array.ndim == 3:
            f.write(struct.pack(">IIII", 0x803, *array.shape))
        else:
            f.write(struct.pack(">II", 0x801, array.shape[0]))
        f.write(array.tobytes())


def subset(prefix, classes, per_class, seed):
    images = read_idx(f"{SOURCE}/{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(f"{SOURCE}/{prefix}-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(seed)
    keep = []
    for cls in classes:
        rows = np.flatnonzero(labels == cls)
        if per_class:
            rows = rng.choice(rows, size=min(per_class, rows.size), replace=False)
        keep.extend(rows.tolist())
    keep = np.array(sorted(keep))
    remap = np.full(10, 255, np.uint8)
    remap[classes] = np.arange(len(classes))
    return images[keep], remap[labels[keep]]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", required=True)
    parser.add_argument("--train-per-class", type=int, default=0, help="0 = all")
    parser.add_argument("--test-per-class", type=int, default=0, help="0 = all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    classes = [int(c) for c in args.classes.split(",")]
    os.makedirs(args.out, exist_ok=True)
    for prefix, per_class in (("train", args.train_per_class), ("t10k", args.test_per_class)):
        images, labels = subset(prefix, classes, per_class, args.seed)
        write_idx(f"{args.out}/{prefix}-images-idx3-ubyte.gz", images)
        write_idx(f"{args.out}/{prefix}-labels-idx1-ubyte.gz", labels)
    with open(f"{args.out}/labels.txt", "w") as f:
        f.write("\n".join(NAMES[c] for c in classes) + "\n")


if __name__ == "__main__":
    main()
