// The control state machine's rules, each with the case that applies and the one that is
// refused, and determinism: two states fed the same commands stay equal.
#include "raftfl/control/control_state.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

namespace raftfl::control {
namespace {

constexpr ApplyResult kApplied = ApplyResult::kApplied;
constexpr ApplyResult kRejected = ApplyResult::kRejected;

MembershipChange add(NodeId id, bool voter = false, std::uint64_t caps = kCapabilityTrains) {
  return MembershipChange{MembershipChange::Op::kAdd, Member{id, "10.0.0." + std::to_string(id) + ":7000", voter, caps, false, {}}};
}
MembershipChange promote(NodeId id) { return MembershipChange{MembershipChange::Op::kPromote, Member{id, "", false, 0, false, {}}}; }
MembershipChange remove(NodeId id) { return MembershipChange{MembershipChange::Op::kRemove, Member{id, "", false, 0, false, {}}}; }

Topology topology(Round round, std::uint64_t term, std::vector<std::pair<NodeId, NodeId>> pairs,
                  std::vector<NodeId> idle = {}) {
  Topology t;
  t.round = round;
  t.coordinator_term = term;
  t.mask_seed = round * 7;
  t.matching.pairs = std::move(pairs);
  t.matching.idle = std::move(idle);
  return t;
}

// Members 1..n, coordinator 1 at term 3.
ControlState cluster(NodeId n) {
  ControlState s;
  for (NodeId id = 1; id <= n; ++id) EXPECT_EQ(s.apply(add(id, id <= 3)), kApplied);
  EXPECT_EQ(s.apply(CoordinatorChange{1, 3, 1}), kApplied);
  return s;
}

TEST(ControlState, NoOpChangesNothing) {
  ControlState s = cluster(4);
  const ControlState before = s;
  EXPECT_EQ(s.apply(NoOp{}), kApplied);
  EXPECT_EQ(s, before);
}

TEST(ControlState, CoordinatorChangeRaisesFirstRoundPastLastRound) {
  ControlState s = cluster(4);
  EXPECT_EQ(s.coordinator(), (Coordinator{1, 3, 1}));
  ASSERT_EQ(s.apply(topology(1, 3, {{1, 2}})), kApplied);
  ASSERT_EQ(s.apply(topology(2, 3, {{3, 4}})), kApplied);
  // The proposer believed round 1 was next: rounds never go back.
  EXPECT_EQ(s.apply(CoordinatorChange{2, 4, 1}), kApplied);
  EXPECT_EQ(s.coordinator(), (Coordinator{2, 4, 3}));
  // A claim ahead of last_round + 1 is kept as is.
  EXPECT_EQ(s.apply(CoordinatorChange{3, 5, 10}), kApplied);
  EXPECT_EQ(s.coordinator(), (Coordinator{3, 5, 10}));
}

TEST(ControlState, CoordinatorChangeFromAnOlderTermIsRejected) {
  ControlState s = cluster(4);
  ASSERT_EQ(s.apply(CoordinatorChange{2, 7, 1}), kApplied);
  const ControlState before = s;
  EXPECT_EQ(s.apply(CoordinatorChange{3, 6, 1}), kRejected);
  EXPECT_EQ(s, before);
  // Same term, another leader: Raft has one leader per term, so this is refused too.
  EXPECT_EQ(s.apply(CoordinatorChange{3, 7, 1}), kRejected);
  EXPECT_EQ(s.apply(CoordinatorChange{0, 8, 1}), kRejected);
  EXPECT_EQ(s, before);
  // The same leader restating its claim is harmless.
  EXPECT_EQ(s.apply(CoordinatorChange{2, 7, 1}), kApplied);
  EXPECT_EQ(s.coordinator(), (Coordinator{2, 7, 1}));
}

TEST(ControlState, TopologyRules) {
  ControlState s = cluster(5);
  const ControlState before = s;
  EXPECT_EQ(s.apply(topology(1, 2, {{1, 2}})), kRejected) << "stale coordinator term";
  EXPECT_EQ(s.apply(topology(1, 4, {{1, 2}})), kRejected) << "future coordinator term";
  EXPECT_EQ(s.apply(topology(2, 3, {{1, 2}})), kRejected) << "gap";
  EXPECT_EQ(s.apply(topology(1, 3, {{1, 9}})), kRejected) << "non-member paired";
  EXPECT_EQ(s.apply(topology(1, 3, {{1, 2}}, {9})), kRejected) << "non-member idle";
  EXPECT_EQ(s.apply(topology(1, 3, {{1, 2}, {2, 3}})), kRejected) << "node used twice";
  EXPECT_EQ(s.apply(topology(1, 3, {{1, 2}}, {2})), kRejected) << "paired and idle";
  EXPECT_EQ(s, before);

  const Topology t1 = topology(1, 3, {{1, 2}, {3, 4}}, {5});
  EXPECT_EQ(s.apply(t1), kApplied);
  EXPECT_EQ(s.last_round(), 1u);
  ASSERT_NE(s.topology(1), nullptr);
  EXPECT_EQ(*s.topology(1), t1);
  EXPECT_EQ(s.topology(1)->peer_of(3), 4u);
  EXPECT_EQ(s.topology(1)->peer_of(2), 1u);
  EXPECT_EQ(s.topology(1)->peer_of(5), 0u);
  EXPECT_EQ(s.topology(1)->peer_of(42), 0u);
  EXPECT_EQ(s.apply(t1), kRejected) << "replayed round";
  EXPECT_EQ(s.topology(2), nullptr);
}

TEST(ControlState, TopologyWithoutCoordinatorIsRejected) {
  ControlState s;
  ASSERT_EQ(s.apply(add(1)), kApplied);
  ASSERT_EQ(s.apply(add(2)), kApplied);
  EXPECT_EQ(s.apply(topology(1, 0, {{1, 2}})), kRejected);
  EXPECT_EQ(s.last_round(), 0u);
}

TEST(ControlState, TopologiesArePrunedAndRecentMatchingsAreOldestFirst) {
  ControlState s = cluster(4);
  const Round rounds = kTopologiesKept + 10;
  for (Round r = 1; r <= rounds; ++r) {
    // Encode the round in the matching so the order can be checked.
    ASSERT_EQ(s.apply(topology(r, 3, r % 2 ? std::vector<std::pair<NodeId, NodeId>>{{1, 2}}
                                             : std::vector<std::pair<NodeId, NodeId>>{{3, 4}},
                               {})),
              kApplied);
  }
  EXPECT_EQ(s.last_round(), rounds);
  EXPECT_EQ(s.data().topologies.size(), kTopologiesKept);
  EXPECT_EQ(s.topology(rounds - kTopologiesKept), nullptr);
  EXPECT_NE(s.topology(rounds - kTopologiesKept + 1), nullptr);
  EXPECT_EQ(s.data().topologies.begin()->first, rounds - kTopologiesKept + 1);

  const auto recent = s.recent_matchings(3);
  ASSERT_EQ(recent.size(), 3u);
  EXPECT_EQ(recent[0], s.topology(rounds - 2)->matching);
  EXPECT_EQ(recent[1], s.topology(rounds - 1)->matching);
  EXPECT_EQ(recent[2], s.topology(rounds)->matching);
  EXPECT_NE(recent[1], recent[2]);
  EXPECT_EQ(s.recent_matchings(1000).size(), kTopologiesKept);
  EXPECT_TRUE(s.recent_matchings(0).empty());
}

TEST(ControlState, BandwidthUpdateSkipsNonMembersAndSelfCells) {
  ControlState s = cluster(3);
  EXPECT_EQ(s.apply(BandwidthUpdate{{{1, 2, 100.0}, {1, 9, 5.0}, {2, 2, 7.0}, {2, 1, 80.0}}}), kApplied);
  EXPECT_EQ(s.bandwidth(1, 2), 100.0);
  EXPECT_EQ(s.bandwidth(2, 1), 80.0);
  EXPECT_LT(s.bandwidth(1, 9), 0.0);
  EXPECT_LT(s.bandwidth(2, 2), 0.0);
  EXPECT_EQ(s.data().bandwidth.size(), 2u);
  const ControlState before = s;
  EXPECT_EQ(s.apply(BandwidthUpdate{{{1, 9, 5.0}, {3, 3, 1.0}}}), kRejected);
  EXPECT_EQ(s.apply(BandwidthUpdate{}), kRejected);
  EXPECT_EQ(s.apply(BandwidthUpdate{{{1, 3, -1.0}}}), kRejected) << "negative means unmeasured";
  EXPECT_EQ(s, before);
  // Overwrites.
  EXPECT_EQ(s.apply(BandwidthUpdate{{{1, 2, 50.0}}}), kApplied);
  EXPECT_EQ(s.bandwidth(1, 2), 50.0);
}

TEST(ControlState, MembershipRules) {
  ControlState s;
  EXPECT_EQ(s.apply(add(5, false, 0)), kApplied);
  EXPECT_EQ(s.members().at(5).voter, false);
  EXPECT_TRUE(s.workers().empty());
  EXPECT_EQ(s.apply(add(7, true, kCapabilityTrains | kCapabilityCuda)), kApplied);
  EXPECT_TRUE(s.members().at(7).voter);
  EXPECT_EQ(s.apply(add(3)), kApplied);
  EXPECT_EQ(s.workers(), (std::vector<NodeId>{3, 7}));

  // Update in place: new endpoint and capabilities.
  MembershipChange update = add(5, false, kCapabilityTrains);
  update.member.endpoint = "elsewhere:1";
  EXPECT_EQ(s.apply(update), kApplied);
  EXPECT_EQ(s.members().at(5).endpoint, "elsewhere:1");
  EXPECT_EQ(s.workers(), (std::vector<NodeId>{3, 5, 7}));

  EXPECT_EQ(s.apply(promote(5)), kApplied);
  EXPECT_TRUE(s.members().at(5).voter);
  EXPECT_EQ(s.apply(add(5, false)), kApplied);
  EXPECT_TRUE(s.members().at(5).voter) << "kAdd never demotes";
  EXPECT_EQ(s.apply(promote(9)), kRejected);
  EXPECT_EQ(s.apply(add(0)), kRejected);

  ASSERT_EQ(s.apply(BandwidthUpdate{{{3, 5, 1.0}, {5, 3, 2.0}, {3, 7, 3.0}, {7, 5, 4.0}}}), kApplied);
  EXPECT_EQ(s.apply(remove(5)), kApplied);
  EXPECT_EQ(s.members().count(5), 0u);
  EXPECT_EQ(s.data().bandwidth.size(), 1u);
  EXPECT_EQ(s.bandwidth(3, 7), 3.0);
  EXPECT_EQ(s.apply(remove(5)), kRejected);
}

TEST(ControlState, BandwidthMatrixIsSymmetricAndTakesTheSlowerDirection) {
  ControlState s = cluster(4);
  ASSERT_EQ(s.apply(BandwidthUpdate{{{1, 2, 100.0}, {2, 1, 40.0}, {3, 1, 70.0}, {4, 2, 0.0}}}), kApplied);
  const std::vector<NodeId> nodes{1, 2, 3, 4};
  const Eigen::MatrixXd m = s.bandwidth_matrix(nodes, 5.0);
  ASSERT_EQ(m.rows(), 4);
  EXPECT_TRUE(m.isApprox(m.transpose()));
  EXPECT_EQ(m(0, 1), 40.0);
  EXPECT_EQ(m(0, 2), 70.0) << "one direction measured";
  EXPECT_EQ(m(1, 3), 0.0) << "a measured zero is not unmeasured";
  EXPECT_EQ(m(0, 3), 5.0);
  EXPECT_EQ(m(2, 3), 5.0);
  for (Eigen::Index i = 0; i < 4; ++i) EXPECT_EQ(m(i, i), 0.0);
  // Indexed like `nodes`, whatever ids they hold.
  const Eigen::MatrixXd sub = s.bandwidth_matrix({2, 3}, -7.0);
  EXPECT_EQ(sub(0, 1), -7.0);
}

TEST(ControlState, BandwidthDeltaKeepsChangedAndNewCells) {
  ControlState s = cluster(3);
  ASSERT_EQ(s.apply(BandwidthUpdate{{{1, 2, 100.0}, {2, 1, 100.0}}}), kApplied);
  const auto delta = bandwidth_delta(s,
                                     {{1, 2, 110.0},   // exactly 10%: not more than the threshold
                                      {2, 1, 111.0},   // over
                                      {1, 3, 1.0},     // never committed
                                      {1, 9, 1.0},     // non-member
                                      {3, 3, 1.0}},    // self
                                     0.10);
  EXPECT_EQ(delta, (std::vector<BandwidthCell>{{2, 1, 111.0}, {1, 3, 1.0}}));
  EXPECT_EQ(bandwidth_delta(s, {{1, 2, 89.0}}, 0.10), (std::vector<BandwidthCell>{{1, 2, 89.0}}));
  EXPECT_TRUE(bandwidth_delta(s, {{1, 2, 91.0}}, 0.10).empty());
  EXPECT_EQ(bandwidth_delta(s, {{1, 2, 100.5}}, 0.0).size(), 1u);
  EXPECT_TRUE(bandwidth_delta(s, {{1, 2, 100.0}}, 0.0).empty());
}

TEST(ControlState, RoundMaskSeedIsAPureFunction) {
  EXPECT_EQ(round_mask_seed(42, 7), round_mask_seed(42, 7));
  std::set<std::uint64_t> seen;
  for (Round r = 0; r < 1000; ++r) seen.insert(round_mask_seed(42, r));
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_NE(round_mask_seed(42, 7), round_mask_seed(43, 7));
}

// Every worker derives its exchange mask from this seed: a change here would make nodes of
// different versions disagree, so the values are pinned.
TEST(ControlState, RoundMaskSeedIsPinned) {
  EXPECT_EQ(round_mask_seed(0, 0), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(round_mask_seed(42, 7), 0xcbbd05c7de73a889ULL);
  EXPECT_EQ(round_mask_seed(~0ULL, 123456789), 0x8c864518b443853aULL);
}

std::vector<NodeId> ids(NodeId n) {
  std::vector<NodeId> v;
  for (NodeId id = 1; id <= n; ++id) v.push_back(id);
  return v;
}

void expect_valid(const Topology& t, const std::vector<NodeId>& participants) {
  std::set<NodeId> seen;
  const std::set<NodeId> allowed(participants.begin(), participants.end());
  for (const auto& [a, b] : t.matching.pairs) {
    EXPECT_LT(a, b);
    EXPECT_TRUE(allowed.count(a) && allowed.count(b));
    EXPECT_TRUE(seen.insert(a).second);
    EXPECT_TRUE(seen.insert(b).second);
  }
  for (NodeId id : t.matching.idle) {
    EXPECT_TRUE(allowed.count(id));
    EXPECT_TRUE(seen.insert(id).second);
  }
  EXPECT_LE(t.matching.idle.size(), 1u);
  EXPECT_EQ(seen.size(), participants.size()) << "everyone is paired or idle";
}

TEST(ControlState, PlanRoundIsDeterministicAndValid) {
  ControlState s = cluster(11);
  std::vector<BandwidthCell> cells;
  for (NodeId a = 1; a <= 11; ++a) {
    for (NodeId b = 1; b <= 11; ++b) {
      if (a != b) cells.push_back({a, b, static_cast<double>((a * 31 + b * 17) % 97)});
    }
  }
  ASSERT_EQ(s.apply(BandwidthUpdate{cells}), kApplied);
  const MatcherOptions options{40.0, 3};
  const auto participants = ids(11);
  for (Round r = 1; r <= 8; ++r) {
    const Topology t = plan_round(s, participants, options, r, 3, 99, 1.0);
    EXPECT_EQ(t, plan_round(s, participants, options, r, 3, 99, 1.0));
    EXPECT_EQ(t.round, r);
    EXPECT_EQ(t.coordinator_term, 3u);
    EXPECT_EQ(t.mask_seed, round_mask_seed(99, r));
    expect_valid(t, participants);
    EXPECT_GE(t.spectral_gap, 0.0);
    EXPECT_LE(t.spectral_gap, 1.0);
    ASSERT_EQ(s.apply(t), kApplied);
  }
  const Topology next = plan_round(s, participants, options, 9, 3, 99, 1.0);
  EXPECT_NE(next.mask_seed, plan_round(s, participants, options, 10, 3, 99, 1.0).mask_seed);
  // A subset of the members plans over that subset only.
  const std::vector<NodeId> some{2, 3, 5, 8};
  expect_valid(plan_round(s, some, options, 9, 3, 99, 1.0), some);
}

TEST(ControlState, SpectralGapIsOfTheWindowAndSkippedForLargeRounds) {
  // One round of 4 nodes has two 2x2 blocks: gap 0. Alternating two complementary
  // matchings over the window connects everyone, so the window's mean has a positive gap.
  ControlState s = cluster(4);
  const MatcherOptions options{0.0, 1};
  const Topology first = plan_round(s, ids(4), options, 1, 3, 5, 1.0);
  EXPECT_NEAR(first.spectral_gap, 0.0, 1e-12) << "a lone matching of 4 does not mix";
  ASSERT_EQ(s.apply(first), kApplied);
  const Topology second = plan_round(s, ids(4), options, 2, 3, 5, 1.0);
  // The window of one round does not connect, so the matcher prefers unused pairs.
  ASSERT_NE(second.matching, first.matching);
  EXPECT_GT(second.spectral_gap, 0.1);

  ControlState big = cluster(65);
  const Topology large = plan_round(big, ids(65), options, 1, 3, 5, 1.0);
  EXPECT_EQ(large.spectral_gap, -1.0);
  expect_valid(large, ids(65));
}

// The shard rules' invariant: every member's shards are sorted, distinct and in range; with
// a healthy worker present, every shard is held by somebody.
void expect_shards_held(const ControlState& s) {
  const auto count = s.data().shard_count;
  std::set<std::uint32_t> held;
  bool healthy_worker = false;
  for (const auto& [id, m] : s.members()) {
    ASSERT_TRUE(std::is_sorted(m.shards.begin(), m.shards.end())) << "member " << id;
    ASSERT_EQ(std::adjacent_find(m.shards.begin(), m.shards.end()), m.shards.end()) << "member " << id;
    for (auto shard : m.shards) {
      ASSERT_LT(shard, count) << "member " << id;
    }
    if (!m.worker()) {
      ASSERT_TRUE(m.shards.empty()) << "member " << id << " trains nothing";
    }
    held.insert(m.shards.begin(), m.shards.end());
    healthy_worker = healthy_worker || (m.worker() && !m.failed);
  }
  if (healthy_worker) {
    ASSERT_EQ(held.size(), count);
  }
}

std::vector<std::uint32_t> shards_of(const ControlState& s, NodeId id) { return s.member(id)->shards; }

TEST(ControlState, DataPlanThenAddsInIdOrderGiveShardIToTheIthWorker) {
  ControlState s;
  ASSERT_EQ(s.apply(DataPlan{4}), kApplied);
  EXPECT_EQ(s.apply(DataPlan{5}), kRejected) << "the data is cut once";
  EXPECT_EQ(s.apply(DataPlan{0}), kRejected);
  for (NodeId id = 1; id <= 4; ++id) ASSERT_EQ(s.apply(add(id, true)), kApplied);
  for (NodeId id = 1; id <= 4; ++id) EXPECT_EQ(shards_of(s, id), std::vector<std::uint32_t>{std::uint32_t(id - 1)});
  // A plan committed after the members (an older log) gives the same.
  ControlState later;
  for (NodeId id = 1; id <= 4; ++id) ASSERT_EQ(later.apply(add(id, true)), kApplied);
  ASSERT_EQ(later.apply(DataPlan{4}), kApplied);
  EXPECT_EQ(later.members(), s.members());
  // A member that does not train holds nothing.
  ASSERT_EQ(s.apply(add(9, false, 0)), kApplied);
  EXPECT_TRUE(shards_of(s, 9).empty());
}

TEST(ControlState, AJoinerTakesAFreeShardThenTheRichestsSecondThenShares) {
  ControlState s;
  ASSERT_EQ(s.apply(DataPlan{5}), kApplied);
  ASSERT_EQ(s.apply(add(1)), kApplied);
  EXPECT_EQ(shards_of(s, 1), (std::vector<std::uint32_t>{0, 1, 2, 3, 4})) << "nobody else to train them";
  ASSERT_EQ(s.apply(add(2)), kApplied);
  EXPECT_EQ(shards_of(s, 1), (std::vector<std::uint32_t>{0, 2, 3, 4}));
  EXPECT_EQ(shards_of(s, 2), (std::vector<std::uint32_t>{1}));
  for (NodeId id = 3; id <= 5; ++id) ASSERT_EQ(s.apply(add(id)), kApplied);
  for (NodeId id = 1; id <= 5; ++id) EXPECT_EQ(shards_of(s, id).size(), 1u) << "node " << id;
  // A sixth worker shares the shard with the fewest holders, the lowest of them.
  ASSERT_EQ(s.apply(add(6)), kApplied);
  EXPECT_EQ(shards_of(s, 6), shards_of(s, 1));
  ASSERT_EQ(s.apply(add(7)), kApplied);
  EXPECT_EQ(shards_of(s, 7), shards_of(s, 2));
  // Re-adding a member keeps its shards: the proposer never decides them.
  MembershipChange again = add(7);
  again.member.shards = {4};
  ASSERT_EQ(s.apply(again), kApplied);
  EXPECT_EQ(shards_of(s, 7), shards_of(s, 2));
  expect_shards_held(s);
}

TEST(ControlState, ARemovedWorkersShardsGoToTheHealthyWorkerHoldingFewest) {
  ControlState s;
  ASSERT_EQ(s.apply(DataPlan{4}), kApplied);
  for (NodeId id = 1; id <= 4; ++id) ASSERT_EQ(s.apply(add(id)), kApplied);
  ASSERT_EQ(s.apply(WorkerHealth{1, true}), kApplied);
  EXPECT_EQ(shards_of(s, 1), std::vector<std::uint32_t>{0}) << "a failed worker keeps its shard";
  ASSERT_EQ(s.apply(remove(3)), kApplied);
  // Shard 2 goes to the lowest id among those holding one shard, but not to failed node 1.
  EXPECT_EQ(shards_of(s, 2), (std::vector<std::uint32_t>{1, 2}));
  ASSERT_EQ(s.apply(remove(2)), kApplied);
  EXPECT_EQ(shards_of(s, 4), (std::vector<std::uint32_t>{1, 2, 3}));
  // With every worker failed nobody can take a departed one's shards; the first healthy
  // one does.
  ASSERT_EQ(s.apply(WorkerHealth{4, true}), kApplied);
  ASSERT_EQ(s.apply(remove(4)), kApplied);
  EXPECT_EQ(shards_of(s, 1), std::vector<std::uint32_t>{0});
  ASSERT_EQ(s.apply(WorkerHealth{1, false}), kApplied);
  EXPECT_EQ(shards_of(s, 1), (std::vector<std::uint32_t>{0, 1, 2, 3}));
  EXPECT_EQ(s.apply(WorkerHealth{7, true}), kRejected) << "not a member";
}

TEST(ControlState, AFailedWorkerIsNeverPlanned) {
  ControlState s = cluster(4);
  ASSERT_EQ(s.apply(WorkerHealth{2, true}), kApplied);
  EXPECT_EQ(s.apply(topology(1, 3, {{1, 2}, {3, 4}})), kRejected);
  EXPECT_EQ(s.apply(topology(1, 3, {{1, 3}}, {2})), kRejected) << "not even idle";
  EXPECT_EQ(s.apply(topology(1, 3, {{1, 3}}, {4})), kApplied);
  ASSERT_EQ(s.apply(WorkerHealth{2, false}), kApplied);
  EXPECT_EQ(s.apply(topology(2, 3, {{1, 2}, {3, 4}})), kApplied);
}

TEST(ControlState, AFreshWorkerIsPairedWithAGiver) {
  ControlState s = cluster(6);
  const MatcherOptions options{0.0, 3};
  const auto participants = ids(6);
  const std::vector<NodeId> fresh{2, 5};
  for (Round r = 1; r <= 6; ++r) {
    const Topology t = plan_round(s, participants, options, r, 3, 99, 1.0, fresh);
    EXPECT_EQ(t, plan_round(s, participants, options, r, 3, 99, 1.0, fresh));
    expect_valid(t, participants);
    EXPECT_EQ(t.fresh, fresh);
    for (NodeId id : fresh) {
      const NodeId giver = t.peer_of(id);
      EXPECT_NE(giver, 0u) << "round " << r;
      EXPECT_FALSE(t.is_fresh(giver)) << "round " << r;
    }
    ASSERT_EQ(s.apply(t), kApplied) << "round " << r;
  }
  // The state refuses a fresh worker left without a giver, or paired with another.
  Topology unpaired = topology(7, 3, {{1, 3}}, {2});
  unpaired.fresh = {2};
  EXPECT_EQ(s.apply(unpaired), kRejected);
  Topology fresh_pair = topology(7, 3, {{2, 5}, {1, 3}});
  fresh_pair.fresh = {2, 5};
  EXPECT_EQ(s.apply(fresh_pair), kRejected);
  // Fresh workers beyond the givers are left to the matcher (and are not fresh).
  const std::vector<NodeId> few{1, 2, 3};
  const Topology t = plan_round(s, few, options, 7, 3, 99, 1.0, {1, 2});
  EXPECT_EQ(t.fresh.size(), 1u);
  expect_valid(t, few);
  EXPECT_EQ(s.apply(t), kApplied);
}

// Commands drawn at random, many of them invalid, over a small id space so that they
// collide: what matters is that the outcome is a function of the sequence alone.
Command random_command(std::mt19937_64& rng, const ControlState& s) {
  auto pick = [&](std::uint64_t n) { return rng() % n; };
  auto node = [&]() -> NodeId { return 1 + pick(12); };
  switch (pick(7)) {
    case 0:
      return NoOp{};
    case 1:
      return CoordinatorChange{node(), s.coordinator().term + pick(3) - (s.coordinator().term > 0 ? 1 : 0),
                               s.last_round() + pick(3)};
    case 2: {
      std::vector<NodeId> participants;
      std::vector<NodeId> fresh;
      for (const auto& [id, m] : s.members()) {
        if (pick(3) != 0 && (!m.failed || pick(4) == 0)) participants.push_back(id);
        if (!participants.empty() && participants.back() == id && pick(4) == 0) fresh.push_back(id);
      }
      Topology t = plan_round(s, participants, MatcherOptions{50.0, 3}, s.last_round() + 1, s.coordinator().term,
                              7, 1.0, fresh);
      if (pick(10) == 0 && !t.matching.idle.empty()) t.fresh = {t.matching.idle.front()};
      if (pick(5) == 0) t.round += pick(3);
      if (pick(5) == 0) t.coordinator_term += 1;
      if (pick(8) == 0) t.matching.idle.push_back(node());
      return t;
    }
    case 3: {
      BandwidthUpdate u;
      for (auto k = pick(5); k > 0; --k) u.cells.push_back({node(), node(), static_cast<double>(pick(1000))});
      return u;
    }
    case 4:
      return pick(4) == 0 ? Command{DataPlan{static_cast<std::uint32_t>(pick(7))}}
                          : Command{WorkerHealth{node(), pick(2) == 0}};
    default: {
      const auto op = static_cast<MembershipChange::Op>(pick(3));
      return MembershipChange{op, Member{node(), "h:" + std::to_string(pick(9)), pick(2) == 0, pick(4), false, {}}};
    }
  }
}

TEST(ControlState, RandomCommandsKeepReplicasEqual) {
  std::mt19937_64 rng(20261129);
  ControlState a;
  ControlState b;
  std::size_t applied = 0;
  std::size_t rejected = 0;
  std::size_t topologies = 0;
  for (int i = 0; i < 4000; ++i) {
    const Command c = random_command(rng, a);
    const Round before = a.last_round();
    const ApplyResult ra = a.apply(c);
    ASSERT_EQ(ra, b.apply(c)) << "command " << i;
    ASSERT_EQ(a, b) << "command " << i;
    ASSERT_GE(a.last_round(), before);
    ASSERT_LE(a.data().topologies.size(), kTopologiesKept);
    expect_shards_held(a);
    (ra == kApplied ? applied : rejected)++;
    if (ra == kApplied && std::holds_alternative<Topology>(c)) ++topologies;
  }
  // The generator must exercise both outcomes and actually advance rounds.
  EXPECT_GT(applied, 1000u);
  EXPECT_GT(rejected, 300u);
  EXPECT_GT(topologies, 50u);
}

}  // namespace
}  // namespace raftfl::control
