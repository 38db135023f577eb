// The worker's supervisor, with real faults (real `raftfl node` processes, the MLP on a
// Fashion-MNIST subset): a round loop that fails (its checkpoint cannot be written: a
// directory stands where the temporary file goes) is started again after a pause and the
// failure counted in `status`; a node whose round loop fails again and again exits 1, for
// its supervisor to restart it, while the others train on.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "cluster_test_support.hpp"
#include "local_cluster.hpp"
#include "training_test_support.hpp"

namespace raftfl::app {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kRounds = 40;

std::optional<nlohmann::json> worker_of(LocalCluster& c, std::uint64_t id) {
  const auto s = c.status(id, 1s);
  if (!s || !s->contains("worker")) return std::nullopt;
  return (*s)["worker"];
}

TEST(TrainingSupervisor, AFailedRoundLoopIsRestartedAndRepeatedFailureExits1) {
  LocalClusterOptions o;
  o.nodes = 3;
  o.dir = testing::test_dir("raftfl-training-supervisor");
  o.binary = RAFTFL_BINARY;
  o.storage = node::StorageKind::kDisk;
  o.customize = [](node::NodeConfig& c) {
    testing::train_small_mlp(c, kRounds, 16);
    c.training.checkpoint_every = 1;
  };
  LocalCluster c(o);
  c.start_all();
  // Sanitized LibTorch processes take tens of seconds to start while other tests run.
  ASSERT_NE(c.wait_for_leader(120s), 0u) << testing::log_of(c);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto w = worker_of(c, 2);
        return w && (*w)["rounds_done"].get<std::uint64_t>() >= 3;
      },
      120s))
      << testing::log_of(c);

  // Node 2's next checkpoint fails once; node 3's fails for good.
  const auto blocker = [&](std::uint64_t id) { return c.config(id).data_dir / "model.ckpt.tmp"; };
  // The node may be writing a checkpoint at this instant (model.ckpt.tmp a file, renamed
  // away a moment later): try again until the directory stands.
  const auto block = [&](std::uint64_t id) {
    return testing::wait_until(
        [&] {
          std::error_code ec;
          std::filesystem::create_directory(blocker(id), ec);
          return std::filesystem::is_directory(blocker(id), ec);
        },
        10s);
  };
  ASSERT_TRUE(block(2));
  ASSERT_TRUE(block(3));
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto w = worker_of(c, 2);
        return w && (*w)["restarts"].get<std::uint64_t>() >= 1;
      },
      30s))
      << "node 2's failed round loop was not restarted\n"
      << testing::log_of(c);
  std::filesystem::remove(blocker(2));
  const auto failure = (*worker_of(c, 2))["last_failure"].get<std::string>();
  EXPECT_NE(failure.find("model.ckpt.tmp"), std::string::npos) << failure;

  const auto exited = c.wait_exit(3, 60s);
  ASSERT_TRUE(exited) << "node 3 kept failing without stopping\n" << testing::log_of(c);
  EXPECT_TRUE(WIFEXITED(*exited) && WEXITSTATUS(*exited) == 1) << testing::exit_of(*exited);
  std::ifstream in(c.log_file(3));
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(log.find("failed 5 times within 300 s; stopping the node"), std::string::npos) << log;
  EXPECT_NE(log.find("restarting in 500 ms (failure 1 of 5 allowed)"), std::string::npos) << log;

  // Node 2 trains on to the end with node 1.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto w = worker_of(c, 2);
        return w && (*w)["done"].get<bool>();
      },
      120s))
      << testing::log_of(c);
  const auto w = *worker_of(c, 2);
  EXPECT_EQ(w["rounds_done"].get<std::uint64_t>(), kRounds);
  EXPECT_FALSE(w["failed"].get<bool>());
  EXPECT_GT(w["final_accuracy"].get<double>(), 0.5) << testing::log_of(c);
  for (std::uint64_t id : {1, 2}) c.kill(id, SIGTERM);
  for (std::uint64_t id : {1, 2}) EXPECT_TRUE(c.wait_exit(id, 10s)) << "node " << id;
}

}  // namespace
}  // namespace raftfl::app
