#include "checker.hpp"

#include <algorithm>

namespace raftfl::sim {
namespace {

std::string str(std::uint64_t v) { return std::to_string(v); }

}  // namespace

std::string to_string(ClientOp op) { return "client " + str(op.client) + " seq " + str(op.seq); }

CheckerCounts& CheckerCounts::operator+=(const CheckerCounts& o) {
  leaders += o.leaders;
  leader_checks += o.leader_checks;
  log_entries += o.log_entries;
  truncations += o.truncations;
  commits += o.commits;
  applies += o.applies;
  requests += o.requests;
  acknowledged += o.acknowledged;
  reads_answered += o.reads_answered;
  final_members += o.final_members;
  final_requests += o.final_requests;
  return *this;
}

void Checker::flag(const char* invariant, std::string detail) {
  // One report per invariant and detail is enough; a broken run would repeat it forever.
  if (violations_.size() < 32) violations_.push_back({invariant, std::move(detail)});
}

void Checker::on_leader(NodeId node, Term term) {
  ++counts_.leaders;
  auto [it, inserted] = leader_of_term_.emplace(term, node);
  if (!inserted && it->second != node) {
    flag("election safety", "nodes " + str(it->second) + " and " + str(node) + " both led term " + str(term));
  }
}

void Checker::check_leader_log(NodeId node, Term term, Index snapshot_index, Index last_index,
                               const std::function<std::uint64_t(Index)>& hash_at) {
  ++counts_.leader_checks;
  if (term != committed_before_term_) {
    committed_before_term_ = term;
    committed_before_ = 0;
    for (const auto& [t, index] : max_commit_in_term_) {
      if (t >= term) break;
      committed_before_ = std::max(committed_before_, index);
    }
  }
  Index committed = committed_before_;
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
  ++counts_.log_entries;
  auto [it, inserted] = entry_hash_.emplace(IndexTerm{index, term}, prefix_hash);
  if (!inserted && it->second != prefix_hash) {
    flag("log matching", "node " + str(node) + " holds an entry at index " + str(index) + ", term " + str(term) +
                             " whose log differs from another node's entry of the same index and term");
  }
}

void Checker::on_log_truncated(NodeId node, Index from, bool was_leader, Term term) {
  ++counts_.truncations;
  if (was_leader) {
    flag("leader append-only",
         "leader " + str(node) + " of term " + str(term) + " lost its entries from index " + str(from));
  }
}

void Checker::on_commit(NodeId node, Term term, Index index, std::uint64_t prefix_hash) {
  if (index == 0) return;
  ++counts_.commits;
  auto [it, inserted] = committed_hash_.emplace(index, prefix_hash);
  if (!inserted && it->second != prefix_hash) {
    flag("state machine safety", "node " + str(node) + " committed a different entry at index " + str(index));
  }
  Index& max = max_commit_in_term_[term];
  max = std::max(max, index);
  if (term < committed_before_term_) committed_before_ = std::max(committed_before_, index);
}

void Checker::on_apply(NodeId node, Index index, std::uint64_t prefix_hash) {
  ++counts_.applies;
  auto [it, inserted] = applied_hash_.emplace(index, prefix_hash);
  if (!inserted && it->second != prefix_hash) {
    flag("state machine safety", "node " + str(node) + " applied a different entry at index " + str(index));
  }
  // Only a committed entry may be applied: the one committed at its index.
  if (auto c = committed_hash_.find(index); c != committed_hash_.end() && c->second != prefix_hash) {
    flag("state machine safety",
         "node " + str(node) + " applied an entry at index " + str(index) + " other than the one committed there");
  }
}

void Checker::on_request(ClientOp op) {
  ++counts_.requests;
  requested_.insert(op);
}

void Checker::on_acknowledged(ClientOp op) {
  ++counts_.acknowledged;
  if (!requested_.count(op)) flag("client oracle", to_string(op) + " was acknowledged but never requested");
  if (acknowledged_set_.insert(op).second) acknowledged_.push_back(op);
}

void Checker::on_read_issued(std::uint64_t read, Index known_committed) { reads_[read] = known_committed; }

void Checker::on_read_answered(NodeId node, std::uint64_t read, Index index) {
  ++counts_.reads_answered;
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

void Checker::check_final(const std::map<NodeId, std::vector<ClientOp>>& executed) {
  const std::vector<ClientOp>* reference = nullptr;
  NodeId reference_node = 0;
  for (const auto& [node, ops] : executed) {
    ++counts_.final_members;
    counts_.final_requests += ops.size();
    std::unordered_map<ClientOp, int, OpHash> count;
    for (const ClientOp& op : ops) {
      if (++count[op] == 2) flag("client oracle", "node " + str(node) + " executed " + to_string(op) + " twice");
      if (!requested_.count(op)) flag("client oracle", "node " + str(node) + " executed " + to_string(op) + " that no client made");
    }
    for (const ClientOp& op : acknowledged_) {
      if (!count.count(op)) {
        flag("client oracle", "node " + str(node) + " never executed acknowledged " + to_string(op));
        break;
      }
    }
    if (!reference) {
      reference = &ops;
      reference_node = node;
    } else if (ops != *reference) {
      flag("client oracle", "nodes " + str(reference_node) + " and " + str(node) + " executed different sequences");
    }
  }
}

void Checker::on_liveness_failure(const std::string& what) { flag("liveness", what); }

void Checker::on_engine_error(const std::string& what) { flag("engine invariant", what); }

}  // namespace raftfl::sim
