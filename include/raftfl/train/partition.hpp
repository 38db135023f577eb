#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace raftfl::train {

// A partition request that cannot be satisfied (bad arguments, or no Dirichlet draw
// within the attempt budget gave every node its minimum).
class PartitionError : public std::runtime_error {
 public:
  explicit PartitionError(const std::string& what) : std::runtime_error(what) {}
};

// Every node of a run derives its shard from the same seed without talking to the others,
// so both partitioners use only the specified xoshiro256** stream and arithmetic written
// out here, never <random>'s implementation-defined distributions.
//
// Result: one index list per node, each sorted ascending; every index in [0, samples)
// appears in exactly one list.

// Uniformly random shards whose sizes differ by at most one.
std::vector<std::vector<std::uint32_t>> partition_iid(std::size_t samples, std::size_t nodes, std::uint64_t seed);

// Label-skewed shards (the usual non-IID benchmark scheme): for each class, proportions
// over the nodes are drawn from Dirichlet(alpha) and that class's shuffled samples are cut
// accordingly. Small alpha gives nodes dominated by few classes, large alpha approaches
// IID. The whole draw is repeated until every node holds at least min_per_node samples.
std::vector<std::vector<std::uint32_t>> partition_dirichlet(const std::vector<std::uint8_t>& labels,
                                                            std::size_t nodes, double alpha, std::uint64_t seed,
                                                            std::size_t min_per_node);

// How many whole Dirichlet draws partition_dirichlet tries before giving up.
inline constexpr int kDirichletMaxAttempts = 1000;

}  // namespace raftfl::train
