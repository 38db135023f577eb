#pragma once

#include <capnp/message.h>

#include <cstdint>
#include <string>

namespace raftfl::wire {

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

}  // namespace raftfl::wire
