// The driver contract of ready.hpp: what may leave before the persist and what only
// after it, and that a restart gives back exactly what was persisted.
#include <gtest/gtest.h>

#include <algorithm>

#include "test_cluster.hpp"

namespace raftfl::raft::test {
namespace {

std::size_t count(const std::vector<Message>& messages, MessageType type) {
  return static_cast<std::size_t>(
      std::count_if(messages.begin(), messages.end(), [&](const Message& m) { return m.type == type; }));
}

TEST(Persistence, VotesAndAcknowledgementsLeaveOnlyAfterThePersist) {
  Cluster c(make_config({1, 2, 3}));
  c.campaign(1);
  Ready rd = c.process_ready(1);
  EXPECT_EQ(count(rd.messages, MessageType::kPreVote), 2u);  // a pre-vote promises nothing
  EXPECT_FALSE(rd.hard_state.has_value());

  c.deliver_if(is(MessageType::kPreVote, 1));
  rd = c.process_ready(2);
  EXPECT_EQ(count(rd.messages, MessageType::kPreVoteResp), 1u);
  c.process_ready(3);
  c.deliver_if(is(MessageType::kPreVoteResp, kNoNode, 1));

  // The candidate's own term and vote must be durable before it asks for votes.
  rd = c.process_ready(1);
  ASSERT_EQ(c.raft(1).role(), Role::kCandidate);
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(*rd.hard_state, (HardState{1, 1, 0}));
  EXPECT_EQ(count(rd.messages, MessageType::kVote), 0u);
  EXPECT_EQ(count(rd.messages_after_persist, MessageType::kVote), 2u);

  c.deliver_if(is(MessageType::kVote, 1));
  rd = c.process_ready(2);
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(*rd.hard_state, (HardState{1, 1, 0}));
  EXPECT_EQ(count(rd.messages, MessageType::kVoteResp), 0u);
  EXPECT_EQ(count(rd.messages_after_persist, MessageType::kVoteResp), 1u);
  c.process_ready(3);
  c.deliver_if(is(MessageType::kVoteResp, kNoNode, 1));

  // A leader's AppendEntries go out in parallel with its own write.
  rd = c.process_ready(1);
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(rd.entries[0].type, EntryType::kNoOp);
  EXPECT_EQ(count(rd.messages, MessageType::kAppend), 2u);
  EXPECT_EQ(count(rd.messages_after_persist, MessageType::kAppend), 0u);

  c.deliver_if(is(MessageType::kAppend, 1));
  rd = c.process_ready(2);
  EXPECT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(count(rd.messages, MessageType::kAppendResp), 0u);
  EXPECT_EQ(count(rd.messages_after_persist, MessageType::kAppendResp), 1u);
}

TEST(Persistence, LeaderCountsItsOwnEntryOnlyOnceItIsDurable) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  ProposeResult r = c.propose(1, "a");
  // The leader's Ready is taken but not yet persisted; its appends are already out.
  Ready rd = c.raft(1).ready();
  for (const Message& m : rd.messages) {
    if (m.to == 2) c.raft(2).step(m);
  }
  c.process_ready(2);
  c.deliver_if(is(MessageType::kAppendResp, 2, 1));
  // 2 holds the entry, but the leader's copy is not durable: one of three.
  EXPECT_EQ(c.raft(1).progress(2)->match, r.index);
  EXPECT_LT(c.raft(1).log().committed(), r.index);
  c.raft(1).advance(rd);
  EXPECT_EQ(c.raft(1).log().committed(), r.index);
}

TEST(Persistence, RestartRestoresTermVoteAndLogExactly) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  ASSERT_TRUE(c.propose(1, "a").ok());
  ASSERT_TRUE(c.propose(1, "b").ok());
  c.deliver_all();

  const Term term = c.raft(2).term();
  const NodeId vote = c.raft(2).vote();
  const Index committed = c.raft(2).log().committed();
  std::vector<Entry> entries;
  for (Index i = 1; i <= c.raft(2).log().last_index(); ++i) entries.push_back(c.raft(2).log().at(i));
  ASSERT_EQ(entries.size(), 3u);

