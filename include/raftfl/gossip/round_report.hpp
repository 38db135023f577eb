#pragma once

#include <cstdint>
#include <vector>

namespace raftfl::gossip {

struct BandwidthSample {
  std::uint64_t peer = 0;
  double bytes_per_second = 0.0;
  friend bool operator==(const BandwidthSample&, const BandwidthSample&) = default;
};

// A worker's account of one round (docs/ARCHITECTURE.md, "A round", step 3), for the coordinator's
// metrics and bandwidth matrix.
struct RoundReport {
  std::uint64_t round = 0;
  std::uint64_t peer = 0;  // 0: sat the round out
  double train_loss = 0.0;
  double accuracy = -1.0;  // test accuracy in [0, 1]; negative when not evaluated
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t train_micros = 0;
  std::uint64_t exchange_micros = 0;
  std::uint64_t round_micros = 0;
  bool peer_timed_out = false;
  bool final = false;  // after the last round; accuracy over the whole test set
  std::uint64_t train_samples = 0;
  bool joining = false;  // the worker (re)started and begins at round + 1; no round was done
  std::vector<BandwidthSample> bandwidth;
  friend bool operator==(const RoundReport&, const RoundReport&) = default;
};

}  // namespace raftfl::gossip
