#pragma once

#include <cstddef>
#include <filesystem>
#include <initializer_list>
#include <span>
#include <string_view>

namespace raftfl::common {

// Replaces `file` with the concatenation of `pieces` so that a crash at any point leaves
// either the old file or the new one, whole, and so that the new one survives a crash
// once this returns: the bytes go to `file` + ".tmp" in the same directory, which is
// fsynced, renamed over `file`, and then the directory is fsynced (without that last
// step the rename itself may be lost). Throws std::system_error naming the path that
// failed; the temporary is removed then, and `file` is as it was. A temporary left by a
// crash is overwritten by the next call. One writer per file.
void replace_file_durably(const std::filesystem::path& file, std::initializer_list<std::span<const std::byte>> pieces);

inline void replace_file_durably(const std::filesystem::path& file, std::string_view bytes) {
  replace_file_durably(file, {std::as_bytes(std::span(bytes.data(), bytes.size()))});
}

// fsync of a directory: makes the creation, removal and renaming of its entries durable.
// Throws std::system_error naming `directory`.
void sync_directory(const std::filesystem::path& directory);

}  // namespace raftfl::common
