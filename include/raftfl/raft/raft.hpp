#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <variant>
#include <vector>

#include "raftfl/raft/configuration.hpp"
#include "raftfl/raft/message.hpp"
#include "raftfl/raft/options.hpp"
#include "raftfl/raft/progress.hpp"
#include "raftfl/raft/raft_log.hpp"
#include "raftfl/raft/ready.hpp"
#include "raftfl/raft/roles.hpp"

namespace raftfl::raft {

// What a node persisted; a restart hands it back exactly.
struct PersistedState {
  HardState hard_state;
  // A brand-new cluster starts from a snapshot at index 0 that only holds the initial
  // configuration; a node that joins later starts with none and is sent the leader's.
  std::shared_ptr<const Snapshot> snapshot;
  std::vector<Entry> entries;  // the entries after snapshot->meta.index
};

enum class ProposeError : std::uint8_t {
  kNone,
  kNotLeader,
  kTransferring,       // a leadership transfer is under way
  kConfChangePending,  // one membership change at a time, and none before the term's first commit
  kInvalidConfChange,
};
const char* to_string(ProposeError error);

struct ProposeResult {
  ProposeError error = ProposeError::kNone;
  Index index = 0;  // where the entry went, when accepted
  Term term = 0;
  bool ok() const { return error == ProposeError::kNone; }
};

// The Raft consensus engine: a pure deterministic state machine (no I/O, clock or
// threads). Inputs: step(), tick(), propose*(), transfer_leadership(), read_index(),
// compact(). Output: ready(), acknowledged with advance(). Roles are a variant, each
// holding only its own state, as in ScyllaDB's raft::fsm.
class Raft {
 public:
  Raft(const Options& options, PersistedState state);

  // Inputs.
  void step(const Message& message);
  void tick();
  ProposeResult propose(Payload data);
  ProposeResult propose_conf_change(const ConfChange& change);
  // Section 3.10: hand leadership to `target`. False when not leader or not a voter.
  bool transfer_leadership(NodeId target);
  // Section 6.4: a linearizable read. The answer is a ReadState in a later Ready, once a
  // heartbeat round has confirmed leadership. False when no leader is known.
  bool read_index(Payload context);
  // The application took a snapshot at `index` (<= applied); the log before it goes.
  bool compact(Index index, Payload data);
  // The driver learned that a snapshot sent to `to` failed (or arrived).
  void report_snapshot(NodeId to, bool ok);

  // Output.
  bool has_ready() const;
  Ready ready();
  void advance(const Ready& ready);

  // Observation (tests, status, the simulator's checker).
  NodeId id() const { return options_.id; }
  Term term() const { return term_; }
  NodeId vote() const { return vote_; }
  Role role() const;
  NodeId leader() const;
  const RaftLog& log() const { return log_; }
  const Configuration& config() const { return configs_.back().config; }
  const std::shared_ptr<const Snapshot>& snapshot() const { return snapshot_; }
  HardState hard_state() const { return {term_, vote_, log_.committed()}; }
  const Progress* progress(NodeId follower) const;
  NodeId transfer_target() const;
  // Checks the engine's own invariants; throws InvariantViolation.
  void check_invariants() const;
  // Messages dropped as impossible (message_bounds.hpp, or impossible given our own log),
  // and why the last one was.
  std::uint64_t dropped_messages() const { return dropped_messages_; }
  const char* last_drop_reason() const { return last_drop_reason_; }

 private:
  using FollowerState = roles::FollowerState;
  using CandidateState = roles::CandidateState;
  using PendingRead = roles::PendingRead;
  using LeaderState = roles::LeaderState;
  struct ConfigAt {
    Index index;
    Configuration config;
  };

  // raft.cpp: the step dispatcher and term rules (Figure 2, "Rules for all servers").
  bool step_term(const Message& m);
  void step_follower(const Message& m);
  void step_candidate(const Message& m);
  void step_leader(const Message& m);
  void send(Message m);
  void drop(const char* why);
  void reset_timers();
  int randomized_election_timeout();
  LeaderState* leader_state() { return std::get_if<LeaderState>(&role_); }
  const LeaderState* leader_state() const { return std::get_if<LeaderState>(&role_); }

  // election.cpp
  bool promotable() const;
  void campaign(bool pre_vote, bool force);
  void become_follower(Term term, NodeId leader);
  void become_leader();
  void handle_vote_request(const Message& m);
  void handle_vote_response(const Message& m);
  void tick_election();
  void tick_heartbeat();
  bool quorum_active();

  // replication.cpp
  bool send_append(NodeId to, Progress& pr, bool allow_empty);
  void send_snapshot(NodeId to, Progress& pr);
  void broadcast_append();
  void broadcast_heartbeat(std::uint64_t read_seq);
  void handle_append(const Message& m);
  void handle_append_response(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_heartbeat_response(const Message& m);
  bool maybe_commit();
  void on_leader_commit_advanced();

  // snapshot.cpp
  void handle_snapshot(const Message& m);

  // membership.cpp
  void append_config(Index index, const Configuration& config);
  void truncate_configs_from(Index index);
  void compact_configs_to(Index index);
  const Configuration& config_at(Index index) const;
  Index last_config_index() const { return configs_.back().index; }
  void sync_progress_with_config();
  void track_conf_changes(const std::vector<Entry>& entries, Index first_new);

  // read_index.cpp
  void handle_read_index_request(NodeId requester, Payload context);
  void start_read(LeaderState& leader, NodeId requester, Payload context);
  void ack_reads(NodeId from, std::uint64_t seq);
  void release_read(const PendingRead& read);
  void release_reads_waiting_for_commit();

  // leadership_transfer.cpp
  void maybe_send_timeout_now(NodeId to, const Progress& pr);
  void handle_timeout_now(const Message& m);

  Options options_;
  std::mt19937_64 rng_;
  Term term_ = 0;
  NodeId vote_ = kNoNode;
  RaftLog log_;
  std::vector<ConfigAt> configs_;  // configuration history above the snapshot; back() is in force
  std::shared_ptr<const Snapshot> snapshot_;
  std::shared_ptr<const Snapshot> snapshot_to_install_;
  std::variant<FollowerState, CandidateState, LeaderState> role_;

  std::uint64_t dropped_messages_ = 0;
  const char* last_drop_reason_ = "";

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_timeout_ = 0;

  std::vector<Message> messages_;
  std::vector<Message> messages_after_persist_;
  std::vector<ReadState> read_states_;
  HardState last_hard_state_;
  SoftState last_soft_state_;
};

}  // namespace raftfl::raft
