#include "raftfl/node/message_router.hpp"

#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <vector>

#include "raftfl/wire/raft_codec.hpp"

namespace raftfl::node {
namespace {

constexpr std::uint64_t kCluster = 7;
constexpr net::NodeId kSelf = 1;

// A message as the transport hands it over: read from its bytes, not from the builder.
struct Received {
  explicit Received(capnp::MessageBuilder& builder)
      : words(capnp::messageToFlatArray(builder)), reader(words.asPtr()) {}
  kj::Array<capnp::word> words;
  capnp::FlatArrayMessageReader reader;
};

std::unique_ptr<capnp::MessageBuilder> report(std::uint64_t cluster, net::NodeId sender, net::NodeId receiver) {
  gossip::RoundReport r;
  r.round = 3;
  return wire::encode_round_report(cluster, sender, receiver, r);
}

TEST(MessageRouter, HandsEachBodyToItsHandler) {
  MessageRouter router(kCluster, kSelf);
  std::vector<std::pair<net::NodeId, std::uint64_t>> reports;
  int raft_messages = 0;
  router.route(wire::EnvelopeBody::kReport, [&](net::NodeId from, capnp::MessageReader& reader) {
    reports.emplace_back(from, wire::decode_round_report(reader).round);
  });
  router.route(wire::EnvelopeBody::kRaft, [&](net::NodeId, capnp::MessageReader&) { ++raft_messages; });

  auto message = report(kCluster, 2, kSelf);
  Received received(*message);
  router.receive(2, received.reader);

  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0], std::make_pair(net::NodeId{2}, std::uint64_t{3}));
  EXPECT_EQ(raft_messages, 0);
}

TEST(MessageRouter, DropsABodyNobodyRegisteredFor) {
  MessageRouter router(kCluster, kSelf);
  int calls = 0;
  router.route(wire::EnvelopeBody::kRaft, [&](net::NodeId, capnp::MessageReader&) { ++calls; });
  auto message = report(kCluster, 2, kSelf);
  Received received(*message);
  EXPECT_NO_THROW(router.receive(2, received.reader));
  EXPECT_EQ(calls, 0);
}

TEST(MessageRouter, ALaterHandlerReplacesTheFirst) {
  MessageRouter router(kCluster, kSelf);
  int first = 0;
  int second = 0;
  router.route(wire::EnvelopeBody::kReport, [&](net::NodeId, capnp::MessageReader&) { ++first; });
  router.route(wire::EnvelopeBody::kReport, [&](net::NodeId, capnp::MessageReader&) { ++second; });
  auto message = report(kCluster, 2, kSelf);
  Received received(*message);
  router.receive(2, received.reader);
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
}

TEST(MessageRouter, RefusesAMisaddressedEnvelopeBeforeAnyHandler) {
  MessageRouter router(kCluster, kSelf);
  int calls = 0;
  router.route(wire::EnvelopeBody::kReport, [&](net::NodeId, capnp::MessageReader&) { ++calls; });
  const std::vector<std::unique_ptr<capnp::MessageBuilder>> wrong = [] {
    std::vector<std::unique_ptr<capnp::MessageBuilder>> v;
    v.push_back(report(kCluster + 1, 2, kSelf));  // another cluster
    v.push_back(report(kCluster, 2, kSelf + 5));  // another receiver
    v.push_back(report(kCluster, 3, kSelf));      // a sender other than the connection's
    return v;
  }();
  for (const auto& message : wrong) {
    Received received(*message);
    EXPECT_THROW(router.receive(2, received.reader), wire::DecodeError);
  }
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace raftfl::node
