#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "raftfl/raft/types.hpp"

namespace raftfl::sim {

using raft::Index;
using raft::NodeId;
using raft::Term;

struct Violation {
  std::string invariant;  // "election safety", "log matching", ...
  std::string detail;
};

// A client request's session: the client and its sequence number (Raft dissertation
// section 6.3). Every retry of a request carries the same pair.
struct ClientOp {
  std::uint64_t client = 0;
  std::uint64_t seq = 0;
  auto operator<=>(const ClientOp&) const = default;
};
std::string to_string(ClientOp op);

// How many observations of each kind the checker was fed: a run that feeds it none of
// some kind checks nothing about it, however clean its report.
struct CheckerCounts {
  std::uint64_t leaders = 0;          // became leader
  std::uint64_t leader_checks = 0;    // a leader's log checked for completeness
  std::uint64_t log_entries = 0;      // durable entries
  std::uint64_t truncations = 0;      // durable logs cut back
  std::uint64_t commits = 0;          // indexes compared as committed
  std::uint64_t applies = 0;          // indexes compared as applied
  std::uint64_t requests = 0;         // client requests made
  std::uint64_t acknowledged = 0;     // client requests acknowledged
  std::uint64_t reads_answered = 0;   // read indexes checked
  std::uint64_t final_members = 0;    // members whose whole history the client oracle checked
  std::uint64_t final_requests = 0;   // requests the client oracle found executed
  CheckerCounts& operator+=(const CheckerCounts& other);
};

// Checks Raft's safety properties (Figure 3 of the Raft paper) and the client's view of
// them on a stream of observations. It sees only what it is told, so hand-made
// histories can test it as well as the simulator can feed it. Entries are identified by
// the hash of the whole log prefix they end ("prefix hash"), so comparing two logs up to
// an index is one comparison.
class Checker {
 public:
  // A node became leader of `term` (seen in its engine, persisted or not).
  void on_leader(NodeId node, Term term);
  // Leader completeness, for a node that leads `term` now: its log (in memory, durable
  // or not) must hold every entry committed in an earlier term. `hash_at` gives its
  // prefix hash for every index in [snapshot_index, last_index].
  void check_leader_log(NodeId node, Term term, Index snapshot_index, Index last_index,
                        const std::function<std::uint64_t(Index)>& hash_at);
  // An entry became durable in a node's log.
  void on_log_entry(NodeId node, Index index, Term term, std::uint64_t prefix_hash);
  // A node's durable log lost its entries from `from` on; `was_leader` if it led then.
  void on_log_truncated(NodeId node, Index from, bool was_leader, Term term);
  // A node's durable commit index passed `index` while at `term`. Called for every index
  // a commit passes, not only the last: two nodes may never stop at the same one.
  void on_commit(NodeId node, Term term, Index index, std::uint64_t prefix_hash);
  // A node applied the entry at `index` to its state machine.
  void on_apply(NodeId node, Index index, std::uint64_t prefix_hash);
  // A client made a new request (retries are not new).
  void on_request(ClientOp op);
  // The client was told that its request was executed.
  void on_acknowledged(ClientOp op);
  // A linearizable read was issued when entries up to `known_committed` had been applied.
  void on_read_issued(std::uint64_t read, Index known_committed);
  // ...and a node answered it with a read index.
  void on_read_answered(NodeId node, std::uint64_t read, Index index);
  // At the end: the requests each live member executed, in order, over its whole history.
  // Exactly once: every acknowledged request executed once on every member, none twice,
  // none that no client made, and all members in one order.
  void check_final(const std::map<NodeId, std::vector<ClientOp>>& executed);
  void on_liveness_failure(const std::string& what);
  // A bug the engine found in itself.
  void on_engine_error(const std::string& what);

  const std::vector<Violation>& violations() const { return violations_; }
  bool ok() const { return violations_.empty(); }
  const CheckerCounts& counts() const { return counts_; }

 private:
  void flag(const char* invariant, std::string detail);

  std::map<Term, NodeId> leader_of_term_;
  struct IndexTerm {
    Index index;
    Term term;
    bool operator==(const IndexTerm&) const = default;
  };
  struct IndexTermHash {
    std::size_t operator()(const IndexTerm& k) const { return k.index * 0x9e3779b97f4a7c15ULL ^ k.term; }
  };
  struct OpHash {
    std::size_t operator()(const ClientOp& op) const { return op.client * 0x9e3779b97f4a7c15ULL ^ op.seq; }
  };
  std::unordered_map<IndexTerm, std::uint64_t, IndexTermHash> entry_hash_;
  // Per term, the highest index a node at that term knew committed: an entry committed
  // then was committed in that term or an earlier one.
  std::map<Term, Index> max_commit_in_term_;
  // The highest index committed before `committed_before_term_`: leaders are checked after
  // every event, nearly always in the same term, so the answer is kept and updated.
  Term committed_before_term_ = 0;
  Index committed_before_ = 0;
  std::unordered_map<Index, std::uint64_t> committed_hash_;
  std::unordered_map<Index, std::uint64_t> applied_hash_;
  std::unordered_map<std::uint64_t, Index> reads_;
  std::unordered_set<ClientOp, OpHash> requested_;
  std::vector<ClientOp> acknowledged_;
  std::unordered_set<ClientOp, OpHash> acknowledged_set_;
  std::vector<Violation> violations_;
  CheckerCounts counts_;
};

}  // namespace raftfl::sim
