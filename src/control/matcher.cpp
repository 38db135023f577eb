// The SAPS peer matcher. The rules, precisely:
//
// 1. Sitting out. With an odd participant count one node is idle, chosen before any
//    matching: the participant whose last idle round in `history` is oldest (never idle
//    counts as oldest of all), ties broken by the round's PRNG. So the previous round's
//    idle node is never idle again while anyone else could be, and with a long enough
//    history every node sits out once before anyone sits out twice. Choosing it first
//    costs at most one candidate pair: removing a vertex lowers a maximum matching by at
//    most one.
// 2. Candidates. Let U be the union of the pairs of the last T rounds (T =
//    history_rounds), restricted to current participants. U "connects the graph" when
//    every participant, idle ones included, lies in one component of U. The check applies
//    only once history holds T rounds (and T > 0); before that there is no window to
//    judge, and fast links are the candidates.
//    - Connected, or no full window: candidates are links with bandwidth > threshold.
//    - Not connected: a pair is "unused" if it appears in none of the last T rounds.
//      Fast unused pairs are matched first; the matching is then grown to a maximum
//      matching over all unused pairs, whatever their bandwidth, because the fast links
//      are exactly what kept the window disconnected. Growing keeps every matched node
//      matched, so fast unused pairs are not lost to slow ones without need.
// 3. Leftovers. Whoever is still unmatched is paired at random over any link, so every
//    active node exchanges with someone.
//
// Randomness and determinism. Every random choice draws from one splitmix64 stream seeded
// from the round seed; bounded draws use rejection, not std distributions (whose output
// is implementation-defined). The maximum matching is Boost.Graph's Edmonds blossom
// augmentor; the randomness comes from shuffling vertex numbering and edge insertion
// order. We call boost::matching with edmonds_augmenting_path_finder and a greedy initial
// matching in insertion order instead of the edmonds_maximum_cardinality_matching
// wrapper, because that wrapper's initial matching sorts edges by degree with std::sort,
// whose order among equal degrees differs between standard libraries: the same seed would
// give different matchings on different platforms.
#include <algorithm>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/max_cardinality_matching.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

#include "raftfl/common/splitmix64.hpp"
#include "raftfl/control/matcher.hpp"

namespace raftfl::control {
namespace {

// The round's random choices: one SplitMix64 stream and the draws the rules above make
// from it.
class RoundRandom {
 public:
  explicit RoundRandom(std::uint64_t seed) : stream_(seed) {}

  std::uint64_t next() { return stream_.next(); }

  // Uniform in [0, bound), bound > 0, without modulo bias.
  std::uint64_t below(std::uint64_t bound) {
    const std::uint64_t reject_under = (0 - bound) % bound;
    for (;;) {
      const std::uint64_t r = next();
      if (r >= reject_under) return r % bound;
    }
  }

  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) {
      std::swap(v[i - 1], v[below(i)]);
    }
  }

 private:
  common::SplitMix64 stream_;
};

// The round seed also derives the exchange masks; a distinct stream keeps the two
// independent.
constexpr std::uint64_t kMatcherStream = 0x5a9d'3c1e'7b42'e6f1ULL;

using Index = std::uint32_t;
using Edge = std::pair<Index, Index>;

class DisjointSets {
 public:
  explicit DisjointSets(std::size_t n) : parent_(n) {
    std::iota(parent_.begin(), parent_.end(), Index{0});
  }
  Index find(Index x) {
    while (parent_[x] != x) {
      parent_[x] = parent_[parent_[x]];
      x = parent_[x];
    }
    return x;
  }
  bool unite(Index a, Index b) {
    a = find(a);
    b = find(b);
    if (a == b) return false;
    parent_[b] = a;
    return true;
  }

 private:
  std::vector<Index> parent_;
};

// A matching over participant indices; kUnmatched for nobody.
constexpr Index kUnmatched = std::numeric_limits<Index>::max();

using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS>;
using Vertex = boost::graph_traits<Graph>::vertex_descriptor;

