// Growing a running cluster: a node that is in nobody's configuration joins through a
// follower (which sends it to the leader), is added as a learner, catches up from the
// leader's snapshot and log, follows new writes, comes back as a member after a restart
// without --join, and leaves the configuration on SIGTERM. A node that asks for an id
// another member holds is refused, and then will not start without --join. Voters that
// die are replaced by learners.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin_client.hpp"
#include "cluster_test_support.hpp"
#include "local_cluster.hpp"

namespace raftfl::app {
namespace {

using namespace std::chrono_literals;
using testing::log_of;

constexpr std::uint64_t kJoiner = 4;

// Nodes 1-3 form the cluster; node 4 is in no configuration, its own included.
LocalClusterOptions growing_cluster(node::TransportKind transport) {
  LocalClusterOptions o;
  o.nodes = 4;
  o.dir = testing::test_dir("raftfl-membership");
  o.binary = RAFTFL_BINARY;
  o.transport = transport;
  o.storage = node::StorageKind::kDisk;
  o.snapshot_every = 100;  // the joiner's catch-up starts from a compacted log
  o.customize = [](node::NodeConfig& c) {
    if (c.id == kJoiner) c.peers.clear();
    else std::erase_if(c.peers, [](const node::PeerConfig& p) { return p.id == kJoiner; });
  };
  return o;
}

nlohmann::json admin(LocalCluster& c, std::uint64_t id, const std::string& line) {
  return nlohmann::json::parse(admin_request(c.config(id).admin, line, 5s));
}

// The role of `id` in the member list of the node that answers at `asked`, or "" if absent.
std::string role_of(LocalCluster& c, std::uint64_t asked, std::uint64_t id) {
  const auto list = admin(c, asked, "member list");
  for (const auto& m : list.at("members")) {
    if (m.at("id").get<std::uint64_t>() == id) return m.at("role").get<std::string>();
  }
  return "";
}

class ClusterMembership : public ::testing::TestWithParam<node::TransportKind> {};

TEST_P(ClusterMembership, ANodeJoinsThroughAFollowerCatchesUpAndRestartsAsAMember) {
  LocalCluster c(growing_cluster(GetParam()));
  for (std::uint64_t id = 1; id <= 3; ++id) c.start(id);
  const auto leader = c.wait_for_leader(15s);
  ASSERT_NE(leader, 0u) << log_of(c);
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(testing::put(c, "before-" + std::to_string(i), "v", 10s, 3)) << log_of(c);

  const std::uint64_t follower = leader % 3 + 1;
  c.start(kJoiner, {"--join", c.config(follower).admin.to_string()});
  ASSERT_TRUE(testing::converged(c, 30s)) << "the joiner did not catch up\n" << log_of(c);
  EXPECT_EQ(role_of(c, leader, kJoiner), "learner");
  const auto list = admin(c, follower, "member list");
  EXPECT_EQ(list.at("members").size(), 4u) << list.dump();
  EXPECT_EQ(testing::get(c, kJoiner, "before-0"), "v");

  // New writes reach it; a restart without --join finds it a member.
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(testing::put(c, "after-" + std::to_string(i), "w", 10s, 3)) << log_of(c);
  ASSERT_TRUE(testing::converged(c, 20s)) << log_of(c);
  c.kill(kJoiner, SIGKILL);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(testing::put(c, "while-away-" + std::to_string(i), "x", 10s, 3)) << log_of(c);
  c.start(kJoiner);
  ASSERT_TRUE(testing::converged(c, 20s)) << "the restarted learner did not catch up\n" << log_of(c);
  EXPECT_EQ(testing::get(c, kJoiner, "while-away-49"), "x");
  // It never became a voter: three voters, three needed for nothing more than before.
  EXPECT_EQ(role_of(c, leader, kJoiner), "learner");

  // SIGTERM: a learner leaves the configuration before it exits.
  c.kill(kJoiner, SIGTERM);
  const auto status = c.wait_exit(kJoiner, 20s);
  ASSERT_TRUE(status) << "the learner did not stop\n" << log_of(c);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << testing::exit_of(*status);
  EXPECT_EQ(role_of(c, leader, kJoiner), "") << "the learner is still a member";
  EXPECT_EQ(admin(c, leader, "member list").at("members").size(), 3u);
  ASSERT_TRUE(testing::put(c, "after-leave", "y", 10s, 3)) << log_of(c);
}

// A joiner whose file names no id is given the next free one, keeps it in its data
// directory, and is that node again after a restart without --join.
TEST_P(ClusterMembership, AJoinerWithoutAnIdIsGivenOneAndKeepsIt) {
  LocalClusterOptions o = growing_cluster(GetParam());
  o.customize = [](node::NodeConfig& c) {
    if (c.id == kJoiner) c.peers.clear();
    else std::erase_if(c.peers, [](const node::PeerConfig& p) { return p.id == kJoiner; });
  };
  LocalCluster c(o);
  // The joiner's file, rewritten without its id.
  {
    std::ifstream in(c.config_file(kJoiner));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto at = text.find("\nid = 4\n");
    ASSERT_NE(at, std::string::npos) << text;
    text.erase(at, std::string("\nid = 4").size());
    std::ofstream(c.config_file(kJoiner), std::ios::trunc) << text;
  }
  for (std::uint64_t id = 1; id <= 3; ++id) c.start(id);
  const auto leader = c.wait_for_leader(15s);
  ASSERT_NE(leader, 0u) << log_of(c);
  c.start(kJoiner, {"--join", c.config(leader).admin.to_string()});
  ASSERT_TRUE(testing::converged(c, 30s)) << log_of(c);
  EXPECT_EQ(role_of(c, leader, 4), "learner") << "the next free id after 1-3 is 4";
  c.kill(kJoiner, SIGKILL);
  c.start(kJoiner);
  ASSERT_TRUE(testing::put(c, "after-restart", "z", 10s, 3)) << log_of(c);
  ASSERT_TRUE(testing::converged(c, 20s)) << log_of(c);
  EXPECT_EQ(admin(c, leader, "member list").at("members").size(), 4u) << "the restart made a second member";
}

TEST_P(ClusterMembership, AJoinerClaimingAMembersIdIsRefused) {
  LocalClusterOptions o = growing_cluster(GetParam());
  o.customize = [](node::NodeConfig& c) {
    if (c.id == kJoiner) {
      c.peers.clear();
      c.id = 2;  // node 2's id, with endpoints of its own
    } else {
      std::erase_if(c.peers, [](const node::PeerConfig& p) { return p.id == kJoiner; });
    }
  };
  LocalCluster c(o);
  for (std::uint64_t id = 1; id <= 3; ++id) c.start(id);
  const auto leader = c.wait_for_leader(15s);
  ASSERT_NE(leader, 0u) << log_of(c);
  c.start(kJoiner, {"--join", c.config(leader).admin.to_string()});
  const auto status = c.wait_exit(kJoiner, 30s);
  ASSERT_TRUE(status) << "the impostor is still running\n" << log_of(c);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << testing::exit_of(*status);
  std::ifstream in(c.log_file(kJoiner));
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(log.find("node id 2 is taken by another member"), std::string::npos) << log;
  EXPECT_EQ(admin(c, leader, "member list").at("members").size(), 3u);

  // Its data directory says it was joining: without --join it refuses to found a cluster
  // of its own.
  c.start(kJoiner);
  const auto again = c.wait_exit(kJoiner, 30s);
  ASSERT_TRUE(again) << log_of(c);
  EXPECT_TRUE(WIFEXITED(*again) && WEXITSTATUS(*again) == 2) << testing::exit_of(*again);
}

std::vector<std::uint64_t> voters_of(LocalCluster& c, std::uint64_t asked) {
  std::vector<std::uint64_t> voters;
  const auto list = admin(c, asked, "member list");  // named: a range-for would not keep it alive
  for (const auto& m : list.at("members")) {
    if (m.at("role").get<std::string>() == "voter") voters.push_back(m.at("id").get<std::uint64_t>());
  }
  return voters;
}

// Five nodes, three of them voters: the leader holds three voters while voters die for
// good, the leader among them, by promoting a learner and demoting the dead voter.
TEST_P(ClusterMembership, FailedVotersAreReplacedByLearners) {
  LocalClusterOptions o;
  o.nodes = 5;
  o.dir = testing::test_dir("raftfl-membership");
  o.binary = RAFTFL_BINARY;
  o.transport = GetParam();
  o.storage = node::StorageKind::kDisk;
  o.customize = [](node::NodeConfig& c) {
    c.failure_timeout = 1000ms;
    if (c.id > 3) c.peers.clear();
    else std::erase_if(c.peers, [](const node::PeerConfig& p) { return p.id > 3; });
  };
  LocalCluster c(o);
  for (std::uint64_t id = 1; id <= 3; ++id) c.start(id);
  auto leader = c.wait_for_leader(15s);
  ASSERT_NE(leader, 0u) << log_of(c);
  for (std::uint64_t id = 4; id <= 5; ++id) c.start(id, {"--join", c.config(leader).admin.to_string()});
  ASSERT_TRUE(testing::converged(c, 30s)) << log_of(c);
  ASSERT_EQ(voters_of(c, leader), (std::vector<std::uint64_t>{1, 2, 3}));

  std::set<std::uint64_t> dead;
  const auto kill = [&](std::uint64_t id) {
    c.kill(id, SIGKILL);
    dead.insert(id);
  };
  const auto replaced = [&](std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto now_leader = c.wait_for_leader(2s);
      if (now_leader != 0) {
        const auto voters = voters_of(c, now_leader);
        if (voters.size() == 3 && std::none_of(voters.begin(), voters.end(), [&](auto v) { return dead.contains(v); }))
          return now_leader;
      }
      std::this_thread::sleep_for(100ms);
    }
    return std::uint64_t{0};
  };

