#include "recording_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace raftfl::app::testing {

namespace {

std::runtime_error system_error(const std::string& what) {
  return std::runtime_error("recording proxy: " + what + ": " + std::strerror(errno));
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  return addr;
}

// Writes all of `n` bytes; false once the other side is gone.
bool write_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

struct RecordingProxy::Link {
  int client = -1;
  int server = -1;
  Recording recording;  // each direction up to the record limit
  ~Link() {
    if (client >= 0) ::close(client);
    if (server >= 0) ::close(server);
  }
};

RecordingProxy::RecordingProxy(std::size_t record_limit) : record_limit_(record_limit) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw system_error("socket");
  auto addr = loopback(0);
  socklen_t len = sizeof(addr);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) throw system_error("bind");
  if (::listen(listen_fd_, 16) != 0) throw system_error("listen");
  if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) throw system_error("getsockname");
  port_ = ntohs(addr.sin_port);
}

RecordingProxy::~RecordingProxy() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  for (auto& t : pumps_) t.join();
  ::close(listen_fd_);
}

void RecordingProxy::forward_to(std::uint16_t target) {
  target_ = target;
  acceptor_ = std::thread([this] { accept_loop(); });
}

std::vector<RecordingProxy::Recording> RecordingProxy::recordings() const {
  std::lock_guard lock(mutex_);
  std::vector<Recording> out;
  for (const auto& link : links_) out.push_back(link->recording);
  return out;
}

void RecordingProxy::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    auto link = std::make_shared<Link>();
    link->client = client;
    link->server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const auto addr = loopback(target_);
    if (link->server < 0 || ::connect(link->server, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0)
      continue;  // the node is not up yet: the peer dials again, as it would the node
    const int one = 1;
    ::setsockopt(link->client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::setsockopt(link->server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard lock(mutex_);
    links_.push_back(link);
    pumps_.emplace_back([this, link] { pump(link); });
  }
}

void RecordingProxy::pump(const std::shared_ptr<Link>& link) {
  char buffer[64 * 1024];
  pollfd fds[2] = {{link->client, POLLIN, 0}, {link->server, POLLIN, 0}};
  while (!stop_) {
    if (::poll(fds, 2, 50) <= 0) continue;
    for (int side = 0; side < 2; ++side) {
      if (fds[side].revents == 0) continue;
      const ssize_t n = ::recv(fds[side].fd, buffer, sizeof(buffer), 0);
      if (n <= 0) {
        // One side closed: close both, as a peer and the node would see it.
        ::shutdown(link->client, SHUT_RDWR);
        ::shutdown(link->server, SHUT_RDWR);
        return;
      }
      const auto bytes = static_cast<std::size_t>(n);
      {
        std::lock_guard lock(mutex_);
        auto& copy = side == 0 ? link->recording.to_target : link->recording.from_target;
        copy.append(buffer, std::min(bytes, record_limit_ - std::min(record_limit_, copy.size())));
      }
      if (!write_all(side == 0 ? link->server : link->client, buffer, bytes)) {
        ::shutdown(link->client, SHUT_RDWR);
        ::shutdown(link->server, SHUT_RDWR);
        return;
      }
    }
  }
}

}  // namespace raftfl::app::testing
