// Multi-process tests: real `raftfl node` processes on loopback, killed with real signals.
// Every wait is bounded; a failure leaves the node logs in the test's directory.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "admin_client.hpp"
#include "cluster_test_support.hpp"
#include "local_cluster.hpp"

namespace raftfl::app {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

fs::path test_dir() { return testing::test_dir("raftfl-cluster"); }
using testing::log_of;

LocalClusterOptions options(int nodes, node::TransportKind transport = node::TransportKind::kTcp) {
  LocalClusterOptions o;
  o.nodes = nodes;
  o.dir = test_dir();
  o.binary = RAFTFL_BINARY;
  o.transport = transport;
  o.storage = node::StorageKind::kDisk;
  return o;
}

using testing::converged;
using testing::get;
using testing::put;

class ClusterTest : public ::testing::TestWithParam<node::TransportKind> {};

TEST_P(ClusterTest, ThreeNodesElectALeaderAndReplicate) {
  LocalCluster c(options(3, GetParam()));
  c.start_all();
  const auto leader = c.wait_for_leader(15s);
  ASSERT_NE(leader, 0u) << log_of(c);
  ASSERT_TRUE(put(c, "alpha", "1")) << log_of(c);
  ASSERT_TRUE(converged(c)) << log_of(c);
  for (std::uint64_t id = 1; id <= 3; ++id) EXPECT_EQ(get(c, id, "alpha"), "1") << "node " << id;
}

INSTANTIATE_TEST_SUITE_P(Transports, ClusterTest,
                         ::testing::Values(node::TransportKind::kTcp, node::TransportKind::kZmq),
                         [](const auto& param_info) { return param_info.param == node::TransportKind::kTcp ? "tcp" : "zmq"; });

TEST(Cluster, FiveNodesElectALeaderAndSurviveTwoLosses) {
  LocalCluster c(options(5));
  c.start_all();
  const auto leader = c.wait_for_leader(15s);
  ASSERT_NE(leader, 0u) << log_of(c);
  ASSERT_TRUE(put(c, "k1", "v1")) << log_of(c);
  // Two of five down, the leader among them: the other three still commit.
  c.kill(leader, SIGKILL);
  c.kill(leader % 5 + 1, SIGKILL);
  ASSERT_TRUE(put(c, "k2", "v2", 15s)) << log_of(c);
  ASSERT_TRUE(converged(c)) << log_of(c);
}

// The client oracle: writers keep proposals in flight while a node is killed with
// SIGKILL and later restarted; every write the cluster acknowledged must be present, with
// its value, on every node afterwards.
void kill_during_writes(bool kill_leader) {
  auto o = options(3);
  o.snapshot_every = 100;  // compaction and snapshots happen during the test too
  LocalCluster c(o);
  c.start_all();
  ASSERT_NE(c.wait_for_leader(15s), 0u) << log_of(c);
  std::mutex mutex;
  std::map<std::string, std::string> acknowledged;
  std::atomic<bool> writing{true};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; writing; ++i) {
        const std::string key = "w" + std::to_string(w) + "k" + std::to_string(i);
        const std::string value = "v" + std::to_string(i * 7 + w);
        if (put(c, key, value, 5s)) {
          std::lock_guard lock(mutex);
          acknowledged[key] = value;
        }
      }
    });
  }
  std::this_thread::sleep_for(500ms);
  const auto leader = c.wait_for_leader(10s);
  const auto victim = kill_leader ? leader : leader % 3 + 1;
  std::size_t before_kill = 0;
  {
    std::lock_guard lock(mutex);
    before_kill = acknowledged.size();
  }
  c.kill(victim, SIGKILL);
  std::this_thread::sleep_for(1000ms);
  c.start(victim);
  std::this_thread::sleep_for(1000ms);
  writing = false;
  for (auto& t : writers) t.join();
  ASSERT_NE(leader, 0u);
  ASSERT_GT(before_kill, 20u) << "too few writes before the kill to mean anything\n" << log_of(c);
  ASSERT_GT(acknowledged.size(), before_kill + 20) << "too few writes after the kill\n" << log_of(c);
  ASSERT_NE(c.wait_for_leader(15s), 0u) << log_of(c);
  ASSERT_TRUE(converged(c, 30s)) << log_of(c);
  for (std::uint64_t id = 1; id <= 3; ++id) {
    for (const auto& [key, value] : acknowledged) ASSERT_EQ(get(c, id, key), value) << "node " << id << " lost " << key;
  }
}

TEST(Cluster, KillingTheLeaderDuringWritesLosesNoAcknowledgedWrite) { kill_during_writes(true); }
TEST(Cluster, KillingAFollowerDuringWritesLosesNoAcknowledgedWrite) { kill_during_writes(false); }

