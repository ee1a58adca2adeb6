#include "tests/support/quantize_fixtures.h"

#include "impulse/model/layer_graph.h"
#include "worker/int8/quantizer.h"
#include "worker/training/calibration.h"

namespace impulse::testing {

Result<worker::int8::QuantizedModel> QuantizeMinMax(const v1::Model& model,
                                                    const worker::features::FeatureMatrix& features,
                                                    int threads) {
  std::vector<uint64_t> train_rows;
  for (uint64_t r = 0; r < features.rows(); ++r) {
    if (features.info(r).split != 2) train_rows.push_back(r);
  }
  const std::vector<uint64_t> rows = worker::training::CalibrationRows(
      features, train_rows, worker::training::kDefaultCalibrationRows, 1);
  IMPULSE_ASSIGN_OR_RETURN(
      const auto stats, worker::training::CollectActivationStats(model, features, rows, threads));
  IMPULSE_ASSIGN_OR_RETURN(const model::LayerGraph graph, model::LayerGraph::FromModel(model));
  return worker::int8::Quantize(graph, worker::training::Ranges(stats, 100), {"minmax"});
}

}  // namespace impulse::testing
