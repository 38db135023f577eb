#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "raftfl/raft/options.hpp"
#include "raftfl/raft/types.hpp"

namespace raftfl::node {

enum class TransportKind { kTcp, kZmq };
enum class StorageKind { kMemory, kDisk };

struct Endpoint {
  std::string host;  // without brackets, also for IPv6
  std::uint16_t port = 0;

  // "host:port", or "[host]:port" when the host is an IPv6 address.
  std::string to_string() const;
  bool operator==(const Endpoint&) const = default;
};

struct PeerConfig {
  raft::NodeId id = 0;
  Endpoint address;
  bool operator==(const PeerConfig&) const = default;
};

// The configuration file of `raftfl node --config FILE`, documented key by key in the
// README ("The node configuration file"). A key left out of the file keeps the default
// below.
struct NodeConfig {
  // [node]
  raft::NodeId id = 0;
  std::uint64_t cluster_id = 1;
  std::filesystem::path data_dir;  // empty: not set (allowed only with in-memory storage)

  // [network]
  Endpoint listen;
  Endpoint admin;
  TransportKind transport = TransportKind::kTcp;
  std::size_t max_frame_bytes = std::size_t{80} << 20;
  std::size_t send_queue_bytes = std::size_t{128} << 20;  // per peer
  std::chrono::milliseconds reconnect_min{10};
  std::chrono::milliseconds reconnect_max{1000};

  // [[peers]]: the other voters; the initial cluster is this node plus these.
  std::vector<PeerConfig> peers;

  // [raft]
  std::chrono::milliseconds tick{10};
  std::chrono::milliseconds election_timeout_min{150};
  std::chrono::milliseconds election_timeout_max{300};
  std::chrono::milliseconds heartbeat{50};
  std::size_t max_inflight = 64;
  std::size_t max_entries_per_message = 256;
  std::size_t max_bytes_per_message = std::size_t{1} << 20;
  std::uint64_t snapshot_every = 10000;  // entries applied between snapshots; 0 = never
  std::size_t max_log_entries = 100000;  // proposals are refused above it

  // [storage]
  StorageKind storage = StorageKind::kDisk;

  // [reactor]
  std::chrono::microseconds poll_budget{0};  // 0: sleep at once
  int cpu = -1;                              // -1: no pinning

  // The engine counts in ticks: each timing becomes timing / tick, rounded up, so that no
  // timeout fires earlier than the file says. The seed is the node id, so that nodes
  // started together do not draw the same election timeouts.
  raft::Options raft_options() const;

  bool operator==(const NodeConfig&) const = default;
};

// One line: "<source>: <key>: <reason>", or "<source>:<line>:<column>: <reason>" for a
// TOML syntax error.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `source_name` names the text in error messages (usually the file name).
NodeConfig parse_node_config(std::string_view toml_text, std::string_view source_name);
NodeConfig load_node_config(const std::filesystem::path& file);

// Every key, defaults included, so that the output documents the running configuration;
// parse_node_config(to_toml(c), ...) == c for every valid c.
std::string to_toml(const NodeConfig& config);

// "host:port" or "[ipv6]:port", port 0-65535; the message of the ConfigError it throws is
// the reason alone, without source or key.
Endpoint parse_endpoint(std::string_view text);

std::string_view to_string(TransportKind kind);
std::string_view to_string(StorageKind kind);

}  // namespace raftfl::node
