#pragma once

// The SAPS peer matcher (docs/ARCHITECTURE.md, "A round", step 1): which workers exchange models in
// a round. The coordinator runs it and commits the result in a Topology entry, so every
// input that shapes the result (participants, bandwidth, history, seed) must be
// replicated state and the output must be a pure function of them on every platform.

#include <Eigen/Dense>
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "raftfl/raft/types.hpp"

namespace raftfl::control {

using NodeId = raft::NodeId;

struct MatcherOptions {
  // B: only links strictly faster than this are candidates while the window connects.
  double bandwidth_threshold = 0.0;
  // T: the window, in rounds, over which the union of pairs must connect the participants.
  int history_rounds = 5;
};

struct Matching {
  // Each pair is (smaller id, larger id), pairs sorted, so equal matchings compare equal.
  std::vector<std::pair<NodeId, NodeId>> pairs;
  std::vector<NodeId> idle;

  friend bool operator==(const Matching&, const Matching&) = default;
};

// nodes: the round's participants, strictly increasing ids. bandwidth: symmetric, indexed
// like `nodes` (an asymmetric measurement counts as its slower direction). history: the
// matchings of previous rounds, most recent last. Throws std::invalid_argument on
// malformed input. See matcher.cpp for the exact rules.
Matching match_round(const std::vector<NodeId>& nodes, const Eigen::MatrixXd& bandwidth,
                     const std::deque<Matching>& history, const MatcherOptions& options,
                     std::uint64_t round_seed);

// W with 1/2 on each matched pair's four entries and 1 on the diagonal of every node that
// is not paired (idle, or absent from the matching: it keeps its own model). Symmetric
// and doubly stochastic. Throws std::invalid_argument if the matching names a
// non-participant or uses a node twice.
Eigen::MatrixXd mixing_matrix(const std::vector<NodeId>& nodes, const Matching& matching);

// 1 - |second largest eigenvalue in modulus| of a symmetric W, clamped to [0, 1]. For a
// matrix smaller than 2x2 there is nothing to mix and the gap is 1.
double spectral_gap(const Eigen::MatrixXd& w);

}  // namespace raftfl::control
