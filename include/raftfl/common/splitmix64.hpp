#pragma once

#include <cstdint>

namespace raftfl::common {

// SplitMix64 (Steele, Lea, Flood 2014). Round seeds, matchings and exchange masks are
// derived from it on every node and must agree between nodes and versions, so its outputs
// are a contract: tests/common/splitmix64_test.cpp pins them.

inline constexpr std::uint64_t kSplitMix64Gamma = 0x9e3779b97f4a7c15ULL;

// The output function alone: a bijection on 64-bit words that spreads every input bit over
// the whole result, also usable as a hash finalizer.
constexpr std::uint64_t splitmix64_mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Well mixed outputs even for seeds 0, 1, 2, ...: what makes it the usual choice for
// expanding a small seed into the state of a larger generator.
class SplitMix64 {
 public:
  explicit constexpr SplitMix64(std::uint64_t seed) : state_(seed) {}

  constexpr std::uint64_t next() {
    state_ += kSplitMix64Gamma;
    return splitmix64_mix(state_);
  }

 private:
  std::uint64_t state_;
};

}  // namespace raftfl::common
