// One suite, every transport: order per connection, 64 MiB messages, reconnect after a
// peer restarts, backpressure, refused handshakes, oversize frames refused, and what the
// receive handler's exceptions do.
#include <asio/io_context.hpp>
#include <capnp/message.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io_context_test_support.hpp"
#include "raftfl/net/transport.hpp"
#include "raftfl/raft/types.hpp"
#include "raftfl/wire/raft_codec.hpp"

namespace raftfl::net {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<capnp::MessageBuilder> numbered_message(std::uint64_t seq, std::size_t payload_bytes = 16,
                                                        char fill = 'x') {
  raft::Message m;
  m.type = raft::MessageType::kAppend;
  m.from = 1;
  m.to = 2;
  m.commit = seq;
  raft::Entry e;
  e.index = seq;
  e.term = 1;
  e.data = raft::Payload(std::string(payload_bytes, fill));
  m.entries.push_back(std::move(e));
  auto out = std::make_unique<capnp::MallocMessageBuilder>();
  wire::encode_raft_message(m, 7, *out);
  return out;
}

struct Received {
  NodeId from;
  raft::Message message;
};

class TransportConformance : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<Transport> make(NodeId self, std::uint16_t port, std::vector<PeerEndpoint> peers,
                                  std::uint64_t cluster = 7, std::size_t max_frame = 80u << 20,
                                  std::size_t queue_bytes = 160u << 20) {
    TransportOptions o;
    o.cluster_id = cluster;
    o.self = self;
    o.listen_port = port;
    o.peers = std::move(peers);
    o.max_frame_bytes = max_frame;
    o.send_queue_bytes = queue_bytes;
    o.reconnect_min = 5ms;
    o.reconnect_max = 50ms;
    if (GetParam() == "tcp") return make_tcp_transport(context_, o);
    return make_zmq_transport(context_, o);
  }

  void start(Transport& t, std::vector<Received>& inbox) {
    t.start([this, &inbox](NodeId from, capnp::MessageReader& reader) {
      auto message = wire::decode_raft_message(reader);
      if (inspect_) inspect_(message);
      inbox.push_back({from, std::move(message)});
    });
  }

  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    return test::run_until(context_, done, limit);
  }

  // Ports are only known after binding: bind both first, then rebuild with the addresses.
  void pick_ports() {
    auto probe_a = make(1, 0, {});
    auto probe_b = make(2, 0, {});
    port_a_ = probe_a->listen_port();
    port_b_ = probe_b->listen_port();
  }

  // A pair of transports, 1 and 2, connected to each other.
  void make_pair() {
    pick_ports();
    a_ = make(1, port_a_, {{2, "127.0.0.1", port_b_}});
    b_ = make(2, port_b_, {{1, "127.0.0.1", port_a_}});
    start(*a_, inbox_a_);
    start(*b_, inbox_b_);
    ASSERT_TRUE(run_until([&] { return a_->connected(2) && b_->connected(1); })) << "no connection within 10 s";
  }

  void TearDown() override {
    a_.reset();
    b_.reset();
    test::drain(context_);
  }

  asio::io_context context_{1};
  std::unique_ptr<Transport> a_, b_;
  std::uint16_t port_a_ = 0, port_b_ = 0;
  std::vector<Received> inbox_a_, inbox_b_;
  // Sees every message before it is kept; may throw, as a node's handler can.
  std::function<void(const raft::Message&)> inspect_;
};

// Membership changes reach the transport: peers added after start() are dialled and
// admitted, a peer left out is cut off and refused, and one added back is reached again.
TEST_P(TransportConformance, PeersChangeWhileRunning) {
  pick_ports();
  a_ = make(1, port_a_, {});
  b_ = make(2, port_b_, {});
  start(*a_, inbox_a_);
  start(*b_, inbox_b_);
  EXPECT_FALSE(a_->send(2, numbered_message(1))) << "a node that is no peer is refused";

  a_->set_peers({{2, "127.0.0.1", port_b_}});
  b_->set_peers({{1, "127.0.0.1", port_a_}});
  ASSERT_TRUE(run_until([&] { return a_->connected(2) && b_->connected(1); })) << "added peers never connected";
  ASSERT_TRUE(a_->send(2, numbered_message(2)));
  ASSERT_TRUE(run_until([&] { return inbox_b_.size() == 1; }));
  EXPECT_EQ(inbox_b_[0].from, 1u);

  // Node 2 drops node 1: its connection goes and stays gone; what 1 sends is not delivered.
  const auto refused_before = b_->stats().connections_refused;
  b_->set_peers({});
  EXPECT_FALSE(b_->connected(1));
  EXPECT_FALSE(b_->send(1, numbered_message(3)));
  // (Over ZeroMQ node 1 learns it only when it next sends: the ROUTER cannot close a
  // connection, it answers what arrives on it.)
  a_->send(2, numbered_message(4));
  ASSERT_TRUE(run_until([&] { return b_->stats().connections_refused > refused_before; }))
      << "node 1 was not refused after it was dropped";
  run_until([] { return false; }, 300ms);
  EXPECT_EQ(inbox_b_.size(), 1u) << "a dropped peer's message was delivered";

  b_->set_peers({{1, "127.0.0.1", port_a_}});
  ASSERT_TRUE(run_until([&] { return a_->connected(2) && b_->connected(1); })) << "the peer added back never connected";
  const auto before = inbox_b_.size();
  ASSERT_TRUE(a_->send(2, numbered_message(5)));
  ASSERT_TRUE(run_until([&] { return inbox_b_.size() > before; }));
  EXPECT_EQ(inbox_b_.back().message.commit, 5u);
}

