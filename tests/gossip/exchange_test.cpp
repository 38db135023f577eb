// One round's exchange between two peers, independent of the transport: chunking of an
// outgoing model, reassembly and checking of an incoming one, and the averaging.
#include "raftfl/gossip/exchange.hpp"

#include "raftfl/gossip/mask.hpp"
#include "random_values.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <stdexcept>
#include <utility>
#include <vector>

namespace raftfl::gossip {
namespace {

using test::random_values;

constexpr std::uint64_t kRound = 7;
constexpr std::uint64_t kSeed = 0x5eedULL;

// Feeds `out` to `in` as chunks of at most `chunk_values` values, in a shuffled order.
void deliver(const OutgoingModel& out, IncomingModel& in, std::size_t chunk_values, std::uint32_t shuffle_seed,
             const ExchangeSpec& spec, std::uint64_t parameter_count) {
  auto chunks = out.chunks(chunk_values);
  std::mt19937 gen(shuffle_seed);
  std::shuffle(chunks.begin(), chunks.end(), gen);
  const std::size_t width = bytes_per_value(out.header.encoding);
  for (const auto& [first, count] : chunks) {
    ChunkHeader h = out.header;
    h.offset = first;
    std::span<const std::byte> values(out.encoded_values.data() + first * width, count * width);
    std::span<const std::uint32_t> indices;
    if (out.indices_travel()) indices = std::span<const std::uint32_t>(out.indices.data() + first, count);
    in.add(h, values, indices, out.header.round, spec, parameter_count);
  }
}

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

std::vector<std::uint32_t> complement(std::span<const std::uint32_t> indices, std::size_t n) {
  std::vector<bool> in(n, false);
  for (auto i : indices) in[i] = true;
  std::vector<std::uint32_t> out;
  for (std::uint32_t i = 0; i < n; ++i)
    if (!in[i]) out.push_back(i);
  return out;
}

// ---------------------------------------------------------------------------------------
// OutgoingModel

OutgoingModel model_with_values(std::size_t count, Sparsifier sparsifier, Encoding encoding) {
  OutgoingModel m;
  m.header.sparsifier = sparsifier;
  m.header.encoding = encoding;
  m.header.parameter_count = count * 3 + 1;
  m.header.total_values = count;
  m.indices.resize(count);
  std::iota(m.indices.begin(), m.indices.end(), 0u);
  m.encoded_values = encode_values(random_values(count, 3), encoding);
  return m;
}

TEST(OutgoingModel, ChunksCoverEveryValueOnceInOrder) {
  for (std::size_t total : {1u, 2u, 9u, 10u, 11u, 100u, 1023u}) {
    const auto m = model_with_values(total, Sparsifier::kRandomK, Encoding::kFp32);
    for (std::size_t chunk : {1u, 2u, 3u, 7u, 10u, 64u, 5000u}) {
      SCOPED_TRACE(::testing::Message() << "total " << total << " chunk " << chunk);
      const auto ranges = m.chunks(chunk);
      ASSERT_FALSE(ranges.empty());
      std::size_t next = 0;
      for (const auto& [first, count] : ranges) {
        EXPECT_EQ(first, next);
        EXPECT_GT(count, 0u);
        EXPECT_LE(count, chunk);
        next = first + count;
      }
      EXPECT_EQ(next, total);
      EXPECT_EQ(ranges.size(), (total + chunk - 1) / chunk) << "chunks are as large as allowed";
    }
  }
}

TEST(OutgoingModel, ChunksExample) {
  const auto m = model_with_values(10, Sparsifier::kRandomK, Encoding::kFp32);
  const std::vector<std::pair<std::size_t, std::size_t>> expected = {{0, 3}, {3, 3}, {6, 3}, {9, 1}};
  EXPECT_EQ(m.chunks(3), expected);
}

TEST(OutgoingModel, EmptyModelIsOneEmptyChunk) {
  const auto m = model_with_values(0, Sparsifier::kTopK, Encoding::kFp32);
  const std::vector<std::pair<std::size_t, std::size_t>> expected = {{0, 0}};
  EXPECT_EQ(m.chunks(16), expected);
  EXPECT_EQ(m.payload_bytes(), 0u);
}

TEST(OutgoingModel, PayloadBytes) {
  EXPECT_EQ(model_with_values(10, Sparsifier::kRandomK, Encoding::kFp32).payload_bytes(), 40u);
  EXPECT_EQ(model_with_values(10, Sparsifier::kRandomK, Encoding::kBf16).payload_bytes(), 20u);
  EXPECT_EQ(model_with_values(10, Sparsifier::kDense, Encoding::kFp32).payload_bytes(), 40u)
      << "dense indices do not travel";
  EXPECT_EQ(model_with_values(10, Sparsifier::kTopK, Encoding::kFp32).payload_bytes(), 40u + 40u);
  EXPECT_EQ(model_with_values(10, Sparsifier::kTopK, Encoding::kBf16).payload_bytes(), 20u + 40u);
}

// ---------------------------------------------------------------------------------------
// ModelExchanger: random-k

TEST(ModelExchanger, RandomKAveragesOnTheSharedMaskOnly) {
  const std::size_t n = 1000;
  const ExchangeSpec spec{Sparsifier::kRandomK, 0.1, Encoding::kFp32};
  ModelExchanger ea(spec, n);
  ModelExchanger eb(spec, n);
  auto a = random_values(n, 1);
  auto b = random_values(n, 2);
  const auto a0 = a;
  const auto b0 = b;

  const OutgoingModel out_a = ea.prepare(a, kRound, kSeed);
  const OutgoingModel out_b = eb.prepare(b, kRound, kSeed);
  ASSERT_EQ(out_a.indices.size(), k_for_density(n, 0.1));
  ASSERT_EQ(out_a.indices, out_b.indices) << "both peers draw the same mask from the seed";
  EXPECT_EQ(out_a.indices, random_k_indices(n, 0.1, kSeed));
  EXPECT_EQ(out_a.header.round, kRound);
  EXPECT_EQ(out_a.header.total_values, out_a.indices.size());
  EXPECT_EQ(out_a.header.parameter_count, n);
  EXPECT_EQ(out_a.payload_bytes(), out_a.indices.size() * 4);
  EXPECT_EQ(a, a0) << "prepare does not touch the model";

  IncomingModel in_a;  // A receives B's model
  IncomingModel in_b;
  deliver(out_b, in_a, 17, 11, spec, n);
  deliver(out_a, in_b, 17, 12, spec, n);
  ASSERT_TRUE(in_a.complete());
  ASSERT_TRUE(in_b.complete());
  EXPECT_EQ(in_a.bytes_received(), out_b.payload_bytes());

  ea.absorb(a, out_a, in_a);
  eb.absorb(b, out_b, in_b);

  for (const auto i : out_a.indices) {
    const float mean = (a0[i] + b0[i]) / 2.0f;
    EXPECT_EQ(bits(a[i]), bits(mean)) << "index " << i;
    EXPECT_EQ(bits(b[i]), bits(mean)) << "index " << i;
  }
  for (const auto i : complement(out_a.indices, n)) {
    EXPECT_EQ(bits(a[i]), bits(a0[i])) << "index " << i;
    EXPECT_EQ(bits(b[i]), bits(b0[i])) << "index " << i;
  }
}

TEST(ModelExchanger, RandomKMaskDependsOnTheRoundSeed) {
  const std::size_t n = 1000;
  ModelExchanger e({Sparsifier::kRandomK, 0.1, Encoding::kFp32}, n);
  const auto a = random_values(n, 1);
  const auto m1 = e.prepare(a, 1, 101).indices;
  const auto m2 = e.prepare(a, 2, 202).indices;
  const auto m1_again = e.prepare(a, 3, 101).indices;
  EXPECT_NE(m1, m2);
  EXPECT_EQ(m1, m1_again) << "the mask depends only on the seed";
  EXPECT_TRUE(std::is_sorted(m1.begin(), m1.end()));
}

TEST(ModelExchanger, PrepareRefusesAModelOfTheWrongSize) {
  ModelExchanger e({Sparsifier::kRandomK, 0.1, Encoding::kFp32}, 10);
  const auto a = random_values(11, 1);
  EXPECT_THROW(e.prepare(a, 1, 1), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------
// dense

TEST(ModelExchanger, DenseAveragesEverywhere) {
  const std::size_t n = 257;
  const ExchangeSpec spec{Sparsifier::kDense, 0.1, Encoding::kFp32};
  ModelExchanger ea(spec, n);
  ModelExchanger eb(spec, n);
  auto a = random_values(n, 4);
  auto b = random_values(n, 5);
  const auto a0 = a;
  const auto b0 = b;
  const auto out_a = ea.prepare(a, kRound, kSeed);
  const auto out_b = eb.prepare(b, kRound, kSeed);
  EXPECT_EQ(out_a.indices.size(), n);
  EXPECT_EQ(out_a.payload_bytes(), n * 4);
  IncomingModel in_a;
  IncomingModel in_b;
  deliver(out_b, in_a, 50, 21, spec, n);
  deliver(out_a, in_b, 50, 22, spec, n);
  ea.absorb(a, out_a, in_a);
  eb.absorb(b, out_b, in_b);
  for (std::size_t i = 0; i < n; ++i) {
    const float mean = (a0[i] + b0[i]) / 2.0f;
    EXPECT_EQ(bits(a[i]), bits(mean)) << "index " << i;
    EXPECT_EQ(bits(b[i]), bits(mean)) << "index " << i;
  }
}

// ---------------------------------------------------------------------------------------
// top-k

TEST(ModelExchanger, TopKFirstPrepareSendsTheFirstKIndices) {
  // The first prepare compares the model with itself: every change is zero and ties go to
  // the lower index.
  const std::size_t n = 100;
  ModelExchanger e({Sparsifier::kTopK, 0.05, Encoding::kFp32}, n);
  const auto a = random_values(n, 6);
  const auto out = e.prepare(a, 1, kSeed);
  EXPECT_EQ(out.indices, (std::vector<std::uint32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(out.header.sparsifier, Sparsifier::kTopK);
  EXPECT_TRUE(out.indices_travel());
  EXPECT_EQ(out.payload_bytes(), 5u * 4 + 5u * 4);
  const auto values = decode_values(out.encoded_values, Encoding::kFp32);
  ASSERT_EQ(values.size(), 5u);
  for (std::size_t k = 0; k < 5; ++k) EXPECT_EQ(bits(values[k]), bits(a[k])) << "model values, not changes";
}

TEST(ModelExchanger, TopKSendsLargestChangesAndAveragesAtThePeersIndices) {
  const std::size_t n = 100;
  const ExchangeSpec spec{Sparsifier::kTopK, 0.05, Encoding::kFp32};
  ModelExchanger ea(spec, n);
  ModelExchanger eb(spec, n);
  auto a = random_values(n, 7);
  auto b = random_values(n, 8);
  (void)ea.prepare(a, 1, kSeed);
  (void)eb.prepare(b, 1, kSeed);

  // Local steps: a few coordinates move a lot, some others a little.
  const std::vector<std::uint32_t> moved_a = {17, 42, 63, 88, 99};
  const std::vector<std::uint32_t> moved_b = {3, 20, 50, 70, 95};
  for (std::size_t k = 0; k < moved_a.size(); ++k) {
    a[moved_a[k]] += (k % 2 == 0 ? 10.0f : -10.0f) * static_cast<float>(k + 1);
    b[moved_b[k]] -= 5.0f + static_cast<float>(k);
  }
  for (std::uint32_t i : {1u, 2u, 30u, 31u}) {
    a[i] += 0.01f;
    b[i] -= 0.01f;
  }
  const auto a0 = a;
  const auto b0 = b;

  const auto out_a = ea.prepare(a, 2, kSeed);
  const auto out_b = eb.prepare(b, 2, kSeed);
  ASSERT_EQ(out_a.indices, moved_a);
  ASSERT_EQ(out_b.indices, moved_b);

  IncomingModel in_a;
  IncomingModel in_b;
  deliver(out_b, in_a, 2, 31, spec, n);
  deliver(out_a, in_b, 2, 32, spec, n);
  ASSERT_TRUE(in_a.complete());
  EXPECT_EQ(in_a.indices(), moved_b);
  EXPECT_EQ(in_a.bytes_received(), out_b.payload_bytes());

  ea.absorb(a, out_a, in_a);
  eb.absorb(b, out_b, in_b);
  for (const auto i : moved_b) EXPECT_EQ(bits(a[i]), bits((a0[i] + b0[i]) / 2.0f)) << "A at B's index " << i;
  for (const auto i : complement(moved_b, n)) EXPECT_EQ(bits(a[i]), bits(a0[i])) << "A elsewhere, index " << i;
  for (const auto i : moved_a) EXPECT_EQ(bits(b[i]), bits((a0[i] + b0[i]) / 2.0f)) << "B at A's index " << i;
  for (const auto i : complement(moved_a, n)) EXPECT_EQ(bits(b[i]), bits(b0[i])) << "B elsewhere, index " << i;
}

// ---------------------------------------------------------------------------------------
// bf16

TEST(ModelExchanger, Bf16ValuesAreAveragedWithinBf16Rounding) {
  const std::size_t n = 1000;
  const ExchangeSpec spec{Sparsifier::kRandomK, 0.2, Encoding::kBf16};
  ModelExchanger ea(spec, n);
  ModelExchanger eb(spec, n);
  auto a = random_values(n, 9);
  auto b = random_values(n, 10);
  const auto a0 = a;
  const auto b0 = b;
  const auto out_a = ea.prepare(a, kRound, kSeed);
  const auto out_b = eb.prepare(b, kRound, kSeed);
  EXPECT_EQ(out_a.header.encoding, Encoding::kBf16);
  EXPECT_EQ(out_a.payload_bytes(), out_a.indices.size() * 2);
  IncomingModel in_a;
  IncomingModel in_b;
  deliver(out_b, in_a, 33, 41, spec, n);
  deliver(out_a, in_b, 33, 42, spec, n);
  ea.absorb(a, out_a, in_a);
  eb.absorb(b, out_b, in_b);
  std::size_t rounded = 0;
  for (const auto i : out_a.indices) {
    const float exact = (a0[i] + b0[i]) / 2.0f;
    // bf16 keeps 8 significant bits: the peer's value is off by at most 2^-9 of itself,
    // half of that after averaging.
    EXPECT_NEAR(a[i], exact, std::fabs(b0[i]) * 0x1p-9f + std::fabs(exact) * 0x1p-22f) << "index " << i;
    EXPECT_NEAR(b[i], exact, std::fabs(a0[i]) * 0x1p-9f + std::fabs(exact) * 0x1p-22f) << "index " << i;
    // Own value at full precision, the peer's through bf16.
    EXPECT_EQ(bits(a[i]), bits((a0[i] + bf16_to_float(float_to_bf16(b0[i]))) * 0.5f)) << "index " << i;
    if (a[i] != exact) ++rounded;
  }
  EXPECT_GT(rounded, 0u) << "the values did travel as bf16";
  for (const auto i : complement(out_a.indices, n)) EXPECT_EQ(bits(a[i]), bits(a0[i]));
}

// ---------------------------------------------------------------------------------------
// IncomingModel::add

constexpr std::uint64_t kN = 100;

ChunkHeader header(std::uint64_t offset, Sparsifier s = Sparsifier::kRandomK, Encoding e = Encoding::kFp32) {
  ChunkHeader h;
  h.round = kRound;
  h.sparsifier = s;
  h.encoding = e;
  h.parameter_count = kN;
  h.total_values = 10;
  h.offset = offset;
  return h;
}

std::vector<std::byte> floats(std::initializer_list<float> v) {
  return encode_values(std::vector<float>(v), Encoding::kFp32);
}

class IncomingModelTest : public ::testing::Test {
 protected:
  const ExchangeSpec spec_{Sparsifier::kRandomK, 0.1, Encoding::kFp32};
  IncomingModel in_;

  // Values 4..7 of 10 arrive first.
  void SetUp() override {
    const auto v = floats({4, 5, 6, 7});
    in_.add(header(4), v, {}, kRound, spec_, kN);
    ASSERT_FALSE(in_.complete());
    ASSERT_EQ(in_.values().size(), 10u);
    ASSERT_EQ(in_.bytes_received(), 16u);
  }

  void expect_rejected(const ChunkHeader& h, std::span<const std::byte> values, std::span<const std::uint32_t> indices,
                       const ExchangeSpec& spec, const char* what) {
    SCOPED_TRACE(what);
    const auto values_before = in_.values();
    const auto bytes_before = in_.bytes_received();
    EXPECT_THROW(in_.add(h, values, indices, kRound, spec, kN), ExchangeError);
    EXPECT_FALSE(in_.complete());
    EXPECT_EQ(in_.values(), values_before);
    EXPECT_EQ(in_.bytes_received(), bytes_before);
  }

  // The rest arrives: the model completes only if no rejected chunk was counted.
  void complete_and_check() {
    in_.add(header(0), floats({0, 1, 2, 3}), {}, kRound, spec_, kN);
    in_.add(header(8), floats({8, 9}), {}, kRound, spec_, kN);
    EXPECT_TRUE(in_.complete());
    EXPECT_EQ(in_.values(), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    EXPECT_EQ(in_.bytes_received(), 40u);
  }
};

TEST_F(IncomingModelTest, AcceptsChunksInAnyOrder) { complete_and_check(); }

TEST_F(IncomingModelTest, RejectsAWrongRound) {
  auto h = header(0);
  h.round = kRound + 1;
  expect_rejected(h, floats({0, 1}), {}, spec_, "round");
  complete_and_check();
}

TEST_F(IncomingModelTest, RejectsADifferentParameterCount) {
  auto h = header(0);
  h.parameter_count = kN + 1;
  expect_rejected(h, floats({0, 1}), {}, spec_, "parameter count");
  complete_and_check();
}

TEST_F(IncomingModelTest, RejectsADifferentSparsifier) {
  expect_rejected(header(0, Sparsifier::kDense), floats({0, 1}), {}, spec_, "dense");
  const std::vector<std::uint32_t> idx = {0, 1};
  expect_rejected(header(0, Sparsifier::kTopK), floats({0, 1}), idx, spec_, "top-k");
  complete_and_check();
}

TEST_F(IncomingModelTest, RejectsADifferentEncoding) {
  const auto v = encode_values(std::vector<float>{0, 1}, Encoding::kBf16);
  expect_rejected(header(0, Sparsifier::kRandomK, Encoding::kBf16), v, {}, spec_, "bf16");
  complete_and_check();
}

TEST_F(IncomingModelTest, RejectsMoreValuesThanParameters) {
  IncomingModel fresh;
  auto h = header(0);
  h.total_values = kN + 1;
  EXPECT_THROW(fresh.add(h, floats({0, 1}), {}, kRound, spec_, kN), ExchangeError);
  EXPECT_FALSE(fresh.complete());
  EXPECT_TRUE(fresh.values().empty());
  expect_rejected(h, floats({0, 1}), {}, spec_, "total above parameter count");
  complete_and_check();
}

TEST_F(IncomingModelTest, RejectsValuesThatAreNotWhole) {
  auto v = floats({0, 1});
  v.pop_back();
  expect_rejected(header(0), v, {}, spec_, "7 bytes");
  complete_and_check();
}

TEST_F(IncomingModelTest, RejectsARangePastTheTotal) {
  expect_rejected(header(8), floats({8, 9, 10}), {}, spec_, "8 + 3 > 10");
  expect_rejected(header(11), floats({}), {}, spec_, "offset past total");
  complete_and_check();
}

TEST_F(IncomingModelTest, RejectsOverlappingChunks) {
  expect_rejected(header(2), floats({2, 3, 4}), {}, spec_, "overlaps the start of an earlier chunk");
  expect_rejected(header(7), floats({7, 8}), {}, spec_, "overlaps the end of an earlier chunk");
  expect_rejected(header(4), floats({4, 5, 6, 7}), {}, spec_, "the same chunk again");
  expect_rejected(header(5), floats({5}), {}, spec_, "inside an earlier chunk");
  expect_rejected(header(0), floats({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}), {}, spec_, "around an earlier chunk");
  complete_and_check();
}

TEST_F(IncomingModelTest, RejectsAChunkOverlappingALaterOne) {
  // The earlier-received chunk lies after the new one, and before it.
  in_.add(header(0), floats({0, 1}), {}, kRound, spec_, kN);
  expect_rejected(header(1), floats({1, 2}), {}, spec_, "overlaps [0, 2)");
  expect_rejected(header(3), floats({3, 4}), {}, spec_, "overlaps [4, 8)");
  in_.add(header(2), floats({2, 3}), {}, kRound, spec_, kN);
  in_.add(header(8), floats({8, 9}), {}, kRound, spec_, kN);
  EXPECT_TRUE(in_.complete());
}

TEST_F(IncomingModelTest, RejectsIndicesWithRandomK) {
  const std::vector<std::uint32_t> idx = {0, 1};
  expect_rejected(header(0), floats({0, 1}), idx, spec_, "indices with random-k");
  complete_and_check();
}

TEST_F(IncomingModelTest, RejectsATotalThatChanges) {
  auto h = header(0);
  h.total_values = 12;
  expect_rejected(h, floats({0, 1}), {}, spec_, "total 12 after 10");
  complete_and_check();
}

TEST(IncomingModel, TopKChecksIndices) {
  const ExchangeSpec spec{Sparsifier::kTopK, 0.1, Encoding::kFp32};
  IncomingModel in;
  const std::vector<std::uint32_t> first = {5, 9, 20, 33};
  in.add(header(0, Sparsifier::kTopK), floats({1, 2, 3, 4}), first, kRound, spec, kN);
  const auto values_before = in.values();
  const auto indices_before = in.indices();

  const std::vector<std::uint32_t> three = {40, 41, 42};
  EXPECT_THROW(in.add(header(4, Sparsifier::kTopK), floats({5, 6, 7, 8}), three, kRound, spec, kN), ExchangeError);
  EXPECT_THROW(in.add(header(4, Sparsifier::kTopK), floats({5, 6, 7, 8}), {}, kRound, spec, kN), ExchangeError);
  const std::vector<std::uint32_t> out_of_range = {40, 41, 42, static_cast<std::uint32_t>(kN)};
  EXPECT_THROW(in.add(header(4, Sparsifier::kTopK), floats({5, 6, 7, 8}), out_of_range, kRound, spec, kN),
               ExchangeError);
  EXPECT_FALSE(in.complete());
  EXPECT_EQ(in.values(), values_before);
  EXPECT_EQ(in.indices(), indices_before);

  const std::vector<std::uint32_t> rest = {40, 41, 42, 99, 60, 70};
  in.add(header(4, Sparsifier::kTopK), floats({5, 6, 7, 8, 9, 10}), rest, kRound, spec, kN);
  EXPECT_TRUE(in.complete());
  EXPECT_EQ(in.indices(), (std::vector<std::uint32_t>{5, 9, 20, 33, 40, 41, 42, 99, 60, 70}));
  EXPECT_EQ(in.values(), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(in.bytes_received(), 80u);
}

TEST(IncomingModel, EmptyModelIsCompleteAfterItsOneChunk) {
  const ExchangeSpec spec{Sparsifier::kTopK, 0.1, Encoding::kFp32};
  IncomingModel in;
  EXPECT_FALSE(in.complete()) << "nothing heard yet";
  auto h = header(0, Sparsifier::kTopK);
  h.total_values = 0;
  in.add(h, {}, {}, kRound, spec, kN);
  EXPECT_TRUE(in.complete());
}

// ---------------------------------------------------------------------------------------
// absorb

TEST(ModelExchanger, AbsorbRefusesAnIncompletePeerModel) {
  const std::size_t n = 1000;
  const ExchangeSpec spec{Sparsifier::kRandomK, 0.1, Encoding::kFp32};
  ModelExchanger ea(spec, n);
  ModelExchanger eb(spec, n);
  auto a = random_values(n, 1);
  const auto a0 = a;
  const auto out_a = ea.prepare(a, kRound, kSeed);
  const auto out_b = eb.prepare(random_values(n, 2), kRound, kSeed);
  IncomingModel in;
  const auto [first, count] = out_b.chunks(30).front();
  ChunkHeader h = out_b.header;
  h.offset = first;
  in.add(h, std::span<const std::byte>(out_b.encoded_values.data(), count * 4), {}, kRound, spec, n);
  ASSERT_FALSE(in.complete());
  EXPECT_THROW(ea.absorb(a, out_a, in), ExchangeError);
  EXPECT_EQ(a, a0);
  IncomingModel nothing;
  EXPECT_THROW(ea.absorb(a, out_a, nothing), ExchangeError);
  EXPECT_EQ(a, a0);
}

TEST(ModelExchanger, AbsorbRefusesARandomKPeerOfAnotherDensity) {
  const std::size_t n = 1000;
  const ExchangeSpec spec_a{Sparsifier::kRandomK, 0.1, Encoding::kFp32};
  const ExchangeSpec spec_b{Sparsifier::kRandomK, 0.2, Encoding::kFp32};
  ModelExchanger ea(spec_a, n);
  ModelExchanger eb(spec_b, n);
  auto a = random_values(n, 1);
  const auto a0 = a;
  const auto out_a = ea.prepare(a, kRound, kSeed);
  const auto out_b = eb.prepare(random_values(n, 2), kRound, kSeed);
  IncomingModel in;
  deliver(out_b, in, 64, 5, spec_a, n);  // add() does not know the density
  ASSERT_TRUE(in.complete());
  EXPECT_THROW(ea.absorb(a, out_a, in), ExchangeError);
  EXPECT_EQ(a, a0);
}

// ---------------------------------------------------------------------------------------
// names

TEST(Sparsifier, NamesRoundTrip) {
  for (const auto s : {Sparsifier::kRandomK, Sparsifier::kTopK, Sparsifier::kDense}) {
    const auto parsed = parse_sparsifier(to_string(s));
    ASSERT_TRUE(parsed.has_value()) << to_string(s);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(to_string(Sparsifier::kRandomK), "random-k");
  EXPECT_EQ(to_string(Sparsifier::kTopK), "top-k");
  EXPECT_EQ(to_string(Sparsifier::kDense), "dense");
  for (const char* bad : {"", "topk", "Top-K", "random_k", "dense ", "sparse"})
    EXPECT_FALSE(parse_sparsifier(bad).has_value()) << bad;
}

}  // namespace
}  // namespace raftfl::gossip
