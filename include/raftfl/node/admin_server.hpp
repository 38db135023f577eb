#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>

#include "raftfl/common/json_writer.hpp"
#include "raftfl/node/load_generator.hpp"
#include "raftfl/node/membership_commands.hpp"
#include "raftfl/node/raft_driver.hpp"

namespace raftfl::node {

// The admin endpoint: a line protocol on TCP, one command per line, one JSON object per
// reply line. Commands (README, "Admin endpoint"):
//   status                        the node's status
//   put KEY VALUE                 replicate a key/value write; replies once applied here
//   get KEY                       read this node's applied state (not linearizable)
//   topology ROUND                the round's committed plan as this node applied it
//   bench CLIENTS MILLIS BYTES    run the load generator here (on the leader)
//   autoload CLIENTS BYTES        background load whenever this node leads (0 stops)
//   join ..., member ...          membership (membership_commands.hpp)
class AdminServer {
 public:
  AdminServer(asio::io_context& io, RaftDriver& node, const Endpoint& listen);
  void start();
  void stop();
  std::uint16_t port() const { return port_; }
  // Adds fields to the status reply (the worker's and coordinator's sections).
  void extend_status(std::function<void(JsonWriter&)> extension) { status_extension_ = std::move(extension); }

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(std::shared_ptr<asio::ip::tcp::socket> socket);
  asio::awaitable<std::string> handle(const std::string& line);

  asio::io_context& io_;
  RaftDriver& node_;
  LoadGenerator load_;
  MembershipCommands membership_;
  asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  bool stopped_ = false;
  std::function<void(JsonWriter&)> status_extension_;
  // Open sessions, closed by stop() so that none outlives the node.
  std::list<std::weak_ptr<asio::ip::tcp::socket>> sessions_;
};

}  // namespace raftfl::node
