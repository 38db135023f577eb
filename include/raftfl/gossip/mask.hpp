#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace raftfl::gossip {

// Coordinates a sparsifier keeps out of n: max(1, round(density * n)), at most n; 0 only
// when n is 0. A density of 0 still sends one coordinate so that a round always exchanges
// something and "density 0" cannot silently disable learning from the peer. Throws
// std::invalid_argument unless 0 <= density <= 1.
std::size_t k_for_density(std::size_t n, double density);

// The shared random-k mask of a round: k_for_density(n, density) indices out of [0, n),
// sorted and unique, chosen uniformly among all subsets of that size. Depends only on its
// arguments, so both peers derive it from the round's seed and only values travel.
// Stream (for other implementations): Xoshiro256StarStar(round_seed); Floyd's algorithm,
// for j = n-k .. n-1: t = uniform_below(j + 1); take t unless taken, else take j.
// Cost: O(k) draws plus an n-bit bitmap scanned once; no sort.
// Throws std::invalid_argument if n exceeds the 32-bit index space.
std::vector<std::uint32_t> random_k_indices(std::size_t n, double density, std::uint64_t round_seed);

// The dense baseline: every index 0 .. n-1.
std::vector<std::uint32_t> all_indices(std::size_t n);

// values[indices[i]] for each i: what a peer sends for a mask. Throws std::out_of_range if
// an index is outside values.
std::vector<float> gather(std::span<const float> values, std::span<const std::uint32_t> indices);

}  // namespace raftfl::gossip
