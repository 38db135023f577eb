#include "raftfl/raft/progress.hpp"

#include <algorithm>

namespace raftfl::raft {

void Inflights::add(Index last) {
  ring_[(start_ + count_) % ring_.size()] = last;
  ++count_;
}

void Inflights::free_to(Index index) {
  while (count_ > 0 && ring_[start_] <= index) {
    start_ = (start_ + 1) % ring_.size();
    --count_;
  }
}

void Inflights::free_first() {
  if (count_ == 0) return;
  start_ = (start_ + 1) % ring_.size();
  --count_;
}

const char* to_string(ProgressState state) {
  switch (state) {
    case ProgressState::kProbe: return "probe";
    case ProgressState::kReplicate: return "replicate";
    case ProgressState::kSnapshot: return "snapshot";
  }
  return "?";
}

bool Progress::paused() const {
  switch (state) {
    case ProgressState::kProbe: return probe_sent;
    case ProgressState::kReplicate: return inflights.full();
    case ProgressState::kSnapshot: return true;
  }
  return true;
}

void Progress::become_probe() {
  // After a snapshot the follower holds at least the snapshot: probe just past it.
  if (state == ProgressState::kSnapshot) {
    next = std::max(match + 1, pending_snapshot + 1);
  } else {
    next = match + 1;
  }
  state = ProgressState::kProbe;
  probe_sent = false;
  pending_snapshot = 0;
  inflights.reset();
}

void Progress::become_replicate() {
  state = ProgressState::kReplicate;
  next = match + 1;
  probe_sent = false;
  pending_snapshot = 0;
  inflights.reset();
}

void Progress::become_snapshot(Index snapshot_index) {
  state = ProgressState::kSnapshot;
  pending_snapshot = snapshot_index;
  snapshot_ticks = 0;
  probe_sent = false;
  inflights.reset();
}

bool Progress::maybe_update(Index index) {
  bool updated = false;
  if (index > match) {
    match = index;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, index + 1);
  return updated;
}

bool Progress::maybe_decrease_to(Index rejected, Index probe_from) {
  if (state == ProgressState::kReplicate) {
    // A rejection of something already matched is a stale, reordered answer.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // In probe state only the answer to the last probe counts.
  if (next == 0 || next - 1 != rejected) return false;
  next = std::max<Index>(std::min(rejected, probe_from + 1), match + 1);
  probe_sent = false;
  return true;
}

void Progress::forget_match(Index rejected) {
  match = 0;
  state = ProgressState::kProbe;
  next = rejected + 1;
  probe_sent = false;
  pending_snapshot = 0;
  inflights.reset();
}

}  // namespace raftfl::raft
