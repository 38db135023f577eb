// Log replication (Raft paper section 5.3) with batching, pipelining within per-follower
// inflight limits, probe/replicate/snapshot progress states and fast backtracking.
#include <algorithm>
#include <vector>

#include "raftfl/raft/raft.hpp"

namespace raftfl::raft {

ProposeResult Raft::propose(Payload data) {
  LeaderState* l = leader_state();
  if (!l) return {ProposeError::kNotLeader};
  if (l->transfer_target != kNoNode) return {ProposeError::kTransferring};
  Index index = log_.append(term_, EntryType::kNormal, std::move(data));
  l->broadcast_pending = true;
  return {ProposeError::kNone, index, term_};
}

// Sends what `to` lacks, within the message and inflight limits. Returns whether a
// message went out.
bool Raft::send_append(NodeId to, Progress& pr, bool allow_empty) {
  if (pr.paused()) return false;
  std::optional<Term> prev_term = log_.term(pr.next - 1);
  if (!prev_term) {
    send_snapshot(to, pr);
    return true;
  }
  std::vector<Entry> entries =
      log_.entries_from(pr.next, options_.max_entries_per_message, options_.max_bytes_per_message);
  if (entries.empty() && !allow_empty) return false;
  Message m;
  m.type = MessageType::kAppend;
  m.to = to;
  m.index = pr.next - 1;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  if (!entries.empty()) {
    Index last = entries.back().index;
    if (pr.state == ProgressState::kReplicate) {
      pr.optimistic_update(last);
      pr.inflights.add(last);
    } else {
      pr.probe_sent = true;
    }
  } else if (pr.state == ProgressState::kProbe) {
    pr.probe_sent = true;
  }
  m.entries = std::move(entries);
  send(std::move(m));
  return true;
}

void Raft::send_snapshot(NodeId to, Progress& pr) {
  Message m;
  m.type = MessageType::kSnapshot;
  m.to = to;
  m.snapshot = snapshot_;
  pr.become_snapshot(snapshot_->meta.index);
  send(std::move(m));
}

void Raft::broadcast_append() {
  LeaderState& l = std::get<LeaderState>(role_);
  for (auto& [peer, pr] : l.progress) {
    bool sent = false;
    while (send_append(peer, pr, false)) {
      sent = true;
      if (pr.state != ProgressState::kReplicate) break;
    }
    // Followers with nothing new still need to learn the commit index promptly, and a
    // member just added (its probe starts past our log) needs a first probe to answer.
    if (!sent) send_append(peer, pr, true);
  }
}

void Raft::broadcast_heartbeat(std::uint64_t read_seq) {
  LeaderState& l = std::get<LeaderState>(role_);
  for (auto& [peer, pr] : l.progress) {
    Message m;
    m.type = MessageType::kHeartbeat;
    m.to = peer;
    // Never tell a follower to commit beyond what it is known to hold: its log past
    // its match may still diverge from ours.
    m.commit = std::min(pr.match, log_.committed());
    m.read_seq = read_seq;
    send(std::move(m));
  }
}

void Raft::handle_append(const Message& m) {
  Message resp;
  resp.type = MessageType::kAppendResp;
  resp.to = m.from;
  if (m.index < log_.committed()) {
    // Everything up to our commit index is known to match; say so and let the leader move on.
    resp.index = log_.committed();
    send(std::move(resp));
    return;
  }
  std::optional<Index> truncated_at;
  std::optional<Index> last_new = log_.maybe_append(m.index, m.log_term, m.entries, &truncated_at);
  if (last_new) {
    // Section 4.1: a server uses the latest configuration in its log, committed or not;
    // a truncated membership entry takes its configuration with it.
    if (truncated_at) truncate_configs_from(*truncated_at);
    track_conf_changes(m.entries, last_config_index() + 1);
    // Figure 2, step 5: commit = min(leaderCommit, index of last new entry).
    log_.commit_to(std::min(m.commit, *last_new));
    resp.index = *last_new;
    send(std::move(resp));
    return;
  }
  // Figure 2, step 2: reject, with a hint where our logs may agree so that the leader
  // skips a whole term per round trip instead of one entry.
  Index hint = log_.find_conflict_by_term(std::min(m.index, log_.last_index()), m.log_term);
  resp.reject = true;
  resp.index = m.index;
  resp.reject_hint = hint;
  resp.log_term = log_.term(hint).value_or(0);
  send(std::move(resp));
}

void Raft::handle_append_response(const Message& m) {
  LeaderState& l = std::get<LeaderState>(role_);
  auto it = l.progress.find(m.from);
  if (it == l.progress.end()) return;
  if (!m.reject && m.index > log_.last_index()) {
    // Nobody holds entries we never had: counting such an acknowledgement would commit
    // entries that no follower holds and send snapshots to a follower that "holds" more
    // than we do.
    drop("acknowledges entries past the leader's log");
    return;
  }
  Progress& pr = it->second;
  pr.recent_active = true;
  if (m.reject) {
    // Our terms never decrease along the log, so a follower that holds our entries up to
    // `match` answers a probe at or above `match` with a hint at or above `match`. A hint
    // below it proves the follower lost entries it acknowledged: a disk that dropped the
    // tail of its log. Without forgetting `match`, every rejection would look stale and the gap
    // would never be resent. (A rejection reordered past a later acknowledgement can look
    // the same; forgetting `match` then costs resends, never safety: a lower match only
    // delays commits.)
    if (m.index >= pr.match && m.reject_hint < pr.match) pr.forget_match(m.index);
    Index probe_from = m.reject_hint;
    if (m.log_term > 0) probe_from = log_.find_conflict_by_term(m.reject_hint, m.log_term);
    if (pr.maybe_decrease_to(m.index, probe_from)) {
      if (pr.state == ProgressState::kReplicate) pr.become_probe();
      // A follower that does not hold our compaction point (a joining node holds nothing
      // at all) can only be repaired by the snapshot: the entries before it are gone.
      if (m.index <= log_.snapshot_index()) send_snapshot(m.from, pr);
      else send_append(m.from, pr, false);
    }
    return;
  }
  bool was_paused = pr.paused();
  // A joining node is sent the bootstrap snapshot at index 0 and acknowledges index 0,
  // which moves no match but is still the answer that ends the snapshot state.
  bool snapshot_acked = pr.state == ProgressState::kSnapshot && m.index >= pr.pending_snapshot;
  if (!pr.maybe_update(m.index) && !snapshot_acked) {
    // Even a stale acknowledgement frees window slots that it covers.
    if (pr.state == ProgressState::kReplicate) pr.inflights.free_to(m.index);
    return;
  }
  switch (pr.state) {
    case ProgressState::kProbe:
      pr.become_replicate();
      break;
    case ProgressState::kSnapshot:
      if (pr.match >= pr.pending_snapshot) pr.become_probe();
      break;
    case ProgressState::kReplicate:
      pr.inflights.free_to(m.index);
      break;
  }
  if (maybe_commit()) {
    on_leader_commit_advanced();
    if (!leader_state()) return;  // it removed itself; `pr` is gone with the role
  } else if (was_paused || pr.state == ProgressState::kReplicate) {
    while (send_append(m.from, pr, false) && pr.state == ProgressState::kReplicate) {
    }
  }
  maybe_send_timeout_now(m.from, pr);
}

void Raft::handle_heartbeat(const Message& m) {
  log_.commit_to(std::min(m.commit, log_.last_index()));
  Message resp;
  resp.type = MessageType::kHeartbeatResp;
  resp.to = m.from;
  resp.read_seq = m.read_seq;
  send(std::move(resp));
}

void Raft::handle_heartbeat_response(const Message& m) {
  LeaderState& l = std::get<LeaderState>(role_);
  auto it = l.progress.find(m.from);
  if (it == l.progress.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  pr.probe_sent = false;
  // A full window whose acknowledgements were all lost would never drain: a heartbeat
  // answer proves the follower is reachable, so free one slot and resend.
  if (pr.state == ProgressState::kReplicate && pr.inflights.full()) pr.inflights.free_first();
  // The follower still lacks entries. If everything was already sent (an optimistic
  // `next` past a lost message), an empty append at `next` makes it reveal the gap.
  if (pr.match < log_.last_index()) send_append(m.from, pr, true);
  if (m.read_seq != 0) ack_reads(m.from, m.read_seq);
}

// Section 5.4.2 and Figure 8: the commit index advances to the highest index stored on a
// quorum of voters, and only if that entry is of the current term; earlier-term entries
// commit indirectly, never by counting replicas.
bool Raft::maybe_commit() {
  LeaderState& l = std::get<LeaderState>(role_);
  const Configuration& cfg = config();
  std::vector<Index> matches;
  matches.reserve(cfg.voters.size());
  for (NodeId voter : cfg.voters) {
    if (voter == id()) {
      matches.push_back(log_.persisted());
    } else {
      auto it = l.progress.find(voter);
      matches.push_back(it == l.progress.end() ? 0 : it->second.match);
    }
  }
  if (matches.empty()) return false;
  std::size_t q = cfg.quorum();
  std::nth_element(matches.begin(), matches.begin() + static_cast<std::ptrdiff_t>(q - 1), matches.end(),
                   std::greater<>());
  Index candidate = matches[q - 1];
  if (candidate <= log_.committed() || log_.term(candidate) != term_) return false;
  log_.commit_to(candidate);
  return true;
}

void Raft::on_leader_commit_advanced() {
  LeaderState& l = std::get<LeaderState>(role_);
  // Section 4.2.2: a leader that is not part of the configuration it committed steps down;
  // so does one demoted to learner, which may no longer count itself toward a quorum.
  if (!config().is_voter(id()) && last_config_index() <= log_.committed()) {
    become_follower(term_, kNoNode);
    return;
  }
  release_reads_waiting_for_commit();
  l.broadcast_pending = true;
}

}  // namespace raftfl::raft
