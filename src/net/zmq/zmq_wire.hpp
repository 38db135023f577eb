#pragma once

// The multipart layout of one message on the ZeroMQ transport. Private to the transport
// and its tests: nothing else speaks it.
//
//   part 0, the head: little-endian u32 words
//       kind, tag, segment count n, then the size in words of each of the n segments
//   parts 1..n: the Cap'n Proto segments, one part each, exactly as the builder holds them
//
// A ROUTER adds the sender's routing id in front of part 0 on receipt.
//
// The head says what a message is, instead of leaving it to its position as the TCP
// framing does: ZeroMQ reconnects on its own, and a DEALER can put a few data messages on
// a new connection before the transport learns of it and sends that connection's Hello.
// With the kind in the head the acceptor drops those (they are counted) and still admits
// the Hello that follows, instead of refusing the whole connection as a failed handshake.
// The tag numbers the dialer's connections: a Hello carries it and the reply echoes it, so
// a reply that was meant for an earlier connection cannot admit or refuse the current one.
//
// Each segment in its own part lets the sender hand the builder's memory to libzmq
// without copying (zmq_msg_init_data), and lets the receiver read every part that libzmq
// put at an 8-byte aligned address in place.

#include <capnp/common.h>
#include <kj/common.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "raftfl/raft/little_endian.hpp"

namespace raftfl::net::zmqwire {

enum class Kind : std::uint32_t { kData = 1, kHello = 2, kHelloReply = 3 };

inline constexpr std::size_t kHeadFixedBytes = 12;
// Cap'n Proto's own stream reader stops at 512 segments; so do we.
inline constexpr std::size_t kMaxSegments = 512;
// Hello and HelloReply are a few hundred bytes; anything claiming more is not one.
inline constexpr std::size_t kMaxHandshakeBytes = 64 << 10;

inline std::size_t head_bytes(std::size_t segments) { return kHeadFixedBytes + 4 * segments; }

inline std::string encode_head(Kind kind, std::uint32_t tag,
                               kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  std::string head;
  head.reserve(head_bytes(segments.size()));
  raft::put_le<std::uint32_t>(head, static_cast<std::uint32_t>(kind));
  raft::put_le<std::uint32_t>(head, tag);
  raft::put_le<std::uint32_t>(head, static_cast<std::uint32_t>(segments.size()));
  for (auto s : segments) raft::put_le<std::uint32_t>(head, static_cast<std::uint32_t>(s.size()));
  return head;
}

struct Head {
  Kind kind = Kind::kData;
  std::uint32_t tag = 0;
  std::size_t segments = 0;
  std::size_t body_bytes = 0;  // head and segments together
  const char* sizes = nullptr;

  std::size_t segment_bytes(std::size_t i) const {
    return std::size_t{raft::get_le<std::uint32_t>(sizes + 4 * i)} * sizeof(capnp::word);
  }
};

// Checks a head part on its own; the caller checks the parts against it. Returns null when
// it is well formed, else why not.
inline const char* parse_head(const void* data, std::size_t size, Head* out) {
  const auto* p = static_cast<const char*>(data);
  if (size < kHeadFixedBytes) return "head shorter than 12 bytes";
  const auto kind = raft::get_le<std::uint32_t>(p);
  if (kind < static_cast<std::uint32_t>(Kind::kData) || kind > static_cast<std::uint32_t>(Kind::kHelloReply))
    return "unknown message kind";
  const std::size_t n = raft::get_le<std::uint32_t>(p + 8);
  if (n == 0 || n > kMaxSegments) return "segment count out of range";
  if (size != head_bytes(n)) return "head size does not match its segment count";
  out->kind = static_cast<Kind>(kind);
  out->tag = raft::get_le<std::uint32_t>(p + 4);
  out->segments = n;
  out->sizes = p + kHeadFixedBytes;
  std::size_t body = size;  // at most 512 segments of at most 32 GiB: no overflow in 64 bits
  for (std::size_t i = 0; i < n; ++i) body += out->segment_bytes(i);
  out->body_bytes = body;
  return nullptr;
}

}  // namespace raftfl::net::zmqwire
