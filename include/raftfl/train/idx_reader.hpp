#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace raftfl::train {

// Thrown for every problem with a dataset file: missing, unreadable, corrupt or
// inconsistent. The message always names the file, so that an operator can act on it.
class DatasetError : public std::runtime_error {
 public:
  explicit DatasetError(const std::string& what) : std::runtime_error(what) {}
};

// Images as one contiguous row-major byte block (count * rows * cols), so that training
// can copy a batch with a single memcpy; labels one byte per image.
struct ImageSet {
  std::size_t count = 0;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<std::uint8_t> pixels;
  std::vector<std::uint8_t> labels;
};

enum class Split { kTrain, kTest };

// The class count of Fashion-MNIST; labels at or above it are reported as corrupt.
inline constexpr std::size_t kFashionMnistClasses = 10;

// Reads a gzip-compressed IDX image file (magic 0x00000803) and its label file
// (magic 0x00000801). Throws DatasetError on any defect; never trusts a header's sizes
// beyond the bytes actually present.
ImageSet load_idx_pair(const std::filesystem::path& images_gz, const std::filesystem::path& labels_gz);

// The file names Debian's dataset-fashion-mnist installs under `dir`.
ImageSet load_fashion_mnist(const std::filesystem::path& dir, Split split);

}  // namespace raftfl::train
