// Commitment (paper section 5.4.2, Figure 8): a leader never commits an entry of an
// earlier term by counting replicas; such entries commit only under an entry of its own term.
#include <gtest/gtest.h>

#include "test_cluster.hpp"

namespace raftfl::raft::test {
namespace {

bool carries_term(const Message& m, Term t) {
  return m.type == MessageType::kAppend && !m.entries.empty() && m.entries.back().term == t;
}

// Loses exactly the messages that would put S1's term-4 entry on a follower; the probes
// that a follower rejects anyway still get through, so S1 can back up and send entry 2.
void lose_term4_entry(Cluster& c) {
  c.drop_if([&c](const Message& m) { return carries_term(m, 4) && c.raft(m.to).log().matches(m.index, m.log_term); });
}

// Figure 8 (b): S1 led term 2 and put entry 2 on S1 and S2; S5 then led term 3 and put
// a different entry 2 on itself only. All servers have seen term 3; entry 1 is committed.
// S5 is down, and S1 wins term 4 with the votes of S2, S3 and S4: Figure 8 (c).
// One entry per message lets the old entry travel without the leader's new one; the
// lease and pre-vote are off because this test is about commitment, not elections.
Cluster figure8_c() {
  Options o;
  o.pre_vote = false;
  o.check_quorum = false;
  o.max_entries_per_message = 1;
  Configuration config = make_config({1, 2, 3, 4, 5});
  Cluster c(o);
  const std::vector<std::vector<Term>> logs = {{1, 2}, {1, 2}, {1}, {1}, {1, 3}};
  for (NodeId id = 1; id <= 5; ++id) {
    Storage s = storage_with_log(config, 3, logs[id - 1]);
    s.hard_state.commit = 1;
    c.add_node(id, std::move(s));
  }
  c.crash(5);
  return c;
}

TEST(Commitment, Figure8OldTermEntryOnAMajorityIsNotCommittedByCounting) {
  Cluster c = figure8_c();
  // S1's entry of term 4 (its no-op at index 3) reaches no follower.
  lose_term4_entry(c);
  ASSERT_TRUE(c.elect(1));
  ASSERT_EQ(c.raft(1).term(), 4u);

  // Entry 2 of term 2 is now on S1, S2, S3 and S4, and S1 knows of three of them.
  for (NodeId id : {1, 2, 3, 4}) EXPECT_EQ(c.raft(id).log().term(2), 2u) << id;
  EXPECT_EQ(c.raft(1).progress(3)->match, 2u);
  EXPECT_EQ(c.raft(1).progress(4)->match, 2u);
  EXPECT_EQ(c.raft(1).log().committed(), 1u);
  EXPECT_EQ(c.node(1).state, std::vector<std::string>{"1.1"});

  // Figure 8 (d): S1 crashes, S5 comes back and wins term 5 with S2, S3 and S4
  // (its last term, 3, beats their 2) and overwrites entry 2 everywhere. Had S1
  // committed it, a committed entry would now be lost.
  c.crash(1);
  c.restart(5);
  c.clear_drop_rules();
  for (int attempt = 0; attempt < 3 && !c.elect(5); ++attempt) {
  }
  ASSERT_EQ(c.raft(5).role(), Role::kLeader);
  EXPECT_EQ(c.raft(5).term(), 5u);
  for (NodeId id : {2, 3, 4, 5}) {
    EXPECT_EQ(c.raft(id).log().term(2), 3u) << id;
    EXPECT_EQ(c.node(id).state, (std::vector<std::string>{"1.1", "3.2"})) << id;
  }
}

TEST(Commitment, Figure8OldTermEntryCommitsWithTheLeadersOwnEntry) {
  Cluster c = figure8_c();
  lose_term4_entry(c);
  ASSERT_TRUE(c.elect(1));
  ASSERT_EQ(c.raft(1).progress(3)->match, 2u);
  ASSERT_EQ(c.raft(1).log().committed(), 1u);

  // Figure 8 (e): S1's term-4 entry reaches a majority. Entry 2 commits with it, in
  // the same step, never alone.
  c.clear_drop_rules();
  c.tick(1, kHeartbeat);  // the heartbeat answers make S1 resend what was lost
  do {
    c.process_all();
    EXPECT_NE(c.raft(1).log().committed(), 2u) << "entry 2 was committed by counting replicas";
  } while (c.deliver_one());
  EXPECT_EQ(c.raft(1).log().committed(), 3u);
  EXPECT_EQ(c.node(1).state, (std::vector<std::string>{"1.1", "2.2"}));

  // Now S5 can never win: every other server holds an entry of term 4.
  c.crash(1);
  c.restart(5);
  for (int attempt = 0; attempt < 3; ++attempt) EXPECT_FALSE(c.elect(5));
  for (NodeId id : {2, 3, 4}) EXPECT_EQ(c.raft(id).log().term(2), 2u) << id;
}

}  // namespace
}  // namespace raftfl::raft::test
