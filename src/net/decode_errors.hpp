#pragma once

#include <kj/exception.h>

#include <optional>
#include <string>

#include "raftfl/wire/raft_codec.hpp"

namespace raftfl::net {

// Runs `read`, which reads a received message: decodes a handshake, or hands data to the
// receive handler. Returns the text of a decode error (kj::Exception from Cap'n Proto's
// reader, wire::DecodeError from the codecs): the sender's fault, so the caller refuses
// the message. Every other exception is the receiver's own fault, a broken engine
// invariant say, and propagates: refusing the message would let the node carry on in a
// state it has just found broken (transport.hpp).
template <typename Read>
std::optional<std::string> decode_error_of(Read&& read) {
  try {
    read();
  } catch (const kj::Exception& e) {
    return std::string(e.getDescription().cStr());
  } catch (const wire::DecodeError& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

}  // namespace raftfl::net
