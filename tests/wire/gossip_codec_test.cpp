// Model chunks and round reports survive the wire: header, values bytes and indices come
// back as sent, large chunks are referenced rather than copied, and what is not the
// expected body is refused.
#include "raftfl/wire/gossip_codec.hpp"

#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <span>
#include <stdexcept>
#include <vector>

#include "raftfl/schemas/raft.capnp.h"

namespace raftfl::wire {
namespace {

using gossip::Encoding;
using gossip::OutgoingModel;
using gossip::Sparsifier;

constexpr std::uint64_t kCluster = 0xc1u;
constexpr std::uint64_t kSender = 3;
constexpr std::uint64_t kReceiver = 5;

std::shared_ptr<OutgoingModel> make_model(Sparsifier sparsifier, Encoding encoding, std::size_t values,
                                          std::uint64_t parameter_count, std::uint32_t seed = 1) {
  auto m = std::make_shared<OutgoingModel>();
  m->header.round = 1234567;
  m->header.sparsifier = sparsifier;
  m->header.encoding = encoding;
  m->header.parameter_count = parameter_count;
  m->header.total_values = values;
  std::mt19937 gen(seed);
  if (sparsifier == Sparsifier::kTopK) {
    // Ascending, distinct, spread over the parameters.
    std::vector<std::uint32_t> all(parameter_count);
    std::iota(all.begin(), all.end(), 0u);
    std::shuffle(all.begin(), all.end(), gen);
    m->indices.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(values));
    std::sort(m->indices.begin(), m->indices.end());
  } else {
    m->indices.resize(values);
    std::iota(m->indices.begin(), m->indices.end(), 0u);
  }
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(values);
  for (float& x : v) x = dist(gen);
  m->encoded_values = gossip::encode_values(v, encoding);
  return m;
}

std::vector<std::byte> expected_bytes(const OutgoingModel& m, std::size_t first, std::size_t count) {
  const std::size_t width = gossip::bytes_per_value(m.header.encoding);
  return {m.encoded_values.begin() + static_cast<std::ptrdiff_t>(first * width),
          m.encoded_values.begin() + static_cast<std::ptrdiff_t>((first + count) * width)};
}

// Serializes, reads back and checks the decoded chunk against [first, first + count) of m.
void expect_round_trip(capnp::MessageBuilder& builder, const OutgoingModel& m, std::size_t first, std::size_t count) {
  const auto words = capnp::messageToFlatArray(builder);
  capnp::FlatArrayMessageReader reader(words.asPtr());
  EnvelopeHeader env;
  EXPECT_EQ(envelope_body(reader, &env), EnvelopeBody::kGossipChunk);
  EXPECT_EQ(env.cluster_id, kCluster);
  EXPECT_EQ(env.sender, kSender);
  EXPECT_EQ(env.receiver, kReceiver);
  const GossipChunkView v = decode_gossip_chunk(reader);
  EXPECT_EQ(v.header.round, m.header.round);
  EXPECT_EQ(v.header.sparsifier, m.header.sparsifier);
  EXPECT_EQ(v.header.encoding, m.header.encoding);
  EXPECT_EQ(v.header.parameter_count, m.header.parameter_count);
  EXPECT_EQ(v.header.total_values, m.header.total_values);
  EXPECT_EQ(v.header.offset, first);
  const auto want = expected_bytes(m, first, count);
  ASSERT_EQ(v.values.size(), want.size());
  if (!want.empty()) {
    EXPECT_EQ(std::memcmp(v.values.data(), want.data(), want.size()), 0);
  }
  if (m.indices_travel()) {
    const std::vector<std::uint32_t> want_indices(m.indices.begin() + static_cast<std::ptrdiff_t>(first),
                                                  m.indices.begin() + static_cast<std::ptrdiff_t>(first + count));
    EXPECT_EQ(v.indices, want_indices);
  } else {
    EXPECT_TRUE(v.indices.empty());
  }
}

// Whether a segment of the message points into the model's values (referenced, not
// copied). A copied value blob may still open a new segment of its own when it does not
// fit the first one, so the segment count alone does not tell.
bool references_model(capnp::MessageBuilder& builder, const OutgoingModel& m) {
  const auto* lo = m.encoded_values.data();
  const auto* hi = lo + m.encoded_values.size();
  for (const auto segment : builder.getSegmentsForOutput()) {
    const auto* p = reinterpret_cast<const std::byte*>(segment.begin());
    if (p >= lo && p < hi) return true;
  }
  return false;
}

TEST(GossipChunk, LargeChunkIsReferencedAndRoundTrips) {
  auto m = make_model(Sparsifier::kRandomK, Encoding::kFp32, 3000, 100000);
  auto builder = encode_gossip_chunk(kCluster, kSender, kReceiver, m, 1024, 1024);  // 4096 bytes
  const auto segments = builder->getSegmentsForOutput();
  ASSERT_EQ(segments.size(), 2u) << "the values are a segment of their own";
  EXPECT_EQ(reinterpret_cast<const std::byte*>(segments[1].begin()), m->encoded_values.data() + 1024 * 4)
      << "the values were copied";
  EXPECT_TRUE(references_model(*builder, *m));
  expect_round_trip(*builder, *m, 1024, 1024);
}

TEST(GossipChunk, SmallChunkIsCopied) {
  auto m = make_model(Sparsifier::kRandomK, Encoding::kFp32, 3000, 100000);
  auto builder = encode_gossip_chunk(kCluster, kSender, kReceiver, m, 10, 10);
  EXPECT_EQ(builder->getSegmentsForOutput().size(), 1u);
  EXPECT_FALSE(references_model(*builder, *m));
  expect_round_trip(*builder, *m, 10, 10);
}

TEST(GossipChunk, TopKChunkCarriesItsIndices) {
  auto m = make_model(Sparsifier::kTopK, Encoding::kFp32, 2000, 50000, 7);
  for (const auto& [first, count] : m->chunks(700)) {
    SCOPED_TRACE(first);
    auto builder = encode_gossip_chunk(kCluster, kSender, kReceiver, m, first, count);
    expect_round_trip(*builder, *m, first, count);
  }
}

TEST(GossipChunk, Bf16ChunksRoundTrip) {
  auto m = make_model(Sparsifier::kRandomK, Encoding::kBf16, 5000, 60000, 9);
  auto large = encode_gossip_chunk(kCluster, kSender, kReceiver, m, 0, 2048);  // 4096 bytes
  EXPECT_EQ(large->getSegmentsForOutput().size(), 2u);
  EXPECT_TRUE(references_model(*large, *m));
  expect_round_trip(*large, *m, 0, 2048);
  auto small = encode_gossip_chunk(kCluster, kSender, kReceiver, m, 2048, 5);  // 10 bytes
  EXPECT_EQ(small->getSegmentsForOutput().size(), 1u);
  EXPECT_FALSE(references_model(*small, *m));
  expect_round_trip(*small, *m, 2048, 5);
}

TEST(GossipChunk, LastChunkOfPartialWordIsCopiedAndRoundTrips) {
  auto m = make_model(Sparsifier::kRandomK, Encoding::kFp32, 3000, 100000);
  // 1025 values: 4100 bytes, large but not whole words.
  auto builder = encode_gossip_chunk(kCluster, kSender, kReceiver, m, 3000 - 1025, 1025);
  EXPECT_FALSE(references_model(*builder, *m));
  expect_round_trip(*builder, *m, 3000 - 1025, 1025);
  // The same for the last chunk of a model chunked normally.
  const auto chunks = m->chunks(1024);
  ASSERT_EQ(chunks.back().second, 3000u - 2048u);
  auto last = encode_gossip_chunk(kCluster, kSender, kReceiver, m, chunks.back().first, chunks.back().second);
  expect_round_trip(*last, *m, chunks.back().first, chunks.back().second);
  auto odd = make_model(Sparsifier::kRandomK, Encoding::kBf16, 3, 10);  // 6 bytes
  auto tiny = encode_gossip_chunk(kCluster, kSender, kReceiver, odd, 0, 3);
  expect_round_trip(*tiny, *odd, 0, 3);
}

TEST(GossipChunk, EmptyChunkRoundTrips) {
  auto m = make_model(Sparsifier::kTopK, Encoding::kFp32, 0, 100);
  auto builder = encode_gossip_chunk(kCluster, kSender, kReceiver, m, 0, 0);
  expect_round_trip(*builder, *m, 0, 0);
}

TEST(GossipChunk, MessageKeepsTheModelAlive) {
  auto m = make_model(Sparsifier::kRandomK, Encoding::kFp32, 4096, 100000, 3);
  const auto want = expected_bytes(*m, 0, 2048);
  const OutgoingModel copy = *m;
  std::weak_ptr<OutgoingModel> weak = m;
  auto builder = encode_gossip_chunk(kCluster, kSender, kReceiver, m, 0, 2048);
  ASSERT_TRUE(references_model(*builder, *m)) << "the chunk must be referenced for this test";
  m.reset();
  EXPECT_FALSE(weak.expired()) << "the message holds the model";
  // Whatever the allocator does with freed memory, the bytes must still be the model's.
  std::vector<std::vector<std::byte>> churn;
  for (int i = 0; i < 8; ++i) churn.emplace_back(want.size(), std::byte{0xAB});
  expect_round_trip(*builder, copy, 0, 2048);
  builder.reset();
  EXPECT_TRUE(weak.expired()) << "the message released the model";
}

TEST(GossipChunk, RangePastTheValuesIsRefused) {
  auto m = make_model(Sparsifier::kRandomK, Encoding::kFp32, 100, 1000);
  EXPECT_THROW(encode_gossip_chunk(kCluster, kSender, kReceiver, m, 90, 11), std::out_of_range);
  EXPECT_THROW(encode_gossip_chunk(kCluster, kSender, kReceiver, m, 101, 0), std::out_of_range);
  EXPECT_THROW(encode_gossip_chunk(kCluster, kSender, kReceiver, m, 50, SIZE_MAX), std::out_of_range);
  EXPECT_NO_THROW(encode_gossip_chunk(kCluster, kSender, kReceiver, m, 90, 10));
  EXPECT_NO_THROW(encode_gossip_chunk(kCluster, kSender, kReceiver, m, 100, 0));
}

TEST(GossipChunk, UnknownEnumsAreRefused) {
  auto m = make_model(Sparsifier::kRandomK, Encoding::kFp32, 10, 100);
  {
    auto builder = encode_gossip_chunk(kCluster, kSender, kReceiver, m, 0, 10);
    builder->getRoot<schema::Envelope>().getBody().getGossip().setSparsifier(static_cast<schema::Sparsifier>(9));
    const auto words = capnp::messageToFlatArray(*builder);
    capnp::FlatArrayMessageReader reader(words.asPtr());
    EXPECT_THROW(decode_gossip_chunk(reader), DecodeError);
  }
  {
    auto builder = encode_gossip_chunk(kCluster, kSender, kReceiver, m, 0, 10);
    builder->getRoot<schema::Envelope>().getBody().getGossip().setEncoding(static_cast<schema::ValueEncoding>(9));
    const auto words = capnp::messageToFlatArray(*builder);
    capnp::FlatArrayMessageReader reader(words.asPtr());
    EXPECT_THROW(decode_gossip_chunk(reader), DecodeError);
  }
}

gossip::RoundReport full_report() {
  gossip::RoundReport r;
  r.round = 77;
  r.peer = 4;
  r.train_loss = 0.123456789;
  r.accuracy = 0.875;
  r.bytes_sent = 1ULL << 33;
  r.bytes_received = 123456789012ULL;
  r.train_micros = 1111;
  r.exchange_micros = 2222;
  r.round_micros = 3333;
  r.peer_timed_out = true;
  r.final = true;
  r.train_samples = 640;
  r.joining = true;
  r.bandwidth = {{2, 1.5e8}, {4, 3.25e6}, {9, 0.0}};
  return r;
}

gossip::RoundReport report_round_trip(const gossip::RoundReport& r, EnvelopeBody* body = nullptr) {
  auto builder = encode_round_report(kCluster, kSender, kReceiver, r);
  const auto words = capnp::messageToFlatArray(*builder);
  capnp::FlatArrayMessageReader reader(words.asPtr());
  EnvelopeHeader env;
  const EnvelopeBody b = envelope_body(reader, &env);
  if (body) *body = b;
  EXPECT_EQ(env.cluster_id, kCluster);
  EXPECT_EQ(env.sender, kSender);
  EXPECT_EQ(env.receiver, kReceiver);
  return decode_round_report(reader);
}

TEST(RoundReport, EveryFieldSurvives) {
  const auto sent = full_report();
  EnvelopeBody body = EnvelopeBody::kUnknown;
  const auto got = report_round_trip(sent, &body);
  EXPECT_EQ(body, EnvelopeBody::kReport);
  EXPECT_EQ(got.round, sent.round);
  EXPECT_EQ(got.peer, sent.peer);
  EXPECT_EQ(got.train_loss, sent.train_loss);
  EXPECT_EQ(got.accuracy, sent.accuracy);
  EXPECT_EQ(got.bytes_sent, sent.bytes_sent);
  EXPECT_EQ(got.bytes_received, sent.bytes_received);
  EXPECT_EQ(got.train_micros, sent.train_micros);
  EXPECT_EQ(got.exchange_micros, sent.exchange_micros);
  EXPECT_EQ(got.round_micros, sent.round_micros);
  EXPECT_EQ(got.peer_timed_out, sent.peer_timed_out);
  EXPECT_EQ(got.final, sent.final);
  EXPECT_EQ(got.train_samples, sent.train_samples);
  EXPECT_EQ(got.joining, sent.joining);
  EXPECT_EQ(got.bandwidth, sent.bandwidth);
  EXPECT_TRUE(got == sent);
}

TEST(RoundReport, DefaultsSurvive) {
  const gossip::RoundReport sent;
  const auto got = report_round_trip(sent);
  EXPECT_TRUE(got == sent);
  EXPECT_EQ(got.accuracy, -1.0);
  EXPECT_TRUE(got.bandwidth.empty());
}

TEST(Envelope, BodyKinds) {
  {
    capnp::MallocMessageBuilder builder;
    raft::Message msg;
    msg.type = raft::MessageType::kHeartbeat;
    msg.from = 2;
    msg.to = 6;
    msg.term = 11;
    encode_raft_message(msg, kCluster, builder);
    const auto words = capnp::messageToFlatArray(builder);
    capnp::FlatArrayMessageReader reader(words.asPtr());
    EnvelopeHeader env;
    EXPECT_EQ(envelope_body(reader, &env), EnvelopeBody::kRaft);
    EXPECT_EQ(env.cluster_id, kCluster);
    EXPECT_EQ(env.sender, 2u);
    EXPECT_EQ(env.receiver, 6u);
    EXPECT_EQ(env.term, 11u);
    EXPECT_THROW(decode_gossip_chunk(reader), DecodeError);
    EXPECT_THROW(decode_round_report(reader), DecodeError);
  }
  {
    auto builder = encode_round_report(kCluster, kSender, kReceiver, full_report());
    const auto words = capnp::messageToFlatArray(*builder);
    capnp::FlatArrayMessageReader reader(words.asPtr());
    EXPECT_EQ(envelope_body(reader, nullptr), EnvelopeBody::kReport);
    EXPECT_THROW(decode_gossip_chunk(reader), DecodeError);
  }
  {
    auto m = make_model(Sparsifier::kDense, Encoding::kFp32, 16, 16);
    auto builder = encode_gossip_chunk(kCluster, kSender, kReceiver, m, 0, 16);
    const auto words = capnp::messageToFlatArray(*builder);
    capnp::FlatArrayMessageReader reader(words.asPtr());
    EXPECT_EQ(envelope_body(reader, nullptr), EnvelopeBody::kGossipChunk);
    EXPECT_THROW(decode_round_report(reader), DecodeError);
  }
}

}  // namespace
}  // namespace raftfl::wire
