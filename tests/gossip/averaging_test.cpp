#include "raftfl/gossip/averaging.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include "raftfl/gossip/mask.hpp"
#include "random_values.hpp"

namespace raftfl::gossip {
namespace {

using test::random_values;

TEST(AverageAt, TouchesOnlyExchangedCoordinatesAndBothPeersAgree) {
  constexpr std::size_t n = 2000;
  const auto a0 = random_values(n, 1);
  const auto b0 = random_values(n, 2);
  const auto mask = random_k_indices(n, 0.05, 77);

  // Each peer sends its values at the shared mask and averages with what it receives.
  auto a = a0;
  auto b = b0;
  const auto from_a = gather(a0, mask);
  const auto from_b = gather(b0, mask);
  average_at(a, mask, from_b);
  average_at(b, mask, from_a);

  std::vector<bool> in_mask(n, false);
  for (std::uint32_t i : mask) in_mask[i] = true;
  for (std::size_t i = 0; i < n; ++i) {
    if (in_mask[i]) {
      EXPECT_EQ(a[i], b[i]) << i;
      EXPECT_FLOAT_EQ(a[i], (a0[i] + b0[i]) / 2);
    } else {
      EXPECT_EQ(a[i], a0[i]) << i;
      EXPECT_EQ(b[i], b0[i]) << i;
    }
  }
}

TEST(AverageAt, RejectsMismatchedOrOutOfRangeInputWithoutWriting) {
  std::vector<float> mine{1, 2, 3};
  const std::vector<std::uint32_t> idx{0, 5};
  const std::vector<float> theirs{9, 9};
  EXPECT_THROW(average_at(mine, idx, theirs), std::out_of_range);
  EXPECT_EQ(mine, (std::vector<float>{1, 2, 3}));
  const std::vector<float> one{9};
  EXPECT_THROW(average_at(mine, idx, one), std::invalid_argument);
}

TEST(AverageDense, AveragesEveryCoordinateSymmetrically) {
  const auto a0 = random_values(1001, 3);
  const auto b0 = random_values(1001, 4);
  auto a = a0;
  auto b = b0;
  average_dense(a, b0);
  average_dense(b, a0);
  EXPECT_EQ(a, b);
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_FLOAT_EQ(a[i], (a0[i] + b0[i]) / 2);
  std::vector<float> shorter(3);
  EXPECT_THROW(average_dense(a, shorter), std::invalid_argument);
}

TEST(AverageDense, MatchesAverageAtOverAllIndices) {
  const auto a0 = random_values(333, 5);
  const auto b0 = random_values(333, 6);
  auto dense_result = a0;
  auto sparse_result = a0;
  average_dense(dense_result, b0);
  average_at(sparse_result, all_indices(333), b0);
  EXPECT_EQ(dense_result, sparse_result);
}

}  // namespace
}  // namespace raftfl::gossip
