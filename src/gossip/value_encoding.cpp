#include "raftfl/gossip/value_encoding.hpp"

#include <bit>
#include <limits>
#include <stdexcept>
#include <string>

namespace raftfl::gossip {

namespace {

static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559, "wire values are IEEE binary32");

// Byte order is fixed by the wire, not by the host, so values are written byte by byte;
// the compiler turns this into a plain store on little-endian machines.
template <typename U>
void store_le(std::byte* p, U v) {
  for (std::size_t i = 0; i < sizeof(U); ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

template <typename U>
U load_le(const std::byte* p) {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) v = static_cast<U>(v | (static_cast<U>(p[i]) << (8 * i)));
  return v;
}

}  // namespace

std::size_t bytes_per_value(Encoding encoding) {
  switch (encoding) {
    case Encoding::kFp32: return 4;
    case Encoding::kBf16: return 2;
  }
  throw std::invalid_argument("unknown value encoding");
}

std::uint16_t float_to_bf16(float value) {
  const auto bits = std::bit_cast<std::uint32_t>(value);
  if ((bits & 0x7fffffffU) > 0x7f800000U) {
    // Truncating a NaN whose payload sits in the low half would yield an infinity; setting
    // the quiet bit keeps it a NaN.
    return static_cast<std::uint16_t>((bits >> 16) | 0x0040U);
  }
  // Adding 0x7fff plus the lowest kept bit rounds half-way cases to an even result; a carry
  // into the exponent is the correct rounding up to the next binade or to infinity.
  const std::uint32_t rounding = 0x7fffU + ((bits >> 16) & 1U);
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

float bf16_to_float(std::uint16_t bits) { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }

std::vector<std::byte> encode_values(std::span<const float> values, Encoding encoding) {
  const std::size_t width = bytes_per_value(encoding);
  std::vector<std::byte> out(values.size() * width);
  std::byte* p = out.data();
  if (encoding == Encoding::kFp32) {
    for (const float v : values) {
      store_le(p, std::bit_cast<std::uint32_t>(v));
      p += width;
    }
  } else {
    for (const float v : values) {
      store_le(p, float_to_bf16(v));
      p += width;
    }
  }
  return out;
}

std::vector<float> decode_values(std::span<const std::byte> bytes, Encoding encoding) {
  const std::size_t width = bytes_per_value(encoding);
  if (bytes.size() % width != 0) {
    throw ValueDecodeError("value payload of " + std::to_string(bytes.size()) + " bytes is not a multiple of " +
                           std::to_string(width));
  }
  std::vector<float> out(bytes.size() / width);
  const std::byte* p = bytes.data();
  for (float& v : out) {
    v = encoding == Encoding::kFp32 ? std::bit_cast<float>(load_le<std::uint32_t>(p))
                                    : bf16_to_float(load_le<std::uint16_t>(p));
    p += width;
  }
  return out;
}

}  // namespace raftfl::gossip
