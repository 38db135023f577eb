// The training roles of a node: the worker and the coordinator, wired to the replica.
#include "raftfl/node/training_roles.hpp"

#include "coordinator.hpp"
#include "worker.hpp"
#include "raftfl/train/idx_reader.hpp"

namespace raftfl::node {
namespace {

class WorkerAndCoordinator final : public TrainingRoles {
 public:
  WorkerAndCoordinator(asio::io_context& io, RaftDriver& node, ReplicatedState& state, MessageRouter& router,
                       AdminServer& admin, const NodeConfig& config)
      : worker_(make_worker(io, node, config)), coordinator_(io, node, config) {
    wire(node, state, router, admin, config.id);
  }
  void start() override { worker_->start(); }
  void stop() override {
    worker_->stop();
    coordinator_.stop();
  }

 private:
  static std::unique_ptr<Worker> make_worker(asio::io_context& io, RaftDriver& node, const NodeConfig& config) {
    try {
      return std::make_unique<Worker>(io, node, config);
    } catch (const train::DatasetError& e) {
      throw TrainingSetupError(std::string("training data: ") + e.what() +
                               " (install the dataset-fashion-mnist package, or set training.dataset_dir)");
    }
  }

  // Control entries wake the worker and the coordinator, leadership moves the coordinator
  // role, model chunks go to the worker and reports to the coordinator.
  void wire(RaftDriver& node, ReplicatedState& state, MessageRouter& router, AdminServer& admin, raft::NodeId self) {
    Worker& worker = *worker_;
    Coordinator& coordinator = coordinator_;
    node.on_leadership_change([&coordinator](bool leader) { coordinator.leadership_changed(leader); });
    state.on_control_applied([&worker, &coordinator](const control::Command&, control::ApplyResult) {
      worker.control_applied();
      coordinator.control_applied();
    });
    router.route(wire::EnvelopeBody::kGossipChunk,
                 [&worker](net::NodeId from, capnp::MessageReader& reader) { worker.receive_chunk(from, reader); });
    router.route(wire::EnvelopeBody::kReport, [&coordinator](net::NodeId from, capnp::MessageReader& reader) {
      coordinator.report(from, wire::decode_round_report(reader));
    });
    worker.on_local_report([&coordinator, self](const gossip::RoundReport& r) { coordinator.report(self, r); });
    admin.extend_status([&worker, &coordinator](JsonWriter& w) {
      const auto s = worker.status();
      w.key("worker").begin_object();
      w.field("round", s.round).field("rounds_done", s.rounds_done).field("train_samples", s.train_samples);
      w.field("started_round", s.started_round).field("first_exchange_round", s.first_exchange_round);
      w.field("last_loss", s.last_loss).field("last_accuracy", s.last_accuracy);
      w.field("final_accuracy", s.final_accuracy).field("peer_timeouts", s.peer_timeouts);
      w.field("exchange_errors", s.exchange_errors).field("bytes_sent", s.bytes_sent);
      w.field("bytes_received", s.bytes_received).field("done", s.done).field("failed", s.failed);
      w.field("restarts", s.restarts).field("last_failure", s.last_failure);
      w.key("shards").begin_array();
      for (auto shard : s.shards) w.value(static_cast<std::uint64_t>(shard));
      w.end_array();
      w.end_object();
      w.key("coordinator");
      coordinator.write_status(w);
    });
  }

  // Both go before the node whose callbacks name them; the reactor has stopped by then.
  std::unique_ptr<Worker> worker_;
  Coordinator coordinator_;
};

}  // namespace

std::unique_ptr<TrainingRoles> make_training_roles(asio::io_context& io, RaftDriver& node, ReplicatedState& state,
                                                   MessageRouter& router, AdminServer& admin, const NodeConfig& config) {
  return std::make_unique<WorkerAndCoordinator>(io, node, state, router, admin, config);
}

}  // namespace raftfl::node
