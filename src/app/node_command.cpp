#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/signal_set.hpp>
#include <asio/use_awaitable.hpp>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "commands.hpp"
#include "node_command.hpp"
#include "raftfl/common/failure.hpp"
#include "raftfl/common/log.hpp"
#include "raftfl/net/reactor.hpp"
#include "raftfl/node/admin_server.hpp"
#include "raftfl/node/config.hpp"
#include "raftfl/node/message_router.hpp"
#include "raftfl/node/node_io.hpp"
#include "raftfl/node/raft_driver.hpp"
#include "raftfl/node/replicated_state.hpp"
#include "raftfl/node/training_roles.hpp"

namespace raftfl::app {

namespace {

// The training executable is installed beside this one. Replacing the process keeps its
// pid, so that a supervisor (systemd, the demo, the benchmarks) sees one process per node.
int exec_training_binary(const std::string& config_file, const std::string& name) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    std::fprintf(stderr, "raftfl: %s: training.enabled: cannot find %s: /proc/self/exe: %s\n", name.c_str(),
                 kTrainingBinary, ec.message().c_str());
    return kExitFailure;
  }
  const auto trainer = self.parent_path() / kTrainingBinary;
  if (!std::filesystem::exists(trainer)) {
    std::fprintf(stderr, "raftfl: %s: training.enabled: %s not found beside %s (this build has no training)\n",
                 name.c_str(), kTrainingBinary, self.c_str());
    return kExitUsage;
  }
  const std::string path = trainer.string();
  std::fflush(stderr);
  const char* argv[] = {path.c_str(), "node", "--config", config_file.c_str(), nullptr};
  ::execv(path.c_str(), const_cast<char* const*>(argv));
  std::fprintf(stderr, "raftfl: %s: cannot run %s: %s\n", name.c_str(), path.c_str(), std::strerror(errno));
  return kExitFailure;
}

// One node's parts. The state and the router outlive the driver, whose callbacks they hold.
struct NodeParts {
  node::ReplicatedState state;
  node::MessageRouter router;
  std::unique_ptr<node::RaftDriver> driver;
  std::unique_ptr<node::AdminServer> admin;
  std::unique_ptr<node::TrainingRoles> roles;

  explicit NodeParts(const node::NodeConfig& config) : router(config.cluster_id, config.id) {}

  // kExitOk, or the exit code after saying on stderr why the node cannot start.
  int start(asio::io_context& io, const node::NodeConfig& config, const node::TrainingRolesFactory& training,
            const std::string& name) {
    try {
      driver = std::make_unique<node::RaftDriver>(io, config, node::open_storage(config),
                                                  node::make_transport(io, config), state, router);
      admin = std::make_unique<node::AdminServer>(io, *driver, config.admin);
      if (config.training.enabled) {
        try {
          roles = training(io, *driver, state, router, *admin, config);
        } catch (const node::TrainingSetupError& e) {
          std::fprintf(stderr, "raftfl: %s: %s\n", name.c_str(), e.what());
          return kExitUsage;
        }
      }
      driver->start();
      admin->start();
      if (roles) roles->start();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "raftfl: %s: cannot start: %s\n", name.c_str(), e.what());
      return kExitFailure;
    }
    return kExitOk;
  }

  // The write in flight completes, connections close, the log is closed; then the
  // reactor's loop ends.
  asio::awaitable<void> stop(net::Reactor& reactor) {
    admin->stop();
    if (roles) roles->stop();
    co_await driver->stop();
    reactor.stop();
  }

  // After the reactor's loop has ended.
  void destroy() {
    admin.reset();
    roles.reset();   // joins the training thread
    driver.reset();  // closes the storage after its last write
  }
};

std::string describe(const node::NodeConfig& config, const NodeParts& parts, const std::string& name) {
  return name + ": raft on " + config.listen.host + ":" + std::to_string(parts.driver->listen_port()) +
         ", admin on " + config.admin.host + ":" + std::to_string(parts.admin->port()) + ", transport " +
         (config.transport == node::TransportKind::kTcp ? "tcp" : "zmq") + ", storage " +
         (config.storage == node::StorageKind::kDisk ? config.data_dir.string() : std::string("memory"));
}

}  // namespace

int run_node(const std::string& config_file, const node::TrainingRolesFactory& training) {
  node::NodeConfig config;
  try {
    config = node::load_node_config(config_file);
  } catch (const node::ConfigError& e) {
    std::fprintf(stderr, "raftfl: %s\n", e.what());
    return kExitUsage;
  }
  const std::string name = "node " + std::to_string(config.id);
  if (config.training.enabled && !training) return exec_training_binary(config_file, name);

  net::ReactorOptions reactor_options;
  reactor_options.poll_budget = config.poll_budget;
  reactor_options.cpu = config.cpu;
  reactor_options.name = "reactor";
  net::Reactor reactor(reactor_options);
  auto& io = reactor.context();
  NodeParts parts(config);
  if (const int rc = parts.start(io, config, training, name); rc != kExitOk) return rc;

  // SIGTERM (systemd, the benchmark) and SIGINT stop the node cleanly.
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const asio::error_code& ec, int signal_number) {
    if (ec) return;
    log::line(log::Level::kInfo, "node", name + ": signal " + std::to_string(signal_number) + ", stopping");
    asio::co_spawn(io, parts.stop(reactor), asio::detached);
  });
  log::line(log::Level::kInfo, "node", describe(config, parts, name));
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
  parts.destroy();
  log::line(log::Level::kInfo, "node", name + ": stopped");
  return kExitOk;
}

}  // namespace raftfl::app
