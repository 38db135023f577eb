// TCP transport: one connection per peer pair (the node with the lower id dials), frames
// as in framing.hpp, gather writes straight from the message builders, receives into an
// aligned buffer read in place.
#include <asio/experimental/as_tuple.hpp>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <system_error>

#include "decode_errors.hpp"
#include "raftfl/common/log.hpp"
#include "raftfl/net/framing.hpp"
#include "raftfl/net/handshake.hpp"
#include "raftfl/net/transport.hpp"

namespace raftfl::net {
namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kAwait = asio::experimental::as_tuple(asio::use_awaitable);

// Frames up to this size are read into the connection's receive buffer in batches; a
// larger frame gets a buffer of its own, read to the byte.
constexpr std::size_t kReceiveBufferBytes = 256 << 10;
// One gather write covers at most this much, so a burst to one peer does not starve the
// reactor and the iovec stays small.
constexpr std::size_t kMaxWriteBatchBytes = 4 << 20;
constexpr std::size_t kMaxWriteBatchFrames = 512;
constexpr std::size_t kMaxHandshakeBytes = 64 << 10;
constexpr auto kHandshakeTimeout = std::chrono::seconds(5);
// After a failed accept: long enough that a listener out of file descriptors does not spin.
constexpr auto kAcceptRetryPause = std::chrono::milliseconds(100);

void warn(const std::string& text) { log::line(log::Level::kWarn, "tcp", text); }

// The completion of the coroutines that run the receive handler: what the handler throws
// besides a decode error leaves the io_context's run() (transport.hpp), as it does from
// the ZeroMQ transport, whose handlers are plain ones. asio::detached would drop it.
void rethrow(std::exception_ptr error) {
  if (error) std::rethrow_exception(error);
}

// Checked, not thrown: a socket that refuses the option is one the peer has already reset,
// whose handshake fails soon enough. An exception would end the accept loop, or, from a
// dial loop, leave run().
void set_no_delay(tcp::socket& socket) {
  asio::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
}

struct Connection {
  explicit Connection(tcp::socket s) : socket(std::move(s)), wake(socket.get_executor()) {
    wake.expires_at(Clock::time_point::max());
  }
  void close() {
    if (closed) return;
    closed = true;
    asio::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    wake.cancel();
  }
  tcp::socket socket;
  asio::steady_timer wake;  // the writer sleeps on it; send() cancels it
  NodeId peer = 0;
  bool closed = false;
};

// A peer's entry outlives its membership: one that leaves is retired (its connection
// closed, its queue dropped) but stays in the map, so that no coroutine suspended on its
// behalf finds it gone, and it can come back.
struct Peer {
  PeerEndpoint endpoint;
  bool member = true;
  std::uint64_t generation = 0;  // bumped when retired or moved: the dial loop of an older one ends
  std::deque<OutgoingFrame> queue;
  std::size_t queued_bytes = 0;
  std::shared_ptr<Connection> connection;  // set once a handshake succeeded
  std::unique_ptr<asio::steady_timer> retry;
};

// Shared with every coroutine, so that a coroutine finishing after the transport object
// is gone still finds valid state.
struct State : std::enable_shared_from_this<State> {
  State(asio::io_context& c, TransportOptions o) : context(c), options(std::move(o)), acceptor(c) {}

  asio::io_context& context;
  TransportOptions options;
  tcp::acceptor acceptor;
  Transport::ReceiveHandler handler;
  std::map<NodeId, Peer> peers;
  std::vector<std::shared_ptr<Connection>> handshaking;
  TransportStats stats;
  bool stopped = false;
  std::uint16_t port = 0;
  std::minstd_rand jitter{std::random_device{}()};

  std::string describe(NodeId id) const { return "node " + std::to_string(id); }

  void attach(NodeId id, const std::shared_ptr<Connection>& conn) {
    Peer& peer = peers.at(id);  // admitted: a member, which is never erased
    if (peer.connection && peer.connection != conn) peer.connection->close();  // a restarted peer replaces its old connection
    conn->peer = id;
    peer.connection = conn;
    asio::co_spawn(context, writer(shared_from_this(), conn), asio::detached);
  }

  void detach(const std::shared_ptr<Connection>& conn) {
    conn->close();
    auto it = peers.find(conn->peer);
    if (it != peers.end() && it->second.connection == conn) it->second.connection.reset();
  }