  kill(leader % 3 + 1);  // a follower voter
  auto start = std::chrono::steady_clock::now();
  leader = replaced(20s);
  ASSERT_NE(leader, 0u) << "the dead follower was not replaced\n" << log_of(c);
  std::cout << "a dead follower voter replaced in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count()
            << " ms (failure timeout 1000 ms)\n";
  ASSERT_TRUE(testing::put(c, "after-follower", "1", 10s)) << log_of(c);

  kill(leader);
  start = std::chrono::steady_clock::now();
  leader = replaced(30s);
  ASSERT_NE(leader, 0u) << "the dead leader was not replaced\n" << log_of(c);
  std::cout << "a dead leader replaced in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count()
            << " ms\n";
  ASSERT_TRUE(testing::put(c, "after-leader", "1", 10s)) << log_of(c);
  EXPECT_EQ(testing::get(c, leader, "after-follower"), "1");
}

// The node's exit status and what it wrote, run to completion with `args` after its config.
std::pair<int, std::string> run_node_process(LocalCluster& c, std::uint64_t id, const std::string& args) {
  const std::string command = std::string(RAFTFL_BINARY) + " node --config " + c.config_file(id).string() + " " + args + " 2>&1";
  FILE* out = ::popen(command.c_str(), "r");
  std::string text;
  char buffer[512];
  while (out != nullptr && std::fgets(buffer, sizeof(buffer), out) != nullptr) text += buffer;
  const int status = out != nullptr ? ::pclose(out) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

// Two nodes whose files name no peers: node 1 founds a cluster, node 2 joins it.
LocalClusterOptions two_lone_nodes() {
  LocalClusterOptions o;
  o.nodes = 2;
  o.dir = testing::test_dir("raftfl-bootstrap");
  o.binary = RAFTFL_BINARY;
  o.storage = node::StorageKind::kDisk;
  o.customize = [](node::NodeConfig& c) { c.peers.clear(); };
  return o;
}

// A cluster grown from one node: a lone node founds a cluster only with --bootstrap (a
// joiner that forgot --join must not found one of its own), and another joins it.
TEST(ClusterBootstrap, ALoneNodeFoundsAClusterOnlyWithBootstrapAndOthersJoinIt) {
  LocalCluster c(two_lone_nodes());

  auto [code, text] = run_node_process(c, 1, "");
  EXPECT_EQ(code, 2) << text;
  EXPECT_NE(text.find("start with --bootstrap to found a cluster of this node alone, or --join HOST:PORT"),
            std::string::npos)
      << text;
  std::tie(code, text) = run_node_process(c, 1, "--bootstrap --join 127.0.0.1:1");
  EXPECT_EQ(code, 2) << text;
  EXPECT_NE(text.find("excludes"), std::string::npos) << text;
  EXPECT_FALSE(std::filesystem::exists(c.config(1).data_dir / "snap")) << "a refused start wrote a log";

  c.start(1);  // with --bootstrap: a lone node has no peers
  ASSERT_EQ(c.wait_for_leader(10s), 1u) << log_of(c);
  ASSERT_TRUE(testing::put(c, "alone", "1", 10s)) << log_of(c);
  c.start(2, {"--join", c.config(1).admin.to_string()});
  ASSERT_TRUE(testing::converged(c, 30s)) << "the joiner did not catch up\n" << log_of(c);
  // Grown from one node, the cluster promotes the joiner: two voters, target 3.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline && role_of(c, 1, 2) != "voter") std::this_thread::sleep_for(100ms);
  EXPECT_EQ(role_of(c, 1, 2), "voter") << log_of(c);

  // Restarted, the founder is a member: --bootstrap again is ignored, and said so.
  c.kill(1, SIGTERM);
  ASSERT_TRUE(c.wait_exit(1, 10s));
  c.start(1);
  ASSERT_NE(c.wait_for_leader(15s), 0u) << log_of(c);
  EXPECT_NE(log_of(c, 100000).find("--bootstrap ignored"), std::string::npos) << log_of(c);
}

// The leader promotes a learner to fill its voter target only once the learner is caught
// up: a joiner still taking a slow (rate-limited) snapshot stays a learner throughout,
// then becomes a voter.
TEST(ClusterBootstrap, AJoinerIsPromotedOnlyOnceCaughtUp) {
  LocalClusterOptions o = two_lone_nodes();
  o.snapshot_every = 20;
  o.customize = [](node::NodeConfig& c) {
    c.peers.clear();
    c.snapshot_chunk_bytes = 16 << 10;
    c.snapshot_bytes_per_second = 256 << 10;  // a 1 MiB state takes about 4 s to reach the joiner
  };
  LocalCluster c(o);
  c.start(1);
  ASSERT_EQ(c.wait_for_leader(10s), 1u) << log_of(c);
  const std::string value(8 << 10, 'v');
  for (int i = 0; i < 120; ++i) ASSERT_TRUE(testing::put(c, "k" + std::to_string(i), value, 10s)) << log_of(c);
  c.start(2, {"--join", c.config(1).admin.to_string()});

  int seen_taking_snapshot = 0;
  const auto caught_up = testing::wait_until(
      [&] {
        const auto joiner = c.status(2);
        if (joiner && joiner->at("snapshot_transfers").contains("incoming")) {
          ++seen_taking_snapshot;
          EXPECT_NE(role_of(c, 1, 2), "voter") << "promoted while still taking the snapshot";
        }
        return joiner && joiner->at("snapshot_transfers").at("received").get<std::uint64_t>() >= 1;
      },
      30s);
  ASSERT_TRUE(caught_up) << log_of(c);
  EXPECT_GE(seen_taking_snapshot, 5) << "the snapshot arrived too fast to watch";
  ASSERT_TRUE(testing::wait_until([&] { return role_of(c, 1, 2) == "voter"; }, 10s)) << log_of(c);
  EXPECT_EQ(testing::get(c, 2, "k119"), value);
}

INSTANTIATE_TEST_SUITE_P(Transports, ClusterMembership,
                         ::testing::Values(node::TransportKind::kTcp, node::TransportKind::kZmq),
                         [](const auto& param_info) { return param_info.param == node::TransportKind::kTcp ? "tcp" : "zmq"; });

}  // namespace
}  // namespace raftfl::app
