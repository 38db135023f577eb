// Single-server membership changes (dissertation chapter 4).
#include <gtest/gtest.h>

#include "test_cluster.hpp"

namespace raftfl::raft::test {
namespace {

ConfChange change(ConfChangeType type, NodeId node, std::string context = "") {
  return ConfChange{type, node, std::move(context)};
}

TEST(Membership, RemovedLeaderStepsDownOnceTheChangeCommitsAndTheRestCarryOn) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));

  ProposeResult r = c.raft(1).propose_conf_change(change(ConfChangeType::kRemoveNode, 1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.index, 2u);
  // In force as soon as it is in the log; the leader manages the change it is leaving by.
  EXPECT_EQ(c.raft(1).config(), make_config({2, 3}));
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);

  c.deliver_all();
  EXPECT_EQ(c.raft(1).log().committed(), 2u);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_EQ(c.raft(1).leader(), kNoNode);
  const std::size_t sent_to_1 = c.count_sent([](const Message& m) { return m.to == 1; });

  for (int i = 0; i < 10 * kMaxTimeout && c.leader() == kNoNode; ++i) c.tick_all();
  NodeId leader = c.leader();
  ASSERT_TRUE(leader == 2 || leader == 3) << leader;
  EXPECT_EQ(c.raft(leader).term(), 2u);
  ProposeResult w = c.propose(leader, "after");
  ASSERT_TRUE(w.ok());
  c.deliver_all();
  for (NodeId id : {2, 3}) {
    EXPECT_EQ(c.raft(id).log().committed(), w.index) << id;
    EXPECT_EQ(c.node(id).state, std::vector<std::string>{"after"}) << id;
    EXPECT_EQ(c.raft(id).config(), make_config({2, 3})) << id;
  }
  // The removed node neither campaigns nor hears from the new configuration.
  EXPECT_EQ(c.raft(1).term(), 1u);
  EXPECT_EQ(c.count_sent([](const Message& m) { return m.to == 1; }), sent_to_1);
}

// The leader's own removal may be in force in its log alone: with two voters the other
// one still needs its vote, which it refuses (its log is longer). Unless the removed
// leader may stand again to finish the change, neither can ever lead.
TEST(Membership, LeaderCutOffRightAfterProposingItsOwnRemovalCanStillFinishIt) {
  Cluster c(make_config({1, 2}));
  ASSERT_TRUE(c.elect(1));
  c.isolate(2);
  ProposeResult r = c.raft(1).propose_conf_change(change(ConfChangeType::kRemoveNode, 1));
  ASSERT_TRUE(r.ok());
  c.deliver_all();
  c.tick(1, 2 * kMinTimeout);  // check-quorum: 2 is silent
  ASSERT_EQ(c.raft(1).role(), Role::kFollower);
  ASSERT_EQ(c.raft(2).config(), make_config({1, 2}));

  c.heal();
  for (int i = 0; i < 20 * kMaxTimeout && c.leader() != 2; ++i) c.tick_all();
  ASSERT_EQ(c.leader(), 2u);
  EXPECT_EQ(c.raft(2).config(), make_config({2}));
  EXPECT_GE(c.raft(2).log().committed(), r.index);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  ProposeResult w = c.propose(2, "after");
  ASSERT_TRUE(w.ok());
  c.deliver_all();
  EXPECT_EQ(c.node(2).state, std::vector<std::string>{"after"});
}

// A failed voter is replaced without ever shrinking the quorum's overlap: a learner is
// promoted, then the voter demoted; a demoted leader steps down once that commits, and the
// learner it became keeps receiving the log but no longer votes or counts.
TEST(Membership, DemotedVoterBecomesALearnerAndADemotedLeaderStepsDown) {
  Cluster c(make_config({1, 2, 3}, {4}));
  ASSERT_TRUE(c.elect(1));
  ASSERT_TRUE(c.raft(1).propose_conf_change(change(ConfChangeType::kPromoteLearner, 4)).ok());
  c.deliver_all();
  ASSERT_TRUE(c.raft(1).propose_conf_change(change(ConfChangeType::kDemoteVoter, 3)).ok());
  c.deliver_all();
  for (NodeId id : {1, 2, 3, 4}) EXPECT_EQ(c.raft(id).config(), make_config({1, 2, 4}, {3})) << id;
  // 3 no longer counts: with 2 and 4 cut off nothing commits, though 3 acknowledges.
  c.isolate(2);
  c.isolate(4);
  ProposeResult a = c.propose(1, "a");
  c.deliver_all();
  EXPECT_LT(c.raft(1).log().committed(), a.index);
  EXPECT_EQ(c.raft(3).log().last_index(), a.index) << "a learner still receives the log";
  c.heal();
  c.tick(1, kHeartbeat);
  c.deliver_all();
  EXPECT_EQ(c.raft(1).log().committed(), a.index);
  // Refused: demoting a learner, or the last voter.
  EXPECT_EQ(c.raft(1).propose_conf_change(change(ConfChangeType::kDemoteVoter, 3)).error,
            ProposeError::kInvalidConfChange);

  ProposeResult d = c.raft(1).propose_conf_change(change(ConfChangeType::kDemoteVoter, 1));
  ASSERT_TRUE(d.ok());
  c.deliver_all();
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  for (int i = 0; i < 20 * kMaxTimeout && (c.leader() == kNoNode || c.leader() == 1); ++i) c.tick_all();
  ASSERT_TRUE(c.leader() == 2 || c.leader() == 4) << c.leader();
  EXPECT_EQ(c.raft(c.leader()).config(), make_config({2, 4}, {1, 3}));
  ProposeResult w = c.propose(c.leader(), "after");
  ASSERT_TRUE(w.ok());
  c.deliver_all();
  for (NodeId id : {1, 2, 3, 4}) EXPECT_EQ(c.raft(id).log().committed(), w.index) << id;
}

