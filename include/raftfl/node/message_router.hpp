#pragma once

#include <capnp/message.h>

#include <cstdint>
#include <functional>
#include <map>

#include "raftfl/net/transport.hpp"
#include "raftfl/wire/gossip_codec.hpp"

namespace raftfl::node {

// Raft and the learning traffic (model chunks, round reports) share one transport: the
// router is its receive handler and hands each envelope to the part of the node that
// registered for its body, so that no part has to pass another's messages on.
class MessageRouter {
 public:
  // The reader is valid during the call only. What a handler throws leaves receive()
  // unchanged, with the transport's meaning (net/transport.hpp).
  using Handler = std::function<void(net::NodeId from, capnp::MessageReader& reader)>;

  MessageRouter(std::uint64_t cluster_id, net::NodeId self) : cluster_id_(cluster_id), self_(self) {}

  // One handler per body; registering again replaces it. A body nobody registered for
  // (a newer node's kind among them) is dropped.
  void route(wire::EnvelopeBody body, Handler handler);
  // Throws wire::DecodeError for an envelope addressed to another cluster or node, or
  // claiming another sender than the connection's.
  void receive(net::NodeId from, capnp::MessageReader& reader);

 private:
  std::uint64_t cluster_id_;
  net::NodeId self_;
  std::map<wire::EnvelopeBody, Handler> handlers_;
};

}  // namespace raftfl::node
