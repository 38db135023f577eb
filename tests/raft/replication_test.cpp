// Log replication (paper section 5.3): repairing divergent logs with fast backtracking,
// batching and per-follower flow control.
#include <gtest/gtest.h>

#include <map>

#include "test_cluster.hpp"

namespace raftfl::raft::test {
namespace {

std::vector<const Message*> appends_to(const Ready& rd, NodeId to) {
  std::vector<const Message*> out;
  for (const Message& m : rd.messages) {
    if (m.type == MessageType::kAppend && m.to == to) out.push_back(&m);
  }
  return out;
}

std::vector<std::size_t> batch_sizes(const Ready& rd, NodeId to) {
  std::vector<std::size_t> out;
  for (const Message* m : appends_to(rd, to)) out.push_back(m->entries.size());
  return out;
}

TEST(Replication, Figure7LeaderRepairsEveryDivergentFollower) {
  const std::vector<Term> leader_log = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  const std::map<NodeId, std::vector<Term>> followers = {
      {2, {1, 1, 1, 4, 4, 5, 5, 6, 6}},        // (a) misses one entry
      {3, {1, 1, 1, 4}},                       // (b) misses many
      {4, {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}},  // (c) has an extra uncommitted entry
      {5, {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}},  // (d) has extra entries of a later term
      {6, {1, 1, 1, 4, 4, 4, 4}},              // (e) misses entries and has extra ones
      {7, {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}},  // (f) led terms 2 and 3 and committed nothing
  };
  Configuration config = make_config({1, 2, 3, 4, 5, 6, 7});
  Cluster c;
  c.add_node(1, storage_with_log(config, 7, leader_log));  // it campaigns into term 8
  for (const auto& [id, log] : followers) c.add_node(id, storage_with_log(config, log.back(), log));

  // (c) and (d) refuse: their logs are longer in the same or a later term. (a), (b),
  // (e) and (f) make a majority of seven with the leader.
  ASSERT_TRUE(c.elect(1));
  EXPECT_EQ(c.raft(1).term(), 8u);

  std::vector<Term> expected = leader_log;
  expected.push_back(8);  // the new leader's no-op
  EXPECT_EQ(log_terms(c.raft(1).log()), expected);
  EXPECT_EQ(c.raft(1).log().committed(), 11u);
  // Followers still being probed when entry 11 committed learn it from the next heartbeat.
  c.tick(1, kHeartbeat);
  c.deliver_all();
  std::size_t total_rejections = 0;
  for (const auto& [id, log] : followers) {
    EXPECT_EQ(log_terms(c.raft(id).log()), expected) << "follower " << id;
    std::vector<Term> stored;
    for (const Entry& e : c.node(id).storage.entries) stored.push_back(e.term);
    EXPECT_EQ(stored, expected) << "follower " << id << " storage";
    EXPECT_EQ(c.raft(id).log().committed(), 11u) << "follower " << id;

    std::size_t rejections = c.count_sent([id = id](const Message& m) {
      return m.type == MessageType::kAppendResp && m.from == id && m.reject;
    });
    // The term hints skip a whole term per round trip. Backing up one entry at a time
    // would cost (b) 6 rejections, (e) 5 and (f) 7.
    EXPECT_LE(rejections, 2u) << "follower " << id;
    total_rejections += rejections;
  }
  EXPECT_LE(total_rejections, 6u);  // one entry at a time: 19
}

TEST(Replication, ProposalsBeforeOneReadyTravelInOneAppendPerFollower) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.propose(1, "p" + std::to_string(i)).ok());

  Ready rd = c.process_ready(1);
  EXPECT_EQ(rd.entries.size(), 10u);
  for (NodeId f : {2, 3}) {
    auto appends = appends_to(rd, f);
    ASSERT_EQ(appends.size(), 1u) << f;
    EXPECT_EQ(appends[0]->index, 1u);
    ASSERT_EQ(appends[0]->entries.size(), 10u);
    EXPECT_EQ(appends[0]->entries.front().index, 2u);
    EXPECT_EQ(appends[0]->entries.back().index, 11u);
  }
  c.deliver_all();
  for (NodeId id : {1, 2, 3}) EXPECT_EQ(c.node(id).applied, 11u) << id;
}

TEST(Replication, BatchesAreSplitByTheEntryLimit) {
  Options o;
  o.max_entries_per_message = 4;
  Cluster c(make_config({1, 2, 3}), o);
  ASSERT_TRUE(c.elect(1));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.propose(1, "p").ok());
  Ready rd = c.process_ready(1);
  for (NodeId f : {2, 3}) EXPECT_EQ(batch_sizes(rd, f), (std::vector<std::size_t>{4, 4, 2})) << f;
  c.deliver_all();
  EXPECT_EQ(c.raft(3).log().committed(), 11u);
}

