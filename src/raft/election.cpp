// Leader election (Raft paper section 5.2) with pre-vote and check-quorum
// (dissertation sections 9.6 and 6.2).
#include <string>

#include "raftfl/raft/raft.hpp"

namespace raftfl::raft {

// Only a voter of the configuration in force may campaign: learners, removed servers and
// servers that have not yet learned the configuration must not disturb the cluster. A
// voter whose own removal is not yet committed still may: that entry may be in its log
// alone, and the voters left in the old configuration may need its vote, which it refuses
// them while its log is longer (a two-voter cluster whose leader was cut off right after
// proposing its own removal would deadlock). It still needs a majority of the new one.
bool Raft::promotable() const {
  if (config().is_voter(id())) return true;
  return configs_.size() > 1 && last_config_index() > log_.committed() &&
         configs_[configs_.size() - 2].config.is_voter(id());
}

void Raft::tick() {
  if (leader_state()) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void Raft::tick_election() {
  ++election_elapsed_;
  if (promotable() && election_elapsed_ >= randomized_timeout_) {
    election_elapsed_ = 0;
    campaign(options_.pre_vote, false);
  }
}

void Raft::tick_heartbeat() {
  LeaderState& l = std::get<LeaderState>(role_);
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  for (auto& [peer, pr] : l.progress) {
    // A snapshot message lost on the way would leave the follower paused forever.
    if (pr.state == ProgressState::kSnapshot && ++pr.snapshot_ticks > options_.election_timeout_max_ticks)
      pr.become_probe();
  }
  if (election_elapsed_ >= options_.election_timeout_min_ticks) {
    election_elapsed_ = 0;
    if (options_.check_quorum && !quorum_active()) {
      // Section 6.2: a leader that cannot reach a quorum steps down, so that clients go
      // to the majority side and reads on it cannot be stale.
      become_follower(term_, kNoNode);
      return;
    }
    if (l.transfer_target != kNoNode) l.transfer_target = kNoNode;  // section 3.10: give up after a timeout
  }
  if (heartbeat_elapsed_ >= options_.heartbeat_interval_ticks) {
    heartbeat_elapsed_ = 0;
    broadcast_heartbeat(l.read_seq);
  }
}

bool Raft::quorum_active() {
  LeaderState& l = std::get<LeaderState>(role_);
  std::size_t active = config().is_voter(id()) ? 1 : 0;
  for (auto& [peer, pr] : l.progress) {
    if (pr.recent_active && config().is_voter(peer)) ++active;
    pr.recent_active = false;
  }
  return active >= config().quorum();
}

void Raft::campaign(bool pre_vote, bool force) {
  Term vote_term;
  if (pre_vote) {
    role_ = CandidateState{true, {}};
    vote_term = term_ + 1;
  } else {
    // Section 5.2: increment the term and vote for ourselves.
    term_ += 1;
    vote_ = id();
    role_ = CandidateState{false, {}};
    vote_term = term_;
  }
  reset_timers();
  auto& c = std::get<CandidateState>(role_);
  c.votes[id()] = true;
  // Alone in the configuration, our own vote is the quorum; outside it, it counts for nothing.
  if (config().quorum() == 1 && config().is_voter(id())) {
    if (pre_vote) campaign(false, force);
    else become_leader();
    return;
  }
  for (NodeId voter : config().voters) {
    if (voter == id()) continue;
    Message m;
    m.type = pre_vote ? MessageType::kPreVote : MessageType::kVote;
    m.to = voter;
    m.term = vote_term;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    m.force = force;
    send(std::move(m));
  }
}

void Raft::become_follower(Term term, NodeId leader) {
  if (term != term_) {
    term_ = term;
    vote_ = kNoNode;
  }
  // Pending reads die with the leadership: a deposed leader must never answer them.
  role_ = FollowerState{leader};
  reset_timers();
}

void Raft::become_leader() {
  role_ = LeaderState{};
  LeaderState& l = std::get<LeaderState>(role_);
  reset_timers();
  sync_progress_with_config();
  // Section 8: a no-op of the new term lets the leader commit the entries of earlier terms
  // (which it must never commit by counting replicas, Figure 8) and learn its commit index.
  log_.append(term_, EntryType::kNoOp, Payload());
  l.broadcast_pending = true;
}

void Raft::handle_vote_request(const Message& m) {
  bool pre = m.type == MessageType::kPreVote;
  // Learners answer too: one may have been promoted without having learned it yet, and
  // refusing would let the cluster stall. A candidate only asks, and only counts, the
  // voters of its own configuration, so a learner's answer never makes a quorum.
  bool can_vote = vote_ == m.from || (vote_ == kNoNode && leader() == kNoNode) || (pre && m.term > term_);
  bool grant = can_vote && log_.is_up_to_date(m.index, m.log_term);
  Message resp;
  resp.type = pre ? MessageType::kPreVoteResp : MessageType::kVoteResp;
  resp.to = m.from;
  // A pre-vote is answered at the term it asked about, so that a granted answer does not
  // look stale to the pre-candidate; a refusal carries our term so that it can catch up.
  resp.term = (pre && grant) ? m.term : term_;
  resp.reject = !grant;
  if (grant && !pre) {
    vote_ = m.from;
    election_elapsed_ = 0;
  }
  send(std::move(resp));
}

void Raft::handle_vote_response(const Message& m) {
  auto& c = std::get<CandidateState>(role_);
  bool pre_resp = m.type == MessageType::kPreVoteResp;
  if (pre_resp != c.pre_vote) return;  // an answer to an earlier campaign
  if (!config().is_voter(m.from)) return;
  c.votes.emplace(m.from, !m.reject);
  std::size_t granted = 0;
  std::size_t rejected = 0;
  for (const auto& [voter, yes] : c.votes) {
    if (!config().is_voter(voter)) continue;
    (yes ? granted : rejected) += 1;
  }
  if (granted >= config().quorum()) {
    if (c.pre_vote) campaign(false, false);
    else become_leader();
  } else if (rejected >= config().quorum()) {
    become_follower(term_, kNoNode);
  }
}

}  // namespace raftfl::raft
