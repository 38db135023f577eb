#include "zmq_inbound.hpp"


#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "decode_errors.hpp"

namespace raftfl::net::zmqsock {
namespace {

using zmqwire::Kind;

// Per wake, so that a busy socket does not starve timers and the other sockets.
constexpr int kReceiveBudget = 512;
// How often a displaced connection that goes on sending is told again (the refusal can be
// lost to a full pipe), and how many displaced connections are remembered.
constexpr auto kRetellDisplaced = std::chrono::milliseconds(100);
constexpr std::size_t kMaxDisplaced = 64;

}  // namespace

Inbound::Inbound(asio::io_context& context, zmq::context_t& zmq_context, TransportOptions options)
    : context_(context), options_(std::move(options)), router_(zmq_context, zmq::socket_type::router) {
  router_.set(zmq::sockopt::linger, 0);
  // libzmq checks each part against this and drops a connection that sends a larger one.
  // A segment can be no larger than the whole message, so max_frame_bytes is the limit;
  // a message whose parts are each below it but whose sum is not is dropped on receipt.
  router_.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(options_.max_frame_bytes));
  router_.set(zmq::sockopt::rcvhwm, kHighWaterMark);
  router_.set(zmq::sockopt::sndhwm, kHighWaterMark);
  router_.set(zmq::sockopt::ipv6, is_ipv6(options_.listen_host));
  const std::string port = options_.listen_port == 0 ? "*" : std::to_string(options_.listen_port);
  const std::string where = endpoint(options_.listen_host, port);
  try {
    router_.bind(where);
  } catch (const zmq::error_t& e) {
    throw std::system_error(e.num(), std::generic_category(), "cannot listen on " + where);
  }
  const std::string bound = router_.get(zmq::sockopt::last_endpoint);
  port_ = static_cast<std::uint16_t>(std::stoul(bound.substr(bound.rfind(':') + 1)));
  watch_.open(context_, router_);
  set_peers(options_.peers);
}

void Inbound::set_peers(const std::vector<PeerEndpoint>& peers) {
  peers_.clear();
  for (const auto& p : peers) {
    if (p.id != options_.self) peers_.insert(p.id);
  }
  // A node left out is told, like a displaced connection, and says hello again: refused
  // now, admitted once it is a member again.
  for (auto it = admitted_.begin(); it != admitted_.end();) {
    if (peers_.contains(it->second.node)) {
      ++it;
      continue;
    }
    connection_of_.erase(it->second.node);
    if (displaced_.size() >= kMaxDisplaced) displaced_.erase(displaced_.begin());
    displaced_[it->first] = {it->second, {}, true};
    it = admitted_.erase(it);
  }
}

void Inbound::start(Transport::ReceiveHandler handler) {
  handler_ = std::move(handler);
  // Hellos and messages may have arrived since the constructor bound the ROUTER.
  come_back();
}

void Inbound::stop() {
  if (stopped) return;
  stopped = true;
  if (delivering_) {
    drop_handler_ = true;  // stop() from inside the handler: it is still running
  } else {
    handler_ = nullptr;
  }
  watch_.close();
  // `parts_` stays: stop() may come from the handler, which is reading them.
  router_.close();
}

void Inbound::arm() {
  watch_.arm(shared_from_this(), [this] { service(); });
}

void Inbound::come_back() {
  again_.post(context_, shared_from_this(), [this] { service(); });
}

void Inbound::service() {
  try {
    for (int n = 0; n < kReceiveBudget; ++n) {
      if (stopped) return;
      bool overflow = false;
      // A receive that finds nothing has taken in libzmq's pending commands, as a look
      // at ZMQ_EVENTS would: the descriptor is quiet only when the socket is.
      if (!receive_message(router_, parts_, zmqwire::kMaxSegments + 2, &overflow)) {
        arm();
        return;
      }
      handle_message(overflow);
      parts_.clear();
    }
  } catch (const zmq::error_t& e) {
    if (stopped) return;
    warn(std::string("receiving failed: ") + e.what());
    arm();
    return;
  }
  // Budget spent: come back after the other handlers had their turn.
  come_back();
  arm();
}

std::string Inbound::remote_of(std::string_view routing_id) const {
  std::string where = "routing id " + hex(routing_id);
  if (parts_.size() > 1) {
    // libzmq attaches the connection's address to every part it received.
    if (const char* address = zmq_msg_gets(parts_[1].handle(), "Peer-Address"))
      where = std::string(address) + " (" + where + ")";
  }
  return where;
}

