// RedisServer: a real redis-server for one test suite, on a free loopback
// port, with its files in a private temp directory. Killed when the object
// dies.
//
//   auto server = impulse::testing::RedisServer::Start();
//   ASSERT_TRUE(server.ok()) << server.status().ToString();
//   auto store = RedisStore::Connect((*server)->address(), "t1");
//
// Give each test its own key prefix rather than a server of its own: a
// start costs tens of milliseconds.
//
// One object belongs to one thread; the server serves any number of clients.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "impulse/status.h"
#include "tests/support/temp_dir.h"

namespace impulse::testing {

struct RedisServerOptions {
  // AOF persistence (appendfsync everysec), so Restart() keeps the data.
  // Off: --save "" --appendonly no, nothing survives a restart.
  bool append_only = false;
  std::string binary = "/usr/bin/redis-server";
};

class RedisServer {
 public:
  // Starts the server and waits (bounded, 10 s) until PING answers PONG.
  // Unavailable when it does not come up; a port taken between choosing and
  // binding it is retried with another port.
  static Result<std::unique_ptr<RedisServer>> Start(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // "tcp://127.0.0.1:PORT", the form RedisStore::Connect takes.
  std::string address() const;
  int port() const { return port_; }
  const std::string& data_dir() const { return dir_.path(); }

  // Stops the server gracefully (SIGTERM: the AOF is flushed). Clients see
  // Unavailable until Restart(). OK when already stopped.
  Status Stop();
  // Stop(), then starts it again on the same port and directory and waits
  // for PONG (after the AOF is loaded).
  Status Restart();

 private:
  RedisServer(RedisServerOptions options, int port);
  Status Launch();
  Status WaitUntilReady();

  const RedisServerOptions options_;
  const int port_;
  TempDir dir_;
  pid_t pid_ = -1;  // -1 when stopped
};

}  // namespace impulse::testing
