#include "raftfl/train/idx_reader.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <array>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <system_error>

namespace raftfl::train {
namespace {

constexpr std::uint32_t kImagesMagic = 0x00000803;
constexpr std::uint32_t kLabelsMagic = 0x00000801;
// Growing the buffer as bytes arrive, rather than reserving what the header announces,
// keeps a corrupt header claiming billions of images from allocating before it is caught.
constexpr std::size_t kReadChunk = std::size_t{1} << 20;

std::string hex32(std::uint32_t value) {
  std::array<char, 11> text{};
  std::snprintf(text.data(), text.size(), "0x%08x", value);
  return text.data();
}

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

class GzReader {
 public:
  explicit GzReader(const std::filesystem::path& path) : path_(path) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    // A file that cannot be looked at (a directory on its path without search permission)
    // is not one that does not exist.
    if (ec && status.type() != std::filesystem::file_type::not_found)
      throw DatasetError("dataset file " + path.string() + " cannot be examined: " + ec.message());
    if (!std::filesystem::exists(status)) {
      throw DatasetError("dataset file " + path.string() +
                         " does not exist; install the Debian package dataset-fashion-mnist "
                         "(or point RAFTFL_FASHION_MNIST_DIR at a directory holding the files)");
    }
    if (!std::filesystem::is_regular_file(status)) {
      throw DatasetError("dataset file " + path.string() + " is not a regular file");
    }
    errno = 0;
    file_.reset(gzopen(path.c_str(), "rb"));
    // gzopen leaves errno set when open() failed, and 0 when it ran out of memory.
    if (!file_)
      throw DatasetError("dataset file " + path.string() + " cannot be opened for reading: " +
                         (errno != 0 ? std::strerror(errno) : "out of memory"));
    gzbuffer(file_.get(), 256 * 1024);
  }

  // Appends up to `want` bytes to `out`; returns how many arrived before end of data.
  std::size_t read(std::vector<std::uint8_t>& out, std::size_t want) {
    std::size_t got = 0;
    while (got < want) {
      const std::size_t chunk = std::min(want - got, kReadChunk);
      const std::size_t old_size = out.size();
      out.resize(old_size + chunk);
      const int n = gzread(file_.get(), out.data() + old_size, static_cast<unsigned>(chunk));
      if (n < 0) {
        out.resize(old_size);
        fail_gzip();
      }
      out.resize(old_size + static_cast<std::size_t>(n));
      got += static_cast<std::size_t>(n);
      if (n == 0) break;
    }
    // zlib reports a cut-off compressed stream only through gzerror, after a short read.
    int errnum = Z_OK;
    gzerror(file_.get(), &errnum);
    if (errnum != Z_OK && errnum != Z_STREAM_END) fail_gzip();
    return got;
  }

  bool at_end() {
    std::vector<std::uint8_t> probe;
    return read(probe, 1) == 0;
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw DatasetError("dataset file " + path_.string() + ": " + problem);
  }

 private:
  [[noreturn]] void fail_gzip() {
    int errnum = Z_OK;
    const char* message = gzerror(file_.get(), &errnum);
    // Z_ERRNO: read(2) failed, and zlib's message carries its strerror.
    fail(std::string(errnum == Z_ERRNO ? "cannot be read (" : "corrupt gzip stream (") +
         (message != nullptr ? message : "unknown zlib error") + ")");
  }

  std::filesystem::path path_;
  GzHandle file_;
};

std::uint32_t big_endian32(const std::uint8_t* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
         std::uint32_t{bytes[3]};
}

// Reads the header words (magic then dimensions) and checks the magic.
std::vector<std::uint32_t> read_header(GzReader& reader, std::uint32_t magic, std::size_t dims) {
  const std::size_t header_bytes = 4 * (1 + dims);
  std::vector<std::uint8_t> header;
  const std::size_t got = reader.read(header, header_bytes);
  if (got < header_bytes) {
    reader.fail("truncated IDX header: " + std::to_string(got) + " of " + std::to_string(header_bytes) + " bytes");
  }
  const std::uint32_t found = big_endian32(header.data());
  if (found != magic) {
    reader.fail("wrong IDX magic " + hex32(found) + ", expected " + hex32(magic));
  }
  std::vector<std::uint32_t> words;
  for (std::size_t i = 1; i <= dims; ++i) words.push_back(big_endian32(header.data() + 4 * i));
  return words;
}

void read_body(GzReader& reader, std::vector<std::uint8_t>& out, std::size_t expected, const char* what) {
  const std::size_t got = reader.read(out, expected);
  if (got < expected) {
    reader.fail("truncated " + std::string(what) + ": header announces " + std::to_string(expected) +
                " bytes, file holds " + std::to_string(got));
  }
  if (!reader.at_end()) {
    reader.fail("trailing bytes after the " + std::to_string(expected) + " bytes of " + what +
                " the header announces");
  }
}

}  // namespace

ImageSet load_idx_pair(const std::filesystem::path& images_gz, const std::filesystem::path& labels_gz) {
  ImageSet set;

  GzReader images(images_gz);
  const auto image_dims = read_header(images, kImagesMagic, 3);
  set.count = image_dims[0];
  set.rows = image_dims[1];
  set.cols = image_dims[2];
  if (set.rows == 0 || set.cols == 0) {
    images.fail("image size " + std::to_string(set.rows) + "x" + std::to_string(set.cols) + " is empty");
  }
  // Each factor is below 2^32, but their product may not fit.
  const std::size_t pixels_per_image = set.rows * set.cols;
  if (set.count != 0 && pixels_per_image > std::numeric_limits<std::size_t>::max() / set.count) {
    images.fail("header sizes overflow: " + std::to_string(set.count) + " images of " + std::to_string(set.rows) +
                "x" + std::to_string(set.cols));
  }

  GzReader labels(labels_gz);
  const auto label_dims = read_header(labels, kLabelsMagic, 1);
  if (label_dims[0] != set.count) {
    labels.fail("label count " + std::to_string(label_dims[0]) + " disagrees with image count " +
                std::to_string(set.count) + " of " + images_gz.string());
  }

  read_body(images, set.pixels, set.count * pixels_per_image, "pixel data");
  read_body(labels, set.labels, set.count, "labels");

  const auto bad = std::find_if(set.labels.begin(), set.labels.end(),
                                [](std::uint8_t label) { return label >= kFashionMnistClasses; });
  if (bad != set.labels.end()) {
    labels.fail("label " + std::to_string(*bad) + " at index " + std::to_string(bad - set.labels.begin()) +
                " is out of range 0.." + std::to_string(kFashionMnistClasses - 1));
  }
  return set;
}

ImageSet load_fashion_mnist(const std::filesystem::path& dir, Split split) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  return load_idx_pair(dir / (prefix + "-images-idx3-ubyte.gz"), dir / (prefix + "-labels-idx1-ubyte.gz"));
}

}  // namespace raftfl::train
