#include "raftfl/raft/configuration.hpp"

#include <algorithm>
#include <cstring>

#include "raftfl/raft/little_endian.hpp"

namespace raftfl::raft {
namespace {

bool contains_sorted(const std::vector<NodeId>& ids, NodeId id) {
  return std::binary_search(ids.begin(), ids.end(), id);
}

void insert_sorted(std::vector<NodeId>& ids, NodeId id) {
  ids.insert(std::lower_bound(ids.begin(), ids.end(), id), id);
}

void erase_sorted(std::vector<NodeId>& ids, NodeId id) {
  auto it = std::lower_bound(ids.begin(), ids.end(), id);
  if (it != ids.end() && *it == id) ids.erase(it);
}

}  // namespace

bool Configuration::is_voter(NodeId id) const { return contains_sorted(voters, id); }
bool Configuration::is_learner(NodeId id) const { return contains_sorted(learners, id); }

// Layout: 1 byte type, 8 bytes node id (little endian), then the context bytes. The
// engine must read its own membership entries without the wire layer.
std::string encode_conf_change(const ConfChange& change) {
  std::string out;
  out.reserve(9 + change.context.size());
  out.push_back(static_cast<char>(change.type));
  put_le<std::uint64_t>(out, change.node);
  out += change.context;
  return out;
}

std::optional<ConfChange> decode_conf_change(std::string_view bytes) {
  if (bytes.size() < 9) return std::nullopt;
  auto type = static_cast<std::uint8_t>(bytes[0]);
  if (type > static_cast<std::uint8_t>(ConfChangeType::kUpdateContext)) return std::nullopt;
  ConfChange change;
  change.type = static_cast<ConfChangeType>(type);
  change.node = get_le<std::uint64_t>(bytes.data() + 1);
  change.context = std::string(bytes.substr(9));
  return change;
}

std::optional<std::string> conf_change_error(const Configuration& config, const ConfChange& change) {
  if (change.node == kNoNode) return "node id 0 is reserved";
  switch (change.type) {
    case ConfChangeType::kAddLearner:
      if (config.contains(change.node)) return "node is already a member";
      return std::nullopt;
    case ConfChangeType::kPromoteLearner:
      if (!config.is_learner(change.node)) return "only a learner can be promoted";
      return std::nullopt;
    case ConfChangeType::kRemoveNode:
      if (!config.contains(change.node)) return "node is not a member";
      if (config.is_voter(change.node) && config.voters.size() == 1) return "cannot remove the last voter";
      return std::nullopt;
    case ConfChangeType::kDemoteVoter:
      if (!config.is_voter(change.node)) return "only a voter can be demoted";
      if (config.voters.size() == 1) return "cannot demote the last voter";
      return std::nullopt;
    case ConfChangeType::kUpdateContext:
      if (!config.contains(change.node)) return "node is not a member";
      return std::nullopt;
  }
  return "unknown change type";
}

Configuration apply_conf_change(Configuration config, const ConfChange& change) {
  switch (change.type) {
    case ConfChangeType::kAddLearner:
      insert_sorted(config.learners, change.node);
      if (!change.context.empty()) config.contexts[change.node] = change.context;
      break;
    case ConfChangeType::kPromoteLearner:
      erase_sorted(config.learners, change.node);
      insert_sorted(config.voters, change.node);
      break;
    case ConfChangeType::kRemoveNode:
      erase_sorted(config.learners, change.node);
      erase_sorted(config.voters, change.node);
      config.contexts.erase(change.node);
      break;
    case ConfChangeType::kDemoteVoter:
      erase_sorted(config.voters, change.node);
      insert_sorted(config.learners, change.node);
      break;
    case ConfChangeType::kUpdateContext:
      if (change.context.empty()) config.contexts.erase(change.node);
      else config.contexts[change.node] = change.context;
      break;
  }
  return config;
}

}  // namespace raftfl::raft
