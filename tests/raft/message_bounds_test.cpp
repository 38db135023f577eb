// Messages no correct peer sends (a forged or damaged term, indexes near 2^64, entries out
// of order) are dropped before they touch the engine's state; the same messages within
// bounds are taken.
#include <gtest/gtest.h>

#include <limits>

#include "raftfl/raft/message_bounds.hpp"
#include "test_cluster.hpp"

namespace raftfl::raft::test {
namespace {

constexpr Term kTermMax = std::numeric_limits<Term>::max();

Message heartbeat(NodeId from, NodeId to, Term term) {
  Message m;
  m.type = MessageType::kHeartbeat;
  m.from = from;
  m.to = to;
  m.term = term;
  return m;
}

Message append(NodeId from, NodeId to, Term term, Index prev, Term prev_term, std::vector<Term> entry_terms) {
  Message m;
  m.type = MessageType::kAppend;
  m.from = from;
  m.to = to;
  m.term = term;
  m.index = prev;
  m.log_term = prev_term;
  Index index = prev;
  for (Term t : entry_terms) m.entries.push_back({t, ++index, EntryType::kNormal, Payload(std::string("x"))});
  return m;
}

// A three-node cluster with 1 leading in term 1 and one entry committed.
Cluster settled() {
  Cluster c(make_config({1, 2, 3}));
  EXPECT_TRUE(c.elect(1));
  c.propose(1, "a");
  c.deliver_all();
  return c;
}

TEST(MessageBounds, TermsOf2To63And2To64Minus1AreDroppedAndChangeNothing) {
  Cluster c = settled();
  const Term before = c.raft(2).term();
  for (Term forged : {Term{1} << 63, kTermMax, kTermMax - 1}) {
    c.raft(2).step(heartbeat(3, 2, forged));
    EXPECT_EQ(c.raft(2).term(), before) << forged;
    EXPECT_EQ(c.raft(2).leader(), 1u) << forged;
  }
  EXPECT_EQ(c.raft(2).dropped_messages(), 3u);
  // A vote request too: no vote is granted, no term taken.
  Message vote = heartbeat(3, 2, kTermMax);
  vote.type = MessageType::kVote;
  c.tick(2, kMaxTimeout);  // out of the leader lease, so that only the bound stops it
  c.raft(2).step(vote);
  EXPECT_EQ(c.raft(2).term(), before);
  EXPECT_EQ(c.raft(2).vote(), 1u);
  // The cluster goes on as if nothing came.
  c.deliver_all();
  ASSERT_TRUE(c.propose(1, "b").ok());
  c.deliver_all();
  EXPECT_EQ(c.raft(2).log().committed(), c.raft(1).log().committed());
}

TEST(MessageBounds, ATermMaxTermAheadPastOursIsTakenOneMoreIsNot) {
  Options o;
  o.max_term_ahead = 1000;
  Cluster c(make_config({1, 2, 3}), o);
  ASSERT_TRUE(c.elect(1));
  const Term term = c.raft(2).term();
  c.raft(2).step(heartbeat(3, 2, term + 1001));
  EXPECT_EQ(c.raft(2).term(), term);
  EXPECT_EQ(c.raft(2).dropped_messages(), 1u);
  c.raft(2).step(heartbeat(3, 2, term + 1000));
  EXPECT_EQ(c.raft(2).term(), term + 1000);
  EXPECT_EQ(c.raft(2).leader(), 3u);
  EXPECT_EQ(c.raft(2).dropped_messages(), 1u);
}

TEST(MessageBounds, IndexesNear2To64AreDroppedWithoutOverflow) {
  Cluster c = settled();
  const Term term = c.raft(1).term();
  const Index last = c.raft(2).log().last_index();
  // Entries after index 2^64 - 2: their indexes would wrap to 0.
  c.raft(2).step(append(1, 2, term, kTermMax - 1, term, {term, term}));
  Message commit = append(1, 2, term, last, term, {});
  commit.commit = kTermMax;
  c.raft(2).step(commit);
  Message hint = heartbeat(2, 1, term);
  hint.type = MessageType::kAppendResp;
  hint.reject = true;
  hint.index = last;
  hint.reject_hint = kTermMax;
  c.raft(1).step(hint);
  EXPECT_EQ(c.raft(2).dropped_messages(), 2u);
  EXPECT_EQ(c.raft(1).dropped_messages(), 1u);
  EXPECT_EQ(c.raft(2).log().last_index(), last);
  EXPECT_EQ(c.raft(2).log().committed(), c.raft(1).log().committed());
  c.raft(1).check_invariants();
  c.raft(2).check_invariants();
}

TEST(MessageBounds, EntriesThatDoNotFollowTheirIndexOrGoBackInTermAreDropped) {
  Cluster c = settled();
  const Term term = c.raft(1).term();
  const Index last = c.raft(2).log().last_index();
  Message gap = append(1, 2, term, last, term, {term});
  gap.entries[0].index = last + 2;
  c.raft(2).step(gap);
  c.raft(2).step(append(1, 2, term + 1, last, term, {term + 1, term}));
  c.raft(2).step(append(1, 2, term, last, term, {term + 1}));  // an entry from a later term
  EXPECT_EQ(c.raft(2).dropped_messages(), 3u);
  EXPECT_EQ(c.raft(2).log().last_index(), last);
  EXPECT_EQ(c.raft(2).term(), term);
  // The well-formed append is taken.
  c.raft(2).step(append(1, 2, term, last, term, {term}));
  EXPECT_EQ(c.raft(2).log().last_index(), last + 1);
}

TEST(MessageBounds, AnAcknowledgementPastTheLeadersLogIsDropped) {
  Cluster c = settled();
  const Index last = c.raft(1).log().last_index();
  const Index committed = c.raft(1).log().committed();
  Message ack = heartbeat(2, 1, c.raft(1).term());
  ack.type = MessageType::kAppendResp;
  ack.index = last + 1000;
  c.raft(1).step(ack);
  EXPECT_EQ(c.raft(1).dropped_messages(), 1u);
  EXPECT_STREQ(c.raft(1).last_drop_reason(), "acknowledges entries past the leader's log");
  EXPECT_EQ(c.raft(1).progress(2)->match, last);
  c.raft(1).check_invariants();
  // Commits still need a follower that really holds the entry.
  c.isolate(2);
  c.isolate(3);
  ASSERT_TRUE(c.propose(1, "b").ok());
  c.deliver_all();
  ack.index = last + 1;
  c.raft(1).step(ack);
  EXPECT_EQ(c.raft(1).log().committed(), committed + 1) << "the acknowledgement within the log counts";
  c.raft(1).check_invariants();
}

TEST(MessageBounds, CorrectMessagesAreInBounds) {
  // Every message a healthy cluster sends passes: an election, replication, a read, a
  // snapshot to a lagging follower.
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  for (int i = 0; i < 20; ++i) c.propose(1, "p" + std::to_string(i));
  c.deliver_all();
  ASSERT_TRUE(c.compact(1));
  c.crash(3);
  for (int i = 0; i < 5; ++i) c.propose(1, "q" + std::to_string(i));
  c.deliver_all();
  ASSERT_TRUE(c.compact(1));
  c.restart(3);
  c.raft(1).read_index(Payload(std::string("r")));
  c.tick_all(3 * kMaxTimeout);
  for (const auto& m : c.sent()) EXPECT_EQ(message_out_of_bounds(m, m.term, 1), nullptr) << to_string(m.type);
  for (NodeId id : {1, 2, 3}) EXPECT_EQ(c.raft(id).dropped_messages(), 0u) << id;
  EXPECT_EQ(c.raft(3).log().committed(), c.raft(1).log().committed());
}

}  // namespace
}  // namespace raftfl::raft::test
