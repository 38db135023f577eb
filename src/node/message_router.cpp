#include "raftfl/node/message_router.hpp"

#include <string>

#include "raftfl/wire/raft_codec.hpp"

namespace raftfl::node {

void MessageRouter::route(wire::EnvelopeBody body, Handler handler) { handlers_[body] = std::move(handler); }

void MessageRouter::receive(net::NodeId from, capnp::MessageReader& reader) {
  wire::EnvelopeHeader header;
  const auto body = wire::envelope_body(reader, &header);
  if (header.cluster_id != cluster_id_ || header.receiver != self_ || header.sender != from) {
    throw wire::DecodeError("envelope from node " + std::to_string(from) + " names cluster " +
                            std::to_string(header.cluster_id) + ", sender " + std::to_string(header.sender) +
                            ", receiver " + std::to_string(header.receiver));
  }
  const auto it = handlers_.find(body);
  if (it != handlers_.end() && it->second) it->second(from, reader);
}

}  // namespace raftfl::node
