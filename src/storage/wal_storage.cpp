#include "raftfl/storage/wal_storage.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>
#include <vector>

#include "raftfl/raft/little_endian.hpp"

namespace raftfl::storage {
namespace fs = std::filesystem;
namespace {

// Record: u32 body length, u32 check of the length, u8 kind, body, u64 XXH3 of kind and
// body. Little endian. The length has its own check so that a damaged length in the
// middle of the log cannot pass for a record torn at the end.
constexpr std::uint8_t kEntryRecord = 1;
constexpr std::uint8_t kHardStateRecord = 2;
constexpr std::size_t kHeaderBytes = 9;
constexpr std::size_t kChecksumBytes = 8;
constexpr std::uint32_t kMaxRecordBody = 1u << 30;
constexpr char kSnapshotMagic[8] = {'r', 'f', 'l', 's', 'n', 'a', 'p', '1'};

using raft::get_le;
using raft::put_le;
constexpr auto put_u64 = put_le<std::uint64_t>;
constexpr auto put_u32 = put_le<std::uint32_t>;
constexpr auto get_u64 = get_le<std::uint64_t>;
constexpr auto get_u32 = get_le<std::uint32_t>;

std::uint32_t length_check(const char* length_bytes) {
  return static_cast<std::uint32_t>(XXH3_64bits(length_bytes, 4)) ^ 0x5eed5eedu;
}

void put_record(std::string& out, std::uint8_t kind, const std::string& body) {
  std::size_t length_at = out.size();
  put_u32(out, static_cast<std::uint32_t>(body.size()));
  put_u32(out, length_check(out.data() + length_at));
  std::size_t kind_at = out.size();
  out.push_back(static_cast<char>(kind));
  out += body;
  put_u64(out, XXH3_64bits(out.data() + kind_at, 1 + body.size()));
}

std::string entry_body(const raft::Entry& e) {
  std::string body;
  body.reserve(17 + e.data.size());
  put_u64(body, e.index);
  put_u64(body, e.term);
  body.push_back(static_cast<char>(e.type));
  body += e.data.view();
  return body;
}

std::string hard_state_body(const raft::HardState& hs) {
  std::string body;
  put_u64(body, hs.term);
  put_u64(body, hs.vote);
  put_u64(body, hs.commit);
  return body;
}

[[noreturn]] void throw_errno(const std::string& what) { throw std::system_error(errno, std::generic_category(), what); }

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) throw_errno("open " + dir.string());
  if (::fsync(fd) != 0) {
    ::close(fd);
    throw_errno("fsync " + dir.string());
  }
  ::close(fd);
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::system_error(errno, std::generic_category(), "open " + file.string());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::vector<fs::path> sorted_files(const fs::path& dir, const std::string& extension) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == extension) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

WalStorage::WalStorage(fs::path dir, Options options) : dir_(std::move(dir)), options_(options) {
  fs::create_directories(dir_ / "wal");
  fs::create_directories(dir_ / "snap");
  recover();
  start_segment();
}

WalStorage::~WalStorage() {
  if (fd_ >= 0) ::close(fd_);
}

void WalStorage::recover() {
  std::uint64_t wal_from = 0;
  // The newest snapshot: written to a temporary name and renamed, so a complete file or none.
  auto snaps = sorted_files(dir_ / "snap", ".snap");
  if (!snaps.empty()) {
    const fs::path& file = snaps.back();
    std::string bytes = read_file(file);
    if (bytes.size() < 8 + 32 + kChecksumBytes || std::memcmp(bytes.data(), kSnapshotMagic, 8) != 0 ||
        get_u64(bytes.data() + bytes.size() - 8) != XXH3_64bits(bytes.data(), bytes.size() - 8)) {
      throw CorruptionError(file.string() + ": snapshot fails its checksum");
    }
    const char* p = bytes.data() + 8;
    wal_from = get_u64(p);
    auto snap = std::make_shared<raft::Snapshot>();
    snap->meta.index = get_u64(p + 8);
    snap->meta.term = get_u64(p + 16);
    std::uint64_t voters = get_u64(p + 24);
    std::size_t at = 8 + 32;
    auto read_ids = [&](std::uint64_t n, std::vector<raft::NodeId>& ids) {
      if (at + 8 * n + 8 > bytes.size()) throw CorruptionError(file.string() + ": snapshot configuration is truncated");
      for (std::uint64_t i = 0; i < n; ++i, at += 8) ids.push_back(get_u64(bytes.data() + at));
    };
    read_ids(voters, snap->meta.config.voters);
    std::uint64_t learners = get_u64(bytes.data() + at);
    at += 8;
    read_ids(learners, snap->meta.config.learners);
    snap->data = raft::Payload(bytes.substr(at, bytes.size() - 8 - at));
    memory_ = MemoryStorage(raft::PersistedState{{}, snap, {}});
  }
  // A snapshot received from the leader replaced the whole log: segments older than the
  // one started with it hold a log that no longer counts, even if a crash kept them.
  std::vector<fs::path> segments;
  for (const fs::path& file : sorted_files(dir_ / "wal", ".wal")) {
    std::uint64_t seq = std::stoull(file.stem().string(), nullptr, 16);
    segment_seq_ = std::max(segment_seq_, seq);
    if (seq < wal_from) fs::remove(file);
    else segments.push_back(file);
  }
  for (std::size_t i = 0; i < segments.size(); ++i) replay_segment(segments[i], i + 1 == segments.size());
}

