// The chaos run's schedule: replayable from its seed, every kind of fault in it, spread
// inside the run and never in its quiet tail.
#include "chaos_schedule.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <stdexcept>

namespace raftfl::app {
namespace {

TEST(ChaosSchedule, TheSameSeedGivesTheSameScheduleAndAnotherSeedAnother) {
  const ChaosShape shape;
  EXPECT_EQ(chaos_schedule(7, shape), chaos_schedule(7, shape));
  EXPECT_NE(chaos_schedule(7, shape), chaos_schedule(8, shape));
}

TEST(ChaosSchedule, HoldsEveryFaultOnceOrTwiceInsideTheRun) {
  ChaosShape shape;
  shape.rounds = 150;
  shape.quiet_tail = 10;
  shape.first_joiner = 9;
  shape.failure_timeout_s = 1.0;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    const auto events = chaos_schedule(seed, shape);
    std::map<ChaosKind, int> count;
    std::set<std::uint64_t> joiners;
    std::uint64_t previous = 0;
    for (const auto& e : events) {
      ++count[e.kind];
      EXPECT_GE(e.after_round, 15u) << "seed " << seed;
      EXPECT_LE(e.after_round, shape.rounds - shape.quiet_tail - 15) << "seed " << seed;
      EXPECT_GT(e.after_round, previous) << "seed " << seed << ": events in order, one per round";
      previous = e.after_round;
      if (e.kind == ChaosKind::kPause) {
        EXPECT_GT(e.seconds, shape.failure_timeout_s) << "seed " << seed;
      }
      if (e.kind == ChaosKind::kJoin) joiners.insert(e.node);
      if (e.kind == ChaosKind::kKillLeader || e.kind == ChaosKind::kKillVoter || e.kind == ChaosKind::kKillLearner) {
        EXPECT_GE(e.rounds, 3u);
      }
      if (e.kind != ChaosKind::kJoin && e.kind != ChaosKind::kLeave) {
        // Faults come early enough that a restarted process trains again before the end.
        EXPECT_LE(e.after_round, 15 + (shape.rounds - shape.quiet_tail - 30) * 2 / 3) << "seed " << seed;
      }
      EXPECT_FALSE(describe(e).empty());
    }
    EXPECT_EQ(count[ChaosKind::kKillLeader], 1);
    EXPECT_EQ(count[ChaosKind::kKillVoter], 1);
    EXPECT_EQ(count[ChaosKind::kKillLearner], 1);
    EXPECT_EQ(count[ChaosKind::kPause], 2);
    EXPECT_EQ(count[ChaosKind::kJoin], 2);
    EXPECT_EQ(count[ChaosKind::kLeave], 2);
    EXPECT_EQ(joiners, (std::set<std::uint64_t>{9, 10}));
  }
}

TEST(ChaosSchedule, ARunTooShortForItsEventsIsRefused) {
  ChaosShape shape;
  shape.rounds = 60;
  shape.quiet_tail = 10;
  EXPECT_THROW(chaos_schedule(1, shape), std::invalid_argument);
}

}  // namespace
}  // namespace raftfl::app
