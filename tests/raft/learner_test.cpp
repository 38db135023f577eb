// Learners receive the log but never elect, campaign or count toward a quorum: that is
// what lets the control plane keep 3 or 5 voters among hundreds of workers.
#include <gtest/gtest.h>

#include "test_cluster.hpp"

namespace raftfl::raft::test {
namespace {

TEST(Learner, LeaderCannotCommitWithOnlyTheLearnersAcknowledgement) {
  Cluster c(make_config({1, 2, 3}, {4}));
  ASSERT_TRUE(c.elect(1));
  EXPECT_EQ(c.raft(4).log().last_index(), 1u);  // it does follow the log

  c.isolate(2);
  c.isolate(3);
  ProposeResult r = c.propose(1, "x");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.index, 2u);
  c.deliver_all();

  EXPECT_EQ(c.raft(4).log().last_index(), 2u);
  EXPECT_EQ(c.raft(1).progress(4)->match, 2u);
  // Leader plus learner is two acknowledgements, but only one voter of three.
  EXPECT_EQ(c.raft(1).log().committed(), 1u);
  EXPECT_TRUE(c.node(1).state.empty());

  c.heal();
  c.tick(1, kHeartbeat);
  c.deliver_all();
  EXPECT_EQ(c.raft(1).log().committed(), 2u);
  EXPECT_EQ(c.node(4).state, std::vector<std::string>{"x"});
}

TEST(Learner, NeverCampaignsHoweverLongItTicks) {
  Cluster c(make_config({1, 2, 3}, {4}));
  // No leader anywhere, and nothing else ticks: the learner has every chance.
  c.tick(4, 20 * kMaxTimeout);
  c.process_all();
  EXPECT_EQ(c.raft(4).role(), Role::kFollower);
  EXPECT_EQ(c.raft(4).term(), 0u);
  EXPECT_EQ(c.count_sent([](const Message& m) { return m.from == 4; }), 0u);
}

TEST(Learner, IsNotAskedToVoteAndItsGrantDoesNotCount) {
  Cluster c(make_config({1, 2, 3}, {4}));
  c.isolate(2);
  c.isolate(3);
  c.campaign(1);
  c.process_all();
  ASSERT_EQ(c.raft(1).role(), Role::kPreCandidate);
  EXPECT_EQ(c.count_sent(is(MessageType::kPreVote, 1, 4)), 0u);

  // Even a grant from the learner leaves the candidate one vote short.
  Message grant;
  grant.type = MessageType::kPreVoteResp;
  grant.from = 4;
  grant.to = 1;
  grant.term = 1;
  c.raft(1).step(grant);
  c.deliver_all();
  EXPECT_EQ(c.raft(1).role(), Role::kPreCandidate);
  EXPECT_EQ(c.raft(1).term(), 0u);
}

TEST(Learner, DoesNotKeepACutOffLeaderInPower) {
  Cluster c(make_config({1, 2, 3}, {4}));
  ASSERT_TRUE(c.elect(1));
  c.isolate(2);
  c.isolate(3);
  // The learner answers every heartbeat; check-quorum must not count it.
  c.tick_all(2 * kMinTimeout);
  EXPECT_GT(c.count_sent(is(MessageType::kHeartbeatResp, 4, 1)), 0u);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
}

}  // namespace
}  // namespace raftfl::raft::test
