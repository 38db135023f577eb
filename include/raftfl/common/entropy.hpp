#pragma once

#include <cstdint>

namespace raftfl::common {

// 64 bits from the kernel's random pool (getrandom(2)). Processes started together, or
// one process restarted, draw different values: what a node needs for anything that must
// differ between nodes, such as its election timeouts. Throws std::system_error when the
// kernel refuses.
std::uint64_t random_seed();

}  // namespace raftfl::common
