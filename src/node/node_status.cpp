#include "node_status.hpp"

#include <chrono>

#include "raftfl/node/membership_manager.hpp"
#include "raftfl/node/raft_driver.hpp"
#include "raftfl/node/replicated_state.hpp"

namespace raftfl::node {

NodeStatus node_status(const RaftDriver& driver, const ReplicatedState& state) {
  const auto now = std::chrono::steady_clock::now();
  const auto& config = driver.config();
  const auto& raft = driver.raft();
  const auto& transport = driver.transport();
  NodeStatus s;
  s.id = config.id;
  s.cluster_id = config.cluster_id;
  s.role = raft::to_string(raft.role());
  s.term = raft.term();
  s.leader = raft.leader();
  s.commit = raft.log().committed();
  s.applied = state.applied();
  s.first_index = raft.log().first_index();
  s.last_index = raft.log().last_index();
  s.snapshot_index = raft.log().snapshot_index();
  s.transport = config.transport == TransportKind::kTcp ? "tcp" : "zmq";
  s.storage = config.storage == StorageKind::kDisk ? "disk" : "memory";
  s.kv_keys = state.kv().size();
  s.kv_digest = state.kv().digest();
  s.proposals_pending = driver.proposals_pending();
  s.persists = driver.persists();
  s.persisted_entries = driver.persisted_entries();
  s.messages_dropped = driver.messages_dropped();
  s.transport_stats = transport.stats();
  s.snapshots_sent = driver.snapshot_sender().stats();
  s.snapshots_sending = driver.snapshot_sender().active();
  s.snapshots_received = driver.snapshot_receiver().stats();
  s.snapshot_incoming = driver.snapshot_receiver().incoming();
  auto add = [&](raft::NodeId id, bool voter) {
    MemberStatus m;
    m.id = id;
    m.voter = voter;
    if (id == config.id) {
      m.state = "self";
      m.match = raft.log().last_index();
      m.next = m.match + 1;
      m.connected = true;
    } else {
      m.connected = transport.connected(id);
      if (const auto* pr = raft.progress(id)) {
        m.match = pr->match;
        m.next = pr->next;
        m.state = raft::to_string(pr->state);
      }
      if (const auto heard = driver.last_heard(id))
        m.last_heard_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - *heard).count();
    }
    if (driver.is_leader()) m.health = to_string(member_health(driver, id, now));
    s.members.push_back(std::move(m));
  };
  for (auto id : raft.config().voters) add(id, true);
  for (auto id : raft.config().learners) add(id, false);
  return s;
}

}  // namespace raftfl::node
