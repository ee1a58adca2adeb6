#include "worker/training/inference.h"

#include <torch/torch.h>

#include "worker/training/graph_module.h"

namespace impulse::worker::training {
namespace {

constexpr int64_t kBatch = 256;

Result<std::vector<std::vector<float>>> PredictUnguarded(const v1::Model& model,
                                                         const features::FeatureMatrix& fm,
                                                         const std::vector<uint64_t>& rows,
                                                         int threads) {
  const auto& shape = fm.shape();
  IMPULSE_ASSIGN_OR_RETURN(GraphModule module,
                           LoadEvalModule(model, {shape.channels, shape.height, shape.width}));
  torch::set_num_threads(std::max(1, threads));
  torch::NoGradGuard no_grad;

  const int64_t row_bytes = static_cast<int64_t>(shape.row_bytes());
  std::vector<std::vector<float>> logits;
  logits.reserve(rows.size());
  for (size_t start = 0; start < rows.size(); start += kBatch) {
    const int64_t n = std::min<int64_t>(kBatch, rows.size() - start);
    torch::Tensor x = torch::empty({n, shape.channels, shape.height, shape.width});
    float* dst = x.data_ptr<float>();
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t row = rows[start + i];
      if (row >= fm.rows()) {
        return InvalidArgument("rows: " + std::to_string(row) + " is past the " +
                               std::to_string(fm.rows()) + " feature rows");
      }
      const uint8_t* px = fm.pixels(row);
      for (int64_t k = 0; k < row_bytes; ++k) dst[i * row_bytes + k] = px[k] * (1.0f / 255.0f);
    }
    torch::Tensor out = module->forward(x).contiguous();
    const int64_t classes = out.size(1);
    const float* values = out.data_ptr<float>();
    for (int64_t i = 0; i < n; ++i) {
      logits.emplace_back(values + i * classes, values + (i + 1) * classes);
    }
  }
  return logits;
}

}  // namespace

Result<std::vector<std::vector<float>>> PredictLogits(const v1::Model& model,
                                                      const features::FeatureMatrix& features,
                                                      const std::vector<uint64_t>& rows,
                                                      int threads) {
  try {
    return PredictUnguarded(model, features, rows, threads);
  } catch (const c10::Error& e) {
    return Internal(std::string("predict: LibTorch: ") + e.what_without_backtrace());
  }
}

}  // namespace impulse::worker::training
