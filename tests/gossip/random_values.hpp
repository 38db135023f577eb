#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace raftfl::gossip::test {

// Normally distributed test data, reproducible per seed on one standard library (the tests
// compare against results computed from the same data, never against pinned values).
inline std::vector<float> random_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

}  // namespace raftfl::gossip::test
