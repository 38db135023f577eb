#include "raftfl/node/snapshot_receiver.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <system_error>

#include "raftfl/common/durable_file.hpp"

namespace raftfl::node {
namespace {

// The partial snapshot and, beside it, which snapshot it is part of.
constexpr const char* kDataFile = "snapshot.incoming";
constexpr const char* kIdFile = "snapshot.incoming.id";

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path) {
  throw std::system_error(errno, std::generic_category(), what + " " + path.string());
}

bool same_snapshot(const SnapshotReceiver::Incoming& in, const wire::SnapshotChunk& c) {
  return in.index == c.meta.index && in.term == c.meta.term && in.total_bytes == c.total_bytes &&
         in.checksum == c.checksum;
}

}  // namespace

SnapshotReceiver::SnapshotReceiver(std::filesystem::path dir) : dir_(std::move(dir)) {
  if (dir_.empty()) return;
  std::ifstream id(dir_ / kIdFile);
  Incoming in;
  if (!(id >> in.index >> in.term >> in.total_bytes >> in.checksum)) return;
  std::error_code ec;
  const auto size = std::filesystem::file_size(dir_ / kDataFile, ec);
  if (ec) return;
  in.held = std::min<std::uint64_t>(size, in.total_bytes);
  fd_ = ::open((dir_ / kDataFile).c_str(), O_WRONLY | O_CLOEXEC);
  if (fd_ < 0) fail("cannot open", dir_ / kDataFile);
  incoming_ = in;
  picked_up_ = in.held > 0;
}

SnapshotReceiver::~SnapshotReceiver() { close_file(); }

void SnapshotReceiver::close_file() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void SnapshotReceiver::begin(const wire::SnapshotChunk& c) {
  incoming_ = Incoming{c.meta.index, c.meta.term, c.total_bytes, c.checksum, 0};
  if (dir_.empty()) {
    memory_.clear();
    return;
  }
  close_file();
  fd_ = ::open((dir_ / kDataFile).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0) fail("cannot create", dir_ / kDataFile);
  // Named after the data is emptied: an id that names a file of other bytes would be
  // caught by the checksum, but only after the whole transfer.
  std::ostringstream id;
  id << c.meta.index << ' ' << c.meta.term << ' ' << c.total_bytes << ' ' << c.checksum << '\n';
  common::replace_file_durably(dir_ / kIdFile, id.str());
}

void SnapshotReceiver::append(std::string_view bytes) {
  if (dir_.empty()) {
    memory_.append(bytes);
  } else {
    auto at = static_cast<off_t>(incoming_->held);
    while (!bytes.empty()) {
      const auto n = ::pwrite(fd_, bytes.data(), bytes.size(), at);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("cannot write", dir_ / kDataFile);
      bytes.remove_prefix(static_cast<std::size_t>(n));
      at += n;
    }
  }
}

std::string SnapshotReceiver::read_all() {
  if (dir_.empty()) return std::move(memory_);
  std::string out(incoming_->total_bytes, '\0');
  const int fd = ::open((dir_ / kDataFile).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open", dir_ / kDataFile);
  std::size_t got = 0;
  while (got < out.size()) {
    const auto n = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      if (n == 0) errno = EIO;  // shorter than it was when written: someone else's doing
      fail("cannot read", dir_ / kDataFile);
    }
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return out;
}

void SnapshotReceiver::discard() {
  incoming_.reset();
  memory_.clear();
  close_file();
  if (dir_.empty()) return;
  std::error_code ec;
  std::filesystem::remove(dir_ / kIdFile, ec);
  std::filesystem::remove(dir_ / kDataFile, ec);
}

wire::SnapshotChunk snapshot_acknowledgement(const wire::SnapshotChunk& piece, std::uint64_t held) {
  wire::SnapshotChunk ack;
  ack.meta.index = piece.meta.index;
  ack.meta.term = piece.meta.term;
  ack.total_bytes = piece.total_bytes;
  ack.checksum = piece.checksum;
  ack.offset = held;
  ack.ack = true;
  return ack;
}

SnapshotReceiver::Outcome SnapshotReceiver::receive(const wire::SnapshotChunk& c) {
  Outcome out;
  if (!incoming_ || !same_snapshot(*incoming_, c)) {
    begin(c);
  } else if (picked_up_ || (c.data.empty() && c.offset == 0 && incoming_->held > 0)) {
    out.resumed = true;
    ++stats_.resumed;
  }
  picked_up_ = false;
  Incoming& in = *incoming_;
  // Pieces arrive in order on one connection; after a reconnect the sender resends from
  // what we acknowledged, so a piece may overlap what is here (its new part is taken) or
  // start past it (dropped: the acknowledgement tells the sender where to go back to).
  if (!c.data.empty() && c.offset <= in.held && c.offset + c.data.size() > in.held) {
    const auto fresh = c.data.substr(in.held - c.offset);
    append(fresh);
    in.held += fresh.size();
    stats_.bytes_received += fresh.size();
  }
  out.held = in.held;
  if (in.held < in.total_bytes) return out;

  const auto meta = c.meta;
  const auto checksum = in.checksum;
  std::string data = read_all();
  if (XXH3_64bits(data.data(), data.size()) != checksum) {
    ++stats_.damaged;
    discard();
    begin(c);
    out.held = 0;
    return out;
  }
  auto snap = std::make_shared<raft::Snapshot>();
  snap->meta = meta;
  snap->data = raft::Payload(std::move(data));
  out.snapshot = std::move(snap);
  ++stats_.completed;
  discard();
  return out;
}

}  // namespace raftfl::node
