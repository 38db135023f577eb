#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
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
// snap/. One save() is one gathering write and one fdatasync, submitted together on an
// io_uring (group commit: the driver hands it a whole Ready). Truncation needs no rewrite:
// a record for an index at or below the last one replaces the log from there on when the
// log is replayed.
//
// Recovery rule: a torn or zero-filled tail of the newest segment (a bad record that no
// good record follows) is cut back to the last good record and the node starts; a bad
// record that a good record follows, or one in an older segment, throws CorruptionError
// naming the file and the record's offset. Nothing is ever skipped.
//
// Not thread-safe; save() blocks until its data is durable, so the node calls it off the
// network thread. After save() or compact() throws, the storage must not be used again:
// what reached the disk is unknown until recovery reads it back.
class WalStorage final : public Storage {
 public:
  struct Options {
    std::size_t segment_bytes = 64 << 20;  // a new segment starts past this size
    // false: pwrite and fdatasync on the caller's thread, the path also taken when the
    // kernel refuses io_uring (disabled by sysctl, seccomp, or too old).
    bool io_uring = true;
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
  // Whether appends go through io_uring (false: the pwrite fallback), and if not, why.
  bool uses_io_uring() const { return ring_ != nullptr; }
  const std::string& why_no_io_uring() const { return no_io_uring_; }

 private:
  class RecordBatch;
  class Ring;

  void recover();
  void replay_segment(const std::filesystem::path& file, bool newest);
  // `wal_from`: the first segment that continues this snapshot's log (0: all of them).
  void write_snapshot(const raft::Snapshot& snapshot, std::uint64_t wal_from);
  void start_segment();
  void append(const RecordBatch& batch);
  void drop_segments_up_to(raft::Index index);

  std::filesystem::path dir_;
  Options options_;
  MemoryStorage memory_;  // the recovered and written state, as load() returns it
  std::unique_ptr<Ring> ring_;  // null: io_uring is unavailable or not wanted
  std::string no_io_uring_;     // why ring_ is null
  int fd_ = -1;
  std::filesystem::path segment_path_;  // the segment fd_ appends to, for error messages
  std::uint64_t segment_seq_ = 0;
  std::size_t segment_size_ = 0;
  std::map<std::uint64_t, raft::Index> segment_last_index_;  // by sequence number
  std::uint64_t torn_bytes_ = 0;
};

}  // namespace raftfl::storage
