#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace raftfl::test {

// Linking sync_recorder.cpp into a test program replaces fsync, fdatasync and rename for
// the whole program with versions that record each call (the path the descriptor names,
// whether it is a directory) and then do the real thing. That is how a test sees whether
// code made a rename durable, which no file content can show short of pulling the plug.
struct SyncEvent {
  enum class Kind { kSyncFile, kSyncDirectory, kRename };
  Kind kind;
  std::filesystem::path path;  // renames: the old name
  std::filesystem::path to;    // renames: the new name
};

// The calls since the last clear, in order.
std::vector<SyncEvent> sync_events();
void clear_sync_events();

// The next fsync or fdatasync of a regular file fails with `error` instead of syncing.
void fail_next_file_sync(int error);

// "" when the events show `file` replaced durably: a file synced, then renamed to
// `file`, then `file`'s directory synced. Otherwise what is missing, for the failure
// message.
std::string missing_for_durable_replace(const std::vector<SyncEvent>& events, const std::filesystem::path& file);

}  // namespace raftfl::test
