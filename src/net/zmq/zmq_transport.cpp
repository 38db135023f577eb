// ZeroMQ transport. Each node binds one ROUTER, which receives everything sent to this
// node (zmq_inbound), and keeps one DEALER per peer, connected to that peer's ROUTER,
// which carries everything this node sends to it (zmq_outbound). Messages use the
// multipart layout of zmq_wire.hpp; libzmq's I/O thread meets the reactor through
// zmq_bridge. This file owns the libzmq context and puts the two halves behind the
// Transport interface.
#include <asio/io_context.hpp>

#include <memory>
#include <utility>
#include <zmq.hpp>

#include "raftfl/net/transport.hpp"
#include "zmq_inbound.hpp"
#include "zmq_outbound.hpp"

namespace raftfl::net {
namespace {

class ZmqTransport final : public Transport {
 public:
  ZmqTransport(asio::io_context& context, TransportOptions options)
      : zmq_context_(1),
        inbound_(std::make_shared<zmqsock::Inbound>(context, zmq_context_, options)),
        outbound_(std::make_shared<zmqsock::Outbound>(context, zmq_context_, std::move(options))) {}

  ~ZmqTransport() override { stop(); }

  void start(ReceiveHandler handler) override {
    if (stopped_ || started_) return;
    started_ = true;
    outbound_->start();
    inbound_->start(std::move(handler));
  }

  bool send(NodeId to, std::unique_ptr<capnp::MessageBuilder> message) override {
    return outbound_->send(to, std::move(message));
  }

  void set_peers(const std::vector<PeerEndpoint>& peers) override {
    if (stopped_) return;
    inbound_->set_peers(peers);
    outbound_->set_peers(peers);
  }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    inbound_->stop();
    outbound_->stop();
    // Every socket is closed with linger 0: this does not wait for the network.
    zmq_context_.close();
  }

  std::uint16_t listen_port() const override { return inbound_->port(); }

  // True while this node's DEALER to `peer` is on a connection whose Hello `peer`
  // accepted: what send() queues now goes out at once. The other direction is the peer's
  // own DEALER; the ROUTER cannot tell when one of its connections drops, so it is not
  // part of this. A pair is fully up when both ends say connected.
  bool connected(NodeId peer) const override { return outbound_->connected(peer); }

  TransportStats stats() const override {
    const TransportStats& in = inbound_->stats();
    TransportStats total = outbound_->stats();
    total.frames_received = in.frames_received;
    total.bytes_received = in.bytes_received;
    total.frames_rejected = in.frames_rejected;
    total.connections_refused += in.connections_refused;
    return total;
  }

 private:
  // Declared before the halves: their sockets must close before the context terminates.
  zmq::context_t zmq_context_;
  std::shared_ptr<zmqsock::Inbound> inbound_;
  std::shared_ptr<zmqsock::Outbound> outbound_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace

std::unique_ptr<Transport> make_zmq_transport(asio::io_context& context, TransportOptions options) {
  return std::make_unique<ZmqTransport>(context, std::move(options));
}

}  // namespace raftfl::net
