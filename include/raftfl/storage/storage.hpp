#pragma once

#include <memory>
#include <vector>

#include "raftfl/raft/raft.hpp"

namespace raftfl::storage {

// Durable Raft state behind one interface: the write-ahead log on disk for real nodes,
// memory for tests and benchmarks. save() is the persist step of the engine's Ready
// contract: when it returns, everything it was given is durable.
class Storage {
 public:
  virtual ~Storage() = default;

  // What a restart hands the engine.
  virtual raft::PersistedState load() = 0;
  // A Ready's writes, in the contract's order: `snapshot` (replacing the whole log) if
  // set, then `entries` (dropping any stored entry at or above the first), then
  // `hard_state` if set. One durability barrier covers all of it.
  virtual void save(const std::shared_ptr<const raft::Snapshot>& snapshot, const std::vector<raft::Entry>& entries,
                    const raft::HardState* hard_state) = 0;
  // The application took `snapshot` (Raft::compact): store it, then drop the log before it.
  virtual void compact(const std::shared_ptr<const raft::Snapshot>& snapshot) = 0;
};

// Keeps everything in memory: durable only as long as the process lives.
class MemoryStorage final : public Storage {
 public:
  explicit MemoryStorage(raft::PersistedState initial = {}) : state_(std::move(initial)) {}
  raft::PersistedState load() override { return state_; }
  // The state without a copy (load() copies the log).
  const raft::PersistedState& state() const { return state_; }
  void save(const std::shared_ptr<const raft::Snapshot>& snapshot, const std::vector<raft::Entry>& entries,
            const raft::HardState* hard_state) override;
  void compact(const std::shared_ptr<const raft::Snapshot>& snapshot) override;

 private:
  raft::PersistedState state_;
};

}  // namespace raftfl::storage
