// The engine's core: construction, the step dispatcher with the term rules every server
// follows, and the Ready/advance exchange with the driver.
#include "raftfl/raft/raft.hpp"

#include "raftfl/raft/message_bounds.hpp"

#include <algorithm>
#include <string>

namespace raftfl::raft {

const char* to_string(MessageType type) {
  switch (type) {
    case MessageType::kPreVote: return "PreVote";
    case MessageType::kPreVoteResp: return "PreVoteResp";
    case MessageType::kVote: return "Vote";
    case MessageType::kVoteResp: return "VoteResp";
    case MessageType::kAppend: return "Append";
    case MessageType::kAppendResp: return "AppendResp";
    case MessageType::kHeartbeat: return "Heartbeat";
    case MessageType::kHeartbeatResp: return "HeartbeatResp";
    case MessageType::kSnapshot: return "Snapshot";
    case MessageType::kTimeoutNow: return "TimeoutNow";
    case MessageType::kReadIndex: return "ReadIndex";
    case MessageType::kReadIndexResp: return "ReadIndexResp";
  }
  return "?";
}

const char* to_string(Role role) {
  switch (role) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "?";
}

const char* to_string(ProposeError error) {
  switch (error) {
    case ProposeError::kNone: return "ok";
    case ProposeError::kNotLeader: return "not the leader";
    case ProposeError::kTransferring: return "leadership transfer in progress";
    case ProposeError::kConfChangePending: return "a membership change is pending";
    case ProposeError::kInvalidConfChange: return "invalid membership change";
  }
  return "?";
}

const char* options_error(const Options& o) {
  if (o.id == kNoNode) return "node id must be non-zero";
  if (o.heartbeat_interval_ticks <= 0) return "heartbeat interval must be at least one tick";
  if (o.election_timeout_min_ticks <= o.heartbeat_interval_ticks)
    return "minimum election timeout must exceed the heartbeat interval";
  if (o.election_timeout_max_ticks <= o.election_timeout_min_ticks)
    return "maximum election timeout must exceed the minimum";
  if (o.max_entries_per_message == 0) return "max entries per message must be positive";
  if (o.max_bytes_per_message == 0) return "max bytes per message must be positive";
  if (o.max_inflight_messages == 0) return "max inflight messages must be positive";
  if (o.max_term_ahead == 0) return "max term ahead must be positive";
  return nullptr;
}

namespace {

// Seed and id both shape the stream, and no relation between them (seed == id, as an
// earlier node configuration had) makes two nodes draw the same timeouts.
std::seed_seq election_seed(const Options& o) {
  return std::seed_seq{static_cast<std::uint32_t>(o.seed), static_cast<std::uint32_t>(o.seed >> 32),
                       static_cast<std::uint32_t>(o.id), static_cast<std::uint32_t>(o.id >> 32)};
}

}  // namespace

Raft::Raft(const Options& options, PersistedState state) : options_(options) {
  std::seed_seq seed = election_seed(options_);
  rng_.seed(seed);
  if (const char* error = options_error(options_)) throw std::invalid_argument(error);
  bool has_base = state.snapshot != nullptr;
  snapshot_ = has_base ? state.snapshot : std::make_shared<const Snapshot>();
  term_ = state.hard_state.term;
  vote_ = state.hard_state.vote;
  configs_.push_back({snapshot_->meta.index, snapshot_->meta.config});
  track_conf_changes(state.entries, snapshot_->meta.index + 1);
  log_.reset(snapshot_->meta, std::move(state.entries), state.hard_state.commit, has_base);
  last_hard_state_ = hard_state();
  role_ = FollowerState{};
  reset_timers();
}

int Raft::randomized_election_timeout() {
  std::uniform_int_distribution<int> dist(options_.election_timeout_min_ticks, options_.election_timeout_max_ticks - 1);
  return dist(rng_);
}

void Raft::reset_timers() {
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  randomized_timeout_ = randomized_election_timeout();
}

Role Raft::role() const {
  if (std::holds_alternative<LeaderState>(role_)) return Role::kLeader;
  if (auto* c = std::get_if<CandidateState>(&role_)) return c->pre_vote ? Role::kPreCandidate : Role::kCandidate;
  return Role::kFollower;
}

NodeId Raft::leader() const {
  if (std::holds_alternative<LeaderState>(role_)) return id();
  if (auto* f = std::get_if<FollowerState>(&role_)) return f->leader;
  return kNoNode;
}

const Progress* Raft::progress(NodeId follower) const {
  const LeaderState* l = leader_state();
  if (!l) return nullptr;
  auto it = l->progress.find(follower);
  return it == l->progress.end() ? nullptr : &it->second;
}

NodeId Raft::transfer_target() const {
  const LeaderState* l = leader_state();
  return l ? l->transfer_target : kNoNode;
}

void Raft::send(Message m) {
  m.from = id();
  if (m.term == 0) m.term = term_;
  // Votes and acknowledgements promise durable state (term, vote, entries): they may only
  // leave after the persist of the Ready that carries them. So may anything sent in a term
  // (or with a vote) not yet durable: a voter that is the whole quorum wins in the step
  // that starts its campaign, and its first AppendEntries would otherwise leave before its
  // new term does. Crashing then, it would restart in the old term, win the same term
  // again and send different entries at the same (index, term): log matching broken.
  // Once the term is durable, a leader's appends go out in parallel with its own write
  // (dissertation section 10.2.1).
  if (m.term == term_ && (last_hard_state_.term != term_ || last_hard_state_.vote != vote_)) {
    messages_after_persist_.push_back(std::move(m));
    return;
  }
  switch (m.type) {
    case MessageType::kVote:
    case MessageType::kVoteResp:
    case MessageType::kAppendResp:
    case MessageType::kHeartbeatResp:
      messages_after_persist_.push_back(std::move(m));
      break;
    default:
      messages_.push_back(std::move(m));
  }
}

void Raft::step(const Message& m) {
  if (m.to != id()) return;
  if (const char* why = message_out_of_bounds(m, term_, options_.max_term_ahead)) {
    drop(why);
    return;
  }
  if (!step_term(m)) return;
  switch (m.type) {
    case MessageType::kPreVote:
    case MessageType::kVote:
      handle_vote_request(m);
      return;
    default:
      break;
  }
  std::visit(
      [&](auto& state) {
        using S = std::decay_t<decltype(state)>;
        if constexpr (std::is_same_v<S, FollowerState>) step_follower(m);
        else if constexpr (std::is_same_v<S, CandidateState>) step_candidate(m);
        else step_leader(m);
      },
      role_);
}

void Raft::drop(const char* why) {
  ++dropped_messages_;
  last_drop_reason_ = why;
}

// Figure 2, "Rules for all servers": a higher term makes us a follower; lower terms are
// stale. Returns false when the message has been fully dealt with here.
bool Raft::step_term(const Message& m) {
  if (m.term > term_) {
    if (m.type == MessageType::kPreVote || m.type == MessageType::kVote) {
      // Section 4.2.3: a server that heard from a live leader within the minimum election
      // timeout ignores vote requests, so a removed or partitioned server cannot depose it.
      // A leadership transfer's election is the exception it asked for.
      bool in_lease = options_.check_quorum && leader() != kNoNode &&
                      election_elapsed_ < options_.election_timeout_min_ticks;
      if (in_lease && !m.force) return false;
    }
    if (m.type == MessageType::kPreVote) {
      // A pre-vote never changes our term.
    } else if (m.type == MessageType::kPreVoteResp && !m.reject) {
      // Granted pre-votes carry the future term; we take it when we really campaign.
    } else if (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnapshot) {
      become_follower(m.term, m.from);
    } else {
      become_follower(m.term, kNoNode);
    }
    return true;
  }
  if (m.term < term_) {
    if ((options_.check_quorum || options_.pre_vote) &&
        (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat)) {
      // A stale leader (say, just back from a partition) would otherwise never learn the
      // newer term: with pre-vote and check-quorum nobody else raises it for it.
      Message resp;
      resp.type = MessageType::kAppendResp;
      resp.from = id();
      resp.to = m.from;
      resp.term = term_;
      messages_.push_back(std::move(resp));
    } else if (m.type == MessageType::kPreVote) {
      Message resp;
      resp.type = MessageType::kPreVoteResp;
      resp.to = m.from;
      resp.reject = true;
      send(std::move(resp));
    }
    return false;
  }
  return true;
}

void Raft::step_follower(const Message& m) {
  auto& state = std::get<FollowerState>(role_);
  switch (m.type) {
    case MessageType::kAppend:
      election_elapsed_ = 0;
      state.leader = m.from;
      handle_append(m);
      break;
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      state.leader = m.from;
      handle_heartbeat(m);
      break;
    case MessageType::kSnapshot:
      election_elapsed_ = 0;
      state.leader = m.from;
      handle_snapshot(m);
      break;
    case MessageType::kTimeoutNow:
      // Only our leader may hand us its role: from anyone else (a stale or confused peer,
      // a frame damaged on the way) a forced election would depose a healthy leader.
      // Not counted as impossible: a follower that restarted does not know its leader yet.
      if (m.from == state.leader) handle_timeout_now(m);
      break;
    case MessageType::kReadIndexResp:
      read_states_.push_back({m.index, m.context});
      break;
    default:
      break;  // responses addressed to an earlier role of ours
  }
}

void Raft::step_candidate(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
      // Section 5.2: a leader of our term exists; defer to it.
      become_follower(m.term, m.from);
      step_follower(m);
      break;
    case MessageType::kPreVoteResp:
    case MessageType::kVoteResp:
      handle_vote_response(m);
      break;
    case MessageType::kTimeoutNow:
      break;  // already campaigning
    default:
      break;
  }
}