void Inbound::handle_message(bool overflow) {
  if (parts_.empty()) return;
  const std::string routing_id(static_cast<const char*>(parts_[0].data()), parts_[0].size());
  auto admitted_it = admitted_.find(routing_id);
  zmqwire::Head head;
  const char* error = check_parts(parts_, 1, overflow, options_.max_frame_bytes, &head);
  if (error) {
    if (admitted_it != admitted_.end()) {
      ++stats_.frames_rejected;
      warn("malformed message from " + describe(admitted_it->second.node) + ": " + error + "; dropped");
    } else if (routing_id == last_refused_) {
      ++stats_.frames_rejected;  // refused already; TCP would have closed the connection
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
      if (admitted_it == admitted_.end()) {
        ++stats_.frames_rejected;
        tell_displaced(routing_id);
        // Once per connection: a dialer that raced its own reconnection sends a few.
        if (last_unadmitted_warned_ != routing_id) {
          last_unadmitted_warned_ = routing_id;
          warn("dropped a message from " + remote_of(routing_id) + " before its hello");
        }
        return;
      }
      deliver(admitted_it->second.node, head);
      return;
    case Kind::kHelloReply:
      if (admitted_it != admitted_.end()) {
        ++stats_.frames_rejected;
        warn("unexpected handshake reply from " + describe(admitted_it->second.node) + "; dropped");
      } else if (routing_id == last_refused_) {
        ++stats_.frames_rejected;
      } else {
        refuse(routing_id, head.tag, "no valid hello (a handshake reply)");
      }
      return;
  }
}

void Inbound::handle_hello(const std::string& routing_id, const zmqwire::Head& head) {
  std::optional<Hello> hello;
  decode_error_of([&] {
    segments_.read(parts_.data() + 2, head.segments, [&](capnp::MessageReader& reader) { hello = decode_hello(reader); });
  });
  const auto reply = admit_hello(hello, options_, [this](NodeId id) { return peers_.contains(id); });
  if (!reply.accepted) {
    refuse(routing_id, head.tag, reply.reason);
    return;
  }
  forget(routing_id);
  displaced_.erase(routing_id);
  // A peer that reconnected or restarted replaces its old connection, as over TCP.
  std::string& current = connection_of_[hello->node_id];
  if (!current.empty()) {
    if (displaced_.size() >= kMaxDisplaced) displaced_.erase(displaced_.begin());
    if (auto old = admitted_.find(current); old != admitted_.end()) {
      displaced_[current] = {old->second, {}, false};
      admitted_.erase(old);
    }
  }
  current = routing_id;
  admitted_[routing_id] = {hello->node_id, head.tag};
  send_reply(routing_id, head.tag, reply);
}

void Inbound::tell_displaced(const std::string& routing_id) {
  auto it = displaced_.find(routing_id);
  if (it == displaced_.end()) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - it->second.told < kRetellDisplaced) return;
  it->second.told = now;
  const std::string node = std::to_string(it->second.was.node);
  send_reply(routing_id, it->second.was.tag,
             {false, options_.self,
              it->second.removed ? "node " + node + " is no longer a peer of this node"
                                 : "a newer connection claiming node " + node + " replaced this one"});
}

void Inbound::refuse(const std::string& routing_id, std::uint32_t tag, const std::string& reason) {
  ++stats_.connections_refused;
  warn("refused connection from " + remote_of(routing_id) + ": " + reason);
  last_refused_ = routing_id;
  forget(routing_id);
  send_reply(routing_id, tag, {false, options_.self, reason});
}

void Inbound::forget(const std::string& routing_id) {
  auto it = admitted_.find(routing_id);
  if (it == admitted_.end()) return;
  auto current = connection_of_.find(it->second.node);
  if (current != connection_of_.end() && current->second == routing_id) current->second.clear();
  admitted_.erase(it);
}

void Inbound::send_reply(const std::string& routing_id, std::uint32_t tag, const HelloReply& reply) {
  capnp::MallocMessageBuilder out;
  encode_hello_reply(reply, out);
  // A ROUTER drops what it cannot route: the connection went (the dialer reconnects and
  // says Hello again), or its pipe is full (a dialer that does not read its replies).
  send_small(router_, routing_id, Kind::kHelloReply, tag, out);
}

void Inbound::deliver(NodeId from, const zmqwire::Head& head) {
  ++stats_.frames_received;
  stats_.bytes_received += head.body_bytes;
  if (!handler_) return;
  // Also when the handler's exception leaves: stop() may have been called inside it.
  struct Delivering {
    Inbound& in;
    explicit Delivering(Inbound& inbound) : in(inbound) { in.delivering_ = true; }
    ~Delivering() {
      in.delivering_ = false;
      if (in.drop_handler_) {
        in.drop_handler_ = false;
        in.handler_ = nullptr;
      }
    }
  } delivering_now(*this);
  const auto refused = decode_error_of([&] {
    segments_.read(parts_.data() + 2, head.segments, [&](capnp::MessageReader& reader) { handler_(from, reader); });
  });
  if (!refused) return;
  ++stats_.frames_rejected;
  warn("message from " + describe(from) + " refused: " + *refused + "; dropped");
}

}  // namespace raftfl::net::zmqsock
