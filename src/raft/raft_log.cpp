#include "raftfl/raft/raft_log.hpp"

#include <algorithm>
#include <string>

namespace raftfl::raft {

void RaftLog::reset(const SnapshotMeta& snapshot, std::vector<Entry> entries, Index commit, bool has_base) {
  if (!has_base && !entries.empty()) throw InvariantViolation("entries without a snapshot to follow");
  has_base_ = has_base;
  snapshot_index_ = snapshot.index;
  snapshot_term_ = snapshot.term;
  entries_.assign(std::make_move_iterator(entries.begin()), std::make_move_iterator(entries.end()));
  for (Index i = 0; i < entries_.size(); ++i) {
    if (entries_[i].index != snapshot_index_ + 1 + i)
      throw InvariantViolation("persisted entries are not contiguous after the snapshot");
  }
  committed_ = std::clamp(commit, snapshot_index_, last_index());
  applied_ = apply_handed_ = snapshot_index_;
  persisted_ = last_index();
  unstable_ = last_index() + 1;
}

std::optional<Term> RaftLog::term(Index index) const {
  if (!has_base_) return std::nullopt;
  if (index == snapshot_index_) return snapshot_term_;
  if (index < snapshot_index_ || index > last_index()) return std::nullopt;
  return entries_[index - first_index()].term;
}

Index RaftLog::append(Term t, EntryType type, Payload data) {
  Index index = last_index() + 1;
  entries_.push_back(Entry{t, index, type, std::move(data)});
  return index;
}

std::optional<Index> RaftLog::maybe_append(Index prev_index, Term prev_term, const std::vector<Entry>& entries,
                                           std::optional<Index>* truncated_at) {
  if (!matches(prev_index, prev_term)) return std::nullopt;
  Index last_new = prev_index + entries.size();
  for (const Entry& e : entries) {
    if (e.index <= snapshot_index_) continue;  // already covered by our snapshot
    auto existing = term(e.index);
    if (existing == e.term) continue;
    if (existing) {
      // Figure 2, AppendEntries step 3: a conflicting entry and all that follow it go.
      if (e.index <= committed_)
        throw InvariantViolation("AppendEntries conflicts with committed entry " + std::to_string(e.index));
      truncate_from(e.index);
      if (truncated_at) *truncated_at = e.index;
    }
    entries_.push_back(e);
  }
  return last_new;
}

void RaftLog::truncate_from(Index index) {
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(index - first_index()), entries_.end());
  unstable_ = std::min(unstable_, index);
  persisted_ = std::min(persisted_, index - 1);
}

Index RaftLog::find_conflict_by_term(Index index, Term t) const {
  index = std::min(index, last_index());
  while (index > snapshot_index_) {
    if (*term(index) <= t) return index;
    --index;
  }
  return index;
}

std::vector<Entry> RaftLog::entries_from(Index from, std::size_t max_count, std::size_t max_bytes) const {
  std::vector<Entry> out;
  if (from < first_index() || from > last_index()) return out;
  std::size_t bytes = 0;
  for (Index i = from; i <= last_index() && out.size() < max_count; ++i) {
    const Entry& e = entries_[i - first_index()];
    if (!out.empty() && bytes + e.data.size() > max_bytes) break;
    bytes += e.data.size();
    out.push_back(e);
  }
  return out;
}

void RaftLog::commit_to(Index index) {
  if (index <= committed_) return;
  if (index > last_index())
    throw InvariantViolation("commit " + std::to_string(index) + " beyond last index " + std::to_string(last_index()));
  committed_ = index;
}

void RaftLog::applied_to(Index index) {
  if (index <= applied_) return;
  if (index > committed_) throw InvariantViolation("applied beyond commit");
  applied_ = index;
}

std::vector<Entry> RaftLog::take_unstable() {
  std::vector<Entry> out;
  if (!has_unstable()) return out;
  out.reserve(last_index() - unstable_ + 1);
  for (Index i = unstable_; i <= last_index(); ++i) out.push_back(entries_[i - first_index()]);
  unstable_ = last_index() + 1;
  return out;
}

bool RaftLog::has_committed_to_apply() const {
  return std::min(committed_, persisted_) > std::max(apply_handed_, snapshot_index_);
}

std::vector<Entry> RaftLog::take_committed(std::size_t max_bytes) {
  std::vector<Entry> out;
  Index from = std::max(apply_handed_, snapshot_index_) + 1;
  Index to = std::min(committed_, persisted_);
  std::size_t bytes = 0;
  for (Index i = from; i <= to; ++i) {
    const Entry& e = entries_[i - first_index()];
    if (!out.empty() && bytes + e.data.size() > max_bytes) break;
    bytes += e.data.size();
    out.push_back(e);
  }
  if (!out.empty()) apply_handed_ = out.back().index;
  return out;
}

void RaftLog::persisted_to(Index index, Term t) {
  // A conflict may have replaced the entry since it was handed out: then it is not ours.
  if (matches(index, t) && index > persisted_) persisted_ = index;
}

void RaftLog::compact_to(Index index) {
  if (index <= snapshot_index_) return;
  if (index > applied_) throw InvariantViolation("compaction beyond the applied index");
  Term t = *term(index);
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(index - snapshot_index_));
  snapshot_index_ = index;
  snapshot_term_ = t;
}

void RaftLog::restore(const SnapshotMeta& snapshot) {
  has_base_ = true;
  restoring_ = true;
  entries_.clear();
  snapshot_index_ = snapshot.index;
  snapshot_term_ = snapshot.term;
  committed_ = snapshot.index;
  unstable_ = snapshot.index + 1;
  // Nothing here is durable until the driver stores the snapshot.
  persisted_ = 0;
  apply_handed_ = snapshot.index;
}

void RaftLog::snapshot_persisted() {
  restoring_ = false;
  persisted_ = std::max(persisted_, snapshot_index_);
  applied_ = std::max(applied_, snapshot_index_);
}

}  // namespace raftfl::raft
