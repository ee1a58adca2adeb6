// RedisStore's cost tables (one HASH, field "<threads>|<cpu model>") and
// estimate scales (one HASH, field "<stage>|<source>"); the schema is in
// the class comment, coordinator/redis_store.h.
#include <string>

#include "coordinator/redis_connection.h"
#include "coordinator/redis_store.h"
#include "coordinator/redis_values.h"
#include "impulse/task_names.h"

namespace impulse::coordinator {
namespace {

std::string CostTableField(const std::string& cpu_model, uint32_t threads) {
  return std::to_string(threads) + "|" + cpu_model;
}

Result<v1::CostTable> ParseCostTable(const std::string& bytes) {
  v1::CostTable table;
  if (!table.ParseFromString(bytes)) return Internal("costs: a cached table does not parse");
  return table;
}

std::string EstimateScaleField(v1::TaskKind stage, const std::string& source) {
  return TaskKindName(stage) + "|" + source;
}

const LuaScript& EstimateSampleScript() {
  static const LuaScript script("estimate_sample");
  return script;
}

}  // namespace

Status RedisStore::PutCostTable(const std::string& cpu_model, uint32_t threads,
                                const v1::CostTable& table) {
  return pool_
      ->Command({"HSET", keys_.CostTables(), CostTableField(cpu_model, threads),
                 table.SerializeAsString()})
      .status();
}

Result<std::optional<v1::CostTable>> RedisStore::GetCostTable(const std::string& cpu_model,
                                                              uint32_t threads) {
  IMPULSE_ASSIGN_OR_RETURN(RedisValue value, pool_->Command({"HGET", keys_.CostTables(),
                                                             CostTableField(cpu_model, threads)}));
  if (value.is_nil()) return std::optional<v1::CostTable>();
  IMPULSE_ASSIGN_OR_RETURN(v1::CostTable table, ParseCostTable(value.str));
  return std::optional<v1::CostTable>(std::move(table));
}

Result<std::vector<v1::CostTable>> RedisStore::ListCostTables() {
  IMPULSE_ASSIGN_OR_RETURN(RedisValue all, pool_->Command({"HVALS", keys_.CostTables()}));
  std::vector<v1::CostTable> tables;
  for (const RedisValue& value : all.elements) {
    IMPULSE_ASSIGN_OR_RETURN(v1::CostTable table, ParseCostTable(value.str));
    tables.push_back(std::move(table));
  }
  return tables;
}

Status RedisStore::AddEstimateSample(const std::string& source, v1::TaskKind stage,
                                     double log_ratio, double weight) {
  return pool_
      ->Eval(EstimateSampleScript(), {keys_.EstimateScales()},
             {EstimateScaleField(stage, source), FormatDouble(log_ratio), FormatDouble(weight)})
      .status();
}

Result<std::map<v1::TaskKind, double>> RedisStore::GetEstimateSamples(const std::string& source) {
  std::map<v1::TaskKind, double> means;
  const v1::TaskKind stages[] = {v1::TASK_KIND_GENERATE_FEATURES, v1::TASK_KIND_TRAIN,
                                 v1::TASK_KIND_QUANTIZE_EVALUATE};
  std::vector<std::string> command = {"HMGET", keys_.EstimateScales()};
  for (v1::TaskKind stage : stages) command.push_back(EstimateScaleField(stage, source));
  IMPULSE_ASSIGN_OR_RETURN(RedisValue reply, pool_->Command(command));
  for (size_t i = 0; i < std::size(stages) && i < reply.elements.size(); ++i) {
    if (!reply.elements[i].is_nil()) means[stages[i]] = ParseDouble(reply.elements[i].str);
  }
  return means;
}

}  // namespace impulse::coordinator
