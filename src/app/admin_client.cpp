#include "admin_client.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace raftfl::app {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace

AdminClient::AdminClient(const node::Endpoint& endpoint, std::chrono::milliseconds timeout)
    : where_(endpoint.to_string()) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(endpoint.host.c_str(), std::to_string(endpoint.port).c_str(), &hints, &found);
  if (rc != 0) throw AdminError(where_ + ": " + ::gai_strerror(rc));
  std::string last_error = "no address";
  for (auto* a = found; a != nullptr && fd_ < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof(err);
      const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (ready == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
        fd_ = fd;
        break;
      }
      // Only a poll that returned 0 is a timeout: a failed poll or getsockopt has its own errno.
      if (ready < 0 || (ready == 1 && err == 0)) err = errno;
      last_error = err != 0 ? std::strerror(err) : "connection timed out";
    } else {
      last_error = std::strerror(errno);
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  if (fd_ < 0) throw AdminError(where_ + ": cannot connect: " + last_error);
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

AdminClient::~AdminClient() {
  if (fd_ >= 0) ::close(fd_);
}

std::string AdminClient::request(const std::string& line, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string out = line + "\n";
  std::size_t sent = 0;
  while (sent < out.size()) {
    const auto n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) throw AdminError(where_ + ": send: " + std::strerror(errno));
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) == 0) throw AdminError(where_ + ": timed out sending");
  }
  for (;;) {
    const auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string reply = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return reply;
    }
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, remaining_ms(deadline));
    if (ready == 0) throw AdminError(where_ + ": no reply within " + std::to_string(timeout.count()) + " ms");
    if (ready < 0 && errno == EINTR) continue;
    char chunk[64 << 10];
    const auto n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n == 0) throw AdminError(where_ + ": connection closed before the reply");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      throw AdminError(where_ + ": recv: " + std::strerror(errno));
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

std::string admin_request(const node::Endpoint& endpoint, const std::string& line, std::chrono::milliseconds timeout) {
  AdminClient client(endpoint, timeout);
  return client.request(line, timeout);
}

}  // namespace raftfl::app