  c.crash(2);
  c.restart(2);
  EXPECT_EQ(c.raft(2).term(), term);
  EXPECT_EQ(c.raft(2).vote(), vote);
  EXPECT_EQ(c.raft(2).vote(), 1u);
  EXPECT_EQ(c.raft(2).log().committed(), committed);
  ASSERT_EQ(c.raft(2).log().last_index(), entries.size());
  for (const Entry& e : entries) {
    const Entry& got = c.raft(2).log().at(e.index);
    EXPECT_EQ(got.term, e.term) << e.index;
    EXPECT_EQ(got.type, e.type) << e.index;
    EXPECT_EQ(got.data.view(), e.data.view()) << e.index;
  }
  EXPECT_EQ(c.raft(2).role(), Role::kFollower);
  c.process_all();  // the committed entries are applied again from the log
  EXPECT_EQ(c.node(2).state, (std::vector<std::string>{"a", "b"}));
}

TEST(Persistence, RestartedNodeNeverVotesTwiceInOneTerm) {
  Options o;
  o.pre_vote = false;
  Cluster c(make_config({1, 2, 3}), o);
  c.campaign(1);
  c.process_ready(1);
  c.deliver_if(is(MessageType::kVote, 1, 2));
  Ready rd = c.process_ready(2);
  ASSERT_EQ(rd.messages_after_persist.size(), 1u);
  ASSERT_FALSE(rd.messages_after_persist[0].reject);

  c.crash(2);
  c.restart(2);
  EXPECT_EQ(c.raft(2).term(), 1u);
  EXPECT_EQ(c.raft(2).vote(), 1u);

  // 3 has heard nothing and stands in the same term.
  c.campaign(3);
  ASSERT_EQ(c.raft(3).term(), 1u);
  c.process_ready(3);
  c.deliver_if(is(MessageType::kVote, 3, 2));
  rd = c.process_ready(2);
  ASSERT_EQ(rd.messages_after_persist.size(), 1u);
  EXPECT_EQ(rd.messages_after_persist[0].type, MessageType::kVoteResp);
  EXPECT_TRUE(rd.messages_after_persist[0].reject);
  EXPECT_EQ(c.raft(2).vote(), 1u);
}


// A voter that is the whole quorum wins in the step that starts its campaign. If its first
// AppendEntries left before its new term was durable, a crash would restart it in the old
// term; it would win the same term again and write other entries at the same (index,
// term), which a learner that kept the first ones would take for the same entries.
TEST(Persistence, LoneVoterSendsNothingOfItsNewTermBeforeTheTermIsDurable) {
  Cluster c(make_config({1, 2}, {3}));
  ASSERT_TRUE(c.elect(2));
  ASSERT_TRUE(c.raft(2).propose_conf_change({ConfChangeType::kRemoveNode, 2, {}}).ok());
  c.deliver_all();
  ASSERT_EQ(c.raft(1).config(), make_config({1}, {3}));
  ASSERT_NE(c.raft(2).role(), Role::kLeader);
  const Term old_term = c.raft(1).term();

  c.campaign(1);
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  ASSERT_TRUE(c.propose(1, "x").ok());

  // The next Ready records the new term and vote; 1 crashes before they reach the disk.
  Ready rd = c.raft(1).ready();
  ASSERT_TRUE(rd.hard_state);
  EXPECT_EQ(rd.hard_state->term, old_term + 1);
  for (const Message& m : rd.messages) {
    EXPECT_NE(m.term, old_term + 1) << to_string(m.type) << " to " << m.to << " left before its term was durable";
    c.queue().push_back(m);
  }
  c.crash(1);
  c.deliver_all();

  c.restart(1);
  EXPECT_EQ(c.raft(1).term(), old_term);
  ASSERT_TRUE(c.elect(1));
  EXPECT_EQ(c.raft(1).term(), old_term + 1);
  ASSERT_TRUE(c.propose(1, "y").ok());
  c.deliver_all();
  c.tick(1, kHeartbeat);
  c.deliver_all();
  EXPECT_EQ(log_terms(c.raft(3).log()), log_terms(c.raft(1).log()));
  EXPECT_EQ(c.node(3).state, std::vector<std::string>{"y"});
  EXPECT_EQ(c.node(3).state, c.node(1).state);
}

}  // namespace
}  // namespace raftfl::raft::test
