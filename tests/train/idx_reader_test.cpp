#include "raftfl/train/idx_reader.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

namespace raftfl::train {
namespace {

namespace fs = std::filesystem;

const fs::path kDataDir = RAFTFL_FASHION_MNIST_DIR;

bool have_real_data() { return fs::exists(kDataDir / "train-images-idx3-ubyte.gz"); }

std::uint64_t fnv1a(const std::uint8_t* bytes, std::size_t size) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < size; ++i) {
    hash ^= bytes[i];
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

TEST(FashionMnist, TrainSplitShapeAndBalance) {
  if (!have_real_data()) GTEST_SKIP() << "dataset-fashion-mnist not installed under " << kDataDir;
  const ImageSet train = load_fashion_mnist(kDataDir, Split::kTrain);
  EXPECT_EQ(train.count, 60000u);
  EXPECT_EQ(train.rows, 28u);
  EXPECT_EQ(train.cols, 28u);
  ASSERT_EQ(train.pixels.size(), 60000u * 28 * 28);
  ASSERT_EQ(train.labels.size(), 60000u);
  std::array<std::size_t, kFashionMnistClasses> per_class{};
  for (const auto label : train.labels) {
    ASSERT_LT(label, kFashionMnistClasses);
    ++per_class[label];
  }
  for (std::size_t c = 0; c < kFashionMnistClasses; ++c) EXPECT_EQ(per_class[c], 6000u) << "class " << c;
}

TEST(FashionMnist, TestSplitShape) {
  if (!have_real_data()) GTEST_SKIP() << "dataset-fashion-mnist not installed under " << kDataDir;
  const ImageSet test = load_fashion_mnist(kDataDir, Split::kTest);
  EXPECT_EQ(test.count, 10000u);
  EXPECT_EQ(test.rows, 28u);
  EXPECT_EQ(test.cols, 28u);
  EXPECT_EQ(test.pixels.size(), 10000u * 28 * 28);
  std::array<std::size_t, kFashionMnistClasses> per_class{};
  for (const auto label : test.labels) ++per_class[label];
  for (std::size_t c = 0; c < kFashionMnistClasses; ++c) EXPECT_EQ(per_class[c], 1000u) << "class " << c;
}

// Pinned from the published files: catches a reader that skips or misorders bytes.
TEST(FashionMnist, FirstTrainImageChecksumIsStable) {
  if (!have_real_data()) GTEST_SKIP() << "dataset-fashion-mnist not installed under " << kDataDir;
  const ImageSet train = load_fashion_mnist(kDataDir, Split::kTrain);
  EXPECT_EQ(train.labels[0], 9);  // ankle boot, as in the dataset's documentation
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < 28 * 28; ++i) sum += train.pixels[i];
  EXPECT_EQ(sum, 76247u);
  EXPECT_EQ(fnv1a(train.pixels.data(), 28 * 28), 143542503853003576u);
}

class CraftedFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("raftfl-idx-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void put32(std::vector<std::uint8_t>& out, std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
  }

  static std::vector<std::uint8_t> images(std::uint32_t magic, std::uint32_t count, std::uint32_t rows,
                                          std::uint32_t cols, std::size_t body_bytes) {
    std::vector<std::uint8_t> out;
    put32(out, magic);
    put32(out, count);
    put32(out, rows);
    put32(out, cols);
    for (std::size_t i = 0; i < body_bytes; ++i) out.push_back(static_cast<std::uint8_t>(i * 7));
    return out;
  }

  static std::vector<std::uint8_t> labels(std::uint32_t magic, std::uint32_t count,
                                          const std::vector<std::uint8_t>& values) {
    std::vector<std::uint8_t> out;
    put32(out, magic);
    put32(out, count);
    out.insert(out.end(), values.begin(), values.end());
    return out;
  }

  fs::path write_gz(const std::string& name, const std::vector<std::uint8_t>& bytes) {
    const fs::path path = dir_ / name;
    gzFile file = gzopen(path.c_str(), "wb");
    EXPECT_NE(file, nullptr);
    if (!bytes.empty()) {
      EXPECT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
    }
    gzclose(file);
    return path;
  }

