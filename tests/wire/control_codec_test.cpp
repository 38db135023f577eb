// Control entries and snapshots survive the wire exactly, anything else in the log is not
// mistaken for them, and a damaged control payload is refused with DecodeError.
#include "raftfl/wire/control_codec.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace raftfl::wire {
namespace {

using namespace raftfl::control;

Topology sample_topology() {
  Topology t;
  t.round = 12;
  t.coordinator_term = 4;
  t.mask_seed = 0xdead'beef'0123'4567ULL;
  t.matching.pairs = {{1, 5}, {2, 9}, {3, 4}};
  t.matching.idle = {7};
  t.spectral_gap = 0.3125;
  t.fresh = {2};
  return t;
}

std::vector<Command> every_kind() {
  return {NoOp{},
          CoordinatorChange{3, 9, 17},
          sample_topology(),
          Topology{},
          BandwidthUpdate{{{1, 2, 1.5e9}, {2, 1, 0.0}, {7, 3, 123.25}}},
          BandwidthUpdate{},
          MembershipChange{MembershipChange::Op::kAdd, Member{8, "10.1.2.3:7000", true, kCapabilityTrains | kCapabilityCuda, false, {}}},
          MembershipChange{MembershipChange::Op::kPromote, Member{8, "", false, 0, false, {}}},
          MembershipChange{MembershipChange::Op::kRemove, Member{2, "", false, 0, false, {}}},
          MembershipChange{MembershipChange::Op::kAdd, Member{4, "h:1", false, kCapabilityTrains, true, {0, 3, 9}}},
          WorkerHealth{4, true},
          WorkerHealth{5, false},
          DataPlan{12}};
}

TEST(ControlCodec, EveryCommandKindRoundTrips) {
  for (const Command& c : every_kind()) {
    const std::string payload = encode_control_command(c);
    EXPECT_TRUE(is_control_payload(payload));
    EXPECT_EQ(payload.size() % 8, 0u);
    const auto decoded = decode_control_command(payload);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->index(), c.index());
    EXPECT_EQ(*decoded, c);
  }
}

TEST(ControlCodec, DecodesFromAnUnalignedBuffer) {
  const std::string payload = encode_control_command(sample_topology());
  std::string shifted = "x" + payload;
  const auto decoded = decode_control_command(std::string_view(shifted).substr(1));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, Command(sample_topology()));
}

TEST(ControlCodec, OtherPayloadsAreNotControlEntries) {
  for (std::string_view other : {std::string_view("Pkey=value"), std::string_view("P"), std::string_view(""),
                                 std::string_view("RFLCTL"), std::string_view("RFLCTL\x02\x00rest", 12),
                                 std::string_view("rflctl\x01\x00", 8)}) {
    EXPECT_FALSE(is_control_payload(other)) << other;
    EXPECT_FALSE(decode_control_command(other).has_value()) << other;
  }
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1000; ++i) {
    std::string bytes(rng() % 64, '\0');
    for (char& ch : bytes) ch = static_cast<char>(rng());
    if (bytes.starts_with(kControlEntryTag)) continue;
    EXPECT_FALSE(is_control_payload(bytes));
    EXPECT_FALSE(decode_control_command(bytes).has_value());
  }
}

TEST(ControlCodec, MalformedPayloadsThrowDecodeError) {
  const std::string good = encode_control_command(sample_topology());
  const std::string tag(kControlEntryTag);
  EXPECT_THROW(decode_control_command(tag), DecodeError) << "tag alone";
  for (std::size_t cut = kControlEntryTag.size() + 1; cut < good.size(); ++cut) {
    EXPECT_THROW(decode_control_command(std::string_view(good).substr(0, cut)), DecodeError) << "cut at " << cut;
  }
  EXPECT_THROW(decode_control_command(tag + std::string(16, '\xff')), DecodeError) << "garbage after the tag";
  EXPECT_THROW(decode_control_command(tag + std::string(5, 'a')), DecodeError) << "not whole words";
  EXPECT_THROW(decode_control_command(good + std::string(8, '\0')), DecodeError) << "trailing words";
}

TEST(ControlCodec, OutOfRangeValuesThrowDecodeError) {
  Topology self_paired = sample_topology();
  self_paired.matching.pairs.push_back({6, 6});
  EXPECT_THROW(decode_control_command(encode_control_command(self_paired)), DecodeError);

  MembershipChange bad_op{static_cast<MembershipChange::Op>(3), Member{1, "", false, 0, false, {}}};
  EXPECT_THROW(decode_control_command(encode_control_command(bad_op)), DecodeError);
}

// Flipping bytes anywhere must yield either some command or DecodeError: never a crash,
// never another exception type. Run under ASan to make "never a crash" mean something.
TEST(ControlCodec, FlippedBytesNeverCrash) {
  std::mt19937_64 rng(20261129);
  std::size_t refused = 0;
  for (const Command& c : every_kind()) {
    const std::string good = encode_control_command(c);
    for (int i = 0; i < 500; ++i) {
      std::string bad = good;
      for (auto k = 1 + rng() % 3; k > 0; --k) {
        const std::size_t at = kControlEntryTag.size() + rng() % (bad.size() - kControlEntryTag.size());
        bad[at] = static_cast<char>(bad[at] ^ static_cast<char>(1 + rng() % 255));
      }
      try {
        const auto decoded = decode_control_command(bad);
        EXPECT_TRUE(decoded.has_value());
      } catch (const DecodeError&) {
        ++refused;
      }
    }
  }
  EXPECT_GT(refused, 0u);
}

