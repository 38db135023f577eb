#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "raftfl/common/json_writer.hpp"
#include "raftfl/control/control_state.hpp"
#include "raftfl/net/reactor.hpp"
#include "raftfl/net/transport.hpp"
#include "raftfl/node/config.hpp"
#include "raftfl/node/kv_state_machine.hpp"
#include "raftfl/raft/raft.hpp"
#include "raftfl/storage/storage.hpp"
#include "raftfl/wire/gossip_codec.hpp"

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

struct MemberStatus {
  raft::NodeId id = 0;
  bool voter = true;
  raft::Index match = 0;  // known on the leader only
  raft::Index next = 0;
  std::string state;      // probe / replicate / snapshot, on the leader; "self" for this node
  bool connected = false;
};

struct NodeStatus {
  raft::NodeId id = 0;
  std::uint64_t cluster_id = 0;
  std::string role;
  raft::Term term = 0;
  raft::NodeId leader = raft::kNoNode;
  raft::Index commit = 0;
  raft::Index applied = 0;
  raft::Index first_index = 0;
  raft::Index last_index = 0;
  raft::Index snapshot_index = 0;
  std::string transport;
  std::string storage;
  std::uint64_t kv_keys = 0;
  std::uint64_t kv_digest = 0;
  std::uint64_t proposals_pending = 0;
  std::uint64_t persists = 0;  // durability barriers taken (group commits)
  std::uint64_t persisted_entries = 0;
  net::TransportStats transport_stats;
  std::vector<MemberStatus> members;
};

// The status as one JSON object; `extension` adds fields before it closes.
std::string to_json(const NodeStatus& status, const std::function<void(JsonWriter&)>& extension = {});
// The control log's state as one JSON object (the status's "control" field), and a
// round's plan as fields of an object the caller opened.
void write_control(JsonWriter& out, const control::ControlState& control);
void write_topology_fields(JsonWriter& out, const control::Topology& topology);

// One node: the Raft engine driven on a reactor by coroutines (docs/ARCHITECTURE.md, "The node"):
//   - a tick loop on a steady_timer;
//   - the Ready loop: send, persist, send what waited for the persist, apply, advance.
//     While a persist runs, everything that arrives is stepped into the engine and the
//     next Ready carries all of it: one fdatasync per batch (group commit);
//   - the transport's per-peer writer coroutines keep AppendEntries pipelined (the engine
//     allows max_inflight of them per follower).
// With disk storage the writes run on a storage thread of their own, so that an fdatasync
// never stalls the reactor; the Ready loop awaits its completion.
class RaftNode {
 public:
  RaftNode(asio::io_context& io, NodeConfig config);
  ~RaftNode();
  RaftNode(const RaftNode&) = delete;
  RaftNode& operator=(const RaftNode&) = delete;

  // Binds the transport (throws on a port in use) and starts the coroutines.
  void start();
  // Completes once `payload` is committed and applied (ok), or refused / overtaken.
  asio::awaitable<ProposeOutcome> propose(std::string payload);
  // A linearizable read barrier (Raft dissertation section 6.4): completes once this node
  // has applied everything the leader had committed when the read arrived there, after a
  // heartbeat round confirmed it still led. Forwarded to the leader from a follower. Gives
  // up after `timeout` (no leader, leadership changing); the caller may ask again.
  asio::awaitable<ReadOutcome> read_barrier(std::chrono::milliseconds timeout);
  // Stops ticking, lets the write in flight finish, closes the transport and the storage.
  asio::awaitable<void> stop();

  NodeStatus status() const;
  const KvStateMachine& kv() const { return kv_; }
  bool is_leader() const { return raft_->role() == raft::Role::kLeader; }
  const NodeConfig& config() const { return config_; }
  std::uint16_t listen_port() const { return transport_->listen_port(); }
  // Called on the reactor whenever this node becomes or stops being the leader.
  void on_leadership_change(std::function<void(bool)> callback) { leadership_callback_ = std::move(callback); }

  // The control log (docs/ARCHITECTURE.md, "The control log"): its state as applied here, and a
  // callback after each control entry is applied (also after a snapshot is installed,
  // with a NoOp), on the reactor.
  const control::ControlState& control() const { return control_; }
  using ControlCallback = std::function<void(const control::Command&, control::ApplyResult)>;
  void on_control_applied(ControlCallback callback) { control_callback_ = std::move(callback); }
  // Proposes a control command; completes like propose().
  asio::awaitable<ProposeOutcome> propose_control(const control::Command& command);

  // Messages other than Raft's (model chunks, round reports) share the transport: they are
  // handed to this handler, on the reactor; the reader is valid during the call only.
  using MessageHandler = std::function<void(net::NodeId from, wire::EnvelopeBody body, capnp::MessageReader& reader)>;
  void on_message(MessageHandler handler) { message_handler_ = std::move(handler); }
  bool send_message(net::NodeId to, std::unique_ptr<capnp::MessageBuilder> message) {
    return !stopping_ && transport_->send(to, std::move(message));
  }
  bool connected(net::NodeId peer) const { return transport_->connected(peer); }
  raft::NodeId leader() const { return raft_->leader(); }
  raft::Index committed() const { return raft_->log().committed(); }
  raft::Index applied() const { return kv_.applied(); }
  raft::Term term() const { return raft_->term(); }
  bool stopping() const { return stopping_; }

 private:
  struct Pending;
  struct PendingRead;

  void notify() { ready_wake_.cancel(); }
  asio::awaitable<void> tick_loop();
  asio::awaitable<void> ready_loop();
  asio::awaitable<void> on_storage(std::function<void()> work);
  void send_all(std::vector<raft::Message>& messages);
  void receive(net::NodeId from, capnp::MessageReader& reader);
  void apply(const raft::Entry& entry);
  void restore_state(raft::Index index, std::string_view data);
  std::string snapshot_state() const;
  void complete_up_to(raft::Index applied);
  void fail_pending(const std::string& why);
  void answer_reads(std::vector<raft::ReadState>& states);
  void release_applied_reads();
  asio::awaitable<void> maybe_snapshot();

  asio::io_context& io_;
  NodeConfig config_;
  std::unique_ptr<storage::Storage> storage_;
  std::unique_ptr<net::Reactor> storage_reactor_;  // disk only
  std::unique_ptr<net::Transport> transport_;
  std::unique_ptr<raft::Raft> raft_;
  KvStateMachine kv_;
  control::ControlState control_;
  ControlCallback control_callback_;
  MessageHandler message_handler_;

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
  raft::HardState latest_hard_state_;  // the engine's latest
  raft::HardState synced_hard_state_;  // what the last durability barrier covered
  std::uint64_t persists_ = 0;
  std::uint64_t persisted_entries_ = 0;
};

}  // namespace raftfl::node
