#pragma once

// The leader's membership policy (README, `raft.target_voters`, `raft.failure_timeout_ms`):
// keeps the cluster at its target number of voters by promoting caught-up learners, and
// replaces a voter it has not heard from within the failure timeout (a learner promoted
// first, then the failed voter demoted, so that the quorum never depends on more dead
// nodes than before). Healthy voters are never demoted. A new leader first records its own
// endpoints, so that followers can send joiners to it. One change at a time, through the
// log; every node runs it and it acts only while its node leads.

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <optional>

#include "raftfl/node/raft_driver.hpp"
#include "raftfl/raft/voter_policy.hpp"

namespace raftfl::node {

// How the leader judges a member; `status` shows it and the policy acts on it.
using raft::MemberHealth;

// Failed: no Raft message from `member` within raft.failure_timeout_ms (0: never failed),
// its silence counted from `heard_since` at the earliest. Behind: its log is more than 64
// entries short of the leader's (caught up otherwise), or the leader tracks no progress.
MemberHealth member_health(const RaftDriver& node, raft::NodeId member, std::chrono::steady_clock::time_point now,
                           std::chrono::steady_clock::time_point heard_since = {});

class MembershipManager {
 public:
  MembershipManager(asio::io_context& io, RaftDriver& node);
  void start();
  void stop();

  // What the policy would propose now, if anything (exposed for tests).
  std::optional<raft::ConfChange> next_change(std::chrono::steady_clock::time_point now) const;

 private:
  asio::awaitable<void> loop();
  // The change recording this node's endpoints, when the configuration lacks them.
  std::optional<raft::ConfChange> own_context() const;
  MemberHealth health(raft::NodeId id, std::chrono::steady_clock::time_point now) const;

  asio::io_context& io_;
  RaftDriver& node_;
  asio::steady_timer timer_;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point leader_since_;
  bool was_leader_ = false;
};

}  // namespace raftfl::node
