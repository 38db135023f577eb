// ZeroMQ transport. Each node binds one ROUTER, which receives everything sent to this
// node, and keeps one DEALER per peer, connected to that peer's ROUTER, which carries
// everything this node sends to it. Messages use the multipart layout of zmq_wire.hpp.
//
// Handshake: libzmq reconnects a DEALER by itself, so the transport watches each DEALER
// with a socket monitor and, on every ZMQ_EVENT_CONNECTED, sends a Hello first on the new
// connection (ZMQ_IMMEDIATE keeps messages off a connection until it exists, and no data
// goes out until the reply for the current connection accepted it). The ROUTER admits a
// routing id (one per connection: the ROUTER numbers them and never reuses one) after a
// valid Hello, with the checks and log lines of the TCP transport, and answers through the
// ROUTER. Anything else from a routing id that has not been admitted is dropped.
//
// Reactor bridge: libzmq runs its own I/O thread. Every socket's ZMQ_FD is watched by the
// io_context through a dup()'d descriptor; the descriptor only says that the socket's
// state may have changed, and only until the next call on that socket, so after every wake
// and after every send or receive the transport asks ZMQ_EVENTS again before it sleeps.
#include <fcntl.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <capnp/message.h>
#include <kj/array.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>
#include <zmq.hpp>

#include "decode_errors.hpp"
#include "raftfl/common/log.hpp"
#include "raftfl/net/framing.hpp"
#include "raftfl/net/handshake.hpp"
#include "raftfl/net/transport.hpp"
#include "zmq_wire.hpp"

