// Auth schemes (auth.hpp): Basic, fixed secret headers, OAuth2 bearer tokens.
#include "json/rapidjson_config.hpp"

#include "http/auth.hpp"
#include "http/oauth2_clock.hpp"
#include "http/redact.hpp"
#include "http/url.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <deque>

namespace billrecon::http {

namespace {

void SetHeader(std::vector<Header> &headers, const std::string &name, std::string value) {
	const auto same_name = [&](const Header &h) { return IEquals(h.name, name); };
	headers.erase(std::remove_if(headers.begin(), headers.end(), same_name), headers.end());
	headers.push_back(Header {name, std::move(value)});
}

class BasicAuth final : public Auth {
public:
	BasicAuth(const std::string &user, std::string password, std::vector<Header> extra)
	    : password_(std::move(password)), encoded_(Base64Encode(user + ":" + password_)), extra_(std::move(extra)) {
	}
	void Apply(Client &, Request &request) override {
		SetHeader(request.headers, "Authorization", "Basic " + encoded_);
		for (const Header &h : extra_)
			SetHeader(request.headers, h.name, h.value);
	}
	bool Invalidate() override {
		return false;
	}
	std::vector<std::string> Secrets() const override {
		return {password_, encoded_};
	}

private:
	std::string password_;
	std::string encoded_;
	std::vector<Header> extra_;
};

class HeaderAuth final : public Auth {
public:
	HeaderAuth(std::vector<Header> headers, std::vector<std::string> secrets)
	    : headers_(std::move(headers)), secrets_(std::move(secrets)) {
	}
	void Apply(Client &, Request &request) override {
		for (const Header &h : headers_)
			SetHeader(request.headers, h.name, h.value);
	}
	bool Invalidate() override {
		return false;
	}
	std::vector<std::string> Secrets() const override {
		return secrets_;
	}

private:
	std::vector<Header> headers_;
	std::vector<std::string> secrets_;
};

constexpr long kDefaultExpiresIn = 3600;
constexpr size_t kRememberedTokens = 4;

std::string HostOf(const std::string &url) {
	if (const std::optional<UrlParts> parts = ParseUrl(url))
		return parts->host;
	return DisplayUrl(std::string_view(url));
}

// expires_in as a number or a numeric string; nullopt when absent or odd.
std::optional<long> ExpiresIn(const rapidjson::Value &doc) {
	const auto m = doc.FindMember("expires_in");
	if (m == doc.MemberEnd())
		return std::nullopt;
	double seconds = -1;
	if (m->value.IsNumber()) {
		seconds = m->value.GetDouble();
	} else if (m->value.IsString()) {
		const char *s = m->value.GetString();
		char *end = nullptr;
		seconds = std::strtod(s, &end);
		if (end == s || *end != '\0')
			return std::nullopt;
	}
	if (!std::isfinite(seconds) || seconds <= 0 || seconds > 10.0 * 365 * 86400)
		return std::nullopt;
	return static_cast<long>(seconds);
}

class OAuth2Auth final : public Auth {
public:
	OAuth2Auth(OAuth2Config config, SteadyClockFn clock) : config_(std::move(config)), clock_(std::move(clock)) {
		if (!clock_)
			clock_ = [] { return std::chrono::steady_clock::now(); };
		if (config_.basic_client)
			basic_header_ = Base64Encode(config_.basic_client->first + ":" + config_.basic_client->second);
	}

	void Apply(Client &client, Request &request) override {
		if (!token_ || clock_() >= expires_at_)
			Fetch(client);
		SetHeader(request.headers, "Authorization", "Bearer " + *token_);
	}

	bool Invalidate() override {
		const bool had = token_.has_value();
		token_.reset();
		return had;
	}

	std::vector<std::string> Secrets() const override {
		std::vector<std::string> s {config_.client_secret, config_.password};
		if (!basic_header_.empty())
			s.push_back(basic_header_);
		s.insert(s.end(), issued_.begin(), issued_.end()); // the current token and a few before it
		return s;
	}

private:
	std::string Body() const {
		std::vector<std::pair<const char *, const std::string *>> fields;
		const std::string grant =
		    config_.grant == OAuth2Config::Grant::kPassword ? "password" : "client_credentials";
		if (!config_.basic_client) {
			fields.emplace_back("client_id", &config_.client_id);
			fields.emplace_back("client_secret", &config_.client_secret);
		}
		if (config_.grant == OAuth2Config::Grant::kPassword) {
			fields.emplace_back("username", &config_.username);
			fields.emplace_back("password", &config_.password);
		}
		fields.emplace_back("scope", &config_.scope);
		fields.emplace_back("audience", &config_.audience);
		fields.emplace_back("resource", &config_.resource);
		fields.emplace_back("grant_type", &grant);

		if (config_.body_style == OAuth2Config::BodyStyle::kJson) {
			rapidjson::StringBuffer buffer;
			rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
			writer.StartObject();
			for (const auto &[name, value] : fields) {
				if (value->empty())
					continue;
				writer.Key(name);
				writer.String(value->data(), static_cast<rapidjson::SizeType>(value->size()));
			}
			writer.EndObject();
			return std::string(buffer.GetString(), buffer.GetSize());
		}
		std::string body;
		for (const auto &[name, value] : fields) {
			if (value->empty())
				continue;
			if (!body.empty())
				body += '&';
			body += name;
			body += '=';
			body += UrlEncode(*value);
		}
		return body;
	}

