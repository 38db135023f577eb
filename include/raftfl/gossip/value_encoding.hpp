#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace raftfl::gossip {

// How exchanged values are laid out on the wire: little-endian IEEE-754 binary32, or the
// upper 16 bits of it (bfloat16), which halves the bytes and keeps fp32's exponent range.
enum class Encoding : std::uint8_t { kFp32 = 0, kBf16 = 1 };

std::size_t bytes_per_value(Encoding encoding);

// Round to nearest, ties to even. NaN stays a (quiet) NaN with its sign; infinities and
// values that round past the largest bf16 become infinities, as in IEEE rounding.
std::uint16_t float_to_bf16(float value);
float bf16_to_float(std::uint16_t bits);

std::vector<std::byte> encode_values(std::span<const float> values, Encoding encoding);

// A payload whose size is not a multiple of the value size.
class ValueDecodeError : public std::runtime_error {
 public:
  explicit ValueDecodeError(const std::string& what) : std::runtime_error(what) {}
};

std::vector<float> decode_values(std::span<const std::byte> bytes, Encoding encoding);

}  // namespace raftfl::gossip
