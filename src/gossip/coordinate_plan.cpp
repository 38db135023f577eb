#include "raftfl/gossip/coordinate_plan.hpp"

#include <algorithm>
#include <iterator>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

#include "raftfl/gossip/mask.hpp"
#include "raftfl/gossip/top_k.hpp"

namespace raftfl::gossip {

CoordinatePlan::CoordinatePlan(std::span<const std::pair<std::size_t, std::size_t>> tensors, std::size_t dense_below) {
  for (const auto& [offset, count] : tensors) {
    if (offset != n_) throw std::invalid_argument("CoordinatePlan: tensor at " + std::to_string(offset) +
                                                  " does not follow the previous one (ends at " + std::to_string(n_) + ")");
    n_ += count;
    if (n_ > std::numeric_limits<std::uint32_t>::max()) throw std::invalid_argument("CoordinatePlan: too many parameters");
    auto& into = count < dense_below ? dense_ : compressible_;
    for (std::size_t i = offset; i < offset + count; ++i) into.push_back(static_cast<std::uint32_t>(i));
  }
}

CoordinatePlan::CoordinatePlan(std::size_t n) : n_(n) {
  if (n_ > std::numeric_limits<std::uint32_t>::max()) throw std::invalid_argument("CoordinatePlan: too many parameters");
  compressible_.resize(n);
  std::iota(compressible_.begin(), compressible_.end(), std::uint32_t{0});
}

std::vector<std::uint32_t> CoordinatePlan::merge(std::vector<std::uint32_t> positions) const {
  for (auto& p : positions) p = compressible_[p];
  std::vector<std::uint32_t> out;
  out.reserve(dense_.size() + positions.size());
  std::merge(dense_.begin(), dense_.end(), positions.begin(), positions.end(), std::back_inserter(out));
  return out;
}

std::vector<std::uint32_t> CoordinatePlan::random_k(double density, std::uint64_t seed) const {
  if (compressible_.empty()) return dense_;
  return merge(random_k_indices(compressible_.size(), density, seed));
}

std::vector<std::uint32_t> CoordinatePlan::top_k(std::span<const float> values, double density) const {
  if (values.size() != n_) throw std::invalid_argument("CoordinatePlan::top_k: values of the wrong size");
  if (compressible_.empty()) return dense_;
  gathered_.resize(compressible_.size());
  for (std::size_t p = 0; p < compressible_.size(); ++p) gathered_[p] = values[compressible_[p]];
  return merge(largest_magnitudes(gathered_, k_for_density(compressible_.size(), density), scratch_));
}

}  // namespace raftfl::gossip
