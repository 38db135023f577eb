// RaftLog on its own: the AppendEntries receiver rules of Figure 2 and the bookkeeping
// of what is durable, committed and applied.
#include <gtest/gtest.h>

#include "raftfl/raft/raft_log.hpp"
#include "test_cluster.hpp"

namespace raftfl::raft::test {
namespace {

std::vector<Entry> entries(Index first, const std::vector<Term>& terms) {
  std::vector<Entry> out;
  for (std::size_t i = 0; i < terms.size(); ++i) {
    out.push_back(Entry{terms[i], first + i, EntryType::kNormal, Payload("x")});
  }
  return out;
}

// A durable log holding one entry per term in `terms`, from index 1, committed to `commit`.
RaftLog make_log(const std::vector<Term>& terms, Index commit = 0) {
  RaftLog log;
  log.reset(SnapshotMeta{}, entries(1, terms), commit, true);
  return log;
}

TEST(RaftLog, AppendRejectsWhenThePreviousEntryDoesNotMatch) {
  RaftLog log = make_log({1, 1, 2});
  std::optional<Index> truncated;
  EXPECT_FALSE(log.maybe_append(3, 1, entries(4, {3}), &truncated).has_value());  // term differs
  EXPECT_FALSE(log.maybe_append(4, 2, entries(5, {3}), &truncated).has_value());  // beyond the end
  EXPECT_EQ(log_terms(log), (std::vector<Term>{1, 1, 2}));
  EXPECT_FALSE(truncated.has_value());
}

TEST(RaftLog, AppendDropsAConflictingSuffixAndKeepsMatchingEntries) {
  RaftLog log = make_log({1, 1, 2, 2, 2}, 2);
  std::optional<Index> truncated;
  // Entry 3 matches and stays; entry 4 conflicts: it and everything after it go.
  auto last = log.maybe_append(2, 1, entries(3, {2, 3}), &truncated);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 4u);
  ASSERT_TRUE(truncated.has_value());
  EXPECT_EQ(*truncated, 4u);
  EXPECT_EQ(log_terms(log), (std::vector<Term>{1, 1, 2, 3}));
  EXPECT_EQ(log.persisted(), 3u);  // the replaced entry is no longer durable
}

TEST(RaftLog, AStaleShorterAppendDoesNotTruncateMatchingEntries) {
  RaftLog log = make_log({1, 1, 2, 2});
  std::optional<Index> truncated;
  auto last = log.maybe_append(1, 1, entries(2, {1}), &truncated);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 2u);
  EXPECT_EQ(log.last_index(), 4u);
  EXPECT_FALSE(truncated.has_value());
}

TEST(RaftLog, ConflictWithACommittedEntryIsAnInvariantViolation) {
  RaftLog log = make_log({1, 1, 2}, 3);
  EXPECT_THROW(log.maybe_append(1, 1, entries(2, {3}), nullptr), InvariantViolation);
}

TEST(RaftLog, FindConflictByTermSkipsWholeTerms) {
  // Figure 7's follower (f).
  RaftLog log = make_log({1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3});
  EXPECT_EQ(log.find_conflict_by_term(10, 6), 10u);
  EXPECT_EQ(log.find_conflict_by_term(10, 2), 6u);
  EXPECT_EQ(log.find_conflict_by_term(10, 1), 3u);
  EXPECT_EQ(log.find_conflict_by_term(10, 0), 0u);
  EXPECT_EQ(log.find_conflict_by_term(20, 3), 11u);  // clamped to the last index
}

TEST(RaftLog, UpToDateComparesLastTermThenLength) {
  RaftLog log = make_log({1, 2, 2});
  EXPECT_TRUE(log.is_up_to_date(1, 3));   // later last term wins however short
  EXPECT_TRUE(log.is_up_to_date(3, 2));   // same term, as long
  EXPECT_FALSE(log.is_up_to_date(2, 2));  // same term, shorter
  EXPECT_FALSE(log.is_up_to_date(9, 1));  // earlier last term loses however long
}

TEST(RaftLog, EntriesFromHonoursCountAndBytesButReturnsAtLeastOne) {
  RaftLog log;
  std::vector<Entry> es;
  for (Index i = 1; i <= 5; ++i) es.push_back(Entry{1, i, EntryType::kNormal, Payload(std::string(10, 'x'))});
  log.reset(SnapshotMeta{}, es, 0, true);
  EXPECT_EQ(log.entries_from(1, 3, 1000).size(), 3u);
  EXPECT_EQ(log.entries_from(1, 100, 25).size(), 2u);
  EXPECT_EQ(log.entries_from(1, 100, 1).size(), 1u);  // an oversized entry still goes alone
  EXPECT_EQ(log.entries_from(4, 100, 1000).size(), 2u);
  EXPECT_TRUE(log.entries_from(6, 100, 1000).empty());
}

TEST(RaftLog, CommittedEntriesAreHandedOutOnlyOnceDurable) {
  RaftLog log = make_log({1});
  log.append(1, EntryType::kNormal, Payload("a"));
  log.append(1, EntryType::kNormal, Payload("b"));
  log.commit_to(3);
  // Entries 2 and 3 are committed (by others) but not yet on our disk.
  std::vector<Entry> first = log.take_committed(1 << 20);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].index, 1u);
  std::vector<Entry> unstable = log.take_unstable();
  ASSERT_EQ(unstable.size(), 2u);
  EXPECT_FALSE(log.has_committed_to_apply());
  log.persisted_to(3, 1);
  EXPECT_EQ(log.take_committed(1 << 20).size(), 2u);
  EXPECT_THROW(log.commit_to(4), InvariantViolation);
}

TEST(RaftLog, CompactionKeepsTheTermOfTheSnapshotPoint) {
  RaftLog log = make_log({1, 1, 2, 3}, 4);
  log.applied_to(3);
  EXPECT_THROW(log.compact_to(4), InvariantViolation);  // not applied yet
  log.compact_to(3);
  EXPECT_EQ(log.snapshot_index(), 3u);
  EXPECT_EQ(log.first_index(), 4u);
  EXPECT_EQ(log.term(3), 2u);
  EXPECT_FALSE(log.term(2).has_value());
  EXPECT_EQ(log.term(4), 3u);
}

TEST(RaftLog, LogWithoutABaseMatchesNothingUntilASnapshotArrives) {
  RaftLog log;
  log.reset(SnapshotMeta{}, {}, 0, false);
  EXPECT_FALSE(log.matches(0, 0));
  EXPECT_FALSE(log.maybe_append(0, 0, entries(1, {1}), nullptr).has_value());

  SnapshotMeta meta;
  meta.index = 5;
  meta.term = 2;
  log.restore(meta);
  EXPECT_TRUE(log.matches(5, 2));
  EXPECT_EQ(log.committed(), 5u);
  EXPECT_EQ(log.persisted(), 0u);  // not durable until the driver stores it
  log.snapshot_persisted();
  EXPECT_EQ(log.persisted(), 5u);
  EXPECT_EQ(log.applied(), 5u);
}

}  // namespace
}  // namespace raftfl::raft::test