void WalStorage::replay_segment(const fs::path& file, bool newest) {
  std::string bytes = read_file(file);
  std::uint64_t seq = std::stoull(file.stem().string(), nullptr, 16);
  raft::Index last_index = 0;
  std::size_t at = 0;
  auto zero_from = [&](std::size_t from) {
    return std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(std::min(from, bytes.size())), bytes.end(),
                       [](char c) { return c == 0; });
  };
  while (at < bytes.size()) {
    std::size_t record_at = at;
    // A torn write can only hit the newest segment's end: a header or body cut short, or
    // a bad last record, possibly followed by preallocated zeros. Anything else is damage.
    enum class Scan { kGood, kTorn, kDamaged } scan = Scan::kGood;
    std::uint32_t length = 0;
    std::size_t end = 0;
    if (at + kHeaderBytes > bytes.size()) {
      scan = Scan::kTorn;
    } else {
      length = get_u32(bytes.data() + at);
      end = at + kHeaderBytes + length + kChecksumBytes;
      if (get_u32(bytes.data() + at + 4) != length_check(bytes.data() + at) || length > kMaxRecordBody) {
        // A header torn part-way and followed only by preallocated zeros.
        scan = zero_from(at + kHeaderBytes) ? Scan::kTorn : Scan::kDamaged;
      } else if (end > bytes.size()) {
        scan = Scan::kTorn;
      } else if (get_u64(bytes.data() + end - 8) != XXH3_64bits(bytes.data() + at + 8, 1 + length)) {
        scan = (end == bytes.size() || zero_from(end)) ? Scan::kTorn : Scan::kDamaged;
      }
    }
    if (scan != Scan::kGood) {
      if (scan == Scan::kDamaged || !newest) {
        throw CorruptionError(file.string() + ": bad record at offset " + std::to_string(record_at) +
                              " with more log after it; refusing to skip it");
      }
      torn_bytes_ += bytes.size() - record_at;
      fs::resize_file(file, record_at);
      break;
    }
    const char* body = bytes.data() + at + kHeaderBytes;
    std::uint8_t kind = static_cast<std::uint8_t>(bytes[at + 8]);
    if (kind == kEntryRecord && length >= 17) {
      auto type = static_cast<std::uint8_t>(body[16]);
      if (type > static_cast<std::uint8_t>(raft::EntryType::kConfChange))
        throw CorruptionError(file.string() + ": unknown entry type at offset " + std::to_string(record_at));
      raft::Entry e{get_u64(body + 8), get_u64(body), static_cast<raft::EntryType>(type),
                    raft::Payload(std::string(body + 17, length - 17))};
      const raft::PersistedState& now = memory_.state();
      raft::Index base = now.snapshot ? now.snapshot->meta.index : 0;
      if (e.index > base) {
        if (e.index > base + now.entries.size() + 1)
          throw CorruptionError(file.string() + ": entry " + std::to_string(e.index) + " at offset " +
                                std::to_string(record_at) + " leaves a gap in the log");
        memory_.save(nullptr, {e}, nullptr);
      }
      last_index = std::max(last_index, e.index);
    } else if (kind == kHardStateRecord && length == 24) {
      raft::HardState hs{get_u64(body), get_u64(body + 8), get_u64(body + 16)};
      memory_.save(nullptr, {}, &hs);
    } else {
      throw CorruptionError(file.string() + ": unknown record at offset " + std::to_string(record_at));
    }
    at = end;
  }
  segment_last_index_[seq] = last_index;
}

