#pragma once

// What every multi-process test needs: a fresh directory per test and the tail of each
// node's log for the failure message.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "local_cluster.hpp"

namespace raftfl::app::testing {

inline std::filesystem::path test_dir(const std::string& prefix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  auto dir = std::filesystem::temp_directory_path() / (prefix + "-" + std::to_string(::getpid())) /
             (std::string(info->test_suite_name()) + "." + info->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string log_of(LocalCluster& c, std::size_t tail_bytes = 4000) {
  std::string out;
  for (int id = 1; id <= c.size(); ++id) {
    std::ifstream in(c.log_file(static_cast<std::uint64_t>(id)));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > tail_bytes) text = "..." + text.substr(text.size() - tail_bytes);
    out += "---- node " + std::to_string(id) + " ----\n" + text;
  }
  return out;
}

}  // namespace raftfl::app::testing