TEST(Membership, NoChangeBeforeTheTermsFirstCommit) {
  Cluster c(make_config({1, 2, 3}));
  c.campaign(1);
  while (c.raft(1).role() != Role::kLeader) {
    c.process_all();
    ASSERT_TRUE(c.deliver_one());
  }
  // A change from an older term that never committed could combine with this one into
  // disjoint majorities: the leader's no-op must commit first.
  EXPECT_EQ(c.raft(1).log().committed(), 0u);
  EXPECT_EQ(c.raft(1).propose_conf_change(change(ConfChangeType::kAddLearner, 4)).error,
            ProposeError::kConfChangePending);
  c.deliver_all();
  EXPECT_TRUE(c.raft(1).propose_conf_change(change(ConfChangeType::kAddLearner, 4)).ok());
}

TEST(Membership, JoiningLearnerGetsTheSnapshotThenTheLogThenIsPromotedThenRemoved) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  ASSERT_TRUE(c.propose(1, "a").ok());
  c.deliver_all();

  c.add_node(4, Storage{});  // knows nothing, not even the configuration
  ASSERT_FALSE(c.raft(4).log().has_base());
  ProposeResult r = c.raft(1).propose_conf_change(change(ConfChangeType::kAddLearner, 4, "tcp://node4"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.index, 3u);
  // One change at a time.
  EXPECT_EQ(c.raft(1).propose_conf_change(change(ConfChangeType::kAddLearner, 5)).error,
            ProposeError::kConfChangePending);
  c.deliver_all();
  // The new member's progress starts past the log, so the leader first reaches it with
  // a heartbeat; the answer shows it holds nothing and the snapshot follows.
  c.tick(1, kHeartbeat);
  c.deliver_all();

  EXPECT_EQ(c.count_sent(is(MessageType::kSnapshot, 1, 4)), 1u);
  ASSERT_TRUE(c.node(4).storage.snapshot);
  EXPECT_EQ(c.node(4).storage.snapshot->meta.index, 0u);
  EXPECT_EQ(log_terms(c.raft(4).log()), log_terms(c.raft(1).log()));
  EXPECT_EQ(c.raft(4).log().committed(), 3u);
  EXPECT_EQ(c.node(4).state, std::vector<std::string>{"a"});
  // Every member knows where the learner is: the change's context is in the configuration.
  Configuration with_learner = make_config({1, 2, 3}, {4});
  with_learner.contexts[4] = "tcp://node4";
  for (NodeId id : {1, 2, 3, 4}) EXPECT_EQ(c.raft(id).config(), with_learner) << id;

  // Invalid changes are refused and leave the log alone.
  const Index last = c.raft(1).log().last_index();
  for (const ConfChange& bad : {change(ConfChangeType::kPromoteLearner, 2), change(ConfChangeType::kPromoteLearner, 9),
                                change(ConfChangeType::kAddLearner, 3), change(ConfChangeType::kAddLearner, kNoNode),
                                change(ConfChangeType::kRemoveNode, 9)}) {
    EXPECT_EQ(c.raft(1).propose_conf_change(bad).error, ProposeError::kInvalidConfChange) << bad.node;
  }
  EXPECT_EQ(c.raft(1).log().last_index(), last);

  ASSERT_TRUE(c.raft(1).propose_conf_change(change(ConfChangeType::kPromoteLearner, 4)).ok());
  c.deliver_all();
  Configuration promoted = make_config({1, 2, 3, 4});
  promoted.contexts[4] = "tcp://node4";
  for (NodeId id : {1, 2, 3, 4}) EXPECT_EQ(c.raft(id).config(), promoted) << id;
  // Four voters need three acknowledgements: 1 and 2 alone no longer commit, with 4 they do.
  c.isolate(3);
  c.isolate(4);
  ProposeResult b = c.propose(1, "b");
  c.deliver_all();
  EXPECT_LT(c.raft(1).log().committed(), b.index);
  c.heal();
  c.isolate(3);
  c.tick(1, kHeartbeat);
  c.deliver_all();
  EXPECT_EQ(c.raft(1).log().committed(), b.index);
  c.heal();

  ASSERT_TRUE(c.raft(1).propose_conf_change(change(ConfChangeType::kRemoveNode, 4)).ok());
  EXPECT_EQ(c.raft(1).progress(4), nullptr);
  c.deliver_all();
  for (NodeId id : {1, 2, 3}) {
    EXPECT_EQ(c.raft(id).config(), make_config({1, 2, 3})) << id;
    EXPECT_EQ(c.node(id).state, (std::vector<std::string>{"a", "b"})) << id;
  }
  EXPECT_EQ(c.raft(1).log().committed(), c.raft(1).log().last_index());
}

}  // namespace
}  // namespace raftfl::raft::test
