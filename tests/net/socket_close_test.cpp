// Closing a socket while a read is in flight must complete that read (aborted) and no
// other. Asio before 1.27 on its io_uring backend submits the cancellation of a closed
// socket's operations without setting the submission's user data, so the cancellation's
// completion carries whatever an earlier submission in the same ring slot carried and
// completes that operation's queue: an operation of another (or a recycled) socket ends
// early with a result that is not its own, while its real submission is still in the
// kernel, which may later write into a buffer the program has freed. That is how a node
// crashed with heap corruption and logged "accept failed: No such file or directory" when
// connections were replaced quickly. The build puts sockets on epoll where Asio has the
// bug (cmake/Dependencies.cmake); this test fails on the io_uring backend of Asio 1.22.
#include <asio/io_context.hpp>
#include <asio/local/connect_pair.hpp>
#include <asio/local/stream_protocol.hpp>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <memory>
#include <vector>

namespace raftfl::net {
namespace {

using Socket = asio::local::stream_protocol::socket;

struct Probe {
  std::array<char, 8> buffer{};
  bool closed = false;
  bool completed = false;
};

TEST(SocketClose, ClosingSocketsWithReadsInFlightCompletesNoOtherRead) {
  asio::io_context io;
  // A read that nothing should ever complete: no data is sent, the socket stays open.
  Socket quiet(io), quiet_peer(io);
  asio::local::connect_pair(quiet, quiet_peer);
  std::array<char, 8> quiet_buffer{};
  bool quiet_completed = false;
  quiet.async_read_some(asio::buffer(quiet_buffer), [&](const asio::error_code&, std::size_t) { quiet_completed = true; });

  // Enough rounds that every slot of Asio's submission ring (16,384) is reused several times.
  constexpr int kRounds = 20000;
  int premature = 0, not_aborted = 0;
  std::vector<std::shared_ptr<Probe>> probes;
  probes.reserve(kRounds);
  for (int i = 0; i < kRounds; ++i) {
    Socket reader(io), writer(io);
    asio::local::connect_pair(reader, writer);
    auto probe = std::make_shared<Probe>();
    probes.push_back(probe);
    reader.async_read_some(asio::buffer(probe->buffer), [&, probe](const asio::error_code& ec, std::size_t) {
      probe->completed = true;
      if (!probe->closed) ++premature;
      else if (ec != asio::error::operation_aborted) ++not_aborted;
    });
    io.poll();  // the read is submitted
    probe->closed = true;
    reader.close();
    writer.close();
    io.poll();
  }
  // The kernel may still hold the last cancellations: let them come back.
  const auto all_completed = [&] {
    for (const auto& p : probes) {
      if (!p->completed) return false;
    }
    return true;
  };
  for (int i = 0; i < 200 && !all_completed(); ++i) io.run_for(std::chrono::milliseconds(10));
  EXPECT_EQ(premature, 0) << "reads of open sockets completed by another socket's close";
  EXPECT_EQ(not_aborted, 0);
  EXPECT_FALSE(quiet_completed) << "a read with no data and an open socket completed";
  int unfinished = 0;
  for (const auto& p : probes) unfinished += p->completed ? 0 : 1;
  EXPECT_EQ(unfinished, 0) << "reads of closed sockets never completed";
}

}  // namespace
}  // namespace raftfl::net
