#include "checker.hpp"

#include <algorithm>

namespace raftfl::sim {
namespace {

std::string str(std::uint64_t v) { return std::to_string(v); }

}  // namespace

void Checker::flag(const char* invariant, std::string detail) {
  // One report per invariant and detail is enough; a broken run would repeat it forever.
  if (violations_.size() < 32) violations_.push_back({invariant, std::move(detail)});
}

void Checker::on_leader(NodeId node, Term term, Index snapshot_index, Index last_index,
                        const std::function<std::uint64_t(Index)>& hash_at) {
  auto [it, inserted] = leader_of_term_.emplace(term, node);
  if (!inserted && it->second != node) {
    flag("election safety", "nodes " + str(it->second) + " and " + str(node) + " both led term " + str(term));
  }
  // Leader completeness: every entry committed in an earlier term is in this log.
  Index committed = 0;
  for (const auto& [t, index] : max_commit_in_term_) {
    if (t >= term) break;
    committed = std::max(committed, index);
  }
  if (committed == 0) return;
  if (committed > last_index) {
    flag("leader completeness", "leader " + str(node) + " of term " + str(term) + " ends at " + str(last_index) +
                                    " but " + str(committed) + " was committed earlier");
  } else if (committed >= snapshot_index && hash_at(committed) != committed_hash_.at(committed)) {
    flag("leader completeness",
         "leader " + str(node) + " of term " + str(term) + " holds a different entry at committed index " + str(committed));
  }
}

void Checker::on_log_entry(NodeId node, Index index, Term term, std::uint64_t prefix_hash) {
  auto [it, inserted] = entry_hash_.emplace(IndexTerm{index, term}, prefix_hash);
  if (!inserted && it->second != prefix_hash) {
    flag("log matching", "node " + str(node) + " holds an entry at index " + str(index) + ", term " + str(term) +
                             " whose log differs from another node's entry of the same index and term");
  }
}

void Checker::on_log_truncated(NodeId node, Index from, bool was_leader, Term term) {
  if (was_leader) {
    flag("leader append-only",
         "leader " + str(node) + " of term " + str(term) + " lost its entries from index " + str(from));
  }
}

void Checker::on_commit(NodeId node, Term term, Index index, std::uint64_t prefix_hash) {
  if (index == 0) return;
  auto [it, inserted] = committed_hash_.emplace(index, prefix_hash);
  if (!inserted && it->second != prefix_hash) {
    flag("state machine safety", "node " + str(node) + " committed a different entry at index " + str(index));
  }
  Index& max = max_commit_in_term_[term];
  max = std::max(max, index);
}

void Checker::on_apply(NodeId node, Index index, std::uint64_t prefix_hash) {
  auto [it, inserted] = applied_hash_.emplace(index, prefix_hash);
  if (!inserted && it->second != prefix_hash) {
    flag("state machine safety", "node " + str(node) + " applied a different entry at index " + str(index));
  }
}

void Checker::on_acknowledged(std::uint64_t id) {
  if (acknowledged_set_.insert(id).second) acknowledged_.push_back(id);
}

void Checker::on_read_issued(std::uint64_t read, Index known_committed) { reads_[read] = known_committed; }

void Checker::on_read_answered(NodeId node, std::uint64_t read, Index index) {
  auto it = reads_.find(read);
  if (it == reads_.end()) {
    flag("linearizable read", "node " + str(node) + " answered read " + str(read) + " that nobody issued");
    return;
  }
  // A read must observe every write acknowledged before it began.
  if (index < it->second) {
    flag("linearizable read", "node " + str(node) + " answered read " + str(read) + " at index " + str(index) +
                                  " after index " + str(it->second) + " had already been applied");
  }
}

void Checker::check_final(const std::map<NodeId, std::vector<std::uint64_t>>& applied) {
  const std::vector<std::uint64_t>* reference = nullptr;
  NodeId reference_node = 0;
  for (const auto& [node, ids] : applied) {
    std::unordered_map<std::uint64_t, int> count;
    for (std::uint64_t id : ids) {
      if (++count[id] == 2) flag("client oracle", "node " + str(node) + " applied proposal " + str(id) + " twice");
    }
    for (std::uint64_t id : acknowledged_) {
      if (!count.count(id)) {
        flag("client oracle", "node " + str(node) + " never applied acknowledged proposal " + str(id));
        break;
      }
    }
    if (!reference) {
      reference = &ids;
      reference_node = node;
    } else if (ids != *reference) {
      flag("client oracle", "nodes " + str(reference_node) + " and " + str(node) + " applied different sequences");
    }
  }
}

void Checker::on_liveness_failure(const std::string& what) { flag("liveness", what); }

void Checker::on_engine_error(const std::string& what) { flag("engine invariant", what); }

}  // namespace raftfl::sim
