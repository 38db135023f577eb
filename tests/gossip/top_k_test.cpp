#include "raftfl/gossip/top_k.hpp"

#include "raftfl/gossip/mask.hpp"
#include "random_values.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

namespace raftfl::gossip {
namespace {

using test::random_values;

// The reference: a full sort by descending magnitude, ties to the lower index.
std::vector<std::uint32_t> brute_force_top_k(const std::vector<float>& v, std::size_t k) {
  std::vector<std::uint32_t> order(v.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&v](std::uint32_t a, std::uint32_t b) { return std::fabs(v[a]) > std::fabs(v[b]); });
  order.resize(k);
  std::sort(order.begin(), order.end());
  return order;
}

TEST(TopK, PicksExactlyTheLargestMagnitudes) {
  for (std::uint32_t seed = 0; seed < 20; ++seed) {
    const auto v = random_values(1000, seed);
    TopKCompressor c(v.size());
    const auto out = c.compress(v, 0.05);
    ASSERT_EQ(out.indices, brute_force_top_k(v, 50)) << "seed " << seed;
    for (std::size_t i = 0; i < out.indices.size(); ++i) EXPECT_EQ(out.values[i], v[out.indices[i]]);
  }
}

TEST(TopK, TiesGoToTheLowerIndex) {
  // Many equal magnitudes of both signs: the choice must still be deterministic.
  std::vector<float> v(200);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(static_cast<int>(i * 7 % 5) - 2);
  TopKCompressor c(v.size());
  EXPECT_EQ(c.compress(v, 0.1).indices, brute_force_top_k(v, 20));
}

TEST(TopK, ErrorFeedbackAccountingIsExactPerCoordinate) {
  constexpr std::size_t n = 4096;
  TopKCompressor c(n);
  std::vector<float> total_sent(n, 0.0f);
  for (std::uint32_t round = 0; round < 8; ++round) {
    const auto input = random_values(n, 100 + round);
    const std::vector<float> before(c.residual().begin(), c.residual().end());
    const auto out = c.compress(input, 0.01 * (round + 1));
    ASSERT_EQ(out.indices.size(), k_for_density(n, 0.01 * (round + 1)));
    std::vector<bool> sent(n, false);
    for (std::size_t j = 0; j < out.indices.size(); ++j) {
      const std::uint32_t i = out.indices[j];
      ASSERT_FALSE(sent[i]) << "index sent twice";
      sent[i] = true;
      EXPECT_EQ(out.values[j], before[i] + input[i]);
    }
    for (std::size_t i = 0; i < n; ++i) {
      const float sent_value = sent[i] ? before[i] + input[i] : 0.0f;
      // sent + residual_after == residual_before + input, bit for bit.
      ASSERT_EQ(sent_value + c.residual()[i], before[i] + input[i]) << "round " << round << " coordinate " << i;
      ASSERT_EQ(c.residual()[i], sent[i] ? 0.0f : before[i] + input[i]);
    }
  }
}

TEST(TopK, SmallSteadyUpdatesAreEventuallySent) {
  // Coordinate 0 moves a little each round, the rest move a lot but change places; error
  // feedback must let coordinate 0 win once its accumulated update is the largest.
  constexpr std::size_t n = 10;
  TopKCompressor c(n);
  bool sent_zero = false;
  for (int round = 0; round < 20 && !sent_zero; ++round) {
    std::vector<float> input(n, 0.0f);
    input[0] = 0.3f;
    input[1 + round % 9] = 1.0f;
    const auto out = c.compress(input, 0.1);
    sent_zero = out.indices.front() == 0;
  }
  EXPECT_TRUE(sent_zero);
}

TEST(TopK, DensityOneSendsEverythingAndClearsResidual) {
  const auto v = random_values(300, 5);
  TopKCompressor c(v.size());
  c.compress(v, 0.1);
  const auto out = c.compress(v, 1.0);
  ASSERT_EQ(out.indices, all_indices(v.size()));
  for (float r : c.residual()) EXPECT_EQ(r, 0.0f);
}

TEST(TopK, DensityZeroSendsOneCoordinate) {
  std::vector<float> v{0.1f, -5.0f, 2.0f};
  TopKCompressor c(v.size());
  const auto out = c.compress(v, 0.0);
  EXPECT_EQ(out.indices, (std::vector<std::uint32_t>{1}));
  EXPECT_EQ(out.values, (std::vector<float>{-5.0f}));
}

TEST(TopK, NanIsSentNotHidden) {
  std::vector<float> v{1.0f, std::numeric_limits<float>::quiet_NaN(), 3.0f, -2.0f};
  TopKCompressor c(v.size());
  const auto out = c.compress(v, 0.5);
  EXPECT_EQ(out.indices, (std::vector<std::uint32_t>{1, 2}));
}

TEST(TopK, RejectsWrongSizeAndBadDensity) {
  TopKCompressor c(4);
  std::vector<float> three(3, 1.0f), four(4, 1.0f);
  EXPECT_THROW(c.compress(three, 0.5), std::invalid_argument);
  EXPECT_THROW(c.compress(four, 1.5), std::invalid_argument);
}

TEST(TopK, EmptyModel) {
  TopKCompressor c(0);
  const auto out = c.compress({}, 0.5);
  EXPECT_TRUE(out.indices.empty());
  EXPECT_TRUE(out.values.empty());
}

TEST(TopK, ResetClearsResidual) {
  const auto v = random_values(100, 9);
  TopKCompressor c(v.size());
  c.compress(v, 0.1);
  c.reset();
  for (float r : c.residual()) EXPECT_EQ(r, 0.0f);
}

TEST(TopK, LargeModelOnePercent) {
  const auto v = random_values(1'600'000, 11);
  TopKCompressor c(v.size());
  const auto out = c.compress(v, 0.01);
  ASSERT_EQ(out.indices.size(), 16000u);
  // Every sent magnitude is at least every kept one.
  float min_sent = std::numeric_limits<float>::infinity();
  for (float x : out.values) min_sent = std::min(min_sent, std::fabs(x));
  float max_kept = 0;
  for (float r : c.residual()) max_kept = std::max(max_kept, std::fabs(r));
  EXPECT_GE(min_sent, max_kept);
}

TEST(Dense, AllCoordinatesInOrder) {
  const std::vector<float> v{1.5f, -2.0f, 0.0f};
  const auto out = dense(v);
  EXPECT_EQ(out.indices, (std::vector<std::uint32_t>{0, 1, 2}));
  EXPECT_EQ(out.values, v);
}

}  // namespace
}  // namespace raftfl::gossip
