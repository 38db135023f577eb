// Snapshots and log compaction (paper section 7).
#include <gtest/gtest.h>

#include "test_cluster.hpp"

namespace raftfl::raft::test {
namespace {

std::vector<std::string> numbered(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i <= to; ++i) out.push_back("e" + std::to_string(i));
  return out;
}

TEST(Snapshot, FollowerBehindTheCompactionPointCatchesUpThroughASnapshot) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  c.isolate(3);
  for (const std::string& e : numbered(1, 10)) ASSERT_TRUE(c.propose(1, e).ok());
  c.deliver_all();
  ASSERT_EQ(c.node(1).applied, 11u);

  ASSERT_TRUE(c.compact(1));
  EXPECT_EQ(c.raft(1).log().snapshot_index(), 11u);
  EXPECT_EQ(c.raft(1).log().first_index(), 12u);
  EXPECT_TRUE(c.node(1).storage.entries.empty());
  // Entries after the snapshot point that 3 will need from the log.
  for (const std::string& e : numbered(11, 12)) ASSERT_TRUE(c.propose(1, e).ok());
  c.deliver_all();
  ASSERT_EQ(c.raft(1).log().committed(), 13u);
  ASSERT_EQ(c.raft(3).log().last_index(), 1u);

  c.heal();
  c.tick(1, kHeartbeat);  // the heartbeat answer reveals how far behind 3 is
  c.deliver_all();

  EXPECT_EQ(c.count_sent(is(MessageType::kSnapshot, 1, 3)), 1u);
  EXPECT_EQ(c.count_sent(is(MessageType::kSnapshot, 1, 2)), 0u);
  ASSERT_TRUE(c.node(3).storage.snapshot);
  EXPECT_EQ(c.node(3).storage.snapshot->meta.index, 11u);
  EXPECT_EQ(c.node(3).storage.snapshot->meta.term, 1u);
  EXPECT_EQ(c.raft(3).log().snapshot_index(), 11u);
  ASSERT_EQ(c.node(3).storage.entries.size(), 2u);
  EXPECT_EQ(c.node(3).storage.entries.front().index, 12u);
  EXPECT_EQ(c.raft(3).log().last_index(), 13u);
  EXPECT_EQ(c.raft(3).log().committed(), 13u);
  EXPECT_EQ(c.node(3).applied, 13u);
  EXPECT_EQ(c.node(3).state, numbered(1, 12));
  EXPECT_EQ(c.raft(1).progress(3)->state, ProgressState::kReplicate);
  EXPECT_EQ(c.raft(1).progress(3)->match, 13u);
}

TEST(Snapshot, FollowerThatStillHoldsTheEntriesGetsNoSnapshot) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  for (const std::string& e : numbered(1, 5)) ASSERT_TRUE(c.propose(1, e).ok());
  c.deliver_all();
  ASSERT_TRUE(c.compact(1));
  ASSERT_TRUE(c.propose(1, "e6").ok());
  c.deliver_all();
  EXPECT_EQ(c.count_sent(is(MessageType::kSnapshot)), 0u);
  for (NodeId id : {2, 3}) EXPECT_EQ(c.node(id).state, numbered(1, 6)) << id;
}

TEST(Snapshot, RestartFromACompactedLogRebuildsTheStateMachine) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  for (const std::string& e : numbered(1, 4)) ASSERT_TRUE(c.propose(1, e).ok());
  c.deliver_all();
  ASSERT_TRUE(c.compact(2));
  ASSERT_TRUE(c.propose(1, "e5").ok());
  c.deliver_all();

  c.crash(2);
  c.restart(2);
  EXPECT_EQ(c.raft(2).log().snapshot_index(), 5u);
  EXPECT_EQ(c.raft(2).log().last_index(), 6u);
  EXPECT_EQ(c.node(2).state, numbered(1, 4));  // the snapshot alone
  c.process_all();
  EXPECT_EQ(c.node(2).state, numbered(1, 5));  // then the committed entry after it
}


