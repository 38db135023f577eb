// Crash recovery of the write-ahead log over many damaged copies of one data directory.
// The rule under test: a torn or zero-filled tail is cut back to the last good record and
// the node starts and goes on writing; a bad record that good records follow stops the
// node with a message naming the segment file and the record's offset, never a silent
// skip. A damaged last record is indistinguishable from a torn write, so it is cut.
#include "raftfl/storage/wal_storage.hpp"

#include "raft_equality.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>

namespace raftfl::storage {
namespace {

namespace fs = std::filesystem;
using raft::Entry;
using raft::EntryType;
using raft::HardState;
using raft::Payload;

// The record framing, which the test needs to know where each record lies in a segment:
// u32 body length, u32 check of the length, u8 kind, body, u64 checksum.
constexpr std::size_t kFramingBytes = 4 + 4 + 1 + 8;
constexpr std::size_t kEntryFixedBytes = 17;  // index, term, type
constexpr std::size_t kHardStateBodyBytes = 24;
constexpr char kEntryKind = 1;
constexpr char kHardStateKind = 2;

// Small enough that the log spans several segments, so damage also lands in older ones.
constexpr std::size_t kSegmentBytes = 48 << 10;
constexpr raft::Index kLogEntries = 300;
constexpr std::uint64_t kLogSeed = 0x5eedf00d;
constexpr int kTrials = 200;

struct Save {
  std::vector<Entry> entries;
  std::optional<HardState> hard_state;
};

// A record of the source log: where it is and what replaying it does.
struct Record {
  std::size_t segment;
  std::size_t offset;
  std::size_t size;
  std::optional<Entry> entry;
  HardState hard_state;  // when not an entry
};

struct Segment {
  std::string name;
  std::string bytes;
};

std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::size_t uniform(std::mt19937_64& rng, std::size_t lo, std::size_t hi) {
  return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
}

// Payload sizes on both sides of the writer's pack-or-reference threshold (512), and empty ones.
std::size_t payload_size(std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0: return uniform(rng, 0, 64);
    case 1: return uniform(rng, 64, 511);
    default: return uniform(rng, 512, 3000);
  }
}

// Raft-shaped saves: a few entries and a hard state per Ready, some Readies with only one
// of the two, and now and then a new term that overwrites the uncommitted tail (which a
// replay must apply as a truncation). The commit never passes the log.
std::vector<Save> make_saves() {
  std::mt19937_64 rng(kLogSeed);
  std::vector<Save> saves;
  raft::Index last = 0;
  HardState hs{1, 1, 0};
  while (last < kLogEntries) {
    Save s;
    std::size_t n = uniform(rng, 0, 5);
    raft::Index from = last + 1;
    bool new_term = n > 0 && last > hs.commit && rng() % 10 == 0;
    if (new_term) {
      from = uniform(rng, hs.commit + 1, last);
      hs.term += 1;
      hs.vote = 1 + hs.term % 3;
    }
    for (std::size_t i = 0; i < n; ++i) {
      auto type = static_cast<EntryType>(rng() % 3);
      s.entries.push_back(Entry{hs.term, from + i, type, Payload(random_bytes(rng, payload_size(rng)))});
    }
    if (n > 0) last = from + n - 1;
    if (n == 0 || new_term || rng() % 10 < 7) {
      hs.commit = uniform(rng, hs.commit, last);
      s.hard_state = hs;
    }
    saves.push_back(std::move(s));
  }
  return saves;
}

std::uint32_t le32(const std::string& bytes, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(bytes[at + static_cast<std::size_t>(i)]);
  return v;
}

// What is under test is recovery's reading of damaged bytes, not durability (the other WAL
// tests run on the disk): in memory, a trial's fsyncs cost nothing, whereas on a disk each
// one waits for every other process's dirty data on the same journal.
fs::path scratch_root() {
  fs::path shm = "/dev/shm";
  return fs::is_directory(shm) && ::access(shm.c_str(), W_OK) == 0 ? shm : fs::temp_directory_path();
}

std::vector<Segment> read_segments(const fs::path& dir) {
  std::vector<Segment> out;
  for (const auto& e : fs::directory_iterator(dir / "wal")) {
    std::ifstream in(e.path(), std::ios::binary);
    out.push_back({e.path().filename().string(), std::string(std::istreambuf_iterator<char>(in), {})});
  }
  std::sort(out.begin(), out.end(), [](const Segment& a, const Segment& b) { return a.name < b.name; });
  return out;
}

// The source log, written once through each append path.
struct SourceLog {
  std::vector<Save> saves;
  std::vector<Segment> segments;         // written through io_uring where the kernel has it
  std::vector<Segment> pwrite_segments;  // the same saves through pwrite
  bool ring_used = false;
  std::vector<Record> records;
  std::size_t first_in_last_segment = 0;  // index into records
};

// Maps each record of the files to the save operation it came from, checking that the
// records tile every segment. Each segment opens with a copy of the hard state.
void index_records(SourceLog& log) {
  struct Op {
    const Entry* entry;
    HardState hard_state;
  };
  std::vector<Op> ops;
  for (const Save& s : log.saves) {
    for (const Entry& e : s.entries) ops.push_back({&e, {}});
    if (s.hard_state) ops.push_back({nullptr, *s.hard_state});
  }
  std::size_t next = 0;
  HardState current;
  for (std::size_t seg = 0; seg < log.segments.size(); ++seg) {
    const std::string& bytes = log.segments[seg].bytes;
    if (seg + 1 == log.segments.size()) log.first_in_last_segment = log.records.size();
    for (std::size_t at = 0; at < bytes.size();) {
      if (bytes.size() - at < kFramingBytes) throw std::logic_error("segment ends inside a record");
      std::size_t length = le32(bytes, at);
      Record r{seg, at, kFramingBytes + length, std::nullopt, current};
      if (at + r.size > bytes.size()) throw std::logic_error("segment ends inside a record");
      char kind = bytes[at + 8];
      if (at > 0) {
        if (next == ops.size()) throw std::logic_error("more records than saved");
        const Op& op = ops[next++];
        if (op.entry) {
          if (kind != kEntryKind || length != kEntryFixedBytes + op.entry->data.size())
            throw std::logic_error("entry record out of step at " + std::to_string(at));
          r.entry = *op.entry;
        } else {
          current = op.hard_state;
          r.hard_state = current;
        }
      }
      if (!r.entry && (kind != kHardStateKind || length != kHardStateBodyBytes))
        throw std::logic_error("hard state record out of step at " + std::to_string(at));
      log.records.push_back(std::move(r));
      at += log.records.back().size;
    }
  }
  if (next != ops.size()) throw std::logic_error("fewer records than saved");
}

const SourceLog& source_log() {
  static const SourceLog log = [] {
    SourceLog out;
    out.saves = make_saves();
    fs::path dir = scratch_root() / ("raftfl-wal-crash-source-" + std::to_string(::getpid()));
    for (bool ring : {true, false}) {
      fs::remove_all(dir);
      {
        WalStorage wal(dir, {kSegmentBytes, ring});
        if (ring) out.ring_used = wal.uses_io_uring();
        for (const Save& s : out.saves) wal.save(nullptr, s.entries, s.hard_state ? &*s.hard_state : nullptr);
      }
      (ring ? out.segments : out.pwrite_segments) = read_segments(dir);
    }
    fs::remove_all(dir);
    index_records(out);
    return out;
  }();
  return log;
}

raft::PersistedState replay(std::size_t records) {
  MemoryStorage m;
  for (std::size_t i = 0; i < records; ++i) {
    const Record& r = source_log().records[i];
    if (r.entry) m.save(nullptr, {*r.entry}, nullptr);
    else m.save(nullptr, {}, &r.hard_state);
  }
  return m.load();
}

void expect_same(const raft::PersistedState& got, const raft::PersistedState& want) {
  EXPECT_EQ(got.hard_state, want.hard_state);
  raft::test::expect_same_snapshot(got.snapshot, want.snapshot);
  raft::test::expect_same_entries(got.entries, want.entries);
}

class WalCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = scratch_root() / ("raftfl-wal-crash-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    ASSERT_NO_THROW(source_log());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Both append paths carry on after recovery, trial by trial.
  static WalStorage::Options options(int trial) { return {kSegmentBytes, trial % 2 == 0}; }

  // The source log in dir_, with segment `damaged` (if any) replaced by `bytes`.
  void write_dir(std::size_t damaged = SIZE_MAX, const std::string& bytes = {}) {
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "wal");
    const auto& segments = source_log().segments;
    for (std::size_t i = 0; i < segments.size(); ++i) {
      std::ofstream out(dir_ / "wal" / segments[i].name, std::ios::binary);
      const std::string& b = i == damaged ? bytes : segments[i].bytes;
      out.write(b.data(), static_cast<std::streamsize>(b.size()));
    }
  }

