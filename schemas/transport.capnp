@0xd4b1e2f6a3c59b07;
# The first frame each side of a connection sends. Evolution rules as in raft.capnp.
# Authentication comes later as new fields here (a credential the acceptor verifies before
# it replies): the handshake is the one place a connection is admitted or refused.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("raftfl::schema");

struct Hello {
  protocolVersion @0 :UInt32;
  clusterId @1 :UInt64;
  nodeId @2 :UInt64;
  # The node the dialer means to reach: a stale address book is refused, not misrouted.
  expectedPeer @3 :UInt64;
}

struct HelloReply {
  accepted @0 :Bool;
  nodeId @1 :UInt64;
  # Why a connection was refused, for the dialer's log.
  reason @2 :Text;
}
