#include "raftfl/common/entropy.hpp"

#include <sys/random.h>

#include <cerrno>
#include <system_error>

namespace raftfl::common {

std::uint64_t random_seed() {
  std::uint64_t seed = 0;
  auto* out = reinterpret_cast<unsigned char*>(&seed);
  std::size_t got = 0;
  while (got < sizeof seed) {
    ssize_t n = ::getrandom(out + got, sizeof seed - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    got += static_cast<std::size_t>(n);
  }
  return seed;
}

}  // namespace raftfl::common