namespace raftfl::net {
namespace {

using zmqwire::Kind;

// Per wake, so that a busy socket does not starve timers and the other sockets.
constexpr int kReceiveBudget = 512;
constexpr int kWriteRounds = 16;
constexpr std::size_t kWriteBatchFrames = 256;
constexpr std::size_t kWriteBatchBytes = 4 << 20;
// libzmq counts high-water marks in messages, not bytes. The bytes this node sends are
// bounded by send_queue_bytes (what libzmq still holds counts, see SharedBuilder); what
// it receives is bounded by the receive HWM times max_frame_bytes per connection.
constexpr int kHighWaterMark = 1000;

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
  // libzmq wants IPv6 literals in brackets (and ZMQ_IPV6 set, see ipv6()).
  if (host.find(':') != std::string::npos) return "tcp://[" + host + "]:" + port;
  return "tcp://" + host + ":" + port;
}

bool ipv6(const std::string& host) { return host.find(':') != std::string::npos; }

// The builder of a message being sent, shared by its queue entry and by every segment
// part libzmq holds: libzmq calls free_part from its I/O thread when it is done with a
// part, and whoever drops the last reference frees the builder.
struct SharedBuilder {
  std::unique_ptr<capnp::MessageBuilder> message;
  std::atomic<std::size_t> refs{1};
  // The peer's bytes handed to libzmq and not yet written: they stay inside the peer's
  // send_queue_bytes, as bytes in the TCP transport's queue do until the kernel has them.
  std::shared_ptr<std::atomic<std::size_t>> in_flight;
  std::size_t bytes = 0;
  bool counted = false;  // in in_flight; written before the queue's reference is dropped
};

void release(SharedBuilder* holder) {
  if (holder->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (holder->counted) holder->in_flight->fetch_sub(holder->bytes, std::memory_order_relaxed);
  delete holder;
}

void free_part(void*, void* hint) { release(static_cast<SharedBuilder*>(hint)); }

struct ReleaseHolder {
  void operator()(SharedBuilder* holder) const { release(holder); }
};

struct Pending {
  std::unique_ptr<SharedBuilder, ReleaseHolder> holder;
  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments;
  std::string head;
  std::size_t bytes = 0;
  // Parts already handed to libzmq (0 is the head). Nonzero only if libzmq took the start
  // of a message and refused the rest, which it does not do for a DEALER; kept so that the
  // rest would follow before anything else.
  std::size_t next_part = 0;
};

struct Watch {
  std::unique_ptr<asio::posix::stream_descriptor> descriptor;
  bool armed = false;
};

struct Peer {
  PeerEndpoint endpoint;
  std::string address;
  zmq::socket_t dealer;
  zmq::socket_t monitor;
  Watch dealer_watch;
  Watch monitor_watch;
  bool service_posted = false;

  std::deque<Pending> queue;
  std::size_t queued_bytes = 0;
  std::shared_ptr<std::atomic<std::size_t>> in_flight = std::make_shared<std::atomic<std::size_t>>(0);

  // The DEALER's current connection, as the monitor reported it.
  bool link_up = false;
  std::uint32_t epoch = 0;      // connections so far; the tag of this connection's Hello
  bool hello_due = false;       // the current connection has not had its Hello yet
  bool awaiting_reply = false;  // its Hello went out, no reply yet
  bool admitted = false;        // the peer accepted the current connection's Hello

  // The ROUTER side: the routing id of the connection this peer's Hello admitted last.
  std::string routing_id;
};

// A received message laid out for a SegmentArrayMessageReader: segments at aligned
// addresses are read where libzmq put them; the others are copied into one aligned array.
struct Segments {
  std::vector<kj::ArrayPtr<const capnp::word>> list;
  kj::Array<capnp::word> copies;
  std::size_t words = 0;

  void assemble(const zmq::message_t* parts, std::size_t n) {
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

  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments() const { return kj::arrayPtr(list.data(), list.size()); }
};

// Checks the parts after the routing id (if any) against their head.
const char* check_parts(const std::vector<zmq::message_t>& parts, std::size_t first, bool overflow,
                        std::size_t max_body, zmqwire::Head* head) {
  if (overflow) return "too many parts";
  if (parts.size() <= first) return "no head";
  if (const char* error = zmqwire::parse_head(parts[first].data(), parts[first].size(), head)) return error;
  if (parts.size() - first - 1 != head->segments) return "part count does not match the segment table";
  const std::size_t limit = head->kind == Kind::kData ? max_body : zmqwire::kMaxHandshakeBytes;
  if (head->body_bytes > limit) return "message larger than max_frame_bytes";
  for (std::size_t i = 0; i < head->segments; ++i) {
    if (parts[first + 1 + i].size() != head->segment_bytes(i)) return "segment size does not match the segment table";
  }
  return nullptr;
}

// Receives one whole multipart message, if one is waiting. Parts beyond `max_parts` are
// received and discarded (libzmq already holds them) and reported through `overflow`.
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

bool send_copy(zmq::socket_t& socket, const void* data, std::size_t size, bool more) {
  zmq::message_t part(data, size);
  auto flags = zmq::send_flags::dontwait;
  if (more) flags = flags | zmq::send_flags::sndmore;
  return socket.send(part, flags).has_value();
}

// Sends a small message (handshake) by copy; `routing_id` empty on a DEALER.
bool send_small(zmq::socket_t& socket, std::string_view routing_id, Kind kind, std::uint32_t tag,
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

// Shared with every pending handler, so that one running after the transport object is
// gone still finds valid state (it sees `stopped` and returns).
struct State : std::enable_shared_from_this<State> {
  State(asio::io_context& c, TransportOptions o) : context(c), options(std::move(o)), zmq_context(1) {}

  asio::io_context& context;
  TransportOptions options;
  // Declared before the sockets: they must close before the context terminates.
  zmq::context_t zmq_context;
  zmq::socket_t router;
  Watch router_watch;
  bool router_posted = false;
  std::uint16_t port = 0;

  Transport::ReceiveHandler handler;
  bool delivering = false;     // inside the handler: stop() must not destroy it there
  bool drop_handler = false;
  std::map<NodeId, Peer> peers;
  std::map<std::string, NodeId, std::less<>> admitted;  // routing id -> node
  // Once per connection, not once per message: a routing id is one connection.
  std::string last_unadmitted_warned;
  std::string last_refused;
  TransportStats stats;
  bool started = false;
  bool stopped = false;

  std::vector<zmq::message_t> parts;
  Segments segments;

  void watch(Watch& w, zmq::socket_t& socket) {
    const int fd = ::fcntl(socket.get(zmq::sockopt::fd), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "zmq transport: dup of ZMQ_FD");
    w.descriptor = std::make_unique<asio::posix::stream_descriptor>(context, fd);
  }

  void unwatch(Watch& w) {
    if (!w.descriptor) return;
    if (!w.armed) {
      // Closes only the duplicate; the socket's own descriptor stays libzmq's.
      w.descriptor.reset();
      return;
    }
    // Cancelled, and closed by the wait's handler once the cancellation completed. Asio
    // 1.22 on io_uring recycles a closed descriptor's per-descriptor state at once, while
    // the closed descriptor's wait is still in the kernel; a wait started on a descriptor
    // opened next (a restarted transport) was then seen to end in operation_aborted
    // although nothing had cancelled it.
    asio::error_code ignored;
    w.descriptor->cancel(ignored);
  }

  template <typename Fn>
  void arm(Watch& w, Fn on_wake) {
    if (stopped || w.armed || !w.descriptor) return;
    w.armed = true;
    w.descriptor->async_wait(asio::posix::descriptor_base::wait_read,
                             [self = shared_from_this(), &w, on_wake](const asio::error_code& ec) {
                               w.armed = false;
                               if (self->stopped) {
                                 w.descriptor.reset();
                                 return;
                               }
                               if (ec && ec != asio::error::operation_aborted) {
                                 warn(std::string("waiting on a ZeroMQ socket failed: ") + ec.message());
                                 return;
                               }
                               // Woken, or aborted by something other than stop() (see
                               // unwatch): look at the socket either way, which waits again.
                               on_wake(*self);
                             });
  }

  void poke_router() {
    if (stopped || router_posted) return;
    router_posted = true;
    asio::post(context, [self = shared_from_this()] {
      self->router_posted = false;
      if (!self->stopped) self->service_router();
    });
  }

  void poke_peer(NodeId id) {
    Peer& peer = peers.at(id);
    if (stopped || !started || peer.service_posted) return;
    peer.service_posted = true;
    asio::post(context, [self = shared_from_this(), id] {
      self->peers.at(id).service_posted = false;
      if (!self->stopped) self->service_peer(id);
    });
  }

  void arm_router() {
    arm(router_watch, [](State& s) { s.service_router(); });
  }

  void arm_peer(NodeId id) {
    Peer& peer = peers.at(id);
    arm(peer.dealer_watch, [id](State& s) { s.service_peer(id); });
    arm(peer.monitor_watch, [id](State& s) { s.service_peer(id); });
  }

  // ---- receiving (ROUTER) ----

  void service_router() {
    try {
      for (int n = 0; n < kReceiveBudget; ++n) {
        if (stopped) return;
        bool overflow = false;
        // A receive that finds nothing has taken in libzmq's pending commands, as a look
        // at ZMQ_EVENTS would: the descriptor is quiet only when the socket is.
        if (!receive_message(router, parts, zmqwire::kMaxSegments + 2, &overflow)) {
          arm_router();
          return;
        }
        handle_inbound(overflow);
        parts.clear();
      }
    } catch (const zmq::error_t& e) {
      if (stopped) return;
      warn(std::string("receiving failed: ") + e.what());
      arm_router();
      return;
    }
    // Budget spent: come back after the other handlers had their turn.
    poke_router();
    arm_router();
  }

  std::string remote_of(std::string_view routing_id) {
    std::string where = "routing id " + hex(routing_id);
    if (parts.size() > 1) {
      // libzmq attaches the connection's address to every part it received.
      if (const char* address = zmq_msg_gets(parts[1].handle(), "Peer-Address"))
        where = std::string(address) + " (" + where + ")";
    }
    return where;
  }

  void handle_inbound(bool overflow) {
    if (parts.empty()) return;
    const std::string routing_id(static_cast<const char*>(parts[0].data()), parts[0].size());
    auto admitted_it = admitted.find(routing_id);
    zmqwire::Head head;
    const char* error = check_parts(parts, 1, overflow, options.max_frame_bytes, &head);
    if (error) {
      if (admitted_it != admitted.end()) {
        ++stats.frames_rejected;
        warn("malformed message from " + describe(admitted_it->second) + ": " + error + "; dropped");
      } else if (routing_id == last_refused) {
        ++stats.frames_rejected;  // refused already; TCP would have closed the connection
      } else {
        refuse(routing_id, 0, std::string("no valid hello (") + error + ")");
      }
      return;
    }
    switch (head.kind) {
      case Kind::kHello:
        handle_hello(routing_id, head);
        return;
      case Kind::kData:
        if (admitted_it == admitted.end()) {
          ++stats.frames_rejected;
          // Once per connection: a dialer that raced its own reconnection sends a few.
          if (last_unadmitted_warned != routing_id) {
            last_unadmitted_warned = routing_id;
            warn("dropped a message from " + remote_of(routing_id) + " before its hello");
          }
          return;
        }
        deliver(admitted_it->second, head);
        return;
      case Kind::kHelloReply:
        if (admitted_it != admitted.end()) {
          ++stats.frames_rejected;
          warn("unexpected handshake reply from " + describe(admitted_it->second) + "; dropped");
        } else if (routing_id == last_refused) {
          ++stats.frames_rejected;
        } else {
          refuse(routing_id, head.tag, "no valid hello (a handshake reply)");
        }
        return;
    }
  }

  void handle_hello(const std::string& routing_id, const zmqwire::Head& head) {
    std::optional<Hello> hello;
    decode_error_of([&] {
      segments.assemble(parts.data() + 2, head.segments);
      capnp::SegmentArrayMessageReader reader(segments.segments(), reader_options_for(segments.words));
      hello = decode_hello(reader);
    });
    const auto reply = admit_hello(hello, options);
    if (!reply.accepted) {
      refuse(routing_id, head.tag, reply.reason);
      return;
    }
    Peer& peer = peers.at(hello->node_id);
    forget(routing_id);
    // A peer that reconnected or restarted replaces its old connection, as over TCP.
    if (!peer.routing_id.empty()) admitted.erase(peer.routing_id);
    peer.routing_id = routing_id;
    admitted[routing_id] = hello->node_id;
    send_reply(routing_id, head.tag, reply);
  }

  void refuse(const std::string& routing_id, std::uint32_t tag, const std::string& reason) {
    ++stats.connections_refused;
    warn("refused connection from " + remote_of(routing_id) + ": " + reason);
    last_refused = routing_id;
    forget(routing_id);
    send_reply(routing_id, tag, {false, options.self, reason});
  }

  void forget(const std::string& routing_id) {
    auto it = admitted.find(routing_id);
    if (it == admitted.end()) return;
    Peer& peer = peers.at(it->second);
    if (peer.routing_id == routing_id) peer.routing_id.clear();
    admitted.erase(it);
  }

  void send_reply(const std::string& routing_id, std::uint32_t tag, const HelloReply& reply) {
    capnp::MallocMessageBuilder out;
    encode_hello_reply(reply, out);
    // A ROUTER drops what it cannot route: the connection went (the dialer reconnects and
    // says Hello again), or its pipe is full (a dialer that does not read its replies).
    send_small(router, routing_id, Kind::kHelloReply, tag, out);
  }

  void deliver(NodeId from, const zmqwire::Head& head) {
    ++stats.frames_received;
    stats.bytes_received += head.body_bytes;
    if (!handler) return;
    // Also when the handler's exception leaves: stop() may have been called inside it.
    struct Delivering {
      State& s;
      explicit Delivering(State& state) : s(state) { s.delivering = true; }
      ~Delivering() {
        s.delivering = false;
        if (s.drop_handler) {
          s.drop_handler = false;
          s.handler = nullptr;
        }
      }
    } delivering_now(*this);
    const auto refused = decode_error_of([&] {
      segments.assemble(parts.data() + 2, head.segments);
      capnp::SegmentArrayMessageReader reader(segments.segments(), reader_options_for(segments.words));
      handler(from, reader);
    });
    if (!refused) return;
    ++stats.frames_rejected;
    warn("message from " + describe(from) + " refused: " + *refused + "; dropped");
  }

  // ---- sending (DEALER per peer) ----

  void service_peer(NodeId id) {
    Peer& peer = peers.at(id);
    try {
      for (int round = 0; round < kWriteRounds; ++round) {
        if (stopped) return;
        // Connection events first: they decide whether the next message is a Hello.
        drain_monitor(peer);
        const int events = peer.dealer.get(zmq::sockopt::events);
        bool progress = false;
        if (events & ZMQ_POLLIN) {
          receive_reply(id, peer);
          progress = true;
        }
        if ((events & ZMQ_POLLOUT) && wants_to_write(peer)) progress = write_some(peer) || progress;
        if (!progress) {
          arm_peer(id);
          return;
        }
      }
    } catch (const zmq::error_t& e) {
      if (stopped) return;
      warn("sending to " + describe(id) + " failed: " + e.what());
    }
    poke_peer(id);
    arm_peer(id);
  }

  void drain_monitor(Peer& peer) {
    for (;;) {
      zmq::message_t event;
      if (!peer.monitor.recv(event, zmq::recv_flags::dontwait)) return;
      bool more = event.more();
      while (more) {  // the endpoint's address follows
        zmq::message_t rest;
        if (!peer.monitor.recv(rest, zmq::recv_flags::dontwait)) break;
        more = rest.more();
      }
      if (event.size() < 2) continue;
      std::uint16_t code = 0;
      std::memcpy(&code, event.data(), sizeof(code));
      if (code == ZMQ_EVENT_CONNECTED) {
        peer.link_up = true;
        ++peer.epoch;
        peer.hello_due = true;
        peer.awaiting_reply = false;
        peer.admitted = false;
      } else if (code == ZMQ_EVENT_DISCONNECTED) {
        peer.link_up = false;
        peer.hello_due = false;
        peer.awaiting_reply = false;
        peer.admitted = false;
      }
    }
  }

  void receive_reply(NodeId id, Peer& peer) {
    bool overflow = false;
    if (!receive_message(peer.dealer, parts, zmqwire::kMaxSegments + 1, &overflow)) return;
    zmqwire::Head head;
    const char* error = check_parts(parts, 0, overflow, zmqwire::kMaxHandshakeBytes, &head);
    if (!error && head.kind != Kind::kHelloReply) error = "not a handshake reply";
    // Only the reply to this connection's Hello counts; an earlier connection's is stale.
    const bool current = peer.link_up && peer.awaiting_reply && (error || head.tag == peer.epoch);
    if (!current) {
      parts.clear();
      return;
    }
    peer.awaiting_reply = false;
    if (error) {
      ++stats.connections_refused;
      warn(describe(id) + " sent a malformed handshake reply (" + error + ")");
      parts.clear();
      return;
    }
    std::optional<HelloReply> reply;
    decode_error_of([&] {
      segments.assemble(parts.data() + 1, head.segments);
      capnp::SegmentArrayMessageReader reader(segments.segments(), reader_options_for(segments.words));
      reply = decode_hello_reply(reader);
    });
    const auto refusal = refusal_in(reply, id);
    peer.admitted = refusal.empty();
    if (!peer.admitted) {
      ++stats.connections_refused;
      warn(describe(id) + " " + refusal);
    }
    parts.clear();
  }

  static bool wants_to_write(const Peer& peer) {
    if (!peer.queue.empty() && peer.queue.front().next_part > 0) return true;
    if (peer.hello_due && peer.link_up) return true;
    return peer.admitted && !peer.queue.empty();
  }

  // Hands messages to libzmq until it pushes back or the batch is full; true if any went.
  bool write_some(Peer& peer) {
    bool progress = false;
    std::size_t frames = 0, bytes = 0;
    while (frames < kWriteBatchFrames && bytes < kWriteBatchBytes) {
      if (!peer.queue.empty() && peer.queue.front().next_part > 0) {
        // Finish what libzmq started; on a connection that went away it discards the rest.
        if (!push_parts(peer.dealer, peer.queue.front())) break;
        bytes += finish_front(peer);
        ++frames;
        progress = true;
        continue;
      }
      if (peer.hello_due) {
        capnp::MallocMessageBuilder hello;
        encode_hello(hello_to(options, peer.endpoint.id), hello);
        if (!send_small(peer.dealer, {}, Kind::kHello, peer.epoch, hello)) break;
        peer.hello_due = false;
        peer.awaiting_reply = true;
        progress = true;
        continue;
      }
      if (!peer.admitted || peer.queue.empty()) break;
      if (!push_parts(peer.dealer, peer.queue.front())) break;
      bytes += finish_front(peer);
      ++frames;
      progress = true;
    }
    return progress;
  }

  // Hands the remaining parts of `m` to the DEALER; false if libzmq wants us to wait.
  static bool push_parts(zmq::socket_t& dealer, Pending& m) {
    const std::size_t total = 1 + m.segments.size();
    while (m.next_part < total) {
      auto flags = zmq::send_flags::dontwait;
      if (m.next_part + 1 < total) flags = flags | zmq::send_flags::sndmore;
      zmq::message_t part;
      if (m.next_part == 0) {
        part.rebuild(m.head.data(), m.head.size());
      } else {
        const auto segment = m.segments[m.next_part - 1];
        const std::size_t size = segment.size() * sizeof(capnp::word);
        if (size > 0) {
          // libzmq frees a part from its own thread once written; the builder lives until
          // every part of it is.
          m.holder->refs.fetch_add(1, std::memory_order_relaxed);
          part.rebuild(const_cast<capnp::word*>(segment.begin()), size, free_part, m.holder.get());
        }
      }
      // Refused, `part` closes here and free_part drops the reference it took.
      if (!dealer.send(part, flags)) return false;
      ++m.next_part;
    }
    return true;
  }

  std::size_t finish_front(Peer& peer) {
    Pending& m = peer.queue.front();
    const std::size_t bytes = m.bytes;
    peer.queued_bytes -= bytes;
    m.holder->counted = true;
    peer.in_flight->fetch_add(bytes, std::memory_order_relaxed);
    peer.queue.pop_front();
    ++stats.frames_sent;
    stats.bytes_sent += bytes;
    return bytes;
  }

  void open_peer(NodeId id, Peer& peer) {
    peer.dealer = zmq::socket_t(zmq_context, zmq::socket_type::dealer);
    peer.dealer.set(zmq::sockopt::linger, 0);
    // Messages go only to a connection that exists, so that a new connection starts with
    // its Hello; until the peer accepted it they wait in our queue, counted there.
    peer.dealer.set(zmq::sockopt::immediate, true);
    peer.dealer.set(zmq::sockopt::reconnect_ivl, static_cast<int>(options.reconnect_min.count()));
    peer.dealer.set(zmq::sockopt::reconnect_ivl_max, static_cast<int>(options.reconnect_max.count()));
    peer.dealer.set(zmq::sockopt::sndhwm, kHighWaterMark);
    peer.dealer.set(zmq::sockopt::rcvhwm, kHighWaterMark);
    // Only handshake replies come back on a DEALER.
    peer.dealer.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(zmqwire::kMaxHandshakeBytes));
    peer.dealer.set(zmq::sockopt::ipv6, ipv6(peer.endpoint.host));
    // Subscribed before connecting, so that the first connection is seen too.
    const std::string monitor_address = "inproc://raftfl-zmq-monitor-" + std::to_string(id);
    if (zmq_socket_monitor(peer.dealer.handle(), monitor_address.c_str(), ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) != 0)
      throw zmq::error_t();
    peer.monitor = zmq::socket_t(zmq_context, zmq::socket_type::pair);
    peer.monitor.set(zmq::sockopt::linger, 0);
    peer.monitor.connect(monitor_address);
    watch(peer.dealer_watch, peer.dealer);
    watch(peer.monitor_watch, peer.monitor);
    peer.dealer.connect(peer.address);
  }

  void close_all() {
    unwatch(router_watch);
    for (auto& [id, peer] : peers) {
      unwatch(peer.dealer_watch);
      unwatch(peer.monitor_watch);
      if (peer.dealer) zmq_socket_monitor(peer.dealer.handle(), nullptr, 0);
      peer.monitor.close();
      peer.dealer.close();
      peer.link_up = peer.admitted = peer.hello_due = peer.awaiting_reply = false;
      // libzmq holds no part of these: only what was handed over is its to free.
      peer.queue.clear();
      peer.queued_bytes = 0;
    }
    // `parts` stays: stop() may come from the handler, which is reading them.
    router.close();
    // Every socket is closed with linger 0: this does not wait for the network.
    zmq_context.close();
  }
};

class ZmqTransport final : public Transport {
 public:
  ZmqTransport(asio::io_context& context, TransportOptions options)
      : state_(std::make_shared<State>(context, std::move(options))) {
    State& s = *state_;
    for (const auto& p : s.options.peers) {
      Peer peer;
      peer.endpoint = p;
      peer.address = endpoint(p.host, std::to_string(p.port));
      s.peers.emplace(p.id, std::move(peer));
    }
    // Bound now, so that a port conflict is the constructor's error and listen_port() is
    // known before start().
    s.router = zmq::socket_t(s.zmq_context, zmq::socket_type::router);
    s.router.set(zmq::sockopt::linger, 0);
    // libzmq checks each part against this and drops a connection that sends a larger one.
    // A segment can be no larger than the whole message, so max_frame_bytes is the limit;
    // a message whose parts are each below it but whose sum is not is dropped on receipt.
    s.router.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(s.options.max_frame_bytes));
    s.router.set(zmq::sockopt::rcvhwm, kHighWaterMark);
    s.router.set(zmq::sockopt::sndhwm, kHighWaterMark);
    s.router.set(zmq::sockopt::ipv6, ipv6(s.options.listen_host));
    const std::string port = s.options.listen_port == 0 ? "*" : std::to_string(s.options.listen_port);
    s.router.bind(endpoint(s.options.listen_host, port));
    const std::string bound = s.router.get(zmq::sockopt::last_endpoint);
    s.port = static_cast<std::uint16_t>(std::stoul(bound.substr(bound.rfind(':') + 1)));
    s.watch(s.router_watch, s.router);
  }

  ~ZmqTransport() override { stop(); }

  void start(ReceiveHandler handler) override {
    State& s = *state_;
    if (s.stopped || s.started) return;
    s.handler = std::move(handler);
    s.started = true;
    for (auto& [id, peer] : s.peers) {
      s.open_peer(id, peer);
      s.poke_peer(id);
    }
    // Hellos and messages may have arrived since the constructor bound the ROUTER.
    s.poke_router();
  }

  bool send(NodeId to, std::unique_ptr<capnp::MessageBuilder> message) override {
    State& s = *state_;
    auto it = s.peers.find(to);
    if (s.stopped || it == s.peers.end()) {
      ++s.stats.sends_refused;
      return false;
    }
    Peer& peer = it->second;
    Pending m;
    m.segments = message->getSegmentsForOutput();
    m.head = zmqwire::encode_head(Kind::kData, 0, m.segments);
    m.bytes = m.head.size();
    for (auto segment : m.segments) m.bytes += segment.size() * sizeof(capnp::word);
    if (m.segments.size() > zmqwire::kMaxSegments || m.bytes > s.options.max_frame_bytes ||
        peer.queued_bytes + peer.in_flight->load(std::memory_order_relaxed) + m.bytes > s.options.send_queue_bytes) {
      ++s.stats.sends_refused;
      return false;
    }
    m.holder.reset(new SharedBuilder);
    m.holder->message = std::move(message);
    m.holder->in_flight = peer.in_flight;
    m.holder->bytes = m.bytes;
    peer.queued_bytes += m.bytes;
    peer.queue.push_back(std::move(m));
    // Not written here: the handler may be sending from inside a receive, and libzmq
    // calls must be followed by a fresh look at ZMQ_EVENTS, which the service does.
    if (peer.admitted) s.poke_peer(to);
    return true;
  }

  void stop() override {
    State& s = *state_;
    if (s.stopped) return;
    s.stopped = true;
    if (s.delivering) {
      s.drop_handler = true;  // stop() from inside the handler: it is still running
    } else {
      s.handler = nullptr;
    }
    s.close_all();
  }

  std::uint16_t listen_port() const override { return state_->port; }

  // True while this node's DEALER to `peer` is on a connection whose Hello `peer`
  // accepted: what send() queues now goes out at once. The other direction is the peer's
  // own DEALER; the ROUTER cannot tell when one of its connections drops, so it is not
  // part of this. A pair is fully up when both ends say connected.
  bool connected(NodeId peer) const override {
    auto it = state_->peers.find(peer);
    return it != state_->peers.end() && !state_->stopped && it->second.admitted;
  }

  TransportStats stats() const override { return state_->stats; }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace

std::unique_ptr<Transport> make_zmq_transport(asio::io_context& context, TransportOptions options) {
  return std::make_unique<ZmqTransport>(context, std::move(options));
}

}  // namespace raftfl::net
