// RedisPool: a bounded pool of synchronous hiredis connections, and the
// three ways the Store talks to Redis: one command, a pipeline, a Lua script.
//
// Replies are copied into RedisValue trees, so callers never see hiredis.
// Failures: Unavailable when the server cannot be reached, a connection
// breaks or times out (the connection is discarded, never reused), the pool
// stays exhausted for checkout_wait_ms, or Redis answers LOADING / BUSY /
// MASTERDOWN / TRYAGAIN; Internal for any other error reply (a bug: a wrong
// command or a script error).
//
// Thread-safe: every method may be called from any thread. Each call checks
// a connection out for its duration; at most max_connections are open.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "impulse/status.h"

struct redisContext;  // hiredis stays out of this header

namespace impulse::coordinator {

struct RedisOptions {
  // "tcp://HOST:PORT", "unix:///path/to.sock", or a bare "HOST:PORT".
  std::string address;
  int64_t connect_timeout_ms = 2000;
  int64_t command_timeout_ms = 5000;
  size_t max_connections = 16;
  // How long a call waits for a free connection when all are busy.
  int64_t checkout_wait_ms = 5000;
};

// One Redis reply. Status replies read as strings; Lua's false reads as nil.
struct RedisValue {
  enum class Type { kNil, kString, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;
  int64_t integer = 0;
  std::vector<RedisValue> elements;

  bool is_nil() const { return type == Type::kNil; }
  // The string, or the integer's decimal text; empty for nil and arrays.
  std::string Text() const;
  // The integer, or a string parsed as one; 0 when neither.
  int64_t AsInt() const;
};

// A script of coordinator/scripts/: common.lua, compute.lua, then NAME.lua, with
// the SHA1 that EVALSHA names it by. Immutable; thread-safe.
class LuaScript {
 public:
  explicit LuaScript(std::string_view name);
  const std::string& name() const { return name_; }
  const std::string& source() const { return source_; }
  const std::string& sha1() const { return sha1_; }

 private:
  std::string name_;
  std::string source_;
  std::string sha1_;
};

class RedisPool {
 public:
  // Opens one connection and PINGs it. InvalidArgument for a malformed
  // address, Unavailable when the server does not answer.
  static Result<std::unique_ptr<RedisPool>> Connect(RedisOptions options);
  ~RedisPool();
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;

  // Binary-safe: each argument is sent as is (redisCommandArgv).
  Result<RedisValue> Command(const std::vector<std::string>& args);
  // Sends all commands, then reads all replies, on one connection. Not a
  // transaction: another client's commands may run in between. The first
  // error reply fails the whole call.
  Result<std::vector<RedisValue>> Pipeline(const std::vector<std::vector<std::string>>& commands);
  // EVALSHA; on NOSCRIPT (a restarted or flushed server) loads the script
  // with SCRIPT LOAD and tries once more.
  Result<RedisValue> Eval(const LuaScript& script, const std::vector<std::string>& keys,
                          const std::vector<std::string>& args);
  // A command the server may hold for up to server_block_ms (XREAD BLOCK);
  // the socket timeout is stretched by that much for this call only.
  Result<RedisValue> BlockingCommand(const std::vector<std::string>& args, int64_t server_block_ms);

 private:
  class Checkout;
  explicit RedisPool(RedisOptions options);

  Result<redisContext*> Open();
  Result<redisContext*> Acquire();
  void Release(redisContext* context, bool broken);
  Result<RedisValue> Run(const std::vector<std::string>& args, int64_t extra_timeout_ms);

  // Set at construction.
  const RedisOptions options_;
  std::string host_;  // empty for a Unix socket
  int port_ = 0;
  std::string unix_path_;  // empty for TCP

  std::mutex mu_;
  std::condition_variable released_;
  std::vector<redisContext*> idle_;  // GUARDED_BY(mu_)
  size_t open_ = 0;                  // GUARDED_BY(mu_): idle plus checked out
};

}  // namespace impulse::coordinator