void WalStorage::start_segment() {
  if (fd_ >= 0) ::close(fd_);
  ++segment_seq_;
  fs::path file = dir_ / "wal" / (hex16(segment_seq_) + ".wal");
  fd_ = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_errno("create " + file.string());
  fsync_dir(dir_ / "wal");
  segment_size_ = 0;
  segment_last_index_[segment_seq_] = 0;
  // Every segment opens with the hard state, so older segments are never needed for it.
  std::string records;
  put_record(records, kHardStateRecord, hard_state_body(memory_.state().hard_state));
  append(records);
}

void WalStorage::append(const std::string& records) {
  std::size_t done = 0;
  while (done < records.size()) {
    ssize_t n = ::write(fd_, records.data() + done, records.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write to the log");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fdatasync(fd_) != 0) throw_errno("fdatasync the log");
  segment_size_ += records.size();
}

void WalStorage::save(const std::shared_ptr<const raft::Snapshot>& snapshot, const std::vector<raft::Entry>& entries,
                      const raft::HardState* hard_state) {
  if (snapshot) {
    // The snapshot replaces the whole log: the log continues in a fresh segment, the
    // snapshot says so, and every older segment goes.
    memory_.save(snapshot, {}, nullptr);
    start_segment();
    write_snapshot(*snapshot, segment_seq_);
    drop_segments_up_to(~raft::Index{0});
  }
  if (entries.empty() && !hard_state) return;
  std::string records;
  for (const raft::Entry& e : entries) put_record(records, kEntryRecord, entry_body(e));
  if (hard_state) put_record(records, kHardStateRecord, hard_state_body(*hard_state));
  append(records);
  // Only what reached the disk is what load() returns.
  memory_.save(nullptr, entries, hard_state);
  if (!entries.empty()) segment_last_index_[segment_seq_] = std::max(segment_last_index_[segment_seq_], entries.back().index);
  if (segment_size_ >= options_.segment_bytes) start_segment();
}

void WalStorage::compact(const std::shared_ptr<const raft::Snapshot>& snapshot) {
  write_snapshot(*snapshot, 0);
  memory_.compact(snapshot);
  drop_segments_up_to(snapshot->meta.index);
}

void WalStorage::write_snapshot(const raft::Snapshot& snap, std::uint64_t wal_from) {
  std::string bytes(kSnapshotMagic, 8);
  put_u64(bytes, wal_from);
  put_u64(bytes, snap.meta.index);
  put_u64(bytes, snap.meta.term);
  put_u64(bytes, snap.meta.config.voters.size());
  for (raft::NodeId id : snap.meta.config.voters) put_u64(bytes, id);
  put_u64(bytes, snap.meta.config.learners.size());
  for (raft::NodeId id : snap.meta.config.learners) put_u64(bytes, id);
  bytes += snap.data.view();
  put_u64(bytes, XXH3_64bits(bytes.data(), bytes.size()));
  fs::path dir = dir_ / "snap";
  fs::path final_name = dir / (hex16(snap.meta.index) + "-" + hex16(snap.meta.term) + ".snap");
  fs::path temp = dir / (final_name.filename().string() + ".tmp");
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno("create " + temp.string());
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw_errno("write " + temp.string());
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    throw_errno("fsync " + temp.string());
  }
  ::close(fd);
  fs::rename(temp, final_name);
  fsync_dir(dir);
  // Older snapshots are superseded once the new one is durable.
  for (const fs::path& old : sorted_files(dir, ".snap")) {
    if (old != final_name) fs::remove(old);
  }
}

void WalStorage::drop_segments_up_to(raft::Index index) {
  bool dropped = false;
  for (auto it = segment_last_index_.begin(); it != segment_last_index_.end();) {
    if (it->first == segment_seq_ || it->second > index) {
      ++it;
      continue;
    }
    fs::remove(dir_ / "wal" / (hex16(it->first) + ".wal"));
    it = segment_last_index_.erase(it);
    dropped = true;
  }
  if (dropped) fsync_dir(dir_ / "wal");
}

}  // namespace raftfl::storage
