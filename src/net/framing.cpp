#include "raftfl/net/framing.hpp"

#include <bit>

#include "raftfl/raft/little_endian.hpp"

namespace raftfl::net {

// Cap'n Proto's segment table and our header are little-endian; so is every target we build for.
static_assert(std::endian::native == std::endian::little);

OutgoingFrame make_frame(std::unique_ptr<capnp::MessageBuilder> message) {
  OutgoingFrame frame;
  frame.segments = message->getSegmentsForOutput();
  frame.message = std::move(message);
  const std::size_t n = frame.segments.size();
  // Header (2 words of u32) + segment count + sizes, padded to an even count of u32.
  std::size_t table_u32 = 1 + n;
  if (table_u32 % 2 != 0) ++table_u32;
  frame.prefix.assign(2 + table_u32, 0);
  std::size_t body = table_u32 * 4;
  frame.prefix[2] = static_cast<std::uint32_t>(n - 1);
  for (std::size_t i = 0; i < n; ++i) {
    frame.prefix[3 + i] = static_cast<std::uint32_t>(frame.segments[i].size());
    body += frame.segments[i].size() * sizeof(capnp::word);
  }
  frame.prefix[0] = static_cast<std::uint32_t>(body);
  frame.total_bytes = kFrameHeaderBytes + body;
  return frame;
}

FrameHeaderCheck check_frame_header(const unsigned char* header, std::size_t max_frame_bytes,
                                    std::size_t* body_bytes) {
  const auto body = raft::get_le<std::uint32_t>(reinterpret_cast<const char*>(header));
  *body_bytes = body;
  if (body == 0) return FrameHeaderCheck::kEmpty;
  if (body % 8 != 0) return FrameHeaderCheck::kMisaligned;
  if (body > max_frame_bytes) return FrameHeaderCheck::kTooLarge;
  return FrameHeaderCheck::kOk;
}

const char* to_string(FrameHeaderCheck check) {
  switch (check) {
    case FrameHeaderCheck::kOk: return "ok";
    case FrameHeaderCheck::kEmpty: return "empty frame";
    case FrameHeaderCheck::kMisaligned: return "frame length not a multiple of 8";
    case FrameHeaderCheck::kTooLarge: return "frame larger than max_frame_bytes";
  }
  return "?";
}

capnp::ReaderOptions reader_options_for(std::size_t words) {
  capnp::ReaderOptions options;
  // Cap'n Proto counts far pointers and list headers too; twice the size plus slack
  // admits every honest message and still bounds a hostile one.
  options.traversalLimitInWords = words * 2 + 1024;
  options.nestingLimit = 64;
  return options;
}

}  // namespace raftfl::net
