#pragma once

#include <cstdint>
#include <span>

namespace raftfl::gossip {

// Pairwise gossip averaging of a round, x_i <- (x_i + x_j) / 2, on the exchanged
// coordinates only: mine[indices[k]] is averaged with theirs[k]; every other coordinate
// keeps its local value. The peer runs the same with the roles swapped and, because IEEE
// addition is commutative, both end bit-for-bit equal there.
// Throws std::invalid_argument if indices and theirs differ in length, std::out_of_range
// if an index is outside mine.
void average_at(std::span<float> mine, std::span<const std::uint32_t> indices,
                std::span<const float> theirs);

// The dense baseline: every coordinate. Throws std::invalid_argument on a size mismatch.
void average_dense(std::span<float> mine, std::span<const float> theirs);

}  // namespace raftfl::gossip
