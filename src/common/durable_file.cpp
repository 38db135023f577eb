#include "raftfl/common/durable_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace raftfl::common {
namespace {

[[noreturn]] void fail(int error, const std::string& what, const std::filesystem::path& path) {
  throw std::system_error(error, std::generic_category(), what + " " + path.string());
}

void write_all(int fd, std::span<const std::byte> bytes, const std::filesystem::path& path) {
  while (!bytes.empty()) {
    const auto n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(errno, "write", path);
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
}

std::filesystem::path directory_of(const std::filesystem::path& file) {
  auto directory = file.parent_path();
  return directory.empty() ? std::filesystem::path(".") : directory;
}

}  // namespace

void replace_file_durably(const std::filesystem::path& file, std::initializer_list<std::span<const std::byte>> pieces) {
  std::filesystem::path temporary = file;
  temporary += ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(errno, "create", temporary);
  try {
    for (const auto piece : pieces) write_all(fd, piece, temporary);
    if (::fsync(fd) != 0) fail(errno, "fsync", temporary);
  } catch (...) {
    ::close(fd);
    ::unlink(temporary.c_str());
    throw;
  }
  // Some file systems (NFS) report a failed write only here.
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    fail(error, "close", temporary);
  }
  if (::rename(temporary.c_str(), file.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    fail(error, "rename " + temporary.string() + " to", file);
  }
  sync_directory(directory_of(file));
}

void sync_directory(const std::filesystem::path& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(errno, "open directory", directory);
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    fail(error, "fsync directory", directory);
  }
  ::close(fd);
}

}  // namespace raftfl::common
