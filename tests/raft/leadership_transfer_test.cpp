// Leadership transfer (dissertation section 3.10).
#include <gtest/gtest.h>

#include <algorithm>

#include "test_cluster.hpp"

namespace raftfl::raft::test {
namespace {

std::ptrdiff_t position(const std::vector<Message>& sent, const MessagePredicate& pred) {
  auto it = std::find_if(sent.begin(), sent.end(), pred);
  return it == sent.end() ? -1 : it - sent.begin();
}

TEST(LeadershipTransfer, LaggingTargetIsCaughtUpBeforeTimeoutNowAndWins) {
  Options o;
  o.max_entries_per_message = 2;  // catching up takes several acknowledged messages
  Cluster c(make_config({1, 2, 3}), o);
  ASSERT_TRUE(c.elect(1));
  c.isolate(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.propose(1, "p" + std::to_string(i)).ok());
  c.deliver_all();
  c.heal();
  const Index last = c.raft(1).log().last_index();
  ASSERT_EQ(last, 6u);
  ASSERT_EQ(c.raft(3).log().last_index(), 1u);

  ASSERT_TRUE(c.raft(1).transfer_leadership(3));
  EXPECT_EQ(c.raft(1).transfer_target(), 3u);
  // New writes would only lengthen the catch-up the transfer waits for.
  EXPECT_EQ(c.propose(1, "refused").error, ProposeError::kTransferring);
  EXPECT_EQ(c.raft(1).propose_conf_change({ConfChangeType::kAddLearner, 9, ""}).error, ProposeError::kTransferring);

  c.tick(1, kHeartbeat);  // the heartbeat answer shows the leader what 3 lacks
  c.deliver_all();

  std::ptrdiff_t caught_up = position(c.sent(), [&](const Message& m) {
    return m.type == MessageType::kAppendResp && m.from == 3 && !m.reject && m.index == last;
  });
  std::ptrdiff_t timeout_now = position(c.sent(), is(MessageType::kTimeoutNow, 1, 3));
  ASSERT_GE(caught_up, 0);
  ASSERT_GE(timeout_now, 0);
  EXPECT_LT(caught_up, timeout_now);
  // It took more than one acknowledged message, and none of the earlier ones triggered it.
  EXPECT_GT(c.count_sent([](const Message& m) {
    return m.type == MessageType::kAppendResp && m.from == 3 && !m.reject && m.term == 1;
  }), 1u);
  EXPECT_EQ(c.count_sent(is(MessageType::kTimeoutNow)), 1u);

  EXPECT_EQ(c.leader(), 3u);
  EXPECT_EQ(c.raft(3).term(), 2u);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_EQ(c.raft(1).leader(), 3u);
  // The old leader's lease did not stop the vote it asked for.
  EXPECT_EQ(c.raft(1).vote(), 3u);
  c.tick(3, kHeartbeat);  // the follower that answered last learns the commit index here
  c.deliver_all();
  for (NodeId id : {1, 2, 3}) {
    EXPECT_EQ(c.raft(id).log().committed(), last + 1) << id;  // the new leader's no-op
    EXPECT_EQ(c.node(id).state.size(), 5u) << id;
  }
}

TEST(LeadershipTransfer, TransferToAnUnreachableNodeIsAbandonedAfterAnElectionTimeout) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  c.isolate(3);
  ASSERT_TRUE(c.raft(1).transfer_leadership(3));

  c.tick_all(kMinTimeout - 1);
  EXPECT_EQ(c.raft(1).transfer_target(), 3u);
  EXPECT_EQ(c.propose(1, "refused").error, ProposeError::kTransferring);
  c.tick_all();
  EXPECT_EQ(c.raft(1).transfer_target(), kNoNode);
  EXPECT_EQ(c.raft(3).term(), 1u);  // the TimeoutNow was lost on the way

  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_EQ(c.raft(1).term(), 1u);
  ProposeResult r = c.propose(1, "accepted");
  ASSERT_TRUE(r.ok());
  c.deliver_all();
  EXPECT_EQ(c.raft(2).log().committed(), r.index);
}

TEST(LeadershipTransfer, ATimeoutNowFromAFollowerDeposesNobody) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.from = 2;
  m.to = 3;
  m.term = c.raft(1).term();
  c.raft(3).step(m);
  c.deliver_all();
  EXPECT_EQ(c.raft(3).role(), Role::kFollower);
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_EQ(c.raft(1).term(), m.term);
  // From the leader it is the transfer it always was.
  m.from = 1;
  c.raft(3).step(m);
  c.deliver_all();
  EXPECT_EQ(c.raft(3).role(), Role::kLeader);
}

TEST(LeadershipTransfer, RefusedForNonVotersSelfAndFollowers) {
  Cluster c(make_config({1, 2, 3}, {4}));
  ASSERT_TRUE(c.elect(1));
  EXPECT_FALSE(c.raft(1).transfer_leadership(1));
  EXPECT_FALSE(c.raft(1).transfer_leadership(4));  // a learner cannot lead
  EXPECT_FALSE(c.raft(1).transfer_leadership(9));
  EXPECT_FALSE(c.raft(2).transfer_leadership(3));
  EXPECT_EQ(c.raft(1).transfer_target(), kNoNode);
}

}  // namespace
}  // namespace raftfl::raft::test
