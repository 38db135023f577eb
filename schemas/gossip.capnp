@0xf5ce2d5877c951f3;
# Messages between workers and to the coordinator during training (docs/ARCHITECTURE.md, "A round").
# They travel in raft.capnp's Envelope, next to the Raft messages. Evolution rules as in
# raft.capnp.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("raftfl::schema");

enum Sparsifier {
  randomK @0;  # shared mask from the round's seed: values only
  topK @1;     # the sender's own selection: indices and values
  dense @2;    # every coordinate
}

enum ValueEncoding {
  fp32 @0;
  bf16 @1;
}

# One piece of a worker's model for its peer in one round. A model larger than the
# chunk size travels as several chunks; the receiver places each by its offset.
struct GossipChunk {
  round @0 :UInt64;
  sparsifier @1 :Sparsifier;
  encoding @2 :ValueEncoding;
  # The sender's parameter count: peers of different models refuse each other.
  parameterCount @3 :UInt64;
  # How many values the whole exchange carries, over all chunks.
  totalValues @4 :UInt64;
  # Index of this chunk's first value among them.
  offset @5 :UInt64;
  values @6 :Data;
  # topK only: the coordinates the values belong to, one per value of this chunk.
  indices @7 :List(UInt32);
}

struct BandwidthSample {
  peer @0 :UInt64;
  bytesPerSecond @1 :Float64;
}

# A worker's account of one round, sent to the coordinator (the Raft leader).
struct WorkerReport {
  round @0 :UInt64;
  # 0 when the worker sat the round out.
  peer @1 :UInt64;
  trainLoss @2 :Float64;
  # Test accuracy in [0, 1]; negative when the worker did not evaluate this round.
  accuracy @3 :Float64;
  bytesSent @4 :UInt64;
  bytesReceived @5 :UInt64;
  trainMicros @6 :UInt64;
  exchangeMicros @7 :UInt64;
  roundMicros @8 :UInt64;
  # The peer did not answer before the deadline: the worker kept its own model.
  peerTimedOut @9 :Bool;
  # After the last round: `accuracy` is over the whole test set.
  final @10 :Bool;
  # Smoothed measurements of the links this worker used.
  bandwidth @11 :List(BandwidthSample);
  trainSamples @12 :UInt64;
  # Not a round's account: the worker has (re)started and begins at round + 1, so that
  # the coordinator pairs it from the next round it plans.
  joining @13 :Bool;
}
