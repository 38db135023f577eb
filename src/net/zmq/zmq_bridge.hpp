#pragma once

// The bridge between libzmq's own I/O thread and the reactor. Every socket's ZMQ_FD is
// watched by the io_context through a dup()'d descriptor; the descriptor only says that
// the socket's state may have changed, and only until the next call on that socket, so
// after every wake and after every send or receive the owner asks ZMQ_EVENTS again (or
// receives until nothing is left) before it arms the watch again.
//
// A pending wait or post keeps its owner alive through a shared_ptr and does nothing once
// the owner's `stopped` is set: a handler that runs after the transport is gone finds
// valid state and returns.

#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include <memory>
#include <string>
#include <utility>
#include <zmq.hpp>

namespace raftfl::net::zmqsock {

void warn(const std::string& text);

class SocketWatch {
 public:
  // Watches `socket`'s ZMQ_FD through a duplicate owned by this watch.
  void open(asio::io_context& context, zmq::socket_t& socket);

  // Closes the duplicate (the socket's own descriptor stays libzmq's). An armed wait is
  // cancelled instead, and the duplicate closed by its handler once the cancellation
  // completed, so that no wait is in flight on a closed descriptor. (Waits that ended in
  // operation_aborted with nothing cancelled were Asio 1.22's io_uring cancellations with a
  // stale user-data field, which the build avoids: cmake/Dependencies.cmake.)
  void close();

  // Waits once for the descriptor to signal, then calls `on_wake()` on the io_context,
  // unless `owner->stopped` is set by then. `owner` holds this watch.
  template <typename Owner, typename OnWake>
  void arm(std::shared_ptr<Owner> owner, OnWake on_wake) {
    if (owner->stopped || armed_ || !descriptor_) return;
    armed_ = true;
    descriptor_->async_wait(asio::posix::descriptor_base::wait_read,
                            [this, owner = std::move(owner), on_wake](const asio::error_code& ec) {
                              armed_ = false;
                              if (owner->stopped) {
                                descriptor_.reset();
                                return;
                              }
                              if (ec && ec != asio::error::operation_aborted) {
                                warn(std::string("waiting on a ZeroMQ socket failed: ") + ec.message());
                                return;
                              }
                              // Woken, or aborted by something other than stop() (see
                              // close): look at the socket either way, which waits again.
                              on_wake();
                            });
  }

 private:
  std::unique_ptr<asio::posix::stream_descriptor> descriptor_;
  bool armed_ = false;
};

// Posts `work` to the io_context unless a post of it is already pending: used to come back
// to a socket after its per-wake budget was spent, or after a send queued something.
class CoalescedPost {
 public:
  template <typename Owner, typename Work>
  void post(asio::io_context& context, std::shared_ptr<Owner> owner, Work work) {
    if (owner->stopped || posted_) return;
    posted_ = true;
    asio::post(context, [this, owner = std::move(owner), work] {
      posted_ = false;
      if (!owner->stopped) work();
    });
  }

 private:
  bool posted_ = false;
};

}  // namespace raftfl::net::zmqsock
