#include "raftfl/gossip/mask.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

#include "raftfl/gossip/prng.hpp"

namespace raftfl::gossip {

std::size_t k_for_density(std::size_t n, double density) {
  if (!(density >= 0.0 && density <= 1.0)) {
    throw std::invalid_argument("density must lie in [0, 1], got " + std::to_string(density));
  }
  if (n == 0) return 0;
  const auto rounded = static_cast<std::size_t>(std::llround(density * static_cast<double>(n)));
  return std::clamp<std::size_t>(rounded, 1, n);
}

std::vector<std::uint32_t> random_k_indices(std::size_t n, double density, std::uint64_t round_seed) {
  if (n > std::numeric_limits<std::uint32_t>::max()) {
    throw std::invalid_argument("random_k_indices: n exceeds 32-bit indices");
  }
  const std::size_t k = k_for_density(n, density);
  if (k == n) return all_indices(n);

  // Floyd's algorithm draws exactly k numbers, each a fresh member, so the cost does not
  // depend on how crowded the set already is (unlike rejecting repeats).
  std::vector<std::uint64_t> taken((n + 63) / 64, 0);
  auto test_and_set = [&taken](std::uint64_t i) {
    std::uint64_t& word = taken[i / 64];
    const std::uint64_t bit = std::uint64_t{1} << (i % 64);
    const bool was = (word & bit) != 0;
    word |= bit;
    return was;
  };
  Xoshiro256StarStar rng(round_seed);
  for (std::uint64_t j = n - k; j < n; ++j) {
    const std::uint64_t t = rng.uniform_below(j + 1);
    if (test_and_set(t)) test_and_set(j);
  }

  // Reading the bitmap in order yields the indices already sorted: n/64 words, no sort.
  std::vector<std::uint32_t> out;
  out.reserve(k);
  for (std::size_t w = 0; w < taken.size(); ++w) {
    for (std::uint64_t word = taken[w]; word != 0; word &= word - 1) {
      out.push_back(static_cast<std::uint32_t>(w * 64 + static_cast<std::size_t>(std::countr_zero(word))));
    }
  }
  return out;
}

std::vector<std::uint32_t> all_indices(std::size_t n) {
  if (n > std::numeric_limits<std::uint32_t>::max()) {
    throw std::invalid_argument("all_indices: n exceeds 32-bit indices");
  }
  std::vector<std::uint32_t> out(n);
  std::iota(out.begin(), out.end(), std::uint32_t{0});
  return out;
}

std::vector<float> gather(std::span<const float> values, std::span<const std::uint32_t> indices) {
  std::vector<float> out;
  out.reserve(indices.size());
  for (const std::uint32_t i : indices) {
    if (i >= values.size()) throw std::out_of_range("gather: index " + std::to_string(i) + " out of range");
    out.push_back(values[i]);
  }
  return out;
}

}  // namespace raftfl::gossip
