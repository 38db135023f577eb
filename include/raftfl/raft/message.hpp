#pragma once

#include <memory>
#include <vector>

#include "raftfl/raft/configuration.hpp"
#include "raftfl/raft/types.hpp"

namespace raftfl::raft {

struct SnapshotMeta {
  Index index = 0;  // last entry the snapshot covers
  Term term = 0;    // term of that entry
  Configuration config;
};

struct Snapshot {
  SnapshotMeta meta;
  Payload data;  // the application's state at meta.index; opaque to the engine
};

enum class MessageType : std::uint8_t {
  kPreVote,        // section 9.6 of the dissertation: would you vote for me at `term`?
  kPreVoteResp,
  kVote,           // RequestVote
  kVoteResp,
  kAppend,         // AppendEntries
  kAppendResp,
  kHeartbeat,      // empty AppendEntries that carries no log position
  kHeartbeatResp,
  kSnapshot,       // InstallSnapshot
  kTimeoutNow,     // leadership transfer: start an election now
  kReadIndex,      // a follower forwards a read to the leader
  kReadIndexResp,
};

const char* to_string(MessageType type);

struct Message {
  MessageType type = MessageType::kHeartbeat;
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Term term = 0;

  // kAppend: the entry just before `entries`. kVote/kPreVote: the candidate's last entry.
  // kAppendResp: the index acknowledged, or the rejected prev index; with `reject`,
  // log_term is the term of the follower's entry at reject_hint (fast backtracking).
  Index index = 0;
  Term log_term = 0;
  std::vector<Entry> entries;
  Index commit = 0;

  bool reject = false;
  Index reject_hint = 0;

  // kVote from a leadership transfer: voters skip the leader-lease check.
  bool force = false;

  // kHeartbeat/kHeartbeatResp: the ReadIndex round this heartbeat confirms.
  std::uint64_t read_seq = 0;
  // kReadIndex/kReadIndexResp: the caller's context, echoed back with the read index.
  Payload context;

  std::shared_ptr<const Snapshot> snapshot;  // kSnapshot
};

}  // namespace raftfl::raft
