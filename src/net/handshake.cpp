#include "raftfl/net/handshake.hpp"

#include <algorithm>

#include "raftfl/schemas/transport.capnp.h"

namespace raftfl::net {

void encode_hello(const Hello& hello, capnp::MessageBuilder& out) {
  auto h = out.initRoot<schema::Hello>();
  h.setProtocolVersion(hello.protocol_version);
  h.setClusterId(hello.cluster_id);
  h.setNodeId(hello.node_id);
  h.setExpectedPeer(hello.expected_peer);
}

Hello decode_hello(capnp::MessageReader& in) {
  auto h = in.getRoot<schema::Hello>();
  return Hello{h.getProtocolVersion(), h.getClusterId(), h.getNodeId(), h.getExpectedPeer()};
}

void encode_hello_reply(const HelloReply& reply, capnp::MessageBuilder& out) {
  auto r = out.initRoot<schema::HelloReply>();
  r.setAccepted(reply.accepted);
  r.setNodeId(reply.node_id);
  r.setReason(reply.reason);
}

HelloReply decode_hello_reply(capnp::MessageReader& in) {
  auto r = in.getRoot<schema::HelloReply>();
  return HelloReply{r.getAccepted(), r.getNodeId(), std::string(r.getReason().cStr(), r.getReason().size())};
}

Hello hello_to(const TransportOptions& options, NodeId peer) {
  return Hello{kProtocolVersion, options.cluster_id, options.self, peer};
}

HelloReply admit_hello(const std::optional<Hello>& hello, const TransportOptions& options,
                       const std::function<bool(NodeId)>& is_peer) {
  HelloReply reply{false, options.self, ""};
  if (!hello)
    reply.reason = "malformed hello";
  else if (hello->protocol_version != kProtocolVersion)
    reply.reason = "protocol version " + std::to_string(hello->protocol_version) + ", this node speaks " +
                   std::to_string(kProtocolVersion);
  else if (hello->cluster_id != options.cluster_id)
    reply.reason = "cluster id " + std::to_string(hello->cluster_id) + ", this node is in cluster " +
                   std::to_string(options.cluster_id);
  else if (hello->expected_peer != options.self)
    reply.reason = "dialed node " + std::to_string(hello->expected_peer) + " but reached node " +
                   std::to_string(options.self);
  else if (hello->node_id == options.self || !is_peer(hello->node_id))
    reply.reason = "node " + std::to_string(hello->node_id) + " is not a peer of this node";
  else
    reply.accepted = true;
  return reply;
}

std::string refusal_in(const std::optional<HelloReply>& reply, NodeId peer) {
  if (!reply) return "sent a malformed handshake reply";
  if (!reply->accepted) return "refused our connection: " + reply->reason;
  if (reply->node_id != peer) return "answered as node " + std::to_string(reply->node_id);
  return "";
}

}  // namespace raftfl::net
