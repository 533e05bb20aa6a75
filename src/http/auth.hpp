// Auth schemes the vendors use (vendor-apis.md): Basic with extra headers
// (ConnectWise), static header keys (Autotask), OAuth2 token endpoints with
// client-credentials or password grants (NinjaOne, HaloPSA, Pax8, Microsoft,
// Datto). Tokens are cached until shortly before expiry and dropped on 401.
#pragma once

#include "http/client.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace billrecon::http {

// Authorization: Basic base64(user:password), plus fixed extra headers
// (e.g. ConnectWise's clientId).
std::unique_ptr<Auth> MakeBasicAuth(std::string user, std::string password, std::vector<Header> extra_headers = {});

// Fixed headers carrying secrets (e.g. Autotask's ApiIntegrationCode/UserName/Secret).
// `secret_values` lists which header values are secret.
std::unique_ptr<Auth> MakeHeaderAuth(std::vector<Header> headers, std::vector<std::string> secret_values);

struct OAuth2Config {
	std::string token_url;
	enum class Grant { kClientCredentials, kPassword } grant = Grant::kClientCredentials;
	enum class BodyStyle { kForm, kJson } body_style = BodyStyle::kForm;
	std::string client_id;
	std::string client_secret;
	std::string username;       // password grant
	std::string password;       // password grant
	std::string scope;          // omitted when empty
	std::string audience;       // omitted when empty (Pax8)
	std::string resource;       // omitted when empty (Partner Center v1)
	// Send client id/secret as HTTP Basic instead of in the body (Datto uses
	// Basic public-client:public with the password grant).
	std::optional<std::pair<std::string, std::string>> basic_client;
	long expiry_margin_s = 60;  // refresh this long before expires_in runs out
};

// Bearer tokens from an OAuth2 token endpoint; the token response must be
// JSON with access_token (and usually expires_in).
std::unique_ptr<Auth> MakeOAuth2Auth(OAuth2Config config);

// RFC 4648 base64 (for Basic auth; exposed for tests).
std::string Base64Encode(std::string_view in);

// application/x-www-form-urlencoded / URL query component encoding.
std::string UrlEncode(std::string_view in);

} // namespace billrecon::http

#include "core_only.hpp"
