#include "raftfl/control/control_state.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <set>

#include "raftfl/common/splitmix64.hpp"

namespace raftfl::control {
namespace {

bool is_member(const ControlData& data, NodeId id) { return data.members.count(id) != 0; }

// A plan that names a non-member or a failed one, or uses a node twice, would make workers
// disagree about who exchanges with whom (or wait for a dead peer), so it is refused as a
// whole. So is one whose fresh worker is not paired with a member that can give it a model.
bool topology_valid(const ControlData& data, const Topology& t) {
  std::set<NodeId> seen;
  const auto use = [&](NodeId id) {
    const auto it = data.members.find(id);
    return it != data.members.end() && !it->second.failed && seen.insert(id).second;
  };
  for (const auto& [a, b] : t.matching.pairs) {
    if (!use(a) || !use(b)) return false;
  }
  for (NodeId id : t.matching.idle) {
    if (!use(id)) return false;
  }
  if (!std::is_sorted(t.fresh.begin(), t.fresh.end()) ||
      std::adjacent_find(t.fresh.begin(), t.fresh.end()) != t.fresh.end())
    return false;
  for (NodeId id : t.fresh) {
    const NodeId peer = t.peer_of(id);
    if (peer == 0 || t.is_fresh(peer)) return false;
  }
  return true;
}

std::size_t holders(const ControlData& data, std::uint32_t shard) {
  std::size_t n = 0;
  for (const auto& [id, m] : data.members) n += std::count(m.shards.begin(), m.shards.end(), shard);
  return n;
}

void give_shard(Member& m, std::uint32_t shard) {
  m.shards.insert(std::lower_bound(m.shards.begin(), m.shards.end(), shard), shard);
}

// A worker's first shard (control_state.hpp, DataPlan).
void assign_first_shard(ControlData& data, Member& joiner) {
  if (data.shard_count == 0 || !joiner.worker() || !joiner.shards.empty()) return;
  for (std::uint32_t s = 0; s < data.shard_count; ++s) {
    if (holders(data, s) == 0) {
      give_shard(joiner, s);
      return;
    }
  }
  Member* richest = nullptr;
  for (auto& [id, m] : data.members) {
    if (m.shards.size() >= 2 && (richest == nullptr || m.shards.size() > richest->shards.size())) richest = &m;
  }
  if (richest != nullptr) {
    // Its lowest shard stays: so a cluster formed by adds in id order gives shard i to
    // the i-th worker.
    give_shard(joiner, richest->shards[1]);
    richest->shards.erase(richest->shards.begin() + 1);
    return;
  }
  std::uint32_t least = 0;
  std::size_t least_holders = holders(data, 0);
  for (std::uint32_t s = 1; s < data.shard_count; ++s) {
    if (const auto h = holders(data, s); h < least_holders) {
      least = s;
      least_holders = h;
    }
  }
  give_shard(joiner, least);
}

// Every shard nobody holds goes to the healthy worker holding the fewest (lowest id
// first), so that its data keeps training.
void adopt_orphans(ControlData& data) {
  for (std::uint32_t s = 0; s < data.shard_count; ++s) {
    if (holders(data, s) != 0) continue;
    Member* poorest = nullptr;
    for (auto& [id, m] : data.members) {
      if (!m.worker() || m.failed) continue;
      if (poorest == nullptr || m.shards.size() < poorest->shards.size()) poorest = &m;
    }
    if (poorest == nullptr) return;
    give_shard(*poorest, s);
  }
}

class Applier {
 public:
  explicit Applier(ControlData& data) : data_(data) {}

  ApplyResult operator()(const NoOp&) const { return ApplyResult::kApplied; }

  ApplyResult operator()(const CoordinatorChange& c) const {
    if (c.leader == 0) return ApplyResult::kRejected;
    const Coordinator& current = data_.coordinator;
    if (c.term < current.term) return ApplyResult::kRejected;
    // Raft elects at most one leader per term: a second claimant for the same term can only
    // come from a bug, and letting it win would hand the round sequence to two proposers.
    if (c.term == current.term && current.leader != 0 && c.leader != current.leader) {
      return ApplyResult::kRejected;
    }
    data_.coordinator = Coordinator{c.leader, c.term, std::max(c.first_round, data_.last_round + 1)};
    return ApplyResult::kApplied;
  }

