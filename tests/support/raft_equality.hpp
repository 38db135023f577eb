#pragma once

// Field-by-field comparisons of the engine's value types, with gtest's diagnostics: the
// wire codec and the storage tests both need "nothing was lost or changed on the way".

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "raftfl/raft/message.hpp"

namespace raftfl::raft::test {

inline void expect_same_entries(const std::vector<Entry>& a, const std::vector<Entry>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].term, b[i].term) << "entry " << i;
    EXPECT_EQ(a[i].index, b[i].index) << "entry " << i;
    EXPECT_EQ(a[i].type, b[i].type) << "entry " << i;
    EXPECT_EQ(a[i].data.view(), b[i].data.view()) << "entry " << i;
  }
}

inline void expect_same_snapshot(const std::shared_ptr<const Snapshot>& a, const std::shared_ptr<const Snapshot>& b) {
  ASSERT_EQ(a == nullptr, b == nullptr);
  if (!a) return;
  EXPECT_EQ(a->meta.index, b->meta.index);
  EXPECT_EQ(a->meta.term, b->meta.term);
  EXPECT_EQ(a->meta.config, b->meta.config);
  EXPECT_EQ(a->data.view(), b->data.view());
}

}  // namespace raftfl::raft::test
