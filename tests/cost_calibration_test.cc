#include "worker/training/cost_calibration.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>

#include "tests/support/temp_dir.h"

namespace impulse::worker::training {
namespace {

void ExpectPositiveFinite(const v1::PassCosts& c, const std::string& pass, bool params) {
  for (auto [name, value] :
       {std::pair{"conv_s_per_mac", c.conv_s_per_mac()},
        {"conv_s_per_output", c.conv_s_per_output()},
        {"depthwise_s_per_mac", c.depthwise_s_per_mac()},
        {"depthwise_s_per_channel", c.depthwise_s_per_channel()},
        {"pointwise_s_per_mac", c.pointwise_s_per_mac()},
        {"pointwise_s_per_output", c.pointwise_s_per_output()},
        {"dense_s_per_mac", c.dense_s_per_mac()},
        {"batch_norm_s_per_element", c.batch_norm_s_per_element()},
        {"elementwise_s_per_element", c.elementwise_s_per_element()},
        {"batch_overhead_s", c.batch_overhead_s()},
        {"layer_overhead_s", c.layer_overhead_s()}}) {
    EXPECT_TRUE(std::isfinite(value) && value > 0) << pass << "." << name << " = " << value;
    // No CPU does a MAC in under 1e-13 s per thread, nor one in a microsecond.
    EXPECT_LT(value, 0.1) << pass << "." << name;
  }
  if (params) {
    EXPECT_TRUE(std::isfinite(c.param_s()) && c.param_s() > 0) << pass << ".param_s";
  } else {
    EXPECT_EQ(c.param_s(), 0) << pass << ".param_s";
  }
}

// One measurement, within its time bound, gives figures that are positive,
// finite and in the order any CPU puts them.
TEST(CostCalibrationTest, MeasuresEveryKindWithinItsBudget) {
  testing::TempDir dir;
  CalibrationOptions options{.threads = 1, .scratch_dir = dir.path(), .budget_s = 2.0,
                             .cpu_model = "test cpu"};
  const auto started = std::chrono::steady_clock::now();
  auto table = MeasureCostTable(options);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  std::cout << table->DebugString();
  // At least three calls per timing, warm-ups and graph set-up come on top
  // of the budget, and a shared 2-core CI machine may be busy: bounded
  // (the calibration cannot run away), not a speed check.
  EXPECT_LT(elapsed, 10 * options.budget_s + 20);
  EXPECT_NEAR(table->calibration_s(), elapsed, 0.5);
  EXPECT_EQ(table->source(), "test cpu x1");
  EXPECT_GT(table->measured_ms(), 0);
  ExpectPositiveFinite(table->train(), "train", true);
  ExpectPositiveFinite(table->infer(), "infer", false);

  // Training (forward + backward + step) costs more than inference per unit.
  EXPECT_GT(table->train().conv_s_per_mac(), table->infer().conv_s_per_mac());
  EXPECT_GT(table->train().dense_s_per_mac(), table->infer().dense_s_per_mac());
  EXPECT_GT(table->train().elementwise_s_per_element(), table->infer().elementwise_s_per_element());
  // Depthwise convolutions are memory-bound: dearer per MAC than k x k ones.
  EXPECT_GT(table->train().depthwise_s_per_mac(), table->train().conv_s_per_mac());
  EXPECT_GT(table->train().layer_overhead_s(), table->infer().layer_overhead_s());
  EXPECT_GT(table->train().batch_norm_s_per_element(), table->infer().batch_norm_s_per_element());
  EXPECT_GT(table->projection_s_per_pair(), 0);
  EXPECT_GT(table->pca_s_per_value(), 0);
  // Unmeasured figures are left to the default table.
  // The int8 evaluator's figures: the default's, scaled by this worker's
  // float inference speed.
  EXPECT_GT(table->int8().conv_s_per_mac(), 0);
  EXPECT_EQ(table->int8().batch_norm_s_per_element(), 0);
  EXPECT_EQ(table->task_overhead_s(), 0);
  // The scratch matrices are gone.
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace impulse::worker::training