  fs::path segment_path(std::size_t i) const { return dir_ / "wal" / source_log().segments[i].name; }

  // Recovery hands back `want`, having cut `torn` bytes; then the node appends a Ready
  // (new term, as after a restart) and a reopen sees it.
  void expect_recovers_and_continues(int trial, const raft::PersistedState& want, std::uint64_t torn) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(trial));
    MemoryStorage model(want);
    {
      WalStorage wal(dir_, options(trial));
      raft::PersistedState got = wal.load();
      expect_same(got, want);
      EXPECT_EQ(wal.recovered_torn_bytes(), torn);
      raft::Index last = got.entries.empty() ? 0 : got.entries.back().index;
      // A save writes its entries before its hard state, so no prefix commits past its log.
      EXPECT_LE(got.hard_state.commit, last);

      raft::Term term = got.hard_state.term + 1;
      std::vector<Entry> more;
      for (std::size_t i = 0, n = uniform(rng, 1, 3); i < n; ++i) {
        more.push_back(Entry{term, last + 1 + i, EntryType::kNormal, Payload(random_bytes(rng, payload_size(rng)))});
      }
      HardState hs{term, 2, got.hard_state.commit};
      wal.save(nullptr, more, &hs);
      model.save(nullptr, more, &hs);
    }
    WalStorage reopened(dir_, options(trial + 1));
    expect_same(reopened.load(), model.load());
    EXPECT_EQ(reopened.recovered_torn_bytes(), 0u);
  }

  fs::path dir_;
};