TEST_P(TransportConformance, DeliversInOrderBothWays) {
  make_pair();
  constexpr std::uint64_t kCount = 20000;
  for (std::uint64_t i = 1; i <= kCount; ++i) {
    ASSERT_TRUE(a_->send(2, numbered_message(i, i % 300)));
    ASSERT_TRUE(b_->send(1, numbered_message(i, i % 200)));
  }
  ASSERT_TRUE(run_until([&] { return inbox_a_.size() == kCount && inbox_b_.size() == kCount; }))
      << inbox_a_.size() << " and " << inbox_b_.size() << " of " << kCount;
  // A sender counts a frame once its write completes, which on epoll can run after the
  // receiver's read already delivered it.
  run_until([&] { return a_->stats().frames_sent == kCount; });
  for (std::uint64_t i = 0; i < kCount; ++i) {
    ASSERT_EQ(inbox_b_[i].from, 1u);
    ASSERT_EQ(inbox_b_[i].message.commit, i + 1);
    ASSERT_EQ(inbox_b_[i].message.entries.at(0).data.size(), (i + 1) % 300);
    ASSERT_EQ(inbox_a_[i].from, 2u);
    ASSERT_EQ(inbox_a_[i].message.commit, i + 1);
  }
  EXPECT_EQ(a_->stats().frames_sent, kCount);
  EXPECT_EQ(b_->stats().frames_received, kCount);
}

TEST_P(TransportConformance, Carries64MiBMessages) {
  make_pair();
  constexpr std::size_t kBytes = 64u << 20;
  ASSERT_TRUE(a_->send(2, numbered_message(1, kBytes, 'a')));
  ASSERT_TRUE(a_->send(2, numbered_message(2, 10, 'b')));  // and what follows it still arrives, in order
  ASSERT_TRUE(b_->send(1, numbered_message(3, kBytes, 'c')));
  ASSERT_TRUE(run_until([&] { return inbox_b_.size() == 2 && inbox_a_.size() == 1; }, 60s));
  const auto big = inbox_b_[0].message.entries.at(0).data.view();
  ASSERT_EQ(big.size(), kBytes);
  EXPECT_EQ(big.find_first_not_of('a'), std::string_view::npos);
  EXPECT_EQ(inbox_b_[1].message.commit, 2u);
  ASSERT_EQ(inbox_a_[0].message.entries.at(0).data.size(), kBytes);
  EXPECT_EQ(inbox_a_[0].message.entries.at(0).data.view().find_first_not_of('c'), std::string_view::npos);
}

TEST_P(TransportConformance, ReconnectsAfterEitherPeerRestarts) {
  make_pair();
  ASSERT_TRUE(a_->send(2, numbered_message(1)));
  ASSERT_TRUE(run_until([&] { return inbox_b_.size() == 1; }));

  // Restart node 2 on the same port: node 1 notices, redials with backoff, and traffic
  // flows both ways again.
  b_.reset();
  inbox_b_.clear();
  b_ = make(2, port_b_, {{1, "127.0.0.1", port_a_}});
  start(*b_, inbox_b_);
  std::uint64_t seq = 100;
  ASSERT_TRUE(run_until([&] {
    if (a_->connected(2) && b_->connected(1)) a_->send(2, numbered_message(++seq));
    return !inbox_b_.empty();
  })) << "node 1 never reached the restarted node 2";
  ASSERT_TRUE(b_->send(1, numbered_message(1000)));
  ASSERT_TRUE(run_until([&] { return !inbox_a_.empty() && inbox_a_.back().message.commit == 1000; }));

  // Restart node 1 too.
  a_.reset();
  inbox_a_.clear();
  a_ = make(1, port_a_, {{2, "127.0.0.1", port_b_}});
  start(*a_, inbox_a_);
  ASSERT_TRUE(run_until([&] {
    if (b_->connected(1)) b_->send(1, numbered_message(++seq));
    return !inbox_a_.empty();
  })) << "the restarted node 1 never heard from node 2";
}

