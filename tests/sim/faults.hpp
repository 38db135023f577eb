#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace raftfl::sim {

// The faults the nemesis may inject; `--faults` takes "all", "none" or a comma list.
enum class Fault : std::uint32_t {
  kDrop = 1 << 0,         // lose messages
  kDuplicate = 1 << 1,    // deliver some twice
  kDelay = 1 << 2,        // long random delays, hence reordering
  kPartition = 1 << 3,    // symmetric splits of the cluster
  kAsymmetric = 1 << 4,   // one-way link failures
  kCrash = 1 << 5,        // crash and restart from what was persisted
  kMembership = 1 << 6,   // add learners, promote, remove members
  kTransfer = 1 << 7,     // leadership transfers
  kCompact = 1 << 8,      // snapshots and log compaction
};

class FaultSet {
 public:
  static FaultSet all();
  static FaultSet none() { return FaultSet(); }
  // Parses "all", "none" or e.g. "drop,crash"; nullopt and `error` set when it cannot.
  static std::optional<FaultSet> parse(std::string_view text, std::string* error);

  bool has(Fault f) const { return (bits_ & static_cast<std::uint32_t>(f)) != 0; }
  void add(Fault f) { bits_ |= static_cast<std::uint32_t>(f); }
  std::string to_string() const;

 private:
  std::uint32_t bits_ = 0;
};

}  // namespace raftfl::sim
