#include "connectors/csv_usage.hpp"

#include "connectors/connector_util.hpp"
#include "model/decimal.hpp"
#include "model/error.hpp"
#include "model/timestamp.hpp"

#include <map>
#include <unordered_map>

namespace billrecon::connectors {

namespace {

constexpr size_t kColumns = 9;

[[noreturn]] void Fail(size_t line, const std::string &what) {
	throw Error(sqlstate::kInvalidText, "invalid CSV usage data", "line " + std::to_string(line) + ": " + what,
	            std::string("The CSV must start with the header ") + kCsvUsageHeader +
	                " and have one usage record per line (RFC 4180 quoting); the whole file was rejected.");
}

std::string Shown(std::string_view v) {
	std::string s(v.substr(0, 60));
	if (v.size() > 60)
		s += "...";
	return "\"" + s + "\"";
}

// Without leading and trailing spaces and tabs (only those, unlike
// connectors::Trim).
std::string TrimBlanks(std::string_view s) {
	size_t b = 0, e = s.size();
	while (b < e && (s[b] == ' ' || s[b] == '\t'))
		++b;
	while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'))
		--e;
	return std::string(s.substr(b, e - b));
}

model::UsageKind ParseKind(size_t line, const std::string &v) {
	std::string k = Lower(v);
	if (k == "device")
		return model::UsageKind::kDevice;
	if (k == "licence" || k == "license")
		return model::UsageKind::kLicence;
	if (k == "user")
		return model::UsageKind::kUser;
	if (k == "subscription")
		return model::UsageKind::kSubscription;
	Fail(line, "kind " + Shown(v) + " is not one of device, licence, user, subscription");
}

model::DeviceClass ParseClass(size_t line, const std::string &v) {
	std::string c = Lower(v);
	if (c == "desktop")
		return model::DeviceClass::kDesktop;
	if (c == "laptop")
		return model::DeviceClass::kLaptop;
	if (c == "server")
		return model::DeviceClass::kServer;
	if (c == "other")
		return model::DeviceClass::kOther;
	Fail(line, "device_class " + Shown(v) + " is not one of desktop, laptop, server, other");
}

class CsvConnector : public Connector {
public:
	SyncOutcome Sync(const SyncRequest &, http::Client &, RecordSink &) override {
		SyncOutcome out;
		out.effective_mode = SyncMode::kQuick; // never marks anything removed
		out.note = "csv integrations are loaded with billrecon.import_usage_csv(); nothing to fetch";
		return out;
	}
};

} // namespace

std::vector<std::vector<std::string>> SplitCsv(std::string_view text, std::vector<size_t> &lines) {
	std::vector<std::vector<std::string>> records;
	lines.clear();
	size_t i = 0, line = 1;
	if (text.substr(0, 3) == "\xEF\xBB\xBF")
		i = 3;
	while (i < text.size()) {
		std::vector<std::string> fields;
		size_t start_line = line;
		std::string field;
		bool done = false;
		while (!done) {
			field.clear();
			if (i < text.size() && text[i] == '"') {
				++i;
				for (;;) {
					if (i >= text.size())
						Fail(start_line, "a quoted field is not closed before the end of the text");
					char c = text[i++];
					if (c == '"') {
						if (i < text.size() && text[i] == '"') {
							field.push_back('"');
							++i;
							continue;
						}
						break;
					}
					if (c == '\n')
						++line;
					field.push_back(c);
				}
				if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r')
					Fail(line, "text after a closing quote (quote the whole field, double quotes inside)");
			} else {
				while (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
					if (text[i] == '"')
						Fail(line, "a quote inside an unquoted field (quote the whole field, double quotes inside)");
					field.push_back(text[i++]);
				}
			}
			fields.push_back(field);
			if (i < text.size() && text[i] == ',') {
				++i;
				continue;
			}
			// A record ends at CRLF, LF or a lone CR (old Mac files): each is one line.
			if (i < text.size() && text[i] == '\r') {
				++i;
				if (i < text.size() && text[i] == '\n')
					++i;
				++line;
			} else if (i < text.size() && text[i] == '\n') {
				++i;
				++line;
			}
			done = true;
		}
		// A blank line (one empty unquoted field) carries no record.
		if (!(fields.size() == 1 && fields[0].empty())) {
			records.push_back(std::move(fields));
			lines.push_back(start_line);
		}
	}
	return records;
}

CsvUsage ParseCsvUsage(std::string_view text) {
	std::vector<size_t> lines;
	std::vector<std::vector<std::string>> records = SplitCsv(text, lines);
	if (records.empty())
		Fail(1, "the text is empty; expected the header line");
	{
		std::string header;
		for (size_t f = 0; f < records[0].size(); ++f)
			header += (f ? "," : "") + Lower(TrimBlanks(records[0][f]));
		if (header != kCsvUsageHeader)
			Fail(lines[0], "the header is " + Shown(header) + ", expected " + kCsvUsageHeader);
	}
	CsvUsage out;
	std::unordered_map<std::string, size_t> account_index; // account id -> index in out.accounts
	std::unordered_map<std::string, size_t> key_count;
	for (size_t r = 1; r < records.size(); ++r) {
		const std::vector<std::string> &f = records[r];
		const size_t line = lines[r];
		if (f.size() != kColumns)
			Fail(line, "expected " + std::to_string(kColumns) + " fields, found " + std::to_string(f.size()));
		std::string account_id = TrimBlanks(f[0]), account_name = TrimBlanks(f[1]);
		if (account_id.empty())
			Fail(line, "account_id is empty");
		if (account_name.empty())
			Fail(line, "account_name is empty");
		auto [it, inserted] = account_index.emplace(account_id, out.accounts.size());
		if (inserted) {
			model::VendorAccount a;
			a.external_id = account_id;
			a.name = account_name;
			out.accounts.push_back(std::move(a));
		} else if (out.accounts[it->second].name != account_name) {
			Fail(line, "account " + Shown(account_id) + " is named " + Shown(account_name) + " here but " +
			               Shown(out.accounts[it->second].name) + " earlier");
		}

		model::UsageRecord u;
		u.account_external_id = account_id;
		u.kind = ParseKind(line, TrimBlanks(f[2]));
		std::string product = TrimBlanks(f[3]);
		bool counted = u.kind == model::UsageKind::kLicence || u.kind == model::UsageKind::kSubscription;
		if (product.empty() && counted)
			Fail(line, "product is required for kind " + std::string(model::UsageKindName(u.kind)));
		if (!product.empty())
			u.product = product;
		std::string quantity = TrimBlanks(f[4]);
		if (quantity.empty()) {
			if (counted)
				Fail(line, "quantity is required for kind " + std::string(model::UsageKindName(u.kind)));
			u.quantity = model::Decimal::Parse("1");
		} else {
			if (!model::Decimal::IsValid(quantity))
				Fail(line, "quantity " + Shown(quantity) + " is not a decimal number");
			u.quantity = model::Decimal::Parse(quantity);
			if (u.quantity.IsNegative())
				Fail(line, "quantity " + Shown(quantity) + " is negative");
		}
		std::string device_class = TrimBlanks(f[5]);
		if (!device_class.empty()) {
			if (u.kind != model::UsageKind::kDevice)
				Fail(line, "device_class is only for kind device");
			u.device_class = ParseClass(line, device_class);
		}
		if (std::string os = TrimBlanks(f[6]); !os.empty())
			u.os_name = os;
		std::string name = TrimBlanks(f[7]);
		if (!name.empty())
			u.device_name = name;
		if (std::string last = TrimBlanks(f[8]); !last.empty()) {
			try {
				u.last_active_at = model::NormalizeTimestamp(last);
			} catch (const Error &) {
				Fail(line, "last_active_at " + Shown(last) + " is not an ISO 8601 date or timestamp");
			}
		}
		std::string key = account_id + "|" + model::UsageKindName(u.kind) + "|" + product + "|" + name;
		size_t n = ++key_count[key];
		u.external_id = n == 1 ? key : key + "#" + std::to_string(n);
		out.usage.push_back(std::move(u));
	}
	return out;
}

std::unique_ptr<Connector> CreateCsv(const IntegrationConfig &, http::Client &) {
	return std::make_unique<CsvConnector>();
}

} // namespace billrecon::connectors
