#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "raftfl/raft/progress.hpp"
#include "raftfl/raft/types.hpp"

// The state each role of the engine holds, and only that role (the engine keeps them in
// a std::variant, as ScyllaDB's raft::fsm does): leaving a role drops its state, so a
// deposed leader cannot act on its followers' progress or answer its pending reads.
namespace raftfl::raft::roles {

struct FollowerState {
  NodeId leader = kNoNode;
};
struct CandidateState {
  bool pre_vote = false;
  std::map<NodeId, bool> votes;  // granted or rejected, by voter
};
struct PendingRead {
  std::uint64_t seq = 0;
  Index index = 0;
  Payload context;
  NodeId requester = kNoNode;  // who asked: this node, or a follower that forwarded it
  std::vector<NodeId> acks;
};
struct LeaderState {
  std::map<NodeId, Progress> progress;  // every member but this node
  NodeId transfer_target = kNoNode;
  std::uint64_t read_seq = 0;
  std::deque<PendingRead> reads;               // awaiting a confirming heartbeat round
  std::vector<PendingRead> reads_before_commit;  // awaiting the term's first commit
  bool broadcast_pending = false;  // entries or commit not yet sent (batched until ready())
};

}  // namespace raftfl::raft::roles
