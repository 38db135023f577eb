#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "checker.hpp"
#include "faults.hpp"

namespace raftfl::sim {

// Deliberate corruptions, for tests that the checker notices when the simulator feeds it
// something wrong (a checker that is never fed passes every run).
enum class Sabotage {
  kNone,
  kCorruptFollowerEntry,  // a follower stores one entry with a changed payload
  kExecuteDuplicates,     // the state machine executes retries again
  kForgetSessions,        // snapshots leave the client sessions out
  kMisreportLeaderLog,    // the leader's log is reported with a wrong prefix hash
};

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
  // After convergence, with 3 voters or more: the leader runs the voter policy
  // (raft/voter_policy.hpp) with a failure timeout, keeping `voters` voters and a learner
  // in reserve; a voter is crashed for good, and a full voter set must return.
  bool replace_voter = true;
  std::int64_t replace_ms = 10000;
  Sabotage sabotage = Sabotage::kNone;
};

struct SimStats {
  std::uint64_t events = 0;
  std::uint64_t messages = 0;
  std::uint64_t requests = 0;      // client requests (a retry is not a new one)
  std::uint64_t proposals = 0;     // attempts a leader accepted, retries included
  std::uint64_t retries = 0;       // ...of which retries
  std::uint64_t acknowledged = 0;  // requests the client heard were executed
  std::uint64_t executed = 0;      // requests executed (the longest history of any node)
  std::uint64_t duplicates = 0;    // retries the state machine recognised and skipped
  std::uint64_t reads = 0;
  std::uint64_t elections = 0;
  std::uint64_t crashes = 0;
  std::uint64_t aimed_crashes = 0;  // of a fresh leader before its first persist
  std::uint64_t partitions = 0;
  std::uint64_t conf_changes = 0;
  std::uint64_t voters_lost = 0;      // crashed for good in the replacement phase
  std::uint64_t voters_replaced = 0;  // ...and a full voter set regained
  std::uint64_t transfers = 0;
  std::uint64_t snapshots_installed = 0;
  std::uint64_t compactions = 0;
  std::int64_t virtual_ms = 0;

  SimStats& operator+=(const SimStats& other);
};

struct SimResult {
  std::vector<Violation> violations;
  SimStats stats;
  CheckerCounts checked;
};

// Runs one seeded simulation of a whole cluster and checks it (see Checker) after every step.
SimResult run_simulation(const SimOptions& options);

// The command line that replays `options` with raftfl-sim.
std::string replay_command(const SimOptions& options);

}  // namespace raftfl::sim
