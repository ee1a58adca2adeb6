#include "impulse/model/arena_planner.h"

#include <algorithm>
#include <numeric>

#include "impulse/model/fused_ops.h"

namespace impulse::model {
namespace {

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

bool LifetimesOverlap(const ArenaBuffer& a, const ArenaBuffer& b) {
  return !(a.last < b.first || b.last < a.first);
}

}  // namespace

ArenaPlan PlanArena(const std::vector<ArenaBuffer>& buffers, uint64_t alignment) {
  alignment = std::max<uint64_t>(alignment, 1);
  ArenaPlan plan;
  plan.offsets.assign(buffers.size(), 0);
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return buffers[a].bytes > buffers[b].bytes; });

  std::vector<size_t> placed;  // indices into buffers, in placement order
  for (size_t index : order) {
    const ArenaBuffer& buffer = buffers[index];
    if (buffer.bytes == 0) continue;  // offset 0, occupies nothing
    std::vector<size_t> live;
    for (size_t other : placed) {
      if (LifetimesOverlap(buffer, buffers[other])) live.push_back(other);
    }
    std::sort(live.begin(), live.end(),
              [&](size_t a, size_t b) { return plan.offsets[a] < plan.offsets[b]; });
    // The first gap between live neighbours (in offset order) that fits.
    uint64_t offset = 0;
    for (size_t other : live) {
      if (offset + buffer.bytes <= plan.offsets[other]) break;
      offset = std::max(offset, AlignUp(plan.offsets[other] + buffers[other].bytes, alignment));
    }
    plan.offsets[index] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + buffer.bytes);
    placed.push_back(index);
  }
  return plan;
}

std::vector<ArenaBuffer> OpOutputBuffers(const FusedOps& ops, uint64_t element_bytes) {
  const std::vector<FusedOp>& all = ops.ops();
  std::vector<ArenaBuffer> buffers;
  for (size_t i = 0; i + 1 < all.size(); ++i) {
    ArenaBuffer buffer;
    buffer.bytes = all[i].output_elements * element_bytes;
    buffer.first = static_cast<int>(i);
    buffer.last = static_cast<int>(i);
    buffers.push_back(buffer);
  }
  for (size_t reader = 0; reader < all.size(); ++reader) {
    for (int input : all[reader].inputs) {
      if (input < 0 || input >= static_cast<int>(buffers.size())) continue;
      buffers[input].last = std::max(buffers[input].last, static_cast<int>(reader));
    }
  }
  return buffers;
}

}  // namespace impulse::model
