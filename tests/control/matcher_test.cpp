#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <set>
#include <stdexcept>
#include <vector>

#include "raftfl/control/matcher.hpp"

namespace {

using namespace raftfl::control;

std::vector<NodeId> ids(std::size_t n) {
  std::vector<NodeId> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = 10 * (i + 1);  // sparse, not indices
  return v;
}

Eigen::MatrixXd uniform(std::size_t n, double value) {
  const auto k = static_cast<Eigen::Index>(n);
  return Eigen::MatrixXd::Constant(k, k, value);
}

// A deterministic, reproducible "random" symmetric matrix in [0, 1).
Eigen::MatrixXd pseudo_random(std::size_t n, std::uint64_t seed) {
  const auto k = static_cast<Eigen::Index>(n);
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(k, k);
  std::uint64_t s = seed;
  for (Eigen::Index i = 0; i < k; ++i) {
    for (Eigen::Index j = i + 1; j < k; ++j) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      m(i, j) = m(j, i) = static_cast<double>(s >> 11) / 9007199254740992.0;
    }
  }
  return m;
}

std::size_t pos(const std::vector<NodeId>& nodes, NodeId id) {
  return static_cast<std::size_t>(std::find(nodes.begin(), nodes.end(), id) - nodes.begin());
}

void expect_valid(const std::vector<NodeId>& nodes, const Matching& m) {
  std::multiset<NodeId> seen;
  for (const auto& [a, b] : m.pairs) {
    EXPECT_LT(a, b);
    EXPECT_TRUE(std::binary_search(nodes.begin(), nodes.end(), a)) << a;
    EXPECT_TRUE(std::binary_search(nodes.begin(), nodes.end(), b)) << b;
    seen.insert(a);
    seen.insert(b);
  }
  for (NodeId i : m.idle) {
    EXPECT_TRUE(std::binary_search(nodes.begin(), nodes.end(), i)) << i;
    seen.insert(i);
  }
  for (NodeId id : nodes) EXPECT_EQ(seen.count(id), 1u) << "node " << id;
  EXPECT_EQ(seen.size(), nodes.size());
  EXPECT_EQ(m.idle.size(), nodes.size() % 2);
  EXPECT_TRUE(std::is_sorted(m.pairs.begin(), m.pairs.end()));
}

// Over 50 seeds with threshold 1.0: everyone paired, and every pair over a link faster
// than the threshold.
void expect_perfect_over_fast_links(const std::vector<NodeId>& nodes, const Eigen::MatrixXd& bw) {
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    const auto m = match_round(nodes, bw, {}, {1.0, 3}, seed);
    expect_valid(nodes, m);
    ASSERT_EQ(m.pairs.size(), nodes.size() / 2);
    for (const auto& [a, b] : m.pairs) {
      EXPECT_GT(bw(static_cast<Eigen::Index>(pos(nodes, a)), static_cast<Eigen::Index>(pos(nodes, b))), 1.0)
          << a << "-" << b << " seed " << seed;
    }
  }
}

TEST(Matcher, ValidForManySizesAndSeeds) {
  for (std::size_t n = 0; n <= 21; ++n) {
    const auto nodes = ids(n);
    const auto bw = pseudo_random(n, n);
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
      expect_valid(nodes, match_round(nodes, bw, {}, {0.5, 3}, seed));
    }
  }
}

TEST(Matcher, EvenCountCompleteCandidatesPairsEveryone) {
  const auto nodes = ids(40);
  const auto m = match_round(nodes, uniform(40, 1.0), {}, {0.5, 5}, 7);
  expect_valid(nodes, m);
  EXPECT_EQ(m.pairs.size(), 20u);
  EXPECT_TRUE(m.idle.empty());
}

TEST(Matcher, ThresholdRespectedWhenCandidatesAdmitPerfectMatching) {
  // Fast links form two disjoint cycles of 8 (each with a perfect matching), everything
  // else is slow; a perfect matching over fast links exists, so no slow link may be used.
  const std::size_t n = 16;
  const auto nodes = ids(n);
  Eigen::MatrixXd bw = uniform(n, 0.1);
  for (std::size_t c = 0; c < 2; ++c) {
    for (std::size_t k = 0; k < 8; ++k) {
      const auto a = static_cast<Eigen::Index>(8 * c + k);
      const auto b = static_cast<Eigen::Index>(8 * c + (k + 1) % 8);
      bw(a, b) = bw(b, a) = 5.0;
    }
  }
  expect_perfect_over_fast_links(nodes, bw);
}

