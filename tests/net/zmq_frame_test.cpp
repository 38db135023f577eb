// What a hostile or broken ZeroMQ peer can send to the ZeroMQ transport's ROUTER: it must
// be refused or dropped without a crash and without disturbing other peers. The peer here
// is a raw DEALER that speaks the layout of zmq_wire.hpp by hand.
#include <asio/io_context.hpp>
#include <capnp/message.h>
#include <gtest/gtest.h>
#include <kj/array.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "hostile_input_fixture.hpp"
#include "net/zmq/zmq_wire.hpp"
#include "raftfl/net/handshake.hpp"
#include "raftfl/net/transport.hpp"
#include "raftfl/wire/raft_codec.hpp"

namespace raftfl::net {
namespace {

using namespace std::chrono_literals;
using Parts = std::vector<std::string>;
using zmqwire::Kind;

Parts to_parts(Kind kind, std::uint32_t tag, capnp::MessageBuilder& message) {
  const auto segments = message.getSegmentsForOutput();
  Parts parts{zmqwire::encode_head(kind, tag, segments)};
  for (auto s : segments) parts.emplace_back(reinterpret_cast<const char*>(s.begin()), s.size() * sizeof(capnp::word));
  return parts;
}

Parts hello(std::uint64_t cluster, std::uint64_t node, std::uint64_t expected, std::uint32_t tag = 1) {
  capnp::MallocMessageBuilder m;
  encode_hello({kProtocolVersion, cluster, node, expected}, m);
  return to_parts(Kind::kHello, tag, m);
}

Parts data(std::uint64_t seq) {
  raft::Message m;
  m.type = raft::MessageType::kHeartbeat;
  m.commit = seq;
  capnp::MallocMessageBuilder b;
  wire::encode_raft_message(m, 7, b);
  return to_parts(Kind::kData, 0, b);
}

// A head for `sizes` (in words), whatever the parts that follow it.
std::string head(Kind kind, std::vector<std::uint32_t> sizes) {
  std::string h;
  raft::put_le<std::uint32_t>(h, static_cast<std::uint32_t>(kind));
  raft::put_le<std::uint32_t>(h, 0);
  raft::put_le<std::uint32_t>(h, static_cast<std::uint32_t>(sizes.size()));
  for (auto s : sizes) raft::put_le<std::uint32_t>(h, s);
  return h;
}

struct Reply {
  std::uint32_t tag = 0;
  HelloReply reply;
};

std::optional<Reply> decode_reply(const Parts& parts) {
  zmqwire::Head h;
  if (parts.empty() || zmqwire::parse_head(parts[0].data(), parts[0].size(), &h) != nullptr) return std::nullopt;
  if (h.kind != Kind::kHelloReply || parts.size() != 1 + h.segments) return std::nullopt;
  std::vector<kj::Array<capnp::word>> copies;
  std::vector<kj::ArrayPtr<const capnp::word>> segments;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    copies.push_back(kj::heapArray<capnp::word>(parts[i].size() / sizeof(capnp::word)));
    std::memcpy(copies.back().begin(), parts[i].data(), parts[i].size());
    segments.push_back(copies.back());
  }
  capnp::SegmentArrayMessageReader reader(kj::arrayPtr(segments.data(), segments.size()));
  return Reply{h.tag, decode_hello_reply(reader)};
}

class RawDealer {
 public:
  RawDealer(zmq::context_t& context, std::uint16_t port)
      : socket_(context, zmq::socket_type::dealer), monitor_(context, zmq::socket_type::pair) {
    static int instances = 0;
    const std::string address = "inproc://raw-dealer-monitor-" + std::to_string(++instances);
    socket_.set(zmq::sockopt::linger, 0);
    if (zmq_socket_monitor(socket_.handle(), address.c_str(), ZMQ_EVENT_DISCONNECTED) != 0) throw zmq::error_t();
    monitor_.set(zmq::sockopt::linger, 0);
    monitor_.connect(address);
    socket_.connect("tcp://127.0.0.1:" + std::to_string(port));
  }

  void send(const Parts& parts) {
    for (std::size_t i = 0; i < parts.size(); ++i) {
      zmq::message_t part(parts[i].data(), parts[i].size());
      ASSERT_TRUE(socket_.send(part, i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none));
    }
  }

