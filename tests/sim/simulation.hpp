#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "checker.hpp"
#include "faults.hpp"

namespace raftfl::sim {

struct SimOptions {
  std::uint64_t seed = 1;
  int voters = 3;
  int learners = 0;
  FaultSet faults = FaultSet::all();
  std::int64_t chaos_ms = 6000;    // virtual time with the nemesis at work
  std::int64_t liveness_ms = 6000;  // after healing: a leader and a new commit within this
  std::int64_t converge_ms = 6000;  // then: every member applied everything within this
  std::size_t entry_bytes = 64;
  bool trace = false;  // print every event (for replaying one seed)
};

struct SimStats {
  std::uint64_t events = 0;
  std::uint64_t messages = 0;
  std::uint64_t proposals = 0;
  std::uint64_t acknowledged = 0;
  std::uint64_t reads = 0;
  std::uint64_t elections = 0;
  std::uint64_t crashes = 0;
  std::uint64_t partitions = 0;
  std::uint64_t conf_changes = 0;
  std::uint64_t transfers = 0;
  std::uint64_t snapshots_installed = 0;
  std::uint64_t compactions = 0;
  std::int64_t virtual_ms = 0;

  SimStats& operator+=(const SimStats& other);
};

struct SimResult {
  std::vector<Violation> violations;
  SimStats stats;
};

// Runs one seeded simulation of a whole cluster and checks it (see Checker) after every step.
SimResult run_simulation(const SimOptions& options);

// The command line that replays `options` with raftfl-sim.
std::string replay_command(const SimOptions& options);

}  // namespace raftfl::sim
