// Every Raft message kind survives the wire with every field intact, and what is not a
// valid Raft message is refused with DecodeError rather than crashing or guessing.
#include "raftfl/wire/raft_codec.hpp"

#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include "raft_equality.hpp"
#include "raftfl/schemas/raft.capnp.h"

namespace raftfl::wire {
namespace {

using raft::Entry;
using raft::EntryType;
using raft::Message;
using raft::MessageType;
using raft::Payload;

constexpr std::uint64_t kCluster = 0xc1u;

// A message with every field set to something distinct from its default.
Message full_message(MessageType type) {
  Message m;
  m.type = type;
  m.from = 3;
  m.to = 5;
  m.term = 42;
  m.index = 100;
  m.log_term = 41;
  m.commit = 99;
  m.reject = true;
  m.reject_hint = 77;
  m.force = true;
  m.read_seq = 12345;
  m.context = Payload("read-context");
  m.entries = {Entry{40, 101, EntryType::kNoOp, Payload()},
               Entry{41, 102, EntryType::kNormal, Payload(std::string("\0binary\xff", 8))},
               Entry{42, 103, EntryType::kConfChange,
                     Payload(raft::encode_conf_change({raft::ConfChangeType::kAddLearner, 9, "10.0.0.9:7000"}))}};
  auto snap = std::make_shared<raft::Snapshot>();
  snap->meta.index = 90;
  snap->meta.term = 30;
  snap->meta.config.voters = {1, 3, 5};
  snap->meta.config.learners = {7};
  snap->meta.config.contexts = {{1, "raft=10.0.0.1:7000 admin=10.0.0.1:8000"}, {7, std::string("\0ctx", 4)}};
  snap->data = Payload(std::string(100000, 's'));
  m.snapshot = snap;
  return m;
}

void expect_same(const Message& a, const Message& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.from, b.from);
  EXPECT_EQ(a.to, b.to);
  EXPECT_EQ(a.term, b.term);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.log_term, b.log_term);
  EXPECT_EQ(a.commit, b.commit);
  EXPECT_EQ(a.reject, b.reject);
  EXPECT_EQ(a.reject_hint, b.reject_hint);
  EXPECT_EQ(a.force, b.force);
  EXPECT_EQ(a.read_seq, b.read_seq);
  EXPECT_EQ(a.context.view(), b.context.view());
  raft::test::expect_same_entries(a.entries, b.entries);
  raft::test::expect_same_snapshot(a.snapshot, b.snapshot);
}

class RoundTrip : public ::testing::TestWithParam<MessageType> {};

TEST_P(RoundTrip, EveryFieldSurvives) {
  Message sent = full_message(GetParam());
  EnvelopeHeader header;
  Message received = from_flat_array(to_flat_array(sent, kCluster), &header);
  expect_same(sent, received);
  EXPECT_EQ(header.cluster_id, kCluster);
  EXPECT_EQ(header.sender, 3u);
  EXPECT_EQ(header.receiver, 5u);
  EXPECT_EQ(header.term, 42u);
}

TEST_P(RoundTrip, DefaultsSurvive) {
  Message sent;
  sent.type = GetParam();
  sent.from = 1;
  sent.to = 2;
  sent.term = 1;
  if (sent.type == MessageType::kSnapshot) sent.snapshot = std::make_shared<raft::Snapshot>();
  expect_same(sent, from_flat_array(to_flat_array(sent, kCluster)));
}

INSTANTIATE_TEST_SUITE_P(AllKinds, RoundTrip,
                         ::testing::Values(MessageType::kPreVote, MessageType::kPreVoteResp, MessageType::kVote,
                                           MessageType::kVoteResp, MessageType::kAppend, MessageType::kAppendResp,
                                           MessageType::kHeartbeat, MessageType::kHeartbeatResp,
                                           MessageType::kSnapshot, MessageType::kTimeoutNow,
                                           MessageType::kReadIndex, MessageType::kReadIndexResp),
                         [](const ::testing::TestParamInfo<MessageType>& param) {
                           return std::string(raft::to_string(param.param));
                         });

kj::Array<capnp::word> flat(capnp::MallocMessageBuilder& builder) { return capnp::messageToFlatArray(builder); }