ControlState populated_state(std::mt19937_64& rng) {
  ControlState s;
  s.apply(DataPlan{12});
  for (NodeId id = 1; id <= 9; ++id) {
    s.apply(MembershipChange{MembershipChange::Op::kAdd, Member{id, "n" + std::to_string(id) + ":1", id <= 3,
                                                                id == 1 ? 0 : kCapabilityTrains, false, {}}});
  }
  s.apply(CoordinatorChange{1, 2, 1});
  BandwidthUpdate u;
  for (NodeId a = 1; a <= 9; ++a) {
    for (NodeId b = 1; b <= 9; ++b) {
      if (a != b && rng() % 3 != 0) u.cells.push_back({a, b, static_cast<double>(rng() % 1000) / 7.0});
    }
  }
  s.apply(u);
  s.apply(WorkerHealth{4, true});
  for (Round r = 1; r <= 80; ++r) {
    if (r == 40) s.apply(WorkerHealth{4, false});
    std::vector<NodeId> healthy;
    for (NodeId id : s.workers())
      if (!s.member(id)->failed) healthy.push_back(id);
    const std::vector<NodeId> fresh{r == 40 ? NodeId{4} : NodeId{0}};
    EXPECT_EQ(s.apply(plan_round(s, healthy, MatcherOptions{60.0, 5}, r, 2, 11, 1.0,
                                 r == 40 ? fresh : std::vector<NodeId>{})),
              ApplyResult::kApplied);
  }
  return s;
}

TEST(ControlSnapshot, RoundTripsToAnEqualState) {
  std::mt19937_64 rng(3);
  const ControlState original = populated_state(rng);
  ASSERT_EQ(original.data().topologies.size(), kTopologiesKept);
  ASSERT_GT(original.data().bandwidth.size(), 20u);
  const ControlData restored = decode_control_snapshot(encode_control_snapshot(original.data()));
  EXPECT_EQ(restored, original.data());
  EXPECT_EQ(decode_control_snapshot(encode_control_snapshot(ControlData{})), ControlData{});
}

TEST(ControlSnapshot, RestoredStateKeepsApplyingLikeTheOriginal) {
  std::mt19937_64 rng(4);
  ControlState original = populated_state(rng);
  ControlState restored(decode_control_snapshot(encode_control_snapshot(original.data())));
  for (int i = 0; i < 2000; ++i) {
    Command c;
    switch (rng() % 5) {
      case 0:
        c = plan_round(original, original.workers(), MatcherOptions{60.0, 5}, original.last_round() + rng() % 2,
                       original.coordinator().term, 11, 1.0);
        break;
      case 1:
        c = CoordinatorChange{1 + rng() % 9, original.coordinator().term + rng() % 2, 0};
        break;
      case 2:
        c = BandwidthUpdate{{{1 + rng() % 10, 1 + rng() % 10, static_cast<double>(rng() % 500)}}};
        break;
      case 3:
        c = MembershipChange{static_cast<MembershipChange::Op>(rng() % 3),
                             Member{1 + rng() % 10, "x:1", rng() % 2 == 0, kCapabilityTrains, false, {}}};
        break;
      default:
        c = NoOp{};
    }
    // Through the codec as well, as a follower would see it.
    const Command wired = *decode_control_command(encode_control_command(c));
    ASSERT_EQ(original.apply(c), restored.apply(wired)) << "command " << i;
    ASSERT_EQ(original, restored) << "command " << i;
  }
  EXPECT_GT(original.last_round(), 80u);
}

TEST(ControlSnapshot, MalformedSnapshotsThrowDecodeError) {
  std::mt19937_64 rng(5);
  const std::string good = encode_control_snapshot(populated_state(rng).data());
  EXPECT_THROW(decode_control_snapshot(""), DecodeError);
  EXPECT_THROW(decode_control_snapshot(std::string_view(good).substr(0, good.size() / 2)), DecodeError);
  EXPECT_THROW(decode_control_snapshot(std::string(64, '\xff')), DecodeError);

  ControlData twice_round;
  twice_round.last_round = 2;
  twice_round.topologies[3].round = 3;  // beyond last_round
  EXPECT_THROW(decode_control_snapshot(encode_control_snapshot(twice_round)), DecodeError);

  ControlData shard_out_of_range;
  shard_out_of_range.shard_count = 2;
  shard_out_of_range.members[1] = Member{1, "h:1", false, kCapabilityTrains, false, {0, 2}};
  EXPECT_THROW(decode_control_snapshot(encode_control_snapshot(shard_out_of_range)), DecodeError);
  shard_out_of_range.members[1].shards = {1, 1};
  EXPECT_THROW(decode_control_snapshot(encode_control_snapshot(shard_out_of_range)), DecodeError);

  ControlData bad_cell;
  bad_cell.bandwidth[{4, 4}] = 1.0;
  EXPECT_THROW(decode_control_snapshot(encode_control_snapshot(bad_cell)), DecodeError);

  for (int i = 0; i < 2000; ++i) {
    std::string bad = good;
    const std::size_t at = rng() % bad.size();
    bad[at] = static_cast<char>(bad[at] ^ static_cast<char>(1 + rng() % 255));
    try {
      (void)decode_control_snapshot(bad);
    } catch (const DecodeError&) {
    }
  }
}

}  // namespace
}  // namespace raftfl::wire
