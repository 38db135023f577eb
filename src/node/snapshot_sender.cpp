#include "raftfl/node/snapshot_sender.hpp"

#include <xxhash.h>

#include <algorithm>

namespace raftfl::node {

SnapshotSender::SnapshotSender(SnapshotSenderOptions options, Send send)
    : options_(options), send_(std::move(send)) {
  options_.chunk_bytes = std::max<std::size_t>(options_.chunk_bytes, 1);
  options_.window_chunks = std::max<std::size_t>(options_.window_chunks, 1);
  budget_ = static_cast<double>(options_.chunk_bytes);
}

std::chrono::milliseconds SnapshotSender::ask_after() const {
  if (options_.bytes_per_second == 0) return options_.ask_after;
  const auto window_ms = 2000.0 * static_cast<double>(options_.chunk_bytes * options_.window_chunks) /
                         static_cast<double>(options_.bytes_per_second);
  return std::max(options_.ask_after, std::chrono::milliseconds(static_cast<std::int64_t>(window_ms)));
}

std::uint64_t SnapshotSender::checksum_of(const std::shared_ptr<const raft::Snapshot>& snapshot) {
  if (snapshot != hashed_) {
    const auto data = snapshot->data.view();
    hash_ = XXH3_64bits(data.data(), data.size());
    hashed_ = snapshot;
  }
  return hash_;
}

void SnapshotSender::start(raft::NodeId to, raft::Term term, std::shared_ptr<const raft::Snapshot> snapshot,
                           Clock::time_point now) {
  auto it = transfers_.find(to);
  if (it != transfers_.end() && it->second.term == term &&
      it->second.snapshot->meta.index == snapshot->meta.index && it->second.snapshot->meta.term == snapshot->meta.term)
    return;
  Transfer t;
  t.checksum = checksum_of(snapshot);
  t.snapshot = std::move(snapshot);
  t.term = term;
  t.progress = now;
  ++stats_.started;
  auto& placed = transfers_.insert_or_assign(to, std::move(t)).first->second;
  ask(to, placed, now);
}

wire::SnapshotChunk SnapshotSender::chunk_header(const Transfer& t) const {
  wire::SnapshotChunk c;
  c.meta = t.snapshot->meta;
  c.total_bytes = t.snapshot->data.size();
  c.checksum = t.checksum;
  return c;
}

void SnapshotSender::ask(raft::NodeId to, Transfer& t, Clock::time_point now) {
  // An empty piece at offset 0 is the question: the receiver answers with what it holds.
  t.asking = true;
  t.asked = now;
  send_(to, t.term, chunk_header(t));
}

bool SnapshotSender::on_ack(raft::NodeId from, const wire::SnapshotChunk& ack, Clock::time_point now) {
  auto it = transfers_.find(from);
  if (it == transfers_.end()) return false;
  Transfer& t = it->second;
  if (ack.meta.index != t.snapshot->meta.index || ack.meta.term != t.snapshot->meta.term ||
      ack.checksum != t.checksum || ack.total_bytes != t.snapshot->data.size())
    return false;  // about a transfer this one replaced
  if (t.asking) {
    t.asking = false;
    if (ack.offset > 0) ++stats_.resumed;
    t.acked = t.next = ack.offset;
    t.progress = now;
  } else if (ack.offset > t.acked) {
    t.acked = ack.offset;
    t.next = std::max(t.next, t.acked);
    t.progress = now;
  } else if (ack.offset < t.acked) {
    // The receiver lost what it held (restarted without its partial file, or found it
    // damaged): start over from where it is.
    t.acked = t.next = ack.offset;
    t.progress = now;
  }
  if (t.acked >= t.snapshot->data.size()) {
    ++stats_.completed;
    transfers_.erase(it);
    return true;
  }
  pump(from, t);
  return false;
}

void SnapshotSender::pump(raft::NodeId to, Transfer& t) {
  if (t.asking) return;
  const auto total = t.snapshot->data.size();
  const auto window = options_.chunk_bytes * options_.window_chunks;
  const auto data = t.snapshot->data.view();
  while (t.next < total && t.next - t.acked < window) {
    if (options_.bytes_per_second != 0 && budget_ <= 0) return;
    const auto length = std::min<std::uint64_t>(options_.chunk_bytes, total - t.next);
    auto c = chunk_header(t);
    c.offset = t.next;
    c.data = data.substr(t.next, length);
    // A refused piece (the queue is full, the peer is not connected) is tried again on a
    // later tick; nothing after it goes out meanwhile, so the receiver sees no gap.
    if (!send_(to, t.term, c)) return;
    t.next += length;
    budget_ -= static_cast<double>(length);
    ++stats_.chunks_sent;
    stats_.bytes_sent += length;
    stats_.max_unacknowledged_bytes = std::max(stats_.max_unacknowledged_bytes, t.next - t.acked);
  }
}

std::vector<raft::NodeId> SnapshotSender::tick(Clock::time_point now) {
  if (options_.bytes_per_second != 0) {
    const double seconds = std::chrono::duration<double>(now - refilled_).count();
    // At most one piece's worth saved up, so that a pause is not followed by a burst.
    budget_ = std::min(budget_ + seconds * static_cast<double>(options_.bytes_per_second),
                       static_cast<double>(options_.chunk_bytes));
  }
  refilled_ = now;
  std::vector<raft::NodeId> given_up;
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    Transfer& t = it->second;
    if (now - t.progress > options_.give_up_after) {
      given_up.push_back(it->first);
      ++stats_.given_up;
      it = transfers_.erase(it);
      continue;
    }
    const auto stalled_since = t.asking ? t.asked : std::max(t.progress, t.asked);
    if (now - stalled_since > ask_after()) ask(it->first, t, now);
    pump(it->first, t);
    ++it;
  }
  return given_up;
}

}  // namespace raftfl::node
