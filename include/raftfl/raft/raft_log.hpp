#pragma once

#include <deque>
#include <optional>
#include <vector>

#include "raftfl/raft/message.hpp"

namespace raftfl::raft {

// The in-memory log of one node: the entries after its latest snapshot, and the indexes
// that mark how far they have been handed to the driver, made durable, committed and
// applied. Always: applied <= committed, persisted <= last_index, and
// snapshot_index <= applied except while a received snapshot is being restored.
class RaftLog {
 public:
  RaftLog() = default;

  // Starts from durable state. Without a base (`has_base` false) the node has never held
  // any state, not even the bootstrap configuration: it matches nothing until a snapshot
  // arrives. That is how a joining node starts.
  void reset(const SnapshotMeta& snapshot, std::vector<Entry> entries, Index commit, bool has_base);
  bool has_base() const { return has_base_; }

  Index snapshot_index() const { return snapshot_index_; }
  Term snapshot_term() const { return snapshot_term_; }
  Index first_index() const { return snapshot_index_ + 1; }
  Index last_index() const { return snapshot_index_ + entries_.size(); }
  Term last_term() const { return term(last_index()).value_or(0); }
  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  Index persisted() const { return persisted_; }

  // nullopt for an index compacted away or beyond the end.
  std::optional<Term> term(Index index) const;
  bool matches(Index index, Term t) const { return term(index) == t; }
  const Entry& at(Index index) const { return entries_[index - first_index()]; }

  // Section 5.4.1: is a log ending at (index, term) at least as up to date as this one?
  bool is_up_to_date(Index index, Term t) const {
    return t > last_term() || (t == last_term() && index >= last_index());
  }

  // Leader side: append new entries of the current term.
  Index append(Term t, EntryType type, Payload data);

  // Follower side (AppendEntries receiver, Figure 2 steps 2-4): if the log holds
  // (prev_index, prev_term), drop what conflicts with `entries`, append the rest and
  // return the index of the last new entry; nullopt if it does not hold prev.
  // `truncated_at` receives the first index removed by a conflict, if any.
  std::optional<Index> maybe_append(Index prev_index, Term prev_term, const std::vector<Entry>& entries,
                                    std::optional<Index>* truncated_at);

  // The largest index <= `index` whose term is <= `t`: where a follower's log and the
  // leader's can first agree (fast backtracking with conflict hints).
  Index find_conflict_by_term(Index index, Term t) const;

  // At most `max_count` entries from `from` whose payloads add up to at most `max_bytes`
  // (always at least one when any exist).
  std::vector<Entry> entries_from(Index from, std::size_t max_count, std::size_t max_bytes) const;

  void commit_to(Index index);
  void applied_to(Index index);

  // Entries not yet handed out for persisting, marked handed out.
  std::vector<Entry> take_unstable();
  bool has_unstable() const { return unstable_ <= last_index(); }
  // Committed entries not yet handed out for applying, up to what is durable here.
  std::vector<Entry> take_committed(std::size_t max_bytes);
  bool has_committed_to_apply() const;
  // The driver made entries up to (index, t) durable.
  void persisted_to(Index index, Term t);

  // Drops every entry up to `index` (which must be applied) and makes it the snapshot point.
  void compact_to(Index index);
  // Replaces the whole log with a received snapshot; persisted and applied follow
  // once the driver has stored and installed it (snapshot_persisted()).
  void restore(const SnapshotMeta& snapshot);
  void snapshot_persisted();
  // A received snapshot replaced the log but is not yet stored and installed.
  bool restoring() const { return restoring_; }

 private:
  void truncate_from(Index index);

  bool has_base_ = true;
  bool restoring_ = false;
  Index snapshot_index_ = 0;
  Term snapshot_term_ = 0;
  std::deque<Entry> entries_;  // entries_[0] has index snapshot_index_ + 1
  Index committed_ = 0;
  Index applied_ = 0;
  Index apply_handed_ = 0;  // committed entries handed to the driver, maybe not yet applied
  Index persisted_ = 0;
  Index unstable_ = 1;  // first entry not yet handed to the driver to persist
};

}  // namespace raftfl::raft
