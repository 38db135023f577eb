#include "raftfl/gossip/prng.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace raftfl::gossip {
namespace {

// Both peers of a round draw the same mask from this stream: its outputs are pinned.
TEST(Xoshiro256StarStar, MatchesPinnedOutputs) {
  Xoshiro256StarStar rng(5);
  EXPECT_EQ(rng.next(), 0x49d55178ca54cf69ULL);
  EXPECT_EQ(rng.next(), 0x9a22115a4d2624dcULL);
}

TEST(Xoshiro256StarStar, SameSeedSameStreamDifferentSeedDifferentStream) {
  Xoshiro256StarStar a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const std::uint64_t x = a.next();
    EXPECT_EQ(x, b.next());
    differs = differs || x != c.next();
  }
  EXPECT_TRUE(differs);
}

TEST(Xoshiro256StarStar, UniformBelowStaysInRange) {
  Xoshiro256StarStar rng(7);
  for (std::uint64_t bound : {1ULL, 2ULL, 3ULL, 1000ULL, (1ULL << 63) + 1, ~0ULL}) {
    for (int i = 0; i < 1000; ++i) EXPECT_LT(rng.uniform_below(bound), bound);
  }
}

TEST(Xoshiro256StarStar, UniformBelowIsRoughlyUniform) {
  // A bound that does not divide 2^64 exercises the rejection zone; a broken reduction
  // (say, always the low bits of a weak word) shows up as a skewed histogram.
  Xoshiro256StarStar rng(99);
  constexpr int kBins = 7;
  constexpr int kDraws = 70000;
  int counts[kBins] = {};
  for (int i = 0; i < kDraws; ++i) ++counts[rng.uniform_below(kBins)];
  double chi2 = 0;
  for (int c : counts) {
    const double d = c - kDraws / kBins;
    chi2 += d * d / (kDraws / kBins);
  }
  // df = 6: P(chi2 > 30) is about 4e-5.
  EXPECT_LT(chi2, 30.0);
}

}  // namespace
}  // namespace raftfl::gossip
