#pragma once

#include <asio/io_context.hpp>

#include <functional>
#include <memory>
#include <stdexcept>

#include "raftfl/node/admin_server.hpp"
#include "raftfl/node/config.hpp"
#include "raftfl/node/message_router.hpp"
#include "raftfl/node/raft_driver.hpp"
#include "raftfl/node/replicated_state.hpp"

namespace raftfl::node {

// The roles a training node adds to the replica (the worker and the coordinator). Only
// the training executable can make them: it alone links LibTorch, so that a node that
// does not train, and every other command, starts in milliseconds with a small footprint.
class TrainingRoles {
 public:
  virtual ~TrainingRoles() = default;
  virtual void start() = 0;
  // Stops the round loop and the coordinator; the node stops after.
  virtual void stop() = 0;
};

// Builds the roles and registers them with the node's parts (the router, the state's
// control callback, the driver's leadership callback, the admin status); throws
// TrainingSetupError for missing or unusable training data, which the caller reports as
// bad configuration.
using TrainingRolesFactory =
    std::function<std::unique_ptr<TrainingRoles>(asio::io_context&, RaftDriver&, ReplicatedState&, MessageRouter&,
                                                 AdminServer&, const NodeConfig&)>;

class TrainingSetupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The factory of the training executable (library raftfl_worker, which links LibTorch).
std::unique_ptr<TrainingRoles> make_training_roles(asio::io_context& io, RaftDriver& node, ReplicatedState& state,
                                                   MessageRouter& router, AdminServer& admin, const NodeConfig& config);

}  // namespace raftfl::node
