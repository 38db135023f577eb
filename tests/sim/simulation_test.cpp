// The simulator must keep feeding the checker: a run that stops reporting some kind of
// observation would pass forever, so a normal run must feed every kind, and a run with a
// deliberate corruption must be caught by the invariant that corruption breaks.
#include "simulation.hpp"

#include <gtest/gtest.h>

namespace raftfl::sim {
namespace {

struct Runs {
  SimStats stats;
  CheckerCounts checked;
  std::size_t failed_seeds = 0;
  std::map<std::string, std::size_t> seeds_by_invariant;  // the first violation of each seed
};

Runs run_seeds(std::uint64_t first, std::uint64_t count, int voters, int learners, Sabotage sabotage) {
  Runs runs;
  for (std::uint64_t seed = first; seed < first + count; ++seed) {
    SimOptions o;
    o.seed = seed;
    o.voters = voters;
    o.learners = learners;
    o.sabotage = sabotage;
    SimResult r = run_simulation(o);
    runs.stats += r.stats;
    runs.checked += r.checked;
    if (!r.violations.empty()) {
      ++runs.failed_seeds;
      ++runs.seeds_by_invariant[r.violations.front().invariant];
    }
  }
  return runs;
}

TEST(Simulation, FeedsTheCheckerEveryKindOfObservation) {
  Runs runs = run_seeds(1, 8, 3, 1, Sabotage::kNone);
  EXPECT_EQ(runs.failed_seeds, 0u);
  const CheckerCounts& c = runs.checked;
  EXPECT_GT(c.leaders, 0u);
  EXPECT_GT(c.leader_checks, 0u);
  EXPECT_GT(c.log_entries, 0u);
  EXPECT_GT(c.truncations, 0u);
  EXPECT_GT(c.commits, 0u);
  EXPECT_GT(c.applies, 0u);
  EXPECT_GT(c.requests, 0u);
  EXPECT_GT(c.acknowledged, 0u);
  EXPECT_GT(c.reads_answered, 0u);
  EXPECT_GT(c.final_members, 0u);
  EXPECT_GT(c.final_requests, 0u);
  // Every index a node's commit passes is compared, not only where it stops.
  EXPECT_GT(c.commits, c.log_entries / 4);
  // Exactly-once is only tested if retries happen and some of them find their request
  // already executed.
  EXPECT_GT(runs.stats.retries, 0u);
  EXPECT_GT(runs.stats.duplicates, 0u);
  EXPECT_GT(runs.stats.aimed_crashes, 0u);
}

TEST(Simulation, CorruptedFollowerEntryBreaksLogMatching) {
  Runs runs = run_seeds(1, 4, 3, 0, Sabotage::kCorruptFollowerEntry);
  EXPECT_EQ(runs.seeds_by_invariant["log matching"], 4u);
}

TEST(Simulation, ExecutedRetriesBreakExactlyOnce) {
  Runs runs = run_seeds(1, 8, 3, 0, Sabotage::kExecuteDuplicates);
  EXPECT_GT(runs.seeds_by_invariant["client oracle"], 0u);
  EXPECT_EQ(runs.seeds_by_invariant["client oracle"], runs.failed_seeds);
}

TEST(Simulation, SnapshotsWithoutSessionsBreakExactlyOnce) {
  Runs runs = run_seeds(1, 16, 3, 0, Sabotage::kForgetSessions);
  EXPECT_GT(runs.seeds_by_invariant["client oracle"], 0u);
}

TEST(Simulation, MisreportedLeaderLogBreaksLeaderCompleteness) {
  Runs runs = run_seeds(1, 4, 3, 0, Sabotage::kMisreportLeaderLog);
  EXPECT_EQ(runs.seeds_by_invariant["leader completeness"], 4u);
}

}  // namespace
}  // namespace raftfl::sim
