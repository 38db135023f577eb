#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "raftfl/control/control_state.hpp"
#include "raftfl/node/kv_state_machine.hpp"
#include "raftfl/raft/types.hpp"

namespace raftfl::node {

// What the log replicates: the operator's key/value map and the control log's state
// (docs/ARCHITECTURE.md, "The control log"), and the snapshot that holds both. Every
// node applies the same entries in the same order, so this holds no clock, no I/O and
// nothing of the node it runs on.
class ReplicatedState {
 public:
  // Applies one committed entry; a malformed control entry is skipped, the same way on
  // every node, so that the states stay equal.
  void apply(const raft::Entry& entry);
  // The snapshot frame: tag, the key/value part's length, the key/value part, the
  // control part.
  std::string snapshot() const;
  // Replaces the state with a snapshot's, taken at `index` (a frame from before the
  // control log holds the key/value map alone). Throws on a truncated frame.
  void restore(raft::Index index, std::string_view data);

  const KvStateMachine& kv() const { return kv_; }
  const control::ControlState& control() const { return control_; }
  raft::Index applied() const { return kv_.applied(); }

  // Called after each control entry is applied, and with a NoOp after a snapshot is
  // installed, on the reactor.
  using ControlCallback = std::function<void(const control::Command&, control::ApplyResult)>;
  void on_control_applied(ControlCallback callback) { control_callback_ = std::move(callback); }

 private:
  KvStateMachine kv_;
  control::ControlState control_;
  ControlCallback control_callback_;
};

}  // namespace raftfl::node
