#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "raftfl/gossip/choco.hpp"
#include "raftfl/gossip/coordinate_plan.hpp"
#include "raftfl/gossip/mask.hpp"
#include "raftfl/gossip/value_encoding.hpp"

namespace raftfl::gossip {
namespace {

using Tensors = std::vector<std::pair<std::size_t, std::size_t>>;

std::vector<float> random_model(std::size_t n, std::mt19937& rng, float scale = 1.0F) {
  std::normal_distribution<float> d(0.0F, scale);
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng);
  return x;
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// What the wire does to values encoded as bf16.
ChocoUpdate through_bf16(ChocoUpdate u) {
  for (auto& v : u.values) v = bf16_to_float(float_to_bf16(v));
  return u;
}

TEST(CoordinatePlan, SmallTensorsAlwaysTravelAndTheLargeOnesAreCompressed) {
  const Tensors tensors = {{0, 10}, {10, 1000}, {1010, 5}};
  CoordinatePlan plan(tensors, 100);
  EXPECT_EQ(plan.size(), 1015u);
  EXPECT_EQ(plan.dense_count(), 15u);
  EXPECT_EQ(plan.compressible_count(), 1000u);
  const auto a = plan.random_k(0.01, 42);
  EXPECT_EQ(a, plan.random_k(0.01, 42)) << "the same seed must give the same set at both ends";
  EXPECT_NE(a, plan.random_k(0.01, 43));
  ASSERT_EQ(a.size(), 15u + 10u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  for (std::uint32_t i = 0; i < 10; ++i) EXPECT_EQ(a[i], i);
  for (std::uint32_t i = 0; i < 5; ++i) EXPECT_EQ(a[20 + i], 1010 + i);
  for (std::size_t i = 10; i < 20; ++i) EXPECT_TRUE(a[i] >= 10 && a[i] < 1010) << a[i];

  std::vector<float> values(1015, 0.0F);
  values[500] = -7;
  values[12] = 3;
  values[3] = 100;  // dense anyway
  const auto t = plan.top_k(values, 0.002);  // two of the compressible
  EXPECT_EQ(t.size(), 17u);
  EXPECT_NE(std::find(t.begin(), t.end(), 500u), t.end());
  EXPECT_NE(std::find(t.begin(), t.end(), 12u), t.end());
}

TEST(CoordinatePlan, WithoutADenseThresholdItIsTheSharedRandomKMask) {
  CoordinatePlan plan(5000);
  EXPECT_EQ(plan.random_k(0.05, 9), random_k_indices(5000, 0.05, 9));
  EXPECT_THROW(CoordinatePlan(Tensors{{0, 10}, {11, 5}}, 0), std::invalid_argument);
}

// Two ends of every link, rounds of random pairings among `nodes`, local noise as a
// stand-in for training, each message lost with probability `loss`: after every round,
// ends at the same version hold bit-identical copies; and ends that fell apart come
// back together at the next round in which both messages arrive.
void run_links(bool top_k, bool bf16, double loss, std::uint32_t seed) {
  constexpr std::size_t kNodes = 4;
  constexpr std::size_t kN = 600;
  std::mt19937 rng(seed);
  const Tensors tensors = {{0, 40}, {40, 500}, {540, 60}};
  std::vector<float> origin = random_model(kN, rng);
  std::vector<ChocoGossip> nodes;
  std::vector<std::vector<float>> x;
  for (std::size_t i = 0; i < kNodes; ++i) {
    nodes.emplace_back(CoordinatePlan(tensors, 50), ChocoOptions{top_k, 0.05, 0.8, 8}, origin);
    x.push_back(origin);
  }
  std::bernoulli_distribution lost(loss);
  int resets_seen = 0;
  for (int round = 1; round <= 400; ++round) {
    for (auto& m : x)
      for (auto& v : m) v += std::normal_distribution<float>(0.0F, 0.01F)(rng);
    std::vector<std::size_t> order(kNodes);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t p = 0; p + 1 < kNodes; p += 2) {
      const auto i = order[p];
      const auto j = order[p + 1];
      const std::uint64_t seed_of_round = 1000 + static_cast<std::uint64_t>(round);
      auto from_i = nodes[i].prepare(j, x[i], seed_of_round);
      auto from_j = nodes[j].prepare(i, x[j], seed_of_round);
      if (bf16) {
        from_i = through_bf16(from_i);
        from_j = through_bf16(from_j);
      }
      const bool j_hears_i = !lost(rng);
      const bool i_hears_j = !lost(rng);
      if (i_hears_j && nodes[i].absorb(j, x[i], from_i, from_j) == ChocoGossip::Outcome::kReset) ++resets_seen;
      if (j_hears_i && nodes[j].absorb(i, x[j], from_j, from_i) == ChocoGossip::Outcome::kReset) ++resets_seen;
      const auto* li = nodes[i].link(j);
      const auto* lj = nodes[j].link(i);
      ASSERT_TRUE(li && lj);
      if (i_hears_j && j_hears_i) {
        EXPECT_EQ(li->version, lj->version) << "round " << round << ": both messages arrived, ends still apart";
      }
      if (li->version == lj->version) {
        ASSERT_TRUE(bit_equal(li->self_copy, lj->peer_copy)) << "round " << round << ", link " << i << "-" << j;
        ASSERT_TRUE(bit_equal(li->peer_copy, lj->self_copy)) << "round " << round << ", link " << i << "-" << j;
      }
    }
  }
  if (loss > 0) {
    EXPECT_GT(resets_seen, 0) << "no lost message ever mattered: the test did not exercise resets";
  } else {
    EXPECT_EQ(resets_seen, 0);
  }
}

TEST(ChocoGossip, BothEndsOfALinkHoldIdenticalCopiesRandomK) { run_links(false, false, 0.0, 1); }
TEST(ChocoGossip, BothEndsOfALinkHoldIdenticalCopiesTopKBf16) { run_links(true, true, 0.0, 2); }
TEST(ChocoGossip, LostMessagesNeverLeaveTheEndsApartRandomK) { run_links(false, true, 0.15, 3); }
TEST(ChocoGossip, LostMessagesNeverLeaveTheEndsApartTopK) { run_links(true, false, 0.15, 4); }

// The pair's sum, per coordinate, before and after one exchange: the two moves are exact
// opposites, so only the rounding of each end's own addition remains.
void expect_pair_sum_kept(bool top_k) {
  std::mt19937 rng(5);
  constexpr std::size_t kN = 2000;
  const auto origin = random_model(kN, rng);
  ChocoGossip a(CoordinatePlan(kN), ChocoOptions{top_k, 0.1, 1.0, 4}, origin);
  ChocoGossip b(CoordinatePlan(kN), ChocoOptions{top_k, 0.1, 1.0, 4}, origin);
  auto xa = origin;
  auto xb = origin;
  for (int round = 1; round <= 20; ++round) {
    for (std::size_t i = 0; i < kN; ++i) {
      xa[i] += std::normal_distribution<float>(0.0F, 0.1F)(rng);
      xb[i] += std::normal_distribution<float>(0.0F, 0.1F)(rng);
    }
    const auto before_a = xa;
    const auto before_b = xb;
    const auto ua = a.prepare(2, xa, static_cast<std::uint64_t>(round));
    const auto ub = b.prepare(1, xb, static_cast<std::uint64_t>(round));
    ASSERT_EQ(a.absorb(2, xa, ua, ub), ChocoGossip::Outcome::kApplied);
    ASSERT_EQ(b.absorb(1, xb, ub, ua), ChocoGossip::Outcome::kApplied);
    double moved = 0;
    for (std::size_t i = 0; i < kN; ++i) {
      const double sum_before = static_cast<double>(before_a[i]) + before_b[i];
      const double sum_after = static_cast<double>(xa[i]) + xb[i];
      const double ulp = 4 * std::numeric_limits<float>::epsilon() * (std::fabs(xa[i]) + std::fabs(xb[i]) + 1e-30);
      ASSERT_NEAR(sum_after, sum_before, ulp) << "round " << round << ", coordinate " << i;
      moved += std::fabs(static_cast<double>(xa[i]) - before_a[i]);
    }
    EXPECT_GT(moved, 0) << "the exchange moved nothing";
  }
}

TEST(ChocoGossip, RandomKKeepsThePairsSum) { expect_pair_sum_kept(false); }
// Top-k made symmetric: both ends apply the same two updates, whatever indices each chose.
TEST(ChocoGossip, TopKKeepsThePairsSum) { expect_pair_sum_kept(true); }

TEST(ChocoGossip, WithEveryCoordinateSentAndGammaOneAPairAverages) {
  std::mt19937 rng(6);
  constexpr std::size_t kN = 300;
  ChocoGossip a(CoordinatePlan(kN), ChocoOptions{false, 1.0, 1.0, 4});
  ChocoGossip b(CoordinatePlan(kN), ChocoOptions{false, 1.0, 1.0, 4});
  auto xa = random_model(kN, rng);
  auto xb = random_model(kN, rng);
  const auto ua = a.prepare(2, xa, 1);
  const auto ub = b.prepare(1, xb, 1);
  std::vector<float> mean(kN);
  for (std::size_t i = 0; i < kN; ++i) mean[i] = (xa[i] + xb[i]) / 2;
  a.absorb(2, xa, ua, ub);
  b.absorb(1, xb, ub, ua);
  for (std::size_t i = 0; i < kN; ++i) {
    EXPECT_NEAR(xa[i], mean[i], 1e-5);
    EXPECT_NEAR(xb[i], mean[i], 1e-5);
  }
}

// Without training, compressed gossip over random matchings drives 8 models to their
// mean: what decentralized averaging must do before anything else. The consensus step
// must be small next to what a round sends: random-k at density d is stable for gamma
// up to about d / 2 (at 5%, gamma 0.1 already diverges), top-k tolerates more.
void expect_consensus(bool top_k, double density, double gamma) {
  constexpr std::size_t kNodes = 8;
  constexpr std::size_t kN = 2000;
  std::mt19937 rng(7);
  std::vector<ChocoGossip> nodes;
  std::vector<std::vector<float>> x;
  for (std::size_t i = 0; i < kNodes; ++i) {
    nodes.emplace_back(CoordinatePlan(kN), ChocoOptions{top_k, density, gamma, 8});
    x.push_back(random_model(kN, rng));
  }
  const auto distance = [&] {
    std::vector<double> mean(kN, 0.0);
    for (const auto& m : x)
      for (std::size_t i = 0; i < kN; ++i) mean[i] += m[i] / static_cast<double>(kNodes);
    double d = 0;
    for (const auto& m : x)
      for (std::size_t i = 0; i < kN; ++i) d += (m[i] - mean[i]) * (m[i] - mean[i]);
    return std::make_pair(d / kNodes, mean);
  };
  const auto [start, mean_before] = distance();
  std::vector<std::size_t> order(kNodes);
  std::iota(order.begin(), order.end(), 0);
  for (int round = 1; round <= 1500; ++round) {
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t p = 0; p < kNodes; p += 2) {
      const auto i = order[p];
      const auto j = order[p + 1];
      const auto ui = nodes[i].prepare(j, x[i], static_cast<std::uint64_t>(round));
      const auto uj = nodes[j].prepare(i, x[j], static_cast<std::uint64_t>(round));
      nodes[i].absorb(j, x[i], ui, uj);
      nodes[j].absorb(i, x[j], uj, ui);
    }
  }
  const auto [end, mean_after] = distance();
  EXPECT_LT(end, start * 1e-3) << "consensus distance " << start << " -> " << end;
  for (std::size_t i = 0; i < kN; ++i) ASSERT_NEAR(mean_after[i], mean_before[i], 1e-4) << "the mean drifted at " << i;
}

TEST(ChocoGossip, TopKGossipDrivesModelsToTheirMean) { expect_consensus(true, 0.05, 0.3); }
TEST(ChocoGossip, RandomKGossipDrivesModelsToTheirMean) { expect_consensus(false, 0.3, 0.3); }

TEST(ChocoGossip, AForgottenLinkStartsAgainFromTheOriginAtBothEnds) {
  constexpr std::size_t kN = 100;
  std::mt19937 rng(8);
  const auto origin = random_model(kN, rng);
  ChocoGossip a(CoordinatePlan(kN), ChocoOptions{false, 0.2, 1.0, 1}, origin);  // one link kept
  ChocoGossip b(CoordinatePlan(kN), ChocoOptions{false, 0.2, 1.0, 4}, origin);
  ChocoGossip c(CoordinatePlan(kN), ChocoOptions{false, 0.2, 1.0, 4}, origin);
  auto xa = random_model(kN, rng);
  auto xb = random_model(kN, rng);
  auto xc = random_model(kN, rng);
  const auto meet = [](ChocoGossip& p, std::uint64_t p_id, std::vector<float>& xp, ChocoGossip& q, std::uint64_t q_id,
                       std::vector<float>& xq, std::uint64_t seed) {
    const auto up = p.prepare(q_id, xp, seed);
    const auto uq = q.prepare(p_id, xq, seed);
    return std::make_pair(p.absorb(q_id, xp, up, uq), q.absorb(p_id, xq, uq, up));
  };
  EXPECT_EQ(meet(a, 1, xa, b, 2, xb, 1).first, ChocoGossip::Outcome::kApplied);
  EXPECT_EQ(meet(a, 1, xa, c, 3, xc, 2).first, ChocoGossip::Outcome::kApplied);  // b's link forgotten
  EXPECT_EQ(a.links(), 1u);
  const auto again = meet(a, 1, xa, b, 2, xb, 3);  // a at version 0, b at 1
  EXPECT_EQ(again.first, ChocoGossip::Outcome::kReset);
  EXPECT_EQ(again.second, ChocoGossip::Outcome::kReset);
  EXPECT_TRUE(bit_equal(a.link(2)->self_copy, origin));
  EXPECT_TRUE(bit_equal(b.link(1)->peer_copy, origin));
  EXPECT_EQ(meet(a, 1, xa, b, 2, xb, 4).first, ChocoGossip::Outcome::kApplied);
}

}  // namespace
}  // namespace raftfl::gossip
