#include "sync_recorder.hpp"

#include <dlfcn.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

namespace raftfl::test {
namespace {

std::mutex mutex;
std::vector<SyncEvent> events;
int pending_failure = 0;

template <typename Fn>
Fn real(const char* name) {
  return reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, name));
}

std::filesystem::path normal(const std::filesystem::path& p) {
  std::error_code ignored;
  auto out = std::filesystem::weakly_canonical(std::filesystem::absolute(p), ignored);
  return out.empty() ? p : out;
}

std::filesystem::path path_of(int fd) {
  std::error_code ignored;
  return std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), ignored);
}

// -1 with errno set when the sync is to fail; 0 otherwise.
int record_sync(int fd) {
  struct stat st{};
  const bool directory = ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
  std::lock_guard lock(mutex);
  if (!directory && pending_failure != 0) {
    errno = pending_failure;
    pending_failure = 0;
    return -1;
  }
  events.push_back({directory ? SyncEvent::Kind::kSyncDirectory : SyncEvent::Kind::kSyncFile, normal(path_of(fd)), {}});
  return 0;
}

}  // namespace

std::vector<SyncEvent> sync_events() {
  std::lock_guard lock(mutex);
  return events;
}

void clear_sync_events() {
  std::lock_guard lock(mutex);
  events.clear();
}

void fail_next_file_sync(int error) {
  std::lock_guard lock(mutex);
  pending_failure = error;
}

std::string missing_for_durable_replace(const std::vector<SyncEvent>& recorded, const std::filesystem::path& file) {
  const auto target = normal(file);
  std::size_t rename_at = recorded.size();
  for (std::size_t i = recorded.size(); i-- > 0;) {
    if (recorded[i].kind == SyncEvent::Kind::kRename && recorded[i].to == target) {
      rename_at = i;
      break;
    }
  }
  if (rename_at == recorded.size()) return "no rename to " + target.string();
  const auto& source = recorded[rename_at].path;
  bool source_synced = false;
  for (std::size_t i = 0; i < rename_at; ++i)
    source_synced |= recorded[i].kind == SyncEvent::Kind::kSyncFile && recorded[i].path == source;
  if (!source_synced) return source.string() + " was renamed without being synced first";
  for (std::size_t i = rename_at + 1; i < recorded.size(); ++i) {
    if (recorded[i].kind == SyncEvent::Kind::kSyncDirectory && recorded[i].path == target.parent_path()) return "";
  }
  return "the directory " + target.parent_path().string() + " was not synced after the rename to " + target.string();
}

}  // namespace raftfl::test

using raftfl::test::real;
using raftfl::test::record_sync;

extern "C" int fsync(int fd) {
  static const auto next = real<int (*)(int)>("fsync");
  if (record_sync(fd) != 0) return -1;
  return next(fd);
}

extern "C" int fdatasync(int fd) {
  static const auto next = real<int (*)(int)>("fdatasync");
  if (record_sync(fd) != 0) return -1;
  return next(fd);
}

extern "C" int rename(const char* from, const char* to) noexcept {
  static const auto next = real<int (*)(const char*, const char*)>("rename");
  const int result = next(from, to);
  if (result == 0) {
    std::lock_guard lock(raftfl::test::mutex);
    raftfl::test::events.push_back(
        {raftfl::test::SyncEvent::Kind::kRename, raftfl::test::normal(from), raftfl::test::normal(to)});
  }
  return result;
}
