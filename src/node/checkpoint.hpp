#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>

namespace raftfl::node {

// A file that is not a checkpoint of this model: another format, another parameter
// count, truncated, or damaged. The message names the file and what is wrong with it.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The worker's model after `round`: the round, the flat parameters and their checksum.
// Written so that a crash leaves the previous checkpoint or this one, never part of
// either. Throws std::system_error naming the file when it cannot be written.
void write_checkpoint(const std::filesystem::path& file, std::uint64_t round, std::span<const float> parameters);

// Loads the checkpoint in `file` into `parameters` and returns its round; nullopt when
// there is no such file. Throws CheckpointError when the file is not a whole checkpoint
// of exactly parameters.size() values; `parameters` is then left as it was.
std::optional<std::uint64_t> read_checkpoint(const std::filesystem::path& file, std::span<float> parameters);

}  // namespace raftfl::node
