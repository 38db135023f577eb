#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "raftfl/raft/options.hpp"
#include "raftfl/raft/types.hpp"

namespace raftfl::node {

enum class TransportKind { kTcp, kZmq };
enum class StorageKind { kMemory, kDisk };
// The configuration's own names for the training and gossip choices, so that it does not
// depend on those libraries; the worker maps them onto theirs.
enum class ModelKind { kCnn, kMlp };
enum class PartitionKind { kDirichlet, kIid };
enum class SparsifierKind { kRandomK, kTopK, kDense };
enum class EncodingKind { kFp32, kBf16 };

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

// [training]: the worker (docs/ARCHITECTURE.md, "A round", step 2).
struct TrainingConfig {
  bool enabled = false;  // false: a control-plane-only node (no worker, no coordinator)
  std::filesystem::path dataset_dir = "/usr/share/datasets/fashion-mnist";
  ModelKind model = ModelKind::kCnn;
  std::uint64_t rounds = 100;
  int local_steps = 10;  // SGD steps per round, before the exchange
  int batch_size = 32;
  double learning_rate = 0.05;
  double momentum = 0.9;
  double weight_decay = 0.0;
  PartitionKind partition = PartitionKind::kDirichlet;
  double dirichlet_alpha = 0.5;
  std::uint64_t partition_seed = 1;
  std::size_t min_samples_per_node = 64;
  std::size_t train_subset = 0;  // use the first N training images; 0: all
  std::uint64_t model_seed = 1;  // every worker starts from the same model
  int eval_every = 5;            // rounds between test evaluations; 0: only the final one
  std::size_t eval_samples = 1000;  // test images per evaluation (the final one uses all)
  int threads = 1;                  // LibTorch intra-op threads
  // Rounds between model checkpoints in node.data_dir (a restarted node resumes from its
  // last one instead of from scratch); 0: never.
  int checkpoint_every = 10;
  // The last N of `rounds` take no local steps and exchange the whole model: pairwise
  // averaging alone drives the workers' models to their mean (the consensus model that
  // decentralized SGD's accuracy is usually quoted for). 0: none.
  std::uint64_t consensus_rounds = 0;
  // Parts the training set is cut into (the first coordinator's DataPlan; workers hold
  // shards by the control log's rules). 0: one per node of this file's cluster.
  std::uint32_t shards = 0;
  bool operator==(const TrainingConfig&) const = default;
};

// [gossip]: the exchange with the round's peer.
struct GossipConfig {
  SparsifierKind sparsifier = SparsifierKind::kRandomK;
  double density = 0.1;
  EncodingKind encoding = EncodingKind::kFp32;
  std::size_t chunk_bytes = std::size_t{1} << 20;
  std::chrono::milliseconds exchange_timeout{5000};
  // The reference of `bench tta`: every worker sends its dense model to every other
  // participant each round and takes the mean (all-reduce), instead of pairwise gossip.
  bool all_reduce = false;
  bool operator==(const GossipConfig&) const = default;
};

// [coordinator]: what the Raft leader does as the coordinator.
struct CoordinatorConfig {
  std::uint64_t rounds_ahead = 2;    // k: Topology entries committed ahead of the workers
  double bandwidth_threshold = 0.0;  // B, bytes per second
  int history_rounds = 5;            // T
  double bandwidth_change = 0.2;     // relative change of a cell worth committing
  std::chrono::milliseconds start_grace{5000};  // wait for workers to connect before round 1
  std::size_t start_workers = 0;  // round 1 also waits (start_grace at most) for this many workers
  std::chrono::milliseconds bandwidth_interval{1000};
  // A worker whose reports fall this many rounds (past rounds_ahead) behind the furthest
  // one is marked failed in the control log, as is one silent for raft.failure_timeout_ms;
  // 0: only silence counts.
  std::uint64_t failure_rounds = 5;
  bool operator==(const CoordinatorConfig&) const = default;
};

// The configuration file of `raftfl node --config FILE`, documented key by key in the
// README ("The node configuration file"). A key left out of the file keeps the default
// below.
struct NodeConfig {
  // [node]
  raft::NodeId id = 0;
  std::uint64_t cluster_id = 1;
  std::filesystem::path data_dir;  // empty: not set (allowed only with in-memory storage)
  std::optional<bool> leave_on_stop;  // unset: a learner leaves on SIGTERM, a voter stays a member