  // Sends one frame outside the queue (handshake only).
  static asio::awaitable<bool> write_frame(std::shared_ptr<Connection> conn, std::unique_ptr<capnp::MessageBuilder> m) {
    OutgoingFrame frame = make_frame(std::move(m));
    std::vector<asio::const_buffer> buffers;
    buffers.emplace_back(frame.prefix.data(), frame.prefix.size() * sizeof(std::uint32_t));
    for (auto s : frame.segments) buffers.emplace_back(s.begin(), s.size() * sizeof(capnp::word));
    auto [ec, n] = co_await asio::async_write(conn->socket, buffers, kAwait);
    co_return !ec;
  }

  // Reads exactly one frame (handshake only): small, so a fresh buffer is fine.
  static asio::awaitable<kj::Array<capnp::word>> read_frame(std::shared_ptr<Connection> conn) {
    unsigned char header[kFrameHeaderBytes];
    auto [ec, n] = co_await asio::async_read(conn->socket, asio::buffer(header), kAwait);
    if (ec) co_return nullptr;
    std::size_t body = 0;
    if (check_frame_header(header, kMaxHandshakeBytes, &body) != FrameHeaderCheck::kOk) co_return nullptr;
    auto words = kj::heapArray<capnp::word>(body / sizeof(capnp::word));
    auto [ec2, m] = co_await asio::async_read(conn->socket, asio::buffer(words.begin(), body), kAwait);
    if (ec2) co_return nullptr;
    co_return words;
  }

  void arm_handshake_timeout(const std::shared_ptr<Connection>& conn, const std::shared_ptr<bool>& done) {
    auto timer = std::make_shared<asio::steady_timer>(context, kHandshakeTimeout);
    timer->async_wait([conn, done, timer](const asio::error_code&) {
      if (!*done) conn->close();
    });
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<State> self) {
    for (;;) {
      auto [ec, socket] = co_await self->acceptor.async_accept(kAwait);
      if (self->stopped) co_return;
      if (ec) {
        // Only stop() ends the loop: an accept that fails (a connection reset before it
        // was taken, a file descriptor limit) is logged and the next one waits.
        if (ec == asio::error::operation_aborted) continue;
        warn(std::string("accept failed: ") + ec.message());
        // Out of file descriptors, the listener stays readable and every accept fails at
        // once: pause, so that the loop neither spins nor floods the log.
        asio::steady_timer pause(self->context, kAcceptRetryPause);
        co_await pause.async_wait(kAwait);
        continue;
      }
      set_no_delay(socket);
      asio::co_spawn(self->context, inbound(self, std::make_shared<Connection>(std::move(socket))), rethrow);
    }
  }

  static asio::awaitable<void> inbound(std::shared_ptr<State> self, std::shared_ptr<Connection> conn) {
    auto done = std::make_shared<bool>(false);
    self->arm_handshake_timeout(conn, done);
    auto words = co_await read_frame(conn);
    std::optional<Hello> hello;
    HelloReply reply{false, self->options.self, "no valid hello"};
    if (words.size() > 0) {
      decode_error_of([&] {
        capnp::FlatArrayMessageReader reader(words, reader_options_for(words.size()));
        hello = decode_hello(reader);
      });
      reply = admit_hello(hello, self->options, [&](NodeId id) {
        auto it = self->peers.find(id);
        return it != self->peers.end() && it->second.member;
      });
    }
    if (!reply.accepted) {
      ++self->stats.connections_refused;
      asio::error_code ignored;
      const auto remote = conn->socket.remote_endpoint(ignored);
      warn("refused connection from " + remote.address().to_string() + ":" + std::to_string(remote.port()) + ": " +
           reply.reason);
    }
    auto out = std::make_unique<capnp::MallocMessageBuilder>();
    encode_hello_reply(reply, *out);
    const bool written = co_await write_frame(conn, std::move(out));
    *done = true;
    // The peer may have left while the reply was written.
    const auto peer = reply.accepted ? self->peers.find(hello->node_id) : self->peers.end();
    if (!reply.accepted || !written || conn->closed || self->stopped || peer == self->peers.end() ||
        !peer->second.member) {
      conn->close();
      co_return;
    }
    self->attach(hello->node_id, conn);
    co_await reader(self, conn);
    self->detach(conn);
  }

