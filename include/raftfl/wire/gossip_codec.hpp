#pragma once

// Model chunks and round reports in the envelope of schemas/raft.capnp (bodies from
// schemas/gossip.capnp).

#include <capnp/message.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "raftfl/gossip/exchange.hpp"
#include "raftfl/gossip/round_report.hpp"
#include "raftfl/wire/raft_codec.hpp"

namespace raftfl::wire {

enum class EnvelopeBody { kRaft, kSnapshotChunk, kGossipChunk, kReport, kUnknown };

// Which body an envelope holds (kUnknown for a kind newer than this reader).
EnvelopeBody envelope_body(capnp::MessageReader& in, EnvelopeHeader* header);

// Values [first, first + count) of `model` as one chunk. Values that are whole, aligned
// words are referenced, not copied: the message keeps `model` alive until it is sent.
std::unique_ptr<capnp::MessageBuilder> encode_gossip_chunk(std::uint64_t cluster_id, std::uint64_t sender,
                                                           std::uint64_t receiver,
                                                           std::shared_ptr<const gossip::OutgoingModel> model,
                                                           std::size_t first, std::size_t count);

struct GossipChunkView {
  gossip::ChunkHeader header;
  std::span<const std::byte> values;  // into the message: valid while it is
  std::vector<std::uint32_t> indices;
};
// Throws DecodeError when the envelope holds something else or an enum is unknown.
GossipChunkView decode_gossip_chunk(capnp::MessageReader& in);

std::unique_ptr<capnp::MessageBuilder> encode_round_report(std::uint64_t cluster_id, std::uint64_t sender,
                                                           std::uint64_t receiver, const gossip::RoundReport& report);
gossip::RoundReport decode_round_report(capnp::MessageReader& in);

}  // namespace raftfl::wire
