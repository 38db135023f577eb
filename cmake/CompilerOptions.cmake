# Options for raftfl's own targets. Third-party headers come in through imported
# targets as -isystem, so -Werror applies to our code only.
add_library(raftfl_options INTERFACE)
target_compile_options(raftfl_options INTERFACE
  -Wall -Wextra -Werror -Wpedantic -Wshadow -Wnon-virtual-dtor
  # Kept in every build type so that `perf record --call-graph fp` works on release binaries.
  -fno-omit-frame-pointer)

if(RAFTFL_SANITIZE STREQUAL "address")
  target_compile_options(raftfl_options INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=undefined)
  target_link_options(raftfl_options INTERFACE -fsanitize=address,undefined)
elseif(RAFTFL_SANITIZE STREQUAL "thread")
  # -Wno-tsan: g++ warns that TSan does not model std::atomic_thread_fence, which
  # third-party headers (libzmq's C++ wrapper, Asio) use; our code uses no fences.
  target_compile_options(raftfl_options INTERFACE -fsanitize=thread -Wno-tsan)
  target_link_options(raftfl_options INTERFACE -fsanitize=thread)
elseif(NOT RAFTFL_SANITIZE STREQUAL "")
  message(FATAL_ERROR "RAFTFL_SANITIZE must be empty, 'address' or 'thread', not '${RAFTFL_SANITIZE}'")
endif()
