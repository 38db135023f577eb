#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/signal_set.hpp>
#include <asio/use_awaitable.hpp>

#include <csignal>
#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "raftfl/common/log.hpp"
#include "raftfl/net/reactor.hpp"
#include "raftfl/node/admin_server.hpp"
#include "raftfl/node/config.hpp"
#include "raftfl/node/raft_node.hpp"

namespace raftfl::app {

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
  try {
    raft_node = std::make_unique<node::RaftNode>(io, config);
    admin = std::make_unique<node::AdminServer>(io, *raft_node, config.admin);
    raft_node->start();
    admin->start();
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
  reactor.run_here();
  // Let the closed connections' aborted operations complete while the node still exists.
  reactor.drain();
  admin.reset();
  raft_node.reset();  // closes the storage after its last write
  log::line(log::Level::kInfo, "node", name + ": stopped");
  return kExitOk;
}

}  // namespace raftfl::app
