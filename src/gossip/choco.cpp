#include "raftfl/gossip/choco.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace raftfl::gossip {

ChocoGossip::ChocoGossip(CoordinatePlan plan, ChocoOptions options, std::vector<float> origin)
    : plan_(std::move(plan)), options_(options), origin_(std::move(origin)) {
  if (origin_.empty()) origin_.assign(plan_.size(), 0.0F);
  if (origin_.size() != plan_.size()) throw std::invalid_argument("ChocoGossip: origin of the wrong size");
  if (!(options_.gamma > 0 && options_.gamma <= 1)) throw std::invalid_argument("ChocoGossip: gamma outside (0, 1]");
  options_.max_links = std::max<std::size_t>(options_.max_links, 1);
}

void ChocoGossip::reset(Link& link) const {
  link.version = 0;
  link.self_copy = origin_;
  link.peer_copy = origin_;
}

ChocoGossip::Link& ChocoGossip::touch(std::uint64_t peer) {
  auto it = links_.find(peer);
  if (it == links_.end()) {
    if (links_.size() >= options_.max_links) {
      const auto oldest = std::min_element(links_.begin(), links_.end(), [](const auto& a, const auto& b) {
        return a.second.last_used < b.second.last_used;
      });
      links_.erase(oldest);
    }
    it = links_.emplace(peer, Link{}).first;
    reset(it->second);
  }
  it->second.last_used = ++clock_;
  return it->second;
}

const ChocoGossip::Link* ChocoGossip::link(std::uint64_t peer) const {
  const auto it = links_.find(peer);
  return it == links_.end() ? nullptr : &it->second;
}

ChocoUpdate ChocoGossip::prepare(std::uint64_t peer, std::span<const float> x, std::uint64_t mask_seed) {
  if (x.size() != plan_.size()) throw std::invalid_argument("ChocoGossip::prepare: model of the wrong size");
  Link& link = touch(peer);
  ChocoUpdate out;
  out.version = link.version;
  if (options_.top_k) {
    difference_.resize(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) difference_[i] = x[i] - link.self_copy[i];
    out.indices = plan_.top_k(difference_, options_.density);
  } else {
    out.indices = plan_.random_k(options_.density, mask_seed);
  }
  out.values.reserve(out.indices.size());
  for (const auto i : out.indices) out.values.push_back(x[i] - link.self_copy[i]);
  return out;
}

namespace {

void add_at(std::vector<float>& copy, const ChocoUpdate& u) {
  if (u.indices.size() != u.values.size()) throw std::invalid_argument("ChocoGossip: indices and values differ in count");
  for (std::size_t k = 0; k < u.indices.size(); ++k) {
    if (u.indices[k] >= copy.size())
      throw std::invalid_argument("ChocoGossip: index " + std::to_string(u.indices[k]) + " out of range");
  }
  for (std::size_t k = 0; k < u.indices.size(); ++k) copy[u.indices[k]] += u.values[k];
}

}  // namespace

ChocoGossip::Outcome ChocoGossip::absorb(std::uint64_t peer, std::span<float> x, const ChocoUpdate& sent,
                                         const ChocoUpdate& received) {
  if (x.size() != plan_.size()) throw std::invalid_argument("ChocoGossip::absorb: model of the wrong size");
  Link& link = touch(peer);
  if (sent.version != link.version || received.version != link.version) {
    reset(link);
    ++resets_;
    return Outcome::kReset;
  }
  add_at(link.self_copy, sent);
  add_at(link.peer_copy, received);
  ++link.version;
  // The peer computes (self - peer) where we compute (peer - self): the same magnitude,
  // the opposite sign, bit for bit, so the pair's sum moves only by the rounding of x's
  // own additions.
  const float step = static_cast<float>(options_.gamma / 2);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] += step * (link.peer_copy[i] - link.self_copy[i]);
  return Outcome::kApplied;
}

}  // namespace raftfl::gossip