template <typename G, typename MateMap>
struct KeepGivenMatching {
  static void find_matching(const G&, MateMap) {}
};

// Runs Boost's Edmonds augmentor over `edges` (graph vertex numbers), starting from
// `graph_mate` when `warm_start`, else from a greedy pass in insertion order.
void run_edmonds(std::size_t vertex_count, const std::vector<Edge>& edges, bool warm_start,
                 std::vector<Vertex>& graph_mate) {
  Graph g(vertex_count);
  for (const auto& [a, b] : edges) boost::add_edge(a, b, g);
  using VertexIndexMap = boost::property_map<Graph, boost::vertex_index_t>::type;
  if (warm_start) {
    boost::matching<Graph, Vertex*, VertexIndexMap, boost::edmonds_augmenting_path_finder,
                    KeepGivenMatching, boost::no_matching_verifier>(
        g, graph_mate.data(), boost::get(boost::vertex_index, g));
  } else {
    boost::matching<Graph, Vertex*, VertexIndexMap, boost::edmonds_augmenting_path_finder,
                    boost::greedy_matching, boost::no_matching_verifier>(
        g, graph_mate.data(), boost::get(boost::vertex_index, g));
  }
}

// Average degree of the random sample tried before the whole candidate graph. Boost's
// augmentor rescans every edge per augmentation, so on the dense candidate graphs of a
// large round the full graph costs hundreds of milliseconds, while a random subgraph of
// this degree almost always has a perfect matching already.
constexpr std::size_t kSampleDegree = 16;

// Grows `mate` (over participant indices) to a maximum matching of `edges` among the
// `active` participants. With `warm_start` the matching already in `mate` is the starting
// point (augmenting paths never unmatch a node); otherwise it starts from a greedy pass
// over the shuffled edges. The result is exact: the sample is only trusted when its
// matching leaves nobody unmatched, which no larger graph can improve on.
void maximum_matching(const std::vector<Index>& active, std::vector<Edge> edges,
                      bool warm_start, RoundRandom& rng, std::vector<Index>& mate) {
  if (active.empty() || edges.empty()) return;
  std::vector<Index> order = active;
  rng.shuffle(order);
  std::vector<Index> vertex_of(mate.size(), kUnmatched);
  for (Index v = 0; v < order.size(); ++v) vertex_of[order[v]] = v;
  rng.shuffle(edges);
  for (auto& [a, b] : edges) {
    // Orientation decides which end the augmentor scans from; randomise it as well.
    a = vertex_of[a];
    b = vertex_of[b];
    if (rng.next() & 1) std::swap(a, b);
  }

  const auto null = boost::graph_traits<Graph>::null_vertex();
  std::vector<Vertex> graph_mate(order.size(), null);
  if (warm_start) {
    for (Index v = 0; v < order.size(); ++v) {
      const Index m = mate[order[v]];
      if (m != kUnmatched && vertex_of[m] != kUnmatched) graph_mate[v] = vertex_of[m];
    }
  }
  const auto all_matched = [&] {
    return std::none_of(graph_mate.begin(), graph_mate.end(),
                        [&](Vertex m) { return m == null; });
  };

  bool done = warm_start && all_matched();
  const std::size_t sample_size = kSampleDegree * order.size() / 2;
  if (!done && edges.size() > sample_size) {
    // The shuffled prefix is a uniform random subgraph; the warm start's own pairs must
    // be edges of the graph the augmentor walks.
    std::vector<Edge> sample(edges.begin(), edges.begin() + static_cast<std::ptrdiff_t>(sample_size));
    if (warm_start) {
      for (Index v = 0; v < order.size(); ++v) {
        if (graph_mate[v] != null && v < graph_mate[v]) {
          sample.emplace_back(v, static_cast<Index>(graph_mate[v]));
        }
      }
    }
    run_edmonds(order.size(), sample, warm_start, graph_mate);
    done = all_matched();
    warm_start = true;
  }
  if (!done) run_edmonds(order.size(), edges, warm_start, graph_mate);

  for (Index v = 0; v < order.size(); ++v) {
    const Vertex m = graph_mate[v];
    mate[order[v]] = m == null ? kUnmatched : order[m];
  }
}

