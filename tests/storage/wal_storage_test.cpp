// The write-ahead log gives back exactly what was saved, survives torn tails, and refuses
// to start on damage it cannot explain.
#include "raftfl/storage/wal_storage.hpp"

#include "raft_equality.hpp"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <random>

namespace raftfl::storage {
namespace {

namespace fs = std::filesystem;
using raft::Entry;
using raft::EntryType;
using raft::HardState;
using raft::Payload;

class WalStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("raftfl-wal-" + std::to_string(::getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static Entry entry(raft::Index index, raft::Term term, std::size_t bytes = 100) {
    return Entry{term, index, EntryType::kNormal, Payload(std::string(bytes, static_cast<char>('a' + index % 26)))};
  }
  static void expect_same(const raft::PersistedState& a, const raft::PersistedState& b) {
    EXPECT_EQ(a.hard_state, b.hard_state);
    raft::test::expect_same_snapshot(a.snapshot, b.snapshot);
    raft::test::expect_same_entries(a.entries, b.entries);
  }
  // A log of one entry, compacted into `snap` (given its index and term here).
  void compact_after_one_entry(const std::shared_ptr<raft::Snapshot>& snap) {
    WalStorage wal(dir_, {});
    HardState hs{1, 1, 1};
    wal.save(nullptr, {entry(1, 1)}, &hs);
    snap->meta.index = 1;
    snap->meta.term = 1;
    wal.compact(snap);
  }
  std::vector<fs::path> segments() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_ / "wal")) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path dir_;
};

TEST_F(WalStorageTest, ReopenGivesBackWhatWasSavedIncludingTruncations) {
  MemoryStorage model;
  {
    WalStorage wal(dir_, {});
    auto save = [&](std::vector<Entry> entries, const HardState* hs) {
      wal.save(nullptr, entries, hs);
      model.save(nullptr, entries, hs);
    };
    HardState hs{1, 2, 0};
    save({entry(1, 1), entry(2, 1), entry(3, 1)}, &hs);
    hs = {2, 3, 2};
    save({entry(3, 2), entry(4, 2)}, &hs);  // replaces entry 3
    save({entry(5, 2, 0)}, nullptr);
    hs.commit = 5;
    save({}, &hs);
  }
  WalStorage reopened(dir_, {});
  expect_same(reopened.load(), model.load());
  EXPECT_EQ(reopened.load().entries.at(2).term, 2u);
  EXPECT_EQ(reopened.recovered_torn_bytes(), 0u);
}

TEST_F(WalStorageTest, SegmentsRotateAndCompactionDropsTheCoveredOnes) {
  MemoryStorage model;
  WalStorage::Options small{4096};
  {
    WalStorage wal(dir_, small);
    for (raft::Index i = 1; i <= 200; ++i) {
      HardState hs{1, 1, i - 1};
      wal.save(nullptr, {entry(i, 1)}, &hs);
      model.save(nullptr, {entry(i, 1)}, &hs);
    }
    EXPECT_GT(segments().size(), 4u);
    auto snap = std::make_shared<raft::Snapshot>();
    snap->meta = {150, 1, {{1, 2, 3}, {4}, {}}};
    snap->data = Payload("state at 150");
    std::size_t before = segments().size();
    wal.compact(snap);
    model.compact(snap);
    EXPECT_LT(segments().size(), before);
  }
  WalStorage reopened(dir_, small);
  expect_same(reopened.load(), model.load());
  EXPECT_EQ(reopened.load().entries.front().index, 151u);
}

TEST_F(WalStorageTest, ReceivedSnapshotReplacesTheLogEvenIfOldSegmentsSurviveACrash) {
  fs::path saved_segment;
  {
    WalStorage wal(dir_, {});
    HardState hs{1, 1, 1};
    wal.save(nullptr, {entry(1, 1), entry(2, 1), entry(3, 1)}, &hs);
    saved_segment = segments().front();
    fs::copy_file(saved_segment, dir_ / "old.keep");
    auto snap = std::make_shared<raft::Snapshot>();
    snap->meta = {10, 3, {{1, 2, 3}, {}, {}}};
    snap->data = Payload("state at 10");
    hs = {3, 0, 10};
    wal.save(snap, {entry(11, 3)}, &hs);
  }
  // As if the crash came before the old segment was deleted.
  fs::rename(dir_ / "old.keep", saved_segment);
  WalStorage reopened(dir_, {});
  raft::PersistedState state = reopened.load();
  ASSERT_TRUE(state.snapshot);
  EXPECT_EQ(state.snapshot->meta.index, 10u);
  ASSERT_EQ(state.entries.size(), 1u);
  EXPECT_EQ(state.entries[0].index, 11u);
  EXPECT_EQ(state.hard_state, (HardState{3, 0, 10}));
}

// A snapshot is only ever written after the segment that continues it exists: a snapshot
// with no segment after it means the log went (deleted by hand, a lost file system), and
// starting from the snapshot alone would forget the node's acknowledged entries and vote.
TEST_F(WalStorageTest, SnapshotWithoutTheLogThatFollowsItRefusesToStart) {
  for (bool compacted : {false, true}) {
    SCOPED_TRACE(compacted ? "compaction snapshot" : "received snapshot");
    fs::remove_all(dir_);
    {
      WalStorage wal(dir_, {});
      auto snap = std::make_shared<raft::Snapshot>();
      snap->meta = {compacted ? raft::Index{2} : raft::Index{0}, compacted ? raft::Term{1} : raft::Term{0}, {{1, 2, 3}, {}, {}}};
      HardState hs{1, 2, 0};
      if (compacted) {
        wal.save(nullptr, {entry(1, 1), entry(2, 1), entry(3, 1)}, &hs);
        wal.compact(snap);
      } else {
        wal.save(snap, {entry(1, 1)}, &hs);
      }
    }
    { WalStorage reopened(dir_, {}); }  // a clean restart is fine (and starts a segment of its own)
    for (const auto& segment : segments()) fs::remove(segment);
    try {
      WalStorage reopened(dir_, {});
      ADD_FAILURE() << "started without its log";
    } catch (const CorruptionError& e) {
      EXPECT_NE(std::string(e.what()).find("no log segment follows snapshot"), std::string::npos) << e.what();
    }
  }
}

TEST_F(WalStorageTest, TornTailAtAnyOffsetIsCutBackToTheLastGoodRecord) {
  std::vector<Entry> saved;
  {
    WalStorage wal(dir_, {});
    for (raft::Index i = 1; i <= 40; ++i) {
      saved.push_back(entry(i, 1, 10 + i * 7));
      HardState hs{1, 1, i};
      wal.save(nullptr, {saved.back()}, &hs);
    }
  }
  fs::path segment = segments().back();
  std::string whole;
  {
    std::ifstream in(segment, std::ios::binary);
    whole.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    std::size_t cut = std::uniform_int_distribution<std::size_t>(0, whole.size())(rng);
    {
      std::ofstream out(segment, std::ios::binary | std::ios::trunc);
      out.write(whole.data(), static_cast<std::streamsize>(cut));
      if (trial % 3 == 0) out << std::string(512, '\0');  // preallocated, never written
    }
    WalStorage reopened(dir_, {});
    raft::PersistedState state = reopened.load();
    // A prefix of what was saved, every entry intact, the commit never past the log.
    ASSERT_LE(state.entries.size(), saved.size());
    for (std::size_t i = 0; i < state.entries.size(); ++i) {
      EXPECT_EQ(state.entries[i].data.view(), saved[i].data.view());
    }
    EXPECT_LE(state.hard_state.commit, state.entries.size());
    if (cut == whole.size() && trial % 3 != 0) {
      EXPECT_EQ(state.entries.size(), saved.size());
    }
    // Recovery starts a new segment; remove it so that the next trial cuts the same one.
    for (const fs::path& s : segments()) {
      if (s != segment) fs::remove(s);
    }
  }
}

TEST_F(WalStorageTest, BadRecordInTheMiddleStopsWithFileAndOffset) {
  {
    WalStorage wal(dir_, {});
    for (raft::Index i = 1; i <= 20; ++i) {
      HardState hs{1, 1, i};
      wal.save(nullptr, {entry(i, 1)}, &hs);
    }
  }
  fs::path segment = segments().back();
  {
    std::fstream f(segment, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(fs::file_size(segment) / 2));
    f.put('\x5a');
  }
  try {
    WalStorage reopened(dir_, {});
    FAIL() << "a damaged record in the middle of the log was skipped";
  } catch (const CorruptionError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(segment.string()), std::string::npos) << what;
    EXPECT_NE(what.find("offset"), std::string::npos) << what;
  }
}

