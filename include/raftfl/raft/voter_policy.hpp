#pragma once

// Which voter change a leader makes to keep `target` healthy voters (README, "Growing a
// cluster"): promote the most caught-up healthy learner while voters are short, replace a
// failed voter (promote first, then demote the failed one to learner, so that the voter
// count never drops while a quorum depends on it), never demote a healthy voter. One
// change at a time; pure, so that the node and the simulator run the same rules.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "raftfl/raft/configuration.hpp"
#include "raftfl/raft/types.hpp"

namespace raftfl::raft {

// How the leader judges a member.
enum class MemberHealth { kSelf, kHealthy, kBehind, kFailed };
const char* to_string(MemberHealth health);

// A learner whose log is this close to the leader's is caught up: promoted, it does not
// hold back commits while it fetches the rest.
inline constexpr Index kCaughtUpLag = 64;

// Another member's health: failed when silent for `failure_timeout_ms` or longer (0: never
// failed), behind when the leader tracks no progress for it (`match` empty) or its log is
// more than kCaughtUpLag entries short of `leader_last`, healthy otherwise.
MemberHealth judge_member(std::int64_t silent_ms, std::int64_t failure_timeout_ms, std::optional<Index> match,
                          Index leader_last);

// `health` and `match` (the member's replicated index) are asked of members of `config`.
std::optional<ConfChange> next_voter_change(const Configuration& config, std::size_t target,
                                            const std::function<MemberHealth(NodeId)>& health,
                                            const std::function<Index(NodeId)>& match);

}  // namespace raftfl::raft
