#include "raftfl/gossip/top_k.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "raftfl/gossip/mask.hpp"

namespace raftfl::gossip {

namespace {

// NaN compares false with everything, which would break nth_element's strict weak
// ordering; ranking it as +inf keeps the order total.
float magnitude(float v) {
  return std::isnan(v) ? std::numeric_limits<float>::infinity() : std::fabs(v);
}

}  // namespace

std::vector<std::uint32_t> largest_magnitudes(std::span<const float> values, std::size_t k,
                                              std::vector<std::uint32_t>& scratch) {
  const std::size_t n = values.size();
  k = std::min(k, n);
  scratch.resize(n);
  std::iota(scratch.begin(), scratch.end(), std::uint32_t{0});
  const float* a = values.data();
  auto larger = [a](std::uint32_t i, std::uint32_t j) {
    const float mi = magnitude(a[i]);
    const float mj = magnitude(a[j]);
    return mi > mj || (mi == mj && i < j);
  };
  if (k < n) std::nth_element(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(k), scratch.end(), larger);
  std::vector<std::uint32_t> out(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(k));
  std::sort(out.begin(), out.end());
  return out;
}

TopKCompressor::TopKCompressor(std::size_t n) : residual_(n, 0.0f) {
  if (n > std::numeric_limits<std::uint32_t>::max()) {
    throw std::invalid_argument("TopKCompressor: n exceeds 32-bit indices");
  }
}

void TopKCompressor::reset() { std::fill(residual_.begin(), residual_.end(), 0.0f); }

SparseVector TopKCompressor::compress(std::span<const float> input, double density) {
  const std::size_t n = residual_.size();
  if (input.size() != n) throw std::invalid_argument("TopKCompressor::compress: input size differs from n");
  const std::size_t k = k_for_density(n, density);

  // The accumulated value lives in the residual buffer from here on; sent coordinates are
  // zeroed below, so the buffer ends as the new residual with no second pass.
  Eigen::Map<Eigen::ArrayXf> acc(residual_.data(), static_cast<Eigen::Index>(n));
  acc += Eigen::Map<const Eigen::ArrayXf>(input.data(), static_cast<Eigen::Index>(n));

  SparseVector out;
  out.indices = largest_magnitudes(residual_, k, order_);
  out.values.reserve(k);
  for (const std::uint32_t i : out.indices) {
    out.values.push_back(residual_[i]);
    residual_[i] = 0.0f;
  }
  return out;
}

SparseVector dense(std::span<const float> values) {
  return SparseVector{all_indices(values.size()), std::vector<float>(values.begin(), values.end())};
}

}  // namespace raftfl::gossip
