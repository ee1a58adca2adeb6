// Compute-time estimates of a job, from its layer graph and a cost table
// that workers measure (DESIGN.md, "Compute limits"): one calibration
// number cannot predict every network, so time is summed per layer kind.
//
// The model. One pass over one sample of a graph costs, summed over its
// layers, what each layer kind charges for its work:
//   k x k conv, pointwise (1 x 1)   MACs x s_per_mac + outputs x s_per_output
//                                   (a thin layer, e.g. the first on one
//                                   channel, is bound by its outputs)
//   depthwise                       MACs x s_per_mac + channels x s_per_channel
//                                   (the per-plane cost dominates at small
//                                   spatial sizes; a 1x1 output has its own,
//                                   much higher per-channel price)
//   dense                           MACs x s_per_mac
//   batch norm                      output elements x its own rate
//   max / average pool              input elements x its own rate
//   everything else element-wise    elements x s_per_element: activations,
//                                   global pools (elements read), adds, the
//                                   padding copies of asymmetric "same"
//                                   padding, the input's uint8 -> float
// One batch adds a fixed overhead plus a cost per layer with weights
// (dispatch, autograd bookkeeping, the optimizer's per-tensor work) and,
// when training, per trainable parameter (the optimizer step). There are two such price lists: `train` (forward, backward,
// optimizer step, as the train task runs it) and `infer` (float32 forward in
// eval mode, as validation and evaluation run it).
//
// Workers measure their table one layer kind at a time at start
// (worker/training/cost_calibration.h) and report it when they register; the
// coordinator caches it per CPU model and thread count in Redis. Before any
// worker has reported, DefaultCostTable() applies (docs/COMPUTE.md says
// where its figures come from).
//
// What a job costs (worker-seconds):
//   features  per input sample (decode + resize + convert) + the explorer's
//             projection (PCA, then exact t-SNE: quadratic in the at most
//             2 000 projected samples), 0 when the features are cached
//   train     per epoch: ceil(train rows / batch) batches of the training
//             pass (a frozen backbone costs its inference pass, no
//             backward), + validation rows of inference, + a checkpoint
//   evaluate  (validation + test rows) x (float + int8 inference) +
//             500 calibration rows of inference with activation statistics
//             (every output element) + exports (per parameter); a percentile
//             retry of the int8 calibration is not foreseen
//   every task adds a fixed start-up cost (blob transfers, process work).
// Each stage is then multiplied by the table's scale for it
// (features_scale, train_scale, evaluate_scale; 0 reads as 1), which the
// coordinator learns from finished tasks (coordinator/cost_tables.h).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "impulse/model/layer_graph.h"
#include "impulse/status.h"
#include "impulse/v1/coordinator.pb.h"
#include "impulse/v1/impulse.pb.h"

namespace impulse::estimate {

// Seconds per unit of one pass, and one worker's table of them: the wire
// messages (proto/impulse/v1/coordinator.proto documents every field and
// unit), so a table travels from the worker to Redis to here unchanged.
// Zero entries are read as the default's.
using PassCosts = v1::PassCosts;
using CostTable = v1::CostTable;

// The documented default (docs/COMPUTE.md): measured on the development
// machine, one thread. source() is "default".
CostTable DefaultCostTable();
// `cost` with every zero entry taken from DefaultCostTable().
CostTable WithDefaultCosts(const CostTable& cost);

// The work of one pass over one sample, per kind (the model above).
struct PassWork {
  double conv_macs = 0;
  double conv_outputs = 0;
  double depthwise_macs = 0;
  double depthwise_channels = 0;
  double depthwise_1x1_channels = 0;  // of depthwise layers with a 1x1 output
  double pointwise_macs = 0;
  double pointwise_outputs = 0;
  double dense_macs = 0;
  double batch_norm_elements = 0;
  double pool_elements = 0;  // read by max / average pools
  double elements = 0;
  double layers = 0;  // with trainable parameters (conv, dense, batch norm)
  double params = 0;  // trainable parameters
};
enum class Layers { kAll, kBackbone, kHead };  // which layers WorkOf counts
PassWork WorkOf(const model::LayerGraph& graph, Layers which = Layers::kAll);

// Training throughput of k x k convolutions, in 1e9 MACs per second (the
// figure WorkerInfo.gmacs_per_s reports); 0 when the table has none.
double TrainGmacsPerSecond(const CostTable& cost);

// Seconds `cost` charges for a fixed reference workload (one epoch of
// the default network at 32x32 grayscale and one of MobileNetV2 0.35 at
// 96x96 RGB, 1 000 rows each), to rank tables: larger is a slower worker.
double ReferenceSeconds(const CostTable& cost);

// Seconds of one sample's `work` at `costs`, without the per-batch terms.
double SampleSeconds(const PassWork& work, const PassCosts& costs);

// Seconds for one batch of `rows` rows doing `work` at `costs` (the
// parameter term only when `optimizer_step`).
double BatchSeconds(const PassWork& work, const PassCosts& costs, double rows,
                    bool optimizer_step);

// What the job will use, in worker-seconds.
struct JobEstimate {
  double features_s = 0;
  double train_s = 0;
  double evaluate_s = 0;
  double total_s = 0;            // the sum; what the compute limit is checked against
  double epoch_s = 0;            // one (unfrozen) training epoch, validation included
  uint64_t macs_per_sample = 0;  // one inference
  uint64_t train_rows = 0;       // rows trained on per epoch (after the validation split)
  uint32_t epochs = 0;
  std::string cost_source;       // CostTable::source of the table used
};

// Row counts of the dataset the job runs on.
struct DatasetSize {
  uint64_t train_rows = 0;  // TRAIN split (validation is carved from it)
  uint64_t test_rows = 0;
  uint32_t classes = 0;
  bool features_cached = false;  // features already generated: features_s = 0
};

// The estimate for `impulse` (defaults applied inside) on `data`. An
// impulse without a learning block (features only) costs its features.
// InvalidArgument as BuildGraph reports it for a bad learning block.
Result<JobEstimate> EstimateJob(const v1::Impulse& impulse, const DatasetSize& data,
                                const CostTable& cost);

// When the estimate exceeds `limit_s`: one line of concrete ways to fit,
// each re-estimated — the largest epoch count that fits, the largest
// smaller input size that fits, the largest smaller width multiplier that
// fits (transfer) — e.g. "fits with epochs: 7 (est. 1150 s), or input
// 24x24 (est. 1010 s), or alpha 0.25 (est. 900 s)". Empty when nothing
// tried fits (or the job already fits).
std::string FitAdvice(const v1::Impulse& impulse, const DatasetSize& data, const CostTable& cost,
                      double limit_s);
// The same ways one by one ("epochs: 7 (est. 1150 s)", ...).
std::vector<std::string> FitOptions(const v1::Impulse& impulse, const DatasetSize& data,
                                    const CostTable& cost, double limit_s);

}  // namespace impulse::estimate
