#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <string>

#include "raftfl/common/latency_histogram.hpp"
#include "raftfl/node/raft_driver.hpp"

namespace raftfl::node {

struct LoadResult {
  int clients = 0;
  double seconds = 0;
  std::uint64_t ops = 0;
  std::uint64_t errors = 0;
  LatencyHistogram commit_latency_ns;
  std::string first_error;
};

std::string to_json(const LoadResult& result);

// Clients that propose through the node they run on, as coroutines on its reactor: the
// shape of NuRaft's raft_bench (C concurrent clients in the leader's process), without a
// thread hand-off per proposal. Each client keeps one proposal in flight and measures
// from propose() to applied.
class LoadGenerator {
 public:
  LoadGenerator(asio::io_context& io, RaftDriver& node) : io_(io), node_(node) {}

  // Runs `clients` clients for `seconds` against this node, which must be the leader.
  asio::awaitable<LoadResult> run(int clients, std::chrono::milliseconds duration, std::size_t payload_bytes);

  // Keeps `clients` clients proposing whenever this node is the leader, until set to 0:
  // the failover benchmark's background load, which follows leadership around.
  void set_background(int clients, std::size_t payload_bytes);
  // Ends every client at its next step (the node is stopping).
  void stop() {
    stopped_ = true;
    ++generation_;
  }

 private:
  asio::awaitable<void> background_client(std::uint64_t generation, std::size_t payload_bytes);

  asio::io_context& io_;
  RaftDriver& node_;
  std::uint64_t generation_ = 0;
  std::uint64_t session_base_ = 0;  // client ids of the running benchmark: base + client index
  bool stopped_ = false;
};

}  // namespace raftfl::node
