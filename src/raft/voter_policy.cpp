#include "raftfl/raft/voter_policy.hpp"

namespace raftfl::raft {

const char* to_string(MemberHealth health) {
  switch (health) {
    case MemberHealth::kSelf: return "self";
    case MemberHealth::kHealthy: return "healthy";
    case MemberHealth::kBehind: return "behind";
    case MemberHealth::kFailed: return "failed";
  }
  return "?";
}

MemberHealth judge_member(std::int64_t silent_ms, std::int64_t failure_timeout_ms, std::optional<Index> match,
                          Index leader_last) {
  if (failure_timeout_ms > 0 && silent_ms >= failure_timeout_ms) return MemberHealth::kFailed;
  if (!match || *match + kCaughtUpLag < leader_last) return MemberHealth::kBehind;
  return MemberHealth::kHealthy;
}

std::optional<ConfChange> next_voter_change(const Configuration& config, std::size_t target,
                                            const std::function<MemberHealth(NodeId)>& health,
                                            const std::function<Index(NodeId)>& match) {
  std::optional<NodeId> failed;
  for (NodeId v : config.voters) {
    if (health(v) == MemberHealth::kFailed) failed = v;
  }
  if (failed && config.voters.size() > target) return ConfChange{ConfChangeType::kDemoteVoter, *failed, ""};
  if (!failed && config.voters.size() >= target) return std::nullopt;
  // The most caught-up healthy learner takes a failed voter's place or fills a gap.
  std::optional<NodeId> best;
  Index best_match = 0;
  for (NodeId l : config.learners) {
    if (health(l) != MemberHealth::kHealthy) continue;
    const Index m = match(l);
    if (!best || m > best_match) {
      best = l;
      best_match = m;
    }
  }
  if (!best) return std::nullopt;
  return ConfChange{ConfChangeType::kPromoteLearner, *best, ""};
}

}  // namespace raftfl::raft
