#include "raftfl/storage/wal_storage.hpp"

#include <fcntl.h>
#include <liburing.h>
#include <sys/uio.h>
#include <unistd.h>
// For XXH3_state_t on the stack; the header and the library come from one package.
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <string_view>
#include <system_error>
#include <vector>

#include "raftfl/common/durable_file.hpp"
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
constexpr std::size_t kEntryFixedBytes = 17;  // index, term, type: the body before the payload
constexpr std::uint32_t kMaxRecordBody = 1u << 30;
// Payloads below this are copied next to their record's header: a copy that small costs
// less than another iovec, and it keeps a Ready of many small entries within one writev.
constexpr std::size_t kPackPayloadBelow = 512;
// A save() needs one writev per IOV_MAX pieces plus the fsync; more than this many in one
// save() go through the ring in several rounds.
constexpr unsigned kRingEntries = 16;
// Version 2 adds the members' contexts after the learners; version 1 files still load.
constexpr char kSnapshotMagic[8] = {'r', 'f', 'l', 's', 'n', 'a', 'p', '2'};
constexpr char kSnapshotMagicV1[8] = {'r', 'f', 'l', 's', 'n', 'a', 'p', '1'};

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

std::string hard_state_body(const raft::HardState& hs) {
  std::string body;
  put_u64(body, hs.term);
  put_u64(body, hs.vote);
  put_u64(body, hs.commit);
  return body;
}

[[noreturn]] void throw_errno(const std::string& what) { throw std::system_error(errno, std::generic_category(), what); }

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::system_error(errno, std::generic_category(), "open " + file.string());
  // One read of the whole file: recovery reads up to a segment's worth, and a byte-wise
  // stream iterator costs more than the checksums.
  std::string bytes(fs::file_size(file), '\0');
  // libstdc++ hands a failed read(2)'s errno only to an exception, thrown only with badbit
  // among the stream's exceptions; otherwise the stream just goes bad and the errno is lost.
  in.exceptions(std::ios::badbit);
  try {
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  } catch (const std::ios_base::failure& e) {
    throw std::system_error(e.code(), "read " + file.string());
  }
  if (static_cast<std::size_t>(in.gcount()) != bytes.size())
    throw std::system_error(EIO, std::generic_category(), "read " + file.string());
  return bytes;
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

// The next segment starts right after recovery, and a torn tail is only forgiven in the
// newest one: the cut must be durable before that, or a crash would turn the old tail into
// damage in the middle of the log.
void truncate_durably(const fs::path& file, std::size_t size) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + file.string());
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0 || ::fsync(fd) != 0) {
    int error = errno;
    ::close(fd);
    throw std::system_error(error, std::generic_category(), "cut the torn tail of " + file.string());
  }
  ::close(fd);
}

enum class Frame {
  kGood,
  kTorn,         // the file ends inside the record
  kBadHeader,    // the length fails its check: where the record ends is unknown
  kBadChecksum,  // the header checks out, the kind and body do not
};
struct Framed {
  Frame frame;
  std::uint32_t length;
  std::size_t end;  // one past the record, when the header checks out
};

Framed frame_at(std::string_view bytes, std::size_t at) {
  if (bytes.size() - at < kHeaderBytes) return {Frame::kTorn, 0, 0};
  const char* p = bytes.data() + at;
  std::uint32_t length = get_u32(p);
  if (get_u32(p + 4) != length_check(p) || length > kMaxRecordBody) return {Frame::kBadHeader, 0, 0};
  std::size_t end = at + kHeaderBytes + length + kChecksumBytes;
  if (end > bytes.size()) return {Frame::kTorn, length, end};
  if (get_u64(bytes.data() + end - 8) != XXH3_64bits(p + 8, 1 + length)) return {Frame::kBadChecksum, length, end};
  return {Frame::kGood, length, end};
}

