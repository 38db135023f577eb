#include "raftfl/gossip/exchange.hpp"

#include <algorithm>

#include "raftfl/gossip/averaging.hpp"
#include "raftfl/gossip/mask.hpp"

namespace raftfl::gossip {

std::string_view to_string(Sparsifier sparsifier) {
  switch (sparsifier) {
    case Sparsifier::kRandomK:
      return "random-k";
    case Sparsifier::kTopK:
      return "top-k";
    case Sparsifier::kDense:
      return "dense";
  }
  return "?";
}

std::optional<Sparsifier> parse_sparsifier(std::string_view name) {
  if (name == "random-k") return Sparsifier::kRandomK;
  if (name == "top-k") return Sparsifier::kTopK;
  if (name == "dense") return Sparsifier::kDense;
  return std::nullopt;
}

std::vector<std::pair<std::size_t, std::size_t>> OutgoingModel::chunks(std::size_t chunk_values) const {
  const std::size_t total = value_count();
  const std::size_t step = std::max<std::size_t>(chunk_values, 1);
  std::vector<std::pair<std::size_t, std::size_t>> out;
  if (total == 0) out.emplace_back(0, 0);
  for (std::size_t first = 0; first < total; first += step) out.emplace_back(first, std::min(step, total - first));
  return out;
}

std::size_t OutgoingModel::payload_bytes() const {
  return encoded_values.size() + (indices_travel() ? indices.size() * sizeof(std::uint32_t) : 0);
}

void IncomingModel::add(const ChunkHeader& h, std::span<const std::byte> values, std::span<const std::uint32_t> indices,
                        std::uint64_t expected_round, const ExchangeSpec& spec, std::uint64_t parameter_count) {
  const auto fail = [&](const std::string& why) {
    throw ExchangeError("round " + std::to_string(h.round) + " chunk at " + std::to_string(h.offset) + ": " + why);
  };
  if (h.round != expected_round) fail("expected round " + std::to_string(expected_round));
  if (h.parameter_count != parameter_count)
    fail("peer's model has " + std::to_string(h.parameter_count) + " parameters, ours " +
         std::to_string(parameter_count));
  if (h.sparsifier != spec.sparsifier)
    fail(std::string("peer uses ") + std::string(to_string(h.sparsifier)) + ", we use " +
         std::string(to_string(spec.sparsifier)));
  if (h.encoding != spec.encoding) fail("peer encodes values differently");
  if (h.total_values > parameter_count) fail("more values than parameters");
  const std::size_t width = bytes_per_value(h.encoding);
  if (values.size() % width != 0) fail("values are not whole");
  const std::uint64_t count = values.size() / width;
  if (started_ && h.total_values != total_) fail("total changed between chunks");
  if (h.offset > h.total_values || count > h.total_values - h.offset) fail("range past the total");
  const bool with_indices = h.sparsifier == Sparsifier::kTopK;
  if (with_indices ? indices.size() != count : !indices.empty()) fail("index count does not match the values");
  for (const auto i : indices)
    if (i >= parameter_count) fail("index " + std::to_string(i) + " out of range");
  if (count > 0) {
    auto next = ranges_.lower_bound(h.offset);
    if (next != ranges_.end() && next->first < h.offset + count) fail("overlaps an earlier chunk");
    if (next != ranges_.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second > h.offset) fail("overlaps an earlier chunk");
    }
  }
  if (!started_) {
    started_ = true;
    total_ = h.total_values;
    values_.assign(total_, 0.0F);
    if (with_indices) indices_.assign(total_, 0);
  }
  if (count == 0) return;
  ranges_.emplace(h.offset, count);
  const auto decoded = decode_values(values, h.encoding);
  std::copy(decoded.begin(), decoded.end(), values_.begin() + static_cast<std::ptrdiff_t>(h.offset));
  if (with_indices) std::copy(indices.begin(), indices.end(), indices_.begin() + static_cast<std::ptrdiff_t>(h.offset));
  received_ += count;
  bytes_ += values.size() + indices.size_bytes();
}

ModelExchanger::ModelExchanger(ExchangeSpec spec, std::size_t parameter_count) : spec_(spec), n_(parameter_count) {
  if (spec_.sparsifier != Sparsifier::kDense) (void)k_for_density(n_, spec_.density);  // validates the density
  if (spec_.sparsifier == Sparsifier::kTopK) top_k_.emplace(n_);
}

OutgoingModel ModelExchanger::prepare(std::span<const float> params, std::uint64_t round, std::uint64_t mask_seed) {
  if (params.size() != n_)
    throw std::invalid_argument("ModelExchanger::prepare: " + std::to_string(params.size()) + " parameters, expected " +
                                std::to_string(n_));
  OutgoingModel out;
  out.header.round = round;
  out.header.sparsifier = spec_.sparsifier;
  out.header.encoding = spec_.encoding;
  out.header.parameter_count = n_;
  switch (spec_.sparsifier) {
    case Sparsifier::kRandomK:
      out.indices = random_k_indices(n_, spec_.density, mask_seed);
      break;
    case Sparsifier::kDense:
      out.indices = all_indices(n_);
      break;
    case Sparsifier::kTopK: {
      // The compressed input is the change since the previous call, local steps and
      // averaging alike, so the residual is exactly what was never sent (top_k.hpp).
      if (last_prepared_.empty()) last_prepared_.assign(params.begin(), params.end());
      std::vector<float> change(n_);
      for (std::size_t i = 0; i < n_; ++i) change[i] = params[i] - last_prepared_[i];
      out.indices = top_k_->compress(change, spec_.density).indices;
      last_prepared_.assign(params.begin(), params.end());
      break;
    }
  }
  out.header.total_values = out.indices.size();
  if (spec_.sparsifier == Sparsifier::kDense) {
    out.encoded_values = encode_values(params, spec_.encoding);
  } else {
    out.encoded_values = encode_values(gather(params, out.indices), spec_.encoding);
  }
  return out;
}

void ModelExchanger::absorb(std::span<float> params, const OutgoingModel& mine, const IncomingModel& peer) const {
  if (!peer.complete()) throw ExchangeError("the peer's model is incomplete");
  if (params.size() != n_) throw ExchangeError("parameter count changed");
  switch (spec_.sparsifier) {
    case Sparsifier::kDense:
      if (peer.values().size() != n_) throw ExchangeError("dense model of the wrong size");
      average_dense(params, peer.values());
      return;
    case Sparsifier::kRandomK:
      if (peer.values().size() != mine.indices.size())
        throw ExchangeError("peer sent " + std::to_string(peer.values().size()) + " values for a mask of " +
                            std::to_string(mine.indices.size()) + " (different density?)");
      average_at(params, mine.indices, peer.values());
      return;
    case Sparsifier::kTopK:
      average_at(params, peer.indices(), peer.values());
      return;
  }
}

void average_all(std::span<float> params, const std::vector<const IncomingModel*>& received) {
  for (const auto* m : received) {
    if (!m->complete() || m->values().size() != params.size())
      throw ExchangeError("all-reduce needs complete dense models of " + std::to_string(params.size()) + " values");
  }
  // Summed in double so that the mean does not depend on the order the models came in
  // more than double rounding does.
  const double scale = 1.0 / static_cast<double>(received.size() + 1);
  for (std::size_t i = 0; i < params.size(); ++i) {
    double sum = params[i];
    for (const auto* m : received) sum += m->values()[i];
    params[i] = static_cast<float>(sum * scale);
  }
}

}  // namespace raftfl::gossip
