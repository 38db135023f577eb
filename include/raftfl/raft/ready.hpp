#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "raftfl/raft/message.hpp"

namespace raftfl::raft {

enum class Role : std::uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
const char* to_string(Role role);

struct SoftState {
  Role role = Role::kFollower;
  NodeId leader = kNoNode;
  bool operator==(const SoftState&) const = default;
};

// A ReadIndex answer: state read after `index` is applied is linearizable.
struct ReadState {
  Index index = 0;
  Payload context;
};

// Everything the engine asks of its driver after a batch of inputs. The driver must, in order:
//   1. send `messages` (they depend on nothing unpersisted; the leader's AppendEntries go
//      out in parallel with its own disk write, dissertation section 10.2.1);
//   2. persist `snapshot` (replacing the whole stored log), then `entries` (dropping any
//      stored entry at or above entries.front().index first), then `hard_state`, durably;
//   3. only then send `messages_after_persist` (votes and acknowledgements promise that
//      state is on disk);
//   4. install `snapshot` into the state machine, then apply `committed_entries`;
//   5. call Raft::advance(ready).
// step()/tick()/propose() may be called between ready() and advance(); ready() may not.
struct Ready {
  std::optional<SoftState> soft_state;
  std::optional<HardState> hard_state;
  std::shared_ptr<const Snapshot> snapshot;
  std::vector<Entry> entries;
  std::vector<Message> messages;
  std::vector<Message> messages_after_persist;
  std::vector<Entry> committed_entries;
  std::vector<ReadState> read_states;

  bool empty() const {
    return !soft_state && !hard_state && !snapshot && entries.empty() && messages.empty() &&
           messages_after_persist.empty() && committed_entries.empty() && read_states.empty();
  }
};

}  // namespace raftfl::raft