// Whether a record that checks out starts anywhere at or after `from`: this is what tells
// damage in the middle of the log from a torn tail, whatever the damage did to lengths.
// Every header has a non-zero byte among its first eight (a zero length has a non-zero
// check), so zero runs, such as a tail the file system extended but never wrote, are
// skipped without hashing.
bool good_record_from(std::string_view bytes, std::size_t from) {
  std::size_t p = from;
  while (p + kHeaderBytes + kChecksumBytes <= bytes.size()) {
    std::size_t nonzero = bytes.find_first_not_of('\0', p);
    if (nonzero == std::string_view::npos) return false;
    if (nonzero >= p + 8) {
      p = nonzero - 7;
      continue;
    }
    if (frame_at(bytes, p).frame == Frame::kGood) return true;
    ++p;
  }
  return false;
}

// Drops the first `n` bytes of iov[first...]: `first` moves past the iovecs written whole.
void consume(std::vector<iovec>& iov, std::size_t& first, std::size_t n) {
  while (n > 0) {
    iovec& v = iov[first];
    if (n < v.iov_len) {
      v.iov_base = static_cast<char*>(v.iov_base) + n;
      v.iov_len -= n;
      return;
    }
    n -= v.iov_len;
    ++first;
  }
}

void pwrite_durably(int fd, const fs::path& file, std::uint64_t offset, std::vector<iovec>& iov) {
  std::size_t first = 0;
  while (first < iov.size()) {
    int count = static_cast<int>(std::min<std::size_t>(iov.size() - first, IOV_MAX));
    ssize_t n = ::pwritev(fd, &iov[first], count, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("write " + file.string());
    if (n == 0) throw std::system_error(EIO, std::generic_category(), "write " + file.string() + " made no progress");
    consume(iov, first, static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  if (::fdatasync(fd) != 0) throw_errno("fdatasync " + file.string());
}

}  // namespace

// One save()'s records as one gathering write. Headers, the fixed part of entry bodies,
// checksums and small payloads are packed into one buffer; larger payloads (model updates)
// are written from where the entries hold them, never copied.
class WalStorage::RecordBatch {
 public:
  void add_entry(const raft::Entry& e) {
    std::string_view payload = e.data.view();
    if (payload.size() > kMaxRecordBody - kEntryFixedBytes) {
      // Recovery would take a longer record for a damaged one and refuse to start.
      throw std::length_error("entry " + std::to_string(e.index) + " is too large for the log");
    }
    auto body = static_cast<std::uint32_t>(kEntryFixedBytes + payload.size());
    std::size_t at = packed_.size();
    put_u32(packed_, body);
    put_u32(packed_, length_check(packed_.data() + at));
    packed_.push_back(static_cast<char>(kEntryRecord));
    put_u64(packed_, e.index);
    put_u64(packed_, e.term);
    packed_.push_back(static_cast<char>(e.type));
    XXH3_state_t state;
    XXH3_64bits_reset(&state);
    XXH3_64bits_update(&state, packed_.data() + at + 8, 1 + kEntryFixedBytes);
    XXH3_64bits_update(&state, payload.data(), payload.size());
    if (payload.size() < kPackPayloadBelow) {
      packed_ += payload;
    } else {
      end_packed_run();
      pieces_.push_back({payload.data(), 0, payload.size()});
    }
    put_u64(packed_, XXH3_64bits_digest(&state));
    bytes_ += kHeaderBytes + body + kChecksumBytes;
  }

  void add_hard_state(const raft::HardState& hs) {
    std::size_t at = packed_.size();
    put_record(packed_, kHardStateRecord, hard_state_body(hs));
    bytes_ += packed_.size() - at;
  }

  std::size_t bytes() const { return bytes_; }

  // Valid while this batch and the entries given to it live, and until it grows again.
  std::vector<iovec> iovecs() const {
    std::vector<iovec> out;
    out.reserve(pieces_.size() + 1);
    auto add = [&](const char* p, std::size_t n) {
      if (n > 0) out.push_back({const_cast<char*>(p), n});  // writev only reads them
    };
    for (const Piece& piece : pieces_) {
      add(piece.external ? piece.external : packed_.data() + piece.offset, piece.length);
    }
    add(packed_.data() + run_from_, packed_.size() - run_from_);
    return out;
  }

 private:
  // Bytes of `packed_` from `offset`, or `length` bytes at `external`.
  struct Piece {
    const char* external;
    std::size_t offset;
    std::size_t length;
  };

  void end_packed_run() {
    if (packed_.size() > run_from_) pieces_.push_back({nullptr, run_from_, packed_.size() - run_from_});
    run_from_ = packed_.size();
  }

  std::string packed_;
  std::size_t run_from_ = 0;  // where the packed bytes not yet in `pieces_` start
  std::vector<Piece> pieces_;
  std::size_t bytes_ = 0;
};

class WalStorage::Ring {
 public:
  // A kernel without io_uring, one that refuses it (sysctl kernel.io_uring_disabled,
  // seccomp, memlock limits on older kernels), or one whose io_uring lacks writev or fsync
  // (some sandboxes implement a subset) leaves the ring not ready: the log then uses
  // pwrite, which is just as durable.
  Ring() {
    if (const int r = io_uring_queue_init(kRingEntries, &ring_, 0); r != 0) {
      refusal_ = std::string("io_uring_queue_init: ") + std::strerror(-r);
      return;
    }
    initialised_ = true;
    // liburing keeps the probe's errno to itself.
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    ready_ = probe && io_uring_opcode_supported(probe, IORING_OP_WRITEV) &&
             io_uring_opcode_supported(probe, IORING_OP_FSYNC);
    if (!ready_) refusal_ = probe ? "no writev or fsync on this io_uring" : "io_uring's opcode probe failed";
    if (probe) io_uring_free_probe(probe);
  }
  ~Ring() {
    if (initialised_) io_uring_queue_exit(&ring_);
  }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  bool ready() const { return ready_; }
  // Why not ready: for the log.
  const std::string& refusal() const { return refusal_; }

  // Writes `iov` at `offset` of `fd` and returns once it is on disk. The writes and the
  // fdatasync go in as one linked chain: one system call and one wait per round, and the
  // barrier starts only after every write in front of it completed in full (the kernel
  // cancels the rest of a chain behind a short or failed write).
  void write_durably(int fd, const fs::path& file, std::uint64_t offset, std::vector<iovec>& iov) {
    std::size_t first = 0;
    for (;;) {
      std::array<std::size_t, kRingEntries> wanted{};
      std::array<int, kRingEntries> result{};
      unsigned writes = 0;
      std::size_t next = first;
      std::uint64_t at = offset;
      while (next < iov.size() && writes + 1 < kRingEntries) {
        std::size_t count = std::min<std::size_t>(iov.size() - next, IOV_MAX);
        std::size_t bytes = 0;
        for (std::size_t i = next; i < next + count; ++i) bytes += iov[i].iov_len;
        io_uring_sqe* sqe = next_sqe();
        io_uring_prep_writev(sqe, fd, &iov[next], static_cast<unsigned>(count), at);
        io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
        io_uring_sqe_set_data64(sqe, writes);
        wanted[writes++] = bytes;
        next += count;
        at += bytes;
      }
      bool barrier = next == iov.size();
      if (barrier) {
        io_uring_sqe* sqe = next_sqe();
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
        io_uring_sqe_set_data64(sqe, writes);
      } else {
        // More writes than one round holds: this round's chain ends without the barrier.
        io_uring_sqe_set_flags(last_sqe_, 0);
      }
      unsigned submitted = writes + (barrier ? 1 : 0);
      run(file, submitted, result);

      bool whole = true;  // every write of this round so far completed in full
      for (unsigned k = 0; k < writes && whole; ++k) {
        int res = result[k];
        if (res == -ECANCELED || res == -EINTR || res == -EAGAIN) {
          whole = false;  // written again from here next round
        } else if (res < 0) {
          throw std::system_error(-res, std::generic_category(), "write " + file.string());
        } else if (res == 0) {
          throw std::system_error(EIO, std::generic_category(), "write " + file.string() + " made no progress");
        } else {
          consume(iov, first, static_cast<std::size_t>(res));
          offset += static_cast<std::uint64_t>(res);
          whole = static_cast<std::size_t>(res) == wanted[k];
        }
      }
      if (!barrier || !whole) continue;
      int res = result[writes];
      if (res == 0) return;
      if (res != -EINTR && res != -EAGAIN && res != -ECANCELED) {
        throw std::system_error(-res, std::generic_category(), "fdatasync " + file.string());
      }
    }
  }

 private:
  io_uring_sqe* next_sqe() {
    // A round never holds more than kRingEntries, and each starts with an empty ring.
    last_sqe_ = io_uring_get_sqe(&ring_);
    if (!last_sqe_) throw std::logic_error("write-ahead log ring is full");
    return last_sqe_;
  }

  // Submits what is queued and collects `count` completions into `result` by user data.
  void run(const fs::path& file, unsigned count, std::array<int, kRingEntries>& result) {
    int r = io_uring_submit_and_wait(&ring_, count);
    // Interrupted before the kernel took everything: what it did take stays taken.
    while (r == -EINTR || (r >= 0 && io_uring_sq_ready(&ring_) > 0)) r = io_uring_submit(&ring_);
    if (r < 0) throw std::system_error(-r, std::generic_category(), "submit writes to " + file.string());
    for (unsigned i = 0; i < count; ++i) {
      io_uring_cqe* cqe = nullptr;
      int w;
      while ((w = io_uring_wait_cqe(&ring_, &cqe)) == -EINTR) {
      }
      if (w < 0) throw std::system_error(-w, std::generic_category(), "wait for writes to " + file.string());
      result[io_uring_cqe_get_data64(cqe)] = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
    }
  }

  io_uring ring_{};
  bool initialised_ = false;
  bool ready_ = false;
  std::string refusal_;
  io_uring_sqe* last_sqe_ = nullptr;
};

WalStorage::WalStorage(fs::path dir, Options options) : dir_(std::move(dir)), options_(options) {
  if (options_.io_uring) {
    auto ring = std::make_unique<Ring>();
    if (ring->ready()) ring_ = std::move(ring);
    else no_io_uring_ = ring->refusal();
  } else {
    no_io_uring_ = "turned off";
  }
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
    const bool v1 = bytes.size() >= 8 && std::memcmp(bytes.data(), kSnapshotMagicV1, 8) == 0;
    if (bytes.size() < 8 + 32 + kChecksumBytes || (!v1 && std::memcmp(bytes.data(), kSnapshotMagic, 8) != 0) ||
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
    if (!v1) {
      const auto truncated = [&] { return CorruptionError(file.string() + ": snapshot configuration is truncated"); };
      if (at + 8 + 8 > bytes.size()) throw truncated();
      const std::uint64_t contexts = get_u64(bytes.data() + at);
      at += 8;
      for (std::uint64_t i = 0; i < contexts; ++i) {
        if (at + 16 + 8 > bytes.size()) throw truncated();
        const raft::NodeId node = get_u64(bytes.data() + at);
        const std::uint64_t size = get_u64(bytes.data() + at + 8);
        at += 16;
        if (size > bytes.size() - 8 - at) throw truncated();
        snap->meta.config.contexts[node] = bytes.substr(at, size);
        at += size;
      }
    }
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
  // Every snapshot is written after the segment that continues it exists (start_segment()
  // before write_snapshot(), and compaction keeps the segment in use), so a snapshot with
  // no segment after it means the log was lost, not that a crash came in between. Starting
  // from the snapshot alone would forget the entries this node acknowledged and its vote.
  if (!snaps.empty() && segments.empty()) {
    throw CorruptionError((dir_ / "wal").string() + ": no log segment follows snapshot " + snaps.back().string() +
                          "; the log, with entries this node acknowledged and its vote, was lost. Refusing to start "
                          "(remove the data directory to start this node afresh)");
  }
  for (std::size_t i = 0; i < segments.size(); ++i) replay_segment(segments[i], i + 1 == segments.size());
}

void WalStorage::replay_segment(const fs::path& file, bool newest) {
  std::string bytes = read_file(file);
  std::uint64_t seq = std::stoull(file.stem().string(), nullptr, 16);
  raft::Index last_index = 0;
  std::size_t at = 0;
  while (at < bytes.size()) {
    std::size_t record_at = at;
    Framed framed = frame_at(bytes, at);
    if (framed.frame != Frame::kGood) {
      // Only the newest segment can end in a torn write (every earlier save was
      // fdatasynced before the next began), and a torn write leaves no good record behind
      // the bad one. A good record after it means an acknowledged write went bad.
      bool more_log = false;
      if (framed.frame == Frame::kBadChecksum) more_log = good_record_from(bytes, framed.end);
      if (framed.frame == Frame::kBadHeader) more_log = good_record_from(bytes, at + 1);
      if (!newest || more_log) {
        throw CorruptionError(file.string() + ": bad record at offset " + std::to_string(record_at) +
                              (newest ? " with good records after it" : " in a segment that newer ones follow") +
                              "; refusing to skip it");
      }
      torn_bytes_ += bytes.size() - record_at;
      truncate_durably(file, record_at);
      break;
    }
    std::uint32_t length = framed.length;
    std::size_t end = framed.end;
    const char* body = bytes.data() + at + kHeaderBytes;
    std::uint8_t kind = static_cast<std::uint8_t>(bytes[at + 8]);
    if (kind == kEntryRecord && length >= kEntryFixedBytes) {
      auto type = static_cast<std::uint8_t>(body[16]);
      if (type > static_cast<std::uint8_t>(raft::EntryType::kConfChange))
        throw CorruptionError(file.string() + ": unknown entry type at offset " + std::to_string(record_at));
      raft::Entry e{get_u64(body + 8), get_u64(body), static_cast<raft::EntryType>(type),
                    raft::Payload(std::string(body + kEntryFixedBytes, length - kEntryFixedBytes))};
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
  segment_path_ = file;
  common::sync_directory(dir_ / "wal");
  segment_size_ = 0;
  segment_last_index_[segment_seq_] = 0;
  // Every segment opens with the hard state, so older segments are never needed for it.
  RecordBatch batch;
  batch.add_hard_state(memory_.state().hard_state);
  append(batch);
}

void WalStorage::append(const RecordBatch& batch) {
  // Both paths write at explicit offsets: segment_size_ is the one file position there is.
  std::vector<iovec> iov = batch.iovecs();
  if (ring_) ring_->write_durably(fd_, segment_path_, segment_size_, iov);
  else pwrite_durably(fd_, segment_path_, segment_size_, iov);
  segment_size_ += batch.bytes();
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
  // Group commit: every entry and the hard state of this Ready, however many messages they
  // came from, share one write chain and one fdatasync. Splitting a Ready into several
  // saves would multiply the barriers, the dominant cost of a save.
  RecordBatch batch;
  for (const raft::Entry& e : entries) batch.add_entry(e);
  if (hard_state) batch.add_hard_state(*hard_state);
  append(batch);
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
  put_u64(bytes, snap.meta.config.contexts.size());
  for (const auto& [node, context] : snap.meta.config.contexts) {
    put_u64(bytes, node);
    put_u64(bytes, context.size());
    bytes += context;
  }
  bytes += snap.data.view();
  put_u64(bytes, XXH3_64bits(bytes.data(), bytes.size()));
  fs::path dir = dir_ / "snap";
  fs::path final_name = dir / (hex16(snap.meta.index) + "-" + hex16(snap.meta.term) + ".snap");
  common::replace_file_durably(final_name, bytes);
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
  if (dropped) common::sync_directory(dir_ / "wal");
}

}  // namespace raftfl::storage
