// RedisStore's cost tables: one HASH, field "<threads>|<cpu model>" (the
// schema is in the class comment, coordinator/redis_store.h).
#include "coordinator/redis_connection.h"
#include "coordinator/redis_store.h"

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
  IMPULSE_ASSIGN_OR_RETURN(
      RedisValue value,
      pool_->Command({"HGET", keys_.CostTables(), CostTableField(cpu_model, threads)}));
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

}  // namespace impulse::coordinator