  ApplyResult operator()(const Topology& t) const {
    if (data_.coordinator.leader == 0 || t.coordinator_term != data_.coordinator.term) {
      return ApplyResult::kRejected;
    }
    if (t.round != data_.last_round + 1) return ApplyResult::kRejected;
    if (!topology_valid(data_, t)) return ApplyResult::kRejected;
    data_.last_round = t.round;
    data_.topologies[t.round] = t;
    while (data_.topologies.size() > kTopologiesKept) data_.topologies.erase(data_.topologies.begin());
    return ApplyResult::kApplied;
  }

  ApplyResult operator()(const BandwidthUpdate& u) const {
    bool stored = false;
    for (const BandwidthCell& cell : u.cells) {
      // A negative value means "never measured" to readers of bandwidth(), so it (and a
      // NaN or infinity) cannot be stored as a measurement.
      if (cell.from == cell.to || !is_member(data_, cell.from) || !is_member(data_, cell.to) ||
          !std::isfinite(cell.bytes_per_second) || cell.bytes_per_second < 0.0) {
        continue;
      }
      data_.bandwidth[{cell.from, cell.to}] = cell.bytes_per_second;
      stored = true;
    }
    return stored ? ApplyResult::kApplied : ApplyResult::kRejected;
  }

  ApplyResult operator()(const MembershipChange& m) const {
    const NodeId id = m.member.id;
    if (id == 0) return ApplyResult::kRejected;
    switch (m.op) {
      case MembershipChange::Op::kAdd: {
        Member fresh = m.member;
        // Shards are the state's to decide, never the proposer's.
        fresh.shards.clear();
        fresh.failed = false;
        auto [it, inserted] = data_.members.try_emplace(id, std::move(fresh));
        if (inserted) {
          assign_first_shard(data_, it->second);
          adopt_orphans(data_);
        } else {
          // There is no demotion command: re-adding a voter must not quietly make it a
          // learner again.
          it->second.endpoint = m.member.endpoint;
          it->second.capabilities = m.member.capabilities;
          it->second.voter = it->second.voter || m.member.voter;
          // It may have stopped or started training.
          if (!it->second.worker()) it->second.shards.clear();
          assign_first_shard(data_, it->second);
          adopt_orphans(data_);
        }
        return ApplyResult::kApplied;
      }
      case MembershipChange::Op::kPromote: {
        auto it = data_.members.find(id);
        if (it == data_.members.end()) return ApplyResult::kRejected;
        it->second.voter = true;
        return ApplyResult::kApplied;
      }
      case MembershipChange::Op::kRemove: {
        const auto it = data_.members.find(id);
        if (it == data_.members.end()) return ApplyResult::kRejected;
        data_.members.erase(it);
        adopt_orphans(data_);
        std::erase_if(data_.bandwidth, [id](const auto& cell) {
          return cell.first.first == id || cell.first.second == id;
        });
        return ApplyResult::kApplied;
      }
    }
    return ApplyResult::kRejected;
  }

  ApplyResult operator()(const WorkerHealth& h) const {
    const auto it = data_.members.find(h.id);
    if (it == data_.members.end()) return ApplyResult::kRejected;
    it->second.failed = h.failed;
    adopt_orphans(data_);
    return ApplyResult::kApplied;
  }

  ApplyResult operator()(const DataPlan& p) const {
    if (p.shard_count == 0 || data_.shard_count != 0) return ApplyResult::kRejected;
    data_.shard_count = p.shard_count;
    for (auto& [id, m] : data_.members) {
      assign_first_shard(data_, m);
      adopt_orphans(data_);
    }
    return ApplyResult::kApplied;
  }

