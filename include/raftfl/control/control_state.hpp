#pragma once

// The replicated control state of RAFT-GossipFL (docs/ARCHITECTURE.md, "The control log"): what every
// node learns from the committed log, in the same order, so that every node agrees on who
// the coordinator is, which round comes next and who pairs with whom in it.
//
// Pure and deterministic: no clock, no I/O, no randomness. Commands that the rules below
// reject change nothing and are reported as such, identically on every node, so a stale
// coordinator's late proposals are harmless.

#include <Eigen/Dense>

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "raftfl/control/matcher.hpp"

namespace raftfl::control {

using Round = std::uint64_t;

// Capability bits a member announces.
inline constexpr std::uint64_t kCapabilityTrains = 1;  // runs a worker (trains a model)
inline constexpr std::uint64_t kCapabilityCuda = 2;    // has a CUDA device

struct Member {
  NodeId id = 0;
  std::string endpoint;  // "host:port" of its transport
  bool voter = false;    // a Raft voter; otherwise a learner
  std::uint64_t capabilities = 0;
  bool failed = false;  // marked failed by the coordinator: not paired until marked healthy
  std::vector<std::uint32_t> shards;  // the data shards it trains on, ascending

  bool worker() const { return (capabilities & kCapabilityTrains) != 0; }
  friend bool operator==(const Member&, const Member&) = default;
};

// Commands, one per control log entry kind.
struct NoOp {
  friend bool operator==(const NoOp&, const NoOp&) = default;
};

// A newly elected leader's claim of the coordinator role. `first_round` is the first round
// it will plan; applying raises it to at least last_round() + 1, so that rounds never go
// back whatever the proposer believed.
struct CoordinatorChange {
  NodeId leader = 0;
  std::uint64_t term = 0;
  Round first_round = 0;
  friend bool operator==(const CoordinatorChange&, const CoordinatorChange&) = default;
};

// The plan of one round. Accepted only from the current coordinator (term equal to the
// coordinator's term) and only for round == last_round() + 1 (rounds strictly increase,
// without gaps).
struct Topology {
  Round round = 0;
  std::uint64_t coordinator_term = 0;
  std::uint64_t mask_seed = 0;  // the random-k mask both peers draw
  Matching matching;
  // For the metrics: the spectral gap of the connectivity window's mean mixing matrix,
  // mean(W(this round's matching), W(each of recent_matchings(history_rounds))). One
  // round's W is block diagonal (2x2 blocks of 1/2 and 1x1 blocks of 1), so its gap is 0
  // as soon as it has two blocks and says nothing; the window's mean is what mixes. Pairs
  // naming a node that does not participate in this round are left out. The eigen
  // decomposition costs O(n^3), too much for the planning budget at 1,000 nodes, so above
  // kSpectralGapMaxParticipants participants it is -1: not computed.
  double spectral_gap = 0.0;
  // Workers that take their peer's whole model this round instead of averaging (they
  // joined, or came back with a stale model): each is paired with a member not listed
  // here, which sends its model densely and keeps its own. Ascending.
  std::vector<NodeId> fresh;

