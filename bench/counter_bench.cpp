// The counting pass of reconcile() alone, in pure C++ (src/reconcile/
// usage_counter.cpp): the book of bench/reconcile_bench.py — --clients
// clients (default 5,000), ten asset rules, --devices devices each (default
// 200: 1,000,000 records) — streamed through reconcile::UsageCounter the way
// billrecon._count_usage streams them: in the vendor's order (by device, so
// every client's records interleave), or with --by-account one account after
// another.
// Prints the time per record beside the reference of the same run: one plain
// loop that reads every record and tests every rule of its client without
// grouping, machines or unaccounted usage (the C++ twin of the plain join).
// Never fails on time.
//
//   cmake --build build --target billrecon_counter_bench && build/billrecon_counter_bench [--clients N] [--by-account]
#include "reconcile/literal_pattern.hpp"
#include "reconcile/quantity.hpp"
#include "reconcile/usage_counter.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace billrecon::reconcile;

namespace {

// ~* on plain-text patterns with ASCII case rules (what the database's own
// rules give for ASCII letters under a non-Turkish collation).
class AsciiPatterns : public PatternMatcher {
public:
	int Add(std::string_view p) override {
		LiteralPattern lp;
		if (!LiteralPattern::Parse(p, &lp)) {
			std::fprintf(stderr, "not a plain pattern: %.*s\n", static_cast<int>(p.size()), p.data());
			std::exit(2);
		}
		for (char c : lp.DistinctChars()) {
			std::bitset<128> s;
			s.set(static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(c))));
			s.set(static_cast<unsigned char>(std::toupper(static_cast<unsigned char>(c))));
			lp.SetMatches(c, s);
		}
		patterns_.push_back(std::move(lp));
		return static_cast<int>(patterns_.size()) - 1;
	}
	bool Matches(int id, std::string_view v) override {
		return patterns_[static_cast<std::size_t>(id)].Match(v) == LiteralPattern::Result::kMatch;
	}

private:
	std::vector<LiteralPattern> patterns_;
};

struct Device {
	std::int64_t id, account, client;
	std::string device_class, os, name, name_lower, serial;
};

double Seconds(std::chrono::steady_clock::time_point a) {
	return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}

} // namespace

