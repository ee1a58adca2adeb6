#include "tests/support/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace impulse::testing {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(10);
constexpr auto kStopTimeout = std::chrono::seconds(10);
constexpr auto kPollInterval = std::chrono::milliseconds(5);
constexpr int kPortAttempts = 5;

// A port the kernel says is free now; another process may take it before
// redis-server binds it, hence the retries in Start().
int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// True when the server on `port` is the process `pid` (not some other
// server that took the port first) and answers PING with PONG (not LOADING).
bool Ready(int port, pid_t pid) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  timeval timeout{.tv_sec = 1, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  static constexpr char kQuery[] = "PING\r\nINFO server\r\n";
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, kQuery, sizeof kQuery - 1, MSG_NOSIGNAL) == sizeof kQuery - 1) {
    const std::string line = "process_id:" + std::to_string(pid) + "\r\n";
    char buffer[4096];
    while (reply.find(line) == std::string::npos) {
      const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
      if (got <= 0) break;
      reply.append(buffer, static_cast<size_t>(got));
    }
    ::close(fd);
    return reply.rfind("+PONG", 0) == 0 && reply.find(line) != std::string::npos;
  }
  ::close(fd);
  return false;
}

}  // namespace

RedisServer::RedisServer(RedisServerOptions options, int port)
    : options_(std::move(options)), port_(port) {}

RedisServer::~RedisServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

Result<std::unique_ptr<RedisServer>> RedisServer::Start(RedisServerOptions options) {
  Status last = Unavailable("no free loopback port");
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    const int port = FreeLoopbackPort();
    if (port == 0) continue;
    std::unique_ptr<RedisServer> server(new RedisServer(options, port));
    last = server->Launch();
    if (last.ok()) last = server->WaitUntilReady();
    if (last.ok()) return server;
  }
  return last;
}

std::string RedisServer::address() const { return "tcp://127.0.0.1:" + std::to_string(port_); }

Status RedisServer::Launch() {
  const std::string port = std::to_string(port_);
  std::vector<std::string> args = {options_.binary,
                                   "--port",
                                   port,
                                   "--bind",
                                   "127.0.0.1",
                                   "--dir",
                                   dir_.path(),
                                   "--save",
                                   "",
                                   "--appendonly",
                                   options_.append_only ? "yes" : "no",
                                   "--appendfsync",
                                   "everysec",
                                   "--daemonize",
                                   "no",
                                   "--logfile",
                                   dir_.path() + "/redis.log"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int error =
      ::posix_spawn(&pid, options_.binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) {
    return Unavailable("spawn " + options_.binary + ": " + std::strerror(error));
  }
  pid_ = pid;
  return Status::Ok();
}

Status RedisServer::WaitUntilReady() {
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Ready(port_, pid_)) return Status::Ok();
    int wait_status = 0;
    if (::waitpid(pid_, &wait_status, WNOHANG) == pid_) {
      pid_ = -1;
      return Unavailable("redis-server on port " + std::to_string(port_) +
                         " exited at start; see " + dir_.path() + "/redis.log");
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return Unavailable("redis-server on port " + std::to_string(port_) + " did not answer PING");
}

Status RedisServer::Stop() {
  if (pid_ <= 0) return Status::Ok();
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + kStopTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return Status::Ok();
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return Internal("redis-server did not stop within 10 s of SIGTERM; killed");
}

Status RedisServer::Restart() {
  IMPULSE_RETURN_IF_ERROR(Stop());
  IMPULSE_RETURN_IF_ERROR(Launch());
  return WaitUntilReady();
}

}  // namespace impulse::testing