TEST_F(WalCrashTest, SourceLogSpansSegmentsAndBothAppendPathsWriteTheSameBytes) {
  const SourceLog& log = source_log();
  RecordProperty("io_uring", log.ring_used ? "yes" : "no");
  std::cout << "appends " << (log.ring_used ? "go through io_uring" : "fall back to pwrite") << " here\n";
  EXPECT_GE(log.segments.size(), 4u);
  ASSERT_EQ(log.segments.size(), log.pwrite_segments.size());
  for (std::size_t i = 0; i < log.segments.size(); ++i) {
    EXPECT_EQ(log.segments[i].name, log.pwrite_segments[i].name);
    EXPECT_TRUE(log.segments[i].bytes == log.pwrite_segments[i].bytes) << log.segments[i].name;
  }
  write_dir();
  WalStorage whole(dir_, {kSegmentBytes, true});
  expect_same(whole.load(), replay(log.records.size()));
  EXPECT_EQ(whole.recovered_torn_bytes(), 0u);
}

TEST_F(WalCrashTest, TruncatedLastSegmentLoadsTheLongestWholePrefix) {
  const SourceLog& log = source_log();
  std::size_t last = log.segments.size() - 1;
  const std::string& bytes = log.segments[last].bytes;
  for (int trial = 0; trial < kTrials && !HasFailure(); ++trial) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(trial));
    std::size_t cut = uniform(rng, 0, bytes.size());
    // Half the time the file's new size reached the disk before its data did.
    std::size_t zeros = rng() % 2 ? uniform(rng, 1, 4096) : 0;
    SCOPED_TRACE("trial " + std::to_string(trial) + ": cut at " + std::to_string(cut) + " of " +
                 std::to_string(bytes.size()) + ", then " + std::to_string(zeros) + " zeros");
    std::size_t whole = log.first_in_last_segment;
    std::size_t whole_end = 0;
    while (whole < log.records.size() && log.records[whole].offset + log.records[whole].size <= cut) {
      whole_end = log.records[whole].offset + log.records[whole].size;
      ++whole;
    }
    write_dir(last, bytes.substr(0, cut) + std::string(zeros, '\0'));
    expect_recovers_and_continues(trial, replay(whole), cut - whole_end + zeros);
  }
}