TEST_F(WalStorageTest, DamagedLengthInTheMiddleIsNotMistakenForATornTail) {
  {
    WalStorage wal(dir_, {});
    for (raft::Index i = 1; i <= 20; ++i) {
      HardState hs{1, 1, i};
      wal.save(nullptr, {entry(i, 1)}, &hs);
    }
  }
  // The segment opens with a 41-byte hard state record; each save adds a 134-byte entry
  // record and a 41-byte hard state record. Offset 916 starts the sixth entry record.
  constexpr std::streamoff kSixthEntry = 41 + 5 * (134 + 41);
  fs::path segment = segments().back();
  {
    std::fstream f(segment, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(kSixthEntry + 1);
    f.put('\x7f');  // the length now claims far more than the file holds
  }
  try {
    WalStorage reopened(dir_, {});
    FAIL() << "a damaged length silently cut the log to " << reopened.load().entries.size() << " entries";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find("offset " + std::to_string(kSixthEntry)), std::string::npos) << e.what();
  }
}

// More pieces than one writev takes (IOV_MAX) and than one round of the ring holds: the
// chain is split, and the record bytes still land in order.
TEST_F(WalStorageTest, ReadyOfManyLargeEntriesRoundTripsOnBothAppendPaths) {
  for (bool ring : {true, false}) {
    SCOPED_TRACE(ring ? "io_uring" : "pwrite");
    fs::remove_all(dir_);
    std::vector<Entry> entries;
    for (raft::Index i = 1; i <= 9000; ++i) entries.push_back(entry(i, 1, 512 + i % 7));
    HardState hs{1, 1, 9000};
    {
      WalStorage wal(dir_, {std::size_t{64} << 20, ring});
      if (!ring) {
        EXPECT_FALSE(wal.uses_io_uring());
      }
      wal.save(nullptr, entries, &hs);
    }
    WalStorage reopened(dir_, {});
    EXPECT_EQ(reopened.load().hard_state, hs);
    raft::test::expect_same_entries(reopened.load().entries, entries);
  }
}

