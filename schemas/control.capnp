@0xf45a66ee7f777acf;
# raftfl's control log entries and control snapshots (docs/ARCHITECTURE.md, "The control log").
# Evolution rules: never renumber or retype a field, add new fields with new ordinals at
# the end, add new entry kinds as new union members. Old readers skip fields they do not
# know; src/wire refuses entry kinds and enum values it does not know, so every node
# applies the same log or stops, never a guess.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("raftfl::schema");

struct Member {
  id @0 :UInt64;
  endpoint @1 :Text;
  voter @2 :Bool;
  capabilities @3 :UInt64;
  # Marked failed by the coordinator (silent or not reporting): not paired until it is
  # marked healthy again.
  failed @4 :Bool;
  # The data shards this worker trains on (control_state.hpp, "Data shards").
  shards @5 :List(UInt32);
}

struct Coordinator {
  leader @0 :UInt64;
  term @1 :UInt64;
  firstRound @2 :UInt64;
}

# (smaller id, larger id).
struct NodePair {
  a @0 :UInt64;
  b @1 :UInt64;
}

struct Matching {
  pairs @0 :List(NodePair);
  idle @1 :List(UInt64);
}

struct Topology {
  round @0 :UInt64;
  coordinatorTerm @1 :UInt64;
  maskSeed @2 :UInt64;
  matching @3 :Matching;
  # -1: not computed (see control_state.hpp).
  spectralGap @4 :Float64;
  # Workers that take their peer's whole model this round instead of averaging with it
  # (they joined or came back); each is paired with a member not in this list.
  fresh @5 :List(UInt64);
}

struct BandwidthCell {
  from @0 :UInt64;
  to @1 :UInt64;
  bytesPerSecond @2 :Float64;
}

struct BandwidthUpdate {
  cells @0 :List(BandwidthCell);
}

enum MembershipOp {
  add @0;
  promote @1;
  remove @2;
}

struct MembershipChange {
  op @0 :MembershipOp;
  member @1 :Member;
}

struct WorkerHealth {
  id @0 :UInt64;
  failed @1 :Bool;
}

struct DataPlan {
  shardCount @0 :UInt32;
}

struct ControlEntry {
  union {
    noOp @0 :Void;
    coordinator @1 :Coordinator;
    topology @2 :Topology;
    bandwidth @3 :BandwidthUpdate;
    membership @4 :MembershipChange;
    workerHealth @5 :WorkerHealth;
    dataPlan @6 :DataPlan;
  }
}

struct ControlSnapshot {
  members @0 :List(Member);
  coordinator @1 :Coordinator;
  lastRound @2 :UInt64;
  topologies @3 :List(Topology);
  bandwidth @4 :List(BandwidthCell);
  shardCount @5 :UInt32;
}
