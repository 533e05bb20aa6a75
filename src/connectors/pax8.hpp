// Pax8 partner API v1 (vendor-apis.md section 4): companies and subscriptions.
//
//   GET /v1/companies?page=P&size=N      -> vendor accounts
//   GET /v1/subscriptions?page=P&size=N  -> usage records of kind subscription
//   GET /v1/products/{id}                -> a product's name, only for subscriptions
//                                           without productName (each product once,
//                                           several in flight, cached for the sync)
// Paging: page is 0-based; the body is {content: [...], page: {size,
// totalElements, totalPages, number}}; the last page is number + 1 >= totalPages.
//
// Auth: OAuth2 client credentials with a JSON body carrying an audience, at
// {base}/v1/token (options.token_url, options.audience). Pax8 documents no
// modified-since filter on these lists: quick syncs run full.
#pragma once

#include "connectors/connector.hpp"
#include "model/records.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace billrecon::connectors {

class Pax8Connector : public Connector {
public:
	static constexpr const char *kDefaultAudience = "https://api.pax8.com";
	static constexpr const char *kQuickFallbackNote =
	    "pax8 has no modified-since filter: quick sync ran as a full sync";

	struct Settings {
		std::string base_url;  // https://api.pax8.com (paths start with /v1)
		long page_size = 200;  // 1..200
		long max_pages = 100000;
	};

	explicit Pax8Connector(Settings settings);

	SyncOutcome Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) override;

	// Subscription.status -> enabled: Active -> true; the other documented
	// values (Cancelled, PendingManual, PendingAutomated, PendingCancel,
	// WaitingForDetails, Trial, Converted, PendingActivation, Activated) ->
	// false; nullopt for anything else (the sync then fails). Case-insensitive.
	static std::optional<bool> SubscriptionEnabled(std::string_view status);

	// The host of a website field ("https://www.Harbor.com/x" -> "harbor.com"),
	// or nullopt when it does not look like a domain.
	static std::optional<std::string> DomainOfWebsite(std::string_view website);

	const Settings &settings() const noexcept {
		return settings_;
	}

private:
	Settings settings_;
};

// Registry factory: reads credentials and options, installs the OAuth2 auth
// on `client`. Throws billrecon::Error (22023) on unusable configuration.
std::unique_ptr<Connector> CreatePax8(const IntegrationConfig &config, http::Client &client);

} // namespace billrecon::connectors

#include "core_only.hpp"
