#pragma once

#include <cstddef>
#include <vector>

#include "raftfl/raft/types.hpp"

namespace raftfl::raft {

// The last indexes of the AppendEntries in flight to one follower; full means the leader
// stops sending until acknowledgements free a slot (flow control for pipelining).
class Inflights {
 public:
  explicit Inflights(std::size_t capacity) : ring_(capacity) {}
  bool full() const { return count_ == ring_.size(); }
  std::size_t count() const { return count_; }
  void add(Index last);
  // Frees every slot whose index is <= `index`.
  void free_to(Index index);
  void free_first();
  void reset() { start_ = count_ = 0; }

 private:
  std::vector<Index> ring_;
  std::size_t start_ = 0;
  std::size_t count_ = 0;
};

// How the leader replicates to one follower (as in etcd raft):
// probe: one AppendEntries at a time until the follower's match is found;
// replicate: optimistic pipelining within the inflight window;
// snapshot: a snapshot is on its way, nothing else is sent.
enum class ProgressState : std::uint8_t { kProbe, kReplicate, kSnapshot };
const char* to_string(ProgressState state);

struct Progress {
  explicit Progress(Index next_index, std::size_t max_inflight) : next(next_index), inflights(max_inflight) {}

  Index match = 0;
  Index next = 1;
  ProgressState state = ProgressState::kProbe;
  bool probe_sent = false;
  Index pending_snapshot = 0;
  int snapshot_ticks = 0;    // ticks since the snapshot was sent: resent when it looks lost
  bool recent_active = false;  // heard from since the last check-quorum
  Inflights inflights;

  bool paused() const;
  void become_probe();
  void become_replicate();
  void become_snapshot(Index snapshot_index);
  // An acknowledgement of everything up to `index`; false if it is stale.
  bool maybe_update(Index index);
  // A rejection of the AppendEntries whose prev index was `rejected`; `probe_from` is
  // the index the follower's hint says the logs may agree at. False if stale.
  bool maybe_decrease_to(Index rejected, Index probe_from);
  // The follower proved that it no longer holds what it acknowledged (its disk lost the
  // tail of its log): nothing of it is known to match any more. Probes again from the
  // rejection of `rejected`, which maybe_decrease_to() then takes as the answer it waits for.
  void forget_match(Index rejected);
  // After a successful send of entries up to `last` in replicate state.
  void optimistic_update(Index last) { next = last + 1; }
};

}  // namespace raftfl::raft
