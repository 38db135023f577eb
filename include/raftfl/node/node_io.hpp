#pragma once

#include <asio/io_context.hpp>

#include <memory>

#include "raftfl/net/transport.hpp"
#include "raftfl/node/config.hpp"
#include "raftfl/storage/storage.hpp"

namespace raftfl::node {

// The storage and the transport a node's configuration asks for, made apart from the
// driver so that tests can hand it others (memory storage, an in-process transport).
std::unique_ptr<storage::Storage> open_storage(const NodeConfig& config);
std::unique_ptr<net::Transport> make_transport(asio::io_context& io, const NodeConfig& config);

}  // namespace raftfl::node
