#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raftfl/control/control_state.hpp"
#include "raftfl/net/reactor.hpp"
#include "raftfl/net/transport.hpp"
#include "raftfl/node/config.hpp"
#include "raftfl/node/message_router.hpp"
#include "raftfl/node/replicated_state.hpp"
#include "raftfl/node/snapshot_receiver.hpp"
#include "raftfl/node/snapshot_sender.hpp"
#include "raftfl/raft/raft.hpp"
#include "raftfl/storage/storage.hpp"

namespace raftfl::node {

struct ProposeOutcome {
  bool ok = false;
  raft::Index index = 0;
  std::string error;               // why not, when !ok
  raft::NodeId leader = raft::kNoNode;  // where to go instead, when known
};

struct ReadOutcome {
  bool ok = false;
  raft::Index index = 0;  // the read index: state applied up to it answers the read
  std::string error;
  raft::NodeId leader = raft::kNoNode;
};

// Drives the Raft engine on a reactor by coroutines (docs/ARCHITECTURE.md, "The node"):
//   - a tick loop on a steady_timer;
//   - the Ready loop: send, persist, send what waited for the persist, apply, advance.
//     While a persist runs, everything that arrives is stepped into the engine and the
//     next Ready carries all of it: one fdatasync per batch (group commit);
//   - the transport's per-peer writer coroutines keep AppendEntries pipelined (the engine
//     allows max_inflight of them per follower).
// With disk storage the writes run on a storage thread of their own, so that an fdatasync
// never stalls the reactor; the Ready loop awaits its completion.
// The storage and the transport are handed in; committed entries go to `state`; the
// driver takes the Raft body from `router`, which the transport feeds once started.
// How a node with an empty data directory starts.
enum class EmptyStart {
  kBootstrap,  // a new cluster: this node and its configured peers are its voters
  kJoin,       // a node that joined a running cluster: no configuration until the leader's snapshot
};

class RaftDriver {
 public:
  RaftDriver(asio::io_context& io, NodeConfig config, std::unique_ptr<storage::Storage> storage,
             std::unique_ptr<net::Transport> transport, ReplicatedState& state, MessageRouter& router,
             EmptyStart empty_start = EmptyStart::kBootstrap);
  ~RaftDriver();
  RaftDriver(const RaftDriver&) = delete;
  RaftDriver& operator=(const RaftDriver&) = delete;

  // Starts the transport (throws on a port in use) and the coroutines.
  void start();
  // Completes once `payload` is committed and applied (ok), or refused / overtaken.
  asio::awaitable<ProposeOutcome> propose(std::string payload);
  // Proposes a control command; completes like propose().
  asio::awaitable<ProposeOutcome> propose_control(const control::Command& command);
  // Proposes a membership change (one at a time: refused while one is pending);
  // completes like propose(). The members' contexts say where the transport reaches them.
  asio::awaitable<ProposeOutcome> propose_conf_change(raft::ConfChange change);
  // A linearizable read barrier (Raft dissertation section 6.4): completes once this node
  // has applied everything the leader had committed when the read arrived there, after a
  // heartbeat round confirmed it still led. Forwarded to the leader from a follower. Gives
  // up after `timeout` (no leader, leadership changing); the caller may ask again.
  asio::awaitable<ReadOutcome> read_barrier(std::chrono::milliseconds timeout);
  // Hands the leadership to `target` (the engine's transfer: it catches the target up, then
  // tells it to campaign). False when this node does not lead or `target` is no voter.
  bool transfer_leadership(raft::NodeId target) {
    const bool started = raft_->transfer_leadership(target);
    notify();
    return started;
  }
  // Stops ticking, lets the write in flight finish, closes the transport and the storage.
  asio::awaitable<void> stop();

  // Called on the reactor whenever this node becomes or stops being the leader.
  void on_leadership_change(std::function<void(bool)> callback) { leadership_callback_ = std::move(callback); }

  // Messages other than Raft's share the transport; they arrive through the router.
  bool send_message(net::NodeId to, std::unique_ptr<capnp::MessageBuilder> message) {
    return !stopping_ && transport_->send(to, std::move(message));
  }
  bool connected(net::NodeId peer) const { return transport_->connected(peer); }
  std::uint16_t listen_port() const { return transport_->listen_port(); }

