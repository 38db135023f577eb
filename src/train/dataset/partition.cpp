#include "raftfl/train/partition.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "raftfl/gossip/prng.hpp"

namespace raftfl::train {
namespace {

using Rng = gossip::Xoshiro256StarStar;

// Uniform in [0, 1) from the 53 high bits: every value is an exact multiple of 2^-53, so
// the result is the same on every IEEE-754 platform.
double uniform01(Rng& rng) { return static_cast<double>(rng.next() >> 11) * 0x1.0p-53; }

// Uniform in (0, 1): logarithms below must never see zero.
double uniform_open01(Rng& rng) {
  for (;;) {
    const double u = uniform01(rng);
    if (u > 0.0) return u;
  }
}

// Standard normal by Marsaglia's polar form of Box-Muller; it needs no trigonometric
// function, which leaves one fewer libm routine whose last-bit rounding could differ
// between platforms. The second variate is dropped so that each call consumes a
// well-defined number of draws regardless of caller history.
double standard_normal(Rng& rng) {
  for (;;) {
    const double u = 2.0 * uniform01(rng) - 1.0;
    const double v = 2.0 * uniform01(rng) - 1.0;
    const double s = u * u + v * v;
    if (s > 0.0 && s < 1.0) return u * std::sqrt(-2.0 * std::log(s) / s);
  }
}

// Gamma(shape, 1) by Marsaglia and Tsang (2000). For shape < 1 it samples Gamma(shape + 1)
// and scales by U^(1/shape), the boost from the same paper, since the squeeze only holds
// for shape >= 1.
double gamma_sample(Rng& rng, double shape) {
  if (shape < 1.0) {
    const double boosted = gamma_sample(rng, shape + 1.0);
    return boosted * std::pow(uniform_open01(rng), 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    const double x = standard_normal(rng);
    double v = 1.0 + c * x;
    if (v <= 0.0) continue;
    v = v * v * v;
    const double u = uniform_open01(rng);
    if (u < 1.0 - 0.0331 * (x * x) * (x * x)) return d * v;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

void shuffle(std::vector<std::uint32_t>& items, Rng& rng) {
  for (std::size_t i = items.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(rng.uniform_below(i));
    std::swap(items[i - 1], items[j]);
  }
}

void check_index_range(std::size_t samples) {
  if (samples > std::numeric_limits<std::uint32_t>::max()) {
    throw PartitionError("cannot partition " + std::to_string(samples) + " samples: indices are 32-bit");
  }
}

// One Dirichlet draw over `nodes`, as cumulative cut points of `count` items: node k gets
// [cuts[k], cuts[k + 1]).
std::vector<std::size_t> dirichlet_cuts(Rng& rng, std::size_t nodes, double alpha, std::size_t count) {
  std::vector<double> weights(nodes);
  double total = 0.0;
  for (auto& w : weights) {
    w = gamma_sample(rng, alpha);
    total += w;
  }
  std::vector<std::size_t> cuts(nodes + 1, 0);
  if (!(total > 0.0) || !std::isfinite(total)) {
    // With a tiny alpha every gamma draw can underflow to zero; the limit of the
    // distribution is then all mass on one node, so give the class to one at random.
    const auto winner = static_cast<std::size_t>(rng.uniform_below(nodes));
    for (std::size_t k = winner + 1; k <= nodes; ++k) cuts[k] = count;
    return cuts;
  }
  double running = 0.0;
  for (std::size_t k = 0; k + 1 < nodes; ++k) {
    running += weights[k];
    const double cut = std::floor(running / total * static_cast<double>(count));
    cuts[k + 1] = std::min(count, std::max(cuts[k], static_cast<std::size_t>(cut)));
  }
  cuts[nodes] = count;
  return cuts;
}

}  // namespace

std::vector<std::vector<std::uint32_t>> partition_iid(std::size_t samples, std::size_t nodes, std::uint64_t seed) {
  if (nodes == 0) throw PartitionError("cannot partition into 0 nodes");
  check_index_range(samples);
  Rng rng(seed);
  std::vector<std::uint32_t> order(samples);
  std::iota(order.begin(), order.end(), std::uint32_t{0});
  shuffle(order, rng);

  std::vector<std::vector<std::uint32_t>> shards(nodes);
  const std::size_t base = samples / nodes;
  const std::size_t extra = samples % nodes;
  std::size_t begin = 0;
  for (std::size_t k = 0; k < nodes; ++k) {
    const std::size_t size = base + (k < extra ? 1 : 0);
    shards[k].assign(order.begin() + static_cast<std::ptrdiff_t>(begin),
                     order.begin() + static_cast<std::ptrdiff_t>(begin + size));
    std::sort(shards[k].begin(), shards[k].end());
    begin += size;
  }
  return shards;
}

std::vector<std::vector<std::uint32_t>> partition_dirichlet(const std::vector<std::uint8_t>& labels,
                                                            std::size_t nodes, double alpha, std::uint64_t seed,
                                                            std::size_t min_per_node) {
  if (nodes == 0) throw PartitionError("cannot partition into 0 nodes");
  if (!(alpha > 0.0) || !std::isfinite(alpha)) {
    throw PartitionError("Dirichlet alpha must be positive and finite, got " + std::to_string(alpha));
  }
  check_index_range(labels.size());
  if (min_per_node > 0 && nodes > labels.size() / min_per_node) {
    throw PartitionError("cannot give each of " + std::to_string(nodes) + " nodes at least " +
                         std::to_string(min_per_node) + " samples out of " + std::to_string(labels.size()));
  }

  // Classes are visited in label order with their indices ascending, so the draw depends
  // only on the labels and the seed.
  std::vector<std::vector<std::uint32_t>> by_class;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= by_class.size()) by_class.resize(std::size_t{labels[i]} + 1);
    by_class[labels[i]].push_back(static_cast<std::uint32_t>(i));
  }

  Rng rng(seed);
  for (int attempt = 0; attempt < kDirichletMaxAttempts; ++attempt) {
    std::vector<std::vector<std::uint32_t>> shards(nodes);
    for (auto members : by_class) {
      if (members.empty()) continue;
      shuffle(members, rng);
      const auto cuts = dirichlet_cuts(rng, nodes, alpha, members.size());
      for (std::size_t k = 0; k < nodes; ++k) {
        shards[k].insert(shards[k].end(), members.begin() + static_cast<std::ptrdiff_t>(cuts[k]),
                         members.begin() + static_cast<std::ptrdiff_t>(cuts[k + 1]));
      }
    }
    const bool enough = std::all_of(shards.begin(), shards.end(),
                                    [&](const auto& shard) { return shard.size() >= min_per_node; });
    if (enough) {
      for (auto& shard : shards) std::sort(shard.begin(), shard.end());
      return shards;
    }
  }
  throw PartitionError("no Dirichlet(alpha=" + std::to_string(alpha) + ") draw in " +
                       std::to_string(kDirichletMaxAttempts) + " attempts gave each of " + std::to_string(nodes) +
                       " nodes at least " + std::to_string(min_per_node) + " samples; raise alpha or lower the minimum");
}

}  // namespace raftfl::train
