#pragma once

// The sending half of the ZeroMQ transport: one DEALER per peer, connected to that peer's
// ROUTER, which carries everything this node sends to it, with the queue of messages not
// yet handed to libzmq.
//
// Handshake: libzmq reconnects a DEALER by itself, so each DEALER is watched with a socket
// monitor and, on every ZMQ_EVENT_CONNECTED, a Hello goes first on the new connection
// (ZMQ_IMMEDIATE keeps messages off a connection until it exists, and no data goes out
// until the reply for the current connection accepted it). Only handshake replies come
// back on a DEALER.
//
// Zero copy: a message's Cap'n Proto segments are handed to libzmq as they are, each
// segment one part; libzmq frees a part from its own I/O thread once written, and the
// builder lives until every part of it is (SharedBuilder in zmq_outbound.cpp).

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "raftfl/net/transport.hpp"
#include "zmq_bridge.hpp"
#include "zmq_sockets.hpp"

namespace raftfl::net::zmqsock {

struct SharedBuilder;

class Outbound : public std::enable_shared_from_this<Outbound> {
 public:
  Outbound(asio::io_context& context, zmq::context_t& zmq_context, TransportOptions options);
  ~Outbound();

  // Opens and connects every peer's DEALER.
  void start();
  // Closes every DEALER with linger 0 and drops what was queued and not handed to libzmq.
  void stop();
  // Opens DEALERs to new peers (and to peers at a new endpoint); closes those of peers
  // left out, dropping their queues.
  void set_peers(const std::vector<PeerEndpoint>& peers);
  // Queues `message` for `to`; false (counted in sends_refused) if the peer is unknown,
  // the message too large, or the peer's queue full.
  bool send(NodeId to, std::unique_ptr<capnp::MessageBuilder> message);
  // True while the DEALER to `peer` is on a connection whose Hello `peer` accepted.
  bool connected(NodeId peer) const;
  // frames_sent, bytes_sent, sends_refused and its part of connections_refused.
  const TransportStats& stats() const { return stats_; }

  bool stopped = false;  // read by the pending waits and posts (zmq_bridge.hpp)

 private:
  struct ReleaseHolder {
    void operator()(SharedBuilder* holder) const;
  };

  struct Pending {
    std::unique_ptr<SharedBuilder, ReleaseHolder> holder;
    kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments;
    std::string head;
    std::size_t bytes = 0;
    // Parts already handed to libzmq (0 is the head). Nonzero only if libzmq took the
    // start of a message and refused the rest, which it does not do for a DEALER; kept so
    // that the rest would follow before anything else.
    std::size_t next_part = 0;
  };

  struct Peer {
    PeerEndpoint endpoint;
    std::string address;
    bool member = true;  // false once closed by set_peers: its pending waits and posts do nothing
    zmq::socket_t dealer;
    zmq::socket_t monitor;
    SocketWatch dealer_watch;
    SocketWatch monitor_watch;
    CoalescedPost again;

    std::deque<Pending> queue;
    std::size_t queued_bytes = 0;
    // The bytes handed to libzmq and not yet written: they stay inside send_queue_bytes,
    // as bytes in the TCP transport's queue do until the kernel has them.
    std::shared_ptr<std::atomic<std::size_t>> in_flight = std::make_shared<std::atomic<std::size_t>>(0);

    // The DEALER's current connection, as the monitor reported it.
    bool link_up = false;
    std::uint32_t epoch = 0;      // connections so far; the tag of this connection's Hello
    bool hello_due = false;       // the current connection has not had its Hello yet
    bool awaiting_reply = false;  // its Hello went out, no reply yet
    bool admitted = false;        // the peer accepted the current connection's Hello
    // A refused Hello is said again after reconnect_max on the same connection: the peer
    // may add us to its members later, and libzmq keeps the connection open meanwhile.
    std::unique_ptr<asio::steady_timer> hello_retry;
  };

  void open(NodeId id, Peer& peer);
  static void close(Peer& peer);
  void service(NodeId id, Peer& peer);
  void arm(NodeId id, Peer& peer);
  void come_back(NodeId id, Peer& peer);
  static void drain_monitor(Peer& peer);
  void receive_reply(NodeId id, Peer& peer);
  static bool wants_to_write(const Peer& peer);
  bool write_some(Peer& peer);
  static bool push_parts(zmq::socket_t& dealer, Pending& m);
  std::size_t finish_front(Peer& peer);

  asio::io_context& context_;
  zmq::context_t& zmq_context_;
  const TransportOptions options_;
  // The waits and posts of a peer hold references to it: a peer that leaves or moves is
  // closed and kept in `retired_`, and a new entry takes its place.
  std::map<NodeId, std::unique_ptr<Peer>> peers_;
  std::vector<std::unique_ptr<Peer>> retired_;
  std::uint64_t opens_ = 0;  // makes each monitor's inproc address unique
  bool started_ = false;
  TransportStats stats_;

  std::vector<zmq::message_t> parts_;
  Segments segments_;
};

}  // namespace raftfl::net::zmqsock