void Raft::step_leader(const Message& m) {
  switch (m.type) {
    case MessageType::kAppendResp:
      handle_append_response(m);
      break;
    case MessageType::kHeartbeatResp:
      handle_heartbeat_response(m);
      break;
    case MessageType::kReadIndex:
      handle_read_index_request(m.from, m.context);
      break;
    default:
      break;
  }
}

bool Raft::has_ready() const {
  const LeaderState* l = leader_state();
  return (l && l->broadcast_pending) || !messages_.empty() || !messages_after_persist_.empty() ||
         log_.has_unstable() || log_.has_committed_to_apply() || snapshot_to_install_ || !read_states_.empty() ||
         hard_state() != last_hard_state_ || SoftState{role(), leader()} != last_soft_state_;
}

Ready Raft::ready() {
  if (LeaderState* l = leader_state(); l && l->broadcast_pending) {
    // Proposals since the last Ready leave together: one AppendEntries per follower
    // carries the whole batch.
    l->broadcast_pending = false;
    broadcast_append();
  }
  Ready rd;
  SoftState soft{role(), leader()};
  if (soft != last_soft_state_) {
    rd.soft_state = soft;
    last_soft_state_ = soft;
  }
  if (hard_state() != last_hard_state_) rd.hard_state = hard_state();
  rd.snapshot = std::move(snapshot_to_install_);
  snapshot_to_install_.reset();
  rd.entries = log_.take_unstable();
  rd.messages = std::move(messages_);
  messages_.clear();
  rd.messages_after_persist = std::move(messages_after_persist_);
  messages_after_persist_.clear();
  rd.committed_entries = log_.take_committed(options_.max_bytes_per_message * 4);
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  return rd;
}