  fs::path write_raw(const std::string& name, const std::vector<std::uint8_t>& bytes) {
    const fs::path path = dir_ / name;
    std::FILE* file = std::fopen(path.c_str(), "wb");
    EXPECT_NE(file, nullptr);
    if (!bytes.empty()) std::fwrite(bytes.data(), 1, bytes.size(), file);
    std::fclose(file);
    return path;
  }

  // Runs the loader and returns the error message; fails the test if nothing is thrown.
  static std::string error_of(const fs::path& image_file, const fs::path& label_file) {
    try {
      load_idx_pair(image_file, label_file);
    } catch (const DatasetError& error) {
      return error.what();
    }
    ADD_FAILURE() << "no DatasetError";
    return {};
  }

  // Loading must fail with a message that names `named` and contains every one of `parts`.
  static void expect_refused(const fs::path& image_file, const fs::path& label_file, const fs::path& named,
                             std::initializer_list<const char*> parts) {
    const std::string message = error_of(image_file, label_file);
    EXPECT_NE(message.find(named.string()), std::string::npos) << message;
    for (const char* part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
  }

  std::vector<std::uint8_t> read_bytes(const fs::path& path) {
    std::vector<std::uint8_t> bytes(fs::file_size(path));
    std::FILE* file = std::fopen(path.c_str(), "rb");
    EXPECT_NE(file, nullptr);
    if (file != nullptr) {
      EXPECT_EQ(std::fread(bytes.data(), 1, bytes.size(), file), bytes.size());
      std::fclose(file);
    }
    return bytes;
  }

  fs::path dir_;
};

TEST_F(CraftedFiles, WellFormedPairLoads) {
  const auto img = write_gz("img.gz", images(0x803, 3, 2, 2, 12));
  const auto lab = write_gz("lab.gz", labels(0x801, 3, {0, 9, 4}));
  const ImageSet set = load_idx_pair(img, lab);
  EXPECT_EQ(set.count, 3u);
  EXPECT_EQ(set.rows, 2u);
  EXPECT_EQ(set.cols, 2u);
  ASSERT_EQ(set.pixels.size(), 12u);
  EXPECT_EQ(set.pixels[1], 7);
  EXPECT_EQ(set.labels, (std::vector<std::uint8_t>{0, 9, 4}));
}

TEST_F(CraftedFiles, MissingFileNamesFileAndPackage) {
  const auto lab = write_gz("lab.gz", labels(0x801, 1, {0}));
  const auto missing = dir_ / "nope-images.gz";
  expect_refused(missing, lab, missing, {"dataset-fashion-mnist"});
}

TEST_F(CraftedFiles, MissingLabelFileNamesIt) {
  const auto img = write_gz("img.gz", images(0x803, 1, 2, 2, 4));
  const auto missing = dir_ / "nope-labels.gz";
  expect_refused(img, missing, missing, {"dataset-fashion-mnist"});
}

TEST_F(CraftedFiles, WrongImageMagic) {
  const auto img = write_gz("img.gz", images(0x801, 1, 2, 2, 4));
  const auto lab = write_gz("lab.gz", labels(0x801, 1, {0}));
  expect_refused(img, lab, img, {"wrong IDX magic 0x00000801"});
}

TEST_F(CraftedFiles, WrongLabelMagic) {
  const auto img = write_gz("img.gz", images(0x803, 1, 2, 2, 4));
  const auto lab = write_gz("lab.gz", labels(0x12345678, 1, {0}));
  expect_refused(img, lab, lab, {"wrong IDX magic 0x12345678, expected 0x00000801"});
}

TEST_F(CraftedFiles, TruncatedImageBody) {
  const auto img = write_gz("img.gz", images(0x803, 3, 2, 2, 10));
  const auto lab = write_gz("lab.gz", labels(0x801, 3, {0, 1, 2}));
  expect_refused(img, lab, img, {"truncated pixel data", "12 bytes, file holds 10"});
}

TEST_F(CraftedFiles, TruncatedLabelBody) {
  const auto img = write_gz("img.gz", images(0x803, 3, 2, 2, 12));
  const auto lab = write_gz("lab.gz", labels(0x801, 3, {0, 1}));
  expect_refused(img, lab, lab, {"truncated labels"});
}

TEST_F(CraftedFiles, TruncatedHeader) {
  const auto img = write_gz("img.gz", {0, 0, 8, 3, 0, 0});
  const auto lab = write_gz("lab.gz", labels(0x801, 1, {0}));
  expect_refused(img, lab, img, {"truncated IDX header"});
}

TEST_F(CraftedFiles, EmptyFile) {
  const auto img = write_raw("img.gz", {});
  const auto lab = write_gz("lab.gz", labels(0x801, 1, {0}));
  expect_refused(img, lab, img, {"truncated IDX header: 0 of 16"});
}

TEST_F(CraftedFiles, CountMismatch) {
  const auto img = write_gz("img.gz", images(0x803, 3, 2, 2, 12));
  const auto lab = write_gz("lab.gz", labels(0x801, 2, {0, 1}));
  expect_refused(img, lab, lab, {"label count 2 disagrees with image count 3"});
}

TEST_F(CraftedFiles, LabelOutOfRange) {
  const auto img = write_gz("img.gz", images(0x803, 3, 2, 2, 12));
  const auto lab = write_gz("lab.gz", labels(0x801, 3, {0, 12, 1}));
  expect_refused(img, lab, lab, {"label 12 at index 1 is out of range 0..9"});
}

TEST_F(CraftedFiles, TrailingBytes) {
  const auto img = write_gz("img.gz", images(0x803, 1, 2, 2, 5));
  const auto lab = write_gz("lab.gz", labels(0x801, 1, {3}));
  expect_refused(img, lab, img, {"trailing bytes"});
}

// A header announcing 2^32-1 images of 2^16 x 2^16 must be rejected from the bytes
// present, not by first allocating what it claims.
TEST_F(CraftedFiles, HugeHeaderWithTinyBody) {
  const auto img = write_gz("img.gz", images(0x803, 0xffffffffu, 0x10000, 0x10000, 8));
  const auto lab = write_gz("lab.gz", labels(0x801, 0xffffffffu, {0}));
  expect_refused(img, lab, img, {});
}

TEST_F(CraftedFiles, EmptyImageSize) {
  const auto img = write_gz("img.gz", images(0x803, 1, 0, 28, 0));
  const auto lab = write_gz("lab.gz", labels(0x801, 1, {0}));
  expect_refused(img, lab, img, {"is empty"});
}

// A gzip stream cut in the middle: zlib reports it only as an error on read.
TEST_F(CraftedFiles, CutGzipStream) {
  const auto whole = write_gz("whole.gz", images(0x803, 64, 28, 28, 64 * 28 * 28));
  auto bytes = read_bytes(whole);
  bytes.resize(bytes.size() / 2);
  const auto img = write_raw("img.gz", bytes);
  const auto lab = write_gz("lab.gz", labels(0x801, 64, std::vector<std::uint8_t>(64, 1)));
  expect_refused(img, lab, img, {"corrupt gzip stream"});
}

// Corrupted deflate data after a valid gzip header.
TEST_F(CraftedFiles, GarbledGzipBody) {
  const auto whole = write_gz("whole.gz", images(0x803, 64, 28, 28, 64 * 28 * 28));
  auto bytes = read_bytes(whole);
  for (std::size_t i = 20; i < bytes.size(); i += 3) bytes[i] ^= 0x5a;
  const auto img = write_raw("img.gz", bytes);
  const auto lab = write_gz("lab.gz", labels(0x801, 64, std::vector<std::uint8_t>(64, 1)));
  expect_refused(img, lab, img, {"corrupt gzip stream"});
}

TEST_F(CraftedFiles, DirectoryInsteadOfFile) {
  const auto lab = write_gz("lab.gz", labels(0x801, 1, {0}));
  expect_refused(dir_, lab, dir_, {"not a regular file"});
}

}  // namespace
}  // namespace raftfl::train
