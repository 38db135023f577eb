#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "checker.hpp"
#include "raftfl/raft/types.hpp"

namespace raftfl::sim {

// Hash of a log prefix ending at `entry`, from the hash of the prefix before it.
std::uint64_t extend_prefix_hash(std::uint64_t prefix, const raft::Entry& entry);

// A client request is its session, client id and sequence number (16 bytes, little
// endian), padded to the workload's entry size. Every retry of a request carries the
// same bytes, so the state machine can tell a retry from a new request.
std::string encode_request(ClientOp op, std::size_t size);
std::optional<ClientOp> decode_request(std::string_view bytes);

// A read's context: its id, 8 bytes.
std::string encode_read(std::uint64_t id);
std::optional<std::uint64_t> decode_read(std::string_view bytes);

// The replicated state machine of the simulation: the ordered list of client requests it
// executed, the prefix hash of the applied log, and the client sessions (Raft
// dissertation section 6.3): per client, the highest sequence number executed. A request
// at or below it is a retry of one already executed and is answered without executing it
// again. The sessions are part of the replicated state, so a snapshot carries them: a
// node that restores one must still recognise retries of requests executed before it.
struct StateMachine {
  raft::Index applied = 0;
  std::uint64_t hash = 0;
  std::vector<ClientOp> executed;
  std::map<std::uint64_t, std::uint64_t> sessions;  // client -> highest seq executed

  struct Outcome {
    ClientOp op;
    bool executed = false;  // false: a duplicate, answered from the session
  };
  // Applies the next entry; says what happened to the client request it carried, if any.
  std::optional<Outcome> apply(const raft::Entry& entry);
  std::string serialize() const;
  static StateMachine deserialize(std::string_view bytes);
  // The prefix hash a serialized state machine carries, without decoding the rest.
  static std::uint64_t hash_of(std::string_view bytes);
};

}  // namespace raftfl::sim
