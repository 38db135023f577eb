#include "raftfl/wire/raft_codec.hpp"

#include <capnp/serialize.h>

#include "raftfl/schemas/raft.capnp.h"

namespace raftfl::wire {
namespace {

// The engine's enums and the schema's are kept in the same order; these catch a drift.
static_assert(static_cast<int>(raft::MessageType::kReadIndexResp) == static_cast<int>(schema::MessageType::READ_INDEX_RESP));
static_assert(static_cast<int>(raft::EntryType::kConfChange) == static_cast<int>(schema::EntryType::CONF_CHANGE));

capnp::Data::Reader bytes_of(const raft::Payload& p) {
  auto v = p.view();
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(v.data()), v.size());
}

// Sets a Data field from a payload: by reference when `zero_copy` allows it (see
// RaftMessageBuilder), by copy otherwise. A referenced blob becomes a segment, and
// segments are whole words: Cap'n Proto would send the bytes after a payload up to the
// next word boundary, bytes we do not own. So only word-aligned payloads of whole words
// are referenced.
template <typename Setter, typename Adopter>
void set_payload(const raft::Payload& p, RaftMessageBuilder* zero_copy, Setter set, Adopter adopt) {
  const auto v = p.view();
  if (zero_copy != nullptr && v.size() >= RaftMessageBuilder::kReferenceBytes &&
      v.size() % sizeof(capnp::word) == 0 && reinterpret_cast<std::uintptr_t>(v.data()) % sizeof(capnp::word) == 0) {
    adopt(zero_copy->getOrphanage().referenceExternalData(bytes_of(p)));
    zero_copy->retain(p);
    return;
  }
  set(bytes_of(p));
}

raft::Payload payload_of(capnp::Data::Reader d) {
  return raft::Payload(std::string(reinterpret_cast<const char*>(d.begin()), d.size()));
}

void encode_ids(const std::vector<raft::NodeId>& ids, capnp::List<std::uint64_t>::Builder out) {
  for (unsigned i = 0; i < ids.size(); ++i) out.set(i, ids[i]);
}

std::vector<raft::NodeId> decode_ids(capnp::List<std::uint64_t>::Reader in) {
  std::vector<raft::NodeId> out;
  out.reserve(in.size());
  for (std::uint64_t id : in) out.push_back(id);
  for (std::size_t i = 1; i < out.size(); ++i) {
    if (out[i] <= out[i - 1]) throw DecodeError("configuration ids are not sorted and unique");
  }
  return out;
}

void encode_meta(const raft::SnapshotMeta& in, schema::SnapshotMeta::Builder meta) {
  meta.setIndex(in.index);
  meta.setTerm(in.term);
  auto config = meta.initConfig();
  encode_ids(in.config.voters, config.initVoters(static_cast<unsigned>(in.config.voters.size())));
  encode_ids(in.config.learners, config.initLearners(static_cast<unsigned>(in.config.learners.size())));
  auto contexts = config.initContexts(static_cast<unsigned>(in.config.contexts.size()));
  unsigned i = 0;
  for (const auto& [node, context] : in.config.contexts) {
    contexts[i].setNode(node);
    contexts[i].setContext(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(context.data()), context.size()));
    ++i;
  }
}

raft::SnapshotMeta decode_meta(schema::SnapshotMeta::Reader meta) {
  raft::SnapshotMeta out;
  out.index = meta.getIndex();
  out.term = meta.getTerm();
  out.config.voters = decode_ids(meta.getConfig().getVoters());
  out.config.learners = decode_ids(meta.getConfig().getLearners());
  for (auto c : meta.getConfig().getContexts()) {
    const auto bytes = c.getContext();
    out.config.contexts[c.getNode()] = std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
  }
  return out;
}

void encode_snapshot(const raft::Snapshot& snap, schema::Snapshot::Builder out, RaftMessageBuilder* zero_copy) {
  encode_meta(snap.meta, out.initMeta());
  set_payload(
      snap.data, zero_copy, [&](capnp::Data::Reader d) { out.setData(d); },
      [&](capnp::Orphan<capnp::Data>&& o) { out.adoptData(kj::mv(o)); });
}

std::shared_ptr<const raft::Snapshot> decode_snapshot(schema::Snapshot::Reader in) {
  auto snap = std::make_shared<raft::Snapshot>();
  snap->meta = decode_meta(in.getMeta());
  snap->data = payload_of(in.getData());
  return snap;
}

}  // namespace

namespace {

void encode(const raft::Message& m, std::uint64_t cluster_id, capnp::MessageBuilder& out, RaftMessageBuilder* zero_copy) {
  auto env = out.initRoot<schema::Envelope>();
  env.setClusterId(cluster_id);
  env.setSender(m.from);
  env.setReceiver(m.to);
  env.setTerm(m.term);
  auto body = env.getBody().initRaft();
  body.setType(static_cast<schema::MessageType>(m.type));
  body.setIndex(m.index);
  body.setLogTerm(m.log_term);
  body.setCommit(m.commit);
  body.setReject(m.reject);
  body.setRejectHint(m.reject_hint);
  body.setForce(m.force);
  body.setReadSeq(m.read_seq);
  if (!m.context.empty()) body.setContext(bytes_of(m.context));
  if (!m.entries.empty()) {
    auto entries = body.initEntries(static_cast<unsigned>(m.entries.size()));
    for (unsigned i = 0; i < m.entries.size(); ++i) {
      const raft::Entry& e = m.entries[i];
      auto out_entry = entries[i];
      out_entry.setTerm(e.term);
      out_entry.setIndex(e.index);
      out_entry.setType(static_cast<schema::EntryType>(e.type));
      set_payload(
          e.data, zero_copy, [&](capnp::Data::Reader d) { out_entry.setData(d); },
          [&](capnp::Orphan<capnp::Data>&& o) { out_entry.adoptData(kj::mv(o)); });
    }
  }
  if (m.snapshot) encode_snapshot(*m.snapshot, body.initSnapshot(), zero_copy);
}

}  // namespace