// Starts the cluster, kills a follower and writes 120 keys ("k<i>" = value_prefix + i)
// until the leader has compacted its log past where the follower stopped.
void leave_a_follower_behind_the_compaction_point(LocalCluster& c, const std::string& value_prefix,
                                                  std::uint64_t* lagging, nlohmann::json* leader_status) {
  c.start_all();
  const auto leader = c.wait_for_leader(15s);
  ASSERT_NE(leader, 0u) << log_of(c);
  *lagging = leader % 3 + 1;
  c.kill(*lagging, SIGKILL);
  for (int i = 0; i < 120; ++i)
    ASSERT_TRUE(put(c, "k" + std::to_string(i), value_prefix + std::to_string(i))) << log_of(c);
  const auto status = c.status(c.wait_for_leader(10s));
  ASSERT_TRUE(status);
  ASSERT_GT(status->at("snapshot_index").get<std::uint64_t>(), 60u) << "the leader did not compact";
  *leader_status = *status;
}

TEST(Cluster, ARestartedNodeBehindTheCompactionPointCatchesUpFromASnapshot) {
  auto o = options(3);
  o.snapshot_every = 20;
  LocalCluster c(o);
  std::uint64_t lagging = 0;
  nlohmann::json leader_status;
  ASSERT_NO_FATAL_FAILURE(leave_a_follower_behind_the_compaction_point(c, "", &lagging, &leader_status));
  c.start(lagging);
  ASSERT_TRUE(converged(c, 30s)) << log_of(c);
  const auto s = c.status(lagging);
  ASSERT_TRUE(s);
  // The node could not have replayed entries the leader no longer holds: it installed a
  // snapshot, and has every key.
  EXPECT_GE(s->at("snapshot_index").get<std::uint64_t>(), leader_status.at("snapshot_index").get<std::uint64_t>());
  for (int i = 0; i < 120; ++i) EXPECT_EQ(get(c, lagging, "k" + std::to_string(i)), std::to_string(i));
}

// The state outgrows network.max_frame_bytes (64 KiB here, the state about 1 MiB), so
// the snapshot can only travel in pieces; the catching-up node is killed half-way and
// restarted, and must go on from the bytes its data directory kept, not from zero.
TEST(Cluster, ASnapshotLargerThanTheFrameLimitIsStreamedAndResumedAfterTheReceiverIsKilled) {
  auto o = options(3);
  o.snapshot_every = 20;
  o.customize = [](node::NodeConfig& n) {
    n.max_frame_bytes = 64 << 10;
    n.max_bytes_per_message = 32 << 10;
    n.snapshot_chunk_bytes = 16 << 10;
    n.snapshot_bytes_per_second = 256 << 10;  // about 4 s for the whole, so that the kill lands half-way
  };
  LocalCluster c(o);
  const std::string value(8 << 10, 'v');
  std::uint64_t lagging = 0;
  nlohmann::json leader_status;
  ASSERT_NO_FATAL_FAILURE(leave_a_follower_behind_the_compaction_point(c, value, &lagging, &leader_status));

  c.start(lagging);
  std::uint64_t held = 0;
  std::uint64_t total = 0;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto s = c.status(lagging);
        if (!s || !s->at("snapshot_transfers").contains("incoming")) return false;
        held = s->at("snapshot_transfers").at("incoming").at("held_bytes").get<std::uint64_t>();
        total = s->at("snapshot_transfers").at("incoming").at("total_bytes").get<std::uint64_t>();
        return held >= total / 4;
      },
      30s))
      << log_of(c);
  ASSERT_GT(total, 8u * (64 << 10)) << "the snapshot is not larger than the frame limit";
  ASSERT_LT(held, total) << "the transfer ended before the kill";
  c.kill(lagging, SIGKILL);
  c.start(lagging);
  ASSERT_TRUE(converged(c, 40s)) << log_of(c);

  const auto s = c.status(lagging);
  ASSERT_TRUE(s);
  const auto& received = s->at("snapshot_transfers");
  EXPECT_GE(received.at("received").get<std::uint64_t>(), 1u);
  // At least once: a slow (sanitized) run may stall again after the restart and be asked
  // once more, which also resumes.
  EXPECT_GE(received.at("receive_resumed").get<std::uint64_t>(), 1u) << "the restarted node did not resume";
  EXPECT_EQ(received.at("damaged").get<std::uint64_t>(), 0u);
  // The restarted process took only what the killed one had not: the bytes before the
  // kill stayed in its data directory.
  EXPECT_LE(received.at("bytes_received").get<std::uint64_t>(), total - held) << log_of(c);
  const auto sender = c.status(c.wait_for_leader(10s));
  ASSERT_TRUE(sender);
  // Every piece fits a frame: the whole took at least total / chunk of them.
  EXPECT_GE(sender->at("snapshot_transfers").at("chunks_sent").get<std::uint64_t>(), total / (16 << 10));
  for (int i = 0; i < 120; i += 7) EXPECT_EQ(get(c, lagging, "k" + std::to_string(i)), value + std::to_string(i));
}

