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

}  // namespace
}  // namespace raftfl::raft::test
