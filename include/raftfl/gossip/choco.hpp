#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "raftfl/gossip/coordinate_plan.hpp"

namespace raftfl::gossip {

// CHOCO-Gossip (Koloskova, Stich, Jaggi 2019) for pairs that change every round.
//
// CHOCO sends compressed model differences instead of compressed models: each node keeps
// public copies x̂ that both ends of a link update identically with what was sent, sends
// C(x - x̂), and moves by the gossip step x += gamma/2 (x̂_peer - x̂_self). What a round
// leaves unsent stays in x - x̂ and goes out in a later round (error feedback for free),
// and the two moves of a pair are exact opposites, so the pair's sum is kept.
//
// Copies per link, not per node: SAPS pairs a node with a different peer most rounds, and
// a node's single public copy would then advance with updates only the round's peer saw.
// So each link (this node, a peer) has its own pair of copies: what the peer holds of us
// and what we hold of the peer, two model-sized buffers. At most `max_links` links are
// kept, the least recently used forgotten (a forgotten link starts again from the
// origin: it costs that link's accuracy of x̂, never correctness).
//
// A lost round: each end applies an exchange only when the peer's message arrived, so a
// message lost one way leaves the ends one exchange apart. Every message carries the
// number of exchanges its sender applied on the link (the version); an end that sees a
// version other than its own resets the link to the origin (both copies = the common
// starting model) and skips the gossip step, and so does the other end when it sees the
// mismatch. Equal versions imply equal copies: an end advances only from a version both
// ends held, with the messages of that one exchange.
struct ChocoOptions {
  bool top_k = false;     // else random-k over the round's shared seed (values only travel)
  double density = 0.01;  // of the compressible coordinates (CoordinatePlan)
  double gamma = 1.0;     // consensus step: 1 averages a pair completely once x̂ = x
  std::size_t max_links = 8;
};

// One direction of an exchange: what the sender compressed, as the receiver decodes it.
struct ChocoUpdate {
  std::uint64_t version = 0;
  std::vector<std::uint32_t> indices;  // ascending
  std::vector<float> values;
};

class ChocoGossip {
 public:
  // `origin`: the model every worker starts from (empty: zeros), where links begin and
  // where a reset puts them.
  ChocoGossip(CoordinatePlan plan, ChocoOptions options, std::vector<float> origin = {});

  // What to send `peer` this round: the coordinates of the plan (random-k from
  // `mask_seed`, or top-k of |x - x̂|) with x - x̂ there. Values are in fp32 here; the
  // caller may encode them more coarsely and must then hand absorb() the decoded ones.
  ChocoUpdate prepare(std::uint64_t peer, std::span<const float> x, std::uint64_t mask_seed);

  enum class Outcome { kApplied, kReset };
  // Both directions arrived (`sent` as the peer decoded it): updates the link's copies and
  // takes the gossip step on x; or, on a version mismatch, resets the link. Throws
  // std::invalid_argument for an update that does not fit the model.
  Outcome absorb(std::uint64_t peer, std::span<float> x, const ChocoUpdate& sent, const ChocoUpdate& received);

  struct Link {
    std::uint64_t version = 0;
    std::vector<float> self_copy;  // x̂ of this node, as the peer holds it
    std::vector<float> peer_copy;  // x̂ of the peer
    std::uint64_t last_used = 0;
  };
  const Link* link(std::uint64_t peer) const;
  std::size_t links() const { return links_.size(); }
  std::uint64_t resets() const { return resets_; }
  const CoordinatePlan& plan() const { return plan_; }

 private:
  Link& touch(std::uint64_t peer);
  void reset(Link& link) const;

  CoordinatePlan plan_;
  ChocoOptions options_;
  std::vector<float> origin_;
  std::map<std::uint64_t, Link> links_;
  std::uint64_t clock_ = 0;
  std::uint64_t resets_ = 0;
  std::vector<float> difference_;
};

}  // namespace raftfl::gossip
