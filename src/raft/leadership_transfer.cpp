// Leadership transfer (dissertation section 3.10): bring the target's log up to date,
// then tell it to start an election at once.
#include "raftfl/raft/raft.hpp"

namespace raftfl::raft {

bool Raft::transfer_leadership(NodeId target) {
  LeaderState* l = leader_state();
  if (!l || target == id() || !config().is_voter(target)) return false;
  auto it = l->progress.find(target);
  if (it == l->progress.end()) return false;
  l->transfer_target = target;
  // The transfer must finish within an election timeout or it is abandoned (tick_heartbeat).
  election_elapsed_ = 0;
  Progress& pr = it->second;
  if (pr.match == log_.last_index()) {
    maybe_send_timeout_now(target, pr);
  } else {
    // Empty if everything was already sent: it still makes a target whose `next` ran
    // past a lost message reveal the gap now rather than at the next heartbeat.
    send_append(target, pr, true);
  }
  return true;
}

void Raft::maybe_send_timeout_now(NodeId to, const Progress& pr) {
  const LeaderState* l = leader_state();
  if (!l || l->transfer_target != to || pr.match != log_.last_index()) return;
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  send(std::move(m));
}

void Raft::handle_timeout_now(const Message& m) {
  (void)m;
  // Skips pre-vote (the leader asked for this) and the voters' lease check (force).
  if (promotable()) campaign(false, true);
}

}  // namespace raftfl::raft
