#pragma once

// A TCP proxy on loopback that forwards every connection it accepts to one port and keeps
// a copy of the bytes that went each way: what a capture of a node's Raft port would hold.
// Peers are configured to reach a node through its proxy.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace raftfl::app::testing {

class RecordingProxy {
 public:
  // Listens at once (127.0.0.1, a free port); forwards nothing until `forward_to`.
  // Each direction's copy stops growing at `record_limit` bytes; forwarding goes on.
  explicit RecordingProxy(std::size_t record_limit = 8 << 20);
  ~RecordingProxy();
  RecordingProxy(const RecordingProxy&) = delete;
  RecordingProxy& operator=(const RecordingProxy&) = delete;

  std::uint16_t port() const { return port_; }
  // Starts accepting; connections go to 127.0.0.1:`target`.
  void forward_to(std::uint16_t target);
  struct Recording {
    std::string to_target;    // what the dialer sent
    std::string from_target;  // what the target answered
  };
  // Each connection accepted so far, in accept order.
  std::vector<Recording> recordings() const;

 private:
  struct Link;
  void accept_loop();
  void pump(const std::shared_ptr<Link>& link);

  std::size_t record_limit_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::uint16_t target_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<Link>> links_;
  std::thread acceptor_;
  std::vector<std::thread> pumps_;  // one per connection; added under mutex_ by the acceptor
};

}  // namespace raftfl::app::testing
