#pragma once

#include <asio/io_context.hpp>

#include <map>
#include <memory>
#include <set>
#include <utility>

#include "raftfl/net/transport.hpp"

namespace raftfl::test {

class InProcessTransport;

// Nodes on one io_context that reach each other without sockets, so that a test runs a
// whole cluster in one process and can cut links at will. A message is copied when sent
// and delivered by a posted handler, never inside send(), as over a socket; a message to
// an endpoint that stopped, or over a cut link, is lost on the way.
// What a receive handler throws leaves the io_context's run() (no peer to blame here).
// The network outlives its transports and the io_context's last run.
class InProcessNetwork {
 public:
  explicit InProcessNetwork(asio::io_context& io) : io_(io) {}
  InProcessNetwork(const InProcessNetwork&) = delete;
  InProcessNetwork& operator=(const InProcessNetwork&) = delete;

  std::unique_ptr<net::Transport> transport(net::NodeId self);
  // Cuts (or mends) the link between a and b, both ways.
  void cut(net::NodeId a, net::NodeId b, bool cut = true);

 private:
  friend class InProcessTransport;
  InProcessTransport* reachable(net::NodeId from, net::NodeId to) const;
  void deliver(net::NodeId from, net::NodeId to, std::shared_ptr<const kj::Array<capnp::word>> words);

  asio::io_context& io_;
  std::map<net::NodeId, InProcessTransport*> started_;
  std::set<std::pair<net::NodeId, net::NodeId>> cut_;
};

}  // namespace raftfl::test
