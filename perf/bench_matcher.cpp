// raftfl-bench-matcher: what the coordinator pays to pick one round's matching for 1,000
// participants (the target is under 50 ms, so that committing round r+k never lags the
// round it runs ahead of).
#include <benchmark/benchmark.h>

#include <string>

#include <cstdint>
#include <deque>
#include <vector>

#include "raftfl/control/control_state.hpp"
#include "raftfl/control/matcher.hpp"
#include "raftfl/wire/control_codec.hpp"

namespace {

using namespace raftfl::control;

constexpr std::size_t kNodes = 1000;
constexpr int kHistory = 5;

struct Setup {
  std::vector<NodeId> nodes;
  Eigen::MatrixXd bandwidth;
};

Setup make_setup(std::size_t n) {
  Setup s;
  s.nodes.resize(n);
  for (std::size_t i = 0; i < n; ++i) s.nodes[i] = i + 1;
  const auto k = static_cast<Eigen::Index>(n);
  s.bandwidth = Eigen::MatrixXd::Zero(k, k);
  std::uint64_t x = 0x1234'5678'9abc'def0ULL;
  for (Eigen::Index i = 0; i < k; ++i) {
    for (Eigen::Index j = i + 1; j < k; ++j) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      // Mbit/s between 10 and 1000.
      s.bandwidth(i, j) = s.bandwidth(j, i) =
          10.0 + 990.0 * static_cast<double>(x >> 11) / 9007199254740992.0;
    }
  }
  return s;
}

// The steady state: T rounds of history whose union connects everyone; the threshold
// keeps about half the links as candidates.
void BM_MatchRound(benchmark::State& state) {
  const auto s = make_setup(static_cast<std::size_t>(state.range(0)));
  const MatcherOptions options{505.0, kHistory};
  std::deque<Matching> history;
  for (std::uint64_t r = 0; r < kHistory; ++r) {
    history.push_back(match_round(s.nodes, s.bandwidth, history, options, r));
  }
  std::uint64_t seed = 1000;
  for (auto _ : state) {
    auto m = match_round(s.nodes, s.bandwidth, history, options, seed++);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_MatchRound)->Arg(kNodes)->Unit(benchmark::kMillisecond)->UseRealTime();

// The fallback: a window stuck on the same pairs (disconnected), so the matcher runs the
// second, warm-started matching over every unused pair.
void BM_MatchRoundDisconnectedWindow(benchmark::State& state) {
  const auto s = make_setup(static_cast<std::size_t>(state.range(0)));
  const MatcherOptions options{505.0, kHistory};
  const Matching stuck = match_round(s.nodes, s.bandwidth, {}, options, 1);
  const std::deque<Matching> history(kHistory, stuck);
  std::uint64_t seed = 1000;
  for (auto _ : state) {
    auto m = match_round(s.nodes, s.bandwidth, history, options, seed++);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_MatchRoundDisconnectedWindow)
    ->Arg(kNodes)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// What the coordinator pays per round end to end: plan_round from the replicated state
// (bandwidth matrix built from the committed cells, history from the committed
// topologies, the matching) plus encoding the Topology entry it proposes. The target is
// the same 50 ms for 1,000 participants.
void BM_PlanAndEncodeRound(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto s = make_setup(n);
  ControlState control;
  for (NodeId id : s.nodes) {
    control.apply(MembershipChange{MembershipChange::Op::kAdd, Member{id, "10.0.0.1:7000", false, kCapabilityTrains, false, {}}});
  }
  control.apply(CoordinatorChange{1, 1, 1});
  BandwidthUpdate measured;
  measured.cells.reserve(n * (n - 1));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      if (i != j) {
        measured.cells.push_back({s.nodes[i], s.nodes[j], s.bandwidth(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j))});
      }
    }
  }
  control.apply(measured);
  const MatcherOptions options{505.0, kHistory};
  for (int r = 0; r < kHistory; ++r) {
    control.apply(plan_round(control, s.nodes, options, control.last_round() + 1, 1, 42, 0.0));
  }
  Round round = control.last_round() + 1;
  std::size_t bytes = 0;
  for (auto _ : state) {
    const Topology t = plan_round(control, s.nodes, options, round++, 1, 42, 0.0);
    const std::string entry = raftfl::wire::encode_control_command(t);
    bytes = entry.size();
    benchmark::DoNotOptimize(entry.data());
  }
  state.counters["entry_bytes"] = static_cast<double>(bytes);
  state.counters["history"] = static_cast<double>(control.recent_matchings(kHistory).size());
}
BENCHMARK(BM_PlanAndEncodeRound)->Arg(kNodes)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
