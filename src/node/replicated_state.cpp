#include "raftfl/node/replicated_state.hpp"

#include <stdexcept>

#include "raftfl/common/log.hpp"
#include "raftfl/raft/little_endian.hpp"
#include "raftfl/wire/control_codec.hpp"

namespace raftfl::node {
namespace {

constexpr std::string_view kSnapshotTag{"RFLSNAP\x02", 8};

}  // namespace

void ReplicatedState::apply(const raft::Entry& e) {
  kv_.apply(e.index, e.type == raft::EntryType::kNormal ? e.data.view() : std::string_view());
  if (e.type != raft::EntryType::kNormal || !wire::is_control_payload(e.data.view())) return;
  try {
    const auto command = wire::decode_control_command(e.data.view());
    const auto result = control_.apply(*command);
    if (control_callback_) control_callback_(*command, result);
  } catch (const wire::DecodeError& error) {
    // A newer node's entry kind lands here too.
    log::line(log::Level::kWarn, "control",
              "entry " + std::to_string(e.index) + " skipped: " + std::string(error.what()));
  }
}

std::string ReplicatedState::snapshot() const {
  const std::string kv = kv_.snapshot();
  std::string out(kSnapshotTag);
  raft::put_le<std::uint64_t>(out, kv.size());
  out += kv;
  out += wire::encode_control_snapshot(control_.data());
  return out;
}

void ReplicatedState::restore(raft::Index index, std::string_view data) {
  if (data.substr(0, kSnapshotTag.size()) != kSnapshotTag) {
    kv_.restore(index, data);
    control_ = control::ControlState();
  } else {
    data.remove_prefix(kSnapshotTag.size());
    if (data.size() < 8) throw std::runtime_error("snapshot: truncated");
    const auto kv_size = raft::get_le<std::uint64_t>(data.data());
    data.remove_prefix(8);
    if (kv_size > data.size()) throw std::runtime_error("snapshot: truncated key/value part");
    kv_.restore(index, data.substr(0, kv_size));
    control_ = control::ControlState(wire::decode_control_snapshot(data.substr(kv_size)));
  }
  if (control_callback_) control_callback_(control::NoOp{}, control::ApplyResult::kApplied);
}

}  // namespace raftfl::node
