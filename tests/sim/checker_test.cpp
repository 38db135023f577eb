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
  c.on_leader(1, 5);
  c.on_leader(1, 5);  // the same leader seen twice is fine
  c.on_leader(2, 6);
  EXPECT_TRUE(c.ok());
  c.on_leader(3, 6);
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
  c.check_leader_log(2, 3, 0, 4, hashes({0, 0x11, 0x22, 0x33, 0x44}));
  c.check_leader_log(3, 4, 5, 6, hashes({0, 0, 0, 0, 0, 0x55, 0x66}));
  // A leader of the same term as the commit is not bound by it (it may be stale news).
  c.check_leader_log(4, 2, 0, 1, hashes({0, 0x11}));
  EXPECT_TRUE(c.ok());

  Checker missing = c;
  missing.check_leader_log(5, 5, 0, 2, hashes({0, 0x11, 0x22}));
  EXPECT_TRUE(flagged(missing, "leader completeness"));

  Checker different = c;
  different.check_leader_log(5, 5, 0, 4, hashes({0, 0x11, 0x22, 0x99, 0x44}));
  EXPECT_TRUE(flagged(different, "leader completeness"));
}

TEST(Checker, LeaderCompletenessHoldsForAWholeLeadershipNotOnlyAtElection) {
  // A leader elected before anything committed is checked again after each event: once
  // an earlier term's commit is known, its log must hold that entry too.
  Checker c;
  c.on_leader(2, 4);
  c.check_leader_log(2, 4, 0, 2, hashes({0, 0x11, 0x22}));
  c.on_commit(1, 3, 2, 0x22);
  c.check_leader_log(2, 4, 0, 2, hashes({0, 0x11, 0x22}));
  EXPECT_TRUE(c.ok());
  c.on_commit(3, 3, 3, 0x33);
  c.check_leader_log(2, 4, 0, 2, hashes({0, 0x11, 0x22}));
  EXPECT_TRUE(flagged(c, "leader completeness"));
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

  // An entry applied must be the one committed at its index.
  Checker applied;
  applied.on_commit(1, 2, 5, 0x55);
  applied.on_apply(1, 5, 0x55);
  EXPECT_TRUE(applied.ok());
  applied.on_apply(2, 5, 0x56);
  EXPECT_TRUE(flagged(applied, "state machine safety"));
}

TEST(Checker, CommitsAreComparedAtEveryIndexTheyPass) {
  // Node 1 commits up to 5 one index at a time; node 2 jumps from 2 to 7. Reported only
  // where each stops, the two would never meet at one index; reported for every index
  // passed, they meet at 3, 4 and 5.
  Checker c;
  for (Index i = 1; i <= 5; ++i) c.on_commit(1, 2, i, 0x10 + i);
  for (Index i = 1; i <= 2; ++i) c.on_commit(2, 2, i, 0x10 + i);
  EXPECT_TRUE(c.ok());
  for (Index i = 3; i <= 7; ++i) c.on_commit(2, 3, i, 0x20 + i);
  EXPECT_TRUE(flagged(c, "state machine safety"));
  EXPECT_EQ(c.counts().commits, 12u);
}

TEST(Checker, ClientOracleWantsEveryAcknowledgedRequestExactlyOnceInOneOrder) {
  const ClientOp a{1, 1}, b{1, 2}, c{2, 1}, never{3, 1};
  Checker base;
  for (ClientOp op : {a, b, c}) base.on_request(op);
  base.on_acknowledged(a);
  base.on_acknowledged(b);

  Checker good = base;
  good.check_final({{1, {a, b, c}}, {2, {a, b, c}}});  // c executed without an ack: fine
  EXPECT_TRUE(good.ok());
  EXPECT_EQ(good.counts().final_members, 2u);
  EXPECT_EQ(good.counts().final_requests, 6u);

  Checker lost = base;
  lost.check_final({{1, {a, b}}, {2, {a}}});
  EXPECT_TRUE(flagged(lost, "client oracle"));

  // A retry executed again: what client sessions exist to prevent.
  Checker twice = base;
  twice.check_final({{1, {a, b, a}}, {2, {a, b, a}}});
  EXPECT_TRUE(flagged(twice, "client oracle"));

  Checker reordered = base;
  reordered.check_final({{1, {a, b}}, {2, {b, a}}});
  EXPECT_TRUE(flagged(reordered, "client oracle"));

  Checker invented = base;
  invented.check_final({{1, {a, b, never}}, {2, {a, b, never}}});
  EXPECT_TRUE(flagged(invented, "client oracle"));

  Checker unasked;
  unasked.on_acknowledged(never);
  EXPECT_TRUE(flagged(unasked, "client oracle"));
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
