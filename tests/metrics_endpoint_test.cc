#include "impulse/metrics_endpoint.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <prometheus/counter.h>
#include <sys/socket.h>
#include <unistd.h>

namespace impulse {
namespace {

// One HTTP/1.0 exchange with 127.0.0.1:port; returns the whole response.
std::string Get(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n";
  send(fd, request.data(), request.size(), 0);
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof(buffer), 0)) > 0;) response.append(buffer, n);
  close(fd);
  return response;
}

TEST(MetricsEndpointTest, ServesTheRegistryAsPrometheusText) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter().Name("impulse_test_total").Help("h").Register(*registry).Add({}).Increment(3);
  MetricsEndpoint endpoint;
  ASSERT_TRUE(endpoint.Serve("127.0.0.1:0", registry).ok());
  ASSERT_GT(endpoint.port(), 0);

  const std::string response = Get(endpoint.port(), "/metrics");
  EXPECT_EQ(response.rfind("HTTP/1.0 200 OK", 0), 0u) << response;
  EXPECT_NE(response.find("impulse_test_total 3"), std::string::npos) << response;
  EXPECT_EQ(Get(endpoint.port(), "/other").rfind("HTTP/1.0 404", 0), 0u);
}

TEST(MetricsEndpointTest, RefusesBadAddressesAndTakenPorts) {
  auto registry = std::make_shared<prometheus::Registry>();
  MetricsEndpoint first;
  ASSERT_TRUE(first.Serve("127.0.0.1:0", registry).ok());
  EXPECT_EQ(MetricsEndpoint().Serve("no-port", registry).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsEndpoint().Serve("example.com:80", registry).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsEndpoint().Serve("127.0.0.1:" + std::to_string(first.port()), registry).code(),
            StatusCode::kUnavailable);
}

}  // namespace
}  // namespace impulse