 private:
  ControlData& data_;
};

// W averaged over the window: each matching contributes 1/2 on its pairs' four entries and
// 1 on the diagonal of every other participant. Pairs naming a node that no longer
// participates are left out (that node's partner keeps its own model in this view).
Eigen::MatrixXd window_mixing_matrix(const std::vector<NodeId>& nodes, const Matching& current,
                                     const std::deque<Matching>& history) {
  const auto n = static_cast<Eigen::Index>(nodes.size());
  Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(n, n);
  const auto index_of = [&](NodeId id) -> Eigen::Index {
    auto it = std::lower_bound(nodes.begin(), nodes.end(), id);
    if (it == nodes.end() || *it != id) return -1;
    return static_cast<Eigen::Index>(std::distance(nodes.begin(), it));
  };
  const auto add = [&](const Matching& m) {
    std::vector<bool> paired(nodes.size(), false);
    for (const auto& [x, y] : m.pairs) {
      const Eigen::Index a = index_of(x);
      const Eigen::Index b = index_of(y);
      if (a < 0 || b < 0 || a == b || paired[static_cast<std::size_t>(a)] || paired[static_cast<std::size_t>(b)]) {
        continue;
      }
      paired[static_cast<std::size_t>(a)] = paired[static_cast<std::size_t>(b)] = true;
      sum(a, a) += 0.5;
      sum(b, b) += 0.5;
      sum(a, b) += 0.5;
      sum(b, a) += 0.5;
    }
    for (Eigen::Index i = 0; i < n; ++i) {
      if (!paired[static_cast<std::size_t>(i)]) sum(i, i) += 1.0;
    }
  };
  add(current);
  for (const Matching& m : history) add(m);
  return sum / static_cast<double>(history.size() + 1);
}

}  // namespace

bool Topology::is_fresh(NodeId id) const { return std::binary_search(fresh.begin(), fresh.end(), id); }

NodeId Topology::peer_of(NodeId id) const {
  for (const auto& [a, b] : matching.pairs) {
    if (a == id) return b;
    if (b == id) return a;
  }
  return 0;
}

ApplyResult ControlState::apply(const Command& command) { return std::visit(Applier(data_), command); }

const Topology* ControlState::topology(Round round) const {
  auto it = data_.topologies.find(round);
  return it == data_.topologies.end() ? nullptr : &it->second;
}

std::vector<NodeId> ControlState::workers() const {
  std::vector<NodeId> out;
  for (const auto& [id, member] : data_.members) {
    if (member.worker()) out.push_back(id);
  }
  return out;
}

const Member* ControlState::member(NodeId id) const {
  const auto it = data_.members.find(id);
  return it == data_.members.end() ? nullptr : &it->second;
}

std::deque<Matching> ControlState::recent_matchings(std::size_t rounds) const {
  std::deque<Matching> out;
  for (auto it = data_.topologies.rbegin(); it != data_.topologies.rend() && out.size() < rounds; ++it) {
    out.push_front(it->second.matching);
  }
  return out;
}

double ControlState::bandwidth(NodeId from, NodeId to) const {
  auto it = data_.bandwidth.find({from, to});
  return it == data_.bandwidth.end() ? -1.0 : it->second;
}

Eigen::MatrixXd ControlState::bandwidth_matrix(const std::vector<NodeId>& nodes, double unmeasured) const {
  const auto n = static_cast<Eigen::Index>(nodes.size());
  // One lookup per ordered pair would be n^2 searches of a map of up to n^2 cells, about
  // 250 ms at 1,000 nodes; walking each participant's row of the (from, to)-ordered map
  // once is what keeps planning within its budget.
  std::vector<std::pair<NodeId, Eigen::Index>> order(nodes.size());
  for (Eigen::Index i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = {nodes[static_cast<std::size_t>(i)], i};
  std::sort(order.begin(), order.end());
  // measured(j, i) is the cell i -> j: column-major, so each row of the map fills a column.
  Eigen::MatrixXd measured = Eigen::MatrixXd::Constant(n, n, -1.0);
  for (const auto& [from, i] : order) {
    // Both the map's row and `order` ascend by id: one merge walk, no searches.
    auto to = order.begin();
    for (auto it = data_.bandwidth.lower_bound({from, 0}); it != data_.bandwidth.end() && it->first.first == from;
         ++it) {
      while (to != order.end() && to->first < it->first.second) ++to;
      if (to == order.end()) break;
      if (to->first == it->first.second) measured(to->second, i) = it->second;
    }
  }
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(n, n);
  for (Eigen::Index i = 0; i < n; ++i) {
    for (Eigen::Index j = i + 1; j < n; ++j) {
      const double there = measured(j, i);
      const double back = measured(i, j);
      double value = unmeasured;
      if (there >= 0.0 && back >= 0.0) {
        value = std::min(there, back);
      } else if (there >= 0.0) {
        value = there;
      } else if (back >= 0.0) {
        value = back;
      }
      m(i, j) = m(j, i) = value;
    }
  }
  return m;
}

std::uint64_t round_mask_seed(std::uint64_t cluster_seed, Round round) {
  // The seed of a round is replicated: its values are pinned by the tests of both this
  // function and common::SplitMix64.
  return common::SplitMix64(cluster_seed ^ (round * common::kSplitMix64Gamma)).next();
}

Topology plan_round(const ControlState& state, const std::vector<NodeId>& participants,
                    const MatcherOptions& options, Round round, std::uint64_t coordinator_term,
                    std::uint64_t cluster_seed, double unmeasured_bandwidth, const std::vector<NodeId>& fresh) {
  Topology t;
  t.round = round;
  t.coordinator_term = coordinator_term;
  t.mask_seed = round_mask_seed(cluster_seed, round);
  const std::deque<Matching> history =
      state.recent_matchings(static_cast<std::size_t>(std::max(options.history_rounds, 0)));
  // Fresh workers first: each needs a partner with a trained model, whatever the window's
  // connectivity says. Candidates are visited in an order drawn from the round's seed, so
  // that equal links do not always send joiners to the lowest id.
  std::vector<NodeId> givers;
  for (NodeId id : participants)
    if (!std::binary_search(fresh.begin(), fresh.end(), id)) givers.push_back(id);
  common::SplitMix64 draw(t.mask_seed ^ 0x6a09e667f3bcc909ULL);
  for (std::size_t i = givers.size(); i > 1; --i) std::swap(givers[i - 1], givers[draw.next() % i]);
  std::vector<NodeId> rest = participants;
  for (NodeId joiner : fresh) {
    if (!std::binary_search(participants.begin(), participants.end(), joiner) || givers.empty()) continue;
    auto best = givers.begin();
    double best_bps = -1.0;
    for (auto it = givers.begin(); it != givers.end(); ++it) {
      const double there = state.bandwidth(*it, joiner);
      const double back = state.bandwidth(joiner, *it);
      const double bps = there < 0 && back < 0 ? unmeasured_bandwidth : std::max(there, back);
      if (bps > best_bps) {
        best = it;
        best_bps = bps;
      }
    }
    t.matching.pairs.emplace_back(std::min(joiner, *best), std::max(joiner, *best));
    t.fresh.push_back(joiner);
    std::erase(rest, joiner);
    std::erase(rest, *best);
    givers.erase(best);
  }
  // The matcher draws from the same seed as the mask: both are pure functions of
  // (cluster seed, round), so a new coordinator re-plans a round exactly as the old one.
  Matching matched = match_round(rest, state.bandwidth_matrix(rest, unmeasured_bandwidth), history, options,
                                 t.mask_seed);
  t.matching.pairs.insert(t.matching.pairs.end(), matched.pairs.begin(), matched.pairs.end());
  std::sort(t.matching.pairs.begin(), t.matching.pairs.end());
  t.matching.idle = std::move(matched.idle);
  std::sort(t.fresh.begin(), t.fresh.end());
  t.spectral_gap = participants.size() <= kSpectralGapMaxParticipants
                       ? spectral_gap(window_mixing_matrix(participants, t.matching, history))
                       : -1.0;
  return t;
}

std::vector<BandwidthCell> bandwidth_delta(const ControlState& state, const std::vector<BandwidthCell>& measured,
                                           double relative_threshold) {
  std::vector<BandwidthCell> out;
  for (const BandwidthCell& cell : measured) {
    // Cells that apply() would skip would only cost log space.
    if (cell.from == cell.to || state.members().count(cell.from) == 0 || state.members().count(cell.to) == 0 ||
        !std::isfinite(cell.bytes_per_second) || cell.bytes_per_second < 0.0) {
      continue;
    }
    const double old = state.bandwidth(cell.from, cell.to);
    if (old < 0.0 || std::abs(cell.bytes_per_second - old) > relative_threshold * old) out.push_back(cell);
  }
  return out;
}

}  // namespace raftfl::control
