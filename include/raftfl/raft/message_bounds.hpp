#pragma once

// What a message from another node may carry. A peer that is buggy or is not who it
// claims, or a frame altered on its way, can put anything into a message that still
// decodes. The engine drops such a message before it touches any state, so that no term
// jumps absurdly far ahead and no arithmetic on a term or index from the network can
// overflow (every one that passes is at most 2^62, so term + 1 and index + count fit).

#include <cstdint>

#include "raftfl/raft/message.hpp"

namespace raftfl::raft {

inline constexpr Term kMaxTerm = Term{1} << 62;
inline constexpr Index kMaxIndex = Index{1} << 62;

// Why `m` cannot come from a correct peer of a node in `current_term` (a term more than
// `max_term_ahead` past it counts as impossible), or nullptr.
const char* message_out_of_bounds(const Message& m, Term current_term, Term max_term_ahead);

}  // namespace raftfl::raft
