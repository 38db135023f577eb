#pragma once

// The receiving half of the ZeroMQ transport: the node's one ROUTER, which receives
// everything sent to this node. It admits a routing id (one per connection: the ROUTER
// numbers them and never reuses one) after a valid Hello, with the checks and log lines of
// the TCP transport, answers through the ROUTER, and hands the data messages of admitted
// connections to the receive handler. Anything else from a routing id that has not been
// admitted is dropped. Only decode errors refuse a message; any other exception from the
// handler leaves through the io_context's run() (transport.hpp).

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdint>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "raftfl/net/handshake.hpp"
#include "raftfl/net/transport.hpp"
#include "zmq_bridge.hpp"
#include "zmq_sockets.hpp"

namespace raftfl::net::zmqsock {

class Inbound : public std::enable_shared_from_this<Inbound> {
 public:
  // Binds the ROUTER now, so that a port conflict is the transport constructor's error and
  // the port is known before start().
  Inbound(asio::io_context& context, zmq::context_t& zmq_context, TransportOptions options);

  void start(Transport::ReceiveHandler handler);
  // Closes the ROUTER. May be called from inside the handler, which then finishes first.
  void stop();
  // The nodes whose Hellos are admitted from now on; an admitted connection of a node
  // left out is forgotten (what it sends next is dropped).
  void set_peers(const std::vector<PeerEndpoint>& peers);
  std::uint16_t port() const { return port_; }
  // frames_received, bytes_received, frames_rejected and its part of connections_refused.
  const TransportStats& stats() const { return stats_; }

  bool stopped = false;  // read by the pending waits and posts (zmq_bridge.hpp)

 private:
  void service();
  void handle_message(bool overflow);
  void handle_hello(const std::string& routing_id, const zmqwire::Head& head);
  void refuse(const std::string& routing_id, std::uint32_t tag, const std::string& reason);
  void forget(const std::string& routing_id);
  void send_reply(const std::string& routing_id, std::uint32_t tag, const HelloReply& reply);
  void deliver(NodeId from, const zmqwire::Head& head);
  void tell_displaced(const std::string& routing_id);
  std::string remote_of(std::string_view routing_id) const;
  void arm();
  void come_back();

  asio::io_context& context_;
  const TransportOptions options_;
  zmq::socket_t router_;
  SocketWatch watch_;
  CoalescedPost again_;
  std::uint16_t port_ = 0;

  Transport::ReceiveHandler handler_;
  bool delivering_ = false;  // inside the handler: stop() must not destroy it there
  bool drop_handler_ = false;
  // A connection whose Hello was accepted: the node it speaks for, and its Hello's tag.
  struct Admitted {
    NodeId node = 0;
    std::uint32_t tag = 0;
  };
  std::set<NodeId> peers_;
  std::map<std::string, Admitted, std::less<>> admitted_;  // by routing id
  // Per node: the routing id of the connection its Hello admitted last.
  std::map<NodeId, std::string> connection_of_;
  // Connections a newer one for the same node displaced: libzmq does not close those, so
  // their dialer would go on sending into the void; it is told, with a refusal under its
  // Hello's tag, to say hello again.
  struct Displaced {
    Admitted was;
    std::chrono::steady_clock::time_point told;
    bool removed = false;  // not displaced: the node is no longer a peer
  };
  std::map<std::string, Displaced, std::less<>> displaced_;
  // Once per connection, not once per message: a routing id is one connection.
  std::string last_unadmitted_warned_;
  std::string last_refused_;
  TransportStats stats_;

  std::vector<zmq::message_t> parts_;
  Segments segments_;
};

}  // namespace raftfl::net::zmqsock
