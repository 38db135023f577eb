// Workers come and go while the cluster trains (real `raftfl node` processes, the MLP on a
// Fashion-MNIST subset). A worker stopped with SIGSTOP for longer than the failure timeout
// is marked failed in the control log and left out of the rounds, then marked healthy
// when it resumes and given a peer's whole model; a node that joins the running cluster
// is made a worker with a data shard of its own and starts from a peer's model; when it
// leaves, its shard goes back to a worker that stays.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "admin_client.hpp"
#include "cluster_test_support.hpp"
#include "local_cluster.hpp"
#include "training_test_support.hpp"

namespace raftfl::app {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// At most kTopologiesKept (64), so that every plan can still be read at the end.
constexpr std::uint64_t kRounds = 60;
constexpr std::uint64_t kJoiner = 5;
constexpr std::uint32_t kShards = 5;

std::string logs(LocalCluster& c) { return testing::log_of(c, 3000); }

// The control state's view of member `id` at node `asked`, or nullopt.
std::optional<nlohmann::json> control_member(LocalCluster& c, std::uint64_t asked, std::uint64_t id) {
  const auto s = c.status(asked, 1s);
  if (!s || !s->contains("control")) return std::nullopt;
  for (const auto& m : (*s)["control"]["members"])
    if (m.at("id").get<std::uint64_t>() == id) return m;
  return std::nullopt;
}

std::uint64_t last_round(LocalCluster& c, std::uint64_t asked) {
  const auto s = c.status(asked, 1s);
  return s && s->contains("control") ? (*s)["control"]["last_round"].get<std::uint64_t>() : 0;
}

std::optional<nlohmann::json> topology(LocalCluster& c, std::uint64_t id, std::uint64_t round) {
  try {
    auto j = nlohmann::json::parse(admin_request(c.config(id).admin, "topology " + std::to_string(round), 2s));
    if (!j.value("ok", false)) return std::nullopt;
    return j;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool names(const nlohmann::json& t, std::uint64_t id) {
  for (const auto& p : t.at("pairs"))
    if (p.at(0).get<std::uint64_t>() == id || p.at(1).get<std::uint64_t>() == id) return true;
  for (const auto& i : t.at("idle"))
    if (i.get<std::uint64_t>() == id) return true;
  return false;
}

bool lists_fresh(const nlohmann::json& t, std::uint64_t id) {
  for (const auto& f : t.at("fresh"))
    if (f.get<std::uint64_t>() == id) return true;
  return false;
}

TEST(TrainingMembership, AStoppedWorkerIsLeftOutAndReadmittedAJoinerGetsAShardAndAPeersModel) {
  LocalClusterOptions o;
  o.nodes = 5;
  o.dir = testing::test_dir("raftfl-training-membership");
  o.binary = RAFTFL_BINARY;
  o.storage = node::StorageKind::kDisk;
  o.customize = [](node::NodeConfig& c) {
    if (c.id == kJoiner) c.peers.clear();
    else std::erase_if(c.peers, [](const node::PeerConfig& p) { return p.id == kJoiner; });
    c.failure_timeout = 1000ms;
    testing::train_small_mlp(c, kRounds, 16);
    c.training.dirichlet_alpha = 1.0;
    c.training.shards = kShards;
    c.gossip.density = 0.25;
  };
  LocalCluster c(o);
  for (std::uint64_t id = 1; id <= 4; ++id) c.start(id);
  // Sanitized LibTorch processes take tens of seconds to start while other tests run.
  const auto leader = c.wait_for_leader(120s);
  ASSERT_NE(leader, 0u) << logs(c);

  // Five shards over four workers: added in id order, node 1 keeps 0 and 4.
  ASSERT_TRUE(testing::wait_until([&] { return last_round(c, leader) >= 5; }, 120s)) << logs(c);
  for (std::uint64_t id = 1; id <= 4; ++id) {
    const auto m = control_member(c, leader, id);
    ASSERT_TRUE(m);
    const auto expected = id == 1 ? std::vector<std::uint32_t>{0, 4} : std::vector<std::uint32_t>{std::uint32_t(id - 1)};
    EXPECT_EQ(m->at("shards").get<std::vector<std::uint32_t>>(), expected) << "node " << id;
  }

  // A follower stopped past the failure timeout is marked failed and planned no more.
  const std::uint64_t victim = leader == 4 ? 3 : 4;
  c.kill(victim, SIGSTOP);
  const auto stopped_at = Clock::now();
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto m = control_member(c, leader, victim);
        return m && m->at("failed").get<bool>();
      },
      10s))
      << logs(c);
  const auto marked_after = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - stopped_at);
  const auto marked_round = last_round(c, leader);
  std::cout << "node " << victim << " marked failed " << marked_after.count() << " ms after SIGSTOP (round "
            << marked_round << ")\n";
  ASSERT_TRUE(testing::wait_until([&] { return last_round(c, leader) >= marked_round + 3; }, 60s)) << logs(c);
  c.kill(victim, SIGCONT);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto m = control_member(c, leader, victim);
        return m && !m->at("failed").get<bool>();
      },
      60s))
      << "node " << victim << " was not readmitted\n"
      << logs(c);

  // A node that joins the running cluster becomes a worker: the richest gives it a shard.
  c.start(kJoiner, {"--join", c.config(leader).admin.to_string()});
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto m = control_member(c, leader, kJoiner);
        return m && !m->at("shards").empty();
      },
      150s))
      << "the joiner was not given a shard\n"
      << logs(c);
  EXPECT_EQ(control_member(c, leader, kJoiner)->at("shards").get<std::vector<std::uint32_t>>(),
            std::vector<std::uint32_t>{4});

  // Everyone finishes.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        for (std::uint64_t id = 1; id <= kJoiner; ++id) {
          const auto s = c.status(id, 1s);
          if (!s || !s->contains("worker") || !(*s)["worker"]["done"].get<bool>()) return false;
        }
        return true;
      },
      240s))
      << "training did not finish\n"
      << logs(c);

  // The committed plans, as the leader holds them: the failed worker sat out at least the
  // three rounds planned after its mark, and came back through a round that gave it a
  // model; so did the joiner.
  std::uint64_t left_out = 0;
  std::optional<std::uint64_t> victim_fresh, joiner_fresh;
  for (std::uint64_t round = marked_round + 1; round <= kRounds; ++round) {
    const auto t = topology(c, leader, round);
    ASSERT_TRUE(t) << "round " << round;
    if (!names(*t, victim) && !victim_fresh) ++left_out;
    if (lists_fresh(*t, victim) && !victim_fresh) victim_fresh = round;
    if (lists_fresh(*t, kJoiner) && !joiner_fresh) joiner_fresh = round;
  }
  EXPECT_GE(left_out, 3u);
  EXPECT_TRUE(victim_fresh) << "the readmitted worker was never given a model";
  ASSERT_TRUE(joiner_fresh) << "the joiner was never given a model\n" << logs(c);

  for (std::uint64_t id = 1; id <= kJoiner; ++id) {
    const auto s = c.status(id, 2s);
    ASSERT_TRUE(s);
    const auto& w = (*s)["worker"];
    EXPECT_EQ(w["rounds_done"].get<std::uint64_t>(), kRounds) << "node " << id;
    EXPECT_GT(w["final_accuracy"].get<double>(), 0.55) << "node " << id << "\n" << logs(c);
    if (id != kJoiner) continue;
    const auto started = w["started_round"].get<std::uint64_t>();
    const auto first_exchange = w["first_exchange_round"].get<std::uint64_t>();
    std::cout << "joiner started at round " << started << ", took a model in round " << *joiner_fresh
              << ", first exchange in round " << first_exchange << "\n";
    EXPECT_NE(first_exchange, 0u);
    EXPECT_LE(first_exchange, started + 3) << logs(c);
  }

  // The joiner is a learner: on SIGTERM it leaves, and its shard goes back to node 1 (of
  // the healthy workers holding one shard each, the lowest id).
  c.kill(kJoiner, SIGTERM);
  const auto exited = c.wait_exit(kJoiner, 10s);
  ASSERT_TRUE(exited);
  EXPECT_TRUE(WIFEXITED(*exited) && WEXITSTATUS(*exited) == 0);
  const auto new_leader = c.wait_for_leader(10s);
  ASSERT_TRUE(testing::wait_until([&] { return !control_member(c, new_leader, kJoiner); }, 20s))
      << "the joiner stayed a worker after leaving\n"
      << logs(c);
  const auto one = control_member(c, new_leader, 1);
  ASSERT_TRUE(one);
  EXPECT_EQ(one->at("shards").get<std::vector<std::uint32_t>>(), (std::vector<std::uint32_t>{0, 4}));

  for (std::uint64_t id = 1; id <= 4; ++id) c.kill(id, SIGTERM);
  for (std::uint64_t id = 1; id <= 4; ++id) {
    const auto status = c.wait_exit(id, 10s);
    ASSERT_TRUE(status) << "node " << id << " did not stop on SIGTERM";
  }
}

}  // namespace
}  // namespace raftfl::app