void encode_raft_message(const raft::Message& m, std::uint64_t cluster_id, capnp::MessageBuilder& out) {
  encode(m, cluster_id, out, nullptr);
}

void encode_raft_message(const raft::Message& m, std::uint64_t cluster_id, RaftMessageBuilder& out) {
  encode(m, cluster_id, out, &out);
}

raft::Message decode_raft_message(capnp::MessageReader& in, EnvelopeHeader* header) {
  auto env = in.getRoot<schema::Envelope>();
  if (header) *header = {env.getClusterId(), env.getSender(), env.getReceiver(), env.getTerm()};
  if (!env.getBody().isRaft()) throw DecodeError("envelope does not hold a Raft message");
  auto body = env.getBody().getRaft();
  auto type = static_cast<std::uint16_t>(body.getType());
  if (type > static_cast<std::uint16_t>(raft::MessageType::kReadIndexResp))
    throw DecodeError("unknown Raft message type " + std::to_string(type));
  raft::Message m;
  m.type = static_cast<raft::MessageType>(type);
  m.from = env.getSender();
  m.to = env.getReceiver();
  m.term = env.getTerm();
  m.index = body.getIndex();
  m.log_term = body.getLogTerm();
  m.commit = body.getCommit();
  m.reject = body.getReject();
  m.reject_hint = body.getRejectHint();
  m.force = body.getForce();
  m.read_seq = body.getReadSeq();
  if (body.hasContext()) m.context = payload_of(body.getContext());
  auto entries = body.getEntries();
  m.entries.reserve(entries.size());
  for (auto e : entries) {
    auto entry_type = static_cast<std::uint16_t>(e.getType());
    if (entry_type > static_cast<std::uint16_t>(raft::EntryType::kConfChange))
      throw DecodeError("unknown entry type " + std::to_string(entry_type));
    if (!m.entries.empty() && e.getIndex() != m.entries.back().index + 1)
      throw DecodeError("entries are not contiguous");
    m.entries.push_back({e.getTerm(), e.getIndex(), static_cast<raft::EntryType>(entry_type), payload_of(e.getData())});
  }
  if (body.hasSnapshot()) m.snapshot = decode_snapshot(body.getSnapshot());
  if (m.type == raft::MessageType::kSnapshot && !m.snapshot) throw DecodeError("snapshot message without a snapshot");
  return m;
}

void encode_snapshot_chunk(const SnapshotChunk& chunk, const EnvelopeHeader& header, capnp::MessageBuilder& out) {
  auto env = out.initRoot<schema::Envelope>();
  env.setClusterId(header.cluster_id);
  env.setSender(header.sender);
  env.setReceiver(header.receiver);
  env.setTerm(header.term);
  auto body = env.getBody().initSnapshotChunk();
  encode_meta(chunk.meta, body.initMeta());
  body.setTotalBytes(chunk.total_bytes);
  body.setOffset(chunk.offset);
  body.setChecksum(chunk.checksum);
  body.setAck(chunk.ack);
  if (!chunk.data.empty())
    body.setData(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(chunk.data.data()), chunk.data.size()));
}

SnapshotChunk decode_snapshot_chunk(capnp::MessageReader& in, EnvelopeHeader* header) {
  auto env = in.getRoot<schema::Envelope>();
  if (header) *header = {env.getClusterId(), env.getSender(), env.getReceiver(), env.getTerm()};
  if (!env.getBody().isSnapshotChunk()) throw DecodeError("envelope does not hold a snapshot chunk");
  auto body = env.getBody().getSnapshotChunk();
  SnapshotChunk chunk;
  chunk.meta = decode_meta(body.getMeta());
  chunk.total_bytes = body.getTotalBytes();
  chunk.offset = body.getOffset();
  chunk.checksum = body.getChecksum();
  chunk.ack = body.getAck();
  const auto data = body.getData();
  chunk.data = std::string_view(reinterpret_cast<const char*>(data.begin()), data.size());
  if (chunk.offset > chunk.total_bytes || chunk.data.size() > chunk.total_bytes - chunk.offset)
    throw DecodeError("snapshot chunk [" + std::to_string(chunk.offset) + ", +" + std::to_string(chunk.data.size()) +
                      ") runs past the snapshot's " + std::to_string(chunk.total_bytes) + " bytes");
  if (chunk.ack && !chunk.data.empty()) throw DecodeError("snapshot acknowledgement carrying data");
  return chunk;
}

kj::Array<capnp::word> to_flat_array(const raft::Message& message, std::uint64_t cluster_id) {
  capnp::MallocMessageBuilder builder;
  encode_raft_message(message, cluster_id, builder);
  return capnp::messageToFlatArray(builder);
}

raft::Message from_flat_array(kj::ArrayPtr<const capnp::word> words, EnvelopeHeader* header) {
  try {
    capnp::FlatArrayMessageReader reader(words);
    return decode_raft_message(reader, header);
  } catch (const kj::Exception& e) {
    throw DecodeError(std::string("malformed message: ") + e.getDescription().cStr());
  }
}

}  // namespace raftfl::wire