	[[noreturn]] void Throw(const char *state, const std::string &message, const std::string &detail,
	                        const std::string &hint, long status) const {
		const Redactor redact(Secrets());
		throw HttpError(state, redact(message), redact(detail), redact(hint), status);
	}

	void Fetch(Client &client) {
		Request request;
		request.method = Method::kPost;
		request.url = config_.token_url;
		request.label = "OAuth2 token";
		request.headers.push_back({"Accept", "application/json"});
		request.headers.push_back({"Content-Type", config_.body_style == OAuth2Config::BodyStyle::kJson
		                                               ? "application/json"
		                                               : "application/x-www-form-urlencoded"});
		if (!basic_header_.empty())
			request.headers.push_back({"Authorization", "Basic " + basic_header_});
		request.body = Body();

		const std::string host = HostOf(config_.token_url);
		const std::string where = "Token URL: " + DisplayUrl(std::string_view(config_.token_url)) + ".";
		Response response;
		try {
			response = client.SendUnauthenticated(std::move(request));
		} catch (const HttpError &e) {
			if (e.status() == 400 || e.status() == 401 || e.status() == 403)
				Throw(sqlstate::kInvalidAuthorization, "could not obtain an access token from " + host, e.detail(),
				      "check the integration's credentials (billrecon.add_integration)", e.status());
			Throw(e.sqlstate().c_str(), e.what(), e.detail(), e.hint(), e.status());
		}

		rapidjson::Document doc;
		try {
			doc.Parse(response.body.data(), response.body.size());
		} catch (const json::AssertError &) {
			doc.SetNull();
		}
		if (doc.HasParseError() || !doc.IsObject()) {
			std::string why = doc.HasParseError() ? std::string(rapidjson::GetParseError_En(doc.GetParseError())) +
			                                            " at offset " + std::to_string(doc.GetErrorOffset())
			                                      : std::string("the response is not a JSON object");
			Throw(sqlstate::kDataException, "token endpoint of " + host + " returned invalid JSON",
			      where + " HTTP status: " + std::to_string(response.status) + ". Problem: " + why + ".",
			      "check the integration's token_url", response.status);
		}
		const auto token = doc.FindMember("access_token");
		if (token == doc.MemberEnd() || !token->value.IsString() || token->value.GetStringLength() == 0) {
			std::string fields;
			for (const auto &m : doc.GetObject()) {
				if (m.name.IsString())
					fields += (fields.empty() ? "" : ", ") + std::string(m.name.GetString(), m.name.GetStringLength());
			}
			Throw(sqlstate::kInvalidAuthorization, "token endpoint returned no access_token",
			      where + " Fields in the response: " + (fields.empty() ? "none" : fields) + ".",
			      "check the integration's token_url and credentials", response.status);
		}
		std::string value(token->value.GetString(), token->value.GetStringLength());
		for (const char c : value) {
			if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
				Throw(sqlstate::kInvalidAuthorization, "token endpoint returned an invalid access_token",
				      where + " The token contains control characters.", "check the integration's token_url",
				      response.status);
		}
		const long expires_in = ExpiresIn(doc).value_or(kDefaultExpiresIn);
		const long lifetime = std::max(expires_in - std::max(0L, config_.expiry_margin_s), expires_in / 2);
		expires_at_ = clock_() + std::chrono::seconds(lifetime);
		issued_.push_back(value);
		if (issued_.size() > kRememberedTokens)
			issued_.pop_front();
		token_ = std::move(value);
	}

	OAuth2Config config_;
	SteadyClockFn clock_;
	std::string basic_header_;
	std::optional<std::string> token_;
	std::chrono::steady_clock::time_point expires_at_;
	std::deque<std::string> issued_;
};

} // namespace

std::unique_ptr<Auth> MakeBasicAuth(std::string user, std::string password, std::vector<Header> extra_headers) {
	return std::make_unique<BasicAuth>(user, std::move(password), std::move(extra_headers));
}

std::unique_ptr<Auth> MakeHeaderAuth(std::vector<Header> headers, std::vector<std::string> secret_values) {
	return std::make_unique<HeaderAuth>(std::move(headers), std::move(secret_values));
}

std::unique_ptr<Auth> MakeOAuth2Auth(OAuth2Config config, SteadyClockFn clock) {
	return std::make_unique<OAuth2Auth>(std::move(config), std::move(clock));
}

std::unique_ptr<Auth> MakeOAuth2Auth(OAuth2Config config) {
	return MakeOAuth2Auth(std::move(config), nullptr);
}

} // namespace billrecon::http
