// The rules by which every transport admits a connection, and the dialer's reading of the
// answer: one place, so that TCP and ZeroMQ refuse the same Hellos with the same words.
#include "raftfl/net/handshake.hpp"

#include <capnp/message.h>
#include <gtest/gtest.h>

#include <string>

namespace raftfl::net {
namespace {

TransportOptions node_two() {
  TransportOptions o;
  o.cluster_id = 7;
  o.self = 2;
  o.peers = {{1, "127.0.0.1", 1}, {3, "127.0.0.1", 1}};
  return o;
}

// Node two's peers: 1 and 3 (node 2 itself is in the list too: a hello claiming to come
// from the node it reaches is refused all the same).
bool peer_of_two(NodeId id) { return id == 1 || id == 2 || id == 3; }

std::string refusal(const Hello& hello) { return admit_hello(hello, node_two(), peer_of_two).reason; }

TEST(Handshake, AdmitsAPeerOfThisClusterThatMeantToReachThisNode) {
  TransportOptions node_one;
  node_one.cluster_id = 7;
  node_one.self = 1;
  const auto reply = admit_hello(hello_to(node_one, 2), node_two(), peer_of_two);
  EXPECT_TRUE(reply.accepted) << reply.reason;
  EXPECT_EQ(reply.node_id, 2u);
}

TEST(Handshake, RefusesWithTheReason) {
  EXPECT_EQ(refusal({kProtocolVersion + 1, 7, 1, 2}), "protocol version 2, this node speaks 1");
  EXPECT_EQ(refusal({kProtocolVersion, 8, 1, 2}), "cluster id 8, this node is in cluster 7");
  EXPECT_EQ(refusal({kProtocolVersion, 7, 1, 5}), "dialed node 5 but reached node 2");
  EXPECT_EQ(refusal({kProtocolVersion, 7, 4, 2}), "node 4 is not a peer of this node");
  EXPECT_EQ(refusal({kProtocolVersion, 7, 2, 2}), "node 2 is not a peer of this node");
  const auto malformed = admit_hello(std::nullopt, node_two(), peer_of_two);
  EXPECT_FALSE(malformed.accepted);
  EXPECT_EQ(malformed.reason, "malformed hello");
}

TEST(Handshake, TheDialerReadsTheAnswer) {
  EXPECT_EQ(refusal_in(HelloReply{true, 2, ""}, 2), "");
  EXPECT_EQ(refusal_in(HelloReply{false, 2, "cluster id 8, this node is in cluster 7"}, 2),
            "refused our connection: cluster id 8, this node is in cluster 7");
  EXPECT_EQ(refusal_in(HelloReply{true, 3, ""}, 2), "answered as node 3");
  EXPECT_EQ(refusal_in(std::nullopt, 2), "sent a malformed handshake reply");
}

TEST(Handshake, RoundTripsThroughTheSchema) {
  capnp::MallocMessageBuilder hello_message;
  encode_hello({kProtocolVersion, 7, 1, 2}, hello_message);
  capnp::SegmentArrayMessageReader hello_reader(hello_message.getSegmentsForOutput());
  const auto hello = decode_hello(hello_reader);
  EXPECT_EQ(hello.protocol_version, kProtocolVersion);
  EXPECT_EQ(hello.cluster_id, 7u);
  EXPECT_EQ(hello.node_id, 1u);
  EXPECT_EQ(hello.expected_peer, 2u);

  capnp::MallocMessageBuilder reply_message;
  encode_hello_reply({false, 2, "why"}, reply_message);
  capnp::SegmentArrayMessageReader reply_reader(reply_message.getSegmentsForOutput());
  const auto reply = decode_hello_reply(reply_reader);
  EXPECT_FALSE(reply.accepted);
  EXPECT_EQ(reply.node_id, 2u);
  EXPECT_EQ(reply.reason, "why");
}

}  // namespace
}  // namespace raftfl::net