// Voters 1, 2 and 3 after a term-2 leader (node 3) appended entries 3..5 that nobody else
// has; `tail` is what it put there. Nodes 1 and 2 hold the committed entries 1 and 2, and
// node 1 has compacted them into a snapshot at (2, 1).
Cluster cluster_with_conflicting_tail(std::vector<Entry> tail) {
  Cluster c;
  const Configuration config = make_config({1, 2, 3});
  for (NodeId id : {1, 2}) {
    Storage s = storage_with_log(config, 2, {1, 1});
    s.hard_state.commit = 2;
    c.add_node(id, s);
  }
  Storage s3 = storage_with_log(config, 2, {1, 1});
  for (Entry& e : tail) s3.entries.push_back(std::move(e));
  c.add_node(3, s3);
  c.process_all();
  EXPECT_TRUE(c.compact(1));
  EXPECT_EQ(c.raft(1).snapshot()->meta.index, 2u);
  return c;
}

// Elects 1 in term 3 without 3 and commits "a" and "b" after its no-op, then hands 3 a
// delayed copy of 1's snapshot at (2, 1), which 3 already holds along with its own tail.
void deliver_matching_snapshot_over_conflicting_tail(Cluster& c) {
  c.isolate(3);
  ASSERT_TRUE(c.elect(1));
  ASSERT_TRUE(c.propose(1, "a").ok());
  ASSERT_TRUE(c.propose(1, "b").ok());
  c.deliver_all();
  ASSERT_EQ(c.raft(1).log().committed(), 5u);
  ASSERT_EQ(c.raft(1).term(), 3u);
  c.heal();

  Message snap;
  snap.type = MessageType::kSnapshot;
  snap.from = 1;
  snap.to = 3;
  snap.term = c.raft(1).term();
  snap.snapshot = c.raft(1).snapshot();
  c.queue().push_front(snap);
  ASSERT_TRUE(c.deliver_one());
  Ready rd = c.process_ready(3);
  // The snapshot proves index 2 and nothing after it.
  bool acked = false;
  for (const Message& m : rd.messages_after_persist) {
    if (m.type != MessageType::kAppendResp || m.to != 1) continue;
    acked = true;
    EXPECT_FALSE(m.reject);
    EXPECT_EQ(m.index, 2u) << "acknowledged entries the snapshot never checked";
  }
  EXPECT_TRUE(acked);
}

TEST(Snapshot, MatchingSnapshotOverALongerConflictingLogAcknowledgesOnlyItsIndex) {
  Cluster c = cluster_with_conflicting_tail(
      {Entry{2, 3, EntryType::kNormal, Payload("x3")}, Entry{2, 4, EntryType::kNormal, Payload("x4")},
       Entry{2, 5, EntryType::kNormal, Payload("x5")}});
  deliver_matching_snapshot_over_conflicting_tail(c);
  ASSERT_EQ(c.deliver_if(is(MessageType::kAppendResp, 3, 1)), 1u);
  EXPECT_EQ(c.raft(1).progress(3)->match, 2u);
  c.deliver_all();
  c.tick(1, kHeartbeat);
  c.deliver_all();

  EXPECT_EQ(log_terms(c.raft(3).log()), (std::vector<Term>{1, 1, 3, 3, 3}));
  // Had the leader believed 3 held its entries 3..5, it would have told 3 to commit its
  // own term-2 entries there: a different state machine.
  for (NodeId id : {2, 3}) EXPECT_EQ(c.node(id).state, c.node(1).state) << id;
  EXPECT_EQ(c.node(3).state, (std::vector<std::string>{"1.1", "1.2", "a", "b"}));
}

TEST(Snapshot, MembershipEntryInTheConflictingTailIsRolledBackWhenTheLeaderReplacesIt) {
  // The term-2 leader had proposed removing node 2; that entry never committed.
  Cluster c = cluster_with_conflicting_tail(
      {Entry{2, 3, EntryType::kConfChange, Payload(encode_conf_change({ConfChangeType::kRemoveNode, 2, {}}))},
       Entry{2, 4, EntryType::kNormal, Payload("x4")}});
  ASSERT_EQ(c.raft(3).config(), make_config({1, 3}));
  deliver_matching_snapshot_over_conflicting_tail(c);
  c.deliver_all();
  c.tick(1, kHeartbeat);
  c.deliver_all();

  EXPECT_EQ(c.raft(3).config(), make_config({1, 2, 3}));
  EXPECT_EQ(log_terms(c.raft(3).log()), (std::vector<Term>{1, 1, 3, 3, 3}));
  EXPECT_EQ(c.node(3).state, c.node(1).state);
}

}  // namespace
}  // namespace raftfl::raft::test
