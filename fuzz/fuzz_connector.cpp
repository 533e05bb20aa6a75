// libFuzzer target: one connector's Sync over fuzzed HTTP answers.
// Built once per kind with -DBILLRECON_FUZZ_KIND="<kind>" (fuzz_<kind>).
// The input is the body of the first list page and, split at "\n%%\n" lines,
// of the later ones (fuzz_support.hpp); token requests get a valid token.
// Configurations are those of test/unit/<kind>_test.cpp.
#include "connectors/connector.hpp"
#include "connectors/registry.hpp"
#include "fuzz_support.hpp"
#include "http/client.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#ifndef BILLRECON_FUZZ_KIND
#error "define BILLRECON_FUZZ_KIND"
#endif

namespace connectors = billrecon::connectors;
namespace http = billrecon::http;
namespace model = billrecon::model;

namespace {

connectors::IntegrationConfig Config() {
	const std::string kind = BILLRECON_FUZZ_KIND;
	connectors::IntegrationConfig c;
	c.id = 1;
	c.name = "fuzz";
	c.kind = kind;
	if (kind == "connectwise") {
		c.base_url = "https://cw.example.test/v4_6_release/apis/3.0/";
		c.credentials_json =
		    R"({"company_id": "acme", "public_key": "pubKEY", "private_key": "privSECRET", "client_id": "5f2c-guid"})";
		c.options_json = R"({"page_size": 2})";
	} else if (kind == "halopsa") {
		c.base_url = "https://acme.halopsa.example.test";
		c.credentials_json = R"({"client_id": "halo-client", "client_secret": "halo-SECRET"})";
		c.options_json = R"({"page_size": 2})";
	} else if (kind == "autotask") {
		c.base_url = "https://at.example.test/ATServicesRest";
		c.credentials_json =
		    R"({"integration_code": "TRACK-CODE-9", "username": "api@msp.example", "secret": "at-SECRET"})";
		c.options_json = R"({"page_size": 2})";
	} else if (kind == "msgraph") {
		c.base_url = "https://graph.test";
		c.credentials_json = R"({"tenant_id": "99999999-8888-4777-8666-555555555555", "client_id": "graph-app",)"
		                     R"( "client_secret": "graph-SECRET"})";
		c.options_json = R"({"customer_tenants": ["3f2b8c1e-7d4a-4e5b-9c6d-1a2b3c4d5e6f",)"
		                 R"( "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"],)"
		                 R"( "token_url": "https://login.test/{tenant}/oauth2/v2.0/token"})";
	} else if (kind == "partnercenter") {
		c.base_url = "https://pc.test";
		c.credentials_json = R"({"tenant_id": "99999999-8888-4777-8666-555555555555", "client_id": "pc-app",)"
		                     R"( "client_secret": "pc-SECRET"})";
		c.options_json = R"({"page_size": 2, "token_url": "https://login.test/{tenant}/oauth2/v2.0/token"})";
	} else if (kind == "pax8") {
		c.base_url = "https://pax8.test";
		c.credentials_json = R"({"client_id": "pax8-client", "client_secret": "pax8-SECRET"})";
		c.options_json = R"({"page_size": 3})";
	} else if (kind == "ninjaone") {
		c.base_url = "https://app.ninjarmm.test";
		c.credentials_json = R"({"client_id": "ninja-client", "client_secret": "ninja-SECRET"})";
		c.options_json = R"({"page_size": 3})";
	} else if (kind == "dattormm") {
		c.base_url = "https://merlot.test";
		c.credentials_json = R"({"api_key": "datto-KEY", "api_secret": "datto-SECRET"})";
		c.options_json = R"({"page_size": 2})";
	} else {
		std::fprintf(stderr, "fuzz_connector: unknown kind %s\n", kind.c_str());
		std::abort();
	}
	return c;
}

// Accepts everything; touches each row so that ASan sees the strings.
struct NullSink : connectors::RecordSink {
	size_t bytes = 0;
	template <typename Row>
	void Touch(const std::vector<Row> &rows) {
		for (const Row &r : rows)
			bytes += r.external_id.size();
	}
	void PutCompanies(const std::vector<model::Company> &rows) override {
		Touch(rows);
	}
	void PutAgreements(const std::vector<model::Agreement> &rows) override {
		Touch(rows);
	}
	void PutLineItems(const std::vector<model::LineItem> &rows) override {
		Touch(rows);
	}
	void PutVendorAccounts(const std::vector<model::VendorAccount> &rows) override {
		Touch(rows);
	}
	void PutUsage(const std::vector<model::UsageRecord> &rows) override {
		Touch(rows);
	}
	void OnPage(std::string_view phase, size_t records) override {
		bytes += phase.size() + records;
	}
	void Warn(std::string message) override {
		bytes += message.size();
	}
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static const connectors::IntegrationConfig config = Config();
	static const connectors::KindInfo *kind = connectors::FindKind(config.kind);
	if (kind == nullptr) {
		std::fprintf(stderr, "fuzz_connector: kind %s is not registered\n", config.kind.c_str());
		std::abort();
	}
	std::string_view in(reinterpret_cast<const char *>(data), size);
	billrecon::fuzz::Guard("fuzz_" BILLRECON_FUZZ_KIND, [&] {
		http::ClientOptions options;
		options.max_retries = 0;
		http::Client client(options,
		                    std::make_unique<billrecon::fuzz::FuzzTransport>(billrecon::fuzz::SplitAnswers(in)),
		                    [] { return false; }, [](long) {});
		std::unique_ptr<connectors::Connector> connector = kind->create(config, client);
		NullSink sink;
		connectors::SyncOutcome outcome = connector->Sync(connectors::SyncRequest{}, client, sink);
		(void)outcome;
	});
	return 0;
}