  // Whether the dial loop started for `generation` of peer `id` should go on.
  bool dialling(NodeId id, std::uint64_t generation) const {
    auto it = peers.find(id);
    return !stopped && it != peers.end() && it->second.member && it->second.generation == generation;
  }

  void start_dialling(NodeId id) {
    if (options.self < id) asio::co_spawn(context, dial_loop(shared_from_this(), id, peers.at(id).generation), rethrow);
  }

  static asio::awaitable<void> dial_loop(std::shared_ptr<State> self, NodeId id, std::uint64_t generation) {
    auto backoff = self->options.reconnect_min;
    while (self->dialling(id, generation)) {
      const PeerEndpoint endpoint = self->peers.at(id).endpoint;
      bool handshaken = false;
      tcp::resolver resolver(self->context);
      auto [rec, results] = co_await resolver.async_resolve(endpoint.host, std::to_string(endpoint.port), kAwait);
      if (!rec && self->dialling(id, generation)) {
        auto conn = std::make_shared<Connection>(tcp::socket(self->context));
        auto [cec, ep] = co_await asio::async_connect(conn->socket, results, kAwait);
        if (!cec && self->dialling(id, generation)) {
          set_no_delay(conn->socket);
          auto done = std::make_shared<bool>(false);
          self->arm_handshake_timeout(conn, done);
          auto hello = std::make_unique<capnp::MallocMessageBuilder>();
          encode_hello(hello_to(self->options, id), *hello);
          if (co_await write_frame(conn, std::move(hello))) {
            auto words = co_await read_frame(conn);
            *done = true;
            if (words.size() > 0) {
              std::optional<HelloReply> reply;
              decode_error_of([&] {
                capnp::FlatArrayMessageReader reader(words, reader_options_for(words.size()));
                reply = decode_hello_reply(reader);
              });
              const auto refusal = refusal_in(reply, id);
              handshaken = refusal.empty();
              if (!handshaken) {
                ++self->stats.connections_refused;
                warn(self->describe(id) + " " + refusal);
              }
            }
          }
          *done = true;
          if (handshaken && self->dialling(id, generation) && !conn->closed) {
            backoff = self->options.reconnect_min;
            self->attach(id, conn);
            co_await reader(self, conn);
            self->detach(conn);
          } else {
            conn->close();
          }
        }
      }
      if (!self->dialling(id, generation)) co_return;
      // Exponential backoff with jitter, so that peers restarting together do not dial
      // in lock step.
      auto& retry = *self->peers.at(id).retry;
      const auto jitter = std::chrono::milliseconds(self->jitter() % (backoff.count() / 2 + 1));
      retry.expires_after(backoff + jitter);
      co_await retry.async_wait(kAwait);
      backoff = std::min(backoff * 2, self->options.reconnect_max);
    }
  }

  bool deliver(const std::shared_ptr<Connection>& conn, kj::ArrayPtr<const capnp::word> words) {
    ++stats.frames_received;
    stats.bytes_received += words.size() * sizeof(capnp::word) + kFrameHeaderBytes;
    const auto refused = decode_error_of([&] {
      capnp::FlatArrayMessageReader reader(words, reader_options_for(words.size()));
      if (handler) handler(conn->peer, reader);
    });
    if (!refused) return true;
    ++stats.frames_rejected;
    warn("frame from " + describe(conn->peer) + " refused: " + *refused + "; closing the connection");
    return false;
  }

