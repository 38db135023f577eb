#include "raftfl/wire/handshake_codec.hpp"

#include "raftfl/schemas/transport.capnp.h"

namespace raftfl::wire {

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

}  // namespace raftfl::wire