TEST(Replication, BatchesAreSplitByTheByteLimit) {
  Options o;
  o.max_bytes_per_message = 250;
  Cluster c(make_config({1, 2, 3}), o);
  ASSERT_TRUE(c.elect(1));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.propose(1, std::string(100, 'x')).ok());
  Ready rd = c.process_ready(1);
  for (NodeId f : {2, 3}) EXPECT_EQ(batch_sizes(rd, f), (std::vector<std::size_t>{2, 2, 2, 2, 2})) << f;
  c.deliver_all();
  EXPECT_EQ(c.raft(3).log().committed(), 11u);
}

TEST(Replication, InflightLimitPausesAFollowerUntilAcknowledgementsArrive) {
  Options o;
  o.max_inflight_messages = 2;
  o.max_entries_per_message = 1;
  Cluster c(make_config({1, 2, 3}), o);
  ASSERT_TRUE(c.elect(1));
  ASSERT_EQ(c.raft(1).progress(2)->state, ProgressState::kReplicate);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.propose(1, "p" + std::to_string(i)).ok());  // entries 2..6

  Ready rd = c.process_ready(1);
  auto appends = appends_to(rd, 2);
  ASSERT_EQ(appends.size(), 2u);
  EXPECT_EQ(appends[0]->entries.at(0).index, 2u);
  EXPECT_EQ(appends[1]->entries.at(0).index, 3u);
  EXPECT_EQ(c.raft(1).progress(2)->inflights.count(), 2u);
  EXPECT_TRUE(c.raft(1).progress(2)->paused());

  // More proposals do not open a full window.
  ASSERT_TRUE(c.propose(1, "p5").ok());
  rd = c.process_ready(1);
  EXPECT_TRUE(appends_to(rd, 2).empty());

  // One acknowledgement frees one slot: exactly one more message goes out.
  c.deliver_if([](const Message& m) {
    return m.type == MessageType::kAppend && m.to == 2 && m.entries.at(0).index == 2;
  });
  c.process_ready(2);
  c.deliver_if(is(MessageType::kAppendResp, 2, 1));
  rd = c.process_ready(1);
  appends = appends_to(rd, 2);
  ASSERT_EQ(appends.size(), 1u);
  EXPECT_EQ(appends[0]->entries.at(0).index, 4u);
  EXPECT_EQ(c.raft(1).progress(2)->match, 2u);
  EXPECT_TRUE(c.raft(1).progress(2)->paused());

  c.deliver_all();
  c.tick(1, kHeartbeat);  // 3 was paused when the last entry committed
  c.deliver_all();
  for (NodeId id : {1, 2, 3}) EXPECT_EQ(c.node(id).applied, 7u) << id;
}


// A follower's disk lost the tail of its log after it had acknowledged it (a truncated or
// deleted WAL segment). The leader's `match` for it is then a promise the follower no
// longer keeps: unless the leader forgets it, every rejection looks stale and the gap is
// never resent.
TEST(Replication, FollowerThatLostAcknowledgedEntriesIsRepairedByTheLeader) {
  Cluster c(make_config({1, 2, 3}));
  ASSERT_TRUE(c.elect(1));
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(c.propose(1, "e" + std::to_string(i)).ok());
  c.deliver_all();
  ASSERT_EQ(c.raft(1).progress(3)->match, 9u);

  c.crash(3);
  c.node(3).storage.entries.resize(4);  // entries 5..9 are gone; its hard state still says 9
  c.restart(3);
  EXPECT_EQ(c.raft(3).log().last_index(), 4u);
  EXPECT_EQ(c.raft(3).log().committed(), 4u) << "a commit index that claims entries the log lost";

  ASSERT_TRUE(c.propose(1, "after").ok());
  c.deliver_all();
  for (int i = 0; i < 3; ++i) {
    c.tick(1, kHeartbeat);
    c.deliver_all();
  }
  EXPECT_EQ(log_terms(c.raft(3).log()), log_terms(c.raft(1).log()));
  EXPECT_EQ(c.raft(3).log().committed(), c.raft(1).log().committed());
  EXPECT_EQ(c.node(3).state, c.node(1).state);
  EXPECT_EQ(c.raft(1).progress(3)->match, c.raft(1).log().last_index());
}

}  // namespace
}  // namespace raftfl::raft::test
