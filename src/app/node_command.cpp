#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/signal_set.hpp>
#include <asio/use_awaitable.hpp>

#include <csignal>
#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "raftfl/common/failure.hpp"
#include "raftfl/common/log.hpp"
#include "raftfl/net/reactor.hpp"
#include "raftfl/node/admin_server.hpp"
#include "raftfl/node/config.hpp"
#include "raftfl/node/coordinator.hpp"
#if RAFTFL_TRAINING
#include "raftfl/node/worker.hpp"
#endif
#include "raftfl/train/idx_reader.hpp"
#include "raftfl/node/raft_node.hpp"

namespace raftfl::app {

namespace {

#if RAFTFL_TRAINING
// The training roles hang off the node's callbacks: control entries wake the worker and
// the coordinator, leadership moves the coordinator role, model chunks go to the worker
// and reports to the coordinator.
void wire_training_roles(node::RaftNode& raft_node, node::AdminServer& admin, node::Worker& worker,
                         node::Coordinator& coordinator, raft::NodeId self) {
  raft_node.on_leadership_change([&coordinator](bool leader) { coordinator.leadership_changed(leader); });
  raft_node.on_control_applied([&worker, &coordinator](const control::Command&, control::ApplyResult) {
    worker.control_applied();
    coordinator.control_applied();
  });
  raft_node.on_message([&worker, &coordinator](net::NodeId from, wire::EnvelopeBody body, capnp::MessageReader& reader) {
    if (body == wire::EnvelopeBody::kGossipChunk) {
      worker.receive_chunk(from, reader);
    } else if (body == wire::EnvelopeBody::kReport) {
      coordinator.report(from, wire::decode_round_report(reader));
    }
  });
  worker.on_local_report([&coordinator, self](const gossip::RoundReport& r) { coordinator.report(self, r); });
  admin.extend_status([&worker, &coordinator](JsonWriter& w) {
    const auto s = worker.status();
    w.key("worker").begin_object();
    w.field("round", s.round).field("rounds_done", s.rounds_done).field("train_samples", s.train_samples);
    w.field("last_loss", s.last_loss).field("last_accuracy", s.last_accuracy);
    w.field("final_accuracy", s.final_accuracy).field("peer_timeouts", s.peer_timeouts);
    w.field("exchange_errors", s.exchange_errors).field("bytes_sent", s.bytes_sent);
    w.field("bytes_received", s.bytes_received).field("done", s.done).field("failed", s.failed);
    w.end_object();
    w.key("coordinator");
    coordinator.write_status(w);
  });
}
#endif

}  // namespace

int run_node(const std::string& config_file) {
  node::NodeConfig config;
  try {
    config = node::load_node_config(config_file);
  } catch (const node::ConfigError& e) {
    std::fprintf(stderr, "raftfl: %s\n", e.what());
    return kExitUsage;
  }
  const std::string name = "node " + std::to_string(config.id);
  net::ReactorOptions reactor_options;
  reactor_options.poll_budget = config.poll_budget;
  reactor_options.cpu = config.cpu;
  reactor_options.name = "reactor";
  net::Reactor reactor(reactor_options);
  auto& io = reactor.context();

  std::unique_ptr<node::RaftNode> raft_node;
  std::unique_ptr<node::AdminServer> admin;
#if RAFTFL_TRAINING
  std::unique_ptr<node::Worker> worker;
#else
  // A build without training (RAFTFL_TRAINING=OFF) runs the control plane only.
  struct NoWorker {
    void start() {}
    void stop() {}
  };
  std::unique_ptr<NoWorker> worker;
  if (config.training.enabled) {
    std::fprintf(stderr, "raftfl: %s: training.enabled: this raftfl was built without training (RAFTFL_TRAINING=OFF)\n",
                 name.c_str());
    return kExitUsage;
  }
#endif
  std::unique_ptr<node::Coordinator> coordinator;
  try {
    raft_node = std::make_unique<node::RaftNode>(io, config);
    admin = std::make_unique<node::AdminServer>(io, *raft_node, config.admin);
#if RAFTFL_TRAINING
    if (config.training.enabled) {
      try {
        worker = std::make_unique<node::Worker>(io, *raft_node, config);
      } catch (const train::DatasetError& e) {
        std::fprintf(stderr, "raftfl: %s: training data: %s (install the dataset-fashion-mnist package, or set training.dataset_dir)\n",
                     name.c_str(), e.what());
        return kExitUsage;
      }
      coordinator = std::make_unique<node::Coordinator>(io, *raft_node, config);
      wire_training_roles(*raft_node, *admin, *worker, *coordinator, config.id);
    }
#endif
    raft_node->start();
    admin->start();
    if (worker) worker->start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raftfl: %s: cannot start: %s\n", name.c_str(), e.what());
    return kExitFailure;
  }

  // SIGTERM (systemd, the benchmark) and SIGINT stop the node cleanly: the write in
  // flight completes, connections close, the log is closed.
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const asio::error_code& ec, int signal_number) {
    if (ec) return;
    log::line(log::Level::kInfo, "node", name + ": signal " + std::to_string(signal_number) + ", stopping");
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          admin->stop();
          if (worker) worker->stop();
          if (coordinator) coordinator->stop();
          co_await raft_node->stop();
          reactor.stop();
        },
        asio::detached);
  });
  log::line(log::Level::kInfo, "node",
            name + ": raft on " + config.listen.host + ":" + std::to_string(raft_node->listen_port()) + ", admin on " +
                config.admin.host + ":" + std::to_string(admin->port()) + ", transport " +
                (config.transport == node::TransportKind::kTcp ? "tcp" : "zmq") + ", storage " +
                (config.storage == node::StorageKind::kDisk ? config.data_dir.string() : std::string("memory")));
  std::fflush(stderr);
  try {
    reactor.run_here();
  } catch (...) {
    // Only what no handler may deal with gets here: a broken engine invariant met while
    // receiving (net/transport.hpp). No clean-up: it would run the broken node's handlers
    // once more.
    common::exit_on_failure("node", name + ": fatal", std::current_exception());
  }
  // Let the closed connections' aborted operations complete while the node still exists.
  reactor.drain();
  admin.reset();
  worker.reset();  // joins the training thread
  coordinator.reset();
  raft_node.reset();  // closes the storage after its last write
  log::line(log::Level::kInfo, "node", name + ": stopped");
  return kExitOk;
}

}  // namespace raftfl::app
