#include "raftfl/common/splitmix64.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace raftfl::common {
namespace {

// The reference implementation's outputs (Vigna's splitmix64.c) for seed 0.
TEST(SplitMix64, MatchesReferenceOutputsForSeedZero) {
  SplitMix64 rng(0);
  EXPECT_EQ(rng.next(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(rng.next(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(rng.next(), 0x06c45d188009454fULL);
}

TEST(SplitMix64, NextIsTheMixOfTheAdvancedState) {
  SplitMix64 rng(12345);
  EXPECT_EQ(rng.next(), splitmix64_mix(12345 + kSplitMix64Gamma));
  EXPECT_EQ(rng.next(), splitmix64_mix(12345 + 2 * kSplitMix64Gamma));
  static_assert(splitmix64_mix(0) == 0, "the mix is a bijection that fixes zero");
}

}  // namespace
}  // namespace raftfl::common
