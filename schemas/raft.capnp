@0xcae9c2e46e461d26;
# raftfl's Raft messages on the wire. Evolution rules: never renumber or retype a field,
# add new fields with new ordinals at the end, add new message kinds as new union members.
# Old readers skip what they do not know; src/wire refuses kinds it does not know.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("raftfl::schema");
using Gossip = import "gossip.capnp";

struct Configuration {
  voters @0 :List(UInt64);
  learners @1 :List(UInt64);
  contexts @2 :List(MemberContext);
}

# What the control plane attached to a member (its endpoints); opaque to the engine.
struct MemberContext {
  node @0 :UInt64;
  context @1 :Data;
}

struct SnapshotMeta {
  index @0 :UInt64;
  term @1 :UInt64;
  config @2 :Configuration;
}

struct Snapshot {
  meta @0 :SnapshotMeta;
  data @1 :Data;
}

# A piece of a snapshot streamed from the leader (`offset` is where `data` starts), or,
# with `ack`, the receiver's answer: it holds the snapshot's first `offset` bytes.
# `checksum` (XXH3-64 of the whole snapshot data) tells two snapshots at one index apart
# and catches a partial file damaged while the receiver was down.
struct SnapshotChunk {
  meta @0 :SnapshotMeta;
  totalBytes @1 :UInt64;
  offset @2 :UInt64;
  data @3 :Data;
  checksum @4 :UInt64;
  ack @5 :Bool;
}

enum EntryType {
  noOp @0;
  normal @1;
  confChange @2;
}

struct Entry {
  term @0 :UInt64;
  index @1 :UInt64;
  type @2 :EntryType;
  data @3 :Data;
}

struct HardState {
  term @0 :UInt64;
  vote @1 :UInt64;
  commit @2 :UInt64;
}

enum MessageType {
  preVote @0;
  preVoteResp @1;
  vote @2;
  voteResp @3;
  append @4;
  appendResp @5;
  heartbeat @6;
  heartbeatResp @7;
  snapshot @8;
  timeoutNow @9;
  readIndex @10;
  readIndexResp @11;
}

# The fields of raft::Message beyond the envelope's.
struct RaftMessage {
  type @0 :MessageType;
  index @1 :UInt64;
  logTerm @2 :UInt64;
  entries @3 :List(Entry);
  commit @4 :UInt64;
  reject @5 :Bool;
  rejectHint @6 :UInt64;
  force @7 :Bool;
  readSeq @8 :UInt64;
  context @9 :Data;
  snapshot @10 :Snapshot;
}

# Every message between nodes travels in an envelope: who, to whom, in which cluster and
# term, and which kind of body.
struct Envelope {
  clusterId @0 :UInt64;
  sender @1 :UInt64;
  receiver @2 :UInt64;
  term @3 :UInt64;
  body :union {
    raft @4 :RaftMessage;
    snapshotChunk @5 :SnapshotChunk;
    gossip @6 :Gossip.GossipChunk;
    report @7 :Gossip.WorkerReport;
  }
}
