// Linearizable reads with ReadIndex (dissertation section 6.4).
#include <gtest/gtest.h>

#include "test_cluster.hpp"

namespace raftfl::raft::test {
namespace {

TEST(ReadIndex, LeaderAnswersOnlyOnceAQuorumAcknowledgesAHeartbeatRound) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  ASSERT_TRUE(c.propose(1, "a").ok());
  c.deliver_all();
  const Index commit = c.raft(1).log().committed();
  ASSERT_EQ(commit, 2u);

  ASSERT_TRUE(c.raft(1).read_index(Payload("r1")));
  Ready rd = c.process_ready(1);
  EXPECT_TRUE(rd.read_states.empty());
  std::size_t heartbeats = 0;
  for (const Message& m : rd.messages) {
    if (m.type == MessageType::kHeartbeat && m.read_seq != 0) ++heartbeats;
  }
  EXPECT_EQ(heartbeats, 2u);

  c.deliver_if(is(MessageType::kHeartbeat, 1, 2));
  c.process_ready(2);
  EXPECT_TRUE(c.node(1).read_states.empty());
  // 2's acknowledgement and the leader's own make two of three.
  c.deliver_if(is(MessageType::kHeartbeatResp, 2, 1));
  c.process_ready(1);
  ASSERT_EQ(c.node(1).read_states.size(), 1u);
  EXPECT_EQ(c.node(1).read_states[0].index, commit);
  EXPECT_EQ(c.node(1).read_states[0].context.view(), "r1");

  // 3's late acknowledgement answers nothing a second time.
  c.deliver_all();
  EXPECT_EQ(c.node(1).read_states.size(), 1u);
}

TEST(ReadIndex, FollowerReadIsForwardedToTheLeaderAndAnswered) {
  Cluster c(make_config({1, 2, 3}));
  EXPECT_FALSE(c.raft(2).read_index(Payload("nobody to ask")));
  ASSERT_TRUE(c.elect(1));
  ASSERT_TRUE(c.propose(1, "a").ok());
  c.deliver_all();
  const Index commit = c.raft(1).log().committed();

  ASSERT_TRUE(c.raft(2).read_index(Payload("f")));
  c.deliver_all();
  EXPECT_EQ(c.count_sent(is(MessageType::kReadIndex, 2, 1)), 1u);
  EXPECT_EQ(c.count_sent(is(MessageType::kReadIndexResp, 1, 2)), 1u);
  ASSERT_EQ(c.node(2).read_states.size(), 1u);
  EXPECT_EQ(c.node(2).read_states[0].index, commit);
  EXPECT_EQ(c.node(2).read_states[0].context.view(), "f");
  EXPECT_TRUE(c.node(1).read_states.empty());
}

TEST(ReadIndex, NewLeaderAnswersOnlyAfterItsFirstCommit) {
  Cluster c(make_config({1, 2, 3}));
  c.campaign(1);
  while (c.raft(1).role() != Role::kLeader) {
    c.process_all();
    ASSERT_TRUE(c.deliver_one());
  }
  // Its commit index is still 0: it does not yet know what the previous leader committed.
  ASSERT_TRUE(c.raft(1).read_index(Payload("early")));
  c.process_ready(1);
  EXPECT_TRUE(c.node(1).read_states.empty());
  c.deliver_all();
  ASSERT_EQ(c.node(1).read_states.size(), 1u);
  EXPECT_EQ(c.node(1).read_states[0].index, 1u);
}

TEST(ReadIndex, PartitionedLeaderNeverAnswersEvenAfterSteppingDownAndHealing) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  c.isolate(1);
  ASSERT_TRUE(c.raft(1).read_index(Payload("stale")));

  // The majority elects a new leader and commits a write the old one never sees.
  // Meanwhile check-quorum makes 1 step down.
  for (int i = 0; i < 10 * kMaxTimeout && (c.leader() == kNoNode || c.raft(1).role() == Role::kLeader); ++i)
    c.tick_all();
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  NodeId leader = c.leader();
  ASSERT_TRUE(leader == 2 || leader == 3) << leader;
  ASSERT_TRUE(c.propose(leader, "w").ok());
  c.deliver_all();

  c.heal();
  c.tick_all(2 * kMaxTimeout);
  EXPECT_EQ(c.raft(1).leader(), leader);
  EXPECT_EQ(c.node(1).state, std::vector<std::string>{"w"});
  EXPECT_TRUE(c.node(1).read_states.empty());
  EXPECT_EQ(c.count_sent(is(MessageType::kHeartbeatResp, kNoNode, 1)), 0u);
}

TEST(ReadIndex, DeposedLeaderDropsItsPendingReadWhenItLearnsTheNewTerm) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  c.isolate(1);
  ASSERT_TRUE(c.raft(1).read_index(Payload("stale")));
  c.process_all();

  // Only 2 and 3 tick: 1 still believes it leads when the partition heals.
  for (int i = 0; i < 10 * kMaxTimeout && c.leader() == 1; ++i) {
    c.tick(2);
    c.tick(3);
    c.deliver_all();
  }
  NodeId leader = c.leader();
  ASSERT_TRUE(leader == 2 || leader == 3) << leader;
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);

  c.heal();
  c.tick(1, kHeartbeat);  // its heartbeats carry the read; the answers carry term 2
  c.deliver_all();
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_EQ(c.raft(1).term(), 2u);
  EXPECT_TRUE(c.node(1).read_states.empty());
}

}  // namespace
}  // namespace raftfl::raft::test
