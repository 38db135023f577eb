#pragma once

#include <capnp/message.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "raftfl/net/transport.hpp"

namespace raftfl::net {

// The first message each side of a new connection sends (schemas/transport.capnp), and
// the rules by which every transport admits or refuses a connection.

// Bumped when a change would make old and new nodes misread each other; additive schema
// changes do not need it.
inline constexpr std::uint32_t kProtocolVersion = 1;

struct Hello {
  std::uint32_t protocol_version = kProtocolVersion;
  std::uint64_t cluster_id = 0;
  std::uint64_t node_id = 0;
  std::uint64_t expected_peer = 0;
};

struct HelloReply {
  bool accepted = false;
  std::uint64_t node_id = 0;
  std::string reason;
};

void encode_hello(const Hello& hello, capnp::MessageBuilder& out);
Hello decode_hello(capnp::MessageReader& in);
void encode_hello_reply(const HelloReply& reply, capnp::MessageBuilder& out);
HelloReply decode_hello_reply(capnp::MessageReader& in);

// What the node of `options` says first when it dials `peer`.
Hello hello_to(const TransportOptions& options, NodeId peer);

// The listener's answer to `hello` (nullopt: what arrived did not decode as one): accepted
// when it speaks this protocol version, is in this cluster, meant to reach this node and
// comes from one of its current peers (`is_peer`); otherwise refused with the reason,
// which the listener also logs.
HelloReply admit_hello(const std::optional<Hello>& hello, const TransportOptions& options,
                       const std::function<bool(NodeId)>& is_peer);

// The dialer's reading of the answer to its Hello to `peer` (nullopt: it did not decode):
// empty when the connection is admitted, otherwise what went wrong, to log after the
// peer's name.
std::string refusal_in(const std::optional<HelloReply>& reply, NodeId peer);

}  // namespace raftfl::net