void validate(const std::vector<NodeId>& nodes, const Eigen::MatrixXd& bandwidth,
              const MatcherOptions& options) {
  if (!std::is_sorted(nodes.begin(), nodes.end()) ||
      std::adjacent_find(nodes.begin(), nodes.end()) != nodes.end()) {
    throw std::invalid_argument("match_round: participant ids must be strictly increasing");
  }
  if (nodes.size() >= kUnmatched) {
    throw std::invalid_argument("match_round: too many participants");
  }
  const auto n = static_cast<Eigen::Index>(nodes.size());
  if (bandwidth.rows() != n || bandwidth.cols() != n) {
    throw std::invalid_argument("match_round: bandwidth is " + std::to_string(bandwidth.rows()) +
                                "x" + std::to_string(bandwidth.cols()) + " for " +
                                std::to_string(n) + " participants");
  }
  if (options.history_rounds < 0) {
    throw std::invalid_argument("match_round: history_rounds must not be negative");
  }
}

// Index of `id` among the participants, or kUnmatched if it is not one.
Index index_of(const std::vector<NodeId>& nodes, NodeId id) {
  const auto it = std::lower_bound(nodes.begin(), nodes.end(), id);
  if (it == nodes.end() || *it != id) return kUnmatched;
  return static_cast<Index>(it - nodes.begin());
}

Index choose_idle(const std::vector<NodeId>& nodes, const std::deque<Matching>& history,
                  RoundRandom& rng) {
  const std::size_t n = nodes.size();
  // 0: never idle in the history; r + 1: last idle in history[r].
  std::vector<std::size_t> last_idle(n, 0);
  for (std::size_t r = 0; r < history.size(); ++r) {
    for (NodeId id : history[r].idle) {
      const Index i = index_of(nodes, id);
      if (i != kUnmatched) last_idle[i] = r + 1;
    }
  }
  const std::size_t oldest = *std::min_element(last_idle.begin(), last_idle.end());
  std::vector<Index> eligible;
  for (Index i = 0; i < n; ++i) {
    if (last_idle[i] == oldest) eligible.push_back(i);
  }
  return eligible[rng.below(eligible.size())];
}

}  // namespace

