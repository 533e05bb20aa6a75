// CurlTransport against a tiny HTTP/1.1 server on 127.0.0.1 (plain POSIX
// sockets, one thread per connection): normal answers, methods and bodies,
// timeouts, size caps, truncated bodies, refused connections, concurrency
// and cancellation. Also the CURLcode -> TransportFailure mapping.
#include "http/client.hpp"
#include "http/curl_codes.hpp"
#include "http/transport.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace billrecon::http;
using Clock = std::chrono::steady_clock;

namespace {

class LoopbackServer {
public:
	LoopbackServer() {
		listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
		EXPECT_GE(listen_fd_, 0);
		int one = 1;
		setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		sockaddr_in addr {};
		addr.sin_family = AF_INET;
		addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		addr.sin_port = 0;
		EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
		EXPECT_EQ(listen(listen_fd_, 32), 0);
		socklen_t len = sizeof addr;
		getsockname(listen_fd_, reinterpret_cast<sockaddr *>(&addr), &len);
		port_ = ntohs(addr.sin_port);
		acceptor_ = std::thread([this] { AcceptLoop(); });
	}

	~LoopbackServer() {
		stop_ = true;
		acceptor_.join();
		std::vector<std::thread> workers;
		{
			std::lock_guard<std::mutex> lock(mu_);
			workers.swap(workers_);
		}
		for (std::thread &t : workers)
			t.join();
		close(listen_fd_);
	}

	std::string Url(const std::string &path) const {
		return "http://127.0.0.1:" + std::to_string(port_) + path;
	}

	// Raw requests received (head and body), in arrival order.
	std::vector<std::string> Received() {
		std::lock_guard<std::mutex> lock(mu_);
		return received_;
	}

private:
	void AcceptLoop() {
		while (!stop_) {
			pollfd p {listen_fd_, POLLIN, 0};
			if (poll(&p, 1, 20) <= 0)
				continue;
			const int fd = accept(listen_fd_, nullptr, nullptr);
			if (fd < 0)
				continue;
			std::lock_guard<std::mutex> lock(mu_);
			workers_.emplace_back([this, fd] {
				Serve(fd);
				close(fd);
			});
		}
	}

	// Waits up to `ms`, returning early (false) when the server stops.
	bool Pause(int ms) {
		const auto end = Clock::now() + std::chrono::milliseconds(ms);
		while (Clock::now() < end) {
			if (stop_)
				return false;
			std::this_thread::sleep_for(std::chrono::milliseconds(5));
		}
		return true;
	}

	static void Send(int fd, const std::string &data) {
		size_t off = 0;
		while (off < data.size()) {
			const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
			if (n <= 0)
				return; // the client went away
			off += static_cast<size_t>(n);
		}
	}

	static std::string Response(const std::string &status, const std::string &body,
	                            const std::string &extra_headers = "") {
		return "HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(body.size()) +
		       "\r\nConnection: close\r\n" + extra_headers + "\r\n" + body;
	}

	// Reads one request; returns false on a closed or stalled connection.
	bool Read(int fd, std::string &head, std::string &body) {
		std::string data;
		char buf[4096];
		size_t header_end = std::string::npos;
		size_t content_length = 0;
		while (true) {
			if (header_end == std::string::npos) {
				header_end = data.find("\r\n\r\n");
				if (header_end != std::string::npos) {
					head = data.substr(0, header_end);
					std::string lower = head;
					for (char &c : lower)
						c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
					const size_t cl = lower.find("\r\ncontent-length:");
					if (cl != std::string::npos)
						content_length = std::stoul(lower.substr(cl + 17));
				}
			}
			if (header_end != std::string::npos && data.size() >= header_end + 4 + content_length) {
				body = data.substr(header_end + 4, content_length);
				return true;
			}
			pollfd p {fd, POLLIN, 0};
			if (poll(&p, 1, 2000) <= 0 || stop_)
				return false;
			const ssize_t n = recv(fd, buf, sizeof buf, 0);
			if (n <= 0)
				return false;
			data.append(buf, static_cast<size_t>(n));
		}
	}

