# Every dependency of raftfl, found once here so that a missing Debian package fails
# at configure time with the package that provides it. scripts/install-deps installs them all.
include(FindPackageHandleStandardArgs)
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

macro(raftfl_require found what package)
  if(NOT ${found})
    message(FATAL_ERROR "raftfl: ${what} not found; install the Debian package '${package}' "
                        "(scripts/install-deps installs every dependency)")
  endif()
endmacro()

find_package(Torch CONFIG QUIET)
raftfl_require(Torch_FOUND "LibTorch" libtorch-dev)

find_package(CapnProto CONFIG QUIET)
raftfl_require(CapnProto_FOUND "Cap'n Proto" "libcapnp-dev capnproto")

find_package(cppzmq CONFIG QUIET)
raftfl_require(cppzmq_FOUND "ZeroMQ (cppzmq)" "libzmq3-dev cppzmq-dev")

find_package(Eigen3 3.4 CONFIG QUIET)
raftfl_require(Eigen3_FOUND "Eigen 3.4" libeigen3-dev)

find_package(Boost 1.74 CONFIG QUIET COMPONENTS graph)
raftfl_require(Boost_FOUND "Boost.Graph" libboost-graph-dev)

find_package(GTest CONFIG QUIET)
raftfl_require(GTest_FOUND "GoogleTest" "libgtest-dev libgmock-dev")

find_package(benchmark CONFIG QUIET)
raftfl_require(benchmark_FOUND "Google Benchmark" libbenchmark-dev)

find_package(MPI QUIET COMPONENTS C)
raftfl_require(MPI_C_FOUND "Open MPI" "libopenmpi-dev openmpi-bin")

find_package(tomlplusplus CONFIG QUIET)
raftfl_require(tomlplusplus_FOUND "toml++" libtomlplusplus-dev)

find_package(CLI11 CONFIG QUIET)
raftfl_require(CLI11_FOUND "CLI11" libcli11-dev)

# Reading JSON replies (admin endpoint, benchmark orchestration); writing is ours.
find_package(nlohmann_json 3.10 CONFIG QUIET)
raftfl_require(nlohmann_json_FOUND "nlohmann JSON" nlohmann-json3-dev)

pkg_check_modules(URING QUIET IMPORTED_TARGET liburing>=2.3)
raftfl_require(URING_FOUND "liburing >= 2.3" liburing-dev)

pkg_check_modules(SYSTEMD QUIET IMPORTED_TARGET libsystemd)
raftfl_require(SYSTEMD_FOUND "libsystemd" libsystemd-dev)

pkg_check_modules(XXHASH QUIET IMPORTED_TARGET libxxhash)
raftfl_require(XXHASH_FOUND "xxHash" libxxhash-dev)

find_package(ZLIB QUIET)
raftfl_require(ZLIB_FOUND "zlib" zlib1g-dev)

# Asio is header only and has no package config; standalone.
find_path(ASIO_INCLUDE_DIR asio.hpp)
raftfl_require(ASIO_INCLUDE_DIR "Asio" libasio-dev)
add_library(raftfl_asio INTERFACE)
target_include_directories(raftfl_asio SYSTEM INTERFACE ${ASIO_INCLUDE_DIR})
# ASIO_DISABLE_STD_ALIGNED_ALLOC: Asio picks aligned_alloc or operator new for its
# per-thread caches depending on whether a libstdc++ header was included before its own,
# so two files that include in different orders disagree (one frees what the other
# allocated the other way: an ODR violation ASan reports). One choice for every file.
target_compile_definitions(raftfl_asio INTERFACE ASIO_STANDALONE ASIO_DISABLE_STD_ALIGNED_ALLOC)
# Sockets on io_uring or on epoll. Asio before 1.27 (Debian 12 ships 1.22) submits the
# cancellation of a closed socket's operations with a stale user data field, so its
# completion finishes an unrelated operation with a result not its own while that
# operation's real submission is still in the kernel (tests/net/socket_close_test.cpp
# shows it; nodes whose connections were replaced quickly crashed with heap corruption).
# There the default is epoll and io_uring is refused. Measured on a 2-vCPU VM (README,
# "raftfl bench raft"): epoll is no slower, and with a reactor poll budget it delivers a
# completion to a spinning thread without the cross-CPU interrupt that Asio's io_uring
# ring costs. The write-ahead log uses liburing directly, on io_uring either way.
file(STRINGS "${ASIO_INCLUDE_DIR}/asio/version.hpp" raftfl_asio_version_line REGEX "^#define ASIO_VERSION [0-9]+")
string(REGEX MATCH "[0-9]+" RAFTFL_ASIO_VERSION "${raftfl_asio_version_line}")
if(RAFTFL_ASIO_VERSION LESS 102700)
  set(raftfl_default_socket_backend epoll)
else()
  set(raftfl_default_socket_backend io_uring)
endif()
set(RAFTFL_SOCKET_BACKEND "${raftfl_default_socket_backend}" CACHE STRING "Asio's socket backend: io_uring or epoll")
set_property(CACHE RAFTFL_SOCKET_BACKEND PROPERTY STRINGS io_uring epoll)
if(RAFTFL_SOCKET_BACKEND STREQUAL "io_uring")
  if(RAFTFL_ASIO_VERSION LESS 102700)
    message(FATAL_ERROR "raftfl: Asio ${RAFTFL_ASIO_VERSION} completes the wrong operations on io_uring when a "
                        "socket closes with one in flight (fixed in Asio 1.27); configure with "
                        "-DRAFTFL_SOCKET_BACKEND=epoll")
  endif()
  target_compile_definitions(raftfl_asio INTERFACE ASIO_HAS_IO_URING ASIO_DISABLE_EPOLL)
elseif(RAFTFL_SOCKET_BACKEND STREQUAL "epoll")
  # Without ASIO_HAS_IO_URING Asio creates no ring at all: nothing of ours uses its file I/O.
else()
  message(FATAL_ERROR "raftfl: RAFTFL_SOCKET_BACKEND is '${RAFTFL_SOCKET_BACKEND}'; use io_uring or epoll")
endif()
target_link_libraries(raftfl_asio INTERFACE PkgConfig::URING)
# g++ 12 reports Asio's coroutine-frame allocator (a sized operator delete paired with its
# own operator new) as mismatched when the frame is inlined into our code: a false
# positive (GCC bug 109224), not a defect of ours.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(raftfl_asio INTERFACE -Wno-mismatched-new-delete)
endif()

set(RAFTFL_FASHION_MNIST_DIR /usr/share/datasets/fashion-mnist CACHE PATH
    "Directory with the Fashion-MNIST gzip IDX files (Debian package dataset-fashion-mnist)")
