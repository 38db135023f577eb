#include "test_cluster.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string_view>

namespace raftfl::raft {

void PrintTo(const Configuration& config, std::ostream* os) {
  *os << "voters {";
  for (NodeId id : config.voters) *os << " " << id;
  *os << " } learners {";
  for (NodeId id : config.learners) *os << " " << id;
  *os << " }";
}
void PrintTo(Role role, std::ostream* os) { *os << to_string(role); }
void PrintTo(ProposeError error, std::ostream* os) { *os << to_string(error); }
void PrintTo(MessageType type, std::ostream* os) { *os << to_string(type); }
void PrintTo(ProgressState state, std::ostream* os) { *os << to_string(state); }

}  // namespace raftfl::raft

namespace raftfl::raft::test {
namespace {

// Far more than any scenario needs: reaching it means the nodes never go quiet.
constexpr std::size_t kMaxDeliveries = 100000;

std::string encode_state(const std::vector<std::string>& state) {
  std::string out;
  for (const std::string& s : state) out += s + '\n';
  return out;
}

std::vector<std::string> decode_state(std::string_view bytes) {
  std::vector<std::string> out;
  while (!bytes.empty()) {
    std::size_t end = bytes.find('\n');
    out.emplace_back(bytes.substr(0, end));
    bytes.remove_prefix(end + 1);
  }
  return out;
}

}  // namespace

Configuration make_config(std::vector<NodeId> voters, std::vector<NodeId> learners) {
  Configuration c;
  c.voters = std::move(voters);
  c.learners = std::move(learners);
  std::sort(c.voters.begin(), c.voters.end());
  std::sort(c.learners.begin(), c.learners.end());
  return c;
}

Storage bootstrap_storage(const Configuration& config) {
  auto snap = std::make_shared<Snapshot>();
  snap->meta.config = config;
  Storage s;
  s.snapshot = std::move(snap);
  return s;
}

Storage storage_with_log(const Configuration& config, Term term, const std::vector<Term>& log_terms) {
  Storage s = bootstrap_storage(config);
  s.hard_state.term = term;
  for (std::size_t i = 0; i < log_terms.size(); ++i) {
    Index index = i + 1;
    // Same index and term, same payload: what the log matching property promises.
    s.entries.push_back(Entry{log_terms[i], index, EntryType::kNormal,
                              Payload(std::to_string(log_terms[i]) + "." + std::to_string(index))});
  }
  return s;
}

std::vector<Term> log_terms(const RaftLog& log) {
  std::vector<Term> out;
  for (Index i = 1; i <= log.last_index(); ++i) out.push_back(log.term(i).value_or(0));
  return out;
}

MessagePredicate is(MessageType type, NodeId from, NodeId to) {
  return [=](const Message& m) {
    return m.type == type && (from == kNoNode || m.from == from) && (to == kNoNode || m.to == to);
  };
}

Cluster::Cluster(const Options& base) : base_(base) {}

Cluster::Cluster(const Configuration& config, const Options& base) : base_(base) {
  for (NodeId id : config.voters) add_node(id, bootstrap_storage(config));
  for (NodeId id : config.learners) add_node(id, bootstrap_storage(config));
}

void Cluster::add_node(NodeId id, Storage storage) {
  Node& n = nodes_[id];
  n.options = base_;
  n.options.id = id;
  n.storage = std::move(storage);
  start(n);
}

void Cluster::start(Node& n) {
  PersistedState persisted{n.storage.hard_state, n.storage.snapshot, n.storage.entries};
  n.raft = std::make_unique<Raft>(n.options, std::move(persisted));
  n.state = n.storage.snapshot ? decode_state(n.storage.snapshot->data.view()) : std::vector<std::string>{};
  n.applied = n.storage.snapshot ? n.storage.snapshot->meta.index : 0;
  n.read_states.clear();
}

Raft& Cluster::raft(NodeId id) {
  Node& n = node(id);
  if (!n.raft) throw std::logic_error("node " + std::to_string(id) + " is crashed");
  return *n.raft;
}

NodeId Cluster::leader() const {
  NodeId best = kNoNode;
  Term best_term = 0;
  for (const auto& [id, n] : nodes_) {
    if (n.raft && n.raft->role() == Role::kLeader && (best == kNoNode || n.raft->term() > best_term)) {
      best = id;
      best_term = n.raft->term();
    }
  }
  return best;
}

Ready Cluster::process_ready(NodeId id) {
  Node& n = node(id);
  if (!n.raft || !n.raft->has_ready()) return {};
  Ready rd = n.raft->ready();
  for (const Message& m : rd.messages) send(m);
  persist(n, rd);
  for (const Message& m : rd.messages_after_persist) send(m);
  apply(n, rd);
  if (rd.soft_state && rd.soft_state->role == Role::kLeader) {
    auto& leaders = leaders_by_term_[n.raft->term()];
    leaders.insert(id);
    EXPECT_EQ(leaders.size(), 1u) << "two leaders in term " << n.raft->term();
  }
  n.raft->advance(rd);
  n.raft->check_invariants();
  return rd;
}

void Cluster::process_all() {
  for (std::size_t round = 0;; ++round) {
    bool any = false;
    for (auto& [id, n] : nodes_) {
      if (n.raft && n.raft->has_ready()) {
        process_ready(id);
        any = true;
      }
    }
    if (!any) return;
    if (round > kMaxDeliveries) {
      ADD_FAILURE() << "Readies never stop coming";
      return;
    }
  }
}

void Cluster::persist(Node& n, const Ready& rd) {
  Storage& s = n.storage;
  if (rd.snapshot) {
    s.snapshot = rd.snapshot;
    s.entries.clear();
  }
  if (!rd.entries.empty()) {
    Index first = rd.entries.front().index;
    while (!s.entries.empty() && s.entries.back().index >= first) s.entries.pop_back();
    for (const Entry& e : rd.entries) {
      Index expected = s.entries.empty() ? (s.snapshot ? s.snapshot->meta.index : 0) + 1 : s.entries.back().index + 1;
      EXPECT_EQ(e.index, expected) << "node " << n.options.id << " was asked to persist a gap";
      s.entries.push_back(e);
    }
  }
  if (rd.hard_state) s.hard_state = *rd.hard_state;
}

void Cluster::apply(Node& n, const Ready& rd) {
  if (rd.snapshot) {
    n.state = decode_state(rd.snapshot->data.view());
    n.applied = rd.snapshot->meta.index;
  }
  for (const Entry& e : rd.committed_entries) {
    EXPECT_EQ(e.index, n.applied + 1) << "node " << n.options.id << " applies out of order";
    n.applied = e.index;
    if (e.type == EntryType::kNormal) n.state.emplace_back(e.data.view());
  }
  for (const ReadState& rs : rd.read_states) n.read_states.push_back(rs);
}

void Cluster::send(const Message& m) {
  sent_.push_back(m);
  queue_.push_back(m);
}

bool Cluster::lost(const Message& m) const {
  auto it = nodes_.find(m.to);
  if (it == nodes_.end() || !it->second.raft) return true;
  if (isolated_.count(m.from) || isolated_.count(m.to)) return true;
  return std::any_of(drop_rules_.begin(), drop_rules_.end(), [&](const MessagePredicate& r) { return r(m); });
}

bool Cluster::deliver_one() {
  if (queue_.empty()) return false;
  Message m = std::move(queue_.front());
  queue_.pop_front();
  if (!lost(m)) nodes_.at(m.to).raft->step(m);
  return true;
}

std::size_t Cluster::deliver_if(const MessagePredicate& pred) {
  std::deque<Message> rest;
  std::vector<Message> picked;
  for (Message& m : queue_) {
    if (pred(m)) picked.push_back(std::move(m));
    else rest.push_back(std::move(m));
  }
  // Whatever the recipients send now queues behind what was already waiting.
  queue_ = std::move(rest);
  for (const Message& m : picked) {
    if (!lost(m)) nodes_.at(m.to).raft->step(m);
  }
  return picked.size();
}

void Cluster::deliver_all() {
  for (std::size_t n = 0;; ++n) {
    process_all();
    if (queue_.empty()) return;
    if (n > kMaxDeliveries) {
      ADD_FAILURE() << "messages never stop";
      return;
    }
    deliver_one();
  }
}

std::size_t Cluster::count_sent(const MessagePredicate& pred) const {
  return static_cast<std::size_t>(std::count_if(sent_.begin(), sent_.end(), pred));
}

void Cluster::tick(NodeId id, int n) {
  for (int i = 0; i < n; ++i) raft(id).tick();
}

void Cluster::tick_all(int rounds) {
  for (int r = 0; r < rounds; ++r) {
    for (auto& [id, n] : nodes_) {
      if (n.raft) n.raft->tick();
    }
    deliver_all();
  }
}

void Cluster::campaign(NodeId id) {
  for (int i = 0; i < node(id).options.election_timeout_max_ticks && raft(id).role() == Role::kFollower; ++i)
    raft(id).tick();
  EXPECT_NE(raft(id).role(), Role::kFollower) << "node " << id << " did not campaign";
}

bool Cluster::elect(NodeId id) {
  campaign(id);
  deliver_all();
  return raft(id).role() == Role::kLeader;
}

void Cluster::crash(NodeId id) {
  Node& n = node(id);
  n.raft.reset();
  n.state.clear();
  n.applied = 0;
  n.read_states.clear();
}

void Cluster::restart(NodeId id) { start(node(id)); }

ProposeResult Cluster::propose(NodeId id, const std::string& data) { return raft(id).propose(Payload(data)); }

bool Cluster::compact(NodeId id) {
  Node& n = node(id);
  Index index = n.applied;
  if (!raft(id).compact(index, Payload(encode_state(n.state)))) return false;
  // The snapshot is durable before the entries it covers go.
  n.storage.snapshot = raft(id).snapshot();
  auto& entries = n.storage.entries;
  entries.erase(entries.begin(),
                std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.index > index; }));
  return true;
}

}  // namespace raftfl::raft::test
