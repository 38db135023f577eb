#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "raftfl/gossip/exchange.hpp"
#include "raftfl/gossip/round_report.hpp"
#include "raftfl/node/config.hpp"
#include "raftfl/node/raft_driver.hpp"
#include "raftfl/train/idx_reader.hpp"
#include "raftfl/train/models.hpp"
#include "raftfl/train/training_pool.hpp"

namespace raftfl::node {

struct WorkerStatus {
  std::uint64_t round = 0;  // the round in progress, or the last one when done
  std::uint64_t rounds_done = 0;
  std::uint64_t started_round = 0;         // where this process began (a restart joins the cluster's round)
  std::uint64_t first_exchange_round = 0;  // the first round in which a peer's model arrived
  std::uint64_t train_samples = 0;  // the size of this worker's shard
  std::vector<std::uint32_t> shards;  // the control log's shards it trains on
  double last_loss = 0.0;
  double last_accuracy = -1.0;
  double final_accuracy = -1.0;
  std::uint64_t peer_timeouts = 0;
  std::uint64_t exchange_errors = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  bool done = false;
  bool failed = false;
  std::uint64_t restarts = 0;  // round loops the supervisor started again after a failure
  std::string last_failure;
};

// The worker role (docs/ARCHITECTURE.md, "A round", step 2): for each round the control log plans,
// local SGD on the training pool, then the exchange with the round's peer over the node's
// transport, averaging, and a report to the coordinator.
class Worker {
 public:
  // Loads the dataset and this worker's shard; throws train::DatasetError (names the file
  // or the package) or std::invalid_argument for an impossible partition.
  Worker(asio::io_context& io, RaftDriver& node, const NodeConfig& config);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  void stop();

  // From the node: a control entry was applied (a Topology may have arrived).
  void control_applied();
  // From the node: a model chunk from `from`.
  void receive_chunk(net::NodeId from, capnp::MessageReader& reader);
  // Where reports go when this node is the leader itself.
  void on_local_report(std::function<void(const gossip::RoundReport&)> sink) { local_report_ = std::move(sink); }

  WorkerStatus status() const { return status_; }

 private:
  struct Inbox {
    gossip::IncomingModel model;
    std::chrono::steady_clock::time_point first_chunk;
    std::chrono::steady_clock::time_point last_chunk;
    std::size_t chunks = 0;
    bool failed = false;
  };

  using Clock = std::chrono::steady_clock;

  // run() again after a failure, with backoff; exits the process after repeated failure.
  asio::awaitable<void> supervise();
  // The round loop, in the steps of one round.
  asio::awaitable<void> run();
  // Until the control log is applied as far as the leader has committed.
  asio::awaitable<void> catch_up();
  // Until the control state gives this worker shards; false when stopping.
  asio::awaitable<bool> await_admission();
  // Cuts the training set into `shard_count` parts (partitions_).
  void partition(std::uint32_t shard_count);
  // Takes up the shards the control state gives this worker; false while it has none.
  bool refresh_shards();
  void announce_joining(control::Round round);
  // A fresh worker's round: the peer's whole model replaces ours.
  asio::awaitable<void> take_model(control::Round round, net::NodeId from, gossip::RoundReport& report);
  // The giving side: our whole model to the fresh peer, nothing taken back.
  asio::awaitable<void> give_model(control::Round round, net::NodeId to, gossip::RoundReport& report);
  const gossip::ExchangeSpec& expected_spec(control::Round round, const gossip::ChunkHeader& header) const;
  // Local SGD on this worker's shard (none in consensus rounds); the mean loss.
  asio::awaitable<double> train_locally(control::Round round);
  // Who this worker exchanges with in the round.
  std::vector<net::NodeId> exchange_peers(const control::Topology& topology) const;
  // Send, wait for the peers' models (or their absence), average what arrived.
  asio::awaitable<void> exchange(control::Round round, const std::vector<net::NodeId>& peers,
                                 std::uint64_t mask_seed, gossip::RoundReport& report);
  void send_model(const std::shared_ptr<const gossip::OutgoingModel>& outgoing, const std::vector<net::NodeId>& peers,
                  gossip::RoundReport& report);
  // Returns the peers found unreachable before their model came.
  asio::awaitable<std::set<net::NodeId>> await_models(control::Round round, const std::vector<net::NodeId>& peers,
                                                      Clock::time_point deadline);
  std::vector<const gossip::IncomingModel*> collect_models(control::Round round, const std::vector<net::NodeId>& peers,
                                                           const std::set<net::NodeId>& unreachable,
                                                           gossip::RoundReport& report);
  void measure_bandwidth(net::NodeId from, const Inbox& in);
  // Evaluation when due, the report, the checkpoint when due.
  asio::awaitable<void> finish_round(control::Round round, Clock::time_point round_start, gossip::RoundReport& report);
  asio::awaitable<void> report_final();
  // After the checkpoint's round, or where the cluster is if that is further.
  asio::awaitable<control::Round> first_round();
  asio::awaitable<const control::Topology*> wait_topology(control::Round& round);
  // Runs `job` on the training pool; resumes on the reactor with its result.
  template <typename Job>
  asio::awaitable<std::invoke_result_t<Job&>> on_pool(Job job);
  void send_report(const gossip::RoundReport& report);
  // Sends each recent report to the current leader if it has not had it.
  void flush_reports();
  // To the coordinator on `leader` (this node's own, or over the transport); false when
  // there is none or the transport refused it.
  bool deliver_report(const gossip::RoundReport& report, raft::NodeId leader);
  // The model and the round it completed (checkpoint.hpp).
  void save_checkpoint(std::uint64_t round) const;
  // The round of the checkpoint loaded into the model, 0 when there is none.
  std::uint64_t load_checkpoint();
  bool checkpoints() const { return config_.training.checkpoint_every > 0 && !config_.data_dir.empty(); }
  void wake() { wake_.cancel(); }
  // The last training.consensus_rounds rounds take no local steps and exchange densely.
  bool consensus_round(std::uint64_t round) const {
    return round + config_.training.consensus_rounds > config_.training.rounds;
  }

  asio::io_context& io_;
  RaftDriver& node_;
  NodeConfig config_;
  gossip::ExchangeSpec spec_;
  train::ImageSet train_set_;
  train::ImageSet test_set_;
  std::vector<std::vector<std::uint32_t>> partitions_;  // one index list per shard
  std::vector<std::uint32_t> held_shards_;
  std::vector<std::uint32_t> shard_;  // the union of held_shards_' samples
  train::Model model_;
  gossip::ModelExchanger exchanger_;
  gossip::ModelExchanger consensus_exchanger_;  // dense, for the consensus rounds
  std::map<std::pair<std::uint64_t, net::NodeId>, Inbox> inbox_;
  std::map<net::NodeId, double> bandwidth_;  // smoothed bytes per second, per peer
  std::uint64_t current_round_ = 0;
  std::uint64_t resume_after_ = 0;  // the checkpoint's round
  asio::steady_timer wake_;
  bool stopping_ = false;
  WorkerStatus status_;
  std::function<void(const gossip::RoundReport&)> local_report_;
  struct SentReport {
    gossip::RoundReport report;
    raft::NodeId sent_to = raft::kNoNode;
  };
  static constexpr std::size_t kReportsResent = 4;
  std::deque<SentReport> recent_reports_;
  // Declared last, so destroyed first: its threads finish their job before the model and
  // data they use go away.
  std::unique_ptr<train::TrainingPool> pool_;
};

}  // namespace raftfl::node