  std::optional<Parts> try_receive() {
    zmq::message_t part;
    if (!socket_.recv(part, zmq::recv_flags::dontwait)) return std::nullopt;
    Parts parts{part.to_string()};
    while (part.more()) {
      if (!socket_.recv(part, zmq::recv_flags::dontwait)) break;
      parts.push_back(part.to_string());
    }
    return parts;
  }

  // True once libzmq reported that the transport's end dropped the connection.
  bool disconnected() {
    zmq::message_t event;
    while (monitor_.recv(event, zmq::recv_flags::dontwait)) {
      std::uint16_t code = 0;
      if (event.size() >= 2) std::memcpy(&code, event.data(), sizeof(code));
      if (code == ZMQ_EVENT_DISCONNECTED) disconnected_ = true;
    }
    return disconnected_;
  }

  ~RawDealer() {
    zmq_socket_monitor(socket_.handle(), nullptr, 0);
    monitor_.close();
    socket_.close();
  }

 private:
  zmq::socket_t socket_;
  zmq::socket_t monitor_;
  bool disconnected_ = false;
};

class ZmqFrames : public HostileInputFixture {
 protected:
  void SetUp() override { start_transport(make_zmq_transport); }

  void TearDown() override {
    HostileInputFixture::TearDown();
    zmq_.close();
  }

  void settle() { run_until([] { return false; }, 100ms); }

  std::optional<Reply> await_reply(RawDealer& peer) {
    std::optional<Parts> parts;
    if (!run_until([&] { return (parts = peer.try_receive()).has_value(); })) return std::nullopt;
    return decode_reply(*parts);
  }

  // A raw peer whose Hello as `node` the transport accepted.
  std::unique_ptr<RawDealer> admitted_peer(NodeId node) {
    auto peer = std::make_unique<RawDealer>(zmq_, transport_->listen_port());
    peer->send(hello(7, node, 2, 41));
    const auto reply = await_reply(*peer);
    EXPECT_TRUE(reply.has_value()) << "no handshake reply";
    if (reply) {
      EXPECT_TRUE(reply->reply.accepted) << reply->reply.reason;
      EXPECT_EQ(reply->reply.node_id, 2u);
      EXPECT_EQ(reply->tag, 41u) << "the reply must echo the Hello's tag";
    }
    return peer;
  }

