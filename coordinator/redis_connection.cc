#include "coordinator/redis_connection.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <sys/time.h>

#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>

#include "coordinator/lua_scripts.h"

namespace impulse::coordinator {
namespace {

timeval ToTimeval(int64_t ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

RedisValue Convert(const redisReply& reply) {
  RedisValue value;
  switch (reply.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      value.type = RedisValue::Type::kString;
      value.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_INTEGER:
      value.type = RedisValue::Type::kInteger;
      value.integer = reply.integer;
      break;
    case REDIS_REPLY_ARRAY:
      value.type = RedisValue::Type::kArray;
      value.elements.reserve(reply.elements);
      for (size_t i = 0; i < reply.elements; ++i)
        value.elements.push_back(Convert(*reply.element[i]));
      break;
    default:
      break;
  }
  return value;
}

// Error replies that mean "the server is there but cannot serve now".
bool IsTransientError(std::string_view message) {
  for (std::string_view prefix : {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"}) {
    if (message.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

Status ErrorReplyStatus(std::string_view message) {
  std::string text = "redis: " + std::string(message);
  return IsTransientError(message) ? Unavailable(std::move(text)) : Internal(std::move(text));
}

std::string Sha1Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

}  // namespace

std::string RedisValue::Text() const {
  if (type == Type::kString) return str;
  if (type == Type::kInteger) return std::to_string(integer);
  return {};
}

int64_t RedisValue::AsInt() const {
  if (type == Type::kInteger) return integer;
  int64_t parsed = 0;
  if (type == Type::kString) std::from_chars(str.data(), str.data() + str.size(), parsed);
  return parsed;
}

LuaScript::LuaScript(std::string_view name) : name_(name) {
  // common.lua and compute.lua hold the helpers scripts share (Lua has no
  // include).
  source_ = std::string(LuaScriptSource("common"));
  source_ += "\n";
  source_ += LuaScriptSource("compute");
  source_ += "\n";
  source_ += LuaScriptSource(name);
  sha1_ = Sha1Hex(source_);
}

// A connection checked out of the pool for one call. Returned on
// destruction; discarded instead when the call found it broken.
class RedisPool::Checkout {
 public:
  Checkout(RedisPool& pool, redisContext* context) : pool_(pool), context_(context) {}
  ~Checkout() { pool_.Release(context_, broken_); }
  Checkout(const Checkout&) = delete;
  Checkout& operator=(const Checkout&) = delete;

  redisContext* get() const { return context_; }
  // The I/O error of a failed call as Unavailable; the connection is dropped.
  Status Broken() {
    broken_ = true;
    return Unavailable(std::string("redis: ") +
                       (context_->err ? context_->errstr : "connection lost"));
  }

 private:
  RedisPool& pool_;
  redisContext* const context_;
  bool broken_ = false;
};

RedisPool::RedisPool(RedisOptions options) : options_(std::move(options)) {}

RedisPool::~RedisPool() {
  std::lock_guard<std::mutex> lock(mu_);
  for (redisContext* context : idle_) redisFree(context);
}

Result<std::unique_ptr<RedisPool>> RedisPool::Connect(RedisOptions options) {
  // hiredis writes with write(2): a server that closed the socket would kill
  // the process with SIGPIPE instead of failing the call with EPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<RedisPool> pool(new RedisPool(std::move(options)));
  std::string_view address = pool->options_.address;
  if (address.substr(0, 7) == "unix://") {
    pool->unix_path_ = std::string(address.substr(7));
    if (pool->unix_path_.empty())
      return InvalidArgument("redis address '" + std::string(address) + "': no socket path");
  } else {
    if (address.substr(0, 6) == "tcp://") address.remove_prefix(6);
    const size_t colon = address.rfind(':');
    std::string_view host = colon == std::string_view::npos ? "" : address.substr(0, colon);
    std::string_view port = colon == std::string_view::npos ? "" : address.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    int port_number = 0;
    auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), port_number);
    if (host.empty() || error != std::errc() || end != port.data() + port.size() ||
        port_number <= 0 || port_number > 65535) {
      return InvalidArgument("redis address '" + pool->options_.address +
                             "': expected tcp://HOST:PORT, HOST:PORT or unix:///PATH");
    }
    pool->host_ = std::string(host);
    pool->port_ = port_number;
  }
  IMPULSE_ASSIGN_OR_RETURN(RedisValue pong, pool->Command({"PING"}));
  if (pong.Text() != "PONG") return Unavailable("redis: PING answered '" + pong.Text() + "'");
  return pool;
}

Result<redisContext*> RedisPool::Open() {
  const timeval connect_timeout = ToTimeval(options_.connect_timeout_ms);
  redisContext* context = unix_path_.empty()
                              ? redisConnectWithTimeout(host_.c_str(), port_, connect_timeout)
                              : redisConnectUnixWithTimeout(unix_path_.c_str(), connect_timeout);
  if (context == nullptr) return Unavailable("redis: cannot allocate a connection");
  if (context->err ||
      redisSetTimeout(context, ToTimeval(options_.command_timeout_ms)) != REDIS_OK) {
    Status status = Unavailable("redis " + options_.address + ": " + context->errstr);
    redisFree(context);
    return status;
  }
  return context;
}

Result<redisContext*> RedisPool::Acquire() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    const bool available =
        released_.wait_for(lock, std::chrono::milliseconds(options_.checkout_wait_ms),
                           [&] { return !idle_.empty() || open_ < options_.max_connections; });
    if (!available) {
      return Unavailable("redis: all " + std::to_string(options_.max_connections) +
                         " connections busy for " + std::to_string(options_.checkout_wait_ms) +
                         " ms");
    }
    if (!idle_.empty()) {
      redisContext* context = idle_.back();
      idle_.pop_back();
      return context;
    }
    ++open_;  // reserve the slot; the connect happens outside the lock
  }
  Result<redisContext*> context = Open();
  if (!context.ok()) Release(nullptr, /*broken=*/true);
  return context;
}

void RedisPool::Release(redisContext* context, bool broken) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken) {
      --open_;
    } else {
      idle_.push_back(context);
    }
  }
  if (broken && context != nullptr) redisFree(context);
  released_.notify_one();
}

