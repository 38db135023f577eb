#pragma once

// What the ZeroMQ transport's inbound and outbound halves both do with libzmq sockets:
// address strings, receiving and checking one multipart message (zmq_wire.hpp's layout),
// laying its segments out for a Cap'n Proto reader, and sending a small message by copy.

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/array.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "raftfl/net/framing.hpp"
#include "raftfl/net/transport.hpp"
#include "zmq_wire.hpp"

namespace raftfl::net::zmqsock {

// libzmq counts high-water marks in messages, not bytes. The bytes this node sends are
// bounded by send_queue_bytes (what libzmq still holds counts, see zmq_outbound.cpp); what
// it receives is bounded by the receive HWM times max_frame_bytes per connection.
constexpr int kHighWaterMark = 1000;

void warn(const std::string& text);
std::string describe(NodeId id);
std::string hex(std::string_view bytes);

// tcp://host:port, with IPv6 literals in brackets as libzmq wants them (and ZMQ_IPV6 set
// on the socket, see is_ipv6).
std::string endpoint(const std::string& host, const std::string& port);
bool is_ipv6(const std::string& host);

// A received message laid out for a SegmentArrayMessageReader: segments at aligned
// addresses are read where libzmq put them; the others are copied into one aligned array.
struct Segments {
  std::vector<kj::ArrayPtr<const capnp::word>> list;
  kj::Array<capnp::word> copies;
  std::size_t words = 0;

  void assemble(const zmq::message_t* parts, std::size_t n);
  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments() const { return kj::arrayPtr(list.data(), list.size()); }

  // Lays out the message's `n` segment parts and calls `read(reader)` on a reader over
  // them, limited to what the message holds.
  template <typename Read>
  void read(const zmq::message_t* parts, std::size_t n, Read&& read) {
    assemble(parts, n);
    capnp::SegmentArrayMessageReader reader(segments(), reader_options_for(words));
    read(static_cast<capnp::MessageReader&>(reader));
  }
};

// Checks the parts from `first` on (after the routing id, if any) against their head;
// the error's text, or nullptr.
const char* check_parts(const std::vector<zmq::message_t>& parts, std::size_t first, bool overflow,
                        std::size_t max_body, zmqwire::Head* head);

// Receives one whole multipart message, if one is waiting. Parts beyond `max_parts` are
// received and discarded (libzmq already holds them) and reported through `overflow`.
bool receive_message(zmq::socket_t& socket, std::vector<zmq::message_t>& parts, std::size_t max_parts, bool* overflow);

// Sends a small message (handshake) by copy; `routing_id` empty on a DEALER. False if
// libzmq refused the first part (nothing of the message went).
bool send_small(zmq::socket_t& socket, std::string_view routing_id, zmqwire::Kind kind, std::uint32_t tag,
                capnp::MessageBuilder& message);

}  // namespace raftfl::net::zmqsock