  zmq::context_t zmq_{1};
};

TEST_F(ZmqFrames, AcceptsWellFormedMessagesAfterTheHandshake) {
  auto peer = admitted_peer(1);
  peer->send(data(5));
  peer->send(data(6));
  ASSERT_TRUE(run_until([&] { return received_.size() == 2; }));
  EXPECT_EQ(received_, (std::vector<std::uint64_t>{5, 6}));
  EXPECT_EQ(froms_, (std::vector<NodeId>{1, 1}));
  EXPECT_EQ(transport_->stats().frames_received, 2u);
  EXPECT_EQ(transport_->stats().frames_rejected, 0u);
}

TEST_F(ZmqFrames, RefusesGarbageInsteadOfAHello) {
  RawDealer peer(zmq_, transport_->listen_port());
  peer.send({std::string(16, '\xff')});
  const auto reply = await_reply(peer);
  ASSERT_TRUE(reply.has_value());
  EXPECT_FALSE(reply->reply.accepted);
  EXPECT_NE(reply->reply.reason.find("no valid hello"), std::string::npos) << reply->reply.reason;
  EXPECT_EQ(transport_->stats().connections_refused, 1u);
  // More of it from the same connection is dropped, not refused (and logged) again.
  peer.send({std::string(16, '\xff')});
  peer.send(data(5));
  ASSERT_TRUE(run_until([&] { return transport_->stats().frames_rejected == 2; }));
  settle();
  EXPECT_EQ(transport_->stats().connections_refused, 1u);
  EXPECT_TRUE(received_.empty());
}

TEST_F(ZmqFrames, RefusesAHelloForAnotherNode) {
  RawDealer peer(zmq_, transport_->listen_port());
  peer.send(hello(7, 1, /*expected=*/5));
  const auto reply = await_reply(peer);
  ASSERT_TRUE(reply.has_value());
  EXPECT_FALSE(reply->reply.accepted);
  EXPECT_EQ(reply->reply.reason, "dialed node 5 but reached node 2");
  EXPECT_EQ(transport_->stats().connections_refused, 1u);
  peer.send(data(5));
  ASSERT_TRUE(run_until([&] { return transport_->stats().frames_rejected == 1; }));
  EXPECT_TRUE(received_.empty());
}

TEST_F(ZmqFrames, DropsMessagesBeforeTheHelloAndAdmitsTheHelloAfterThem) {
  RawDealer peer(zmq_, transport_->listen_port());
  peer.send(data(5));
  peer.send(data(6));
  ASSERT_TRUE(run_until([&] { return transport_->stats().frames_rejected == 2; }));
  EXPECT_TRUE(received_.empty());
  EXPECT_EQ(transport_->stats().connections_refused, 0u);
  peer.send(hello(7, 1, 2, 9));
  const auto reply = await_reply(peer);
  ASSERT_TRUE(reply.has_value());
  EXPECT_TRUE(reply->reply.accepted) << reply->reply.reason;
  EXPECT_EQ(reply->tag, 9u);
  peer.send(data(7));
  ASSERT_TRUE(run_until([&] { return received_.size() == 1; }));
  EXPECT_EQ(received_.front(), 7u);
}

TEST_F(ZmqFrames, DropsMalformedMessagesAndKeepsTheConnection) {
  auto peer = admitted_peer(1);
  const std::string word(8, '\0');
  peer->send({std::string(4, '\0')});                                      // head too short
  peer->send({head(Kind::kData, std::vector<std::uint32_t>(1000, 1))});  // 1000 segments
  peer->send({head(Kind::kData, {1, 1}), word});                         // two segments, one part
  peer->send({head(Kind::kData, {3}), word + word});                     // sizes disagree
  peer->send({head(static_cast<Kind>(9), {1}), word});                   // unknown kind
  peer->send({head(Kind::kData, {1}), std::string(8, '\xff')});          // root is a far pointer to nowhere
  peer->send({head(Kind::kData, {0}), std::string()});                   // an empty root segment
  peer->send(data(9));
  ASSERT_TRUE(run_until([&] { return received_.size() == 1; }));
  EXPECT_EQ(received_.front(), 9u);
  EXPECT_EQ(froms_.front(), 1u);
  EXPECT_EQ(transport_->stats().frames_rejected, 7u);
  EXPECT_EQ(transport_->stats().connections_refused, 0u);
}

TEST_F(ZmqFrames, DropsAMessageWhosePartsTogetherExceedTheMaximum) {
  auto peer = admitted_peer(1);
  // Each part below ZMQ_MAXMSGSIZE, so libzmq passes them; together above max_frame_bytes.
  const std::uint32_t words = (768u << 10) / 8;
  peer->send({head(Kind::kData, {words, words}), std::string(words * 8, '\0'), std::string(words * 8, '\0')});
  peer->send(data(3));
  ASSERT_TRUE(run_until([&] { return received_.size() == 1; }));
  EXPECT_EQ(received_.front(), 3u);
  EXPECT_EQ(transport_->stats().frames_rejected, 1u);
}

TEST_F(ZmqFrames, RefusesAMessageAboveTheMaximumAndKeepsServingOthers) {
  auto bad = admitted_peer(1);
  const std::uint32_t words = (2u << 20) / 8;
  bad->send({head(Kind::kData, {words}), std::string(words * 8, '\0')});
  ASSERT_TRUE(run_until([&] { return bad->disconnected(); })) << "libzmq kept the connection";
  // The raw DEALER reconnects by itself; its new connection has not said Hello.
  bad->send(data(4));
  ASSERT_TRUE(run_until([&] { return transport_->stats().frames_rejected >= 1; }));
  EXPECT_TRUE(received_.empty());

  auto good = admitted_peer(3);
  good->send(data(11));
  ASSERT_TRUE(run_until([&] { return !received_.empty(); }));
  EXPECT_EQ(received_.back(), 11u);
  EXPECT_EQ(froms_.back(), 3u);
}

}  // namespace
}  // namespace raftfl::net
