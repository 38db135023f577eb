// Leader election (paper section 5.2), pre-vote (dissertation 9.6), check-quorum (6.2)
// and the leader lease voters keep (4.2.3).
#include <gtest/gtest.h>

#include "test_cluster.hpp"

namespace raftfl::raft::test {
namespace {

Message vote_request(MessageType type, NodeId from, NodeId to, Term term, const RaftLog& candidate_log) {
  Message m;
  m.type = type;
  m.from = from;
  m.to = to;
  m.term = term;
  m.index = candidate_log.last_index();
  m.log_term = candidate_log.last_term();
  return m;
}

TEST(Election, DuelingCandidatesSplitTheVoteAndALaterTimeoutResolvesIt) {
  Options o;
  o.pre_vote = false;
  Cluster c(make_config({1, 2, 3, 4}), o);

  // 1 and 2 stand in term 1 at the same time; 3 hears 1 first and 4 hears 2 first.
  c.campaign(1);
  c.campaign(2);
  c.process_all();
  ASSERT_EQ(c.raft(1).term(), 1u);
  ASSERT_EQ(c.raft(2).term(), 1u);
  c.deliver_if([](const Message& m) {
    return m.type == MessageType::kVote && ((m.from == 1 && m.to == 3) || (m.from == 2 && m.to == 4));
  });
  c.deliver_all();

  EXPECT_EQ(c.raft(3).vote(), 1u);
  EXPECT_EQ(c.raft(4).vote(), 2u);
  // Two votes each out of four: neither reaches the quorum of three.
  EXPECT_EQ(c.raft(1).role(), Role::kCandidate);
  EXPECT_EQ(c.raft(2).role(), Role::kCandidate);
  EXPECT_EQ(c.leader(), kNoNode);
  EXPECT_EQ(c.leaders_by_term().count(1), 0u);

  // Randomized timeouts: one node times out first and wins the next term alone.
  for (int i = 0; i < 10 * kMaxTimeout && c.leader() == kNoNode; ++i) c.tick_all();
  NodeId leader = c.leader();
  ASSERT_NE(leader, kNoNode);
  EXPECT_EQ(c.raft(leader).term(), 2u);
  for (NodeId id : {1, 2, 3, 4}) {
    EXPECT_EQ(c.raft(id).term(), 2u) << id;
    EXPECT_EQ(c.raft(id).leader(), leader) << id;
  }
  EXPECT_EQ(c.leaders_by_term().count(1), 0u);
}

TEST(PreVote, IsolatedNodeKeepsItsTermAndDoesNotDeposeTheLeaderOnReturn) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  ASSERT_EQ(c.raft(1).term(), 1u);

  c.isolate(3);
  c.tick_all(10 * kMaxTimeout);
  // It kept trying, but a pre-vote that finds no majority never raises the term.
  EXPECT_GT(c.count_sent(is(MessageType::kPreVote, 3)), 0u);
  EXPECT_EQ(c.count_sent(is(MessageType::kVote, 3)), 0u);
  EXPECT_EQ(c.raft(3).term(), 1u);
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);

  c.heal();
  c.tick_all(2 * kMaxTimeout);
  EXPECT_EQ(c.leader(), 1u);
  for (NodeId id : {1, 2, 3}) {
    EXPECT_EQ(c.raft(id).term(), 1u) << id;
    EXPECT_EQ(c.raft(id).leader(), 1u) << id;
  }
  ASSERT_TRUE(c.propose(1, "after").ok());
  c.deliver_all();
  EXPECT_EQ(c.node(3).state, std::vector<std::string>{"after"});
}

