#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "raftfl/raft/message.hpp"
#include "raftfl/wire/raft_codec.hpp"

namespace raftfl::node {

struct SnapshotSenderOptions {
  std::size_t chunk_bytes = std::size_t{1} << 20;  // data per piece (network.snapshot_chunk_bytes)
  // Pieces sent and not yet acknowledged, per receiver: with chunk_bytes, the most that
  // one transfer holds in send queues. Four keep a loopback or LAN link busy.
  std::size_t window_chunks = 4;
  std::uint64_t bytes_per_second = 0;  // all transfers together; 0: as fast as the link
  // No acknowledged progress for this long: ask the receiver what it holds and go on
  // from there (lost pieces, a new connection, a receiver that restarted). Never less
  // than the time a window takes at bytes_per_second, twice.
  std::chrono::milliseconds ask_after{1000};
  // No progress for this long: the transfer is dropped and reported failed, and the
  // engine starts another when the follower still needs it.
  std::chrono::milliseconds give_up_after{30000};
};

// The leader's side of a snapshot transfer: streams the snapshot the engine asked to send
// as pieces no larger than chunk_bytes, however large the snapshot and however small the
// frame limit, with a window of unacknowledged pieces and an optional rate limit. The
// receiver's acknowledgements say how many bytes it holds; a transfer that stalls asks
// for that number again and resumes there, so a dropped connection or a restarted
// receiver costs the pieces in flight, not the snapshot. Pure logic: the caller passes
// the time and a function that sends a piece (false when the transport refused it), so
// tests drive it without a network.
class SnapshotSender {
 public:
  using Clock = std::chrono::steady_clock;
  using Send = std::function<bool(raft::NodeId to, raft::Term term, const wire::SnapshotChunk& chunk)>;

  struct Stats {
    std::uint64_t started = 0;
    std::uint64_t completed = 0;
    std::uint64_t given_up = 0;
    std::uint64_t resumed = 0;  // times a receiver, asked, already held part of the snapshot
    std::uint64_t chunks_sent = 0;
    std::uint64_t bytes_sent = 0;  // snapshot data in pieces, resent bytes included
    std::uint64_t max_unacknowledged_bytes = 0;  // the most one transfer ever had in flight
  };

  SnapshotSender(SnapshotSenderOptions options, Send send);

  // Streams `snapshot` to `to` in the engine's term `term`. A transfer of the same
  // snapshot to `to` already running goes on (the engine asks again while it waits); one
  // of an older snapshot is replaced.
  void start(raft::NodeId to, raft::Term term, std::shared_ptr<const raft::Snapshot> snapshot, Clock::time_point now);
  // The receiver's acknowledgement; true when it completes the transfer.
  bool on_ack(raft::NodeId from, const wire::SnapshotChunk& ack, Clock::time_point now);
  // Refills the rate budget, asks stalled receivers, sends what the window allows.
  // Returns the receivers whose transfers were given up.
  std::vector<raft::NodeId> tick(Clock::time_point now);
  // Drops every transfer (this node no longer leads).
  void stop_all() { transfers_.clear(); }

  std::size_t active() const { return transfers_.size(); }
  const Stats& stats() const { return stats_; }

 private:
  struct Transfer {
    std::shared_ptr<const raft::Snapshot> snapshot;
    raft::Term term = 0;
    std::uint64_t checksum = 0;
    bool asking = true;         // waiting for the answer to "what do you hold?"
    std::uint64_t acked = 0;    // bytes the receiver holds, as far as we know
    std::uint64_t next = 0;     // the next byte to send
    Clock::time_point progress;  // when the receiver last held more (or answered the question)
    Clock::time_point asked;     // when the question was last sent
  };

  std::uint64_t checksum_of(const std::shared_ptr<const raft::Snapshot>& snapshot);
  void ask(raft::NodeId to, Transfer& t, Clock::time_point now);
  void pump(raft::NodeId to, Transfer& t);
  wire::SnapshotChunk chunk_header(const Transfer& t) const;
  std::chrono::milliseconds ask_after() const;

  SnapshotSenderOptions options_;
  Send send_;
  std::map<raft::NodeId, Transfer> transfers_;
  // The last snapshot hashed: every follower gets the same one, so it is hashed once.
  std::shared_ptr<const raft::Snapshot> hashed_;
  std::uint64_t hash_ = 0;
  double budget_ = 0;  // bytes that may be sent now under bytes_per_second
  Clock::time_point refilled_;
  Stats stats_;
};

}  // namespace raftfl::node