int main(int argc, char **argv) {
	int clients = 5000, devices = 200;
	bool by_account = false;
	for (int i = 1; i < argc; ++i) {
		if (std::strcmp(argv[i], "--clients") == 0 && i + 1 < argc)
			clients = std::atoi(argv[++i]);
		else if (std::strcmp(argv[i], "--devices") == 0 && i + 1 < argc)
			devices = std::atoi(argv[++i]);
		else if (std::strcmp(argv[i], "--by-account") == 0)
			by_account = true;
	}
	const char *classes[] = {"desktop", "desktop", "laptop", "server", "other"};
	const char *oses[] = {"Windows 11 Pro", "Windows Server 2022", "macOS 14", "Ubuntu 22.04"};
	std::vector<Device> book;
	book.reserve(static_cast<std::size_t>(clients) * devices);
	// Vendors list devices by id: the records of a client arrive interleaved
	// with every other client's (--by-account: one account after another).
	std::int64_t id = 0;
	for (int outer = 1; outer <= (by_account ? clients : devices); ++outer)
		for (int inner = 1; inner <= (by_account ? devices : clients); ++inner) {
			const int c = by_account ? outer : inner, d = by_account ? inner : outer;
			Device x;
			x.id = ++id;
			x.account = c;
			x.client = c;
			x.device_class = classes[(d * 7 + c) % 5];
			x.os = oses[(d * 3 + c) % 4];
			x.name = (d % 50 == 0 ? "KIOSK-" : "PC-") + std::to_string(c) + "-" + std::to_string(d);
			x.name_lower = x.name;
			for (char &ch : x.name_lower)
				ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
			x.serial = "SN" + std::to_string(c) + "-" + std::to_string(d);
			book.push_back(std::move(x));
		}

	struct Spec {
		std::vector<std::string> classes;
		const char *os;
		const char *name;
	};
	const std::vector<Spec> specs = {
	    {{"desktop", "laptop"}, nullptr, nullptr}, {{"server"}, nullptr, nullptr},
	    {{"desktop", "laptop", "server"}, nullptr, nullptr}, {{}, "windows", nullptr},
	    {{}, "mac", nullptr}, {{"server"}, nullptr, nullptr},
	    {{"other"}, nullptr, nullptr}, {{"server"}, "windows server", nullptr},
	    {{"laptop"}, nullptr, nullptr}, {{}, nullptr, "^kiosk"}};

	auto to_record = [](const Device &x) {
		UsageRecord u;
		u.id = x.id;
		u.account_id = x.account;
		u.client_id = x.client;
		u.integration_id = 2;
		u.kind = UsageKind::kDevice;
		u.quantity = Quantity::FromInteger(1);
		u.has_device_class = true;
		u.device_class = x.device_class;
		u.has_os_name = true;
		u.os_name = x.os;
		u.has_device_name = true;
		u.device_name = x.name;
		u.device_name_lower = x.name_lower;
		u.has_serial = true;
		u.serial_upper = x.serial;
		return u;
	};

	// The reference: every record tested against every rule of its client, counted per line.
	AsciiPatterns ref_patterns;
	std::vector<RuleFilter> ref_rules;
	for (const Spec &s : specs) {
		RuleFilter f;
		f.has_classes = !s.classes.empty();
		f.classes = s.classes;
		if (s.os)
			f.os_pattern = ref_patterns.Add(s.os);
		if (s.name)
			f.name_pattern = ref_patterns.Add(s.name);
		ref_rules.push_back(std::move(f));
	}
	auto start = std::chrono::steady_clock::now();
	std::vector<std::int64_t> per_line(static_cast<std::size_t>(clients) * specs.size());
	for (const Device &x : book)
		for (std::size_t r = 0; r < ref_rules.size(); ++r) {
			const RuleFilter &f = ref_rules[r];
			bool ok = (!f.has_classes ||
			           std::find(f.classes.begin(), f.classes.end(), x.device_class) != f.classes.end()) &&
			          (f.os_pattern < 0 || ref_patterns.Matches(f.os_pattern, x.os)) &&
			          (f.name_pattern < 0 || ref_patterns.Matches(f.name_pattern, x.name));
			per_line[static_cast<std::size_t>(x.client - 1) * specs.size() + r] += ok;
		}
	double reference = Seconds(start);

	AsciiPatterns patterns;
	UsageCounter counter(&patterns);
	std::vector<int> rules;
	for (const Spec &s : specs) {
		RuleFilter f;
		f.has_classes = !s.classes.empty();
		f.classes = s.classes;
		if (s.os)
			f.os_pattern = patterns.Add(s.os);
		if (s.name)
			f.name_pattern = patterns.Add(s.name);
		rules.push_back(counter.AddRule(RuleMode::kAsset, std::move(f)));
	}
	std::int64_t group = 0;
	for (int c = 1; c <= clients; ++c)
		for (int r : rules) {
			counter.AddGroup(group++, c, 2, r);
			counter.AddCaptureLine(c, 2, r);
		}
	start = std::chrono::steady_clock::now();
	std::vector<UsageRecord> batch; // batches of 10,000, as billrecon._count_usage fetches them
	for (std::size_t i = 0; i < book.size(); i += 10000) {
		batch.clear();
		for (std::size_t j = i; j < book.size() && j < i + 10000; ++j)
			batch.push_back(to_record(book[j]));
		counter.Add(batch.data(), batch.size());
	}
	double streamed = Seconds(start);
	CountResults results = counter.Finish();
	double total = Seconds(start);

	std::int64_t counted = 0, reference_counted = 0;
	for (const GroupCount &g : results.groups)
		counted += g.quantity.ToString() == "0" ? 0 : std::stoll(g.quantity.ToString());
	for (std::int64_t n : per_line)
		reference_counted += n;
	std::printf("counting pass: %d clients, %zu records, %zu rules per client\n", clients, book.size(), specs.size());
	std::printf("reference (every rule of the client tested per record): %.3f s  %.0f ns per record\n", reference,
	            reference * 1e9 / static_cast<double>(book.size()));
	std::printf("UsageCounter (groups, machines, seats, unaccounted):     %.3f s  %.0f ns per record"
	            " (stream %.3f s, finish %.3f s)\n",
	            total, total * 1e9 / static_cast<double>(book.size()), streamed, total - streamed);
	std::printf("ratio: %.2f; counted %lld, reference %lld: %s\n", total / reference, static_cast<long long>(counted),
	            static_cast<long long>(reference_counted), counted == reference_counted ? "same" : "DIFFERENT");
	return counted == reference_counted ? 0 : 1;
}
