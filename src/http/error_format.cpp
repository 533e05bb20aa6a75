#include "json/rapidjson_config.hpp"

#include "http/error_format.hpp"
#include "http/url.hpp"

#include <cctype>

namespace billrecon::http {

namespace {

std::string HostOf(const Request &request) {
	if (const std::optional<UrlParts> parts = ParseUrl(request.url))
		return parts->host;
	return DisplayUrl(std::string_view(request.url));
}

std::string RequestLine(const Request &request) {
	std::string s = std::string(MethodName(request.method)) + " " + DisplayUrl(std::string_view(request.url));
	if (!request.label.empty())
		s += " (" + request.label + ")";
	return s;
}

HttpError Finish(const char *sqlstate, const std::string &message, const std::string &detail,
                 const std::string &hint, long status, const Redactor &redact) {
	return HttpError(sqlstate, SanitizeText(redact(message)), SanitizeText(redact(detail)),
	                 SanitizeText(redact(hint)), status);
}

std::optional<std::string> RequestId(const Response &response) {
	static constexpr const char *kNames[] = {"X-Request-Id", "Request-Id", "X-Ms-Request-Id", "MS-RequestId",
	                                         "X-Correlation-Id", "X-Amzn-RequestId", "CF-Ray"};
	for (const char *name : kNames) {
		if (std::optional<std::string> v = response.HeaderValue(name); v && !v->empty())
			return v;
	}
	return std::nullopt;
}

std::string StatusFacts(const FailureFacts &f, const Redactor &redact) {
	const Response &r = f.attempt.response;
	std::string s = "HTTP status: " + std::to_string(r.status) + ". Attempts: " + std::to_string(f.attempts) + ".";
	if (std::optional<std::string> id = RequestId(r))
		s += " Request id: " + Snippet(*id, 100, redact) + ".";
	if (r.status >= 300 && r.status <= 399) {
		if (std::optional<std::string> location = r.HeaderValue("Location"))
			s += " Location: " + Snippet(DisplayUrl(std::string_view(*location)), 200, redact) + ".";
	}
	if (!r.body.empty())
		s += " Vendor message: " + Snippet(VendorMessage(r.body), kVendorMessageMax, redact);
	return s;
}

void AddString(const rapidjson::Value &v, std::vector<std::string> &parts) {
	if (v.IsString() && v.GetStringLength() > 0) {
		std::string s(v.GetString(), v.GetStringLength());
		for (const std::string &p : parts) {
			if (p == s)
				return;
		}
		parts.push_back(std::move(s));
	}
}

void CollectErrorFields(const rapidjson::Value &obj, std::vector<std::string> &parts, int depth) {
	static constexpr const char *kKeys[] = {"error",   "error_description", "code",   "message", "Message",
	                                        "title",   "detail",            "errors", "details", "errorMessage",
	                                        "error_message"};
	for (const char *key : kKeys) {
		const auto m = obj.FindMember(key);
		if (m == obj.MemberEnd())
			continue;
		const rapidjson::Value &v = m->value;
		if (v.IsString()) {
			// A bare "code" is only worth showing next to a message.
			if (std::string_view(key) != "code" || depth > 0 || obj.HasMember("message"))
				AddString(v, parts);
		} else if (v.IsObject() && depth == 0) {
			CollectErrorFields(v, parts, depth + 1);
		} else if (v.IsArray() && depth == 0) {
			rapidjson::SizeType n = 0;
			for (const rapidjson::Value &e : v.GetArray()) {
				if (++n > 3)
					break;
				if (e.IsString())
					AddString(e, parts);
				else if (e.IsObject())
					CollectErrorFields(e, parts, depth + 1);
			}
		}
	}
}

std::string Trimmed(std::string_view s) {
	while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
		s.remove_prefix(1);
	while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
		s.remove_suffix(1);
	return std::string(s);
}

} // namespace

std::string VendorMessage(std::string_view body) {
	const std::string text = Trimmed(body);
	if (!text.empty() && text.front() == '{' && text.size() <= (4u << 20)) {
		try {
			rapidjson::Document doc;
			doc.Parse(text.data(), text.size());
			if (!doc.HasParseError() && doc.IsObject()) {
				std::vector<std::string> parts;
				CollectErrorFields(doc, parts, 0);
				if (!parts.empty()) {
					std::string joined;
					for (const std::string &p : parts)
						joined += (joined.empty() ? "" : "; ") + p;
					return joined;
				}
			}
		} catch (const json::AssertError &) {
			// fall back to the raw body
		}
	} else if (!text.empty() && text.front() == '<') {
		std::string lower(text.substr(0, 4096));
		for (char &c : lower)
			c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
		const size_t open = lower.find("<title>");
		const size_t close = lower.find("</title>");
		if (open != std::string::npos && close != std::string::npos && close > open + 7)
			return Trimmed(std::string_view(text).substr(open + 7, close - open - 7));
	}
	return text;
}

std::string SanitizeText(std::string_view text) {
	std::string out;
	out.reserve(text.size());
	size_t i = 0;
	while (i < text.size()) {
		const auto c = static_cast<unsigned char>(text[i]);
		if (c < 0x80) {
			out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
			++i;
			continue;
		}
		size_t len = 0;
		unsigned cp = 0;
		if ((c & 0xE0) == 0xC0) {
			len = 2;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4;
			cp = c & 0x07;
		}
		bool ok = len != 0 && i + len <= text.size();
		for (size_t k = 1; ok && k < len; ++k) {
			const auto cc = static_cast<unsigned char>(text[i + k]);
			ok = (cc & 0xC0) == 0x80;
			cp = (cp << 6) | (cc & 0x3F);
		}
		// Reject overlong forms, surrogates and values past U+10FFFF.
		if (ok) {
			static constexpr unsigned kMin[] = {0, 0, 0x80, 0x800, 0x10000};
			ok = cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
		}
		if (ok) {
			out.append(text.substr(i, len));
			i += len;
		} else {
			out += '?';
			++i;
		}
	}
	return out;
}

std::string Snippet(std::string_view text, size_t max, const Redactor &redact) {
	std::string s = redact.Apply(text, max + 1);
	if (s.size() > max) {
		s.resize(max);
		// Do not leave half a UTF-8 character behind.
		size_t cut = s.size();
		while (cut > 0 && (static_cast<unsigned char>(s[cut - 1]) & 0xC0) == 0x80)
			--cut;
		if (cut > 0 && static_cast<unsigned char>(s[cut - 1]) >= 0xC0)
			s.resize(cut - 1);
		s += "...";
	}
	return SanitizeText(s);
}

HttpError MakeFailureError(const FailureFacts &f, const Redactor &redact) {
	const std::string host = HostOf(f.request);
	const std::string request = "Request: " + RequestLine(f.request) + ".";
	const Attempt &a = f.attempt;
	const char *state = FailureSqlstate(a);
	const std::string attempts = "Attempts: " + std::to_string(f.attempts) + ".";
	std::string_view curl_message = a.error;
	while (!curl_message.empty() && (curl_message.back() == '.' || curl_message.back() == ' '))
		curl_message.remove_suffix(1);
	const std::string error = "Error: " + Snippet(curl_message, 300, redact) + ".";

	switch (a.failure) {
	case TransportFailure::kConnect:
		return Finish(state, "could not connect to " + host, request + " " + error + " " + attempts,
		              "check the integration's base URL and that this server can reach the vendor", 0, redact);
	case TransportFailure::kTimeout:
		return Finish(state, "request to " + host + " timed out", request + " " + error + " " + attempts,
		              "the vendor is slow or unreachable; try again later", 0, redact);
	case TransportFailure::kReset:
		return Finish(state, "connection to " + host + " was interrupted", request + " " + error + " " + attempts,
		              "the vendor closed the connection before the answer was complete; try again later", 0,
		              redact);
	case TransportFailure::kTooLarge:
		return Finish(state, "response from " + host + " is too large",
		              request + " Limit: " + std::to_string(f.max_response_bytes) + " bytes. " + attempts,
		              "request smaller pages (lower the integration's page size)", 0, redact);
	case TransportFailure::kTls:
		return Finish(state, "could not verify the TLS certificate of " + host, request + " " + error,
		              "make sure the server's certificate is valid for its host name and issued by a trusted CA", 0,
		              redact);
	case TransportFailure::kProtocol:
		return Finish(state, "invalid HTTP exchange with " + host, request + " " + error,
		              "check the integration's base URL", 0, redact);
	case TransportFailure::kCancelled:
		return Finish(state, "request to " + host + " was cancelled", request, "", 0, redact);
	case TransportFailure::kNone:
		break;
	}

	const long status = a.response.status;
	const std::string detail = request + " " + StatusFacts(f, redact);
	switch (f.verdict) {
	case Verdict::kAuth:
		return Finish(state, "authentication failed for " + host,
		              detail + (f.token_refreshed ? " A freshly issued token was rejected too." : ""),
		              "check the integration's credentials (billrecon.add_integration)", status, redact);
	case Verdict::kForbidden:
		return Finish(state, "permission denied by " + host, detail,
		              "the credentials were accepted but lack permission for this resource; grant the API user or "
		              "app the required role or scope in the vendor's portal",
		              status, redact);
	case Verdict::kRateLimited:
		return Finish(state, "rate limit of " + host + " still exceeded after " + std::to_string(f.attempts) +
		                         " attempts",
		              detail, "lower the integration's request rate or try again later", status, redact);
	default:
		break;
	}
	if (status == 404) {
		const std::optional<UrlParts> parts = ParseUrl(f.request.url);
		return Finish(state, "resource not found at " + host + (parts ? ": " + parts->path : std::string()), detail,
		              "check the integration's base URL and API version", status, redact);
	}
	if (status >= 300 && status <= 399)
		return Finish(state, "unexpected redirect from " + host + " (HTTP " + std::to_string(status) + ")", detail,
		              "use the final URL as the integration's base URL: billrecon never follows redirects", status,
		              redact);
	if (status >= 500)
		return Finish(state, "request to " + host + " failed with HTTP status " + std::to_string(status), detail,
		              "the vendor's service is failing; try again later or check the vendor's status page", status,
		              redact);
	return Finish(state, "request to " + host + " failed with HTTP status " + std::to_string(status), detail,
	              "check the integration's settings and the vendor message in DETAIL", status, redact);
}

HttpError MakeInvalidUrlError(const Request &request, const std::string &reason, const Redactor &redact) {
	return Finish(sqlstate::kInvalidParameter, "invalid request URL",
	              "Request: " + RequestLine(request) + ". " + reason,
	              "use an absolute https:// base URL, such as https://api.example.com", 0, redact);
}

HttpError MakeHttpRefusedError(const Request &request, const Redactor &redact) {
	return Finish(sqlstate::kInvalidParameter, "refusing to send a request over plain http to " + HostOf(request),
	              "Request: " + RequestLine(request) + ". Only https URLs are allowed.",
	              "use an https:// base URL, or SET billrecon.allow_http = on for testing on loopback", 0, redact);
}

HttpError MakeInvalidHeaderError(const Request &request, const Header &header, const Redactor &redact) {
	return Finish(sqlstate::kInvalidParameter, "invalid request header",
	              "Request: " + RequestLine(request) + ". Header \"" + Snippet(header.name, 100, redact) +
	                  "\" has an empty name or a line break in its name or value.",
	              "remove line breaks from the integration's credentials and options", 0, redact);
}

} // namespace billrecon::http
