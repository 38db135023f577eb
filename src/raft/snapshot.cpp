// Snapshots and log compaction (Raft paper section 7).
#include "raftfl/raft/raft.hpp"

namespace raftfl::raft {

bool Raft::compact(Index index, Payload data) {
  if (index <= log_.snapshot_index() || index > log_.applied()) return false;
  auto snap = std::make_shared<Snapshot>();
  snap->meta.index = index;
  snap->meta.term = *log_.term(index);
  snap->meta.config = config_at(index);
  snap->data = std::move(data);
  log_.compact_to(index);
  compact_configs_to(index);
  snapshot_ = std::move(snap);
  return true;
}

void Raft::handle_snapshot(const Message& m) {
  const Snapshot& snap = *m.snapshot;
  Message resp;
  resp.type = MessageType::kAppendResp;
  resp.to = m.from;
  if (snap.meta.index <= log_.committed() && log_.has_base()) {
    resp.index = log_.committed();
    send(std::move(resp));
    return;
  }
  if (log_.matches(snap.meta.index, snap.meta.term)) {
    // We already hold the snapshot's last entry, hence (log matching) all before it. The
    // snapshot vouches for nothing after its index: entries there may conflict with the
    // leader's, so only the index itself is acknowledged (etcd answers its commit index,
    // which is the same here), and the next appends find and replace any conflict.
    log_.commit_to(snap.meta.index);
    resp.index = snap.meta.index;
    send(std::move(resp));
    return;
  }
  // Section 7: the snapshot replaces a log that does not contain its last entry.
  log_.restore(snap.meta);
  configs_.clear();
  configs_.push_back({snap.meta.index, snap.meta.config});
  snapshot_ = m.snapshot;
  snapshot_to_install_ = m.snapshot;
  resp.index = snap.meta.index;
  send(std::move(resp));
}

void Raft::report_snapshot(NodeId to, bool ok) {
  LeaderState* l = leader_state();
  if (!l) return;
  auto it = l->progress.find(to);
  if (it == l->progress.end() || it->second.state != ProgressState::kSnapshot) return;
  Progress& pr = it->second;
  if (!ok) pr.pending_snapshot = 0;
  // Probe from here: the follower's answer to the snapshot, or the next probe, sets match.
  pr.become_probe();
}

}  // namespace raftfl::raft
