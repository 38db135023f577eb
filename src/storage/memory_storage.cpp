#include <algorithm>

#include "raftfl/storage/storage.hpp"

namespace raftfl::storage {

void MemoryStorage::save(const std::shared_ptr<const raft::Snapshot>& snapshot, const std::vector<raft::Entry>& entries,
                         const raft::HardState* hard_state) {
  if (snapshot) {
    state_.snapshot = snapshot;
    state_.entries.clear();
  }
  if (!entries.empty()) {
    raft::Index base = state_.snapshot ? state_.snapshot->meta.index : 0;
    raft::Index first = entries.front().index;
    if (first <= base) throw std::invalid_argument("entries overlap the snapshot");
    std::size_t keep = std::min<std::size_t>(state_.entries.size(), first - base - 1);
    if (keep < first - base - 1) throw std::invalid_argument("entries leave a gap in the log");
    state_.entries.resize(keep);
    state_.entries.insert(state_.entries.end(), entries.begin(), entries.end());
  }
  if (hard_state) state_.hard_state = *hard_state;
}

void MemoryStorage::compact(const std::shared_ptr<const raft::Snapshot>& snapshot) {
  raft::Index base = state_.snapshot ? state_.snapshot->meta.index : 0;
  if (snapshot->meta.index <= base) return;
  std::size_t drop = std::min<std::size_t>(state_.entries.size(), snapshot->meta.index - base);
  state_.entries.erase(state_.entries.begin(), state_.entries.begin() + static_cast<std::ptrdiff_t>(drop));
  state_.snapshot = snapshot;
}

}  // namespace raftfl::storage
