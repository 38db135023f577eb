#pragma once

#include <cstdio>
#include <string_view>

namespace raftfl::log {

// One line per event on stderr (journald stamps and collects it under systemd).
// Deliberately tiny: the hot path never logs.
enum class Level { kInfo, kWarn, kError };

inline void line(Level level, std::string_view component, std::string_view text) {
  const char* tag = level == Level::kInfo ? "info" : level == Level::kWarn ? "warn" : "error";
  std::fprintf(stderr, "raftfl %s %.*s: %.*s\n", tag, static_cast<int>(component.size()), component.data(),
               static_cast<int>(text.size()), text.data());
}

}  // namespace raftfl::log
