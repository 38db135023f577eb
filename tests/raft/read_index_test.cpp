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

// The read is issued at a leader that has already been replaced: another leader has
// committed "w" meanwhile, so the index the old leader records is stale, and only a
// heartbeat round of its own term could have told it so. Acknowledgements of that term
// are on the way when it learns the new term, and it later leads again: in no term may it
// answer the read with its stale index.
TEST(ReadIndex, DeposedLeaderNeverAnswersAReadIssuedBeforeItLearnedTheNewTerm) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  c.isolate(1);
  for (int i = 0; i < 10 * kMaxTimeout && c.leader() == 1; ++i) {
    c.tick(2);
    c.tick(3);
    c.deliver_all();
  }
  const NodeId leader = c.leader();
  ASSERT_TRUE(leader == 2 || leader == 3) << leader;
  ProposeResult w = c.propose(leader, "w");
  ASSERT_TRUE(w.ok());
  c.deliver_all();
  ASSERT_EQ(c.raft(leader).log().committed(), w.index);

  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  const Index stale_commit = c.raft(1).log().committed();
  ASSERT_LT(stale_commit, w.index);
  ASSERT_TRUE(c.raft(1).read_index(Payload("stale")));
  c.heal();
  c.process_ready(1);  // its heartbeat round, read_seq set, goes out at term 1
  ASSERT_EQ(c.deliver_if(is(MessageType::kHeartbeat, 1)), 2u);
  c.process_all();     // 2 and 3 answer with their newer term
  c.deliver_all();
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_EQ(c.raft(1).term(), c.raft(leader).term());

  // 1 catches up and is handed the leadership: heartbeat rounds of its new term follow.
  c.tick(leader, kHeartbeat);
  c.deliver_all();
  ASSERT_TRUE(c.raft(leader).transfer_leadership(1));
  c.deliver_all();
  ASSERT_EQ(c.leader(), 1u);
  c.tick_all(2 * kHeartbeat);
  ASSERT_TRUE(c.raft(1).read_index(Payload("fresh")));
  c.deliver_all();

  ASSERT_EQ(c.node(1).read_states.size(), 1u);
  EXPECT_EQ(c.node(1).read_states[0].context.view(), "fresh");
  EXPECT_GE(c.node(1).read_states[0].index, w.index);
}

}  // namespace
}  // namespace raftfl::raft::test
