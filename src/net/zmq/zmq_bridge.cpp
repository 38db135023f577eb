#include "zmq_bridge.hpp"

#include <fcntl.h>

#include <cerrno>
#include <system_error>

namespace raftfl::net::zmqsock {

void SocketWatch::open(asio::io_context& context, zmq::socket_t& socket) {
  const int fd = ::fcntl(socket.get(zmq::sockopt::fd), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "zmq transport: dup of ZMQ_FD");
  descriptor_ = std::make_unique<asio::posix::stream_descriptor>(context, fd);
}

void SocketWatch::close() {
  if (!descriptor_) return;
  if (!armed_) {
    descriptor_.reset();
    return;
  }
  asio::error_code ignored;
  descriptor_->cancel(ignored);
}

}  // namespace raftfl::net::zmqsock
