#pragma once

// The admin endpoint's membership commands (README, "Growing and shrinking a cluster"):
//   join ID RAFT_ENDPOINT ADMIN_ENDPOINT   add a new node as a learner (ID 0: assign one);
//                                          replies with the members it is to dial
//   member list                            the members, their roles and endpoints
//   member add ID RAFT_ENDPOINT ADMIN_ENDPOINT | member promote ID | member demote ID |
//   member remove ID
// Changes go through the leader (one at a time, as Raft's single-server changes must); a
// follower answers with the leader's id and admin endpoint, so the caller can go there.

#include <asio/awaitable.hpp>

#include <optional>
#include <string>
#include <vector>

#include "raftfl/node/raft_driver.hpp"

namespace raftfl::node {

class MembershipCommands {
 public:
  explicit MembershipCommands(RaftDriver& node) : node_(node) {}
  // The reply line, or nullopt when `words` is no membership command.
  asio::awaitable<std::optional<std::string>> handle(const std::vector<std::string>& words);

 private:
  asio::awaitable<std::string> join(const std::vector<std::string>& words, bool reply_members);
  asio::awaitable<std::string> change(raft::ConfChangeType type, raft::NodeId id);
  std::string list() const;
  std::string not_leader() const;

  RaftDriver& node_;
};

}  // namespace raftfl::node
