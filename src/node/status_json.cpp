#include <cstdio>

#include "raftfl/common/json_writer.hpp"
#include "node_status.hpp"

namespace raftfl::node {

void write_topology_fields(JsonWriter& w, const control::Topology& t) {
  w.field("round", t.round).field("coordinator_term", t.coordinator_term).field("mask_seed", t.mask_seed);
  w.field("spectral_gap", t.spectral_gap);
  w.key("pairs").begin_array();
  for (const auto& [a, b] : t.matching.pairs) w.begin_array().value(a).value(b).end_array();
  w.end_array().key("idle").begin_array();
  for (auto id : t.matching.idle) w.value(id);
  w.end_array().key("fresh").begin_array();
  for (auto id : t.fresh) w.value(id);
  w.end_array();
}

void write_control(JsonWriter& w, const control::ControlState& control) {
  w.begin_object();
  w.field("coordinator", control.coordinator().leader).field("coordinator_term", control.coordinator().term);
  w.field("first_round", control.coordinator().first_round).field("last_round", control.last_round());
  w.field("shard_count", static_cast<std::uint64_t>(control.data().shard_count));
  w.key("members").begin_array();
  for (const auto& [id, m] : control.members()) {
    // The Raft role is in the top-level "members"; this is the training side's view.
    w.begin_object().field("id", id).field("endpoint", m.endpoint);
    w.field("worker", m.worker()).field("failed", m.failed).key("shards").begin_array();
    for (auto shard : m.shards) w.value(static_cast<std::uint64_t>(shard));
    w.end_array().end_object();
  }
  w.end_array();
  w.field("bandwidth_cells", static_cast<std::uint64_t>(control.data().bandwidth.size()));
  if (const auto* t = control.topology(control.last_round())) {
    w.key("last_topology").begin_object();
    write_topology_fields(w, *t);
    w.end_object();
  }
  w.end_object();
}

std::string to_json(const NodeStatus& s, const std::function<void(JsonWriter&)>& extension) {
  char digest[17];
  std::snprintf(digest, sizeof(digest), "%016llx", static_cast<unsigned long long>(s.kv_digest));
  JsonWriter w;
  w.begin_object();
  w.field("id", s.id).field("cluster_id", s.cluster_id).field("role", s.role).field("term", s.term);
  w.field("leader", s.leader).field("commit", s.commit).field("applied", s.applied);
  w.field("first_index", s.first_index).field("last_index", s.last_index).field("snapshot_index", s.snapshot_index);
  w.field("transport", s.transport).field("storage", s.storage);
  w.field("kv_keys", s.kv_keys).field("kv_digest", std::string_view(digest));
  w.field("proposals_pending", s.proposals_pending).field("persists", s.persists);
  w.field("persisted_entries", s.persisted_entries).field("messages_dropped", s.messages_dropped);
  w.key("transport_stats").begin_object();
  w.field("frames_sent", s.transport_stats.frames_sent).field("frames_received", s.transport_stats.frames_received);
  w.field("bytes_sent", s.transport_stats.bytes_sent).field("bytes_received", s.transport_stats.bytes_received);
  w.field("sends_refused", s.transport_stats.sends_refused);
  w.field("connections_refused", s.transport_stats.connections_refused);
  w.field("frames_rejected", s.transport_stats.frames_rejected);
  w.end_object();
  w.key("snapshot_transfers").begin_object();
  w.field("sending", s.snapshots_sending).field("sent", s.snapshots_sent.completed);
  w.field("send_resumed", s.snapshots_sent.resumed).field("send_given_up", s.snapshots_sent.given_up);
  w.field("chunks_sent", s.snapshots_sent.chunks_sent).field("bytes_sent", s.snapshots_sent.bytes_sent);
  w.field("received", s.snapshots_received.completed).field("receive_resumed", s.snapshots_received.resumed);
  w.field("bytes_received", s.snapshots_received.bytes_received).field("damaged", s.snapshots_received.damaged);
  if (s.snapshot_incoming) {
    w.key("incoming").begin_object();
    w.field("index", s.snapshot_incoming->index).field("term", s.snapshot_incoming->term);
    w.field("held_bytes", s.snapshot_incoming->held).field("total_bytes", s.snapshot_incoming->total_bytes);
    w.end_object();
  }
  w.end_object();
  w.key("members").begin_array();
  for (const auto& m : s.members) {
    w.begin_object();
    w.field("id", m.id).field("voter", m.voter).field("match", m.match).field("next", m.next);
    w.field("state", m.state).field("connected", m.connected).field("last_heard_ms", m.last_heard_ms);
    if (!m.health.empty()) w.field("health", m.health);
    w.end_object();
  }
  w.end_array();
  if (extension) extension(w);
  w.end_object();
  return w.str();
}

}  // namespace raftfl::node
