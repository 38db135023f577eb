#include "raftfl/wire/gossip_codec.hpp"

#include <kj/common.h>

#include <cstring>
#include <string>

#include "raftfl/schemas/raft.capnp.h"

namespace raftfl::wire {
namespace {

// Keeps the exchanged model alive while the transport writes segments that reference it.
class ChunkMessageBuilder final : public capnp::MallocMessageBuilder {
 public:
  explicit ChunkMessageBuilder(std::shared_ptr<const gossip::OutgoingModel> model)
      : capnp::MallocMessageBuilder(64), model_(std::move(model)) {}
  const gossip::OutgoingModel& model() const { return *model_; }

 private:
  std::shared_ptr<const gossip::OutgoingModel> model_;
};

schema::Sparsifier to_schema(gossip::Sparsifier s) {
  switch (s) {
    case gossip::Sparsifier::kRandomK:
      return schema::Sparsifier::RANDOM_K;
    case gossip::Sparsifier::kTopK:
      return schema::Sparsifier::TOP_K;
    case gossip::Sparsifier::kDense:
      return schema::Sparsifier::DENSE;
  }
  return schema::Sparsifier::DENSE;
}

}  // namespace

EnvelopeBody envelope_body(capnp::MessageReader& in, EnvelopeHeader* header) {
  auto env = in.getRoot<schema::Envelope>();
  if (header) *header = {env.getClusterId(), env.getSender(), env.getReceiver(), env.getTerm()};
  switch (env.getBody().which()) {
    case schema::Envelope::Body::RAFT:
      return EnvelopeBody::kRaft;
    case schema::Envelope::Body::SNAPSHOT_CHUNK:
      return EnvelopeBody::kSnapshotChunk;
    case schema::Envelope::Body::GOSSIP:
      return EnvelopeBody::kGossipChunk;
    case schema::Envelope::Body::REPORT:
      return EnvelopeBody::kReport;
  }
  return EnvelopeBody::kUnknown;
}

std::unique_ptr<capnp::MessageBuilder> encode_gossip_chunk(std::uint64_t cluster_id, std::uint64_t sender,
                                                           std::uint64_t receiver,
                                                           std::shared_ptr<const gossip::OutgoingModel> model,
                                                           std::size_t first, std::size_t count) {
  const auto& m = *model;
  if (first > m.value_count() || count > m.value_count() - first)
    throw std::out_of_range("encode_gossip_chunk: range past the model's values");
  auto out = std::make_unique<ChunkMessageBuilder>(std::move(model));
  auto env = out->initRoot<schema::Envelope>();
  env.setClusterId(cluster_id);
  env.setSender(sender);
  env.setReceiver(receiver);
  auto chunk = env.getBody().initGossip();
  chunk.setRound(m.header.round);
  chunk.setSparsifier(to_schema(m.header.sparsifier));
  chunk.setEncoding(m.header.encoding == gossip::Encoding::kBf16 ? schema::ValueEncoding::BF16
                                                                 : schema::ValueEncoding::FP32);
  chunk.setParameterCount(m.header.parameter_count);
  chunk.setTotalValues(m.header.total_values);
  chunk.setOffset(first);
  const std::size_t width = gossip::bytes_per_value(m.header.encoding);
  const auto* bytes = reinterpret_cast<const capnp::byte*>(m.encoded_values.data()) + first * width;
  const std::size_t size = count * width;
  // A referenced blob becomes a segment of its own and segments are whole words, so only
  // aligned whole words are referenced (raft_codec.cpp says why); a model chunk always is
  // except perhaps the last.
  if (size >= 4096 && size % sizeof(capnp::word) == 0 &&
      reinterpret_cast<std::uintptr_t>(bytes) % sizeof(capnp::word) == 0) {
    chunk.adoptValues(out->getOrphanage().referenceExternalData(capnp::Data::Reader(bytes, size)));
  } else {
    chunk.setValues(capnp::Data::Reader(bytes, size));
  }
  if (m.indices_travel()) {
    auto list = chunk.initIndices(static_cast<unsigned>(count));
    for (std::size_t i = 0; i < count; ++i) list.set(static_cast<unsigned>(i), m.indices[first + i]);
  }
  return out;
}

GossipChunkView decode_gossip_chunk(capnp::MessageReader& in) {
  auto env = in.getRoot<schema::Envelope>();
  if (!env.getBody().isGossip()) throw DecodeError("envelope does not hold a model chunk");
  auto c = env.getBody().getGossip();
  GossipChunkView v;
  v.header.round = c.getRound();
  switch (c.getSparsifier()) {
    case schema::Sparsifier::RANDOM_K:
      v.header.sparsifier = gossip::Sparsifier::kRandomK;
      break;
    case schema::Sparsifier::TOP_K:
      v.header.sparsifier = gossip::Sparsifier::kTopK;
      break;
    case schema::Sparsifier::DENSE:
      v.header.sparsifier = gossip::Sparsifier::kDense;
      break;
    default:
      throw DecodeError("unknown sparsifier " + std::to_string(static_cast<unsigned>(c.getSparsifier())));
  }
  switch (c.getEncoding()) {
    case schema::ValueEncoding::FP32:
      v.header.encoding = gossip::Encoding::kFp32;
      break;
    case schema::ValueEncoding::BF16:
      v.header.encoding = gossip::Encoding::kBf16;
      break;
    default:
      throw DecodeError("unknown value encoding " + std::to_string(static_cast<unsigned>(c.getEncoding())));
  }
  v.header.parameter_count = c.getParameterCount();
  v.header.total_values = c.getTotalValues();
  v.header.offset = c.getOffset();
  auto values = c.getValues();
  v.values = std::span<const std::byte>(reinterpret_cast<const std::byte*>(values.begin()), values.size());
  auto indices = c.getIndices();
  v.indices.reserve(indices.size());
  for (auto i : indices) v.indices.push_back(i);
  return v;
}

std::unique_ptr<capnp::MessageBuilder> encode_round_report(std::uint64_t cluster_id, std::uint64_t sender,
                                                           std::uint64_t receiver, const gossip::RoundReport& r) {
  auto out = std::make_unique<capnp::MallocMessageBuilder>(64);
  auto env = out->initRoot<schema::Envelope>();
  env.setClusterId(cluster_id);
  env.setSender(sender);
  env.setReceiver(receiver);
  auto b = env.getBody().initReport();
  b.setRound(r.round);
  b.setPeer(r.peer);
  b.setTrainLoss(r.train_loss);
  b.setAccuracy(r.accuracy);
  b.setBytesSent(r.bytes_sent);
  b.setBytesReceived(r.bytes_received);
  b.setTrainMicros(r.train_micros);
  b.setExchangeMicros(r.exchange_micros);
  b.setRoundMicros(r.round_micros);
  b.setPeerTimedOut(r.peer_timed_out);
  b.setFinal(r.final);
  b.setTrainSamples(r.train_samples);
  b.setJoining(r.joining);
  auto bw = b.initBandwidth(static_cast<unsigned>(r.bandwidth.size()));
  for (unsigned i = 0; i < bw.size(); ++i) {
    bw[i].setPeer(r.bandwidth[i].peer);
    bw[i].setBytesPerSecond(r.bandwidth[i].bytes_per_second);
  }
  return out;
}

gossip::RoundReport decode_round_report(capnp::MessageReader& in) {
  auto env = in.getRoot<schema::Envelope>();
  if (!env.getBody().isReport()) throw DecodeError("envelope does not hold a round report");
  auto b = env.getBody().getReport();
  gossip::RoundReport r;
  r.round = b.getRound();
  r.peer = b.getPeer();
  r.train_loss = b.getTrainLoss();
  r.accuracy = b.getAccuracy();
  r.bytes_sent = b.getBytesSent();
  r.bytes_received = b.getBytesReceived();
  r.train_micros = b.getTrainMicros();
  r.exchange_micros = b.getExchangeMicros();
  r.round_micros = b.getRoundMicros();
  r.peer_timed_out = b.getPeerTimedOut();
  r.final = b.getFinal();
  r.train_samples = b.getTrainSamples();
  r.joining = b.getJoining();
  for (auto s : b.getBandwidth()) r.bandwidth.push_back({s.getPeer(), s.getBytesPerSecond()});
  return r;
}

}  // namespace raftfl::wire
