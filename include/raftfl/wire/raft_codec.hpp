#pragma once

#include <capnp/message.h>
#include <kj/array.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

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

// Fills `out` with `message` in an envelope of cluster `cluster_id`. Payloads are copied
// into the message.
void encode_raft_message(const raft::Message& message, std::uint64_t cluster_id, capnp::MessageBuilder& out);

// A builder that references large payloads where they are instead of copying them: each
// becomes a segment of its own (sent by the transport's gather write) and is kept alive
// as long as the builder.
class RaftMessageBuilder final : public capnp::MallocMessageBuilder {
 public:
  // Payloads at least this large are referenced; smaller ones cost less to copy than a
  // segment (an iovec entry and a segment-table word) costs to send.
  static constexpr std::size_t kReferenceBytes = 4096;

  using capnp::MallocMessageBuilder::MallocMessageBuilder;
  void retain(raft::Payload payload) { retained_.push_back(std::move(payload)); }
  std::size_t retained() const { return retained_.size(); }

 private:
  std::vector<raft::Payload> retained_;
};

// As above, referencing payloads of kReferenceBytes or more instead of copying them, when
// they are whole 8-byte words (a model's float tensors are; anything else is copied).
void encode_raft_message(const raft::Message& message, std::uint64_t cluster_id, RaftMessageBuilder& out);
// Reads a Raft message back; throws DecodeError when the envelope holds anything else or
// a field is out of range. `header` receives the envelope (for the handshake's checks).
raft::Message decode_raft_message(capnp::MessageReader& in, EnvelopeHeader* header = nullptr);

// A snapshot streamed in pieces no larger than a frame (node/snapshot_sender.hpp), or the
// receiver's acknowledgement of what it holds (`ack`, no data).
struct SnapshotChunk {
  raft::SnapshotMeta meta;  // an acknowledgement names the snapshot by index and term only
  std::uint64_t total_bytes = 0;
  std::uint64_t offset = 0;  // a piece: where `data` starts; an acknowledgement: bytes held
  std::uint64_t checksum = 0;  // XXH3-64 of the whole snapshot data
  bool ack = false;
  // Encoding: copied into the message. Decoding: points into the reader, valid as long as it.
  std::string_view data;
};

void encode_snapshot_chunk(const SnapshotChunk& chunk, const EnvelopeHeader& header, capnp::MessageBuilder& out);
// Throws DecodeError for another body, a piece that runs past the snapshot's end, or an
// acknowledgement that carries data.
SnapshotChunk decode_snapshot_chunk(capnp::MessageReader& in, EnvelopeHeader* header = nullptr);

// Flat-array helpers for tests and storage: one contiguous copy of all segments.
kj::Array<capnp::word> to_flat_array(const raft::Message& message, std::uint64_t cluster_id);
raft::Message from_flat_array(kj::ArrayPtr<const capnp::word> words, EnvelopeHeader* header = nullptr);

}  // namespace raftfl::wire