// Large payloads go by reference: each is a segment of its own, pointing at the payload's
// bytes, and the message still reads back identical.
TEST(ZeroCopy, LargePayloadsAreReferencedNotCopied) {
  Message sent;
  sent.type = MessageType::kAppend;
  sent.from = 1;
  sent.to = 2;
  sent.term = 3;
  sent.index = 9;
  for (raft::Index i = 10; i < 15; ++i) {
    // Two large entries of whole words (referenced) between small ones and a large one
    // that ends mid-word (copied).
    const std::size_t size = i == 14 ? (64u << 10) + 3 : i % 2 == 0 ? (64u << 10) + 8 * i : 100;
    sent.entries.push_back({3, i, raft::EntryType::kNormal, raft::Payload(std::string(size, static_cast<char>('a' + i)))});
  }
  RaftMessageBuilder builder(32 * 1024);  // words: room for everything copied
  encode_raft_message(sent, kCluster, builder);
  EXPECT_EQ(builder.retained(), 2u);
  const auto segments = builder.getSegmentsForOutput();
  ASSERT_EQ(segments.size(), 3u) << "one segment for the message, one per referenced payload";
  EXPECT_EQ(reinterpret_cast<const char*>(segments[1].begin()), sent.entries[0].data.view().data())
      << "the first large payload was copied";
  EXPECT_EQ(reinterpret_cast<const char*>(segments[2].begin()), sent.entries[2].data.view().data())
      << "the second large payload was copied";
  const auto words = capnp::messageToFlatArray(segments);
  expect_same(sent, from_flat_array(words));
}

TEST(ZeroCopy, SmallPayloadsAreCopiedIntoOneSegment) {
  Message sent = full_message(MessageType::kAppend);
  sent.snapshot = nullptr;  // its 100 kB would be referenced
  RaftMessageBuilder builder(64 * 1024);
  encode_raft_message(sent, kCluster, builder);
  EXPECT_EQ(builder.retained(), 0u);
  EXPECT_EQ(builder.getSegmentsForOutput().size(), 1u);
  expect_same(sent, from_flat_array(capnp::messageToFlatArray(builder)));
}

TEST(Decode, RefusesUnknownMessageType) {
  capnp::MallocMessageBuilder builder;
  encode_raft_message(full_message(MessageType::kAppend), kCluster, builder);
  builder.getRoot<schema::Envelope>().getBody().getRaft().setType(static_cast<schema::MessageType>(99));
  EXPECT_THROW(from_flat_array(flat(builder)), DecodeError);
}

TEST(Decode, RefusesUnknownEntryType) {
  capnp::MallocMessageBuilder builder;
  encode_raft_message(full_message(MessageType::kAppend), kCluster, builder);
  builder.getRoot<schema::Envelope>().getBody().getRaft().getEntries()[1].setType(static_cast<schema::EntryType>(7));
  EXPECT_THROW(from_flat_array(flat(builder)), DecodeError);
}

TEST(Decode, RefusesNonContiguousEntries) {
  capnp::MallocMessageBuilder builder;
  encode_raft_message(full_message(MessageType::kAppend), kCluster, builder);
  builder.getRoot<schema::Envelope>().getBody().getRaft().getEntries()[2].setIndex(200);
  EXPECT_THROW(from_flat_array(flat(builder)), DecodeError);
}

TEST(Decode, RefusesUnsortedConfiguration) {
  capnp::MallocMessageBuilder builder;
  encode_raft_message(full_message(MessageType::kSnapshot), kCluster, builder);
  auto voters = builder.getRoot<schema::Envelope>().getBody().getRaft().getSnapshot().getMeta().getConfig().getVoters();
  voters.set(0, 9);
  EXPECT_THROW(from_flat_array(flat(builder)), DecodeError);
}

TEST(Decode, RefusesSnapshotMessageWithoutSnapshot) {
  Message m = full_message(MessageType::kSnapshot);
  m.snapshot.reset();
  EXPECT_THROW(from_flat_array(to_flat_array(m, kCluster)), DecodeError);
}

TEST(Decode, RefusesAnotherKindOfBody) {
  capnp::MallocMessageBuilder builder;
  auto env = builder.initRoot<schema::Envelope>();
  env.setClusterId(kCluster);
  env.getBody().initSnapshotChunk().setOffset(4096);
  EXPECT_THROW(from_flat_array(flat(builder)), DecodeError);
}

TEST(Decode, RefusesTruncatedAndGarbageInput) {
  auto words = to_flat_array(full_message(MessageType::kAppend), kCluster);
  for (std::size_t cut : {std::size_t{0}, std::size_t{1}, words.size() / 2, words.size() - 1}) {
    EXPECT_THROW(from_flat_array(words.slice(0, cut).asConst()), DecodeError) << "cut at " << cut;
  }
  kj::Array<capnp::word> garbage = kj::heapArray<capnp::word>(16);
  for (kj::byte& b : garbage.asBytes()) b = 0xff;
  EXPECT_THROW(from_flat_array(garbage.asPtr().asConst()), DecodeError);
}

}  // namespace
}  // namespace raftfl::wire
