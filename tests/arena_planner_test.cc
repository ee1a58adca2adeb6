#include "impulse/model/arena_planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "impulse/model/fused_ops.h"
#include "tests/support/model_fixtures.h"

namespace impulse::model {
namespace {

using ::testing::ElementsAre;

bool Live(const ArenaBuffer& a, const ArenaBuffer& b) {
  return a.first <= b.last && b.first <= a.last;
}

// Brute force: every pair of buffers alive at the same time is disjoint in
// memory, inside the arena, and aligned.
void ExpectValid(const std::vector<ArenaBuffer>& buffers, const ArenaPlan& plan,
                 uint64_t alignment) {
  ASSERT_EQ(plan.offsets.size(), buffers.size());
  uint64_t end = 0;
  for (size_t i = 0; i < buffers.size(); ++i) {
    EXPECT_EQ(plan.offsets[i] % alignment, 0u) << i;
    end = std::max(end, plan.offsets[i] + buffers[i].bytes);
    for (size_t j = i + 1; j < buffers.size(); ++j) {
      if (!Live(buffers[i], buffers[j]) || buffers[i].bytes == 0 || buffers[j].bytes == 0) {
        continue;
      }
      const bool disjoint = plan.offsets[i] + buffers[i].bytes <= plan.offsets[j] ||
                            plan.offsets[j] + buffers[j].bytes <= plan.offsets[i];
      EXPECT_TRUE(disjoint) << "buffers " << i << " and " << j << " overlap";
    }
  }
  EXPECT_EQ(plan.arena_bytes, end);
}

// The most bytes alive at any one op: no plan can use less.
uint64_t PeakLiveBytes(const std::vector<ArenaBuffer>& buffers) {
  int last_op = 0;
  for (const ArenaBuffer& b : buffers) last_op = std::max(last_op, b.last);
  uint64_t peak = 0;
  for (int op = 0; op <= last_op; ++op) {
    uint64_t live = 0;
    for (const ArenaBuffer& b : buffers) {
      if (b.first <= op && op <= b.last) live += b.bytes;
    }
    peak = std::max(peak, live);
  }
  return peak;
}

std::vector<ArenaBuffer> RandomBuffers(std::mt19937& rng) {
  std::uniform_int_distribution<int> count(1, 40), bytes(0, 5000), op(0, 30), span(0, 8);
  std::vector<ArenaBuffer> buffers(count(rng));
  for (ArenaBuffer& b : buffers) {
    b.bytes = bytes(rng);
    b.first = op(rng);
    b.last = b.first + span(rng);
  }
  return buffers;
}

TEST(ArenaPlannerTest, NoTwoLiveBuffersOverlapOnRandomLifetimes) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 500; ++trial) {
    const std::vector<ArenaBuffer> buffers = RandomBuffers(rng);
    const uint64_t alignment = trial % 3 == 0 ? 1 : 16;
    const ArenaPlan plan = PlanArena(buffers, alignment);
    ExpectValid(buffers, plan, alignment);
    if (HasFailure()) FAIL() << "trial " << trial;
    EXPECT_GE(plan.arena_bytes, PeakLiveBytes(buffers));
  }
}

TEST(ArenaPlannerTest, IsDeterministic) {
  std::mt19937 rng(11);
  const std::vector<ArenaBuffer> buffers = RandomBuffers(rng);
  const ArenaPlan a = PlanArena(buffers);
  const ArenaPlan b = PlanArena(buffers);
  EXPECT_EQ(a.offsets, b.offsets);
  EXPECT_EQ(a.arena_bytes, b.arena_bytes);
}

TEST(ArenaPlannerTest, AChainReusesTwoSlots) {
  // op i writes buffer i, op i+1 reads it: two buffers alive at a time.
  std::vector<ArenaBuffer> chain;
  for (int i = 0; i < 6; ++i) chain.push_back({.bytes = 102, .first = i, .last = i + 1});
  const ArenaPlan plan = PlanArena(chain, 4);
  EXPECT_EQ(plan.arena_bytes, 206u);
  EXPECT_THAT(plan.offsets, ElementsAre(0, 104, 0, 104, 0, 104));
}

TEST(ArenaPlannerTest, EmptyPlan) {
  const ArenaPlan plan = PlanArena({});
  EXPECT_TRUE(plan.offsets.empty());
  EXPECT_EQ(plan.arena_bytes, 0u);
}

TEST(ArenaPlannerTest, OpOutputBuffersFollowReaders) {
  Result<LayerGraph> graph = LayerGraph::FromModel(testing::EveryLayerKindModel());
  ASSERT_TRUE(graph.ok());
  Result<FusedOps> ops = FusedOps::FromGraph(*graph);
  ASSERT_TRUE(ops.ok());
  const std::vector<ArenaBuffer> buffers = OpOutputBuffers(*ops, 4);
  // Nine ops; the softmax output is the caller's.
  ASSERT_EQ(buffers.size(), 8u);
  EXPECT_EQ(buffers[0].bytes, 4u * 8 * 8 * 4);
  // The depthwise output is read by pw (op 2) and the add (op 3).
  EXPECT_EQ(buffers[1].first, 1);
  EXPECT_EQ(buffers[1].last, 3);
  EXPECT_EQ(buffers[7].first, 7);  // the logits, read by the softmax
  EXPECT_EQ(buffers[7].last, 8);
}

TEST(ArenaPlannerTest, MobileNetV2PlanIsFarBelowTheSumOfBuffers) {
  Result<LayerGraph> graph = BuildMobileNetV2(0.35f, 3, 96, 96, 3, {});
  ASSERT_TRUE(graph.ok());
  Result<FusedOps> ops = FusedOps::FromGraph(*graph);
  ASSERT_TRUE(ops.ok());
  const std::vector<ArenaBuffer> buffers = OpOutputBuffers(*ops, 1);
  const ArenaPlan plan = PlanArena(buffers);
  ExpectValid(buffers, plan, 16);
  uint64_t sum = 0;
  for (const ArenaBuffer& b : buffers) sum += b.bytes;
  EXPECT_LT(plan.arena_bytes, sum / 3);
  // Greedy by size stays close to the lower bound on this chain-like graph.
  EXPECT_LT(plan.arena_bytes, PeakLiveBytes(buffers) * 5 / 4);
}

}  // namespace
}  // namespace impulse::model
