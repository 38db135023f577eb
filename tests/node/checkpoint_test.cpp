// The worker's checkpoint on disk: written durably, read back whole, and anything else
// refused with a message that names the file and the fault.
#include "checkpoint.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "scratch_directory.hpp"
#include "sync_recorder.hpp"

namespace raftfl::node {
namespace {

namespace fs = std::filesystem;

class Checkpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    for (std::size_t i = 0; i < model_.size(); ++i) model_[i] = 0.25F * static_cast<float>(i) - 3.0F;
    test::clear_sync_events();
  }
  // Flips a bit of byte `at` of the file, counted from its end when negative.
  void flip_byte(std::ptrdiff_t at) {
    std::fstream f(file_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(at, at < 0 ? std::ios::end : std::ios::beg);
    const auto where = f.tellg();
    char c = 0;
    f.read(&c, 1);
    f.seekp(where);
    c = static_cast<char>(c ^ 0x40);
    f.write(&c, 1);
  }

  // Expects read_checkpoint to refuse the file with a message naming it and saying `why`,
  // and to leave the parameters it was given alone.
  void expect_refused(const std::string& why, std::size_t parameters = 1000) {
    std::vector<float> loaded(parameters, 7.0F);
    try {
      read_checkpoint(file_, loaded);
      ADD_FAILURE() << "accepted; expected: " << why;
    } catch (const CheckpointError& e) {
      const std::string text = e.what();
      EXPECT_NE(text.find(file_.string()), std::string::npos) << text;
      EXPECT_NE(text.find(why), std::string::npos) << text;
    }
    EXPECT_EQ(loaded, std::vector<float>(parameters, 7.0F));
  }

  test::ScratchDirectory scratch_{"raftfl-checkpoint"};
  const fs::path& dir_ = scratch_.path();
  const fs::path file_ = dir_ / "model.ckpt";
  std::vector<float> model_ = std::vector<float>(1000);
};

TEST_F(Checkpoint, ReadsBackTheRoundAndTheParameters) {
  write_checkpoint(file_, 42, model_);
  std::vector<float> loaded(model_.size());
  EXPECT_EQ(read_checkpoint(file_, loaded), 42u);
  EXPECT_EQ(loaded, model_);
  // A later checkpoint replaces it.
  model_[3] = 99.0F;
  write_checkpoint(file_, 43, model_);
  EXPECT_EQ(read_checkpoint(file_, loaded), 43u);
  EXPECT_EQ(loaded, model_);
  EXPECT_FALSE(fs::exists(dir_ / "model.ckpt.tmp"));
}

// Without the directory sync a crash soon after the rename can bring back the previous
// checkpoint, or none, although the worker went on as if this one were safe.
TEST_F(Checkpoint, IsWrittenDurably) {
  write_checkpoint(file_, 1, model_);
  EXPECT_EQ(test::missing_for_durable_replace(test::sync_events(), file_), "");
}

TEST_F(Checkpoint, NoFileIsNoCheckpoint) {
  std::vector<float> loaded(model_.size());
  EXPECT_EQ(read_checkpoint(file_, loaded), std::nullopt);
}

TEST_F(Checkpoint, RefusesATruncatedFile) {
  write_checkpoint(file_, 5, model_);
  fs::resize_file(file_, fs::file_size(file_) - 10);
  expect_refused("truncated");
  fs::resize_file(file_, 20);
  expect_refused("truncated in its header");
  fs::resize_file(file_, 0);
  expect_refused("not a model checkpoint");
}

TEST_F(Checkpoint, RefusesDamagedParameters) {
  write_checkpoint(file_, 5, model_);
  flip_byte(-1);
  expect_refused("damaged");
}

TEST_F(Checkpoint, RefusesAnotherModelOrFormat) {
  write_checkpoint(file_, 5, model_);
  expect_refused("a model of 1000 parameters, this one has 999", 999);
  {
    std::ofstream out(file_, std::ios::app | std::ios::binary);
    out << "more";
  }
  expect_refused("4 bytes after the parameters");
  flip_byte(0);
  expect_refused("not a model checkpoint");
}

}  // namespace
}  // namespace raftfl::node
