#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "raftfl/common/json_writer.hpp"
#include "raftfl/control/control_state.hpp"
#include "raftfl/net/transport.hpp"
#include "raftfl/node/snapshot_receiver.hpp"
#include "raftfl/node/snapshot_sender.hpp"
#include "raftfl/raft/types.hpp"

namespace raftfl::node {

class RaftDriver;
class ReplicatedState;

struct MemberStatus {
  raft::NodeId id = 0;
  bool voter = true;
  raft::Index match = 0;  // known on the leader only
  raft::Index next = 0;
  std::string state;      // probe / replicate / snapshot, on the leader; "self" for this node
  bool connected = false;
  // On the leader, what its membership policy sees (membership_manager): "self",
  // "healthy", "behind" (its log more than 64 entries short), "failed" (not heard from
  // within raft.failure_timeout_ms); empty elsewhere (a follower hears only its leader).
  std::string health;
  std::int64_t last_heard_ms = -1;  // since the last Raft message from it; -1: none since this node started
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
  std::uint64_t messages_dropped = 0;  // Raft messages the engine found impossible
  std::uint64_t persisted_entries = 0;
  net::TransportStats transport_stats;
  std::vector<MemberStatus> members;
  SnapshotSender::Stats snapshots_sent;
  std::uint64_t snapshots_sending = 0;  // transfers running now (leader)
  SnapshotReceiver::Stats snapshots_received;
  std::optional<SnapshotReceiver::Incoming> snapshot_incoming;
};

NodeStatus node_status(const RaftDriver& driver, const ReplicatedState& state);

// The status as one JSON object; `extension` adds fields before it closes.
std::string to_json(const NodeStatus& status, const std::function<void(JsonWriter&)>& extension = {});
// The control log's state as one JSON object (the status's "control" field), and a
// round's plan as fields of an object the caller opened.
void write_control(JsonWriter& out, const control::ControlState& control);
void write_topology_fields(JsonWriter& out, const control::Topology& topology);

}  // namespace raftfl::node
