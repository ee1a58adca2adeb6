#!/usr/bin/env node
// ONNX Runtime's side of bench/int8_bench.cc: onnxruntime-node runs
// model_i8.onnx (QDQ; ORT fuses it into QLinearConv / QGemm / ... integer
// kernels) over the test rows of a feature matrix, as a user of the file
// would: one InferenceSession (default graph optimizations, CPU, `--threads`
// intra-op threads), float32 input batches of `--batch` rows.
//
//   node int8_ort_bench.js MODEL.onnx --features FILE --batch B --threads T
//        [--config NAME] [--scores OUT.f32]
//
// The pixels are converted to float32 / 255 before the clock starts (the
// model's contract; a user's pipeline produces them anyway). One untimed
// pass warms the session up (and writes the scores, rows x classes float32,
// to --scores), then one timed pass over every row. Prints one JSON line:
//   {"side":"ort","config":...,"batch":B,"threads":T,"images":N,
//    "seconds":S,"images_per_s":R}
// Resolves onnxruntime-node through NODE_PATH, as run_ort.js.
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const { readFeatures } = require(path.join(__dirname, '../tests/onnx_agreement/run_ort.js'));

function parseArgs(argv) {
  const args = { batch: 1, threads: 1, config: 'custom' };
  const rest = [];
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--features') args.features = argv[++i];
    else if (a === '--batch') args.batch = Number(argv[++i]);
    else if (a === '--threads') args.threads = Number(argv[++i]);
    else if (a === '--config') args.config = argv[++i];
    else if (a === '--scores') args.scores = argv[++i];
    else rest.push(a);
  }
  if (rest.length !== 1 || !args.features || !(args.batch >= 1) || !(args.threads >= 1)) {
    process.stderr.write('usage: int8_ort_bench.js MODEL.onnx --features FILE --batch B ' +
                         '--threads T [--config NAME] [--scores OUT.f32]\n');
    process.exit(2);
  }
  args.model = rest[0];
  return args;
}

// Runs every row in batches; returns the first output's chunks.
async function pass(session, x, shape, batch) {
  const [n, c, h, w] = shape;
  const rowSize = c * h * w;
  const chunks = [];
  for (let start = 0; start < n; start += batch) {
    const rows = Math.min(batch, n - start);
    const feeds = {
      [session.inputNames[0]]: new ort.Tensor('float32',
                                              x.subarray(start * rowSize, (start + rows) * rowSize),
                                              [rows, c, h, w]),
    };
    const out = (await session.run(feeds))[session.outputNames[0]].data;
    chunks.push(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  }
  return chunks;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { x, shape } = readFeatures(args.features, 'test');
  const session = await ort.InferenceSession.create(args.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: args.threads,
  });
  const scores = await pass(session, x, shape, args.batch);
  if (args.scores) fs.writeFileSync(args.scores, Buffer.concat(scores));
  const started = process.hrtime.bigint();
  await pass(session, x, shape, args.batch);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(JSON.stringify({
    side: 'ort', config: args.config, batch: args.batch, threads: args.threads,
    images: shape[0], seconds, images_per_s: shape[0] / seconds,
  }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`int8_ort_bench.js: ${e.stack || e}\n`);
  process.exit(1);
});
