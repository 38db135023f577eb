#pragma once

#include <array>
#include <cstdint>

namespace raftfl::gossip {

// Both peers of a round must draw the same mask on any platform and standard library, so
// the generator and the bounded-integer reduction are written out here rather than taken
// from <random>, whose distributions are implementation-defined.

// xoshiro256** 1.0 (Blackman, Vigna 2018). State words are the first four SplitMix64
// outputs of the seed (common/splitmix64.hpp), which can never all be zero.
class Xoshiro256StarStar {
 public:
  explicit Xoshiro256StarStar(std::uint64_t seed);

  std::uint64_t next();

  // Uniform in [0, bound) for bound > 0, by rejection: draws x until
  // x >= (2^64 - bound) mod bound and returns x mod bound. The rejected zone is what makes
  // the result unbiased; it is specified this way so that other implementations can match
  // the stream exactly.
  std::uint64_t uniform_below(std::uint64_t bound);

 private:
  std::array<std::uint64_t, 4> s_;
};

}  // namespace raftfl::gossip
