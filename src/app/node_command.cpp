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
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

#include "commands.hpp"
#include "join_cluster.hpp"
#include "leave_cluster.hpp"
#include "node_command.hpp"
#include "raftfl/common/durable_file.hpp"
#include "raftfl/common/failure.hpp"
#include "raftfl/common/log.hpp"
#include "raftfl/net/reactor.hpp"
#include "raftfl/node/admin_server.hpp"
#include "raftfl/node/config.hpp"
#include "raftfl/node/membership_manager.hpp"
#include "raftfl/node/message_router.hpp"
#include "raftfl/node/node_io.hpp"
#include "raftfl/node/raft_driver.hpp"
#include "raftfl/node/replicated_state.hpp"
#include "raftfl/node/training_roles.hpp"

namespace raftfl::app {

namespace {

// The training executable is installed beside this one. Replacing the process keeps its
// pid, so that a supervisor (systemd, the demo, the benchmarks) sees one process per node.
int exec_training_binary(const std::string& config_file, const NodeStart& start, const std::string& name) {
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
  std::vector<const char*> argv = {path.c_str(), "node", "--config", config_file.c_str()};
  if (!start.join.empty()) {
    argv.push_back("--join");
    argv.push_back(start.join.c_str());
  }
  if (start.bootstrap) argv.push_back("--bootstrap");
  argv.push_back(nullptr);
  ::execv(path.c_str(), const_cast<char* const*>(argv.data()));
  std::fprintf(stderr, "raftfl: %s: cannot run %s: %s\n", name.c_str(), path.c_str(), std::strerror(errno));
  return kExitFailure;
}

// How long a stopping node tries to leave the configuration. Bounded tightly: when the whole
// cluster stops at once there is soon no leader to ask, and a supervisor waits for us.
constexpr std::chrono::milliseconds kLeaveLimit{3000};

// One node's parts. The state and the router outlive the driver, whose callbacks they hold.
struct NodeParts {
  node::ReplicatedState state;
  node::MessageRouter router;
  std::unique_ptr<node::RaftDriver> driver;
  std::unique_ptr<node::AdminServer> admin;
  std::unique_ptr<node::MembershipManager> membership;
  std::unique_ptr<node::TrainingRoles> roles;

  explicit NodeParts(const node::NodeConfig& config) : router(config.cluster_id, config.id) {}

  // kExitOk, or the exit code after saying on stderr why the node cannot start.
  int start(asio::io_context& io, const node::NodeConfig& config, const node::TrainingRolesFactory& training,
            const std::string& name, node::EmptyStart empty_start) {
    try {
      driver = std::make_unique<node::RaftDriver>(io, config, node::open_storage(config),
                                                  node::make_transport(io, config), state, router, empty_start);
      admin = std::make_unique<node::AdminServer>(io, *driver, config.admin);
      membership = std::make_unique<node::MembershipManager>(io, *driver);
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
      membership->start();
      if (roles) roles->start();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "raftfl: %s: cannot start: %s\n", name.c_str(), e.what());
      return kExitFailure;
    }
    return kExitOk;
  }

  // The write in flight completes, connections close, the log is closed; then the
  // reactor's loop ends.
  asio::awaitable<void> stop(asio::io_context& io, net::Reactor& reactor) {
    // A learner (or any node told to) leaves the configuration first, so that the cluster
    // does not wait for it or pair it; the node still serves Raft meanwhile.
    membership->stop();
    if (should_leave(*driver)) co_await leave_cluster(io, *driver, kLeaveLimit);
    admin->stop();
    if (roles) roles->stop();
    co_await driver->stop();
    reactor.stop();
  }

