#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "raftfl/node/config.hpp"

namespace raftfl::app {

struct LocalClusterOptions {
  int nodes = 3;
  std::filesystem::path dir;    // configs, data directories and logs go here
  std::filesystem::path binary; // the raftfl executable
  node::TransportKind transport = node::TransportKind::kTcp;
  node::StorageKind storage = node::StorageKind::kDisk;
  std::chrono::microseconds poll_budget{0};
  std::uint64_t snapshot_every = 10000;
  std::size_t max_log_entries = 100000;
  // Called on each node's configuration before it is written (training keys and such).
  std::function<void(node::NodeConfig&)> customize;
};

// Node processes of one cluster on loopback, each started with `raftfl node --config`:
// what the benchmark and the multi-process tests run. Killing is real (signals); every
// process still running is killed when the object goes.
class LocalCluster {
 public:
  explicit LocalCluster(LocalClusterOptions options);
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // Starts `raftfl node --config FILE` followed by `extra_args` (say, --join HOST:PORT).
  void start(std::uint64_t id, const std::vector<std::string>& extra_args = {});
  void start_all();
  // Sends `signal`; with SIGKILL, waits for the process to be gone.
  void kill(std::uint64_t id, int signal);
  // Waits up to `timeout` for the process to exit; its wait status, or nullopt.
  std::optional<int> wait_exit(std::uint64_t id, std::chrono::milliseconds timeout);
  bool running(std::uint64_t id) const;
  // SIGTERM to every running node, then SIGKILL to those still running after `grace`.
  void stop_all(std::chrono::milliseconds grace);

  const node::NodeConfig& config(std::uint64_t id) const { return configs_.at(id); }
  std::filesystem::path log_file(std::uint64_t id) const;
  std::filesystem::path config_file(std::uint64_t id) const;
  int size() const { return options_.nodes; }

  // The node's status, or nullopt when it does not answer within `timeout`.
  std::optional<nlohmann::json> status(std::uint64_t id, std::chrono::milliseconds timeout = std::chrono::milliseconds(500));
  // A node that reports itself leader and is connected to every running member.
  std::uint64_t wait_for_leader(std::chrono::milliseconds timeout);
  // VmHWM of the node's process, in KiB (0 if unknown).
  std::uint64_t peak_rss_kib(std::uint64_t id) const;

 private:
  LocalClusterOptions options_;
  std::map<std::uint64_t, node::NodeConfig> configs_;
  // The cluster tests drive one cluster from several client threads while the main
  // thread kills and restarts nodes.
  mutable std::mutex mutex_;
  std::map<std::uint64_t, pid_t> pids_;
  std::vector<int> reserved_ports_;  // bound sockets that keep the nodes' ports ours
};

}  // namespace raftfl::app
