#include "sync/runner.hpp"

#include "connectors/registry.hpp"
#include "model/error.hpp"

#include <utility>

namespace billrecon::sync {

namespace {

// Counts what passes to the real sink.
class CountingSink : public connectors::RecordSink {
public:
	CountingSink(connectors::RecordSink &inner, Stats &stats) : inner_(inner), stats_(stats) {
	}
	void PutCompanies(const std::vector<model::Company> &rows) override {
		stats_.records += static_cast<long>(rows.size());
		inner_.PutCompanies(rows);
	}
	void PutAgreements(const std::vector<model::Agreement> &rows) override {
		stats_.records += static_cast<long>(rows.size());
		inner_.PutAgreements(rows);
	}
	void PutLineItems(const std::vector<model::LineItem> &rows) override {
		stats_.records += static_cast<long>(rows.size());
		inner_.PutLineItems(rows);
	}
	void PutVendorAccounts(const std::vector<model::VendorAccount> &rows) override {
		stats_.records += static_cast<long>(rows.size());
		inner_.PutVendorAccounts(rows);
	}
	void PutUsage(const std::vector<model::UsageRecord> &rows) override {
		stats_.records += static_cast<long>(rows.size());
		inner_.PutUsage(rows);
	}
	void OnPage(std::string_view phase, size_t records) override {
		++stats_.pages;
		inner_.OnPage(phase, records);
	}
	void Warn(std::string message) override {
		inner_.Warn(std::move(message));
	}

private:
	connectors::RecordSink &inner_;
	Stats &stats_;
};

} // namespace

http::ClientOptions ClientOptionsFor(const connectors::IntegrationConfig &config, const Defaults &defaults) {
	http::ClientOptions o;
	o.limits.connect_timeout_ms = defaults.connect_timeout_ms;
	o.limits.timeout_ms = defaults.timeout_ms;
	o.limits.max_response_bytes = defaults.max_response_bytes;
	o.limits.allow_http = defaults.allow_http;
	o.limits.verify_tls = true;
	o.limits.ca_file = defaults.ca_file;
	o.limits.user_agent = defaults.user_agent;
	o.max_retries = defaults.max_retries;
	o.retry_base_delay_ms = defaults.retry_base_delay_ms;
	o.retry_max_delay_ms = defaults.retry_max_delay_ms;
	o.max_in_flight = defaults.max_in_flight;
	return connectors::ClientOptionsFor(config, std::move(o));
}

Runner::Runner(connectors::IntegrationConfig config, Defaults defaults, std::function<bool()> cancel,
               std::unique_ptr<http::Transport> transport)
    : config_(std::move(config)), defaults_(std::move(defaults)) {
	if (!transport)
		transport = http::MakeCurlTransport();
	client_ = std::make_unique<http::Client>(ClientOptionsFor(config_, defaults_), std::move(transport),
	                                         std::move(cancel));
}

Runner::~Runner() = default;

connectors::SyncOutcome Runner::Run(const connectors::SyncRequest &request, connectors::RecordSink &sink) {
	connectors::ValidateConfig(config_, defaults_.allow_http);
	const connectors::KindInfo *kind = connectors::FindKind(config_.kind);
	if (!kind) // ValidateConfig rejects unknown kinds; keep the check local anyway
		throw Error(sqlstate::kInternal, "integration kind \"" + config_.kind + "\" has no connector");
	std::unique_ptr<connectors::Connector> connector = kind->create(config_, *client_);
	CountingSink counting(sink, counted_);
	connectors::SyncRequest effective = request;
	if (effective.mode == connectors::SyncMode::kQuick && !effective.since)
		effective.mode = connectors::SyncMode::kFull; // nothing to be quick relative to
	connectors::SyncOutcome outcome = connector->Sync(effective, *client_, counting);
	if (request.mode == connectors::SyncMode::kQuick && !request.since && outcome.note.empty())
		outcome.note = "quick sync ran as full: no earlier successful sync to compare with";
	return outcome;
}

connectors::QuantityChangeResult Runner::WriteQuantity(const connectors::QuantityChange &change, bool check_first) {
	connectors::ValidateConfig(config_, defaults_.allow_http);
	const connectors::KindInfo *kind = connectors::FindKind(config_.kind);
	if (!kind)
		throw Error(sqlstate::kInternal, "integration kind \"" + config_.kind + "\" has no connector");
	std::unique_ptr<connectors::Connector> connector = kind->create(config_, *client_);
	connectors::PsaWriter *writer = connector->writer();
	if (!writer)
		throw Error(sqlstate::kFeatureNotSupported,
		            "integration \"" + config_.name + "\" cannot write quantities back",
		            "Its kind, " + config_.kind + ", is not a PSA: only connectwise, halopsa and autotask line items "
		            "have quantities to change.",
		            "Name the PSA integration the line item came from.");
	if (check_first) {
		model::Decimal now = writer->ReadQuantity(*client_, change);
		if (now == change.new_quantity) {
			connectors::QuantityChangeResult already;
			already.quantity_after = now;
			already.note = "the PSA already holds quantity " + now.str() + "; nothing sent";
			return already;
		}
	}
	return writer->UpdateQuantity(*client_, change);
}

Stats Runner::stats() const {
	Stats s = counted_;
	const http::ClientStats &c = client_->stats();
	s.requests = c.requests;
	s.retries = c.retries;
	s.bytes = c.bytes;
	return s;
}

std::string Runner::Redact(std::string text) const {
	return client_->Redact(std::move(text));
}

} // namespace billrecon::sync
