#pragma once

#include <capnp/message.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace asio {
class io_context;
}

namespace raftfl::net {

using NodeId = std::uint64_t;

struct PeerEndpoint {
  NodeId id = 0;
  std::string host;
  std::uint16_t port = 0;
};

struct TransportOptions {
  std::uint64_t cluster_id = 1;
  NodeId self = 0;
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 0;  // 0: any free port, see Transport::listen_port()
  std::vector<PeerEndpoint> peers;
  // A frame above this is refused by the sender and, if one arrives, closes the
  // connection: nothing a peer sends can make us allocate more.
  std::size_t max_frame_bytes = 80u << 20;
  // Bytes queued for one peer before send() refuses more (backpressure). Raft resends
  // what was refused, so refusing is safe; growing without bound is not.
  std::size_t send_queue_bytes = 128u << 20;
  std::chrono::milliseconds reconnect_min{10};
  std::chrono::milliseconds reconnect_max{1000};
};

struct TransportStats {
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t sends_refused = 0;       // queue full, frame too large, peer unknown
  std::uint64_t connections_refused = 0; // handshakes that failed
  std::uint64_t frames_rejected = 0;     // oversize or malformed frames received
};

// Moves Cap'n Proto messages between the nodes of one cluster (Gloo-style: a small
// interface, one folder per transport). Everything runs on the io_context's thread:
// start(), send() and stop() are called there and the receive handler runs there.
class Transport {
 public:
  // `message` is valid only during the call: it is read in place from the receive buffer.
  //
  // What the handler may throw, the same for every transport:
  // - A decode error, kj::Exception (Cap'n Proto found the message malformed) or
  //   wire::DecodeError (a codec did): the sender's fault. The message is refused: counted
  //   in frames_rejected and logged; TCP closes the connection, ZeroMQ drops the message.
  // - Anything else, raft::InvariantViolation above all: the receiver's own state is
  //   broken, and refusing the message would let it carry on. The exception leaves the
  //   io_context's run() (or poll(), run_one(), run_for()) that called the handler; the
  //   transport may then only be stopped and destroyed. The node ends the process on it
  //   (exit status 1, the message in its log).
  using ReceiveHandler = std::function<void(NodeId from, capnp::MessageReader& message)>;

  virtual ~Transport() = default;

  virtual void start(ReceiveHandler handler) = 0;
  // Queues `message` for `to`; the transport keeps the builder alive until its segments
  // are written (they are not copied). False when refused (see TransportStats).
  virtual bool send(NodeId to, std::unique_ptr<capnp::MessageBuilder> message) = 0;
  // Replaces the set of peers (a membership change): a new peer is dialled (by the rule
  // that the lower id dials) and its connections admitted; a peer whose endpoint changed
  // is dialled again there; a peer left out has its connection closed, its queue dropped,
  // and is refused from then on. May be called before or after start().
  virtual void set_peers(const std::vector<PeerEndpoint>& peers) = 0;
  // Closes every connection; no handler runs after it returns.
  virtual void stop() = 0;

  virtual std::uint16_t listen_port() const = 0;
  // True once a handshake with `peer` has succeeded and the connection is up.
  virtual bool connected(NodeId peer) const = 0;
  virtual TransportStats stats() const = 0;
};

std::unique_ptr<Transport> make_tcp_transport(asio::io_context& context, TransportOptions options);
std::unique_ptr<Transport> make_zmq_transport(asio::io_context& context, TransportOptions options);

}  // namespace raftfl::net
