#include "in_process_transport.hpp"

#include <asio/post.hpp>
#include <capnp/serialize.h>

#include <optional>
#include <set>

namespace raftfl::test {

class InProcessTransport final : public net::Transport {
 public:
  InProcessTransport(InProcessNetwork& network, net::NodeId self) : network_(network), self_(self) {}
  ~InProcessTransport() override { stop(); }

  void start(ReceiveHandler handler) override {
    handler_ = std::move(handler);
    network_.started_[self_] = this;
  }

  // Every node of the network is reachable until the driver names its peers; then only those.
  void set_peers(const std::vector<net::PeerEndpoint>& peers) override {
    peers_.emplace();
    for (const auto& p : peers) peers_->insert(p.id);
  }

  bool send(net::NodeId to, std::unique_ptr<capnp::MessageBuilder> message) override {
    if (network_.started_.count(self_) == 0 || !network_.reachable(self_, to) || (peers_ && !peers_->contains(to))) {
      ++stats_.sends_refused;
      return false;
    }
    auto words = std::make_shared<const kj::Array<capnp::word>>(capnp::messageToFlatArray(*message));
    ++stats_.frames_sent;
    stats_.bytes_sent += words->size() * sizeof(capnp::word);
    network_.deliver(self_, to, std::move(words));
    return true;
  }

  void stop() override {
    const auto it = network_.started_.find(self_);
    if (it != network_.started_.end() && it->second == this) network_.started_.erase(it);
  }

  std::uint16_t listen_port() const override { return 0; }
  bool connected(net::NodeId peer) const override {
    return network_.started_.count(self_) != 0 && network_.reachable(self_, peer) != nullptr;
  }
  net::TransportStats stats() const override { return stats_; }

  void receive(net::NodeId from, const kj::Array<capnp::word>& words) {
    ++stats_.frames_received;
    stats_.bytes_received += words.size() * sizeof(capnp::word);
    capnp::FlatArrayMessageReader reader(words.asPtr());
    handler_(from, reader);
  }

 private:
  InProcessNetwork& network_;
  net::NodeId self_;
  std::optional<std::set<net::NodeId>> peers_;
  ReceiveHandler handler_;
  net::TransportStats stats_;
};

std::unique_ptr<net::Transport> InProcessNetwork::transport(net::NodeId self) {
  return std::make_unique<InProcessTransport>(*this, self);
}

void InProcessNetwork::cut(net::NodeId a, net::NodeId b, bool cut) {
  for (const auto& link : {std::pair{a, b}, std::pair{b, a}}) {
    if (cut)
      cut_.insert(link);
    else
      cut_.erase(link);
  }
}

InProcessTransport* InProcessNetwork::reachable(net::NodeId from, net::NodeId to) const {
  if (cut_.count({from, to}) != 0) return nullptr;
  const auto it = started_.find(to);
  return it == started_.end() ? nullptr : it->second;
}

void InProcessNetwork::deliver(net::NodeId from, net::NodeId to, std::shared_ptr<const kj::Array<capnp::word>> words) {
  asio::post(io_, [this, from, to, words = std::move(words)] {
    // Looked up on arrival: the receiver may have stopped, or the link been cut, since.
    if (auto* receiver = reachable(from, to)) receiver->receive(from, *words);
  });
}

}  // namespace raftfl::test