// The same story without pre-vote: what the previous test proves pre-vote prevents.
TEST(PreVote, WithoutPreVoteTheIsolatedNodeInflatesItsTermAndDeposesTheLeader) {
  Options o;
  o.pre_vote = false;
  Cluster c(make_config({1, 2, 3}), o);
  ASSERT_TRUE(c.elect(1));

  c.isolate(3);
  c.tick_all(10 * kMaxTimeout);
  // At least one election per maximum timeout, each in a new term.
  EXPECT_GE(c.raft(3).term(), 11u);

  c.heal();
  c.tick_all(4 * kMaxTimeout);
  EXPECT_NE(c.raft(1).term(), 1u);
  NodeId leader = c.leader();
  ASSERT_NE(leader, kNoNode);
  EXPECT_GT(c.raft(leader).term(), 11u);
}

TEST(CheckQuorum, LeaderCutOffFromItsFollowersStepsDown) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));

  c.isolate(1);
  // Both followers answered during the election: the first check passes.
  c.tick(1, kMinTimeout);
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
  // Nobody answered during the next election timeout.
  c.tick(1, kMinTimeout);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_EQ(c.raft(1).leader(), kNoNode);
  EXPECT_EQ(c.raft(1).term(), 1u);
}

TEST(CheckQuorum, LeaderThatHearsFromAQuorumKeepsLeading) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  c.isolate(3);
  c.tick_all(10 * kMaxTimeout);
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_EQ(c.raft(1).term(), 1u);
}

TEST(CheckQuorum, WithoutCheckQuorumTheCutOffLeaderStaysLeader) {
  Options o;
  o.check_quorum = false;
  Cluster c(make_config({1, 2, 3}), o);
  ASSERT_TRUE(c.elect(1));
  c.isolate(1);
  c.tick(1, 10 * kMaxTimeout);
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_EQ(c.raft(1).term(), 1u);
}

TEST(LeaderLease, FollowerThatHeardFromTheLeaderIgnoresVoteRequests) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  c.tick_all(kHeartbeat);  // a heartbeat round: 2 heard from its leader a moment ago

  // 3 asks for votes in a much later term with a log as good as anyone's.
  c.raft(2).step(vote_request(MessageType::kPreVote, 3, 2, 5, c.raft(3).log()));
  c.raft(2).step(vote_request(MessageType::kVote, 3, 2, 5, c.raft(3).log()));

  EXPECT_EQ(c.raft(2).term(), 1u);
  EXPECT_EQ(c.raft(2).vote(), 1u);
  EXPECT_EQ(c.raft(2).leader(), 1u);
  Ready rd = c.process_ready(2);
  EXPECT_TRUE(rd.messages.empty());
  EXPECT_TRUE(rd.messages_after_persist.empty());
  EXPECT_FALSE(rd.hard_state.has_value());
}

TEST(LeaderLease, ForcedVoteOfALeadershipTransferIsHonoured) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  c.tick_all(kHeartbeat);

  Message m = vote_request(MessageType::kVote, 3, 2, 5, c.raft(3).log());
  m.force = true;
  c.raft(2).step(m);

  EXPECT_EQ(c.raft(2).term(), 5u);
  EXPECT_EQ(c.raft(2).vote(), 3u);
  Ready rd = c.process_ready(2);
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term, 5u);
  EXPECT_EQ(rd.hard_state->vote, 3u);
  ASSERT_EQ(rd.messages_after_persist.size(), 1u);
  const Message& resp = rd.messages_after_persist[0];
  EXPECT_EQ(resp.type, MessageType::kVoteResp);
  EXPECT_EQ(resp.to, 3u);
  EXPECT_EQ(resp.term, 5u);
  EXPECT_FALSE(resp.reject);
}

TEST(LeaderLease, LeaseEndsAfterTheMinimumElectionTimeoutWithoutALeader) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  c.isolate(1);
  c.tick(2, kMinTimeout);  // no heartbeat arrived for a whole minimum timeout

  c.raft(2).step(vote_request(MessageType::kVote, 3, 2, 5, c.raft(3).log()));
  EXPECT_EQ(c.raft(2).term(), 5u);
  EXPECT_EQ(c.raft(2).vote(), 3u);
}

}  // namespace
}  // namespace raftfl::raft::test
