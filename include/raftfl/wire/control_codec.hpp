#pragma once

// Control log entries and control snapshots as Cap'n Proto (schemas/control.capnp).
//
// A control entry's payload is an 8-byte tag followed by the message's flat words, so that
// it cannot be mistaken for any other payload in the same log (the operator key/value
// commands, benchmark payloads) and the words stay 8-byte aligned after the tag.

#include <optional>
#include <string>
#include <string_view>

#include "raftfl/control/control_state.hpp"
#include "raftfl/wire/raft_codec.hpp"

namespace raftfl::wire {

inline constexpr std::string_view kControlEntryTag{"RFLCTL\x01\x00", 8};

std::string encode_control_command(const control::Command& command);
bool is_control_payload(std::string_view payload);
// nullopt when the payload is not a control entry (no tag); throws DecodeError when it has
// the tag but the rest is malformed (unknown union member, a field out of range).
std::optional<control::Command> decode_control_command(std::string_view payload);

std::string encode_control_snapshot(const control::ControlData& data);
// Throws DecodeError on anything malformed.
control::ControlData decode_control_snapshot(std::string_view bytes);

}  // namespace raftfl::wire