// A file size limit cuts the first write short; the rest of the record, written again
// from where it stopped, then fails with EFBIG, which must surface with the file's name.
TEST_F(WalStorageTest, ShortWriteIsResumedAndWriteErrorsNameTheFile) {
  constexpr rlim_t kLimit = 4096;
  rlimit unlimited{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &unlimited), 0);
  if (unlimited.rlim_max < kLimit * 4) GTEST_SKIP() << "file size hard limit too low";
  for (bool ring : {true, false}) {
    SCOPED_TRACE(ring ? "io_uring" : "pwrite");
    fs::remove_all(dir_);
    WalStorage wal(dir_, {std::size_t{64} << 20, ring});
    std::string what;
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limited = unlimited;
    limited.rlim_cur = kLimit;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
    try {
      wal.save(nullptr, {entry(1, 1, 3 * kLimit)}, nullptr);
    } catch (const std::system_error& e) {
      what = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &unlimited);
    std::signal(SIGXFSZ, old_handler);
    fs::path segment = segments().back();
    EXPECT_NE(what.find(segment.string()), std::string::npos) << what;
    EXPECT_NE(what.find(std::strerror(EFBIG)), std::string::npos) << what;
    EXPECT_EQ(fs::file_size(segment), kLimit);
  }
}

// As where io_uring is disabled: a child process whose io_uring_setup fails with ENOSYS
// (a seccomp filter) must still get a working, durable log.
TEST_F(WalStorageTest, KernelThatRefusesIoUringGetsThePwriteFallback) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0)
      ::_exit(2);
    try {
      HardState hs{1, 1, 1};
      {
        WalStorage wal(dir_, {});
        if (wal.uses_io_uring()) ::_exit(3);
        if (wal.why_no_io_uring().find(std::strerror(ENOSYS)) == std::string::npos) ::_exit(6);
        wal.save(nullptr, {entry(1, 1, 5000)}, &hs);
      }
      WalStorage reopened(dir_, {});
      if (reopened.load().entries.size() != 1 || reopened.load().hard_state != hs) ::_exit(4);
    } catch (...) {
      ::_exit(5);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  // 2: no seccomp here; 3: a ring was made anyway; 4: lost data; 5: threw; 6: the reason
  // given for the fallback does not carry the ENOSYS.
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(WalStorageTest, SnapshotKeepsTheMembersContexts) {
  auto snap = std::make_shared<raft::Snapshot>();
  snap->meta.config.voters = {1, 2};
  snap->meta.config.learners = {9};
  snap->meta.config.contexts = {{2, "raft=h:1 admin=h:2"}, {9, std::string(300, 'c')}};
  snap->data = Payload(std::string("state"));
  compact_after_one_entry(snap);
  WalStorage reopened(dir_, {});
  raft::test::expect_same_snapshot(reopened.load().snapshot, snap);
}

// A data directory written before members carried contexts (snapshot format 1) still loads.
TEST_F(WalStorageTest, SnapshotOfTheFirstFormatStillLoads) {
  auto snap = std::make_shared<raft::Snapshot>();
  snap->meta.config.voters = {1, 2, 3};
  snap->meta.config.learners = {4};
  snap->data = Payload(std::string("state of format 1"));
  compact_after_one_entry(snap);
  // Rewrite it as format 1 wrote it: no context count after the learners.
  const fs::path file = fs::directory_iterator(dir_ / "snap")->path();
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::size_t contexts_at = 8 + 32 + 3 * 8 + 8 + 1 * 8;
  ASSERT_EQ(bytes.substr(0, 8), std::string("rflsnap2", 8));
  ASSERT_EQ(bytes.substr(contexts_at, 8), std::string(8, '\0'));
  bytes.erase(contexts_at, 8);
  bytes.replace(0, 8, "rflsnap1");
  const std::uint64_t sum = XXH3_64bits(bytes.data(), bytes.size() - 8);
  std::memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  WalStorage reopened(dir_, {});
  raft::test::expect_same_snapshot(reopened.load().snapshot, snap);
}

TEST_F(WalStorageTest, DamagedSnapshotStopsWithItsFileName) {
  {
    WalStorage wal(dir_, {});
    HardState hs{1, 1, 1};
    wal.save(nullptr, {entry(1, 1)}, &hs);
    auto snap = std::make_shared<raft::Snapshot>();
    snap->meta = {1, 1, {{1}, {}, {}}};
    snap->data = Payload(std::string(1000, 'z'));
    wal.compact(snap);
  }
  fs::path snap_file = fs::directory_iterator(dir_ / "snap")->path();
  {
    std::fstream f(snap_file, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(100);
    f.put('y');
  }
  try {
    WalStorage reopened(dir_, {});
    FAIL() << "a damaged snapshot was accepted";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find(snap_file.string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace raftfl::storage
