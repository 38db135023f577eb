#pragma once

#include <cstdint>
#include <string>

// Fixed-width little-endian integers in byte strings: the engine's membership entries,
// the write-ahead log and the simulator's snapshots all encode them the same way.
namespace raftfl::raft {

template <typename T>
void put_le(std::string& out, T v) {
  for (unsigned i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

template <typename T>
T get_le(const char* p) {
  T v = 0;
  for (unsigned i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<std::uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace raftfl::raft
