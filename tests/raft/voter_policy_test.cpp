// The leader's voter policy: promote the most caught-up healthy learner while voters are
// short, replace a failed voter by promoting first and demoting it after, never demote a
// healthy voter.
#include "raftfl/raft/voter_policy.hpp"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <vector>

namespace raftfl::raft {
namespace {

struct View {
  std::map<NodeId, MemberHealth> health;
  std::map<NodeId, Index> match;
  std::optional<ConfChange> next(const Configuration& c, std::size_t target) const {
    return next_voter_change(
        c, target, [&](NodeId id) { return health.count(id) ? health.at(id) : MemberHealth::kHealthy; },
        [&](NodeId id) { return match.count(id) ? match.at(id) : Index{0}; });
  }
};

Configuration config(std::vector<NodeId> voters, std::vector<NodeId> learners) {
  Configuration c;
  c.voters = std::move(voters);
  c.learners = std::move(learners);
  return c;
}

TEST(VoterPolicy, PromotesTheMostCaughtUpHealthyLearnerWhileVotersAreShort) {
  View v;
  v.match = {{4, 90}, {5, 120}, {6, 200}};
  v.health = {{1, MemberHealth::kSelf}, {6, MemberHealth::kBehind}};
  const auto change = v.next(config({1}, {4, 5, 6}), 3);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->type, ConfChangeType::kPromoteLearner);
  EXPECT_EQ(change->node, 5u) << "node 6 is further but behind";
  EXPECT_FALSE(v.next(config({1, 2, 3}, {4, 5}), 3)) << "enough healthy voters";
  EXPECT_FALSE(v.next(config({1, 2, 3, 4, 5}, {}), 3)) << "a healthy voter is never demoted";
}

TEST(VoterPolicy, AFailedVoterIsReplacedPromoteFirstThenDemote) {
  View v;
  v.health = {{1, MemberHealth::kSelf}, {2, MemberHealth::kFailed}};
  v.match = {{4, 10}};
  auto change = v.next(config({1, 2, 3}, {4}), 3);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->type, ConfChangeType::kPromoteLearner);
  EXPECT_EQ(change->node, 4u);
  change = v.next(config({1, 2, 3, 4}, {}), 3);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->type, ConfChangeType::kDemoteVoter);
  EXPECT_EQ(change->node, 2u);
  // No healthy learner to take its place: the failed voter stays (demoting it would leave
  // the quorum smaller, not safer).
  v.health[4] = MemberHealth::kFailed;
  EXPECT_FALSE(v.next(config({1, 2, 3}, {4}), 3));
}

}  // namespace
}  // namespace raftfl::raft
