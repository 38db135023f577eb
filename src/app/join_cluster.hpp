#pragma once

// `raftfl node --join HOST:PORT`: asks a running cluster, through any member's admin
// endpoint, to add this node as a learner, and learns the members to dial.

#include <chrono>
#include <stdexcept>
#include <vector>

#include "raftfl/node/config.hpp"

namespace raftfl::app {

class JoinError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Joined {
  raft::NodeId id = raft::kNoNode;       // config.id, or the one the leader gave
  std::vector<node::PeerConfig> members;  // the others, with their raft endpoints
};

// Sends `join` to `contact` (with config.id, 0 asking for one), follows "not the leader" to
// the leader's admin endpoint and retries while another membership change is pending,
// until `limit`. Throws JoinError saying why not.
Joined join_cluster(const node::NodeConfig& config, const node::Endpoint& contact, std::chrono::milliseconds limit);

}  // namespace raftfl::app
