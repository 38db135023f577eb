#pragma once

#include <capnp/message.h>
#include <kj/array.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace raftfl::net {

// A frame on a byte stream: an 8-byte header (u32 little-endian body length, u32 zero
// reserved for flags) and a body in Cap'n Proto's stream format (segment table, then the
// segments). Body lengths are multiples of 8, so a frame that starts 8-byte aligned in a
// receive buffer ends aligned too and the next frame can be read in place.
inline constexpr std::size_t kFrameHeaderBytes = 8;

// A message ready for a gather write: the header and segment table in `prefix`, the
// segments referenced where the builder keeps them. Owns the builder, so the referenced
// memory lives until the frame is dropped.
struct OutgoingFrame {
  std::unique_ptr<capnp::MessageBuilder> message;
  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments;
  std::vector<std::uint32_t> prefix;  // frame header + segment table, padded to 8 bytes
  std::size_t total_bytes = 0;        // header included

  std::size_t body_bytes() const { return total_bytes - kFrameHeaderBytes; }
};

OutgoingFrame make_frame(std::unique_ptr<capnp::MessageBuilder> message);

enum class FrameHeaderCheck { kOk, kEmpty, kMisaligned, kTooLarge };

// Validates a received header; `body_bytes` receives the announced length.
FrameHeaderCheck check_frame_header(const unsigned char* header, std::size_t max_frame_bytes,
                                    std::size_t* body_bytes);
const char* to_string(FrameHeaderCheck check);

// Reader limits for a body of `words` words: a traversal limit proportional to what was
// received, so a crafted message cannot make the reader walk more than it was sent.
capnp::ReaderOptions reader_options_for(std::size_t words);

}  // namespace raftfl::net
