// A member's endpoints in the Raft configuration: what one node writes, every node reads
// back, IPv6 included; the admin endpoint may be unknown, the raft one may not.
#include "raftfl/node/member_context.hpp"

#include <gtest/gtest.h>

namespace raftfl::node {
namespace {

TEST(MemberContext, RoundTripsBothEndpointsIpv6Included) {
  const MemberEndpoints a{{"10.0.0.4", 7004}, {"10.0.0.4", 8004}};
  EXPECT_EQ(encode_member_context(a), "raft=10.0.0.4:7004 admin=10.0.0.4:8004");
  EXPECT_EQ(decode_member_context(encode_member_context(a)), a);
  const MemberEndpoints b{{"::1", 7001}, {"node1.example", 8001}};
  EXPECT_EQ(decode_member_context(encode_member_context(b)), b);
}

TEST(MemberContext, LaterKeysAreSkippedAndOnlyTheRaftEndpointIsRequired) {
  EXPECT_EQ(decode_member_context("admin=h:2 zone=eu raft=h:1"), (MemberEndpoints{{"h", 1}, {"h", 2}}));
  EXPECT_EQ(decode_member_context("raft=h:1"), (MemberEndpoints{{"h", 1}, {}}));
  EXPECT_EQ(encode_member_context({{"h", 1}, {}}), "raft=h:1");
  EXPECT_FALSE(decode_member_context("admin=h:2"));
  EXPECT_FALSE(decode_member_context("raft=h:1 admin=h"));
  EXPECT_FALSE(decode_member_context(""));
  EXPECT_FALSE(decode_member_context("tcp://node4"));
}

}  // namespace
}  // namespace raftfl::node
