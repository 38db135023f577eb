#include "zmq_sockets.hpp"

#include <cstring>

#include "raftfl/common/log.hpp"

namespace raftfl::net::zmqsock {

void warn(const std::string& text) { log::line(log::Level::kWarn, "zmq", text); }

std::string describe(NodeId id) { return "node " + std::to_string(id); }

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string endpoint(const std::string& host, const std::string& port) {
  if (is_ipv6(host)) return "tcp://[" + host + "]:" + port;
  return "tcp://" + host + ":" + port;
}

bool is_ipv6(const std::string& host) { return host.find(':') != std::string::npos; }

void Segments::assemble(const zmq::message_t* parts, std::size_t n) {
  list.clear();
  words = 0;
  std::size_t unaligned = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (reinterpret_cast<std::uintptr_t>(parts[i].data()) % alignof(capnp::word) != 0)
      unaligned += parts[i].size() / sizeof(capnp::word);
  }
  copies = unaligned > 0 ? kj::heapArray<capnp::word>(unaligned) : nullptr;
  std::size_t used = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t count = parts[i].size() / sizeof(capnp::word);
    words += count;
    if (reinterpret_cast<std::uintptr_t>(parts[i].data()) % alignof(capnp::word) == 0) {
      list.push_back(kj::arrayPtr(static_cast<const capnp::word*>(parts[i].data()), count));
    } else {
      std::memcpy(copies.begin() + used, parts[i].data(), parts[i].size());
      list.push_back(kj::arrayPtr(copies.begin() + used, count));
      used += count;
    }
  }
}

const char* check_parts(const std::vector<zmq::message_t>& parts, std::size_t first, bool overflow,
                        std::size_t max_body, zmqwire::Head* head) {
  if (overflow) return "too many parts";
  if (parts.size() <= first) return "no head";
  if (const char* error = zmqwire::parse_head(parts[first].data(), parts[first].size(), head)) return error;
  if (parts.size() - first - 1 != head->segments) return "part count does not match the segment table";
  const std::size_t limit = head->kind == zmqwire::Kind::kData ? max_body : zmqwire::kMaxHandshakeBytes;
  if (head->body_bytes > limit) return "message larger than max_frame_bytes";
  for (std::size_t i = 0; i < head->segments; ++i) {
    if (parts[first + 1 + i].size() != head->segment_bytes(i)) return "segment size does not match the segment table";
  }
  return nullptr;
}

bool receive_message(zmq::socket_t& socket, std::vector<zmq::message_t>& parts, std::size_t max_parts, bool* overflow) {
  parts.clear();
  *overflow = false;
  zmq::message_t part;
  if (!socket.recv(part, zmq::recv_flags::dontwait)) return false;
  bool more = part.more();
  parts.push_back(std::move(part));
  // libzmq delivers the parts of a message together: once the first is here, all are.
  while (more) {
    zmq::message_t next;
    if (!socket.recv(next, zmq::recv_flags::dontwait)) break;
    more = next.more();
    if (parts.size() < max_parts) {
      parts.push_back(std::move(next));
    } else {
      *overflow = true;
    }
  }
  return true;
}

namespace {

bool send_copy(zmq::socket_t& socket, const void* data, std::size_t size, bool more) {
  zmq::message_t part(data, size);
  auto flags = zmq::send_flags::dontwait;
  if (more) flags = flags | zmq::send_flags::sndmore;
  return socket.send(part, flags).has_value();
}

}  // namespace

bool send_small(zmq::socket_t& socket, std::string_view routing_id, zmqwire::Kind kind, std::uint32_t tag,
                capnp::MessageBuilder& message) {
  const auto segments = message.getSegmentsForOutput();
  const std::string head = zmqwire::encode_head(kind, tag, segments);
  if (!routing_id.empty() && !send_copy(socket, routing_id.data(), routing_id.size(), true)) return false;
  if (!send_copy(socket, head.data(), head.size(), true)) return false;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    // After the first part libzmq accepts the rest of the message.
    send_copy(socket, segments[i].begin(), segments[i].size() * sizeof(capnp::word), i + 1 < segments.size());
  }
  return true;
}

}  // namespace raftfl::net::zmqsock
