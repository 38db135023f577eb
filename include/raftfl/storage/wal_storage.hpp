#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>

#include "raftfl/storage/storage.hpp"

namespace raftfl::storage {

// The data directory is damaged in a way recovery must not paper over: a bad record in the
// middle of the log, or an unreadable snapshot. The message names the file and offset.
class CorruptionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Durable Raft state in a directory: a segmented write-ahead log of checksummed records
// (entries and hard states, XXH3-64) under wal/, and checksummed snapshot files under
// snap/. One save() is one write and one fdatasync (group commit: the driver hands it a
// whole Ready). Truncation needs no rewrite: a record for an index at or below the last
// one replaces the log from there on when the log is replayed.
//
// Recovery cuts a torn or zero-filled tail of the newest segment back to its last good
// record; a bad record anywhere else throws CorruptionError.
class WalStorage final : public Storage {
 public:
  struct Options {
    std::size_t segment_bytes = 64 << 20;  // a new segment starts past this size
  };

  // Opens (creating if needed) the directory and recovers its state.
  WalStorage(std::filesystem::path dir, Options options);
  ~WalStorage() override;
  WalStorage(const WalStorage&) = delete;
  WalStorage& operator=(const WalStorage&) = delete;

  raft::PersistedState load() override { return memory_.load(); }
  void save(const std::shared_ptr<const raft::Snapshot>& snapshot, const std::vector<raft::Entry>& entries,
            const raft::HardState* hard_state) override;
  void compact(const std::shared_ptr<const raft::Snapshot>& snapshot) override;

  // What recovery did, for logs and tests.
  std::uint64_t recovered_torn_bytes() const { return torn_bytes_; }

 private:
  void recover();
  void replay_segment(const std::filesystem::path& file, bool newest);
  // `wal_from`: the first segment that continues this snapshot's log (0: all of them).
  void write_snapshot(const raft::Snapshot& snapshot, std::uint64_t wal_from);
  void start_segment();
  void append(const std::string& records);
  void drop_segments_up_to(raft::Index index);

  std::filesystem::path dir_;
  Options options_;
  MemoryStorage memory_;  // the recovered and written state, as load() returns it
  int fd_ = -1;
  std::uint64_t segment_seq_ = 0;
  std::size_t segment_size_ = 0;
  std::map<std::uint64_t, raft::Index> segment_last_index_;  // by sequence number
  std::uint64_t torn_bytes_ = 0;
};

}  // namespace raftfl::storage
