#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "raftfl/raft/message.hpp"
#include "raftfl/wire/raft_codec.hpp"

namespace raftfl::node {

// A follower's side of a snapshot transfer (node/snapshot_sender.hpp). The pieces go to
// a file in the data directory as they arrive, so that what the process holds while a
// transfer runs is one piece, and so that a receiver killed half-way resumes where it
// was: the file outlives the process, and its name says which snapshot it is part of.
// When the last byte arrives the whole is read back and checked against the sender's
// checksum; a mismatch (a file damaged while the node was down) throws it away and the
// transfer starts over. Without a directory (memory storage) the bytes are kept in memory.
class SnapshotReceiver {
 public:
  struct Incoming {
    raft::Index index = 0;
    raft::Term term = 0;
    std::uint64_t total_bytes = 0;
    std::uint64_t checksum = 0;
    std::uint64_t held = 0;  // the snapshot's first `held` bytes are here
  };
  struct Outcome {
    std::uint64_t held = 0;  // what to acknowledge
    // Part of the snapshot was already here: the sender asked, or this is the first piece
    // since a previous process left its file.
    bool resumed = false;
    std::shared_ptr<const raft::Snapshot> snapshot;  // set once complete and checked
  };
  struct Stats {
    std::uint64_t completed = 0;
    std::uint64_t resumed = 0;  // transfers continued from bytes already held (Outcome::resumed)
    std::uint64_t damaged = 0;  // complete snapshots whose checksum did not match
    std::uint64_t bytes_received = 0;  // new bytes written, duplicates not counted
  };

  // Picks up a partial snapshot a previous process left in `dir`. Throws
  // std::system_error when the directory cannot be read.
  explicit SnapshotReceiver(std::filesystem::path dir);
  ~SnapshotReceiver();
  SnapshotReceiver(const SnapshotReceiver&) = delete;
  SnapshotReceiver& operator=(const SnapshotReceiver&) = delete;

  // One piece (or the sender's question: no data at offset 0). Throws std::system_error
  // when the file cannot be written.
  Outcome receive(const wire::SnapshotChunk& chunk);

  const std::optional<Incoming>& incoming() const { return incoming_; }
  const Stats& stats() const { return stats_; }

 private:
  void begin(const wire::SnapshotChunk& chunk);
  void append(std::string_view bytes);
  std::string read_all();
  void discard();
  void close_file();

  std::filesystem::path dir_;  // empty: in memory
  std::optional<Incoming> incoming_;
  bool picked_up_ = false;  // incoming_ came from a previous process's file, not yet continued
  int fd_ = -1;
  std::string memory_;
  Stats stats_;
};

// The receiver's answer to `piece`: it holds the snapshot's first `held` bytes.
wire::SnapshotChunk snapshot_acknowledgement(const wire::SnapshotChunk& piece, std::uint64_t held);

}  // namespace raftfl::node
