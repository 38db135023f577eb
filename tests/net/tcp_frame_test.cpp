// What a hostile or broken TCP peer can send: frames the transport must refuse by closing
// the connection, without a crash and without disturbing other peers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>

#include "hostile_input_fixture.hpp"
#include "raftfl/net/framing.hpp"
#include "raftfl/net/handshake.hpp"
#include "raftfl/net/transport.hpp"
#include "raftfl/raft/little_endian.hpp"
#include "raftfl/wire/raft_codec.hpp"

namespace raftfl::net {
namespace {

using namespace std::chrono_literals;

std::string flatten(OutgoingFrame frame) {
  std::string out(reinterpret_cast<const char*>(frame.prefix.data()), frame.prefix.size() * 4);
  for (auto s : frame.segments) out.append(reinterpret_cast<const char*>(s.begin()), s.size() * 8);
  return out;
}

std::string hello_frame(std::uint64_t cluster, std::uint64_t node, std::uint64_t expected) {
  auto m = std::make_unique<capnp::MallocMessageBuilder>();
  encode_hello({kProtocolVersion, cluster, node, expected}, *m);
  return flatten(make_frame(std::move(m)));
}

std::string header(std::uint32_t body_bytes) {
  std::string h;
  raft::put_le<std::uint32_t>(h, body_bytes);
  raft::put_le<std::uint32_t>(h, 0);
  return h;
}

class RawPeer {
 public:
  explicit RawPeer(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawPeer() { ::close(fd_); }
  bool connected() const { return connected_; }
  void send(const std::string& bytes) { ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size())); }
  // True once the transport closed its end (read returns 0 or an error).
  bool closed_by_peer() {
    char buf[4096];
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) return false;
      const auto n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (n <= 0) return true;
    }
  }

 private:
  int fd_;
  bool connected_ = false;
};

class TcpFrames : public HostileInputFixture {
 protected:
  void SetUp() override { start_transport(make_tcp_transport); }

  // A raw peer that has passed the handshake as node 1.
  std::unique_ptr<RawPeer> admitted_peer() {
    auto peer = std::make_unique<RawPeer>(transport_->listen_port());
    EXPECT_TRUE(peer->connected());
    peer->send(hello_frame(7, 1, 2));
    EXPECT_TRUE(run_until([&] { return transport_->connected(1); }));
    return peer;
  }

  std::string raft_frame(std::uint64_t seq) {
    raft::Message m;
    m.type = raft::MessageType::kHeartbeat;
    m.commit = seq;
    auto b = std::make_unique<capnp::MallocMessageBuilder>();
    wire::encode_raft_message(m, 7, *b);
    return flatten(make_frame(std::move(b)));
  }

  void expect_refused(RawPeer& peer) {
    EXPECT_TRUE(run_until([&] { return peer.closed_by_peer(); })) << "the connection was not closed";
    EXPECT_GE(transport_->stats().frames_rejected, 1u);
    EXPECT_FALSE(transport_->connected(1));
  }

};

TEST_F(TcpFrames, AcceptsWellFormedFramesAfterTheHandshake) {
  auto peer = admitted_peer();
  peer->send(raft_frame(5) + raft_frame(6));
  ASSERT_TRUE(run_until([&] { return received_.size() == 2; }));
  EXPECT_EQ(received_, (std::vector<std::uint64_t>{5, 6}));
  EXPECT_EQ(froms_, (std::vector<NodeId>{1, 1}));
}

TEST_F(TcpFrames, RefusesAFrameAboveTheMaximum) {
  auto peer = admitted_peer();
  peer->send(header(64u << 20));
  expect_refused(*peer);
}

TEST_F(TcpFrames, RefusesAMisalignedOrEmptyFrame) {
  auto peer = admitted_peer();
  peer->send(header(13) + std::string(13, 'x'));
  expect_refused(*peer);
  auto again = admitted_peer();
  again->send(header(0));
  expect_refused(*again);
}

TEST_F(TcpFrames, RefusesAMalformedSegmentTable) {
  auto peer = admitted_peer();
  // Claims 1000 segments in a 16-byte body.
  std::string body;
  raft::put_le<std::uint32_t>(body, 999);
  raft::put_le<std::uint32_t>(body, 1);
  body += std::string(8, '\0');
  peer->send(header(static_cast<std::uint32_t>(body.size())) + body);
  expect_refused(*peer);
}

TEST_F(TcpFrames, RefusesGarbageInsteadOfAHello) {
  RawPeer peer(transport_->listen_port());
  peer.send(header(16) + std::string(16, '\xff'));
  EXPECT_TRUE(run_until([&] { return peer.closed_by_peer(); }));
  EXPECT_EQ(transport_->stats().connections_refused, 1u);
}

TEST_F(TcpFrames, ARefusedPeerDoesNotDisturbAnother) {
  auto bad = admitted_peer();
  bad->send(header(64u << 20));
  expect_refused(*bad);
  RawPeer good(transport_->listen_port());
  good.send(hello_frame(7, 3, 2));
  ASSERT_TRUE(run_until([&] { return transport_->connected(3); }));
  good.send(raft_frame(9));
  ASSERT_TRUE(run_until([&] { return !received_.empty(); }));
  EXPECT_EQ(received_.back(), 9u);
  EXPECT_EQ(froms_.back(), 3u);
}

}  // namespace
}  // namespace raftfl::net
