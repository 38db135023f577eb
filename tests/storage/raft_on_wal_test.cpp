// The engine and the write-ahead log together: nodes whose every Ready goes through
// WalStorage are killed and restarted from their data directories mid-run, leader too,
// and the cluster still applies every acknowledged entry exactly once, in one order.
#include <gtest/gtest.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <random>

#include "raftfl/storage/wal_storage.hpp"

namespace raftfl::storage {
namespace {

namespace fs = std::filesystem;
using raft::Message;
using raft::NodeId;

class DiskCluster {
 public:
  DiskCluster(fs::path root, int size) : root_(std::move(root)) {
    for (int i = 1; i <= size; ++i) config_.voters.push_back(static_cast<NodeId>(i));
    for (NodeId id : config_.voters) start(id);
  }

  // Opens the node's data directory; a new one is bootstrapped with the configuration.
  void start(NodeId id) {
    Node& n = nodes_[id];
    n.disk = std::make_unique<WalStorage>(root_ / std::to_string(id), WalStorage::Options{8192});
    if (!n.disk->load().snapshot) {
      auto boot = std::make_shared<raft::Snapshot>();
      boot->meta.config = config_;
      n.disk->save(boot, {}, nullptr);
    }
    raft::Options o;
    o.id = id;
    o.seed = 11;
    n.raft = std::make_unique<raft::Raft>(o, n.disk->load());
    n.applied.clear();  // rebuilt by replaying the committed log
  }

  void kill(NodeId id) {
    nodes_[id].raft.reset();
    nodes_[id].disk.reset();
  }

  bool up(NodeId id) { return nodes_[id].raft != nullptr; }
  raft::Raft& raft(NodeId id) { return *nodes_[id].raft; }
  const std::vector<std::string>& applied(NodeId id) { return nodes_[id].applied; }

  NodeId leader() {
    for (auto& [id, n] : nodes_) {
      if (n.raft && n.raft->role() == raft::Role::kLeader) return id;
    }
    return raft::kNoNode;
  }

  // Runs Readies through the disk and delivers messages until everything is quiet.
  void settle() {
    for (int round = 0; round < 10000; ++round) {
      bool busy = false;
      for (auto& [id, n] : nodes_) {
        while (n.raft && n.raft->has_ready()) {
          busy = true;
          raft::Ready rd = n.raft->ready();
          for (Message& m : rd.messages) inbox_.push_back(std::move(m));
          n.disk->save(rd.snapshot, rd.entries, rd.hard_state ? &*rd.hard_state : nullptr);
          for (Message& m : rd.messages_after_persist) inbox_.push_back(std::move(m));
          for (const raft::Entry& e : rd.committed_entries) {
            if (e.type == raft::EntryType::kNormal) n.applied.emplace_back(e.data.view());
          }
          n.raft->advance(rd);
        }
      }
      std::deque<Message> batch;
      batch.swap(inbox_);
      for (const Message& m : batch) {
        if (up(m.to)) nodes_[m.to].raft->step(m);
        busy = true;
      }
      if (!busy) return;
    }
    FAIL() << "the cluster never went quiet";
  }

  void tick_all(int ticks) {
    for (int t = 0; t < ticks; ++t) {
      for (auto& [id, n] : nodes_) {
        if (n.raft) n.raft->tick();
      }
      settle();
    }
  }

 private:
  struct Node {
    std::unique_ptr<WalStorage> disk;
    std::unique_ptr<raft::Raft> raft;
    std::vector<std::string> applied;
  };
  fs::path root_;
  raft::Configuration config_;
  std::map<NodeId, Node> nodes_;
  std::deque<Message> inbox_;
};

TEST(RaftOnWal, KilledNodesRestartFromDiskAndLoseNothingAcknowledged) {
  fs::path root = fs::temp_directory_path() / ("raftfl-raft-on-wal-" + std::to_string(::getpid()));
  fs::remove_all(root);
  DiskCluster cluster(root, 3);
  cluster.tick_all(40);
  ASSERT_NE(cluster.leader(), raft::kNoNode);

  std::mt19937_64 rng(5);
  std::vector<std::string> acknowledged;
  int next = 0;
  for (int step = 0; step < 30; ++step) {
    NodeId leader = cluster.leader();
    if (leader == raft::kNoNode) {
      cluster.tick_all(5);
      continue;
    }
    for (int i = 0; i < 5; ++i) cluster.raft(leader).propose(raft::Payload("entry-" + std::to_string(next++)));
    cluster.settle();
    // What the leader applied is acknowledged to the client.
    for (std::size_t i = acknowledged.size(); i < cluster.applied(leader).size(); ++i)
      acknowledged.push_back(cluster.applied(leader)[i]);
    if (step % 5 == 4) {
      // Kill a random node (every other time the leader) and bring it back from disk.
      NodeId victim = (step % 10 == 9) ? leader : static_cast<NodeId>(1 + rng() % 3);
      cluster.kill(victim);
      cluster.tick_all(35);  // the others notice, elect if needed, and go on
      cluster.start(victim);
      cluster.tick_all(10);
    }
  }
  cluster.tick_all(40);
  ASSERT_GE(acknowledged.size(), 100u);
  for (NodeId id : {NodeId{1}, NodeId{2}, NodeId{3}}) {
    const auto& applied = cluster.applied(id);
    // Restarted nodes re-apply from their log; each ends with the same full sequence.
    ASSERT_GE(applied.size(), acknowledged.size()) << "node " << id;
    EXPECT_TRUE(std::equal(acknowledged.begin(), acknowledged.end(), applied.begin())) << "node " << id;
    EXPECT_EQ(applied, cluster.applied(1)) << "node " << id;
  }
  fs::remove_all(root);
}

}  // namespace
}  // namespace raftfl::storage