void Raft::advance(const Ready& rd) {
  if (rd.hard_state) last_hard_state_ = *rd.hard_state;
  if (rd.snapshot) log_.snapshot_persisted();
  if (!rd.entries.empty()) log_.persisted_to(rd.entries.back().index, rd.entries.back().term);
  if (!rd.committed_entries.empty()) log_.applied_to(rd.committed_entries.back().index);
  // The leader's own copy counts toward a quorum only once it is durable.
  if (leader_state() && maybe_commit()) on_leader_commit_advanced();
}

void Raft::check_invariants() const {
  auto fail = [&](const std::string& what) {
    throw InvariantViolation("node " + std::to_string(id()) + ": " + what);
  };
  if (log_.applied() > log_.committed()) fail("applied > committed");
  if (log_.committed() > log_.last_index()) fail("committed > last index");
  if (log_.snapshot_index() > log_.applied() && !log_.restoring()) fail("snapshot beyond applied");
  if (log_.persisted() > log_.last_index()) fail("persisted > last index");
  if (vote_ != kNoNode && term_ == 0) fail("vote without a term");
  if (configs_.empty() || configs_.front().index > log_.snapshot_index()) fail("configuration history lost");
  if (configs_.back().index > log_.last_index()) fail("configuration beyond the log");
  if (const LeaderState* l = leader_state()) {
    if (vote_ != id()) fail("leader did not vote for itself");
    for (const auto& [peer, pr] : l->progress) {
      if (!config().contains(peer)) fail("progress for a non-member " + std::to_string(peer));
      if (pr.match > log_.last_index()) fail("follower match beyond leader's log");
      if (pr.next <= pr.match) fail("next <= match");
    }
  }
}

}  // namespace raftfl::raft
