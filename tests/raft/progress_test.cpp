// The leader's view of one follower: flow control and the probe/replicate/snapshot states.
#include <gtest/gtest.h>

#include "raftfl/raft/progress.hpp"

namespace raftfl::raft {
namespace {

TEST(Inflights, FillsUpAndFreesInOrderAcrossTheRingsWrap) {
  Inflights in(3);
  in.add(5);
  in.add(7);
  in.add(9);
  EXPECT_TRUE(in.full());
  in.free_to(6);  // frees 5 only
  EXPECT_EQ(in.count(), 2u);
  in.add(11);  // wraps around
  EXPECT_TRUE(in.full());
  in.free_to(10);
  EXPECT_EQ(in.count(), 1u);
  in.free_first();
  EXPECT_EQ(in.count(), 0u);
  in.free_first();  // nothing left: harmless
  EXPECT_EQ(in.count(), 0u);
}

TEST(Progress, PausedMeansOneProbeOrAFullWindowOrASnapshotInFlight) {
  Progress pr(5, 2);
  EXPECT_FALSE(pr.paused());
  pr.probe_sent = true;
  EXPECT_TRUE(pr.paused());

  pr.match = 4;
  pr.become_replicate();
  EXPECT_EQ(pr.next, 5u);
  EXPECT_FALSE(pr.paused());
  pr.inflights.add(5);
  pr.inflights.add(6);
  EXPECT_TRUE(pr.paused());

  pr.become_snapshot(10);
  EXPECT_TRUE(pr.paused());
}

TEST(Progress, ProbeRejectionUsesTheHintButNeverGoesBelowMatch) {
  Progress pr(11, 4);
  pr.match = 2;
  pr.probe_sent = true;
  // A rejection of some earlier probe is stale.
  EXPECT_FALSE(pr.maybe_decrease_to(7, 3));
  EXPECT_EQ(pr.next, 11u);
  // The answer to the last probe (prev index 10): the logs may agree at 5.
  EXPECT_TRUE(pr.maybe_decrease_to(10, 5));
  EXPECT_EQ(pr.next, 6u);
  EXPECT_FALSE(pr.probe_sent);
  // A hint below what is known to match is clamped.
  EXPECT_TRUE(pr.maybe_decrease_to(5, 0));
  EXPECT_EQ(pr.next, 3u);
}

TEST(Progress, ReplicateRejectionFallsBackToMatchUnlessStale) {
  Progress pr(1, 4);
  pr.match = 5;
  pr.become_replicate();
  pr.optimistic_update(9);
  EXPECT_FALSE(pr.maybe_decrease_to(4, 0));  // already matched: a reordered answer
  EXPECT_EQ(pr.next, 10u);
  EXPECT_TRUE(pr.maybe_decrease_to(9, 7));
  EXPECT_EQ(pr.next, 6u);
}

TEST(Progress, UpdateMovesMatchForwardOnly) {
  Progress pr(1, 4);
  EXPECT_TRUE(pr.maybe_update(5));
  EXPECT_EQ(pr.match, 5u);
  EXPECT_EQ(pr.next, 6u);
  EXPECT_FALSE(pr.maybe_update(3));
  EXPECT_EQ(pr.match, 5u);
  EXPECT_EQ(pr.next, 6u);
}

TEST(Progress, AfterASnapshotProbingStartsPastIt) {
  Progress pr(1, 4);
  pr.match = 3;
  pr.become_snapshot(20);
  pr.become_probe();
  EXPECT_EQ(pr.state, ProgressState::kProbe);
  EXPECT_EQ(pr.next, 21u);
}

}  // namespace
}  // namespace raftfl::raft