TEST_F(WalCrashTest, ZeroFilledTailIsCutAndEveryEntryLoads) {
  const SourceLog& log = source_log();
  std::size_t last = log.segments.size() - 1;
  raft::PersistedState all = replay(log.records.size());
  for (int trial = 0; trial < kTrials && !HasFailure(); ++trial) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(trial));
    std::size_t zeros = uniform(rng, 1, 8192);
    SCOPED_TRACE("trial " + std::to_string(trial) + ": " + std::to_string(zeros) + " zeros");
    write_dir(last, log.segments[last].bytes + std::string(zeros, '\0'));
    expect_recovers_and_continues(trial, all, zeros);
  }
}

TEST_F(WalCrashTest, BadRecordWithGoodRecordsAfterItStopsWithFileAndOffset) {
  const SourceLog& log = source_log();
  for (int trial = 0; trial < kTrials && !HasFailure(); ++trial) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(trial));
    const Record& r = log.records[uniform(rng, 0, log.records.size() - 2)];
    std::size_t at = r.offset + uniform(rng, 0, r.size - 1);
    auto flip = static_cast<char>(uniform(rng, 1, 255));
    SCOPED_TRACE("trial " + std::to_string(trial) + ": segment " + std::to_string(r.segment) + ", record at " +
                 std::to_string(r.offset) + ", byte " + std::to_string(at));
    std::string bytes = log.segments[r.segment].bytes;
    bytes[at] ^= flip;
    write_dir(r.segment, bytes);
    try {
      WalStorage wal(dir_, options(trial));
      ADD_FAILURE() << "started with " << wal.load().entries.size() << " entries past a damaged record";
    } catch (const CorruptionError& e) {
      std::string what = e.what();
      EXPECT_NE(what.find(segment_path(r.segment).string()), std::string::npos) << what;
      EXPECT_NE(what.find("offset " + std::to_string(r.offset) + " "), std::string::npos) << what;
    }
    // Refusing to start changes nothing: no cut, no new segment.
    EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "wal"), fs::directory_iterator()),
              static_cast<std::ptrdiff_t>(log.segments.size()));
    EXPECT_EQ(fs::file_size(segment_path(r.segment)), bytes.size());
  }
}

TEST_F(WalCrashTest, DamagedLastRecordIsCutLikeATornWrite) {
  const SourceLog& log = source_log();
  std::size_t last = log.segments.size() - 1;
  const Record& r = log.records.back();
  raft::PersistedState without_it = replay(log.records.size() - 1);
  for (int trial = 0; trial < kTrials && !HasFailure(); ++trial) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(trial));
    std::size_t at = r.offset + uniform(rng, 0, r.size - 1);
    SCOPED_TRACE("trial " + std::to_string(trial) + ": byte " + std::to_string(at) + " of the record at " +
                 std::to_string(r.offset));
    std::string bytes = log.segments[last].bytes;
    bytes[at] ^= static_cast<char>(uniform(rng, 1, 255));
    write_dir(last, bytes);
    expect_recovers_and_continues(trial, without_it, r.size);
  }
}

}  // namespace
}  // namespace raftfl::storage
