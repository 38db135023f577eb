// The key/value state machine and its client sessions (dissertation section 6.3).
#include "raftfl/node/kv_state_machine.hpp"

#include <gtest/gtest.h>

#include <string>

namespace raftfl::node {
namespace {

TEST(KvSessions, RetriedPutAppliesOnceEvenAfterAnotherClientsWrite) {
  // Client 7's put committed, but its leader was deposed before answering; client 9 then
  // wrote the key; client 7 retries. Applying the retry would undo client 9's write.
  KvStateMachine kv;
  kv.apply(1, KvStateMachine::encode_session_put(7, 1, "k", "from-7"));
  kv.apply(2, KvStateMachine::encode_session_put(9, 1, "k", "from-9"));
  kv.apply(3, KvStateMachine::encode_session_put(7, 1, "k", "from-7"));
  EXPECT_EQ(kv.get("k"), "from-9");
  EXPECT_EQ(kv.duplicates(), 1u);
  EXPECT_EQ(kv.applied(), 3u);

  kv.apply(4, KvStateMachine::encode_session_put(7, 2, "k", "again-7"));
  EXPECT_EQ(kv.get("k"), "again-7");
  // An older sequence number is a repeat too (a retry that arrived late).
  kv.apply(5, KvStateMachine::encode_session_put(7, 1, "k", "from-7"));
  EXPECT_EQ(kv.get("k"), "again-7");
  EXPECT_EQ(kv.duplicates(), 2u);
}

TEST(KvSessions, SessionsTravelInTheSnapshot) {
  KvStateMachine a;
  a.apply(1, KvStateMachine::encode_session_put(7, 1, "k", "v1"));
  a.apply(2, KvStateMachine::encode_put("plain", "p"));
  KvStateMachine b;
  b.restore(2, a.snapshot());
  EXPECT_EQ(b.sessions(), 1u);
  EXPECT_EQ(b.digest(), a.digest());
  // A node that caught up by snapshot must refuse the retry as the others do.
  for (KvStateMachine* kv : {&a, &b}) {
    kv->apply(3, KvStateMachine::encode_session_put(9, 1, "k", "v9"));
    kv->apply(4, KvStateMachine::encode_session_put(7, 1, "k", "v1"));
    EXPECT_EQ(kv->get("k"), "v9");
  }
  EXPECT_EQ(a.snapshot(), b.snapshot());
}

TEST(KvSessions, SnapshotWithoutSessionsStillRestores) {
  KvStateMachine a;
  a.apply(1, KvStateMachine::encode_put("k", "v"));
  std::string snap = a.snapshot();
  snap.resize(snap.size() - 8);  // drop the session count: the earlier format
  KvStateMachine b;
  b.restore(1, snap);
  EXPECT_EQ(b.get("k"), "v");
  EXPECT_EQ(b.sessions(), 0u);
  EXPECT_THROW(b.restore(1, snap + "xyz"), std::runtime_error);
}

TEST(KvSessions, TheLeastRecentlyActiveSessionIsForgottenFirst) {
  KvStateMachine kv;
  raft::Index index = 0;
  for (std::uint64_t client = 1; client <= KvStateMachine::kMaxSessions; ++client)
    kv.apply(++index, KvStateMachine::encode_session_put(client, 1, "k", "v"));
  kv.apply(++index, KvStateMachine::encode_session_put(1, 2, "k", "v"));  // client 1 is active again
  kv.apply(++index, KvStateMachine::encode_session_put(KvStateMachine::kMaxSessions + 1, 1, "k", "v"));
  EXPECT_EQ(kv.sessions(), KvStateMachine::kMaxSessions);
  // Client 2 was forgotten, so its repeat applies; client 1 was not.
  kv.apply(++index, KvStateMachine::encode_session_put(2, 1, "k", "from-2"));
  EXPECT_EQ(kv.get("k"), "from-2");
  kv.apply(++index, KvStateMachine::encode_session_put(1, 2, "k", "from-1"));
  EXPECT_EQ(kv.get("k"), "from-2");
}

}  // namespace
}  // namespace raftfl::node
