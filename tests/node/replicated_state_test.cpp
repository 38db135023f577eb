#include "raftfl/node/replicated_state.hpp"

#include <gtest/gtest.h>

#include "raftfl/wire/control_codec.hpp"

namespace raftfl::node {
namespace {

raft::Entry entry(raft::Index index, std::string data) {
  raft::Entry e;
  e.index = index;
  e.term = 1;
  e.type = raft::EntryType::kNormal;
  e.data = raft::Payload(std::move(data));
  return e;
}

control::CoordinatorChange coordinator(control::NodeId leader) {
  control::CoordinatorChange c;
  c.leader = leader;
  c.term = 4;
  return c;
}

TEST(ReplicatedState, AppliesKeyValueAndControlEntries) {
  ReplicatedState state;
  int control_calls = 0;
  state.on_control_applied([&](const control::Command&, control::ApplyResult) { ++control_calls; });
  state.apply(entry(1, KvStateMachine::encode_put("k", "v")));
  state.apply(entry(2, wire::encode_control_command(coordinator(2))));
  EXPECT_EQ(state.applied(), 2u);
  EXPECT_EQ(state.kv().get("k"), "v");
  EXPECT_EQ(state.control().coordinator().leader, 2u);
  EXPECT_EQ(control_calls, 1);
}

TEST(ReplicatedState, SnapshotRestoresBothPartsAndWakesTheControlListener) {
  ReplicatedState source;
  source.apply(entry(1, KvStateMachine::encode_put("k", "v")));
  source.apply(entry(2, wire::encode_control_command(coordinator(3))));

  ReplicatedState copy;
  bool woken = false;
  copy.on_control_applied([&](const control::Command& c, control::ApplyResult) {
    woken = std::holds_alternative<control::NoOp>(c);
  });
  copy.restore(2, source.snapshot());
  EXPECT_TRUE(woken);
  EXPECT_EQ(copy.applied(), 2u);
  EXPECT_EQ(copy.kv().digest(), source.kv().digest());
  EXPECT_EQ(copy.control().coordinator().leader, 3u);
  EXPECT_EQ(copy.snapshot(), source.snapshot());
}

TEST(ReplicatedState, RestoresASnapshotFromBeforeTheControlLog) {
  KvStateMachine kv;
  kv.apply(1, KvStateMachine::encode_put("k", "v"));
  ReplicatedState state;
  state.restore(1, kv.snapshot());
  EXPECT_EQ(state.kv().get("k"), "v");
  EXPECT_EQ(state.control().coordinator().leader, 0u);
}

TEST(ReplicatedState, RefusesATruncatedFrame) {
  ReplicatedState source;
  source.apply(entry(1, KvStateMachine::encode_put("key", "value")));
  const std::string frame = source.snapshot();
  ReplicatedState state;
  EXPECT_THROW(state.restore(1, std::string_view(frame).substr(0, 12)), std::runtime_error);
}

}  // namespace
}  // namespace raftfl::node
