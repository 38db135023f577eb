// The checker must flag each broken invariant in a hand-made history, and stay quiet on
// the correct version of the same history: a checker that cannot fail proves nothing.
#include "checker.hpp"

#include <gtest/gtest.h>

namespace raftfl::sim {
namespace {

bool flagged(const Checker& c, const std::string& invariant) {
  for (const Violation& v : c.violations()) {
    if (v.invariant == invariant) return true;
  }
  return false;
}

auto hashes(std::vector<std::uint64_t> by_index) {
  return [by_index](Index i) { return by_index.at(i); };
}

TEST(Checker, TwoLeadersInOneTermBreakElectionSafety) {
  Checker c;
  c.on_leader(1, 5, 0, 0, hashes({0}));
  c.on_leader(1, 5, 0, 0, hashes({0}));  // the same leader seen twice is fine
  c.on_leader(2, 6, 0, 0, hashes({0}));
  EXPECT_TRUE(c.ok());
  c.on_leader(3, 6, 0, 0, hashes({0}));
  EXPECT_TRUE(flagged(c, "election safety"));
}

TEST(Checker, SameIndexAndTermWithDifferentPrefixBreaksLogMatching) {
  Checker c;
  c.on_log_entry(1, 3, 2, 0xaaa);
  c.on_log_entry(2, 3, 2, 0xaaa);
  c.on_log_entry(2, 4, 3, 0xbbb);
  EXPECT_TRUE(c.ok());
  c.on_log_entry(3, 3, 2, 0xccc);
  EXPECT_TRUE(flagged(c, "log matching"));
}

TEST(Checker, LeaderLosingEntriesBreaksAppendOnly) {
  Checker c;
  c.on_log_truncated(2, 7, /*was_leader=*/false, 3);  // followers may lose uncommitted entries
  EXPECT_TRUE(c.ok());
  c.on_log_truncated(1, 7, /*was_leader=*/true, 3);
  EXPECT_TRUE(flagged(c, "leader append-only"));
}

TEST(Checker, LeaderWithoutAnEarlierCommittedEntryBreaksCompleteness) {
  Checker c;
  c.on_commit(1, /*term=*/2, /*index=*/3, 0x33);
  // A later leader holding the same entry at 3 is fine; so is one whose snapshot covers it.
  c.on_leader(2, 3, 0, 4, hashes({0, 0x11, 0x22, 0x33, 0x44}));
  c.on_leader(3, 4, 5, 6, hashes({0, 0, 0, 0, 0, 0x55, 0x66}));
  // A leader of the same term as the commit is not bound by it (it may be stale news).
  c.on_leader(4, 2, 0, 1, hashes({0, 0x11}));
  EXPECT_TRUE(c.ok());

  Checker missing = c;
  missing.on_leader(5, 5, 0, 2, hashes({0, 0x11, 0x22}));
  EXPECT_TRUE(flagged(missing, "leader completeness"));

  Checker different = c;
  different.on_leader(5, 5, 0, 4, hashes({0, 0x11, 0x22, 0x99, 0x44}));
  EXPECT_TRUE(flagged(different, "leader completeness"));
}

TEST(Checker, DifferentEntriesAppliedAtOneIndexBreakStateMachineSafety) {
  Checker c;
  c.on_apply(1, 4, 0x44);
  c.on_apply(2, 4, 0x44);
  EXPECT_TRUE(c.ok());
  c.on_apply(3, 4, 0x45);
  EXPECT_TRUE(flagged(c, "state machine safety"));

  Checker commits;
  commits.on_commit(1, 2, 4, 0x44);
  commits.on_commit(2, 2, 4, 0x44);
  EXPECT_TRUE(commits.ok());
  commits.on_commit(3, 3, 4, 0x46);
  EXPECT_TRUE(flagged(commits, "state machine safety"));
}

TEST(Checker, ClientOracleWantsEveryAcknowledgedProposalExactlyOnceInOneOrder) {
  Checker base;
  base.on_acknowledged(7);
  base.on_acknowledged(8);

  Checker good = base;
  good.check_final({{1, {7, 8, 9}}, {2, {7, 8, 9}}});  // 9 committed without an ack: fine
  EXPECT_TRUE(good.ok());

  Checker lost = base;
  lost.check_final({{1, {7, 8}}, {2, {7}}});
  EXPECT_TRUE(flagged(lost, "client oracle"));

  Checker twice = base;
  twice.check_final({{1, {7, 8, 7}}, {2, {7, 8, 7}}});
  EXPECT_TRUE(flagged(twice, "client oracle"));

  Checker reordered = base;
  reordered.check_final({{1, {7, 8}}, {2, {8, 7}}});
  EXPECT_TRUE(flagged(reordered, "client oracle"));
}

TEST(Checker, ReadIndexBelowAnAcknowledgedWriteIsStale) {
  Checker c;
  c.on_read_issued(1, 10);
  c.on_read_answered(2, 1, 10);
  c.on_read_answered(2, 1, 12);
  EXPECT_TRUE(c.ok());
  c.on_read_answered(3, 1, 9);
  EXPECT_TRUE(flagged(c, "linearizable read"));

  Checker unknown;
  unknown.on_read_answered(1, 42, 5);
  EXPECT_TRUE(flagged(unknown, "linearizable read"));
}

TEST(Checker, LivenessAndEngineFailuresAreViolations) {
  Checker c;
  c.on_liveness_failure("no leader");
  EXPECT_TRUE(flagged(c, "liveness"));
  Checker e;
  e.on_engine_error("commit beyond last index");
  EXPECT_TRUE(flagged(e, "engine invariant"));
}

}  // namespace
}  // namespace raftfl::sim
