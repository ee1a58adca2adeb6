#!/usr/bin/env node
// Runs an exported model with ONNX Runtime (onnxruntime-node, CPU), the
// independent runtime the worker's float inference is checked against.
//
//   node run_ort.js MODEL.onnx --features FILE [--split train|test|all] OUT.f32
//   node run_ort.js MODEL.onnx --raw FILE --shape N,C,H,W OUT.f32
//   options: --rows N         only the first N rows
//            --outputs-dir D  also every output of the model, output i as
//                             D/i.bin (its raw elements, rows concatenated)
//
// --features reads an impulse feature matrix (worker/features/
// feature_matrix.h, "IMPFEAT1") and feeds its rows of the chosen split
// (default all) in file order, as the model's contract says: uint8 pixels
// / 255, [N, C, H, W]. --raw reads N*C*H*W little-endian float32 values
// that are fed as they are. OUT.f32 receives the first output ("scores"),
// rows x classes little-endian float32, in input order. One JSON line on
// stdout: {"rows", "classes", "input", "output"}.
//
// Resolves onnxruntime-node through NODE_PATH (the test points it at its
// npm cache). Batches of 256 rows exercise the model's free batch axis.
'use strict';

const fs = require('fs');
const ort = require('onnxruntime-node');

const kBatch = 256;

function usage(message) {
  process.stderr.write(`run_ort.js: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = { split: 'all' };
  const rest = [];
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--features') args.features = argv[++i];
    else if (a === '--raw') args.raw = argv[++i];
    else if (a === '--shape') args.shape = argv[++i].split(',').map(Number);
    else if (a === '--split') args.split = argv[++i];
    else if (a === '--rows') args.rows = Number(argv[++i]);
    else if (a === '--outputs-dir') args.outputsDir = argv[++i];
    else rest.push(a);
  }
  if (rest.length !== 2) usage('need MODEL.onnx and OUT.f32');
  [args.model, args.out] = rest;
  if (!args.features === !args.raw) usage('need exactly one of --features and --raw');
  if (!['train', 'test', 'all'].includes(args.split)) usage(`unknown --split ${args.split}`);
  return args;
}

// The feature matrix's rows of `split` as float32 [rows, C, H, W] / 255.
function readFeatures(path, split) {
  const b = fs.readFileSync(path);
  if (b.toString('latin1', 0, 8) !== 'IMPFEAT1') usage(`${path}: not a feature matrix`);
  if (b.readUInt32LE(8) !== 1) usage(`${path}: version ${b.readUInt32LE(8)}, expected 1`);
  const [c, h, w] = [b.readUInt32LE(16), b.readUInt32LE(20), b.readUInt32LE(24)];
  const rows = Number(b.readBigUInt64LE(28));
  const capacity = Number(b.readBigUInt64LE(36));
  const dataOffset = Number(b.readBigUInt64LE(44));
  let at = 56;
  for (let l = b.readUInt32LE(52); l > 0; --l) at += 4 + b.readUInt32LE(at);
  const tableOffset = at;  // 9 bytes per row: u32 label, u8 split, u32 sample
  const rowBytes = c * h * w;
  const want = { train: 1, test: 2 }[split];
  const picked = [];
  for (let r = 0; r < rows; ++r) {
    const rowSplit = b.readUInt8(tableOffset + 9 * r + 4);
    // SPLIT_UNSPECIFIED (0) counts as training data, as everywhere else.
    if (split === 'all' || (want === 2 ? rowSplit === 2 : rowSplit !== 2)) picked.push(r);
  }
  if (capacity < rows) usage(`${path}: capacity below rows`);
  const x = new Float32Array(picked.length * rowBytes);
  picked.forEach((r, i) => {
    const start = dataOffset + r * rowBytes;
    for (let k = 0; k < rowBytes; ++k) x[i * rowBytes + k] = b[start + k] / 255;
  });
  return { x, shape: [picked.length, c, h, w] };
}

function readRaw(path, shape) {
  if (!shape || shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    usage('--raw needs --shape N,C,H,W');
  }
  const b = fs.readFileSync(path);
  const count = shape.reduce((p, d) => p * d, 1);
  if (b.length !== count * 4) usage(`${path}: ${b.length} bytes, --shape needs ${count * 4}`);
  const x = new Float32Array(count);
  for (let i = 0; i < count; ++i) x[i] = b.readFloatLE(4 * i);
  return { x, shape };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { x, shape } = args.features ? readFeatures(args.features, args.split)
                                     : readRaw(args.raw, args.shape);
  const session = await ort.InferenceSession.create(args.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 2,
  });
  const input = session.inputNames[0];
  const output = session.outputNames[0];
  const [c, h, w] = shape.slice(1);
  const n = args.rows === undefined ? shape[0] : Math.min(args.rows, shape[0]);
  const rowSize = c * h * w;
  const chunks = session.outputNames.map(() => []);
  let classes = 0;
  for (let start = 0; start < n; start += kBatch) {
    const rows = Math.min(kBatch, n - start);
    const batch = x.subarray(start * rowSize, (start + rows) * rowSize);
    const feeds = { [input]: new ort.Tensor('float32', batch, [rows, c, h, w]) };
    const results = await session.run(feeds);
    classes = results[output].dims[1];
    session.outputNames.forEach((name, i) => {
      const d = results[name].data;
      chunks[i].push(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
    });
  }
  fs.writeFileSync(args.out, Buffer.concat(chunks[0]));
  if (args.outputsDir) {
    chunks.forEach((parts, i) => fs.writeFileSync(`${args.outputsDir}/${i}.bin`, Buffer.concat(parts)));
  }
  process.stdout.write(JSON.stringify({ rows: n, classes, input, output }) + '\n');
}

// bench/int8_ort_bench.js reads feature matrices with the same code.
module.exports = { readFeatures };

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`run_ort.js: ${e.stack || e}\n`);
    process.exit(1);
  });
}
