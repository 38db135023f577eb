#pragma once

// A small, fully manual harness for scenario tests: N engines, one in-memory storage per
// node that applies each Ready exactly as ready.hpp asks, and a FIFO network that a test
// drives message by message or all at once. Nothing happens unless the test asks for it:
// no clock, no background delivery, no hidden retries.

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "raftfl/raft/raft.hpp"

namespace raftfl::raft {
// Readable gtest failure messages.
void PrintTo(const Configuration& config, std::ostream* os);
void PrintTo(Role role, std::ostream* os);
void PrintTo(ProposeError error, std::ostream* os);
void PrintTo(MessageType type, std::ostream* os);
void PrintTo(ProgressState state, std::ostream* os);
}  // namespace raftfl::raft

namespace raftfl::raft::test {

inline constexpr int kMinTimeout = Options{}.election_timeout_min_ticks;
inline constexpr int kMaxTimeout = Options{}.election_timeout_max_ticks;
inline constexpr int kHeartbeat = Options{}.heartbeat_interval_ticks;

// What a node made durable; all a restart gets back.
struct Storage {
  HardState hard_state;
  std::shared_ptr<const Snapshot> snapshot;  // null for a node that has not joined yet
  std::vector<Entry> entries;                // the entries after the snapshot
};

Configuration make_config(std::vector<NodeId> voters, std::vector<NodeId> learners = {});
// How a member of a brand-new cluster starts: a snapshot at index 0 holding only the configuration.
Storage bootstrap_storage(const Configuration& config);
// A member whose log holds one entry of each of `log_terms`, at indexes 1, 2, ..., and
// whose current term is `term` (the paper's figures start from such logs).
Storage storage_with_log(const Configuration& config, Term term, const std::vector<Term>& log_terms);

// The terms of entries 1..last_index (0 for compacted ones): logs compare at a glance.
std::vector<Term> log_terms(const RaftLog& log);

using MessagePredicate = std::function<bool(const Message&)>;
MessagePredicate is(MessageType type, NodeId from = kNoNode, NodeId to = kNoNode);

struct Node {
  Options options;
  std::unique_ptr<Raft> raft;  // null while crashed
  Storage storage;
  // The application's state machine: the payloads of applied normal entries, in order.
  std::vector<std::string> state;
  Index applied = 0;
  std::vector<ReadState> read_states;
};

class Cluster {
 public:
  explicit Cluster(const Options& base = Options{});
  // Bootstraps every member of `config`.
  explicit Cluster(const Configuration& config, const Options& base = Options{});

  // Storage{} is a joining node: no snapshot, no log, not even the configuration.
  void add_node(NodeId id, Storage storage);
  Node& node(NodeId id) { return nodes_.at(id); }
  Raft& raft(NodeId id);
  // The running leader of the highest term, or kNoNode.
  NodeId leader() const;
  // Who became leader in which term, as observed in the Readies.
  const std::map<Term, std::set<NodeId>>& leaders_by_term() const { return leaders_by_term_; }

  // The driver. process_ready() runs one Ready through the contract: send `messages`,
  // persist snapshot, entries, hard state, send `messages_after_persist`, install the
  // snapshot and apply, then advance(). It returns the Ready for inspection.
  Ready process_ready(NodeId id);
  void process_all();  // until no running node has a Ready

  // The network: every message sent goes to the back of queue(). Delivery steps it into
  // its recipient (no Ready is processed); a message to a crashed or isolated node, from
  // an isolated one, or matching a drop rule is lost at delivery.
  std::deque<Message>& queue() { return queue_; }
  bool deliver_one();
  std::size_t deliver_if(const MessagePredicate& pred);  // one pass; the rest stay queued
  void deliver_all();  // processes Readies and delivers until nothing is left to do
  void isolate(NodeId id) { isolated_.insert(id); }
  void heal() { isolated_.clear(); }
  void drop_if(MessagePredicate rule) { drop_rules_.push_back(std::move(rule)); }
  void clear_drop_rules() { drop_rules_.clear(); }
  // Every message sent since the start, delivered or not.
  const std::vector<Message>& sent() const { return sent_; }
  std::size_t count_sent(const MessagePredicate& pred) const;

  // Time. tick() only ticks; tick_all() ticks every running node once per round and then
  // delivers everything, `rounds` times.
  void tick(NodeId id, int n = 1);
  void tick_all(int rounds = 1);
  // Ticks `id` alone until it starts an election (a pre-vote first, when that is on).
  void campaign(NodeId id);
  // campaign(), then delivers everything. True if `id` leads.
  bool elect(NodeId id);

  // Failures: a crash loses all but the storage; a restart rebuilds from it.
  void crash(NodeId id);
  void restart(NodeId id);

  // The application.
  ProposeResult propose(NodeId id, const std::string& data);
  // Snapshots `id`'s state machine at its applied index and drops the log before it.
  bool compact(NodeId id);

 private:
  void start(Node& n);
  void send(const Message& m);
  bool lost(const Message& m) const;
  void persist(Node& n, const Ready& rd);
  void apply(Node& n, const Ready& rd);

  Options base_;
  std::map<NodeId, Node> nodes_;
  std::deque<Message> queue_;
  std::vector<Message> sent_;
  std::set<NodeId> isolated_;
  std::vector<MessagePredicate> drop_rules_;
  std::map<Term, std::set<NodeId>> leaders_by_term_;
};

}  // namespace raftfl::raft::test
