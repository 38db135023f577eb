#include "local_cluster.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "admin_client.hpp"

namespace raftfl::app {
namespace {

using Clock = std::chrono::steady_clock;

// Loopback ports reserved for the cluster's nodes: each is bound (SO_REUSEADDR, never
// listening) and stays bound until the cluster is gone. The kernel hands no reserved port
// to anyone else's bind(0) or outgoing connection, so tests running side by side cannot
// draw the same ports; a node binds its own with SO_REUSEADDR (as both transports and the
// admin endpoint do), which Linux allows next to a bound socket that does not listen.
// Closing the probes once chosen, as this once did, let a parallel test take a port
// before the node that was meant to listen on it started.
std::vector<std::uint16_t> reserve_ports(int count, std::vector<int>& fds) {
  std::vector<std::uint16_t> ports;
  for (int i = 0; i < count; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("cannot reserve a port: socket: ") + std::strerror(errno));
    fds.push_back(fd);
    const int one = 1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
      throw std::runtime_error(std::string("cannot reserve a port: setsockopt: ") + std::strerror(errno));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      throw std::runtime_error(std::string("cannot reserve a port: bind: ") + std::strerror(errno));
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::runtime_error(std::string("cannot reserve a port: getsockname: ") + std::strerror(errno));
    ports.push_back(ntohs(addr.sin_port));
  }
  return ports;
}

}  // namespace

LocalCluster::LocalCluster(LocalClusterOptions options) : options_(std::move(options)) {
  std::filesystem::create_directories(options_.dir);
  const auto ports = reserve_ports(2 * options_.nodes, reserved_ports_);
  for (int i = 0; i < options_.nodes; ++i) {
    node::NodeConfig c;
    c.id = static_cast<std::uint64_t>(i + 1);
    c.cluster_id = 42;
    c.data_dir = options_.dir / ("node" + std::to_string(c.id));
    c.listen = {"127.0.0.1", ports[static_cast<std::size_t>(2 * i)]};
    c.admin = {"127.0.0.1", ports[static_cast<std::size_t>(2 * i + 1)]};
    c.transport = options_.transport;
    c.storage = options_.storage;
    c.poll_budget = options_.poll_budget;
    c.snapshot_every = options_.snapshot_every;
    c.max_log_entries = options_.max_log_entries;
    configs_.emplace(c.id, c);
  }
  for (auto& [id, c] : configs_) {
    for (const auto& [other, oc] : configs_) {
      if (other != id) c.peers.push_back({other, oc.listen});
    }
    if (options_.customize) options_.customize(c);
    const auto file = config_file(id);
    std::ofstream out(file);
    if (!out) throw std::runtime_error("cannot create " + file.string() + ": " + std::strerror(errno));
    out << node::to_toml(c);
    out.close();
    if (!out) throw std::runtime_error("cannot write " + file.string() + ": " + std::strerror(errno));
  }
}

LocalCluster::~LocalCluster() {
  std::lock_guard lock(mutex_);
  for (auto& [id, pid] : pids_) {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  for (int fd : reserved_ports_) ::close(fd);
}

std::filesystem::path LocalCluster::log_file(std::uint64_t id) const {
  return options_.dir / ("node" + std::to_string(id) + ".log");
}

std::filesystem::path LocalCluster::config_file(std::uint64_t id) const {
  return options_.dir / ("node" + std::to_string(id) + ".toml");
}

void LocalCluster::start(std::uint64_t id, const std::vector<std::string>& extra_args) {
  std::lock_guard lock(mutex_);
  if (auto it = pids_.find(id); it != pids_.end() && it->second > 0) return;
  const std::string binary = options_.binary.string();
  const std::string config = config_file(id).string();
  const std::string log = log_file(id).string();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    } else {
      // The node then writes to our stderr instead: say why its log file is missing.
      std::fprintf(stderr, "cannot open %s: %s\n", log.c_str(), std::strerror(errno));
    }
    std::vector<const char*> argv = {"raftfl", "node", "--config", config.c_str()};
    for (const auto& arg : extra_args) argv.push_back(arg.c_str());
    // A node of no peers founds a cluster of one only when told to.
    if (configs_.at(id).peers.empty() && std::find(extra_args.begin(), extra_args.end(), "--join") == extra_args.end())
      argv.push_back("--bootstrap");
    argv.push_back(nullptr);
    ::execv(binary.c_str(), const_cast<char* const*>(argv.data()));
    std::fprintf(stderr, "exec %s: %s\n", binary.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  pids_[id] = pid;
}

void LocalCluster::start_all() {
  for (const auto& [id, c] : configs_) start(id);
}

void LocalCluster::kill(std::uint64_t id, int signal) {
  std::lock_guard lock(mutex_);
  auto it = pids_.find(id);
  if (it == pids_.end() || it->second <= 0) return;
  ::kill(it->second, signal);
  if (signal == SIGKILL) {
    ::waitpid(it->second, nullptr, 0);
    it->second = 0;
  }
}

std::optional<int> LocalCluster::wait_exit(std::uint64_t id, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      auto it = pids_.find(id);
      if (it == pids_.end() || it->second <= 0) return std::nullopt;
      int status = 0;
      if (::waitpid(it->second, &status, WNOHANG) == it->second) {
        it->second = 0;
        return status;
      }
    }
    if (Clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void LocalCluster::stop_all(std::chrono::milliseconds grace) {
  for (const auto& [id, c] : configs_) kill(id, SIGTERM);
  for (const auto& [id, c] : configs_)
    if (!wait_exit(id, grace)) kill(id, SIGKILL);
}

bool LocalCluster::running(std::uint64_t id) const {
  std::lock_guard lock(mutex_);
  auto it = pids_.find(id);
  return it != pids_.end() && it->second > 0;
}

std::optional<nlohmann::json> LocalCluster::status(std::uint64_t id, std::chrono::milliseconds timeout) {
  if (!running(id)) return std::nullopt;
  try {
    return nlohmann::json::parse(admin_request(configs_.at(id).admin, "status", timeout));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::uint64_t LocalCluster::wait_for_leader(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    for (const auto& [id, c] : configs_) {
      auto s = status(id);
      if (!s || s->value("role", "") != "leader") continue;
      bool all_connected = true;
      for (const auto& m : s->at("members")) {
        const auto member = m.at("id").get<std::uint64_t>();
        if (running(member) && !m.at("connected").get<bool>()) all_connected = false;
      }
      if (all_connected) return id;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return 0;
}

std::uint64_t LocalCluster::peak_rss_kib(std::uint64_t id) const {
  pid_t pid = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = pids_.find(id);
    if (it == pids_.end() || it->second <= 0) return 0;
    pid = it->second;
  }
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

}  // namespace raftfl::app
