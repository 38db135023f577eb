#pragma once

#include <cstdint>
#include <vector>

namespace raftfl::gossip {

// Coordinates of a flat parameter buffer that travel in one exchange. `indices` is sorted
// ascending and unique; values[i] belongs to indices[i].
struct SparseVector {
  std::vector<std::uint32_t> indices;
  std::vector<float> values;
};

}  // namespace raftfl::gossip
