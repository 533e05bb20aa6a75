// Plain HTTP values shared by the client, its transports and the connectors.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace billrecon::http {

enum class Method { kGet, kPost, kPatch, kPut, kDelete };

const char *MethodName(Method m) noexcept;

struct Header {
	std::string name;
	std::string value;
};

struct Request {
	Method method = Method::kGet;
	std::string url;
	std::vector<Header> headers; // besides those the client and its Auth add
	std::string body;            // sent as-is; set a Content-Type header with it
	// Short name of what is fetched ("companies page 3"), for progress and errors.
	std::string label;
	// A write that must not be applied twice (it creates something or adds a
	// delta): after an answer that leaves open whether the server applied it
	// (timeout, dropped connection, 408, 5xx) it is not re-sent; the caller
	// re-reads the server's state instead. Refused connections and 429 are
	// still retried: the server did not take the request.
	bool send_once = false;
};

struct Response {
	long status = 0;
	std::vector<Header> headers; // names as received; look up case-insensitively
	std::string body;
	std::string url;             // the URL that produced this response
	long elapsed_ms = 0;

	// First header with that name (case-insensitive), if any.
	std::optional<std::string> HeaderValue(std::string_view name) const;
};

// Case-insensitive ASCII comparison, for header names.
bool IEquals(std::string_view a, std::string_view b) noexcept;

} // namespace billrecon::http

#include "core_only.hpp"