Result<RedisValue> RedisPool::Run(const std::vector<std::string>& args, int64_t extra_timeout_ms) {
  IMPULSE_ASSIGN_OR_RETURN(redisContext * context, Acquire());
  Checkout connection(*this, context);
  if (extra_timeout_ms > 0 && redisSetTimeout(context, ToTimeval(options_.command_timeout_ms +
                                                                 extra_timeout_ms)) != REDIS_OK) {
    return connection.Broken();
  }
  std::vector<const char*> argv;
  std::vector<size_t> argv_len;
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    argv_len.push_back(arg.size());
  }
  ReplyPtr reply(static_cast<redisReply*>(
      redisCommandArgv(context, static_cast<int>(args.size()), argv.data(), argv_len.data())));
  if (reply == nullptr) return connection.Broken();
  if (extra_timeout_ms > 0 &&
      redisSetTimeout(context, ToTimeval(options_.command_timeout_ms)) != REDIS_OK) {
    return connection.Broken();
  }
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReplyStatus({reply->str, reply->len});
  return Convert(*reply);
}

Result<RedisValue> RedisPool::Command(const std::vector<std::string>& args) { return Run(args, 0); }

Result<RedisValue> RedisPool::BlockingCommand(const std::vector<std::string>& args,
                                              int64_t server_block_ms) {
  return Run(args, std::max<int64_t>(server_block_ms, 0));
}

Result<std::vector<RedisValue>> RedisPool::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  IMPULSE_ASSIGN_OR_RETURN(redisContext * context, Acquire());
  Checkout connection(*this, context);
  for (const auto& args : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> argv_len;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      argv_len.push_back(arg.size());
    }
    if (redisAppendCommandArgv(context, static_cast<int>(args.size()), argv.data(),
                               argv_len.data()) != REDIS_OK) {
      return connection.Broken();
    }
  }
  // Every reply is read even after an error reply, so the connection is
  // left in step and can go back to the pool.
  std::vector<RedisValue> values;
  Status first_error;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context, &raw) != REDIS_OK || raw == nullptr) return connection.Broken();
    ReplyPtr reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR && first_error.ok()) {
      first_error = ErrorReplyStatus({reply->str, reply->len});
    }
    values.push_back(Convert(*reply));
  }
  if (!first_error.ok()) return first_error;
  return values;
}

Result<RedisValue> RedisPool::Eval(const LuaScript& script, const std::vector<std::string>& keys,
                                   const std::vector<std::string>& args) {
  std::vector<std::string> command = {"EVALSHA", script.sha1(), std::to_string(keys.size())};
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  Result<RedisValue> reply = Command(command);
  if (reply.ok() || reply.status().message().find("NOSCRIPT") == std::string::npos) {
    return reply.ok() ? std::move(reply)
                      : Result<RedisValue>(reply.status().WithContext(script.name() + ".lua"));
  }
  IMPULSE_ASSIGN_OR_RETURN(RedisValue loaded, Command({"SCRIPT", "LOAD", script.source()}));
  if (loaded.Text() != script.sha1()) {
    return Internal("redis: SCRIPT LOAD of " + script.name() + ".lua answered sha " +
                    loaded.Text());
  }
  reply = Command(command);
  if (!reply.ok()) return reply.status().WithContext(script.name() + ".lua");
  return reply;
}

}  // namespace impulse::coordinator
