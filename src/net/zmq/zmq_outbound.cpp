#include "zmq_outbound.hpp"


#include <cstring>
#include <optional>
#include <utility>

#include "decode_errors.hpp"
#include "raftfl/net/handshake.hpp"

namespace raftfl::net::zmqsock {

using zmqwire::Kind;

// The builder of a message being sent, shared by its queue entry and by every segment
// part libzmq holds: libzmq calls free_part from its I/O thread when it is done with a
// part, and whoever drops the last reference frees the builder.
struct SharedBuilder {
  std::unique_ptr<capnp::MessageBuilder> message;
  std::atomic<std::size_t> refs{1};
  std::shared_ptr<std::atomic<std::size_t>> in_flight;  // the peer's
  std::size_t bytes = 0;
  bool counted = false;  // in in_flight; written before the queue's reference is dropped
};

namespace {

// Per wake, so that a busy socket does not starve timers and the other sockets.
constexpr int kWriteRounds = 16;
constexpr std::size_t kWriteBatchFrames = 256;
constexpr std::size_t kWriteBatchBytes = 4 << 20;

void release(SharedBuilder* holder) {
  if (holder->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (holder->counted) holder->in_flight->fetch_sub(holder->bytes, std::memory_order_relaxed);
  delete holder;
}

void free_part(void*, void* hint) { release(static_cast<SharedBuilder*>(hint)); }

}  // namespace

void Outbound::ReleaseHolder::operator()(SharedBuilder* holder) const { release(holder); }

Outbound::Outbound(asio::io_context& context, zmq::context_t& zmq_context, TransportOptions options)
    : context_(context), zmq_context_(zmq_context), options_(std::move(options)) {
  for (const auto& p : options_.peers) {
    auto& peer = peers_[p.id];
    peer = std::make_unique<Peer>();
    peer->endpoint = p;
    peer->address = endpoint(p.host, std::to_string(p.port));
  }
}

Outbound::~Outbound() = default;

void Outbound::start() {
  if (stopped || started_) return;
  started_ = true;
  for (auto& [id, peer] : peers_) {
    open(id, *peer);
    come_back(id, *peer);
  }
}

void Outbound::close(Peer& peer) {
  if (peer.hello_retry) peer.hello_retry->cancel();
  peer.dealer_watch.close();
  peer.monitor_watch.close();
  if (peer.dealer) zmq_socket_monitor(peer.dealer.handle(), nullptr, 0);
  peer.monitor.close();
  peer.dealer.close();
  peer.link_up = peer.admitted = peer.hello_due = peer.awaiting_reply = false;
  // libzmq holds no part of these: only what was handed over is its to free.
  peer.queue.clear();
  peer.queued_bytes = 0;
}

void Outbound::stop() {
  if (stopped) return;
  stopped = true;
  for (auto& [id, peer] : peers_) close(*peer);
}

void Outbound::set_peers(const std::vector<PeerEndpoint>& peers) {
  if (stopped) return;
  std::map<NodeId, const PeerEndpoint*> wanted;
  for (const auto& p : peers) {
    if (p.id != options_.self) wanted[p.id] = &p;
  }
  const auto retire = [this](std::unique_ptr<Peer>& peer) {
    peer->member = false;
    close(*peer);
    retired_.push_back(std::move(peer));
  };
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    retire(it->second);
    it = peers_.erase(it);
  }
  for (const auto& [id, p] : wanted) {
    auto& peer = peers_[id];
    if (peer && peer->endpoint.host == p->host && peer->endpoint.port == p->port) continue;
    if (peer) retire(peer);  // moved: a new DEALER connects to the new endpoint
    peer = std::make_unique<Peer>();
    peer->endpoint = *p;
    peer->address = endpoint(p->host, std::to_string(p->port));
    if (started_) {
      open(id, *peer);
      come_back(id, *peer);
    }
  }
}

bool Outbound::send(NodeId to, std::unique_ptr<capnp::MessageBuilder> message) {
  auto it = peers_.find(to);
  if (stopped || it == peers_.end()) {
    ++stats_.sends_refused;
    return false;
  }
  Peer& peer = *it->second;
  Pending m;
  m.segments = message->getSegmentsForOutput();
  m.head = zmqwire::encode_head(Kind::kData, 0, m.segments);
  m.bytes = m.head.size();
  for (auto segment : m.segments) m.bytes += segment.size() * sizeof(capnp::word);
  if (m.segments.size() > zmqwire::kMaxSegments || m.bytes > options_.max_frame_bytes ||
      peer.queued_bytes + peer.in_flight->load(std::memory_order_relaxed) + m.bytes > options_.send_queue_bytes) {
    ++stats_.sends_refused;
    return false;
  }
  m.holder.reset(new SharedBuilder);
  m.holder->message = std::move(message);
  m.holder->in_flight = peer.in_flight;
  m.holder->bytes = m.bytes;
  peer.queued_bytes += m.bytes;
  peer.queue.push_back(std::move(m));
  // Not written here: the handler may be sending from inside a receive, and libzmq calls
  // must be followed by a fresh look at ZMQ_EVENTS, which the service does.
  if (peer.admitted) come_back(to, peer);
  return true;
}

bool Outbound::connected(NodeId peer) const {
  auto it = peers_.find(peer);
  return it != peers_.end() && !stopped && it->second->admitted;
}

void Outbound::arm(NodeId id, Peer& peer) {
  peer.dealer_watch.arm(shared_from_this(), [this, id, &peer] { service(id, peer); });
  peer.monitor_watch.arm(shared_from_this(), [this, id, &peer] { service(id, peer); });
}

void Outbound::come_back(NodeId id, Peer& peer) {
  if (!started_) return;
  peer.again.post(context_, shared_from_this(), [this, id, &peer] { service(id, peer); });
}

void Outbound::service(NodeId id, Peer& peer) {
  if (!peer.member) {
    // A wait that set_peers cancelled has completed: now its duplicate descriptor closes.
    peer.dealer_watch.close();
    peer.monitor_watch.close();
    return;
  }
  try {
    for (int round = 0; round < kWriteRounds; ++round) {
      if (stopped || !peer.member) return;
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
        arm(id, peer);
        return;
      }
    }
  } catch (const zmq::error_t& e) {
    if (stopped || !peer.member) return;
    warn("sending to " + describe(id) + " failed: " + e.what());
  }
  come_back(id, peer);
  arm(id, peer);
}

