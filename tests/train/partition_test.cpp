#include "raftfl/train/partition.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

namespace raftfl::train {
namespace {

using Shards = std::vector<std::vector<std::uint32_t>>;

// Balanced labels like Fashion-MNIST's: `per_class` samples of each of 10 classes,
// interleaved so that index order carries no class information.
std::vector<std::uint8_t> balanced_labels(std::size_t per_class) {
  std::vector<std::uint8_t> labels;
  for (std::size_t i = 0; i < per_class * 10; ++i) labels.push_back(static_cast<std::uint8_t>(i % 10));
  return labels;
}

void expect_exact_cover(const Shards& shards, std::size_t samples) {
  std::vector<int> seen(samples, 0);
  for (const auto& shard : shards) {
    EXPECT_TRUE(std::is_sorted(shard.begin(), shard.end()));
    for (const auto index : shard) {
      ASSERT_LT(index, samples);
      ++seen[index];
    }
  }
  for (std::size_t i = 0; i < samples; ++i) ASSERT_EQ(seen[i], 1) << "index " << i;
}

// Share of the node's most frequent class.
double top_class_share(const std::vector<std::uint32_t>& shard, const std::vector<std::uint8_t>& labels) {
  std::array<std::size_t, 256> counts{};
  for (const auto index : shard) ++counts[labels[index]];
  return static_cast<double>(*std::max_element(counts.begin(), counts.end())) / static_cast<double>(shard.size());
}

TEST(PartitionIid, CoversEverySampleOnceWithNearEqualSizes) {
  for (const std::size_t nodes : {1u, 3u, 7u, 8u}) {
    const Shards shards = partition_iid(60000 + 5, nodes, 42);
    ASSERT_EQ(shards.size(), nodes);
    expect_exact_cover(shards, 60005);
    const auto [smallest, largest] = std::minmax_element(
        shards.begin(), shards.end(), [](const auto& a, const auto& b) { return a.size() < b.size(); });
    EXPECT_LE(largest->size() - smallest->size(), 1u) << nodes << " nodes";
  }
}

TEST(PartitionIid, MoreNodesThanSamples) {
  const Shards shards = partition_iid(3, 5, 1);
  expect_exact_cover(shards, 3);
  EXPECT_TRUE(shards[4].empty());
}

TEST(PartitionIid, DeterministicPerSeedAndSeedsDiffer) {
  EXPECT_EQ(partition_iid(1000, 4, 7), partition_iid(1000, 4, 7));
  EXPECT_NE(partition_iid(1000, 4, 7), partition_iid(1000, 4, 8));
}

// Pins the stream itself: a change to the generator or the shuffle would silently give
// every node of a mixed-version cluster a different shard.
TEST(PartitionIid, StreamIsPinned) {
  const Shards shards = partition_iid(10, 2, 2024);
  EXPECT_EQ(shards[0], (std::vector<std::uint32_t>{0, 2, 4, 5, 6}));
  EXPECT_EQ(shards[1], (std::vector<std::uint32_t>{1, 3, 7, 8, 9}));
}

TEST(PartitionIid, ZeroNodesIsAnError) { EXPECT_THROW(partition_iid(10, 0, 1), PartitionError); }

TEST(PartitionDirichlet, SkewedMixesWithSmallAlpha) {
  const auto labels = balanced_labels(6000);
  const Shards shards = partition_dirichlet(labels, 8, 0.5, 1, 100);
  ASSERT_EQ(shards.size(), 8u);
  expect_exact_cover(shards, labels.size());
  double highest = 0.0;
  for (const auto& shard : shards) {
    EXPECT_GE(shard.size(), 100u);
    highest = std::max(highest, top_class_share(shard, labels));
  }
  EXPECT_GT(highest, 0.3);
}

TEST(PartitionDirichlet, NearUniformMixesWithLargeAlpha) {
  const auto labels = balanced_labels(6000);
  const Shards shards = partition_dirichlet(labels, 8, 1000.0, 3, 100);
  expect_exact_cover(shards, labels.size());
  for (const auto& shard : shards) {
    // Ideal is 0.1 per class and 7500 per node.
    EXPECT_LT(top_class_share(shard, labels), 0.13);
    EXPECT_NEAR(static_cast<double>(shard.size()), 7500.0, 750.0);
  }
}

TEST(PartitionDirichlet, TinyAlphaStillCoversEverything) {
  const auto labels = balanced_labels(100);
  const Shards shards = partition_dirichlet(labels, 4, 1e-3, 9, 0);
  expect_exact_cover(shards, labels.size());
}

TEST(PartitionDirichlet, DeterministicPerSeedAndSeedsDiffer) {
  const auto labels = balanced_labels(500);
  EXPECT_EQ(partition_dirichlet(labels, 8, 0.5, 11, 10), partition_dirichlet(labels, 8, 0.5, 11, 10));
  EXPECT_NE(partition_dirichlet(labels, 8, 0.5, 11, 10), partition_dirichlet(labels, 8, 0.5, 12, 10));
}

TEST(PartitionDirichlet, ResamplesUntilEveryNodeHasTheMinimum) {
  // alpha = 0.1 over 10 nodes leaves some node nearly empty on most draws; a demanding
  // minimum forces several attempts, and the result must honour it.
  const auto labels = balanced_labels(200);
  const Shards shards = partition_dirichlet(labels, 10, 0.1, 5, 50);
  expect_exact_cover(shards, labels.size());
  for (const auto& shard : shards) EXPECT_GE(shard.size(), 50u);
}

TEST(PartitionDirichlet, ImpossibleMinimumIsAnErrorUpFront) {
  const auto labels = balanced_labels(10);
  try {
    partition_dirichlet(labels, 8, 0.5, 1, 13);
    FAIL() << "no PartitionError";
  } catch (const PartitionError& error) {
    EXPECT_NE(std::string(error.what()).find("at least 13 samples out of 100"), std::string::npos) << error.what();
  }
}

TEST(PartitionDirichlet, UnreachableMinimumFailsAfterBoundedAttempts) {
  // Feasible by count (8 * 12 <= 100), but with alpha this small nearly every class lands
  // on one node, so no draw gives all eight nodes twelve samples.
  const auto labels = balanced_labels(10);
  try {
    partition_dirichlet(labels, 8, 0.01, 1, 12);
    FAIL() << "no PartitionError";
  } catch (const PartitionError& error) {
    EXPECT_NE(std::string(error.what()).find("attempts"), std::string::npos) << error.what();
  }
}

TEST(PartitionDirichlet, BadArguments) {
  const auto labels = balanced_labels(10);
  EXPECT_THROW(partition_dirichlet(labels, 0, 0.5, 1, 0), PartitionError);
  EXPECT_THROW(partition_dirichlet(labels, 4, 0.0, 1, 0), PartitionError);
  EXPECT_THROW(partition_dirichlet(labels, 4, -1.0, 1, 0), PartitionError);
}

}  // namespace
}  // namespace raftfl::train
