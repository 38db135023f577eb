// Membership at scale and the leader's own departure (control plane only, no training):
// twenty `raftfl node` processes, of which three found the cluster and seventeen join
// it as learners; the cluster keeps three voters, survives a voter's SIGKILL by promoting
// a learner, and says what each node costs in memory. A leader that leaves on SIGTERM
// hands its leadership over first and is taken out of the configuration.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "cluster_test_support.hpp"
#include "local_cluster.hpp"

namespace raftfl::app {
namespace {

using namespace std::chrono_literals;

struct Roles {
  std::vector<std::uint64_t> voters;
  std::vector<std::uint64_t> learners;
};

// The configuration and health as node `asked` (the leader) sees them.
std::optional<Roles> roles_at(LocalCluster& c, std::uint64_t asked, bool healthy_voters_only = false) {
  const auto s = c.status(asked, 2s);
  if (!s || s->value("role", "") != "leader") return std::nullopt;
  Roles r;
  for (const auto& m : (*s)["members"]) {
    const auto id = m.at("id").get<std::uint64_t>();
    if (!m.at("voter").get<bool>()) {
      r.learners.push_back(id);
      continue;
    }
    const auto health = m.value("health", "");
    if (!healthy_voters_only || health == "self" || health == "healthy") r.voters.push_back(id);
  }
  return r;
}

std::uint64_t leader_of(LocalCluster& c, const std::vector<std::uint64_t>& ids) {
  for (auto id : ids) {
    const auto s = c.status(id, 500ms);
    if (s && s->value("role", "") == "leader") return id;
  }
  return 0;
}

LocalClusterOptions grown_cluster(int nodes, const std::string& name) {
  LocalClusterOptions o;
  o.nodes = nodes;
  o.dir = testing::test_dir(name);
  o.binary = RAFTFL_BINARY;
  o.storage = node::StorageKind::kDisk;
  o.customize = [](node::NodeConfig& c) {
    // Nodes 1-3 know each other; the rest join.
    if (c.id <= 3) std::erase_if(c.peers, [](const node::PeerConfig& p) { return p.id > 3; });
    else c.peers.clear();
    c.failure_timeout = 1000ms;
    c.leave_on_stop = true;  // voters too: the leader's departure is under test
  };
  return o;
}

TEST(LargeMembership, TwentyNodesFormByJoinsKeepThreeVotersAndSurviveAVotersKill) {
  constexpr int kNodes = 20;
  LocalCluster c(grown_cluster(kNodes, "raftfl-large-membership"));
  for (std::uint64_t id = 1; id <= 3; ++id) c.start(id);
  const auto founder = c.wait_for_leader(15s);
  ASSERT_NE(founder, 0u) << testing::log_of(c);
  const auto joins_started = std::chrono::steady_clock::now();
  for (std::uint64_t id = 4; id <= kNodes; ++id) c.start(id, {"--join", c.config(founder).admin.to_string()});
  std::vector<std::uint64_t> all;
  for (std::uint64_t id = 1; id <= kNodes; ++id) all.push_back(id);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto r = roles_at(c, leader_of(c, all));
        return r && r->voters.size() + r->learners.size() == kNodes;
      },
      90s))
      << "17 joiners did not all join\n"
      << testing::log_of(c);
  const auto joined_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - joins_started).count();
  ASSERT_TRUE(testing::converged(c, 60s)) << testing::log_of(c);
  auto r = roles_at(c, leader_of(c, all));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->voters.size(), 3u) << "learners are promoted only while voters are short of the target";

  // Kill a voter that does not lead: a learner takes its place.
  const auto leader = leader_of(c, all);
  const auto victim = *std::find_if(r->voters.begin(), r->voters.end(), [&](auto id) { return id != leader; });
  c.kill(victim, SIGKILL);
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto now = roles_at(c, leader_of(c, all), true);
        return now && now->voters.size() == 3 &&
               std::find(now->voters.begin(), now->voters.end(), victim) == now->voters.end();
      },
      20s))
      << "the dead voter was not replaced\n"
      << testing::log_of(c);
  const auto replaced_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at).count();
  ASSERT_TRUE(testing::put(c, "after-the-kill", "1", 10s)) << testing::log_of(c);

  std::uint64_t rss_max = 0, rss_sum = 0;
  for (std::uint64_t id = 1; id <= kNodes; ++id) {
    if (!c.running(id)) continue;
    const auto kib = c.peak_rss_kib(id);
    rss_max = std::max(rss_max, kib);
    rss_sum += kib;
  }
  std::cout << kNodes << " nodes: 17 joins done " << joined_ms << " ms after they started; a dead voter replaced in "
            << replaced_ms << " ms (failure timeout 1000 ms); peak RSS " << rss_max / 1024 << " MiB per node at most, "
            << rss_sum / 1024 << " MiB all " << kNodes - 1 << " live nodes\n";
  // A control-plane node is small: no LibTorch, a small log. (A sanitizer's shadow memory
  // is not the node's.)
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  EXPECT_LT(rss_max, 64u * 1024) << "KiB";
#endif
  c.stop_all(5s);
}

TEST(LargeMembership, ALeaderThatLeavesHandsOverFirstAndIsRemoved) {
  LocalCluster c(grown_cluster(4, "raftfl-leader-leaves"));
  for (std::uint64_t id = 1; id <= 3; ++id) c.start(id);
  const auto leader = c.wait_for_leader(15s);
  ASSERT_NE(leader, 0u) << testing::log_of(c);
  c.start(4, {"--join", c.config(leader).admin.to_string()});
  ASSERT_TRUE(testing::converged(c, 30s)) << testing::log_of(c);
  ASSERT_TRUE(testing::put(c, "before", "1", 10s)) << testing::log_of(c);

  c.kill(leader, SIGTERM);
  const auto exited = c.wait_exit(leader, 10s);
  ASSERT_TRUE(exited);
  EXPECT_TRUE(WIFEXITED(*exited) && WEXITSTATUS(*exited) == 0) << testing::exit_of(*exited);
  std::ifstream in(c.log_file(leader));
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(log.find("leaving; handing the leadership to node"), std::string::npos) << log;
  EXPECT_NE(log.find("removed from the cluster's configuration"), std::string::npos) << log;

  // The others go on with three voters, the old leader in no one's configuration.
  std::vector<std::uint64_t> rest;
  for (std::uint64_t id = 1; id <= 4; ++id)
    if (id != leader) rest.push_back(id);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto r = roles_at(c, leader_of(c, rest), true);
        if (!r) return false;
        const bool gone = std::find(r->voters.begin(), r->voters.end(), leader) == r->voters.end() &&
                          std::find(r->learners.begin(), r->learners.end(), leader) == r->learners.end();
        return gone && r->voters.size() == 3;
      },
      20s))
      << testing::log_of(c);
  ASSERT_TRUE(testing::put(c, "after", "1", 10s)) << testing::log_of(c);
  EXPECT_EQ(testing::get(c, leader_of(c, rest), "before"), "1");
}

}  // namespace
}  // namespace raftfl::app
