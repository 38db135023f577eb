// The snapshot stream between a sender and a receiver, driven in virtual time through
// the real codec, with frames checked against a frame limit far below the snapshot's
// size, connections dropped, receivers restarted and partial files damaged.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <deque>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "raftfl/node/snapshot_receiver.hpp"
#include "raftfl/node/snapshot_sender.hpp"
#include "scratch_directory.hpp"

namespace raftfl::node {
namespace {

using namespace std::chrono_literals;
using Clock = SnapshotSender::Clock;

constexpr raft::NodeId kLeader = 1;
constexpr raft::NodeId kFollower = 2;
constexpr std::size_t kFrameLimit = 64 << 10;  // network.max_frame_bytes at its minimum
constexpr std::size_t kChunk = 16 << 10;

std::shared_ptr<const raft::Snapshot> make_snapshot(std::size_t bytes, raft::Index index, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::string data(bytes, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  auto snap = std::make_shared<raft::Snapshot>();
  snap->meta.index = index;
  snap->meta.term = 3;
  snap->meta.config.voters = {1, 2, 3};
  snap->meta.config.learners = {4};
  snap->meta.config.contexts[1] = "127.0.0.1:7001";
  snap->data = raft::Payload(std::move(data));
  return snap;
}

// Encoded frames in flight each way; a link that is down refuses sends, and dropping it
// loses what it carried, as a closed TCP connection does.
class Link {
 public:
  explicit Link(SnapshotSenderOptions options)
      : sender_(options, [this](raft::NodeId to, raft::Term term, const wire::SnapshotChunk& c) {
          EXPECT_EQ(to, kFollower);
          return carry(to_follower_, term, c);
        }) {}

  bool carry(std::deque<kj::Array<capnp::word>>& queue, raft::Term term, const wire::SnapshotChunk& c) {
    if (!up) return false;
    capnp::MallocMessageBuilder builder;
    wire::encode_snapshot_chunk(c, {1, kLeader, kFollower, term}, builder);
    auto flat = capnp::messageToFlatArray(builder);
    max_frame = std::max(max_frame, flat.asBytes().size());
    queue.push_back(std::move(flat));
    return true;
  }

  void drop() {
    to_follower_.clear();
    to_leader_.clear();
  }

  // Delivers everything in flight, both ways, until nothing moves; returns the snapshot
  // once the receiver completed one.
  std::shared_ptr<const raft::Snapshot> deliver(SnapshotReceiver& receiver, std::size_t max_pieces = SIZE_MAX) {
    std::shared_ptr<const raft::Snapshot> done;
    std::size_t pieces = 0;
    while ((!to_follower_.empty() && pieces < max_pieces) || !to_leader_.empty()) {
      if (!to_follower_.empty() && pieces < max_pieces) {
        auto frame = std::move(to_follower_.front());
        to_follower_.pop_front();
        capnp::FlatArrayMessageReader reader(frame);
        const auto chunk = wire::decode_snapshot_chunk(reader);
        if (!chunk.data.empty()) ++pieces;
        auto outcome = receiver.receive(chunk);
        if (outcome.snapshot) done = outcome.snapshot;
        carry(to_leader_, 3, snapshot_acknowledgement(chunk, outcome.held));
      }
      while (!to_leader_.empty()) {
        auto frame = std::move(to_leader_.front());
        to_leader_.pop_front();
        capnp::FlatArrayMessageReader reader(frame);
        sender_.on_ack(kFollower, wire::decode_snapshot_chunk(reader), now);
      }
    }
    return done;
  }

  // Ticks every 10 ms of virtual time and delivers, until the receiver completes a
  // snapshot or `steps` ticks pass.
  std::shared_ptr<const raft::Snapshot> run(SnapshotReceiver& receiver, int steps) {
    std::shared_ptr<const raft::Snapshot> got;
    for (int i = 0; i < steps && !got; ++i) {
      now += std::chrono::milliseconds(10);
      sender_.tick(now);
      got = deliver(receiver);
    }
    return got;
  }

  SnapshotSender& sender() { return sender_; }
  Clock::time_point now{};
  bool up = true;
  std::size_t max_frame = 0;

 private:
  std::deque<kj::Array<capnp::word>> to_follower_;
  std::deque<kj::Array<capnp::word>> to_leader_;
  SnapshotSender sender_;
};

SnapshotSenderOptions options() {
  SnapshotSenderOptions o;
  o.chunk_bytes = kChunk;
  o.window_chunks = 4;
  o.ask_after = 1000ms;
  o.give_up_after = 30000ms;
  return o;
}

void expect_same(const raft::Snapshot& got, const raft::Snapshot& want) {
  EXPECT_EQ(got.meta.index, want.meta.index);
  EXPECT_EQ(got.meta.term, want.meta.term);
  EXPECT_EQ(got.meta.config.voters, want.meta.config.voters);
  EXPECT_EQ(got.meta.config.learners, want.meta.config.learners);
  EXPECT_EQ(got.meta.config.contexts, want.meta.config.contexts);
  ASSERT_EQ(got.data.size(), want.data.size());
  EXPECT_TRUE(got.data.view() == want.data.view()) << "the data differs";
}

TEST(SnapshotTransfer, ASnapshotLargerThanTheFrameLimitArrivesInPiecesWithinTheWindow) {
  test::ScratchDirectory dir("raftfl-snapshot");
  const auto snap = make_snapshot(1 << 20, 500, 1);  // 16 frame limits
  Link link(options());
  SnapshotReceiver receiver(dir.path());
  link.sender().start(kFollower, 3, snap, link.now);
  const auto got = link.deliver(receiver);
  ASSERT_TRUE(got) << "the transfer did not complete";
  expect_same(*got, *snap);
  EXPECT_LE(link.max_frame, kFrameLimit);
  EXPECT_GT(link.max_frame, kChunk);
  EXPECT_EQ(link.sender().stats().chunks_sent, (1u << 20) / kChunk);
  EXPECT_EQ(link.sender().stats().bytes_sent, 1u << 20);
  EXPECT_LE(link.sender().stats().max_unacknowledged_bytes, 4 * kChunk);
  EXPECT_EQ(link.sender().stats().completed, 1u);
  EXPECT_EQ(link.sender().active(), 0u);
  EXPECT_EQ(receiver.stats().completed, 1u);
  EXPECT_FALSE(receiver.incoming());
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "snapshot.incoming")) << "the partial file was left behind";
}

TEST(SnapshotTransfer, ADroppedConnectionResumesWhereTheReceiverWas) {
  const auto snap = make_snapshot(1 << 20, 500, 2);
  Link link(options());
  SnapshotReceiver receiver({});  // memory storage
  link.sender().start(kFollower, 3, snap, link.now);
  ASSERT_FALSE(link.deliver(receiver, 30));
  ASSERT_TRUE(receiver.incoming());
  const auto held = receiver.incoming()->held;
  EXPECT_EQ(held, 30 * kChunk);
  link.drop();
  link.up = false;
  for (int i = 0; i < 300; ++i) {  // 3 s down: pieces refused, the receiver asked in vain
    link.now += 10ms;
    EXPECT_TRUE(link.sender().tick(link.now).empty());
  }
  link.up = true;
  const auto got = link.run(receiver, 200);
  ASSERT_TRUE(got) << "the transfer did not resume";
  expect_same(*got, *snap);
  EXPECT_EQ(link.sender().stats().resumed, 1u);
  // What was lost is the window in flight, not the snapshot.
  EXPECT_LE(link.sender().stats().bytes_sent, (1u << 20) + 4 * kChunk);
  EXPECT_EQ(receiver.stats().bytes_received, 1u << 20);
}

TEST(SnapshotTransfer, AReceiverRestartedHalfWayResumesFromItsFile) {
  test::ScratchDirectory dir("raftfl-snapshot");
  const auto snap = make_snapshot(1 << 20, 700, 3);
  Link link(options());
  std::uint64_t held = 0;
  {
    SnapshotReceiver receiver(dir.path());
    link.sender().start(kFollower, 3, snap, link.now);
    ASSERT_FALSE(link.deliver(receiver, 40));
    held = receiver.incoming()->held;
    link.drop();  // the process is killed: what was in flight is lost
  }
  SnapshotReceiver restarted(dir.path());
  ASSERT_TRUE(restarted.incoming()) << "the partial snapshot was not picked up";
  EXPECT_EQ(restarted.incoming()->held, held);
  EXPECT_EQ(restarted.incoming()->index, 700u);
  const auto got = link.run(restarted, 300);
  ASSERT_TRUE(got);
  expect_same(*got, *snap);
  EXPECT_EQ(restarted.stats().resumed, 1u);
  EXPECT_EQ(restarted.stats().bytes_received, (1u << 20) - held);
}

TEST(SnapshotTransfer, APartialFileDamagedWhileTheReceiverWasDownIsCaughtAndTheTransferStartsOver) {
  test::ScratchDirectory dir("raftfl-snapshot");
  const auto snap = make_snapshot(256 << 10, 800, 4);
  Link link(options());
  {
    SnapshotReceiver receiver(dir.path());
    link.sender().start(kFollower, 3, snap, link.now);
    ASSERT_FALSE(link.deliver(receiver, 8));
    link.drop();
  }
  {
    std::fstream f(dir.path() / "snapshot.incoming", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.put('\x5a' ^ snap->data.view()[1000]);
  }
  SnapshotReceiver restarted(dir.path());
  const auto got = link.run(restarted, 600);
  ASSERT_TRUE(got) << "the transfer did not start over";
  expect_same(*got, *snap);
  EXPECT_EQ(restarted.stats().damaged, 1u);
}

TEST(SnapshotTransfer, ANewerSnapshotReplacesTheOneBeingSent) {
  test::ScratchDirectory dir("raftfl-snapshot");
  const auto older = make_snapshot(512 << 10, 900, 5);
  const auto newer = make_snapshot(300 << 10, 1200, 6);
  Link link(options());
  SnapshotReceiver receiver(dir.path());
  link.sender().start(kFollower, 3, older, link.now);
  ASSERT_FALSE(link.deliver(receiver, 10));
  link.sender().start(kFollower, 3, older, link.now);  // the engine asking again changes nothing
  EXPECT_EQ(link.sender().stats().started, 1u);
  link.sender().start(kFollower, 3, newer, link.now);
  const auto got = link.deliver(receiver);
  ASSERT_TRUE(got);
  expect_same(*got, *newer);
}

TEST(SnapshotTransfer, AnEmptySnapshotCompletesOnTheFirstAnswer) {
  const auto empty = make_snapshot(0, 10, 7);
  Link link(options());
  SnapshotReceiver receiver({});
  link.sender().start(kFollower, 3, empty, link.now);
  const auto got = link.deliver(receiver);
  ASSERT_TRUE(got);
  expect_same(*got, *empty);
  EXPECT_EQ(link.sender().stats().chunks_sent, 0u);
}

TEST(SnapshotTransfer, TheRateLimitSpacesThePieces) {
  auto o = options();
  o.chunk_bytes = 4096;
  o.bytes_per_second = 100 << 10;
  const auto snap = make_snapshot(1 << 20, 500, 8);
  Link link(o);
  SnapshotReceiver receiver({});
  link.sender().start(kFollower, 3, snap, link.now);
  for (int i = 0; i < 100; ++i) {  // one virtual second
    link.now += 10ms;
    link.sender().tick(link.now);
    ASSERT_FALSE(link.deliver(receiver));
  }
  const auto sent = link.sender().stats().bytes_sent;
  EXPECT_GE(sent, 90u << 10);
  EXPECT_LE(sent, (100u << 10) + 2 * 4096);
}

TEST(SnapshotTransfer, AReceiverThatNeverAnswersIsGivenUpAndReported) {
  Link link(options());
  link.up = false;
  link.sender().start(kFollower, 3, make_snapshot(64 << 10, 5, 9), link.now);
  std::vector<raft::NodeId> given_up;
  for (int i = 0; i < 3100 && given_up.empty(); ++i) {
    link.now += 10ms;
    given_up = link.sender().tick(link.now);
  }
  ASSERT_EQ(given_up, std::vector<raft::NodeId>{kFollower});
  EXPECT_EQ(link.sender().active(), 0u);
  EXPECT_EQ(link.sender().stats().given_up, 1u);
}

TEST(SnapshotTransfer, APieceRunningPastTheSnapshotIsRefusedByTheCodec) {
  capnp::MallocMessageBuilder builder;
  wire::SnapshotChunk c;
  c.total_bytes = 10;
  c.offset = 8;
  c.data = "abcd";
  wire::encode_snapshot_chunk(c, {1, kLeader, kFollower, 3}, builder);
  capnp::SegmentArrayMessageReader reader(builder.getSegmentsForOutput());
  EXPECT_THROW(wire::decode_snapshot_chunk(reader), wire::DecodeError);
}

}  // namespace
}  // namespace raftfl::node
