#include "raftfl/gossip/value_encoding.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace raftfl::gossip {
namespace {

float from_bits(std::uint32_t b) { return std::bit_cast<float>(b); }

TEST(Bf16, ExactValues) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16(-2.5f), 0xc020);
  EXPECT_EQ(float_to_bf16(0.0f), 0x0000);
  EXPECT_EQ(float_to_bf16(-0.0f), 0x8000);
  for (float v : {1.0f, -2.5f, 0.0f, 0.5f, -1024.0f, 3.0f}) EXPECT_EQ(bf16_to_float(float_to_bf16(v)), v);
  EXPECT_TRUE(std::signbit(bf16_to_float(float_to_bf16(-0.0f))));
}

TEST(Bf16, RoundsToNearestTiesToEven) {
  // Half-way between 0x3f80 and 0x3f81: the even one (0x3f80) wins.
  EXPECT_EQ(float_to_bf16(from_bits(0x3f808000)), 0x3f80);
  // Half-way between 0x3f81 and 0x3f82: again the even one, now upwards.
  EXPECT_EQ(float_to_bf16(from_bits(0x3f818000)), 0x3f82);
  // Just off the half-way point goes to the nearer neighbour.
  EXPECT_EQ(float_to_bf16(from_bits(0x3f808001)), 0x3f81);
  EXPECT_EQ(float_to_bf16(from_bits(0x3f807fff)), 0x3f80);
  // Negative values round by magnitude the same way.
  EXPECT_EQ(float_to_bf16(from_bits(0xbf818000)), 0xbf82);
  // A carry out of the mantissa moves into the next binade.
  EXPECT_EQ(float_to_bf16(from_bits(0x3fffffff)), 0x4000);
}

TEST(Bf16, OverflowInfinityAndNan) {
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to +inf
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(float_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  // A NaN whose payload lives only in the dropped bits must not become infinity.
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(from_bits(0x7f800001)))));
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::signbit(bf16_to_float(float_to_bf16(from_bits(0xff800001)))));
}

TEST(Bf16, RoundTripRelativeErrorIsAtMostHalfAnUlp) {
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> mant(-1.0f, 1.0f);
  std::uniform_int_distribution<int> expo(-100, 100);
  for (int i = 0; i < 100000; ++i) {
    const float v = std::ldexp(mant(gen), expo(gen));
    if (v == 0.0f) continue;
    const float r = bf16_to_float(float_to_bf16(v));
    // 8 significant bits, so an ulp of v's binade is 2^(exponent - 7); round to nearest is
    // off by at most half of it.
    const float half_ulp = std::ldexp(1.0f, std::ilogb(v) - 8);
    ASSERT_LE(std::fabs(r - v), half_ulp) << v;
  }
}

TEST(EncodeValues, Fp32IsLittleEndianAndExact) {
  const std::vector<float> v{1.0f, -2.5f, 0.0f, 3.14159f};
  const auto bytes = encode_values(v, Encoding::kFp32);
  ASSERT_EQ(bytes.size(), 16u);
  EXPECT_EQ(bytes[0], std::byte{0x00});
  EXPECT_EQ(bytes[1], std::byte{0x00});
  EXPECT_EQ(bytes[2], std::byte{0x80});
  EXPECT_EQ(bytes[3], std::byte{0x3f});
  EXPECT_EQ(decode_values(bytes, Encoding::kFp32), v);
}

TEST(EncodeValues, Bf16IsLittleEndianAndHalfTheSize) {
  const std::vector<float> v{1.0f, -2.5f, 0.0f};
  const auto bytes = encode_values(v, Encoding::kBf16);
  ASSERT_EQ(bytes.size(), 6u);
  EXPECT_EQ(bytes[0], std::byte{0x80});
  EXPECT_EQ(bytes[1], std::byte{0x3f});
  EXPECT_EQ(bytes[2], std::byte{0x20});
  EXPECT_EQ(bytes[3], std::byte{0xc0});
  EXPECT_EQ(decode_values(bytes, Encoding::kBf16), v);
}

TEST(EncodeValues, Bf16RoundTripOfRandomValues) {
  std::mt19937 gen(2);
  std::normal_distribution<float> dist(0.0f, 0.1f);
  std::vector<float> v(1000);
  for (float& x : v) x = dist(gen);
  const auto back = decode_values(encode_values(v, Encoding::kBf16), Encoding::kBf16);
  ASSERT_EQ(back.size(), v.size());
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_EQ(back[i], bf16_to_float(float_to_bf16(v[i])));
}

TEST(DecodeValues, RejectsTruncatedPayload) {
  const std::vector<std::byte> three(3);
  EXPECT_THROW(decode_values(three, Encoding::kFp32), ValueDecodeError);
  EXPECT_THROW(decode_values(three, Encoding::kBf16), ValueDecodeError);
  EXPECT_TRUE(decode_values({}, Encoding::kFp32).empty());
}

}  // namespace
}  // namespace raftfl::gossip
