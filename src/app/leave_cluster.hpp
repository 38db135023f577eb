#pragma once

// Leaving on SIGTERM (`node.leave_on_stop`): the node asks the leader to remove it from the
// configuration before it stops, handing the leadership on first if it leads.

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>

#include <chrono>

#include "raftfl/node/raft_driver.hpp"

namespace raftfl::app {

// Whether a node stopping now should leave: `leave_on_stop` if set, else only a learner.
bool should_leave(const node::RaftDriver& driver);

// Until `limit`: transfers the leadership away if this node leads, then sends `member
// remove SELF` to the leader's admin endpoint (from a helper thread: the reactor goes on
// serving meanwhile). True once the leader acknowledged the removal.
asio::awaitable<bool> leave_cluster(asio::io_context& io, node::RaftDriver& driver, std::chrono::milliseconds limit);

}  // namespace raftfl::app
