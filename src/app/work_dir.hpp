#pragma once

#include <stdlib.h>

#include <filesystem>
#include <optional>
#include <string>
#include <system_error>

namespace raftfl::app {

// A working directory for the node processes a command starts: a fresh one under /tmp,
// removed afterwards unless kept, or one the user named (never removed).
struct WorkDir {
  std::filesystem::path path;
  bool remove = false;
  WorkDir() = default;
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  ~WorkDir() {
    std::error_code ignored;
    if (remove) std::filesystem::remove_all(path, ignored);
  }
  // False (errno set) when a fresh directory cannot be made.
  bool make(const std::string& requested, const std::string& prefix, bool keep) {
    if (!requested.empty()) {
      path = requested;
      return true;
    }
    std::string pattern = "/tmp/" + prefix + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) return false;
    path = pattern;
    remove = !keep;
    return true;
  }
};

inline std::filesystem::path self_binary() { return std::filesystem::read_symlink("/proc/self/exe"); }

}  // namespace raftfl::app
