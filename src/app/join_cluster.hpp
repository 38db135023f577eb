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

// Sends `join` to `contact`, follows "not the leader" to the leader's admin endpoint and
// retries while another membership change is pending, until `limit`. Returns the members
// other than `config.id` (raft and admin endpoints); throws JoinError saying why not.
std::vector<node::PeerConfig> join_cluster(const node::NodeConfig& config, const node::Endpoint& contact,
                                           std::chrono::milliseconds limit);

}  // namespace raftfl::app
