#pragma once

// The faults of `raftfl demo --chaos SEED` (README, "A chaos run"): which kind of event
// comes after which round, drawn from the seed alone so that a run can be replayed. Who
// is hit (the leader, some voter or learner) is decided when the event is due, from the
// cluster as it is then; that choice is seeded too.

#include <cstdint>
#include <string>
#include <vector>

namespace raftfl::app {

enum class ChaosKind : std::uint8_t {
  kKillLeader,   // SIGKILL the leader, restart it `rounds` rounds later
  kKillVoter,    // SIGKILL a voter that does not lead, restart it `rounds` rounds later
  kKillLearner,  // SIGKILL a learner, restart it `rounds` rounds later
  kPause,        // SIGSTOP a node that does not lead for `seconds` (past the failure timeout), then SIGCONT
  kJoin,         // start node `node` with --join
  kLeave,        // SIGTERM a learner: it leaves the cluster
};

struct ChaosEvent {
  std::uint64_t after_round = 0;
  ChaosKind kind = ChaosKind::kKillLeader;
  std::uint64_t rounds = 0;  // kills: rounds until the restart
  double seconds = 0;        // pauses: how long (wall time: it must outlast the failure timeout)
  std::uint64_t node = 0;  // kJoin only
  bool operator==(const ChaosEvent&) const = default;
};

struct ChaosShape {
  std::uint64_t rounds = 150;
  std::uint64_t quiet_tail = 10;  // rounds at the end without events (the consensus rounds)
  std::uint64_t first_joiner = 9;  // ids of the nodes that join mid-run: first_joiner, +1
  double failure_timeout_s = 1.0;
};

// Three kills (the leader, a voter, a learner) and two pauses in an order drawn from
// `seed`, spread over the first two thirds of rounds 15 .. rounds - quiet_tail - 15 (a
// restarted process needs seconds to load before it trains again); two joins and two
// leaves over the whole of it. Events come after distinct rounds, in order. Throws
// std::invalid_argument when the run is too short to hold them.
std::vector<ChaosEvent> chaos_schedule(std::uint64_t seed, const ChaosShape& shape);

std::string describe(const ChaosEvent& event);

}  // namespace raftfl::app
