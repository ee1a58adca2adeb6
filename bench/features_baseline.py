#!/usr/bin/python3
"""Baseline for features_bench: the same feature generation in Python + OpenCV.

What a user would write without our worker: load the IDX pair with gzip and
numpy, loop over the images calling cv2.resize (INTER_AREA when shrinking,
INTER_LINEAR when growing: what ImageProcessor picks), lay each result out as
planar uint8 [C, H, W] in a preallocated (N, C, H, W) array (a gray image
repeated over R, G, B for rgb), and save it as .npy (labels beside it).
The timed span is the same as ours: loading, processing and writing, to the
page cache. Interpreter start-up and imports are not in it (the runner
reports them apart).

--processes 1 is the plain loop. --processes N > 1 uses every core the way a
user would for tiny images (OpenCV's own threads work within one call and
do nothing for a 28x28 resize): a multiprocessing.Pool over chunks of the
images, each worker writing its rows straight into the output .npy through
np.lib.format.open_memmap, so no pixels are pickled back to the parent.

Prints one JSON line, as features_bench does.
"""

import argparse
import gzip
import json
import multiprocessing
import os
import struct
import sys
import tempfile
import time

import cv2
import numpy as np

# Chunks per worker process: enough to even out a noisy shared machine,
# few enough that task overhead stays small.
CHUNKS_PER_PROCESS = 8


def read_idx(path):
    """An IDX file as a numpy array (uint8), shaped by its header."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = struct.unpack(">" + "I" * (magic & 0xFF), data[4:4 + 4 * (magic & 0xFF)])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def process(images, out, size):
    """Writes the features of gray `images` (N, h, w) into `out` (N, C, size, size)."""
    # Fashion-MNIST is gray, so there is no BGR source to convert: like ours,
    # grayscale output is the resized plane itself.
    h, w = images.shape[1:]
    interpolation = cv2.INTER_AREA if size <= h and size <= w else cv2.INTER_LINEAR
    for i, image in enumerate(images):
        resized = cv2.resize(image, (size, size), interpolation=interpolation)
        # A gray image's plane broadcasts over the C planes. That is also what
        # ImageProcessor does (three memcpys); cv2.cvtColor(GRAY2RGB) then
        # transpose(2, 0, 1) gives the same bytes but makes this loop ~3x slower
        # at 96x96, which would flatter our ratio.
        out[i] = resized


# Pool workers inherit these through fork rather than receiving pickled copies.
_images = None
_out_path = None


def _process_range(job):
    begin, end, size = job
    out = np.load(_out_path, mmap_mode="r+")
    process(_images[begin:end], out[begin:end], size)
    out.flush()
    return end - begin


def run(args):
    global _images, _out_path
    images = read_idx(os.path.join(args.data, args.images))
    labels = read_idx(os.path.join(args.data, args.labels))
    if len(labels) != len(images):
        sys.exit(f"images and labels disagree: {len(images)} images, {len(labels)} labels")
    n = len(images)
    channels = 3 if args.color == "rgb" else 1
    shape = (n, channels, args.size, args.size)

    if args.processes <= 1:
        out = np.empty(shape, dtype=np.uint8)
        process(images, out, args.size)
        np.save(args.out, out)
    else:
        out = np.lib.format.open_memmap(args.out, mode="w+", dtype=np.uint8, shape=shape)
        del out  # header written; the workers fill the rows
        _images, _out_path = images, args.out
        chunk = -(-n // (args.processes * CHUNKS_PER_PROCESS))
        jobs = [(b, min(n, b + chunk), args.size) for b in range(0, n, chunk)]
        with multiprocessing.get_context("fork").Pool(args.processes) as pool:
            done = sum(pool.imap_unordered(_process_range, jobs))
        assert done == n
    np.save(args.out[:-len(".npy")] + ".labels.npy", labels)
    return n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--images", default="train-images-idx3-ubyte.gz")
    parser.add_argument("--labels", default="train-labels-idx1-ubyte.gz")
    parser.add_argument("--out", help="output .npy (kept); default: temp, removed")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--color", choices=["grayscale", "rgb"], default="grayscale")
    parser.add_argument("--threads", type=int, default=0,
                        help="OpenCV threads (cv2.setNumThreads); 0: OpenCV's default")
    parser.add_argument("--processes", type=int, default=os.cpu_count(),
                        help="1: the plain loop; N > 1: a Pool of N processes")
    args = parser.parse_args()
    keep = args.out is not None
    if not keep:
        args.out = os.path.join(tempfile.gettempdir(), f"features_baseline.{os.getpid()}.npy")
    elif not args.out.endswith(".npy"):
        sys.exit("--out must end in .npy")
    if args.threads > 0:
        cv2.setNumThreads(args.threads)

    start = time.perf_counter()
    n = run(args)
    seconds = time.perf_counter() - start
    if not keep:
        for path in (args.out, args.out[:-len(".npy")] + ".labels.npy"):
            os.remove(path)
    print(json.dumps({"side": "python", "color": args.color, "size": args.size,
                      "processes": max(args.processes, 1), "images": n,
                      "seconds": round(seconds, 4), "images_per_s": round(n / seconds)},
                     separators=(",", ":")))


if __name__ == "__main__":
    main()
