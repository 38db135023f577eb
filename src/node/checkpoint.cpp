#include "checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

#include "raftfl/common/durable_file.hpp"

namespace raftfl::node {
namespace {

// Layout: this tag, three u64 (round, parameter count, XXH3 of the parameters' bytes),
// the parameters as floats, all in the host's byte order: a checkpoint is read back only
// by the node that wrote it.
constexpr std::string_view kTag{"RFLCKPT1", 8};

}  // namespace

void write_checkpoint(const std::filesystem::path& file, std::uint64_t round, std::span<const float> parameters) {
  const std::uint64_t header[3] = {round, parameters.size(), XXH3_64bits(parameters.data(), parameters.size_bytes())};
  common::replace_file_durably(file, {std::as_bytes(std::span(kTag.data(), kTag.size())), std::as_bytes(std::span(header)),
                                      std::as_bytes(parameters)});
}

std::optional<std::uint64_t> read_checkpoint(const std::filesystem::path& file, std::span<float> parameters) {
  const auto refuse = [&](const std::string& why) { return CheckpointError(file.string() + ": " + why); };
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw refuse("cannot be opened: " + std::generic_category().message(errno));
  }
  std::string bytes;
  char buffer[1 << 16];
  for (;;) {
    const auto n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      throw refuse("cannot be read: " + std::generic_category().message(error));
    }
    if (n == 0) break;
    bytes.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);

  std::uint64_t header[3];
  const std::size_t values_at = kTag.size() + sizeof header;
  if (bytes.size() < kTag.size() || std::string_view(bytes).substr(0, kTag.size()) != kTag)
    throw refuse("not a model checkpoint");
  if (bytes.size() < values_at) throw refuse("truncated in its header");
  std::memcpy(header, bytes.data() + kTag.size(), sizeof header);
  const auto [round, count, checksum] = header;
  if (count != parameters.size())
    throw refuse("a model of " + std::to_string(count) + " parameters, this one has " +
                 std::to_string(parameters.size()));
  const std::size_t expected = values_at + parameters.size_bytes();
  if (bytes.size() < expected)
    throw refuse("truncated: " + std::to_string(bytes.size()) + " bytes of " + std::to_string(expected));
  if (bytes.size() > expected)
    throw refuse(std::to_string(bytes.size() - expected) + " bytes after the parameters");
  if (XXH3_64bits(bytes.data() + values_at, parameters.size_bytes()) != checksum)
    throw refuse("damaged: the parameters do not match their checksum");
  std::memcpy(parameters.data(), bytes.data() + values_at, parameters.size_bytes());
  return round;
}

}  // namespace raftfl::node
