#include "impulse/metrics_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

namespace impulse {
namespace {

constexpr int kPollMs = 200;           // how soon a stop request is noticed
constexpr int kRequestTimeoutMs = 2000;  // a scraper that sends nothing is dropped
constexpr size_t kMaxRequestBytes = 8192;

Result<sockaddr_in> ParseAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgument("metrics address '" + address + "' is not HOST:PORT");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  std::string host = address.substr(0, colon);
  if (host.empty() || host == "*") host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return InvalidArgument("metrics address '" + address + "': host must be an IPv4 address");
  }
  char* end = nullptr;
  const long port = std::strtol(address.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 0 || port > 65535) {
    return InvalidArgument("metrics address '" + address + "': bad port");
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

void WriteAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

}  // namespace

MetricsEndpoint::~MetricsEndpoint() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

Status MetricsEndpoint::Serve(const std::string& address,
                              std::shared_ptr<prometheus::Registry> registry) {
  IMPULSE_ASSIGN_OR_RETURN(sockaddr_in addr, ParseAddress(address));
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  socklen_t length = sizeof(addr);
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 16) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    return Unavailable("cannot serve metrics on " + address + ": " + std::strerror(errno));
  }
  port_ = ntohs(addr.sin_port);
  registry_ = std::move(registry);
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void MetricsEndpoint::Loop() {
  while (!stopping_) {
    pollfd ready{.fd = listen_fd_, .events = POLLIN, .revents = 0};
    if (poll(&ready, 1, kPollMs) <= 0) continue;
    const int connection = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) continue;
    Answer(connection);
    close(connection);
  }
}

void MetricsEndpoint::Answer(int connection) {
  // Read the request head (bounded in size and time); only its first line matters.
  std::string request;
  char buffer[1024];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < kMaxRequestBytes) {
    pollfd ready{.fd = connection, .events = POLLIN, .revents = 0};
    if (poll(&ready, 1, kRequestTimeoutMs) <= 0) return;
    const ssize_t n = recv(connection, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    request.append(buffer, static_cast<size_t>(n));
  }
  const bool wanted = request.rfind("GET /metrics", 0) == 0;
  std::string body = "not found: try /metrics\n";
  if (wanted) {
    std::ostringstream text;
    prometheus::TextSerializer().Serialize(text, registry_->Collect());
    body = text.str();
  }
  WriteAll(connection, std::string(wanted ? "HTTP/1.0 200 OK\r\n" : "HTTP/1.0 404 Not Found\r\n") +
                           "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                           "Content-Length: " + std::to_string(body.size()) +
                           "\r\nConnection: close\r\n\r\n" + body);
}

}  // namespace impulse