void Outbound::drain_monitor(Peer& peer) {
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

void Outbound::receive_reply(NodeId id, Peer& peer) {
  bool overflow = false;
  if (!receive_message(peer.dealer, parts_, zmqwire::kMaxSegments + 1, &overflow)) return;
  zmqwire::Head head;
  const char* error = check_parts(parts_, 0, overflow, zmqwire::kMaxHandshakeBytes, &head);
  if (!error && head.kind != Kind::kHelloReply) error = "not a handshake reply";
  // Only the reply to this connection's Hello counts; an earlier connection's is stale.
  const bool answers_hello = peer.link_up && peer.awaiting_reply && (error || head.tag == peer.epoch);
  // Or, once admitted, the peer's word that another connection claiming our id displaced
  // this one: libzmq keeps the connection, so without it we would send into the void.
  const bool after_admission = peer.link_up && peer.admitted && !error && head.tag == peer.epoch;
  if (!answers_hello && !after_admission) {
    parts_.clear();
    return;
  }
  if (error) {
    peer.awaiting_reply = false;
    ++stats_.connections_refused;
    warn(describe(id) + " sent a malformed handshake reply (" + error + ")");
    parts_.clear();
    return;
  }
  std::optional<HelloReply> reply;
  decode_error_of([&] {
    segments_.read(parts_.data() + 1, head.segments,
                   [&](capnp::MessageReader& reader) { reply = decode_hello_reply(reader); });
  });
  parts_.clear();
  const auto refusal = refusal_in(reply, id);
  if (after_admission) {
    if (refusal.empty()) return;
    peer.admitted = false;
    peer.hello_due = true;
    warn(describe(id) + " " + refusal + "; saying hello again");
    return;
  }
  peer.awaiting_reply = false;
  peer.admitted = refusal.empty();
  if (!peer.admitted) {
    ++stats_.connections_refused;
    warn(describe(id) + " " + refusal);
    peer.hello_retry->expires_after(options_.reconnect_max);
    peer.hello_retry->async_wait([self = shared_from_this(), this, id, &peer, epoch = peer.epoch](const asio::error_code& ec) {
      if (ec || stopped || !peer.member || peer.admitted || !peer.link_up || peer.awaiting_reply || peer.epoch != epoch)
        return;
      peer.hello_due = true;
      come_back(id, peer);
    });
  }
}

bool Outbound::wants_to_write(const Peer& peer) {
  if (!peer.queue.empty() && peer.queue.front().next_part > 0) return true;
  if (peer.hello_due && peer.link_up) return true;
  return peer.admitted && !peer.queue.empty();
}

// Hands messages to libzmq until it pushes back or the batch is full; true if any went.
bool Outbound::write_some(Peer& peer) {
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
      encode_hello(hello_to(options_, peer.endpoint.id), hello);
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
bool Outbound::push_parts(zmq::socket_t& dealer, Pending& m) {
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

std::size_t Outbound::finish_front(Peer& peer) {
  Pending& m = peer.queue.front();
  const std::size_t bytes = m.bytes;
  peer.queued_bytes -= bytes;
  m.holder->counted = true;
  peer.in_flight->fetch_add(bytes, std::memory_order_relaxed);
  peer.queue.pop_front();
  ++stats_.frames_sent;
  stats_.bytes_sent += bytes;
  return bytes;
}

void Outbound::open(NodeId id, Peer& peer) {
  peer.hello_retry = std::make_unique<asio::steady_timer>(context_);
  peer.dealer = zmq::socket_t(zmq_context_, zmq::socket_type::dealer);
  peer.dealer.set(zmq::sockopt::linger, 0);
  // Messages go only to a connection that exists, so that a new connection starts with
  // its Hello; until the peer accepted it they wait in our queue, counted there.
  peer.dealer.set(zmq::sockopt::immediate, true);
  peer.dealer.set(zmq::sockopt::reconnect_ivl, static_cast<int>(options_.reconnect_min.count()));
  peer.dealer.set(zmq::sockopt::reconnect_ivl_max, static_cast<int>(options_.reconnect_max.count()));
  peer.dealer.set(zmq::sockopt::sndhwm, kHighWaterMark);
  peer.dealer.set(zmq::sockopt::rcvhwm, kHighWaterMark);
  peer.dealer.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(zmqwire::kMaxHandshakeBytes));
  peer.dealer.set(zmq::sockopt::ipv6, is_ipv6(peer.endpoint.host));
  // Subscribed before connecting, so that the first connection is seen too.
  const std::string monitor_address =
      "inproc://raftfl-zmq-monitor-" + std::to_string(id) + "-" + std::to_string(++opens_);
  if (zmq_socket_monitor(peer.dealer.handle(), monitor_address.c_str(), ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) != 0)
    throw zmq::error_t();
  peer.monitor = zmq::socket_t(zmq_context_, zmq::socket_type::pair);
  peer.monitor.set(zmq::sockopt::linger, 0);
  peer.monitor.connect(monitor_address);
  peer.dealer_watch.open(context_, peer.dealer);
  peer.monitor_watch.open(context_, peer.monitor);
  peer.dealer.connect(peer.address);
}

}  // namespace raftfl::net::zmqsock
