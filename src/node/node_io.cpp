#include "raftfl/node/node_io.hpp"

#include <string>

#include "raftfl/common/log.hpp"
#include "raftfl/storage/wal_storage.hpp"

namespace raftfl::node {

std::unique_ptr<storage::Storage> open_storage(const NodeConfig& config) {
  if (config.storage == StorageKind::kMemory) return std::make_unique<storage::MemoryStorage>();
  auto wal = std::make_unique<storage::WalStorage>(config.data_dir, storage::WalStorage::Options{});
  // A cut tail is an unfinished write, never an acknowledged one, except after bit rot in
  // the last record: say how much went, so that an operator can tell the two apart.
  if (wal->recovered_torn_bytes() > 0)
    log::line(log::Level::kWarn, "storage",
              config.data_dir.string() + ": cut " + std::to_string(wal->recovered_torn_bytes()) +
                  " bytes of an unfinished write at the end of the log");
  if (!wal->uses_io_uring())
    log::line(log::Level::kInfo, "storage",
              "io_uring unavailable (" + wal->why_no_io_uring() + "); writing with pwritev and fdatasync");
  return wal;
}

std::unique_ptr<net::Transport> make_transport(asio::io_context& io, const NodeConfig& config) {
  net::TransportOptions o;
  o.cluster_id = config.cluster_id;
  o.self = config.id;
  o.listen_host = config.listen.host;
  o.listen_port = config.listen.port;
  for (const auto& p : config.peers) o.peers.push_back({p.id, p.address.host, p.address.port});
  o.max_frame_bytes = config.max_frame_bytes;
  o.send_queue_bytes = config.send_queue_bytes;
  o.reconnect_min = config.reconnect_min;
  o.reconnect_max = config.reconnect_max;
  return config.transport == TransportKind::kTcp ? net::make_tcp_transport(io, std::move(o))
                                                 : net::make_zmq_transport(io, std::move(o));
}

}  // namespace raftfl::node