TEST(Matcher, SlowLinksUsedOnlyForLeftovers) {
  // Only a star is fast: one fast pair is possible, the rest must still be paired.
  const std::size_t n = 8;
  const auto nodes = ids(n);
  Eigen::MatrixXd bw = uniform(n, 0.0);
  for (Eigen::Index j = 1; j < 8; ++j) bw(0, j) = bw(j, 0) = 9.0;
  const auto m = match_round(nodes, bw, {}, {1.0, 2}, 3);
  expect_valid(nodes, m);
  EXPECT_EQ(m.pairs.size(), 4u);
  EXPECT_EQ(m.pairs.front().first, nodes[0]);  // the hub got its fast link
}

TEST(Matcher, DenseCandidatesStillGiveAMaximumMatching) {
  // Dense candidate graphs are first matched on a random sample of their edges. Nodes 38
  // and 39 each have a single fast link (to 0 and to 1), which a sample usually misses:
  // the result must still be the perfect matching over fast links that the whole graph
  // has.
  const std::size_t n = 40;
  const auto nodes = ids(n);
  Eigen::MatrixXd bw = uniform(n, 0.0);
  bw.topLeftCorner(38, 38).setConstant(10.0);
  bw(38, 0) = bw(0, 38) = bw(39, 1) = bw(1, 39) = 10.0;
  expect_perfect_over_fast_links(nodes, bw);
}

TEST(Matcher, LargeRoundsPairEveryone) {
  const std::size_t n = 301;
  const auto nodes = ids(n);
  const auto bw = pseudo_random(n, 21);
  std::deque<Matching> history;
  for (std::uint64_t r = 0; r < 8; ++r) {
    const auto m = match_round(nodes, bw, history, {0.5, 5}, r);
    expect_valid(nodes, m);
    EXPECT_EQ(m.pairs.size(), n / 2);
    history.push_back(m);
    if (history.size() > 5) history.pop_front();
  }
}

Matching pairs_of(const std::vector<NodeId>& nodes,
                  std::vector<std::pair<std::size_t, std::size_t>> p) {
  Matching m;
  for (auto [a, b] : p) m.pairs.emplace_back(nodes[std::min(a, b)], nodes[std::max(a, b)]);
  std::sort(m.pairs.begin(), m.pairs.end());
  return m;
}

