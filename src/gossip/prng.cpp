#include "raftfl/gossip/prng.hpp"

#include <bit>

#include "raftfl/common/splitmix64.hpp"

namespace raftfl::gossip {

Xoshiro256StarStar::Xoshiro256StarStar(std::uint64_t seed) {
  common::SplitMix64 expand(seed);
  for (auto& word : s_) word = expand.next();
}

std::uint64_t Xoshiro256StarStar::next() {
  const std::uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = std::rotl(s_[3], 45);
  return result;
}

std::uint64_t Xoshiro256StarStar::uniform_below(std::uint64_t bound) {
  // (2^64 - bound) mod bound, computed without 128-bit arithmetic.
  const std::uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const std::uint64_t x = next();
    if (x >= threshold) return x % bound;
  }
}

}  // namespace raftfl::gossip
