#include "chaos_schedule.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "raftfl/common/splitmix64.hpp"

namespace raftfl::app {
namespace {

constexpr std::uint64_t kMargin = 15;  // rounds kept free at the start and before the tail
constexpr std::uint64_t kMinSpacing = 4;

double uniform(common::SplitMix64& rng, double low, double high) {
  return low + (high - low) * static_cast<double>(rng.next() >> 11) / static_cast<double>(1ULL << 53);
}

}  // namespace

std::vector<ChaosEvent> chaos_schedule(std::uint64_t seed, const ChaosShape& shape) {
  std::vector<ChaosKind> faults{ChaosKind::kKillLeader, ChaosKind::kKillVoter, ChaosKind::kKillLearner,
                                ChaosKind::kPause, ChaosKind::kPause};
  std::vector<ChaosKind> changes{ChaosKind::kJoin, ChaosKind::kJoin, ChaosKind::kLeave, ChaosKind::kLeave};
  const std::uint64_t events = faults.size() + changes.size();
  if (shape.rounds < shape.quiet_tail + 2 * kMargin + events * kMinSpacing * 2)
    throw std::invalid_argument("--chaos needs at least " +
                                std::to_string(shape.quiet_tail + 2 * kMargin + events * kMinSpacing * 2) +
                                " rounds for its " + std::to_string(events) + " events");
  common::SplitMix64 rng(seed ^ 0xc4a05c4a05ULL);
  const auto shuffle = [&rng](std::vector<ChaosKind>& kinds) {
    for (std::size_t i = kinds.size(); i > 1; --i) std::swap(kinds[i - 1], kinds[rng.next() % i]);
  };
  shuffle(faults);
  shuffle(changes);
  const std::uint64_t span = shape.rounds - shape.quiet_tail - 2 * kMargin - events;  // room to keep rounds distinct
  std::vector<ChaosEvent> out;
  // One event per slot of equal width, at a drawn place inside its slot.
  const auto spread = [&](const std::vector<ChaosKind>& kinds, std::uint64_t width) {
    const std::uint64_t slot = width / kinds.size();
    for (std::size_t i = 0; i < kinds.size(); ++i) {
      ChaosEvent e;
      e.kind = kinds[i];
      e.after_round = kMargin + i * slot + rng.next() % (slot - kMinSpacing + 1);
      out.push_back(e);
    }
  };
  spread(faults, span * 2 / 3);
  spread(changes, span);
  std::stable_sort(out.begin(), out.end(), [](const ChaosEvent& a, const ChaosEvent& b) { return a.after_round < b.after_round; });
  std::uint64_t joiner = shape.first_joiner;
  for (std::size_t i = 0; i < out.size(); ++i) {
    ChaosEvent& e = out[i];
    if (i > 0 && e.after_round <= out[i - 1].after_round) e.after_round = out[i - 1].after_round + 1;
    switch (e.kind) {
      case ChaosKind::kKillLeader:
      case ChaosKind::kKillVoter:
      case ChaosKind::kKillLearner: e.rounds = 3 + rng.next() % 6; break;
      case ChaosKind::kPause: e.seconds = shape.failure_timeout_s + uniform(rng, 1, 3); break;
      case ChaosKind::kJoin: e.node = joiner++; break;
      case ChaosKind::kLeave: break;
    }
  }
  return out;
}

std::string describe(const ChaosEvent& e) {
  const std::string after = "after round " + std::to_string(e.after_round) + ": ";
  const std::string restart = ", restart it " + std::to_string(e.rounds) + " rounds later";
  switch (e.kind) {
    case ChaosKind::kKillLeader: return after + "SIGKILL the leader" + restart;
    case ChaosKind::kKillVoter: return after + "SIGKILL a voter that does not lead" + restart;
    case ChaosKind::kKillLearner: return after + "SIGKILL a learner" + restart;
    case ChaosKind::kPause: {
      char seconds[32];
      std::snprintf(seconds, sizeof(seconds), "%.1f s", e.seconds);
      return after + "SIGSTOP a node that does not lead for " + seconds;
    }
    case ChaosKind::kJoin: return after + "node " + std::to_string(e.node) + " joins";
    case ChaosKind::kLeave: return after + "a learner leaves (SIGTERM)";
  }
  return after + "?";
}

}  // namespace raftfl::app