  const ReplicatedState& state() const { return state_; }
  const NodeConfig& config() const { return config_; }
  const raft::Raft& raft() const { return *raft_; }
  const net::Transport& transport() const { return *transport_; }
  bool is_leader() const { return raft_->role() == raft::Role::kLeader; }
  raft::NodeId leader() const { return raft_->leader(); }
  raft::Index committed() const { return raft_->log().committed(); }
  raft::Index applied() const { return state_.applied(); }
  raft::Term term() const { return raft_->term(); }
  bool stopping() const { return stopping_; }
  std::uint64_t proposals_pending() const { return pending_.size(); }
  std::uint64_t persists() const { return persists_; }
  std::uint64_t persisted_entries() const { return persisted_entries_; }
  std::uint64_t messages_dropped() const { return raft_->dropped_messages(); }
  const SnapshotSender& snapshot_sender() const { return snapshot_sender_; }
  const SnapshotReceiver& snapshot_receiver() const { return snapshot_receiver_; }
  // When a Raft message from `peer` last arrived (nullopt: never since this node started).
  std::optional<std::chrono::steady_clock::time_point> last_heard(raft::NodeId peer) const {
    const auto it = last_heard_.find(peer);
    if (it == last_heard_.end()) return std::nullopt;
    return it->second;
  }

 private:
  struct Pending;
  struct PendingRead;

  void notify() { ready_wake_.cancel(); }
  // Completes once the proposal `r` made is applied (ok), or refused / overtaken.
  asio::awaitable<ProposeOutcome> await_applied(raft::ProposeResult r);
  asio::awaitable<void> tick_loop();
  asio::awaitable<void> ready_loop();
  asio::awaitable<void> on_storage(std::function<void()> work);
  void send_all(std::vector<raft::Message>& messages);
  // Points the transport at the current members (their contexts, else the configured
  // peers).
  void sync_peers();
  void step(net::NodeId from, capnp::MessageReader& reader);
  void step(const raft::Message& m);
  // A piece of a snapshot streamed to this node, or a follower's acknowledgement of one.
  void on_snapshot_chunk(net::NodeId from, capnp::MessageReader& reader);
  bool send_snapshot_chunk(raft::NodeId to, raft::Term term, const wire::SnapshotChunk& chunk);
  void log_drop(net::NodeId from);
  void apply(const raft::Entry& entry);
  void fail_pending(const std::string& why);
  void answer_reads(std::vector<raft::ReadState>& states);
  void release_applied_reads();
  asio::awaitable<void> maybe_snapshot();

  asio::io_context& io_;
  NodeConfig config_;
  std::unique_ptr<storage::Storage> storage_;
  std::unique_ptr<net::Reactor> storage_reactor_;  // disk only
  std::unique_ptr<net::Transport> transport_;
  ReplicatedState& state_;
  MessageRouter& router_;
  std::unique_ptr<raft::Raft> raft_;
  // Snapshots travel in pieces beside the Raft messages, not as one kSnapshot message:
  // one frame could not carry a state larger than network.max_frame_bytes.
  SnapshotSender snapshot_sender_;
  SnapshotReceiver snapshot_receiver_;

  asio::steady_timer tick_timer_;
  asio::steady_timer ready_wake_;
  bool stopping_ = false;
  bool ready_loop_done_ = false;
  asio::steady_timer stopped_wake_;
  std::deque<std::shared_ptr<Pending>> pending_;
  std::map<std::uint64_t, std::shared_ptr<PendingRead>> reads_;  // by request id
  std::uint64_t next_read_id_ = 0;
  std::function<void(bool)> leadership_callback_;
  bool was_leader_ = false;
  raft::Index last_snapshot_index_ = 0;
  std::map<raft::NodeId, std::chrono::steady_clock::time_point> last_heard_;
  raft::Configuration synced_members_;  // what the transport's peers were last set from
  bool peers_synced_ = false;
  raft::HardState latest_hard_state_;  // the engine's latest
  raft::HardState synced_hard_state_;  // what the last durability barrier covered
  std::uint64_t persists_ = 0;
  std::uint64_t drops_seen_ = 0;  // dropped messages already logged
  std::chrono::steady_clock::time_point last_drop_logged_;
  std::uint64_t persisted_entries_ = 0;
};

}  // namespace raftfl::node