  static asio::awaitable<void> reader(std::shared_ptr<State> self, std::shared_ptr<Connection> conn) {
    auto buffer = kj::heapArray<capnp::word>(kReceiveBufferBytes / sizeof(capnp::word));
    auto* bytes = reinterpret_cast<unsigned char*>(buffer.begin());
    std::size_t filled = 0;
    for (;;) {
      auto [ec, n] = co_await conn->socket.async_read_some(asio::buffer(bytes + filled, kReceiveBufferBytes - filled), kAwait);
      if (ec || self->stopped || conn->closed) co_return;
      filled += n;
      std::size_t pos = 0;  // always a multiple of 8: headers and bodies are
      while (filled - pos >= kFrameHeaderBytes) {
        std::size_t body = 0;
        const auto check = check_frame_header(bytes + pos, self->options.max_frame_bytes, &body);
        if (check != FrameHeaderCheck::kOk) {
          ++self->stats.frames_rejected;
          warn("frame from " + self->describe(conn->peer) + " refused (" + to_string(check) + ", " +
               std::to_string(body) + " bytes); closing the connection");
          co_return;
        }
        const std::size_t have = filled - pos - kFrameHeaderBytes;
        if (have >= body) {
          auto* first = reinterpret_cast<const capnp::word*>(bytes + pos + kFrameHeaderBytes);
          if (!self->deliver(conn, kj::arrayPtr(first, body / sizeof(capnp::word)))) co_return;
          if (self->stopped || conn->closed) co_return;
          pos += kFrameHeaderBytes + body;
          continue;
        }
        if (kFrameHeaderBytes + body > kReceiveBufferBytes) {
          // Too big for the shared buffer: give it its own, aligned, and read the rest
          // straight into it.
          auto large = kj::heapArray<capnp::word>(body / sizeof(capnp::word));
          auto* dst = reinterpret_cast<unsigned char*>(large.begin());
          std::memcpy(dst, bytes + pos + kFrameHeaderBytes, have);
          auto [lec, m] = co_await asio::async_read(conn->socket, asio::buffer(dst + have, body - have), kAwait);
          if (lec || self->stopped || conn->closed) co_return;
          if (!self->deliver(conn, large)) co_return;
          pos = filled;
        }
        break;
      }
      if (pos > 0) {
        std::memmove(bytes, bytes + pos, filled - pos);
        filled -= pos;
      }
    }
  }

  // A peer's queue is written by the writer of its current connection. The frames of one
  // gather write leave the queue when it starts and are owned by that writer's frame until
  // the write completes: a connection that is replaced meanwhile (a restarted peer, or two
  // processes claiming one id) has a new writer taking frames from the same queue, and
  // the old write's buffers must not be freed under it, nor its completion pop frames the
  // new writer took. The frames of a write that fails are lost with the connection, as
  // frames already in the kernel are; Raft and the exchanges tolerate loss.
  static asio::awaitable<void> writer(std::shared_ptr<State> self, std::shared_ptr<Connection> conn) {
    std::vector<asio::const_buffer> buffers;
    std::vector<OutgoingFrame> batch;
    while (!conn->closed && !self->stopped) {
      auto it = self->peers.find(conn->peer);
      if (it == self->peers.end() || it->second.connection != conn) co_return;
      Peer& peer = it->second;
      if (peer.queue.empty()) {
        co_await conn->wake.async_wait(kAwait);
        conn->wake.expires_at(Clock::time_point::max());
        continue;
      }
      buffers.clear();
      batch.clear();
      std::size_t bytes = 0;
      while (!peer.queue.empty()) {
        const OutgoingFrame& frame = peer.queue.front();
        if (!batch.empty() && (batch.size() == kMaxWriteBatchFrames || bytes + frame.total_bytes > kMaxWriteBatchBytes))
          break;
        bytes += frame.total_bytes;
        batch.push_back(std::move(peer.queue.front()));
        peer.queue.pop_front();
      }
      // Buffers into `batch`, which no longer moves: its frames' memory is this writer's.
      for (const auto& frame : batch) {
        buffers.emplace_back(frame.prefix.data(), frame.prefix.size() * sizeof(std::uint32_t));
        for (auto segment : frame.segments) buffers.emplace_back(segment.begin(), segment.size() * sizeof(capnp::word));
      }
      auto [ec, n] = co_await asio::async_write(conn->socket, buffers, kAwait);
      // Still counted against send_queue_bytes while written, as frames in the queue are.
      auto again = self->peers.find(conn->peer);
      if (again != self->peers.end()) again->second.queued_bytes -= bytes;
      if (ec) {
        self->detach(conn);
        co_return;
      }
      self->stats.frames_sent += batch.size();
      self->stats.bytes_sent += bytes;
    }
  }
};

class TcpTransport final : public Transport {
 public:
  TcpTransport(asio::io_context& context, TransportOptions options)
      : state_(std::make_shared<State>(context, std::move(options))) {
    for (const auto& p : state_->options.peers) {
      Peer peer;
      peer.endpoint = p;
      peer.retry = std::make_unique<asio::steady_timer>(context);
      state_->peers.emplace(p.id, std::move(peer));
    }
    // Bind now, so that a port conflict is the constructor's error and listen_port() is
    // known before start().
    const std::string where = state_->options.listen_host + ":" + std::to_string(state_->options.listen_port);
    try {
      tcp::resolver resolver(context);
      const auto endpoints = resolver.resolve(state_->options.listen_host, std::to_string(state_->options.listen_port));
      const tcp::endpoint ep = *endpoints.begin();
      state_->acceptor.open(ep.protocol());
      state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
      state_->acceptor.bind(ep);
      state_->acceptor.listen();
      state_->port = state_->acceptor.local_endpoint().port();
    } catch (const std::system_error& e) {
      throw std::system_error(e.code(), "cannot listen on " + where);
    }
  }