  bool is_fresh(NodeId id) const;
  // The peer of `id` in this round, or 0 when it sits the round out or is absent.
  NodeId peer_of(NodeId id) const;
  friend bool operator==(const Topology&, const Topology&) = default;
};

struct BandwidthCell {
  NodeId from = 0;
  NodeId to = 0;
  double bytes_per_second = 0.0;
  friend bool operator==(const BandwidthCell&, const BandwidthCell&) = default;
};

// A sparse delta of the bandwidth matrix: only the cells that changed, several of them
// batched into one entry. Cells naming a non-member or a node itself are skipped.
struct BandwidthUpdate {
  std::vector<BandwidthCell> cells;
  friend bool operator==(const BandwidthUpdate&, const BandwidthUpdate&) = default;
};

struct MembershipChange {
  enum class Op : std::uint8_t {
    kAdd,      // add (or update the endpoint and capabilities of) a member, as a learner
               // unless member.voter
    kPromote,  // learner -> voter
    kRemove,   // forget the member and its bandwidth cells
  };
  Op op = Op::kAdd;
  Member member;  // only member.id matters for kPromote and kRemove
  friend bool operator==(const MembershipChange&, const MembershipChange&) = default;
};

// The coordinator's judgement of a worker (control_state.hpp's users: not paired while
// failed). Rejected for a non-member.
struct WorkerHealth {
  NodeId id = 0;
  bool failed = false;
  friend bool operator==(const WorkerHealth&, const WorkerHealth&) = default;
};

// Data shards. The training set is cut into `shard_count` parts once, by the first
// coordinator (accepted once; later plans are rejected); shards then follow membership,
// decided in apply() so that every node derives the same assignment:
//  - a worker added without shards takes the lowest shard that no worker holds; failing
//    that, the second-lowest shard of the worker holding the most, if it holds two or
//    more; failing that, it shares the shard with the fewest holders (lowest first);
//  - after every change of members, health or plan, each shard that nobody holds (its
//    worker was removed, or none was there) goes to the healthy worker holding the
//    fewest (lowest id first), so that its data keeps training;
//  - a failed worker keeps its shards (it may come back), a removed one's are reassigned.
// Members added in ascending id order to a fresh plan of n shards hold shard i each.
struct DataPlan {
  std::uint32_t shard_count = 0;
  friend bool operator==(const DataPlan&, const DataPlan&) = default;
};

using Command =
    std::variant<NoOp, CoordinatorChange, Topology, BandwidthUpdate, MembershipChange, WorkerHealth, DataPlan>;

struct Coordinator {
  NodeId leader = 0;  // 0: none yet
  std::uint64_t term = 0;
  Round first_round = 0;
  friend bool operator==(const Coordinator&, const Coordinator&) = default;
};

// Everything a snapshot holds: a plain aggregate so that the wire codec can write it and
// tests can compare it.
struct ControlData {
  std::map<NodeId, Member> members;
  Coordinator coordinator;
  Round last_round = 0;  // the latest round with a Topology; 0: none yet
  // The most recent kTopologiesKept rounds' plans (the matcher's history and what lagging
  // workers still need); older ones are dropped on apply.
  std::map<Round, Topology> topologies;
  // (from, to) -> bytes per second, as measured by `from` when it exchanged with `to`.
  std::map<std::pair<NodeId, NodeId>, double> bandwidth;
  std::uint32_t shard_count = 0;  // 0: no DataPlan yet
  friend bool operator==(const ControlData&, const ControlData&) = default;
};

inline constexpr std::size_t kTopologiesKept = 64;
inline constexpr std::size_t kSpectralGapMaxParticipants = 64;

// What apply() did with a command.
enum class ApplyResult : std::uint8_t { kApplied, kRejected };

class ControlState {
 public:
  ControlState() = default;
  explicit ControlState(ControlData data) : data_(std::move(data)) {}

  ApplyResult apply(const Command& command);

  const ControlData& data() const { return data_; }
  const std::map<NodeId, Member>& members() const { return data_.members; }
  const Coordinator& coordinator() const { return data_.coordinator; }
  Round last_round() const { return data_.last_round; }
  // Null when the round has no plan (not yet committed, or dropped as too old).
  const Topology* topology(Round round) const;
  // The members that train, ascending.
  std::vector<NodeId> workers() const;
  // The member, or null.
  const Member* member(NodeId id) const;
  // The last `rounds` matchings, oldest first (the matcher's history).
  std::deque<Matching> recent_matchings(std::size_t rounds) const;
  // The measured cell, or a negative value when never measured.
  double bandwidth(NodeId from, NodeId to) const;
  // Symmetric, indexed like `nodes`: the slower direction of each measured pair;
  // `unmeasured` for pairs measured in neither direction; 0 on the diagonal.
  Eigen::MatrixXd bandwidth_matrix(const std::vector<NodeId>& nodes, double unmeasured) const;

  friend bool operator==(const ControlState&, const ControlState&) = default;

 private:
  ControlData data_;
};

// The mask seed of a round: a pure function of the cluster's seed and the round, so that a
// new coordinator draws the same seeds as the old one would have.
std::uint64_t round_mask_seed(std::uint64_t cluster_seed, Round round);

// The coordinator's plan for round `round` (docs/ARCHITECTURE.md, "A round", step 1): the SAPS
// matching of `participants` (ascending) from the state's bandwidth matrix and recent
// matchings, with its mask seed and spectral gap. Participants in `fresh` (a subset) are
// paired first, each with the fastest-linked participant not in `fresh` (ties broken by
// the round's seed); the matcher pairs the rest. Pure: same inputs, same plan.
Topology plan_round(const ControlState& state, const std::vector<NodeId>& participants,
                    const MatcherOptions& options, Round round, std::uint64_t coordinator_term,
                    std::uint64_t cluster_seed, double unmeasured_bandwidth, const std::vector<NodeId>& fresh = {});

// The cells of `measured` that differ from the committed matrix by more than
// `relative_threshold` (|new - old| > relative_threshold * old), or were never committed:
// what the coordinator batches into its next Bandwidth entry.
std::vector<BandwidthCell> bandwidth_delta(const ControlState& state, const std::vector<BandwidthCell>& measured,
                                           double relative_threshold);

}  // namespace raftfl::control
