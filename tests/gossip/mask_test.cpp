#include "raftfl/gossip/mask.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

namespace raftfl::gossip {
namespace {

void expect_valid_mask(const std::vector<std::uint32_t>& idx, std::size_t n, std::size_t k) {
  ASSERT_EQ(idx.size(), k);
  for (std::size_t i = 0; i < idx.size(); ++i) {
    ASSERT_LT(idx[i], n);
    if (i > 0) {
      ASSERT_LT(idx[i - 1], idx[i]) << "not sorted and unique at " << i;
    }
  }
}

TEST(KForDensity, RoundsAndClamps) {
  EXPECT_EQ(k_for_density(1000, 0.01), 10u);
  EXPECT_EQ(k_for_density(1000, 0.0125), 13u);  // 12.5 rounds away from zero
  EXPECT_EQ(k_for_density(1000, 0.0), 1u);      // never an empty exchange
  EXPECT_EQ(k_for_density(1000, 1e-9), 1u);
  EXPECT_EQ(k_for_density(1000, 1.0), 1000u);
  EXPECT_EQ(k_for_density(1, 0.0), 1u);
  EXPECT_EQ(k_for_density(0, 0.5), 0u);
  EXPECT_EQ(k_for_density(0, 0.0), 0u);
}

TEST(KForDensity, RejectsDensityOutsideUnitInterval) {
  EXPECT_THROW(k_for_density(10, -0.1), std::invalid_argument);
  EXPECT_THROW(k_for_density(10, 1.0001), std::invalid_argument);
  EXPECT_THROW(k_for_density(10, std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
  EXPECT_THROW(random_k_indices(10, 2.0, 1), std::invalid_argument);
}

TEST(RandomK, SameSeedGivesSameMaskOnBothPeers) {
  constexpr std::size_t n = 10007;
  for (std::uint64_t seed : {0ULL, 1ULL, 0xdeadbeefULL, ~0ULL}) {
    // Each peer computes the mask on its own; nothing but the seed is shared.
    const auto peer_a = random_k_indices(n, 0.03, seed);
    const auto peer_b = random_k_indices(n, 0.03, seed);
    EXPECT_EQ(peer_a, peer_b);
    expect_valid_mask(peer_a, n, 300);
  }
}

TEST(RandomK, DifferentSeedsGiveDifferentMasks) {
  const auto base = random_k_indices(5000, 0.02, 0);
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    const auto other = random_k_indices(5000, 0.02, seed);
    EXPECT_NE(other, base) << "seed " << seed;
    // Independent masks of 100 out of 5000 overlap in about 2 coordinates.
    std::vector<std::uint32_t> common;
    std::set_intersection(base.begin(), base.end(), other.begin(), other.end(), std::back_inserter(common));
    EXPECT_LT(common.size(), 20u) << "seed " << seed;
  }
}

TEST(RandomK, PinnedStreamForFixedSeed) {
  // Peers running different builds must agree: this pins the specified stream. If it
  // changes, mixed-version clusters would average mismatched coordinates. The values were
  // also produced by a separate implementation written from the stream described in mask.hpp.
  const auto idx = random_k_indices(100, 0.05, 12345);
  const std::vector<std::uint32_t> pinned = {14, 27, 35, 44, 88};
  EXPECT_EQ(idx, pinned);
}

TEST(RandomK, DensityEdgeCases) {
  expect_valid_mask(random_k_indices(1000, 0.0, 3), 1000, 1);
  EXPECT_EQ(random_k_indices(1000, 1.0, 3), all_indices(1000));
  EXPECT_EQ(random_k_indices(7, 0.99, 3), all_indices(7));  // k rounds to n
  EXPECT_TRUE(random_k_indices(0, 0.5, 3).empty());
  expect_valid_mask(random_k_indices(1, 0.0, 3), 1, 1);
  // Dense-ish masks exercise Floyd's "already taken" branch heavily.
  expect_valid_mask(random_k_indices(1000, 0.9, 3), 1000, 900);
}

TEST(RandomK, CoverageIsRoughlyUniformOverSeeds) {
  constexpr std::size_t n = 100;
  constexpr int kSeeds = 20000;
  constexpr double density = 0.1;
  std::vector<int> counts(n, 0);
  for (int s = 0; s < kSeeds; ++s) {
    for (std::uint32_t i : random_k_indices(n, density, static_cast<std::uint64_t>(s))) ++counts[i];
  }
  const double expected = kSeeds * density;  // 2000 per coordinate
  double chi2 = 0;
  for (int c : counts) chi2 += (c - expected) * (c - expected) / expected;
  // df = 99, mean about 89 (sampling without replacement); a generator biased to low or
  // high indices, or one that repeats masks, lands in the thousands.
  EXPECT_LT(chi2, 180.0);
  const int low = std::accumulate(counts.begin(), counts.begin() + n / 2, 0);
  const int high = std::accumulate(counts.begin() + n / 2, counts.end(), 0);
  EXPECT_NEAR(static_cast<double>(low) / high, 1.0, 0.03);
}

TEST(RandomK, LargeModelOnePercent) {
  constexpr std::size_t n = 1'600'000;
  const auto idx = random_k_indices(n, 0.01, 2024);
  expect_valid_mask(idx, n, 16000);
  // Spread over the whole range, not clumped at one end.
  EXPECT_LT(idx.front(), n / 100);
  EXPECT_GT(idx.back(), n - n / 100);
}

TEST(AllIndices, CoversEverything) {
  const auto idx = all_indices(5);
  EXPECT_EQ(idx, (std::vector<std::uint32_t>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(all_indices(0).empty());
}

TEST(Gather, PicksValuesAndChecksRange) {
  const std::vector<float> v{10, 11, 12, 13};
  const std::vector<std::uint32_t> idx{1, 3};
  EXPECT_EQ(gather(v, idx), (std::vector<float>{11, 13}));
  const std::vector<std::uint32_t> bad{4};
  EXPECT_THROW(gather(v, bad), std::out_of_range);
}

}  // namespace
}  // namespace raftfl::gossip
