// The static tensor arena: one buffer in which every intermediate tensor of
// an inference has an offset fixed ahead of time, tensors whose lifetimes
// do not overlap sharing bytes. The C library's arena, the worker's integer
// interpreter and the RAM figures all use this plan.
//
// Lifetimes are op indices: a tensor is written by op `first` and last read
// by op `last` (first <= last); two tensors may overlap in memory only when
// one's [first, last] ends before the other's begins — so an op's inputs
// and its output never share bytes.
//
// Algorithm: greedy by size (TFLite Micro's GreedyMemoryPlanner): tensors in
// decreasing size (ties: lower index first), each at the lowest offset,
// aligned, where it does not collide with an already placed tensor whose
// lifetime overlaps. Deterministic.
#pragma once

#include <cstdint>
#include <vector>

namespace impulse::model {

struct ArenaBuffer {
  uint64_t bytes = 0;
  int first = 0;  // op that writes it
  int last = 0;   // last op that reads it
};

struct ArenaPlan {
  std::vector<uint64_t> offsets;  // per buffer, multiples of `alignment`
  uint64_t arena_bytes = 0;       // max(offset + bytes), 0 when no buffer
};

ArenaPlan PlanArena(const std::vector<ArenaBuffer>& buffers, uint64_t alignment = 16);

class FusedOps;
// The buffers of the plan's op outputs (tensor i = op i's output; element
// size `element_bytes`: 1 for int8, 4 for float32). The model input and the
// final output are outside the arena (the caller owns them), so an op that
// reads the input or the last op's output add nothing. FLATTEN/DROPOUT add
// no tensor (FusedOps aliases them).
std::vector<ArenaBuffer> OpOutputBuffers(const FusedOps& ops, uint64_t element_bytes);

}  // namespace impulse::model
