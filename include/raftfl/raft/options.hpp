#pragma once

#include <cstddef>
#include <cstdint>

#include "raftfl/raft/types.hpp"

namespace raftfl::raft {

// Timing is in ticks; the driver decides how long a tick is. The defaults are
// 150-300 ms election timeouts and 50 ms heartbeats at a 10 ms tick.
struct Options {
  NodeId id = kNoNode;
  int election_timeout_min_ticks = 15;
  int election_timeout_max_ticks = 30;
  int heartbeat_interval_ticks = 5;

  bool pre_vote = true;
  bool check_quorum = true;

  std::size_t max_entries_per_message = 256;
  std::size_t max_bytes_per_message = 1 << 20;
  std::size_t max_inflight_messages = 64;

  // A message whose term is more than this past ours is dropped (message_bounds.hpp): no
  // real cluster holds 2^32 elections, while a forged or damaged term can be anything.
  Term max_term_ahead = Term{1} << 32;

  // Seeds the randomized election timeout together with the id. A node process draws it
  // from the kernel's entropy (a restarted node must not replay its old timeouts, nor
  // match its peers'); the simulator and the tests set it so that a run replays exactly.
  std::uint64_t seed = 1;
};

// Why `options` cannot run, or nullptr when they can.
const char* options_error(const Options& options);

}  // namespace raftfl::raft
