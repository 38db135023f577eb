#include "raftfl/common/durable_file.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "scratch_directory.hpp"
#include "sync_recorder.hpp"

namespace raftfl::common {
namespace {

namespace fs = std::filesystem;

std::string contents(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

class DurableFile : public ::testing::Test {
 protected:
  void SetUp() override { test::clear_sync_events(); }

  test::ScratchDirectory scratch_{"raftfl-durable-file"};
  const fs::path& dir_ = scratch_.path();
};

TEST_F(DurableFile, ReplacesTheFileAndSyncsItsDirectoryAfterTheRename) {
  const auto file = dir_ / "state";
  replace_file_durably(file, "old");
  test::clear_sync_events();
  const std::string head = "new", tail = "er";
  replace_file_durably(file, {std::as_bytes(std::span(head)), std::as_bytes(std::span(tail))});
  EXPECT_EQ(contents(file), "newer");
  EXPECT_FALSE(fs::exists(dir_ / "state.tmp"));
  EXPECT_EQ(test::missing_for_durable_replace(test::sync_events(), file), "");
}

TEST_F(DurableFile, CreatesAFileThatDidNotExist) {
  const auto file = dir_ / "fresh";
  replace_file_durably(file, std::string_view("\0bytes\0", 7));
  EXPECT_EQ(contents(file), std::string("\0bytes\0", 7));
  EXPECT_EQ(test::missing_for_durable_replace(test::sync_events(), file), "");
}

TEST_F(DurableFile, AFailedSyncLeavesTheOldFileAndNoTemporary) {
  const auto file = dir_ / "state";
  replace_file_durably(file, "old");
  test::fail_next_file_sync(EIO);
  try {
    replace_file_durably(file, "new");
    FAIL() << "no error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EIO);
    EXPECT_NE(std::string(e.what()).find((dir_ / "state.tmp").string()), std::string::npos) << e.what();
  }
  EXPECT_EQ(contents(file), "old");
  EXPECT_FALSE(fs::exists(dir_ / "state.tmp"));
}

TEST_F(DurableFile, NamesThePathWhenTheDirectoryIsMissing) {
  const auto file = dir_ / "missing" / "state";
  try {
    replace_file_durably(file, "x");
    FAIL() << "no error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
  }
  EXPECT_THROW(sync_directory(dir_ / "missing"), std::system_error);
}

}  // namespace
}  // namespace raftfl::common
