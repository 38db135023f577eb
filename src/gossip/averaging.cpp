#include "raftfl/gossip/averaging.hpp"

#include <Eigen/Core>

#include <stdexcept>
#include <string>

namespace raftfl::gossip {

void average_at(std::span<float> mine, std::span<const std::uint32_t> indices, std::span<const float> theirs) {
  if (indices.size() != theirs.size()) {
    throw std::invalid_argument("average_at: " + std::to_string(indices.size()) + " indices but " +
                                std::to_string(theirs.size()) + " values");
  }
  // Checked before writing anything, so a bad message leaves the model untouched.
  for (const std::uint32_t i : indices) {
    if (i >= mine.size()) throw std::out_of_range("average_at: index " + std::to_string(i) + " out of range");
  }
  for (std::size_t k = 0; k < indices.size(); ++k) {
    float& x = mine[indices[k]];
    x = (x + theirs[k]) * 0.5f;
  }
}

void average_dense(std::span<float> mine, std::span<const float> theirs) {
  if (mine.size() != theirs.size()) throw std::invalid_argument("average_dense: sizes differ");
  const auto n = static_cast<Eigen::Index>(mine.size());
  Eigen::Map<Eigen::ArrayXf> x(mine.data(), n);
  x = (x + Eigen::Map<const Eigen::ArrayXf>(theirs.data(), n)) * 0.5f;
}

}  // namespace raftfl::gossip
