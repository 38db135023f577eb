#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "raftfl/raft/types.hpp"

namespace raftfl::sim {

// Hash of a log prefix ending at `entry`, from the hash of the prefix before it.
std::uint64_t extend_prefix_hash(std::uint64_t prefix, const raft::Entry& entry);

// Client proposals are 8 bytes of id, little endian, padded to the workload's entry size.
std::string encode_proposal(std::uint64_t id, std::size_t size);
std::optional<std::uint64_t> decode_proposal(std::string_view bytes);

// The replicated state machine of the simulation: the ordered list of applied client
// proposals and the prefix hash of the applied log. Its snapshot is the whole of it.
struct StateMachine {
  raft::Index applied = 0;
  std::uint64_t hash = 0;
  std::vector<std::uint64_t> proposals;

  void apply(const raft::Entry& entry);
  std::string serialize() const;
  static StateMachine deserialize(std::string_view bytes);
  // The prefix hash a serialized state machine carries, without decoding the rest.
  static std::uint64_t hash_of(std::string_view bytes);
};

}  // namespace raftfl::sim
