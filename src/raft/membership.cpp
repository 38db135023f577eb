// Single-server membership changes (dissertation chapter 4): a configuration takes effect
// as soon as its entry is in the log, committed or not, and at most one may be uncommitted.
#include <algorithm>

#include "raftfl/raft/raft.hpp"

namespace raftfl::raft {

ProposeResult Raft::propose_conf_change(const ConfChange& change) {
  LeaderState* l = leader_state();
  if (!l) return {ProposeError::kNotLeader};
  if (l->transfer_target != kNoNode) return {ProposeError::kTransferring};
  // One change at a time keeps every two consecutive majorities overlapping. And none
  // before an entry of this term commits: without that, a change from an older term that
  // never committed can combine with ours into disjoint majorities (the single-server
  // change bug Ongaro described on raft-dev in 2015; the no-op closes it).
  if (last_config_index() > log_.committed() || log_.term(log_.committed()) != term_)
    return {ProposeError::kConfChangePending};
  if (conf_change_error(config(), change)) return {ProposeError::kInvalidConfChange};
  Index index = log_.append(term_, EntryType::kConfChange, Payload(encode_conf_change(change)));
  append_config(index, apply_conf_change(config(), change));
  sync_progress_with_config();
  l->broadcast_pending = true;
  return {ProposeError::kNone, index, term_};
}

void Raft::append_config(Index index, const Configuration& config) { configs_.push_back({index, config}); }

void Raft::track_conf_changes(const std::vector<Entry>& entries, Index first_new) {
  for (const Entry& e : entries) {
    if (e.index < first_new || e.type != EntryType::kConfChange) continue;
    auto change = decode_conf_change(e.data.view());
    if (!change) throw InvariantViolation("undecodable membership entry at index " + std::to_string(e.index));
    // The leader validated the change against the same configuration we hold here.
    append_config(e.index, apply_conf_change(config(), *change));
  }
}

void Raft::truncate_configs_from(Index index) {
  while (configs_.size() > 1 && configs_.back().index >= index) configs_.pop_back();
}

void Raft::compact_configs_to(Index index) {
  // Keep the last configuration at or before the snapshot point as the base.
  while (configs_.size() > 1 && configs_[1].index <= index) configs_.erase(configs_.begin());
}

const Configuration& Raft::config_at(Index index) const {
  for (auto it = configs_.rbegin(); it != configs_.rend(); ++it) {
    if (it->index <= index) return it->config;
  }
  return configs_.front().config;
}

void Raft::sync_progress_with_config() {
  LeaderState& l = std::get<LeaderState>(role_);
  const Configuration& cfg = config();
  for (auto it = l.progress.begin(); it != l.progress.end();) {
    if (!cfg.contains(it->first)) it = l.progress.erase(it);
    else ++it;
  }
  auto add = [&](NodeId peer) {
    if (peer == id() || l.progress.count(peer)) return;
    Progress pr(log_.last_index() + 1, options_.max_inflight_messages);
    // A new follower counts as active for the first check-quorum round.
    pr.recent_active = true;
    l.progress.emplace(peer, std::move(pr));
  };
  for (NodeId v : cfg.voters) add(v);
  for (NodeId v : cfg.learners) add(v);
}

}  // namespace raftfl::raft