Matching match_round(const std::vector<NodeId>& nodes, const Eigen::MatrixXd& bandwidth,
                     const std::deque<Matching>& history, const MatcherOptions& options,
                     std::uint64_t round_seed) {
  validate(nodes, bandwidth, options);
  const auto n = static_cast<Index>(nodes.size());
  Matching result;
  if (n == 0) return result;
  RoundRandom rng(round_seed ^ kMatcherStream);

  Index idle = kUnmatched;
  if (n % 2 == 1) idle = choose_idle(nodes, history, rng);
  std::vector<Index> active;
  active.reserve(n);
  for (Index i = 0; i < n; ++i) {
    if (i != idle) active.push_back(i);
  }

  const auto window = static_cast<std::size_t>(options.history_rounds);
  bool window_connected = true;
  // Pairs of the window, row-major (smaller, larger) index: an n x n bit matrix is the
  // cheapest lookup for the n^2 / 2 pairs tested below.
  std::vector<bool> used;
  if (window > 0 && history.size() >= window) {
    used.assign(static_cast<std::size_t>(n) * n, false);
    DisjointSets components(n);
    Index component_count = n;
    for (std::size_t r = history.size() - window; r < history.size(); ++r) {
      for (const auto& [x, y] : history[r].pairs) {
        const Index a = index_of(nodes, x);
        const Index b = index_of(nodes, y);
        if (a == kUnmatched || b == kUnmatched || a == b) continue;
        used[static_cast<std::size_t>(std::min(a, b)) * n + std::max(a, b)] = true;
        if (components.unite(a, b)) --component_count;
      }
    }
    window_connected = component_count <= 1;
  }
  // a < b: `active` is increasing.
  const auto unused = [&](Index a, Index b) {
    return !used[static_cast<std::size_t>(a) * n + b];
  };

  std::vector<Index> mate(n, kUnmatched);
  std::vector<Edge> fast;
  std::vector<Edge> slow_unused;
  for (std::size_t x = 0; x < active.size(); ++x) {
    const Index a = active[x];
    for (std::size_t y = x + 1; y < active.size(); ++y) {
      const Index b = active[y];
      const bool is_unused = window_connected || unused(a, b);
      if (!is_unused) continue;
      const double link = std::min(bandwidth(a, b), bandwidth(b, a));
      if (link > options.bandwidth_threshold) {
        fast.emplace_back(a, b);
      } else if (!window_connected) {
        slow_unused.emplace_back(a, b);
      }
    }
  }
  if (window_connected) {
    maximum_matching(active, std::move(fast), false, rng, mate);
  } else {
    std::vector<Edge> all_unused = fast;
    all_unused.insert(all_unused.end(), slow_unused.begin(), slow_unused.end());
    maximum_matching(active, std::move(fast), false, rng, mate);
    maximum_matching(active, std::move(all_unused), true, rng, mate);
  }

  // Between leftovers every pair is a candidate, so any pairing is a maximum matching of
  // that complete graph: a random one is a shuffle.
  std::vector<Index> leftovers;
  for (Index a : active) {
    if (mate[a] == kUnmatched) leftovers.push_back(a);
  }
  rng.shuffle(leftovers);
  for (std::size_t k = 0; k + 1 < leftovers.size(); k += 2) {
    mate[leftovers[k]] = leftovers[k + 1];
    mate[leftovers[k + 1]] = leftovers[k];
  }

  for (Index a : active) {
    if (a < mate[a]) result.pairs.emplace_back(nodes[a], nodes[mate[a]]);
  }
  if (idle != kUnmatched) result.idle.push_back(nodes[idle]);
  return result;
}

Eigen::MatrixXd mixing_matrix(const std::vector<NodeId>& nodes, const Matching& matching) {
  const auto n = static_cast<Eigen::Index>(nodes.size());
  Eigen::MatrixXd w = Eigen::MatrixXd::Zero(n, n);
  std::vector<bool> paired(nodes.size(), false);
  const auto participant = [&](NodeId id) {
    const Index i = index_of(nodes, id);
    if (i == kUnmatched) {
      throw std::invalid_argument("mixing_matrix: node " + std::to_string(id) +
                                  " is not a participant");
    }
    if (paired[i]) {
      throw std::invalid_argument("mixing_matrix: node " + std::to_string(id) +
                                  " is paired twice");
    }
    paired[i] = true;
    return static_cast<Eigen::Index>(i);
  };
  for (const auto& [x, y] : matching.pairs) {
    const Eigen::Index a = participant(x);
    const Eigen::Index b = participant(y);
    w(a, a) = w(b, b) = w(a, b) = w(b, a) = 0.5;
  }
  for (Eigen::Index i = 0; i < n; ++i) {
    if (!paired[static_cast<std::size_t>(i)]) w(i, i) = 1.0;
  }
  return w;
}

double spectral_gap(const Eigen::MatrixXd& w) {
  if (w.rows() != w.cols()) throw std::invalid_argument("spectral_gap: W must be square");
  if (w.rows() < 2) return 1.0;
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(w, Eigen::EigenvaluesOnly);
  if (solver.info() != Eigen::Success) {
    throw std::runtime_error("spectral_gap: eigenvalue computation did not converge");
  }
  std::vector<double> moduli(static_cast<std::size_t>(w.rows()));
  for (Eigen::Index i = 0; i < w.rows(); ++i) {
    moduli[static_cast<std::size_t>(i)] = std::abs(solver.eigenvalues()(i));
  }
  std::sort(moduli.begin(), moduli.end(), std::greater<>());
  return std::clamp(1.0 - moduli[1], 0.0, 1.0);
}

}  // namespace raftfl::control
