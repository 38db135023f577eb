#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "raftfl/raft/types.hpp"

namespace raftfl::raft {

// Cluster membership. Voters elect and count toward quorums; learners only receive the
// log (the control plane keeps 3 or 5 voters and makes every other worker a learner).
struct Configuration {
  std::vector<NodeId> voters;    // sorted, unique
  std::vector<NodeId> learners;  // sorted, unique, disjoint from voters
  // What the control plane attached to a member when it was added (its endpoints), so
  // that every node, and a node that starts from a snapshot, knows where members are.
  // Opaque to the engine; absent for members of a configuration written at bootstrap.
  std::map<NodeId, std::string> contexts;

  bool is_voter(NodeId id) const;
  bool is_learner(NodeId id) const;
  bool contains(NodeId id) const { return is_voter(id) || is_learner(id); }
  std::size_t quorum() const { return voters.size() / 2 + 1; }
  bool operator==(const Configuration&) const = default;
};

enum class ConfChangeType : std::uint8_t {
  kAddLearner,      // a new member that receives the log but does not vote
  kPromoteLearner,  // a learner becomes a voter
  kRemoveNode,      // a voter or a learner leaves
  kDemoteVoter,     // a voter becomes a learner (a failed voter replaced, keeping its log)
  kUpdateContext,   // a member's context changes (say, a leader records its admin endpoint)
};

// One single-server change (Raft dissertation section 4.1): any two majorities of the
// configurations before and after overlap, so no joint consensus is needed.
struct ConfChange {
  ConfChangeType type = ConfChangeType::kAddLearner;
  NodeId node = kNoNode;
  std::string context;  // opaque to the engine: the control plane puts the endpoint here
  bool operator==(const ConfChange&) const = default;
};

std::string encode_conf_change(const ConfChange& change);
std::optional<ConfChange> decode_conf_change(std::string_view bytes);

// Why `change` cannot apply to `config`, or nullopt when it can.
std::optional<std::string> conf_change_error(const Configuration& config, const ConfChange& change);
Configuration apply_conf_change(Configuration config, const ConfChange& change);

}  // namespace raftfl::raft
