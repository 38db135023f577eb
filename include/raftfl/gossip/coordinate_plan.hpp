#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace raftfl::gossip {

// Which coordinates of a flat model a compressed exchange sends every round and which
// it compresses. Per-tensor: a tensor of fewer than `dense_below` parameters (biases,
// the conv layers, the classifier head of the CNN: 3.4% of it) travels whole, because
// it is where the model's label skew lives and costs little; the large tensors (the
// CNN's fc1 is 96.6% of its parameters) are where compression pays. With `dense_below`
// = 0 every coordinate is compressible (uniform compression, the seed's behaviour).
class CoordinatePlan {
 public:
  // `tensors`: (offset, count) of each tensor in the flat buffer, contiguous from 0 and
  // in order; throws std::invalid_argument otherwise.
  CoordinatePlan(std::span<const std::pair<std::size_t, std::size_t>> tensors, std::size_t dense_below);
  // One tensor of n parameters, every coordinate compressible.
  explicit CoordinatePlan(std::size_t n);

  std::size_t size() const { return n_; }
  std::size_t dense_count() const { return dense_.size(); }
  std::size_t compressible_count() const { return n_ - dense_.size(); }

  // The coordinates of a round, ascending: every dense one, and k_for_density(m,
  // density) of the m compressible ones, drawn as random_k_indices(m, density, seed)
  // draws them (both peers derive the same set from the round's seed).
  std::vector<std::uint32_t> random_k(double density, std::uint64_t seed) const;
  // Every dense coordinate and the k_for_density(m, density) compressible ones where
  // |values| is largest. `values` has size() entries.
  std::vector<std::uint32_t> top_k(std::span<const float> values, double density) const;

 private:
  std::vector<std::uint32_t> merge(std::vector<std::uint32_t> compressible_positions) const;

  std::size_t n_ = 0;
  std::vector<std::uint32_t> dense_;          // sorted
  std::vector<std::uint32_t> compressible_;   // sorted: position p in the compressed part -> coordinate
  mutable std::vector<std::uint32_t> scratch_;
  mutable std::vector<float> gathered_;
};

}  // namespace raftfl::gossip