  // [network]
  Endpoint listen;
  Endpoint admin;
  TransportKind transport = TransportKind::kTcp;
  std::size_t max_frame_bytes = std::size_t{80} << 20;
  std::size_t send_queue_bytes = std::size_t{128} << 20;  // per peer
  std::chrono::milliseconds reconnect_min{10};
  std::chrono::milliseconds reconnect_max{1000};
  std::size_t snapshot_chunk_bytes = std::size_t{1} << 20;  // at most max_frame_bytes / 2
  std::uint64_t snapshot_bytes_per_second = 0;  // 0: unlimited

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
  std::uint64_t max_term_ahead = std::uint64_t{1} << 32;  // peers' messages with later terms are dropped
  int target_voters = 3;                         // the leader promotes caught-up learners up to it
  std::chrono::milliseconds failure_timeout{1500};  // a silent voter is replaced; 0: never

  // [storage]
  StorageKind storage = StorageKind::kDisk;

  // [reactor]
  std::chrono::microseconds poll_budget{0};  // 0: sleep at once
  int cpu = -1;                              // -1: no pinning

  TrainingConfig training;
  GossipConfig gossip;
  CoordinatorConfig coordinator;

  // The engine counts in ticks: each timing becomes timing / tick, rounded up, so that no
  // timeout fires earlier than the file says. The engine's seed comes from getrandom, so
  // that nodes started together, or a node restarted, do not draw the same election
  // timeouts.
  raft::Options raft_options() const;
  // The parts the training set is cut into: training.shards, or one per node of this file.
  std::uint32_t shard_count() const {
    return training.shards != 0 ? training.shards : static_cast<std::uint32_t>(peers.size() + 1);
  }

  bool operator==(const NodeConfig&) const = default;
};

// One line: "<source>: <key>: <reason>", or "<source>:<line>:<column>: <reason>" for a
// TOML syntax error.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Whether node.id may be left out: only by a node that joins a running cluster, which is
// then given an id (`raftfl node --join`), or that was given one before.
enum class IdRule { kRequired, kMayBeAssigned };

// `source_name` names the text in error messages (usually the file name).
NodeConfig parse_node_config(std::string_view toml_text, std::string_view source_name,
                             IdRule id_rule = IdRule::kRequired);
NodeConfig load_node_config(const std::filesystem::path& file, IdRule id_rule = IdRule::kRequired);

// Every key, defaults included, so that the output documents the running configuration;
// parse_node_config(to_toml(c), ...) == c for every valid c.
std::string to_toml(const NodeConfig& config);

// "host:port" or "[ipv6]:port", port 0-65535; the message of the ConfigError it throws is
// the reason alone, without source or key.
Endpoint parse_endpoint(std::string_view text);

// The names the configuration file uses.
std::string_view to_string(TransportKind kind);
std::string_view to_string(StorageKind kind);
std::string_view to_string(ModelKind kind);
std::string_view to_string(PartitionKind kind);
std::string_view to_string(SparsifierKind kind);
std::string_view to_string(EncodingKind kind);

// The inverse of to_string, for options that take the same names (e.g. the demo's
// command line); nullopt for any other text. Defined for the six kinds above.
template <typename Kind>
std::optional<Kind> kind_from_string(std::string_view text);

// One key of the configuration file as the parser knows it, for documentation and for
// tests that must cover every key; [[peers]] entries are not in it.
struct ConfigKey {
  std::string_view table;
  std::string_view key;
  std::string type;  // "integer", "number", "boolean", "string", "address", or the choices
  std::string range;      // "1 to 64", "at least 1"; empty when the type says it all
  std::string_view help;
};
const std::vector<ConfigKey>& config_keys();

}  // namespace raftfl::node
