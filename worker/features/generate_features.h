// The generate-features task: the studio's "Generate features".
//
// Reads the dataset manifest (spec.dataset_sha256), decodes and processes
// every sample with the impulse's input and processing blocks, and writes:
//   blobs["features"]       the feature matrix (worker/features/feature_matrix.h)
//   feature_explorer.png    the 2-D projection, coloured by class
//   feature_explorer.csv    x,y,label,sample,split (label: class name; split:
//                           "train" or "test"), one row per projected sample
//   preview.png             a few samples, original beside processed
// and fills results.labels and results.features.
//
// Samples that cannot be read (a corrupt image, an IDX index past the file's
// end, a label out of range) are skipped: each is logged through ctx.Log with
// its name (the first 1000; a count after that), counted in
// features.skipped, and named in features.skipped_names (the first 100).
// A sample whose split is SPLIT_UNSPECIFIED counts as training data.
//
// Failures: InvalidArgument when the impulse's blocks are invalid, the
// manifest does not parse, or no sample at all could be read (the message
// names the dataset); Cancelled when ctx.StopRequested() (checked between
// chunks of about 2 % of the samples and during t-SNE); a blob error as
// ctx returned it; Internal for an OpenCV failure outside a single sample,
// with the step named.
//
// Uses ctx.Threads() threads and sets OpenCV's (process-wide) thread count
// to the same for its duration, restoring it afterwards.
#pragma once

#include "impulse/status.h"
#include "impulse/v1/coordinator.pb.h"
#include "impulse/v1/job.pb.h"
#include "worker/task_context.h"

namespace impulse::worker::features {

Result<v1::TaskOutput> GenerateFeatures(const v1::TaskSpec& spec, TaskContext& ctx);

// The manifest stored at `path` (a serialized v1::DatasetManifest).
// NotFound when it cannot be read, InvalidArgument when it does not parse.
Result<v1::DatasetManifest> ReadManifest(const std::string& path);

}  // namespace impulse::worker::features
