// MethodName, IEquals and Response::HeaderValue (declared in http/types.hpp).
#include "http/types.hpp"

namespace billrecon::http {

const char *MethodName(Method m) noexcept {
	switch (m) {
	case Method::kGet:
		return "GET";
	case Method::kPost:
		return "POST";
	case Method::kPatch:
		return "PATCH";
	case Method::kPut:
		return "PUT";
	case Method::kDelete:
		return "DELETE";
	}
	return "GET";
}

namespace {
char AsciiLower(char c) noexcept {
	return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
} // namespace

bool IEquals(std::string_view a, std::string_view b) noexcept {
	if (a.size() != b.size())
		return false;
	for (size_t i = 0; i < a.size(); ++i) {
		if (AsciiLower(a[i]) != AsciiLower(b[i]))
			return false;
	}
	return true;
}

std::optional<std::string> Response::HeaderValue(std::string_view name) const {
	for (const Header &h : headers) {
		if (IEquals(h.name, name))
			return h.value;
	}
	return std::nullopt;
}

} // namespace billrecon::http
