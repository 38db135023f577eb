#pragma once

#include <capnp/message.h>
#include <kj/array.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "raftfl/raft/message.hpp"

namespace raftfl::wire {

// A message that cannot be decoded: wrong kind, unknown enum value, inconsistent fields.
class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The envelope fields every message carries besides its body.
struct EnvelopeHeader {
  std::uint64_t cluster_id = 0;
  raft::NodeId sender = raft::kNoNode;
  raft::NodeId receiver = raft::kNoNode;
  raft::Term term = 0;
};

// Fills `out` with `message` in an envelope of cluster `cluster_id`.
void encode_raft_message(const raft::Message& message, std::uint64_t cluster_id, capnp::MessageBuilder& out);
// Reads a Raft message back; throws DecodeError when the envelope holds anything else or
// a field is out of range. `header` receives the envelope (for the handshake's checks).
raft::Message decode_raft_message(capnp::MessageReader& in, EnvelopeHeader* header = nullptr);

// Flat-array helpers for tests and storage: one contiguous copy of all segments.
kj::Array<capnp::word> to_flat_array(const raft::Message& message, std::uint64_t cluster_id);
raft::Message from_flat_array(kj::ArrayPtr<const capnp::word> words, EnvelopeHeader* header = nullptr);

}  // namespace raftfl::wire
