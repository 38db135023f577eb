#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

#include "raftfl/node/config.hpp"

namespace raftfl::app {

class AdminError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One request line to a node's admin endpoint, one reply line back. Blocking, with a
// deadline, for the command-line tools and the benchmark orchestrator (never on a reactor).
class AdminClient {
 public:
  AdminClient(const node::Endpoint& endpoint, std::chrono::milliseconds timeout);
  ~AdminClient();
  AdminClient(const AdminClient&) = delete;
  AdminClient& operator=(const AdminClient&) = delete;

  std::string request(const std::string& line, std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  std::string where_;
  std::string buffer_;
};

// Connects, sends, reads one reply; throws AdminError naming the endpoint.
std::string admin_request(const node::Endpoint& endpoint, const std::string& line,
                          std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace raftfl::app