TEST_P(TransportConformance, RefusesOversizeSendsAndAppliesBackpressure) {
  // Node 2 does not exist: everything queues for it.
  a_ = make(1, 0, {{2, "127.0.0.1", 1}}, 7, /*max_frame=*/1 << 20, /*queue_bytes=*/4 << 20);
  start(*a_, inbox_a_);
  EXPECT_FALSE(a_->send(2, numbered_message(1, 2 << 20))) << "a frame above max_frame_bytes was queued";
  EXPECT_FALSE(a_->send(3, numbered_message(1))) << "a message for an unknown peer was queued";
  int accepted = 0;
  while (a_->send(2, numbered_message(static_cast<std::uint64_t>(accepted), 512 << 10))) {
    ++accepted;
    ASSERT_LT(accepted, 100) << "the send queue is not bounded";
  }
  EXPECT_GE(accepted, 6);
  EXPECT_LE(accepted, 8);
  EXPECT_EQ(a_->stats().sends_refused, 3u);
}

TEST_P(TransportConformance, RefusesAPeerOfAnotherCluster) {
  auto probe = make(2, 0, {});
  const auto port = probe->listen_port();
  probe.reset();
  b_ = make(2, port, {{1, "127.0.0.1", 1}});
  a_ = make(1, 0, {{2, "127.0.0.1", port}}, /*cluster=*/8);
  start(*a_, inbox_a_);
  start(*b_, inbox_b_);
  ASSERT_TRUE(run_until([&] { return b_->stats().connections_refused >= 1; }));
  a_->send(2, numbered_message(1));
  run_until([] { return false; }, 100ms);
  EXPECT_TRUE(inbox_b_.empty());
  EXPECT_FALSE(b_->connected(1));
}

TEST_P(TransportConformance, RefusesAnUnknownNode) {
  auto probe = make(2, 0, {});
  const auto port = probe->listen_port();
  probe.reset();
  b_ = make(2, port, {{3, "127.0.0.1", 1}});  // knows node 3, not node 1
  a_ = make(1, 0, {{2, "127.0.0.1", port}});
  start(*a_, inbox_a_);
  start(*b_, inbox_b_);
  ASSERT_TRUE(run_until([&] { return b_->stats().connections_refused >= 1; }));
  EXPECT_FALSE(a_->connected(2));
}

// The receive handler's exceptions (transport.hpp): only a decode error refuses a message.
TEST_P(TransportConformance, AnInvariantViolationInTheHandlerLeavesRun) {
  make_pair();
  inspect_ = [](const raft::Message& m) {
    if (m.commit == 2) throw raft::InvariantViolation("AppendEntries conflicts with committed entry 2");
  };
  ASSERT_TRUE(a_->send(2, numbered_message(1)));
  ASSERT_TRUE(a_->send(2, numbered_message(2)));
  try {
    run_until([] { return false; }, 3s);
    ADD_FAILURE() << "run() went on after the violation; frames rejected: " << b_->stats().frames_rejected;
  } catch (const raft::InvariantViolation& e) {
    EXPECT_STREQ(e.what(), "AppendEntries conflicts with committed entry 2");
  }
  EXPECT_EQ(inbox_b_.size(), 1u);
  EXPECT_EQ(b_->stats().frames_rejected, 0u);
}

TEST_P(TransportConformance, ADecodeErrorInTheHandlerRefusesTheMessageOnly) {
  make_pair();
  inspect_ = [](const raft::Message& m) {
    if (m.commit == 1) throw wire::DecodeError("entry 1 holds no command");
  };
  ASSERT_TRUE(a_->send(2, numbered_message(1)));
  ASSERT_TRUE(run_until([&] { return b_->stats().frames_rejected == 1; }));
  // TCP closed the connection and node 1 dials again; ZeroMQ kept it. Either way node 2
  // hears from node 1 again.
  std::uint64_t seq = 100;
  ASSERT_TRUE(run_until([&] {
    if (a_->connected(2) && b_->connected(1) && inbox_b_.empty()) a_->send(2, numbered_message(++seq));
    return !inbox_b_.empty();
  }));
  EXPECT_EQ(b_->stats().frames_rejected, 1u);
}

INSTANTIATE_TEST_SUITE_P(Transports, TransportConformance, ::testing::Values(std::string("tcp"), std::string("zmq")),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace raftfl::net
