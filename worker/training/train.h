// The train task: a learning block trained with LibTorch on the features
// of a generate-features task. The header is LibTorch-free.
//
// Inputs (TaskSpec.inputs): "features" (required, the feature matrix blob),
// "weights" (optional, a v1::Model whose backbone tensors are loaded by name
// and shape), "checkpoint" (optional, set on a requeued attempt: training
// resumes after the epoch it completed).
//
// Algorithm:
//   1. Build the LayerGraph for impulse.learning on the features' [C,H,W]
//      and labels; load pretrained backbone weights when given (transfer
//      without them: random init and a warning in results.warnings).
//   2. Split TRAIN rows into train/validation (rows.h, stratified, seeded).
//   3. Per epoch e (1-based): seed LibTorch and our generators from
//      (seed, e), so an epoch's draws do not depend on earlier epochs and a
//      resumed run equals an uninterrupted one bit for bit; shuffle; for
//      each batch convert uint8 -> float/255, augment when enabled (random
//      horizontal flip, a shift of up to W/16 pixels by zero-padded crop,
//      brightness x U(0.8, 1.2)); one optimizer step (Adam, or SGD with
//      momentum 0.9), learning rate from StepLR and the fine-tune phase.
//      Transfer: the backbone is frozen (its BN on running statistics) for
//      frozen_epochs, then trained at fine_tune_learning_rate when
//      fine_tune, else frozen throughout.
//   4. After each epoch: validation loss/accuracy, ctx.ReportEpoch, and a
//      checkpoint (weights, optimizer state, epoch, log) uploaded with
//      ctx.PutBlob and announced with ctx.ReportCheckpoint.
//   5. Output: blobs "model" (the serialized v1::Model with weights and
//      labels) and "checkpoint" (the last one); results.labels,
//      results.training_log, results.warnings.
//
// Failures: InvalidArgument for settings the data cannot satisfy (no
// learning block, batch larger than the training rows, weights that do not
// fit, naming the field); FailedPrecondition when the loss becomes NaN or
// infinite (naming epoch and batch; the last good checkpoint stays
// reported); Cancelled when ctx.StopRequested() between batches; Internal
// with the LibTorch op's message when LibTorch throws.
//
// Uses ctx.Threads() LibTorch threads (sets the process-wide count).
#pragma once

#include "impulse/status.h"
#include "impulse/v1/coordinator.pb.h"
#include "impulse/v1/job.pb.h"
#include "worker/task_context.h"

namespace impulse::worker::training {

Result<v1::TaskOutput> Train(const v1::TaskSpec& spec, TaskContext& ctx);

}  // namespace impulse::worker::training