  // After the reactor's loop has ended.
  void destroy() {
    admin.reset();
    membership.reset();
    roles.reset();   // joins the training thread
    driver.reset();  // closes the storage after its last write
  }
};

// Where a node that joined without a configured id keeps the id it was given.
constexpr const char* kMemberIdFile = "member-id";

// The id this node was given when it joined without one, if it did.
std::optional<raft::NodeId> assigned_id(const node::NodeConfig& config) {
  if (config.storage != node::StorageKind::kDisk) return std::nullopt;
  std::ifstream in(config.data_dir / kMemberIdFile);
  raft::NodeId id = 0;
  if (!(in >> id) || id == raft::kNoNode) return std::nullopt;
  return id;
}

// A node whose data directory holds a log is a member already, whatever the command line
// says; one that was joining when it stopped must be started to join again, never as a
// cluster of its own.
int prepare_join(node::NodeConfig& config, const std::optional<node::Endpoint>& contact, bool bootstrap,
                 std::string& name, node::EmptyStart& empty_start) {
  const bool disk = config.storage == node::StorageKind::kDisk;
  const auto marker = config.data_dir / "joining";
  std::error_code ec;
  const bool has_log = disk && !std::filesystem::is_empty(config.data_dir / "snap", ec) && !ec;
  if (has_log) {
    if (contact || bootstrap)
      log::line(log::Level::kInfo, "node", name + ": already a member (a log in " + config.data_dir.string() + "); " +
                                               (contact ? "--join" : "--bootstrap") + " ignored");
    return kExitOk;
  }
  if (!contact) {
    if (disk && std::filesystem::exists(marker, ec)) {
      std::fprintf(stderr, "raftfl: %s: %s was joining a cluster when it stopped; start it again with --join HOST:PORT\n",
                   name.c_str(), config.data_dir.string().c_str());
      return kExitUsage;
    }
    if (bootstrap && !config.peers.empty()) {
      std::fprintf(stderr, "raftfl: %s: --bootstrap founds a cluster of this node alone, but the file lists %zu [[peers]]\n",
                   name.c_str(), config.peers.size());
      return kExitUsage;
    }
    if (!bootstrap && config.peers.empty()) {
      std::fprintf(stderr, "raftfl: %s: %s holds no log and the file lists no [[peers]]: start with --bootstrap to found a "
                           "cluster of this node alone, or --join HOST:PORT to join one\n",
                   name.c_str(), disk ? config.data_dir.string().c_str() : "memory storage");
      return kExitUsage;
    }
    if (bootstrap) log::line(log::Level::kInfo, "node", name + ": founding a cluster of this node alone");
    return kExitOk;
  }
  try {
    if (disk) {
      std::filesystem::create_directories(config.data_dir);
      common::replace_file_durably(marker, contact->to_string() + "\n");
    }
    log::line(log::Level::kInfo, "node", name + ": joining the cluster at " + contact->to_string());
    auto joined = join_cluster(config, *contact, std::chrono::seconds(60));
    if (config.id == raft::kNoNode) {
      // Kept beside the log: a restart, with --join or without, is this node again.
      if (disk) common::replace_file_durably(config.data_dir / kMemberIdFile, std::to_string(joined.id) + "\n");
      config.id = joined.id;
      name = "node " + std::to_string(config.id);
      log::line(log::Level::kInfo, "node", name + ": the cluster gave this node id " + std::to_string(config.id));
    }
    config.peers = std::move(joined.members);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raftfl: %s: cannot join: %s\n", name.c_str(), e.what());
    return kExitFailure;
  }
  log::line(log::Level::kInfo, "node", name + ": added as a learner; " + std::to_string(config.peers.size()) +
                                           " other members; waiting for the leader's snapshot");
  empty_start = node::EmptyStart::kJoin;
  return kExitOk;
}

std::string describe(const node::NodeConfig& config, const NodeParts& parts, const std::string& name) {
  return name + ": raft on " + config.listen.host + ":" + std::to_string(parts.driver->listen_port()) +
         ", admin on " + config.admin.host + ":" + std::to_string(parts.admin->port()) + ", transport " +
         (config.transport == node::TransportKind::kTcp ? "tcp" : "zmq") + ", storage " +
         (config.storage == node::StorageKind::kDisk ? config.data_dir.string() : std::string("memory"));
}

}  // namespace

int run_node(const std::string& config_file, const NodeStart& start, const node::TrainingRolesFactory& training) {
  node::NodeConfig config;
  std::optional<node::Endpoint> contact;
  try {
    config = node::load_node_config(config_file, node::IdRule::kMayBeAssigned);
  } catch (const node::ConfigError& e) {
    std::fprintf(stderr, "raftfl: %s\n", e.what());
    return kExitUsage;
  }
  try {
    if (!start.join.empty()) contact = node::parse_endpoint(start.join);
  } catch (const node::ConfigError& e) {
    std::fprintf(stderr, "raftfl: --join: %s\n", e.what());
    return kExitUsage;
  }
  if (config.id == raft::kNoNode) {
    if (const auto id = assigned_id(config)) {
      config.id = *id;
    } else if (!contact) {
      std::fprintf(stderr, "raftfl: %s: node.id: required (or start with --join HOST:PORT to be given one)\n",
                   config_file.c_str());
      return kExitUsage;
    }
  }
  std::string name = config.id == raft::kNoNode ? std::string("new node") : "node " + std::to_string(config.id);
  if (config.training.enabled && !training) return exec_training_binary(config_file, start, name);

  node::EmptyStart empty_start = node::EmptyStart::kBootstrap;
  if (const int rc = prepare_join(config, contact, start.bootstrap, name, empty_start); rc != kExitOk) return rc;

  net::ReactorOptions reactor_options;
  reactor_options.poll_budget = config.poll_budget;
  reactor_options.cpu = config.cpu;
  reactor_options.name = "reactor";
  net::Reactor reactor(reactor_options);
  auto& io = reactor.context();
  NodeParts parts(config);
  if (const int rc = parts.start(io, config, training, name, empty_start); rc != kExitOk) return rc;

  // SIGTERM (systemd, the benchmark) and SIGINT stop the node cleanly.
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const asio::error_code& ec, int signal_number) {
    if (ec) return;
    log::line(log::Level::kInfo, "node", name + ": signal " + std::to_string(signal_number) + ", stopping");
    asio::co_spawn(io, parts.stop(io, reactor), asio::detached);
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
