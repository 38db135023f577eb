#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace raftfl::raft {

using NodeId = std::uint64_t;
using Term = std::uint64_t;
using Index = std::uint64_t;

// Node ids start at 1: 0 means "nobody" in votes and leader hints.
inline constexpr NodeId kNoNode = 0;

// Immutable reference-counted bytes. An entry's payload is shared by the log, the Ready
// handed to the driver and every AppendEntries that carries it, so replicating an entry
// to N followers never copies its bytes.
class Payload {
 public:
  Payload() = default;
  explicit Payload(std::string bytes)
      : bytes_(std::make_shared<const std::string>(std::move(bytes))) {}

  std::string_view view() const { return bytes_ ? std::string_view(*bytes_) : std::string_view(); }
  std::size_t size() const { return bytes_ ? bytes_->size() : 0; }
  bool empty() const { return size() == 0; }

 private:
  std::shared_ptr<const std::string> bytes_;
};

enum class EntryType : std::uint8_t {
  kNoOp,        // a new leader's first entry (Raft paper section 8: commits earlier terms' entries)
  kNormal,      // application data
  kConfChange,  // a single-server membership change, encoded by encode_conf_change()
};

struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::kNormal;
  Payload data;
};

// The state Raft must persist before it answers (Figure 2, "Persistent state on all servers").
struct HardState {
  Term term = 0;
  NodeId vote = kNoNode;
  Index commit = 0;
  bool operator==(const HardState&) const = default;
};

// Thrown when the engine finds its own state broken: a bug, never an input error.
class InvariantViolation : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace raftfl::raft
