#pragma once

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

// Checks Raft's safety properties (Figure 3 of the Raft paper) and the client's view of
// them on a stream of observations. It sees only what it is told, so hand-made
// histories can test it as well as the simulator can feed it. Entries are identified by
// the hash of the whole log prefix they end ("prefix hash"), so comparing two logs up to
// an index is one comparison.
class Checker {
 public:
  // A node became leader of `term`. `hash_at` gives its prefix hash for every index in
  // [snapshot_index, last_index].
  void on_leader(NodeId node, Term term, Index snapshot_index, Index last_index,
                 const std::function<std::uint64_t(Index)>& hash_at);
  // An entry became durable in a node's log.
  void on_log_entry(NodeId node, Index index, Term term, std::uint64_t prefix_hash);
  // A node's durable log lost its entries from `from` on; `was_leader` if it led then.
  void on_log_truncated(NodeId node, Index from, bool was_leader, Term term);
  // A node's commit index reached `index` while at `term`.
  void on_commit(NodeId node, Term term, Index index, std::uint64_t prefix_hash);
  // A node applied the entry at `index` to its state machine.
  void on_apply(NodeId node, Index index, std::uint64_t prefix_hash);
  // The client was told that proposal `id` committed.
  void on_acknowledged(std::uint64_t id);
  // A linearizable read was issued when entries up to `known_committed` had been applied.
  void on_read_issued(std::uint64_t read, Index known_committed);
  // ...and a node answered it with a read index.
  void on_read_answered(NodeId node, std::uint64_t read, Index index);
  // At the end: the proposals each live member applied, in order.
  void check_final(const std::map<NodeId, std::vector<std::uint64_t>>& applied);
  void on_liveness_failure(const std::string& what);
  // A bug the engine found in itself.
  void on_engine_error(const std::string& what);

  const std::vector<Violation>& violations() const { return violations_; }
  bool ok() const { return violations_.empty(); }

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
  std::unordered_map<IndexTerm, std::uint64_t, IndexTermHash> entry_hash_;
  std::map<Term, Index> max_commit_in_term_;
  std::unordered_map<Index, std::uint64_t> committed_hash_;
  std::unordered_map<Index, std::uint64_t> applied_hash_;
  std::unordered_map<std::uint64_t, Index> reads_;
  std::vector<std::uint64_t> acknowledged_;
  std::unordered_set<std::uint64_t> acknowledged_set_;
  std::vector<Violation> violations_;
};

}  // namespace raftfl::sim
