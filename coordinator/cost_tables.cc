#include "coordinator/cost_tables.h"

#include <algorithm>
#include <vector>

namespace impulse::coordinator {
namespace {

bool RunsTraining(const v1::WorkerInfo& worker) {
  return worker.kinds().empty() ||
         std::find(worker.kinds().begin(), worker.kinds().end(), v1::TASK_KIND_TRAIN) !=
             worker.kinds().end();
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

}  // namespace

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
  return slowest ? *slowest : estimate::DefaultCostTable();
}

}  // namespace impulse::coordinator