  ~TcpTransport() override { stop(); }

  void start(ReceiveHandler handler) override {
    state_->handler = std::move(handler);
    asio::co_spawn(state_->context, State::accept_loop(state_), asio::detached);
    started_ = true;
    for (auto& [id, peer] : state_->peers) {
      if (peer.member) state_->start_dialling(id);
    }
  }

  void set_peers(const std::vector<PeerEndpoint>& peers) override {
    if (state_->stopped) return;
    std::map<NodeId, const PeerEndpoint*> wanted;
    for (const auto& p : peers) {
      if (p.id != state_->options.self) wanted[p.id] = &p;
    }
    for (auto& [id, peer] : state_->peers) {
      if (!peer.member || wanted.contains(id)) continue;
      retire(peer);
    }
    for (const auto& [id, p] : wanted) {
      auto [it, added] = state_->peers.try_emplace(id);
      Peer& peer = it->second;
      if (added) {
        peer.retry = std::make_unique<asio::steady_timer>(state_->context);
      } else if (peer.member && peer.endpoint.host == p->host && peer.endpoint.port == p->port) {
        continue;
      } else if (peer.member) {
        retire(peer);  // moved: dialled again at its new endpoint
      }
      peer.endpoint = *p;
      peer.member = true;
      if (started_) state_->start_dialling(id);
    }
  }

  bool send(NodeId to, std::unique_ptr<capnp::MessageBuilder> message) override {
    auto it = state_->peers.find(to);
    if (state_->stopped || it == state_->peers.end() || !it->second.member) {
      ++state_->stats.sends_refused;
      return false;
    }
    Peer& peer = it->second;
    OutgoingFrame frame = make_frame(std::move(message));
    if (frame.body_bytes() > state_->options.max_frame_bytes ||
        peer.queued_bytes + frame.total_bytes > state_->options.send_queue_bytes) {
      ++state_->stats.sends_refused;
      return false;
    }
    peer.queued_bytes += frame.total_bytes;
    peer.queue.push_back(std::move(frame));
    if (peer.connection) peer.connection->wake.cancel();
    return true;
  }

  void stop() override {
    if (state_->stopped) return;
    state_->stopped = true;
    state_->handler = nullptr;
    asio::error_code ignored;
    state_->acceptor.close(ignored);
    for (auto& [id, peer] : state_->peers) {
      if (peer.connection) peer.connection->close();
      peer.retry->cancel();
      // The queues stay: a write in flight may still reference their segments. They go
      // when the last coroutine releases the state.
    }
  }

  std::uint16_t listen_port() const override { return state_->port; }

  bool connected(NodeId peer) const override {
    auto it = state_->peers.find(peer);
    return it != state_->peers.end() && it->second.member && it->second.connection && !it->second.connection->closed;
  }

  TransportStats stats() const override { return state_->stats; }

 private:
  // Closes the peer's connection and drops its queue. A write in flight keeps its batch
  // (and still subtracts those bytes when it completes).
  void retire(Peer& peer) {
    peer.member = false;
    ++peer.generation;
    if (peer.connection) peer.connection->close();
    peer.connection.reset();
    peer.retry->cancel();
    for (const auto& frame : peer.queue) peer.queued_bytes -= frame.total_bytes;
    peer.queue.clear();
  }

  std::shared_ptr<State> state_;
  bool started_ = false;
};

}  // namespace

std::unique_ptr<Transport> make_tcp_transport(asio::io_context& context, TransportOptions options) {
  return std::make_unique<TcpTransport>(context, std::move(options));
}

}  // namespace raftfl::net