	void Serve(int fd) {
		std::string head, body;
		if (!Read(fd, head, body))
			return;
		{
			std::lock_guard<std::mutex> lock(mu_);
			received_.push_back(head + "\r\n\r\n" + body);
		}
		const size_t sp1 = head.find(' ');
		const std::string path = head.substr(sp1 + 1, head.find(' ', sp1 + 1) - sp1 - 1);
		if (path == "/ok") {
			Send(fd, Response("200 OK", "hello", "Content-Type: text/plain\r\nX-Test: yes\r\nX-Multi: a\r\n"));
		} else if (path == "/echo") {
			Send(fd, Response("200 OK", head.substr(0, head.find(' ')) + "|" + body));
		} else if (path == "/no-content") {
			Send(fd, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
		} else if (path == "/slow") {
			if (Pause(2000))
				Send(fd, Response("200 OK", "late"));
		} else if (path.rfind("/delay/", 0) == 0) {
			if (Pause(std::stoi(path.substr(7))))
				Send(fd, Response("200 OK", path));
		} else if (path == "/big") { // announced size above the cap
			Send(fd, Response("200 OK", std::string(100000, 'x')));
		} else if (path == "/big-chunked") { // no length known in advance
			Send(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
			for (int i = 0; i < 100; ++i)
				Send(fd, "3e8\r\n" + std::string(1000, 'x') + "\r\n");
			Send(fd, "0\r\n\r\n");
		} else if (path == "/truncated") {
			Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n0123456789");
		} else if (path == "/redirect") {
			Send(fd, Response("302 Found", "", "Location: http://127.0.0.1:1/elsewhere\r\n"));
		} else if (path == "/status/503") {
			Send(fd, Response("503 Service Unavailable", "busy", "Retry-After: 3\r\n"));
		} else {
			Send(fd, Response("404 Not Found", "no such path"));
		}
	}

	int listen_fd_ = -1;
	int port_ = 0;
	std::atomic<bool> stop_ {false};
	std::thread acceptor_;
	std::mutex mu_;
	std::vector<std::thread> workers_;
	std::vector<std::string> received_;
};

TransportLimits LoopbackLimits() {
	TransportLimits l;
	l.allow_http = true;
	l.connect_timeout_ms = 1000;
	l.timeout_ms = 2000;
	l.user_agent = "billrecon-test/1";
	return l;
}

Request Get(const std::string &url) {
	Request r;
	r.url = url;
	return r;
}

std::vector<Attempt> PerformAll(Transport &t, const std::vector<Request> &requests, const TransportLimits &limits,
                                std::function<bool()> cancel = nullptr) {
	std::vector<const Request *> ptrs;
	for (const Request &r : requests)
		ptrs.push_back(&r);
	return t.Perform(ptrs, limits, cancel);
}

Attempt PerformOne(Transport &t, const Request &request, const TransportLimits &limits,
                   std::function<bool()> cancel = nullptr) {
	return PerformAll(t, {request}, limits, std::move(cancel)).at(0);
}

TEST(HttpCurlTransport, OkResponseWithHeaders) {
	LoopbackServer server;
	auto t = MakeCurlTransport();
	const Attempt a = PerformOne(*t, Get(server.Url("/ok")), LoopbackLimits());
	ASSERT_EQ(a.failure, TransportFailure::kNone) << a.error;
	EXPECT_EQ(a.response.status, 200);
	EXPECT_EQ(a.response.body, "hello");
	EXPECT_EQ(a.response.HeaderValue("x-test"), "yes");
	EXPECT_EQ(a.response.HeaderValue("content-type"), "text/plain");
	EXPECT_EQ(a.response.url, server.Url("/ok"));
	EXPECT_GE(a.response.elapsed_ms, 0);
	const std::vector<std::string> seen = server.Received();
	ASSERT_EQ(seen.size(), 1u);
	EXPECT_NE(seen[0].find("GET /ok HTTP/1.1"), std::string::npos);
	EXPECT_NE(seen[0].find("User-Agent: billrecon-test/1"), std::string::npos);
	EXPECT_NE(seen[0].find("Accept-Encoding:"), std::string::npos);
}

TEST(HttpCurlTransport, MethodsBodiesAndHeaders) {
	LoopbackServer server;
	auto t = MakeCurlTransport();
	struct Case {
		Method method;
		std::string body;
		std::string expect;
	};
	for (const Case &c : std::vector<Case> {{Method::kPost, "a=1&b=2", "POST|a=1&b=2"},
	                                        {Method::kPut, R"({"x":1})", R"(PUT|{"x":1})"},
	                                        {Method::kPatch, "", "PATCH|"},
	                                        {Method::kDelete, "", "DELETE|"}}) {
		Request r = Get(server.Url("/echo"));
		r.method = c.method;
		r.body = c.body;
		r.headers = {{"Content-Type", "application/json"}, {"X-Custom", "v1"}, {"X-Empty", ""}};
		const Attempt a = PerformOne(*t, r, LoopbackLimits());
		ASSERT_EQ(a.failure, TransportFailure::kNone) << a.error;
		EXPECT_EQ(a.response.body, c.expect);
	}
	const std::vector<std::string> seen = server.Received();
	ASSERT_EQ(seen.size(), 4u);
	EXPECT_NE(seen[0].find("X-Custom: v1"), std::string::npos);
	EXPECT_NE(seen[0].find("X-Empty:"), std::string::npos);
	EXPECT_EQ(seen[0].find("Expect:"), std::string::npos);
	EXPECT_NE(seen[2].find("Content-Length: 0"), std::string::npos) << seen[2];
}

TEST(HttpCurlTransport, NoContentAndErrorStatusesAreResponses) {
	LoopbackServer server;
	auto t = MakeCurlTransport();
	const std::vector<Attempt> a = PerformAll(
	    *t, {Get(server.Url("/no-content")), Get(server.Url("/status/503")), Get(server.Url("/redirect"))},
	    LoopbackLimits());
	ASSERT_EQ(a.size(), 3u);
	EXPECT_EQ(a[0].failure, TransportFailure::kNone);
	EXPECT_EQ(a[0].response.status, 204);
	EXPECT_TRUE(a[0].response.body.empty());
	EXPECT_EQ(a[1].response.status, 503);
	EXPECT_EQ(a[1].response.HeaderValue("Retry-After"), "3");
	EXPECT_EQ(a[2].response.status, 302); // not followed
	EXPECT_EQ(server.Received().size(), 3u);
}

TEST(HttpCurlTransport, SlowAnswerTimesOut) {
	LoopbackServer server;
	auto t = MakeCurlTransport();
	TransportLimits limits = LoopbackLimits();
	limits.timeout_ms = 300;
	const auto start = Clock::now();
	const Attempt a = PerformOne(*t, Get(server.Url("/slow")), limits);
	EXPECT_EQ(a.failure, TransportFailure::kTimeout) << a.error;
	EXPECT_FALSE(a.error.empty());
	EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(1500));
}

TEST(HttpCurlTransport, BodyAboveTheCapIsTooLarge) {
	LoopbackServer server;
	auto t = MakeCurlTransport();
	TransportLimits limits = LoopbackLimits();
	limits.max_response_bytes = 10000;
	const std::vector<Attempt> a =
	    PerformAll(*t, {Get(server.Url("/big")), Get(server.Url("/big-chunked")), Get(server.Url("/ok"))}, limits);
	EXPECT_EQ(a[0].failure, TransportFailure::kTooLarge) << a[0].error;
	EXPECT_EQ(a[1].failure, TransportFailure::kTooLarge) << a[1].error;
	EXPECT_NE(a[1].error.find("10000 bytes"), std::string::npos) << a[1].error;
	EXPECT_EQ(a[2].failure, TransportFailure::kNone);
}

TEST(HttpCurlTransport, ConnectionClosedMidBodyIsReset) {
	LoopbackServer server;
	auto t = MakeCurlTransport();
	const Attempt a = PerformOne(*t, Get(server.Url("/truncated")), LoopbackLimits());
	EXPECT_EQ(a.failure, TransportFailure::kReset) << a.error;
}

TEST(HttpCurlTransport, RefusedPortIsConnectFailure) {
	// A port that was free a moment ago and has no listener.
	const int fd = socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in addr {};
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
	socklen_t len = sizeof addr;
	getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len);
	close(fd);
	auto t = MakeCurlTransport();
	const Attempt a =
	    PerformOne(*t, Get("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/"), LoopbackLimits());
	EXPECT_EQ(a.failure, TransportFailure::kConnect) << a.error;
}

TEST(HttpCurlTransport, PlainHttpIsRejectedWhenNotAllowed) {
	LoopbackServer server;
	auto t = MakeCurlTransport();
	TransportLimits limits = LoopbackLimits();
	limits.allow_http = false;
	const Attempt a = PerformOne(*t, Get(server.Url("/ok")), limits);
	EXPECT_EQ(a.failure, TransportFailure::kProtocol) << a.error;
	EXPECT_TRUE(server.Received().empty());
}

TEST(HttpCurlTransport, RequestsRunConcurrentlyAndKeepTheirOrder) {
	LoopbackServer server;
	auto t = MakeCurlTransport();
	std::vector<Request> requests;
	for (int ms : {400, 300, 200, 100})
		requests.push_back(Get(server.Url("/delay/" + std::to_string(ms))));
	const auto start = Clock::now();
	const std::vector<Attempt> a = PerformAll(*t, requests, LoopbackLimits());
	const auto elapsed = Clock::now() - start;
	ASSERT_EQ(a.size(), 4u);
	const char *expected[] = {"/delay/400", "/delay/300", "/delay/200", "/delay/100"};
	for (size_t i = 0; i < 4; ++i) {
		ASSERT_EQ(a[i].failure, TransportFailure::kNone) << a[i].error;
		EXPECT_EQ(a[i].response.body, expected[i]);
	}
	EXPECT_LT(elapsed, std::chrono::milliseconds(900)) << "one after the other would take 1000 ms";
	// The transport stays usable for the next round.
	EXPECT_EQ(PerformOne(*t, Get(server.Url("/ok")), LoopbackLimits()).response.body, "hello");
}

TEST(HttpCurlTransport, CancelAbortsTransfers) {
	LoopbackServer server;
	auto t = MakeCurlTransport();
	const auto start = Clock::now();
	int polls = 0;
	const std::vector<Attempt> a =
	    PerformAll(*t, {Get(server.Url("/slow")), Get(server.Url("/ok"))}, LoopbackLimits(), [&] {
		    ++polls;
		    return Clock::now() - start > std::chrono::milliseconds(200);
	    });
	const auto elapsed = Clock::now() - start;
	EXPECT_EQ(a[0].failure, TransportFailure::kCancelled);
	EXPECT_EQ(a[1].failure, TransportFailure::kNone); // finished before the cancel
	EXPECT_LT(elapsed, std::chrono::milliseconds(800));
	EXPECT_GE(polls, 1);
}

TEST(HttpCurlTransport, CancelBeforeStartSendsNothing) {
	LoopbackServer server;
	auto t = MakeCurlTransport();
	const Attempt a = PerformOne(*t, Get(server.Url("/ok")), LoopbackLimits(), [] { return true; });
	EXPECT_EQ(a.failure, TransportFailure::kCancelled);
	EXPECT_TRUE(server.Received().empty());
}

TEST(HttpCurlTransport, ClientOverCurlRetriesAndReports) {
	LoopbackServer server;
	ClientOptions options;
	options.limits = LoopbackLimits();
	options.max_retries = 1;
	std::vector<long> waits;
	Client client(options, MakeCurlTransport(), nullptr, [&](long ms) { waits.push_back(ms); });
	EXPECT_EQ(client.Send(Get(server.Url("/ok"))).body, "hello");
	try {
		client.Send(Get(server.Url("/status/503")));
		ADD_FAILURE() << "no HttpError";
	} catch (const HttpError &e) {
		EXPECT_EQ(e.status(), 503);
		EXPECT_NE(e.detail().find("Attempts: 2"), std::string::npos) << e.detail();
		EXPECT_NE(e.detail().find("Vendor message: busy"), std::string::npos) << e.detail();
	}
	EXPECT_EQ(waits, std::vector<long>({3000}));
	EXPECT_EQ(client.stats().requests, 3);
	EXPECT_EQ(server.Received().size(), 3u);
}

TEST(HttpCurlCodes, Mapping) {
	using curl::FailureFromCode;
	EXPECT_EQ(FailureFromCode(CURLE_OK, false), TransportFailure::kNone);
	EXPECT_EQ(FailureFromCode(CURLE_COULDNT_CONNECT, false), TransportFailure::kConnect);
	EXPECT_EQ(FailureFromCode(CURLE_COULDNT_RESOLVE_HOST, false), TransportFailure::kConnect);
	EXPECT_EQ(FailureFromCode(CURLE_OPERATION_TIMEDOUT, false), TransportFailure::kTimeout);
	EXPECT_EQ(FailureFromCode(CURLE_PARTIAL_FILE, false), TransportFailure::kReset);
	EXPECT_EQ(FailureFromCode(CURLE_RECV_ERROR, false), TransportFailure::kReset);
	EXPECT_EQ(FailureFromCode(CURLE_SEND_ERROR, false), TransportFailure::kReset);
	EXPECT_EQ(FailureFromCode(CURLE_GOT_NOTHING, false), TransportFailure::kReset);
	EXPECT_EQ(FailureFromCode(CURLE_WRITE_ERROR, true), TransportFailure::kTooLarge);
	EXPECT_EQ(FailureFromCode(CURLE_WRITE_ERROR, false), TransportFailure::kProtocol);
	EXPECT_EQ(FailureFromCode(CURLE_FILESIZE_EXCEEDED, false), TransportFailure::kTooLarge);
	EXPECT_EQ(FailureFromCode(CURLE_PEER_FAILED_VERIFICATION, false), TransportFailure::kTls);
	EXPECT_EQ(FailureFromCode(CURLE_SSL_CACERT_BADFILE, false), TransportFailure::kTls);
	EXPECT_EQ(FailureFromCode(CURLE_UNSUPPORTED_PROTOCOL, false), TransportFailure::kProtocol);
	EXPECT_EQ(FailureFromCode(CURLE_URL_MALFORMAT, false), TransportFailure::kProtocol);
	EXPECT_EQ(FailureFromCode(CURLE_ABORTED_BY_CALLBACK, false), TransportFailure::kCancelled);
}

} // namespace
