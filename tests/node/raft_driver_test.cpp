// Three drivers on one io_context, over memory storage and the in-process transport:
// the node's behaviour tested without processes or sockets.
#include "raftfl/node/raft_driver.hpp"

#include <asio/co_spawn.hpp>
#include <gtest/gtest.h>

#include <array>
#include <optional>

#include "in_process_transport.hpp"
#include "io_context_test_support.hpp"
#include "raftfl/node/message_router.hpp"
#include "raftfl/node/replicated_state.hpp"

namespace raftfl::node {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kCluster = 7;
constexpr std::array<raft::NodeId, 3> kIds{1, 2, 3};
// Every wait is bounded: a broken driver fails the test instead of hanging it.
constexpr auto kLimit = 3s;

NodeConfig config_of(raft::NodeId id) {
  NodeConfig c;
  c.id = id;
  c.cluster_id = kCluster;
  for (auto peer : kIds)
    if (peer != id) c.peers.push_back({peer, {}});
  c.storage = StorageKind::kMemory;
  c.tick = 5ms;
  c.heartbeat = 20ms;
  c.election_timeout_min = 60ms;
  c.election_timeout_max = 120ms;
  return c;
}

struct Node {
  Node(asio::io_context& io, test::InProcessNetwork& network, raft::NodeId id)
      : router(kCluster, id),
        driver(io, config_of(id), std::make_unique<storage::MemoryStorage>(), network.transport(id), state, router) {}
  ReplicatedState state;
  MessageRouter router;
  RaftDriver driver;
  bool stopped = false;
};

class RaftDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto id : kIds) nodes_.push_back(std::make_unique<Node>(io_, network_, id));
    for (auto& n : nodes_) n->driver.start();
  }

  void TearDown() override {
    for (auto& n : nodes_)
      if (!n->stopped) stop(*n);
    nodes_.clear();
    test::drain(io_);
  }

  template <typename T>
  std::optional<T> await(asio::awaitable<T> work) {
    std::optional<T> result;
    asio::co_spawn(io_, std::move(work), [&](std::exception_ptr error, T value) {
      if (error) std::rethrow_exception(error);
      result = std::move(value);
    });
    test::run_until(io_, [&] { return result.has_value(); }, kLimit);
    return result;
  }

  void stop(Node& n) {
    bool done = false;
    asio::co_spawn(io_, n.driver.stop(), [&](std::exception_ptr error) {
      if (error) std::rethrow_exception(error);
      done = true;
    });
    ASSERT_TRUE(test::run_until(io_, [&] { return done; }, kLimit));
    n.stopped = true;
  }

  // The one leader the running nodes agree on, once there is one.
  Node* wait_for_leader() {
    Node* leader = nullptr;
    const bool found = test::run_until(
        io_,
        [&] {
          leader = nullptr;
          for (auto& n : nodes_) {
            if (n->stopped) continue;
            if (n->driver.is_leader()) {
              if (leader) return false;
              leader = n.get();
            }
          }
          if (!leader) return false;
          for (auto& n : nodes_)
            if (!n->stopped && n->driver.leader() != leader->driver.config().id) return false;
          return true;
        },
        kLimit);
    return found ? leader : nullptr;
  }

  Node* follower() {
    for (auto& n : nodes_)
      if (!n->stopped && !n->driver.is_leader()) return n.get();
    return nullptr;
  }

  ProposeOutcome put(Node& n, std::string_view key, std::string_view value) {
    const auto outcome = await(n.driver.propose(KvStateMachine::encode_put(key, value)));
    EXPECT_TRUE(outcome.has_value());
    return outcome.value_or(ProposeOutcome{});
  }

  bool all_applied(raft::Index index) {
    return test::run_until(
        io_,
        [&] {
          for (auto& n : nodes_)
            if (!n->stopped && n->state.applied() < index) return false;
          return true;
        },
        kLimit);
  }

  asio::io_context io_;
  test::InProcessNetwork network_{io_};
  std::vector<std::unique_ptr<Node>> nodes_;
};

TEST_F(RaftDriverTest, ElectsOneLeaderAllAgreeOn) {
  Node* leader = wait_for_leader();
  ASSERT_NE(leader, nullptr);
  for (auto& n : nodes_) EXPECT_EQ(n->driver.term(), leader->driver.term());
}

TEST_F(RaftDriverTest, AProposalCommitsAndAppliesOnEveryNode) {
  Node* leader = wait_for_leader();
  ASSERT_NE(leader, nullptr);
  const auto outcome = put(*leader, "colour", "blue");
  ASSERT_TRUE(outcome.ok) << outcome.error;
  ASSERT_TRUE(all_applied(outcome.index));
  for (auto& n : nodes_) EXPECT_EQ(n->state.kv().get("colour"), "blue");
  EXPECT_GE(leader->driver.persists(), 1u);
}

TEST_F(RaftDriverTest, AFollowerRefusesAProposalAndNamesTheLeader) {
  Node* leader = wait_for_leader();
  ASSERT_NE(leader, nullptr);
  const auto outcome = put(*follower(), "colour", "blue");
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.leader, leader->driver.config().id);
}

TEST_F(RaftDriverTest, AReadBarrierOnAFollowerSeesEveryCommittedWrite) {
  Node* leader = wait_for_leader();
  ASSERT_NE(leader, nullptr);
  Node* reader = follower();
  // The follower does not apply this put yet: its link to the leader is cut, so the
  // barrier alone has to bring it up to date once the link mends.
  network_.cut(leader->driver.config().id, reader->driver.config().id);
  const auto write = put(*leader, "colour", "green");
  ASSERT_TRUE(write.ok) << write.error;
  EXPECT_LT(reader->state.applied(), write.index);
  network_.cut(leader->driver.config().id, reader->driver.config().id, false);

  const auto read = await(reader->driver.read_barrier(2s));
  ASSERT_TRUE(read.has_value());
  ASSERT_TRUE(read->ok) << read->error;
  EXPECT_GE(read->index, write.index);
  EXPECT_GE(reader->state.applied(), read->index);
  EXPECT_EQ(reader->state.kv().get("colour"), "green");
}

TEST_F(RaftDriverTest, AStoppedLeaderIsReplacedAndTheNewOneCommits) {
  Node* first = wait_for_leader();
  ASSERT_NE(first, nullptr);
  const auto before = put(*first, "colour", "red");
  ASSERT_TRUE(before.ok) << before.error;
  const auto first_term = first->driver.term();
  stop(*first);

  Node* second = wait_for_leader();
  ASSERT_NE(second, nullptr);
  EXPECT_NE(second, first);
  EXPECT_GT(second->driver.term(), first_term);
  const auto after = put(*second, "colour", "yellow");
  ASSERT_TRUE(after.ok) << after.error;
  ASSERT_TRUE(all_applied(after.index));
  for (auto& n : nodes_) {
    if (!n->stopped) {
      EXPECT_EQ(n->state.kv().get("colour"), "yellow");
    }
  }
}

TEST_F(RaftDriverTest, AStoppedDriverRefusesWork) {
  Node* leader = wait_for_leader();
  ASSERT_NE(leader, nullptr);
  stop(*leader);
  const auto outcome = put(*leader, "colour", "blue");
  EXPECT_FALSE(outcome.ok);
  const auto read = await(leader->driver.read_barrier(100ms));
  ASSERT_TRUE(read.has_value());
  EXPECT_FALSE(read->ok);
}

}  // namespace
}  // namespace raftfl::node