// A follower's newest WAL segment is damaged while it is down, after it acknowledged the
// writes in it. Recovery cuts what it cannot read; the follower must then either be
// repaired by the leader (its state ends identical to the others') or refuse to start
// because its log is gone, never run diverged.
enum class WalDamage { kTruncate, kFlipLastRecord, kDeleteSegment };

class WalDamageTest : public ::testing::TestWithParam<WalDamage> {};

TEST_P(WalDamageTest, FollowerIsRepairedOrRefusesNeverDiverges) {
  LocalCluster c(options(3));
  c.start_all();
  const auto leader = c.wait_for_leader(15s);
  ASSERT_NE(leader, 0u) << log_of(c);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(put(c, "before" + std::to_string(i), std::to_string(i))) << log_of(c);
  ASSERT_TRUE(converged(c)) << log_of(c);

  const std::uint64_t victim = leader % 3 + 1;
  c.kill(victim, SIGTERM);
  ASSERT_TRUE(c.wait_exit(victim, 10s));
  fs::path newest;
  for (const auto& e : fs::directory_iterator(c.config(victim).data_dir / "wal"))
    if (e.path().extension() == ".wal" && e.path() > newest) newest = e.path();
  ASSERT_FALSE(newest.empty());
  const auto size = fs::file_size(newest);
  ASSERT_GT(size, 4096u);
  std::mt19937_64 rng(static_cast<std::uint64_t>(::getpid()));
  switch (GetParam()) {
    case WalDamage::kTruncate:
      fs::resize_file(newest, size / 2 + rng() % (size / 2));
      break;
    case WalDamage::kFlipLastRecord: {
      std::fstream f(newest, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(static_cast<std::streamoff>(size - 5));
      const char byte = static_cast<char>(f.get() ^ 0x5a);
      f.seekp(static_cast<std::streamoff>(size - 5));
      f.put(byte);
      break;
    }
    case WalDamage::kDeleteSegment:
      fs::remove(newest);
      break;
  }
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(put(c, "during" + std::to_string(i), std::to_string(i))) << log_of(c);

  c.start(victim);
  if (GetParam() == WalDamage::kDeleteSegment) {
    // Nothing of the log is left to start from: refused, by design (docs/ARCHITECTURE.md).
    const auto status = c.wait_exit(victim, 15s);
    ASSERT_TRUE(status) << "a node without its log started\n" << log_of(c);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1);
    std::ifstream in(c.log_file(victim));
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("was lost"), std::string::npos) << text;
    return;
  }
  ASSERT_TRUE(put(c, "after", "1")) << log_of(c);
  ASSERT_TRUE(converged(c, 20s)) << "the damaged follower never caught up\n" << log_of(c);
  for (const char* key : {"before0", "before199", "during49", "after"}) EXPECT_TRUE(get(c, victim, key)) << key;
}

INSTANTIATE_TEST_SUITE_P(Cluster, WalDamageTest,
                         ::testing::Values(WalDamage::kTruncate, WalDamage::kFlipLastRecord, WalDamage::kDeleteSegment),
                         [](const auto& param_info) {
                           switch (param_info.param) {
                             case WalDamage::kTruncate: return "truncated";
                             case WalDamage::kFlipLastRecord: return "last_record_flipped";
                             case WalDamage::kDeleteSegment: break;
                           }
                           return "segment_deleted";
                         });

TEST(Cluster, SigtermStopsCleanlyAndARestartKeepsTheData) {
  LocalCluster c(options(3));
  c.start_all();
  ASSERT_NE(c.wait_for_leader(15s), 0u) << log_of(c);
  ASSERT_TRUE(put(c, "durable", "yes")) << log_of(c);
  for (std::uint64_t id = 1; id <= 3; ++id) c.kill(id, SIGTERM);
  for (std::uint64_t id = 1; id <= 3; ++id) {
    const auto status = c.wait_exit(id, 10s);
    ASSERT_TRUE(status) << "node " << id << " did not stop within 10 s\n" << log_of(c);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "node " << id << " status " << *status;
  }
  c.start_all();
  ASSERT_NE(c.wait_for_leader(15s), 0u) << log_of(c);
  ASSERT_TRUE(converged(c)) << log_of(c);
  for (std::uint64_t id = 1; id <= 3; ++id) EXPECT_EQ(get(c, id, "durable"), "yes");
}

TEST(Cluster, ABadConfigurationExitsWithCode2AndNamesTheKey) {
  const auto dir = test_dir();
  std::ofstream(dir / "bad.toml") << "[node]\nid = 1\n[network]\nlisten = \"127.0.0.1:1\"\nadmin = \"127.0.0.1:2\"\nlisen = 3\n"
                                     "[storage]\nkind = \"memory\"\n";
  const std::string cmd = std::string(RAFTFL_BINARY) + " node --config " + (dir / "bad.toml").string() + " 2>" +
                          (dir / "err.txt").string();
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  std::ifstream in(dir / "err.txt");
  std::string err((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(err.find("network.lisen"), std::string::npos) << err;
  EXPECT_NE(err.find("unknown key"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

}  // namespace
}  // namespace raftfl::app
