#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "raftfl/gossip/sparse_vector.hpp"

namespace raftfl::gossip {

// Top-k sparsification with error feedback over a flat buffer of n floats.
//
// What is compressed: the local update since the previous call (the model after this
// round's local steps minus the model at the previous call), not the model itself. The
// residual then holds the update mass that was selected but never sent; it is added back
// before the next selection, so a coordinate that keeps moving a little is eventually sent
// instead of being starved. If the caller feeds every change of the model (local steps and
// averaging alike), the residual equals x - x_hat of CHOCO-SGD, x_hat being the sum of
// everything sent.
//
// For the pairwise average of a round (x_i <- (x_i + x_j) / 2) the peer needs model values,
// not update mass: the exchange sends gather(model, result.indices) together with the
// indices, and result.values serves accounting and CHOCO-style consumers.
//
// Accounting is exact per coordinate: acc = residual + input is computed once in float;
// coordinates sent carry acc and their residual becomes 0, the others keep acc. So
// sent + residual_after == residual_before + input bit for bit, with nothing lost or counted
// twice.
class TopKCompressor {
 public:
  explicit TopKCompressor(std::size_t n);

  // Selects the k_for_density(n, density) largest |residual + input| (ties to the lower
  // index; NaN counts as the largest so that a broken update is sent and seen rather than
  // hidden in the residual). Partial selection with std::nth_element: O(n) expected.
  // Result indices are sorted ascending. Throws std::invalid_argument if input.size() != n
  // or density is outside [0, 1].
  SparseVector compress(std::span<const float> input, double density);

  std::span<const float> residual() const { return residual_; }
  std::size_t size() const { return residual_.size(); }
  void reset();

 private:
  std::vector<float> residual_;
  // Reused across calls: 4 bytes per coordinate would otherwise be allocated every round.
  std::vector<std::uint32_t> order_;
};

// Positions of the k values of largest magnitude (ties to the lower position; NaN ranks
// as the largest), ascending. Partial selection with std::nth_element: O(n) expected.
// `scratch` is reused across calls (4 bytes per value).
std::vector<std::uint32_t> largest_magnitudes(std::span<const float> values, std::size_t k,
                                              std::vector<std::uint32_t>& scratch);

// The dense baseline as a SparseVector: every coordinate, in order.
SparseVector dense(std::span<const float> values);

}  // namespace raftfl::gossip
