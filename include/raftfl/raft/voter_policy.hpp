#pragma once

// Which voter change a leader makes to keep `target` healthy voters (README, "Growing a
// cluster"): promote the most caught-up healthy learner while voters are short, replace a
// failed voter (promote first, then demote the failed one to learner, so that the voter
// count never drops while a quorum depends on it), never demote a healthy voter. One
// change at a time; pure, so that the node and the simulator run the same rules.

#include <cstddef>
#include <functional>
#include <optional>

#include "raftfl/raft/configuration.hpp"
#include "raftfl/raft/types.hpp"

namespace raftfl::raft {

// How the leader judges a member.
enum class MemberHealth { kSelf, kHealthy, kBehind, kFailed };
const char* to_string(MemberHealth health);

// `health` and `match` (the member's replicated index) are asked of members of `config`.
std::optional<ConfChange> next_voter_change(const Configuration& config, std::size_t target,
                                            const std::function<MemberHealth(NodeId)>& health,
                                            const std::function<Index(NodeId)>& match);

}  // namespace raftfl::raft
