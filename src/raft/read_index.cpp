// Linearizable reads without log writes (dissertation section 6.4): the leader records
// its commit index, confirms with a heartbeat round that it is still the leader, and only
// then answers; the reader waits until that index is applied.
#include <algorithm>

#include "raftfl/raft/raft.hpp"

namespace raftfl::raft {

bool Raft::read_index(Payload context) {
  if (leader_state()) {
    handle_read_index_request(id(), std::move(context));
    return true;
  }
  NodeId to = leader();
  if (to == kNoNode) return false;
  Message m;
  m.type = MessageType::kReadIndex;
  m.to = to;
  m.context = std::move(context);
  send(std::move(m));
  return true;
}

void Raft::handle_read_index_request(NodeId requester, Payload context) {
  LeaderState& l = std::get<LeaderState>(role_);
  // Until an entry of its term commits, a new leader does not know the true commit index.
  if (log_.term(log_.committed()) != term_) {
    l.reads_before_commit.push_back({0, 0, std::move(context), requester, {}});
    return;
  }
  start_read(l, requester, std::move(context));
}

void Raft::start_read(LeaderState& l, NodeId requester, Payload context) {
  PendingRead read{0, log_.committed(), std::move(context), requester, {}};
  if (config().voters.size() == 1 && config().is_voter(id())) {
    release_read(read);  // alone, we are the quorum
    return;
  }
  read.seq = ++l.read_seq;
  if (config().is_voter(id())) read.acks.push_back(id());
  l.reads.push_back(std::move(read));
  broadcast_heartbeat(l.read_seq);
}

void Raft::ack_reads(NodeId from, std::uint64_t seq) {
  LeaderState& l = std::get<LeaderState>(role_);
  if (!config().is_voter(from)) return;
  for (PendingRead& read : l.reads) {
    if (read.seq > seq) break;
    if (std::find(read.acks.begin(), read.acks.end(), from) == read.acks.end()) read.acks.push_back(from);
  }
  // Acks for a round count for every earlier round too, so the confirmed reads are a
  // prefix of the queue.
  auto confirmed = l.reads.begin();
  while (confirmed != l.reads.end() && confirmed->acks.size() >= config().quorum()) ++confirmed;
  std::vector<PendingRead> done(std::make_move_iterator(l.reads.begin()), std::make_move_iterator(confirmed));
  l.reads.erase(l.reads.begin(), confirmed);
  for (const PendingRead& read : done) release_read(read);
}

void Raft::release_read(const PendingRead& read) {
  if (read.requester == id()) {
    read_states_.push_back({read.index, read.context});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResp;
  m.to = read.requester;
  m.index = read.index;
  m.context = read.context;
  send(std::move(m));
}

void Raft::release_reads_waiting_for_commit() {
  LeaderState& l = std::get<LeaderState>(role_);
  if (l.reads_before_commit.empty() || log_.term(log_.committed()) != term_) return;
  std::vector<PendingRead> waiting = std::move(l.reads_before_commit);
  l.reads_before_commit.clear();
  for (PendingRead& read : waiting) start_read(l, read.requester, std::move(read.context));
}

}  // namespace raftfl::raft