TEST(Matcher, DisconnectedWindowPrefersPairsUnusedForTRounds) {
  // Links inside {0..3} and inside {4..7} are fast, across the halves slow. Matching on
  // fast links only would keep the halves apart forever; the last T=3 rounds used pairs
  // within the halves only, so their union is disconnected and the matcher must pick
  // pairs unused in those rounds, even slow ones.
  const std::size_t n = 8;
  const auto nodes = ids(n);
  Eigen::MatrixXd bw = uniform(n, 0.1);
  for (Eigen::Index a = 0; a < 8; ++a) {
    for (Eigen::Index b = 0; b < 8; ++b) {
      if ((a < 4) == (b < 4)) bw(a, b) = 10.0;
    }
  }
  std::deque<Matching> history;
  history.push_back(pairs_of(nodes, {{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  history.push_back(pairs_of(nodes, {{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
  history.push_back(pairs_of(nodes, {{0, 3}, {1, 2}, {4, 7}, {5, 6}}));
  std::set<std::pair<NodeId, NodeId>> used;
  for (const auto& h : history) used.insert(h.pairs.begin(), h.pairs.end());

  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    const auto m = match_round(nodes, bw, history, {1.0, 3}, seed);
    expect_valid(nodes, m);
    for (const auto& p : m.pairs) {
      EXPECT_FALSE(used.count(p)) << p.first << "-" << p.second << " seed " << seed;
    }
  }

  // With the same history but a connected window (an extra cross pair), the threshold
  // rule applies again: only fast links, i.e. pairs within the halves.
  auto connected = history;
  connected.back().pairs = pairs_of(nodes, {{0, 4}, {1, 2}, {3, 7}, {5, 6}}).pairs;
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    const auto m = match_round(nodes, bw, connected, {1.0, 3}, seed);
    expect_valid(nodes, m);
    for (const auto& [a, b] : m.pairs) EXPECT_EQ(pos(nodes, a) < 4, pos(nodes, b) < 4);
  }

  // The window is the last T rounds only: an older round's cross pairs do not count.
  auto old_cross = history;
  old_cross.push_front(pairs_of(nodes, {{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  const auto m = match_round(nodes, bw, old_cross, {1.0, 3}, 1);
  for (const auto& p : m.pairs) EXPECT_FALSE(used.count(p));
}

TEST(Matcher, DisconnectedWindowKeepsFastUnusedPairs) {
  // When fast unused pairs can cover everyone, the rule must not trade them for slow ones.
  const std::size_t n = 4;
  const auto nodes = ids(n);
  Eigen::MatrixXd bw = uniform(n, 0.1);
  bw(0, 2) = bw(2, 0) = bw(1, 3) = bw(3, 1) = 10.0;
  std::deque<Matching> history{pairs_of(nodes, {{0, 1}, {2, 3}})};
  for (std::uint64_t seed = 0; seed < 30; ++seed) {
    const auto m = match_round(nodes, bw, history, {1.0, 1}, seed);
    EXPECT_EQ(m, pairs_of(nodes, {{0, 2}, {1, 3}})) << seed;
  }
}

TEST(Matcher, ShortHistoryUsesThreshold) {
  // Fewer than T rounds of history: no window to judge, so only fast links.
  const auto nodes = ids(4);
  Eigen::MatrixXd bw = uniform(4, 0.1);
  bw(0, 1) = bw(1, 0) = bw(2, 3) = bw(3, 2) = 10.0;
  std::deque<Matching> history{pairs_of(nodes, {{0, 1}, {2, 3}})};
  const auto m = match_round(nodes, bw, history, {1.0, 2}, 5);
  EXPECT_EQ(m, pairs_of(nodes, {{0, 1}, {2, 3}}));
}

TEST(Matcher, DeterministicForASeed) {
  const auto nodes = ids(31);
  const auto bw = pseudo_random(31, 99);
  std::deque<Matching> history;
  for (std::uint64_t r = 0; r < 4; ++r) {
    history.push_back(match_round(nodes, bw, history, {0.3, 3}, r));
  }
  const auto first = match_round(nodes, bw, history, {0.3, 3}, 1234);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(match_round(nodes, bw, history, {0.3, 3}, 1234), first);
}

TEST(Matcher, DifferentSeedsGiveDifferentMatchings) {
  const auto nodes = ids(20);
  const auto bw = uniform(20, 1.0);
  std::set<std::vector<std::pair<NodeId, NodeId>>> distinct;
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    distinct.insert(match_round(nodes, bw, {}, {0.5, 3}, seed).pairs);
  }
  // 19!! perfect matchings of K20: a working shuffle practically never repeats.
  EXPECT_GE(distinct.size(), 95u);
}

TEST(Matcher, PinnedOutputForASeed) {
  // The seed must give the same matching on every platform; pinning one catches changes
  // in the generator, the shuffles, the order draws are used in, or the Boost algorithm.
  const auto nodes = ids(9);
  const auto m = match_round(nodes, pseudo_random(9, 4), {}, {0.5, 3}, 42);
  expect_valid(nodes, m);
  const std::vector<std::pair<NodeId, NodeId>> recorded = {{10, 30}, {20, 70}, {40, 90}, {50, 60}};
  EXPECT_EQ(m.pairs, recorded);
  EXPECT_EQ(m.idle, std::vector<NodeId>{80});
}

TEST(Matcher, OddCountOneIdleWhoRotates) {
  const std::size_t n = 7;
  const auto nodes = ids(n);
  const auto bw = pseudo_random(n, 3);
  std::deque<Matching> history;
  std::vector<NodeId> idles;
  for (std::uint64_t round = 0; round < 3 * n; ++round) {
    const auto m = match_round(nodes, bw, history, {0.2, 3}, round * 17 + 1);
    expect_valid(nodes, m);
    ASSERT_EQ(m.idle.size(), 1u);
    if (!idles.empty()) {
      EXPECT_NE(m.idle[0], idles.back()) << "round " << round;
    }
    idles.push_back(m.idle[0]);
    history.push_back(m);
  }
  // With the whole history kept, every node sits out once per n rounds.
  for (std::size_t start = 0; start < idles.size(); start += n) {
    std::set<NodeId> window(idles.begin() + static_cast<std::ptrdiff_t>(start),
                            idles.begin() + static_cast<std::ptrdiff_t>(start + n));
    EXPECT_EQ(window.size(), n);
  }
}

TEST(Matcher, IdleRotatesWithBoundedHistory) {
  // The coordinator keeps only T rounds; the previous idle node still never repeats.
  const std::size_t n = 5;
  const auto nodes = ids(n);
  const auto bw = uniform(n, 1.0);
  std::deque<Matching> history;
  NodeId previous = 0;
  for (std::uint64_t round = 0; round < 40; ++round) {
    const auto m = match_round(nodes, bw, history, {0.5, 2}, round);
    ASSERT_EQ(m.idle.size(), 1u);
    EXPECT_NE(m.idle[0], previous);
    previous = m.idle[0];
    history.push_back(m);
    if (history.size() > 2) history.pop_front();
  }
}

TEST(Matcher, EdgeCases) {
  const auto none = match_round({}, Eigen::MatrixXd(0, 0), {}, {0.5, 3}, 1);
  EXPECT_TRUE(none.pairs.empty());
  EXPECT_TRUE(none.idle.empty());

  const auto one = match_round({7}, uniform(1, 0.0), {}, {0.5, 3}, 1);
  EXPECT_TRUE(one.pairs.empty());
  EXPECT_EQ(one.idle, std::vector<NodeId>{7});
  std::deque<Matching> history{one, one};
  EXPECT_EQ(match_round({7}, uniform(1, 0.0), history, {0.5, 1}, 2).idle,
            std::vector<NodeId>{7});  // unavoidable

  // Two nodes pair up even over a link below the threshold.
  const auto two = match_round({3, 9}, uniform(2, 0.0), {}, {0.5, 3}, 1);
  EXPECT_EQ(two.pairs, (std::vector<std::pair<NodeId, NodeId>>{{3, 9}}));
  EXPECT_TRUE(two.idle.empty());
  // And again when their only pair has been used for T rounds.
  std::deque<Matching> used{two, two};
  EXPECT_EQ(match_round({3, 9}, uniform(2, 0.0), used, {0.5, 2}, 4), two);
}

TEST(Matcher, RejectsMalformedInput) {
  EXPECT_THROW(match_round({2, 1}, uniform(2, 1.0), {}, {0.5, 3}, 1), std::invalid_argument);
  EXPECT_THROW(match_round({1, 1}, uniform(2, 1.0), {}, {0.5, 3}, 1), std::invalid_argument);
  EXPECT_THROW(match_round({1, 2}, uniform(3, 1.0), {}, {0.5, 3}, 1), std::invalid_argument);
  EXPECT_THROW(match_round({1, 2}, uniform(2, 1.0), {}, {0.5, -1}, 1), std::invalid_argument);
  // Ids in the history that are no longer participants are ignored.
  std::deque<Matching> history{Matching{{{1, 99}}, {98}}};
  expect_valid({1, 2, 3}, match_round({1, 2, 3}, uniform(3, 1.0), history, {0.5, 1}, 1));
}

// PinnedOutputForASeed with a history: the idle choice and the unused-pair rule draw from
// the stream too.
TEST(Matcher, PinnedOutputOverRoundsWithAHistory) {
  const auto nodes = ids(7);
  const auto bw = pseudo_random(nodes.size(), 11);
  std::deque<Matching> history;
  std::vector<Matching> got;
  for (std::uint64_t round = 1; round <= 3; ++round) {
    got.push_back(match_round(nodes, bw, history, {0.5, 2}, 0x0123'4567'89ab'cdefULL + round));
    history.push_back(got.back());
  }
  const std::vector<Matching> expected = {
      {{{10, 30}, {20, 70}, {40, 60}}, {50}},
      {{{10, 20}, {30, 70}, {50, 60}}, {40}},
      {{{20, 40}, {30, 50}, {60, 70}}, {10}},
  };
  EXPECT_EQ(got, expected);
}

void expect_doubly_stochastic_symmetric(const Eigen::MatrixXd& w) {
  EXPECT_TRUE(w.isApprox(w.transpose()));
  for (Eigen::Index i = 0; i < w.rows(); ++i) {
    EXPECT_NEAR(w.row(i).sum(), 1.0, 1e-12);
    EXPECT_NEAR(w.col(i).sum(), 1.0, 1e-12);
  }
  if (w.size() > 0) {  // minCoeff of an empty matrix is undefined
    EXPECT_GE(w.minCoeff(), 0.0);
  }
}

TEST(Mixing, MatrixIsDoublyStochasticAndSymmetric) {
  for (std::size_t n : {0u, 1u, 2u, 7u, 12u}) {
    const auto nodes = ids(n);
    const auto m = match_round(nodes, pseudo_random(n, 5), {}, {0.5, 3}, 11);
    const auto w = mixing_matrix(nodes, m);
    ASSERT_EQ(w.rows(), static_cast<Eigen::Index>(n));
    expect_doubly_stochastic_symmetric(w);
    for (const auto& [a, b] : m.pairs) {
      const auto i = static_cast<Eigen::Index>(pos(nodes, a));
      const auto j = static_cast<Eigen::Index>(pos(nodes, b));
      EXPECT_EQ(w(i, j), 0.5);
      EXPECT_EQ(w(i, i), 0.5);
    }
    for (NodeId id : m.idle) {
      const auto i = static_cast<Eigen::Index>(pos(nodes, id));
      EXPECT_EQ(w(i, i), 1.0);
    }
  }
}

TEST(Mixing, RejectsForeignOrRepeatedNodes) {
  const auto nodes = ids(4);
  EXPECT_THROW(mixing_matrix(nodes, Matching{{{10, 11}}, {}}), std::invalid_argument);
  EXPECT_THROW(mixing_matrix(nodes, Matching{{{10, 20}, {20, 30}}, {}}), std::invalid_argument);
}

TEST(SpectralGap, SingleMatchingDisconnectsMoreThanTwoNodes) {
  // One round's W mixes only within pairs: with more than one pair its graph is
  // disconnected and eigenvalue 1 repeats, so one round alone has no gap.
  const auto nodes = ids(8);
  const auto m = match_round(nodes, uniform(8, 1.0), {}, {0.5, 3}, 2);
  EXPECT_NEAR(spectral_gap(mixing_matrix(nodes, m)), 0.0, 1e-9);
  // Two nodes averaged once agree exactly: the gap is 1.
  EXPECT_NEAR(spectral_gap(mixing_matrix({1, 2}, Matching{{{1, 2}}, {}})), 1.0, 1e-12);
  EXPECT_EQ(spectral_gap(Eigen::MatrixXd::Identity(1, 1)), 1.0);
  EXPECT_EQ(spectral_gap(Eigen::MatrixXd(0, 0)), 1.0);
}

TEST(SpectralGap, WindowOfMatchingsThatConnectsHasAPositiveGap) {
  // The mean W over the window is what the connectivity rule protects: positive gap iff
  // the union of the window's pairs connects the participants.
  const std::size_t n = 12;
  const auto nodes = ids(n);
  const auto bw = pseudo_random(n, 8);
  std::deque<Matching> history;
  Eigen::MatrixXd mean = Eigen::MatrixXd::Zero(12, 12);
  for (std::uint64_t r = 0; r < 6; ++r) {
    const auto m = match_round(nodes, bw, history, {0.0, 3}, r + 100);
    history.push_back(m);
    mean += mixing_matrix(nodes, m) / 6.0;
  }
  expect_doubly_stochastic_symmetric(mean);
  const double gap = spectral_gap(mean);
  EXPECT_GT(gap, 1e-6);
  EXPECT_LE(gap, 1.0);

  // A window stuck inside two halves: disconnected union, zero gap.
  Eigen::MatrixXd stuck = (mixing_matrix(nodes, pairs_of(nodes, {{0, 1}, {2, 3}, {4, 5},
                                                                  {6, 7}, {8, 9}, {10, 11}})) +
                           mixing_matrix(nodes, pairs_of(nodes, {{0, 2}, {1, 3}, {4, 5},
                                                                  {6, 8}, {7, 9}, {10, 11}}))) /
                          2.0;
  EXPECT_NEAR(spectral_gap(stuck), 0.0, 1e-9);
}

}  // namespace
