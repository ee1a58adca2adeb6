#include "coordinator/cost_tables.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace impulse::coordinator {
namespace {

bool RunsTraining(const v1::WorkerInfo& worker) {
  return worker.kinds().empty() || std::find(worker.kinds().begin(), worker.kinds().end(),
                                             v1::TASK_KIND_TRAIN) != worker.kinds().end();
}

const v1::CostTable* Slowest(const std::vector<v1::CostTable>& tables) {
  const v1::CostTable* slowest = nullptr;
  double slowest_s = -1;
  for (const v1::CostTable& table : tables) {
    const double s = estimate::ReferenceSeconds(table);
    if (s > slowest_s) {
      slowest = &table;
      slowest_s = s;
    }
  }
  return slowest;
}

constexpr double kSampleWeight = 0.3;
const double kMaxSampleLog = std::log(4.0);
const double kMaxScaleLog = std::log(2.0);

void ApplyScales(const std::map<v1::TaskKind, double>& means, v1::CostTable& table) {
  auto scale = [&](v1::TaskKind stage) {
    auto it = means.find(stage);
    return it == means.end() ? 1.0 : std::exp(std::clamp(it->second, -kMaxScaleLog, kMaxScaleLog));
  };
  table.set_features_scale(scale(v1::TASK_KIND_GENERATE_FEATURES));
  table.set_train_scale(scale(v1::TASK_KIND_TRAIN));
  table.set_evaluate_scale(scale(v1::TASK_KIND_QUANTIZE_EVALUATE));
}

}  // namespace

Status CostTables::Learn(const std::string& source, v1::TaskKind stage, double actual_s,
                         double estimated_s) {
  if (!(actual_s > 0) || !(estimated_s > 0)) return Status::Ok();
  const double sample = std::clamp(std::log(actual_s / estimated_s), -kMaxSampleLog, kMaxSampleLog);
  return store_.AddEstimateSample(source, stage, sample, kSampleWeight);
}

estimate::CostTable CostTables::ForEstimates() {
  std::vector<v1::CostTable> tables;
  auto workers = store_.ListWorkers(clock_.NowMs() - live_ms_);
  if (workers.ok()) {
    for (const v1::WorkerInfo& worker : *workers) {
      if (!RunsTraining(worker)) continue;
      if (worker.has_cost_table()) {
        tables.push_back(worker.cost_table());
      } else if (auto cached = store_.GetCostTable(worker.cpu_model(), worker.threads());
                 cached.ok() && cached->has_value()) {
        tables.push_back(**cached);
      }
    }
  }
  if (tables.empty()) {
    auto cached = store_.ListCostTables();
    if (cached.ok()) tables = std::move(cached).value();
  }
  const v1::CostTable* slowest = Slowest(tables);
  v1::CostTable table = slowest ? *slowest : estimate::DefaultCostTable();
  auto means = store_.GetEstimateSamples(table.source());
  ApplyScales(means.ok() ? *means : std::map<v1::TaskKind, double>{}, table);
  return table;
}

}  // namespace impulse::coordinator
