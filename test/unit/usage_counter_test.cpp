// The counting pass of reconcile (src/reconcile/usage_counter.hpp): exact
// quantity sums, serial and host keys as billrecon._serial_key / _host_key
// define them, and what a group counts and what is unaccounted, record by
// record, with every expected number worked out in the comments. The same
// rules in SQL are held to the same numbers by the pg_regress book
// (sql/reconcile.sql) and the e2e oracle (test/e2e/test_reconcile.py).
#include "model/error.hpp"
#include "reconcile/quantity.hpp"
#include "reconcile/usage_counter.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

using billrecon::Error;
using namespace billrecon::reconcile;

namespace {

// ~* for the simple patterns of these tests (std::regex, case-insensitive).
class FakePatterns : public PatternMatcher {
public:
	int Add(std::string_view p) override {
		patterns.emplace_back(std::string(p), std::regex::icase | std::regex::extended);
		return static_cast<int>(patterns.size()) - 1;
	}
	bool Matches(int id, std::string_view v) override {
		++calls;
		return std::regex_search(std::string(v), patterns[id]);
	}
	std::vector<std::regex> patterns;
	int calls = 0;
};

// Backing store for a record's texts (UsageRecord holds views).
struct Rec {
	UsageRecord u;
	std::string serial_upper, name_lower, display_lower, product_upper, product_name_lower;
};

Rec Device(std::int64_t id, std::int64_t client, std::int32_t integration, const char *cls, const char *os,
           const char *name, const char *serial) {
	Rec r;
	r.u.id = id;
	r.u.account_id = client * 100 + integration;
	r.u.client_id = client;
	r.u.integration_id = integration;
	r.u.kind = UsageKind::kDevice;
	r.u.quantity = Quantity::FromInteger(1);
	r.u.has_device_class = cls != nullptr;
	r.u.device_class = cls ? cls : "";
	r.u.has_os_name = os != nullptr;
	r.u.os_name = os ? os : "";
	r.u.has_device_name = name != nullptr;
	r.u.device_name = name ? name : "";
	r.u.has_serial = serial != nullptr;
	r.serial_upper = serial ? serial : "";
	for (char &c : r.serial_upper)
		c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
	r.name_lower = name ? name : "";
	for (char &c : r.name_lower)
		c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
	return r;
}

// Views must point at the Rec's own strings after it was copied.
const UsageRecord &Fix(Rec &r) {
	r.u.serial_upper = r.serial_upper;
	r.u.device_name_lower = r.name_lower;
	r.u.display_lower = r.display_lower;
	r.u.product_upper = r.product_upper;
	r.u.product_name_lower = r.product_name_lower;
	return r.u;
}

Rec Licence(std::int64_t id, std::int64_t client, std::int32_t integration, const char *sku, const char *display,
            long long assigned) {
	Rec r;
	r.u.id = id;
	r.u.account_id = client * 100 + integration;
	r.u.client_id = client;
	r.u.integration_id = integration;
	r.u.kind = UsageKind::kLicence;
	r.u.quantity = Quantity::FromInteger(assigned);
	r.u.has_product = true;
	r.u.product = sku;
	r.product_upper = sku;
	r.u.has_display = display != nullptr;
	r.u.display_name = display ? display : "";
	r.display_lower = display ? display : "";
	for (char &c : r.display_lower)
		c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
	return r;
}

Rec User(std::int64_t id, std::int64_t client, std::int32_t integration, Flag enabled, Flag licensed) {
	Rec r;
	r.u.id = id;
	r.u.account_id = client * 100 + integration;
	r.u.client_id = client;
	r.u.integration_id = integration;
	r.u.kind = UsageKind::kUser;
	r.u.quantity = Quantity::FromInteger(1);
	r.u.enabled = enabled;
	r.u.licensed = licensed;
	return r;
}

RuleFilter Classes(std::vector<std::string> classes) {
	RuleFilter f;
	f.has_classes = true;
	f.classes = std::move(classes);
	return f;
}

const GroupCount &Group(const CountResults &r, std::int64_t id) {
	for (const GroupCount &g : r.groups)
		if (g.group_id == id)
			return g;
	throw std::runtime_error("no group");
}

} // namespace

TEST(Quantity, ParsesSumsAndPrintsExactly) {
	Quantity q = Quantity::Parse("3") + Quantity::Parse("1.5") + Quantity::Parse("-0.25");
	EXPECT_EQ(q.ToString(), "4.25");
	EXPECT_EQ((Quantity::Parse("0.1") + Quantity::Parse("0.2")).ToString(), "0.3"); // no binary fractions
	EXPECT_EQ(Quantity::Parse("0.000000000001").ToString(), "0.000000000001");
	EXPECT_EQ(Quantity::Parse("-7").ToString(), "-7");
	EXPECT_EQ(Quantity::Parse("2.500000000000000").ToString(), "2.5"); // zeros beyond the scale are harmless
	EXPECT_EQ(Quantity().ToString(), "0");
	EXPECT_EQ((Quantity::Parse("-1.5") + Quantity::Parse("1.5")).ToString(), "0");
	EXPECT_EQ(Quantity::Parse("12345678901234567890123456").ToString(), "12345678901234567890123456");
}

TEST(Quantity, RefusesWhatItCannotCountExactly) {
	auto state = [](const char *text) {
		try {
			Quantity::Parse(text);
		} catch (const Error &e) {
			return e.sqlstate();
		}
		return std::string("ok");
	};
	EXPECT_EQ(state("0.0000000000001"), "22003"); // 13 fraction digits
	EXPECT_EQ(state("123456789012345678901234567"), "22003");
	EXPECT_EQ(state("NaN"), "22P02");
	EXPECT_EQ(state("1e3"), "22P02");
	EXPECT_EQ(state(""), "22P02");
	EXPECT_EQ(state("-"), "22P02");
	Quantity big = Quantity::Parse("99999999999999999999999999");
	EXPECT_THROW(big += Quantity::Parse("1"), Error);
}

TEST(Keys, SerialKeyDropsWhitespaceAndPlaceholders) {
	std::string k;
	ASSERT_TRUE(SerialKey("AB 12\tC", &k));
	EXPECT_EQ(k, "AB12C");
	EXPECT_FALSE(SerialKey("TO BE FILLED BY O.E.M.", &k));
	EXPECT_FALSE(SerialKey("  ", &k));
	EXPECT_FALSE(SerialKey("N/A", &k));
	EXPECT_FALSE(SerialKey("0", &k));
	ASSERT_TRUE(SerialKey("00", &k));
	EXPECT_EQ(k, "00");
}

TEST(Keys, HostKeyDropsTheDnsSuffix) {
	std::string k;
	ASSERT_TRUE(HostKey("PC-01.corp.local", "pc-01.corp.local", &k));
	EXPECT_EQ(k, "pc-01");
	ASSERT_TRUE(HostKey("  Front Desk PC ", "  front desk pc ", &k));
	EXPECT_EQ(k, "front desk pc"); // a name with spaces is kept whole, trimmed
	ASSERT_TRUE(HostKey("srv.", "srv.", &k));
	EXPECT_EQ(k, "srv."); // not a dotted host name
	EXPECT_FALSE(HostKey("   ", "   ", &k));
	EXPECT_FALSE(HostKey("", "", &k));
}

TEST(UsageCounter, AssetRuleCountsClassesPatternsAndMachines) {
	FakePatterns patterns;
	UsageCounter c(&patterns);
	RuleFilter wks = Classes({"desktop", "laptop"});
	int workstations = c.AddRule(RuleMode::kAsset, wks);
	RuleFilter win;
	win.os_pattern = patterns.Add("windows");
	int windows = c.AddRule(RuleMode::kAsset, win);
	c.AddGroup(1, 7, 3, workstations);
	c.AddGroup(2, 7, 3, windows);
	c.AddCaptureLine(7, 3, workstations);
	c.AddCaptureLine(7, 3, windows);
	std::vector<Rec> recs = {
	    Device(1, 7, 3, "desktop", "Windows 11 Pro", "PC-1", "SN1"),
	    Device(2, 7, 3, "laptop", "macOS 14", "MAC-1", "SN2"),
	    Device(3, 7, 3, "desktop", "Windows 10", "PC-1-old", "sn1"), // same machine as 1 (serial SN1)
	    Device(4, 7, 3, "server", "Windows Server 2022", "SRV", "To Be Filled By O.E.M."),
	    Device(5, 7, 3, nullptr, "Windows 11", "X", nullptr), // no class: not a workstation
	};
	for (Rec &r : recs)
		c.Add(Fix(r));
	CountResults r = c.Finish();
	// workstations: 1, 2, 3 captured -> quantity 3, machines {SN1, SN2} = 2
	EXPECT_EQ(Group(r, 1).quantity.ToString(), "3");
	EXPECT_EQ(Group(r, 1).machines, 2);
	// windows: 1, 3, 4, 5 -> quantity 4; machines SN1 + two without a serial key = 3
	EXPECT_EQ(Group(r, 2).quantity.ToString(), "4");
	EXPECT_EQ(Group(r, 2).machines, 3);
	EXPECT_TRUE(r.unaccounted.empty()); // every device captured by some line
	ASSERT_EQ(r.seats.size(), 1u);
	EXPECT_EQ(r.seats[0].devices.ToString(), "5");
	EXPECT_EQ(r.records, 5);
}

// Machines are counted per group from (hash, serial) pairs: equal hashes
// must still be told apart by the serial's text, and equal serials reported
// by several records counted once, in whatever order the records come.
TEST(UsageCounter, MachinesAreDistinctBySerialTextWhenHashesCollide) {
	for (bool collide : {false, true}) {
		FakePatterns patterns;
		UsageCounter::SerialHash same = [](std::string_view) -> std::uint64_t { return 42; };
		UsageCounter c(&patterns, collide ? same : nullptr);
		int all = c.AddRule(RuleMode::kAsset, RuleFilter{});
		int servers = c.AddRule(RuleMode::kAsset, Classes({"server"}));
		c.AddGroup(1, 7, 3, all);
		c.AddGroup(2, 7, 3, servers);
		c.AddGroup(3, 8, 3, all); // another client: its SN1 is its own machine
		std::vector<Rec> recs = {
		    Device(1, 7, 3, "desktop", "w", "a", "SN1"), Device(2, 8, 3, "desktop", "w", "b", "SN1"),
		    Device(3, 7, 3, "server", "w", "c", "SN2"),  Device(4, 7, 3, "desktop", "w", "d", "SN3"),
		    Device(5, 7, 3, "server", "w", "e", "sn2"),  Device(6, 7, 3, "desktop", "w", "f", "SN1 "),
		    Device(7, 7, 3, "server", "w", "g", "SN4"),  Device(8, 8, 3, "server", "w", "h", "SN2"),
		};
		std::vector<UsageRecord> batch;
		for (Rec &r : recs)
			batch.push_back(Fix(r));
		c.Add(batch.data(), batch.size()); // the batch form, with its look-ahead
		CountResults r = c.Finish();
		// client 7, all: SN1 (1, 6), SN2 (3, 5), SN3, SN4 -> 6 records, 4 machines
		EXPECT_EQ(Group(r, 1).quantity.ToString(), "6") << collide;
		EXPECT_EQ(Group(r, 1).machines, 4) << collide;
		// client 7, servers: SN2 (3, 5), SN4 -> 3 records, 2 machines
		EXPECT_EQ(Group(r, 2).quantity.ToString(), "3") << collide;
		EXPECT_EQ(Group(r, 2).machines, 2) << collide;
		// client 8, all: SN1, SN2 -> 2 machines
		EXPECT_EQ(Group(r, 3).machines, 2) << collide;
	}
}

TEST(UsageCounter, ExcludedAndDisabledUsage) {
	FakePatterns patterns;
	UsageCounter c(&patterns);
	int all = c.AddRule(RuleMode::kAsset, RuleFilter());
	c.AddGroup(1, 7, 3, all);
	c.AddCaptureLine(7, 3, all);
	Rec excluded = Device(1, 7, 3, "desktop", "Windows", "A", "S1");
	excluded.u.excluded = true;
	Rec off = Device(2, 7, 4, "desktop", "Windows", "B", "S2"); // integration 4 disabled, no line
	off.u.integration_enabled = false;
	Rec counted = Device(3, 7, 3, "desktop", "Windows", "C", "S3");
	c.Add(Fix(excluded));
	c.Add(Fix(off));
	c.Add(Fix(counted));
	CountResults r = c.Finish();
	EXPECT_EQ(Group(r, 1).quantity.ToString(), "1"); // the excluded record is never counted
	EXPECT_TRUE(r.unaccounted.empty());              // nor unaccounted; a disabled integration neither
	ASSERT_EQ(r.seats.size(), 1u);
	EXPECT_EQ(r.seats[0].total.ToString(), "1");
}

TEST(UsageCounter, UsersLicencesAndManualLines) {
	FakePatterns patterns;
	UsageCounter c(&patterns);
	int users = c.AddRule(RuleMode::kUser, RuleFilter());
	RuleFilter enabled;
	enabled.users_enabled = true;
	int enabled_users = c.AddRule(RuleMode::kUser, enabled);
	RuleFilter bp;
	bp.has_skus = true;
	bp.skus = {"SPB"};
	int business_premium = c.AddRule(RuleMode::kLicence, bp);
	RuleFilter bp_purchased = bp;
	bp_purchased.count_purchased = true;
	int purchased = c.AddRule(RuleMode::kLicence, bp_purchased);
	int manual = c.AddRule(RuleMode::kManual, RuleFilter());
	c.AddGroup(1, 7, 5, users);
	c.AddGroup(2, 7, 5, enabled_users);
	c.AddGroup(3, 7, 5, business_premium);
	c.AddGroup(4, 7, 5, purchased);
	c.AddGroup(5, 7, 5, manual);
	std::vector<Rec> recs = {
	    User(1, 7, 5, Flag::kTrue, Flag::kTrue),   // counted by both user rules, and by manual
	    User(2, 7, 5, Flag::kTrue, Flag::kFalse),  // enabled, unlicensed: enabled-users rule only
	    User(3, 7, 5, Flag::kFalse, Flag::kTrue),  // disabled: nobody
	    User(4, 7, 5, Flag::kNull, Flag::kNull),   // unknown = enabled and licensed
	    Licence(5, 7, 5, "SPB", "Microsoft 365 Business Premium", 12),
	    Licence(6, 7, 5, "EXCHANGESTANDARD", "Exchange Online (Plan 1)", 3),
	};
	recs[4].u.has_purchased = true;
	recs[4].u.purchased = Quantity::FromInteger(15);
	for (Rec &r : recs)
		c.Add(Fix(r));
	CountResults r = c.Finish();
	EXPECT_EQ(Group(r, 1).quantity.ToString(), "2"); // users 1 and 4
	EXPECT_EQ(Group(r, 2).quantity.ToString(), "3"); // users 1, 2 and 4
	EXPECT_EQ(Group(r, 3).quantity.ToString(), "12");
	EXPECT_EQ(Group(r, 4).quantity.ToString(), "15"); // purchased units
	EXPECT_EQ(Group(r, 5).quantity.ToString(), "2");  // manual: licensed enabled users, never licences
}

TEST(UsageCounter, UnaccountedUsageAndTheSecondSystemChecks) {
	FakePatterns patterns;
	UsageCounter c(&patterns);
	int servers = c.AddRule(RuleMode::kAsset, Classes({"server"}));
	int workstations = c.AddRule(RuleMode::kAsset, Classes({"desktop"}));
	// Client 7 has two RMMs (3 and 4); the line on RMM 4 bills workstations,
	// the line on RMM 3 servers only.
	c.AddGroup(1, 7, 3, servers);
	c.AddCaptureLine(7, 3, servers);
	c.AddGroup(2, 7, 4, workstations);
	c.AddCaptureLine(7, 4, workstations);
	c.AddMultiSystemClient(7);
	c.AddLineName(7, "exchange online (plan 1) - monthly");
	std::vector<Rec> recs = {
	    Device(1, 7, 4, "desktop", "Windows", "PC-1.corp.local", "SN1"),
	    Device(2, 7, 3, "desktop", "Windows", "PC-1", "SN1"), // PC-1 again, counted on RMM 4: not unaccounted
	    Device(3, 7, 4, "desktop", "Windows", "PC-2", nullptr),
	    Device(4, 7, 3, "desktop", "Windows", "pc-2", "SN4"), // same host name, one serial missing: same machine
	    Device(5, 7, 3, "desktop", "Windows", "PC-5", "SN5"), // only on RMM 3, no workstation line there
	    Device(6, 7, 3, "laptop", "Windows", "LT-6", "SN6"),  // no rule captures laptops
	    Licence(7, 7, 5, "EXCHANGESTANDARD", "Exchange Online (Plan 1)", 3), // billed by name
	    Licence(8, 7, 5, "SPB", "Microsoft 365 Business Premium", 10),
	    User(9, 7, 5, Flag::kTrue, Flag::kTrue), // the tenant reports licences: users are not unaccounted
	};
	for (Rec &r : recs)
		c.Add(Fix(r));
	CountResults r = c.Finish();
	// Unaccounted: device 5 (desktop) and 6 (laptop) on RMM 3, licence 8.
	ASSERT_EQ(r.unaccounted.size(), 3u);
	std::vector<std::string> got;
	for (const UnaccountedPart &p : r.unaccounted)
		got.push_back(std::to_string(p.integration_id) + " " + UsageKindName(p.kind) + " " + p.product + " " +
		              p.quantity.ToString() + " #" + std::to_string(p.min_usage_id) +
		              (p.has_display ? " " + p.display_name : ""));
	std::sort(got.begin(), got.end());
	EXPECT_EQ(got[0], "3 device desktop 1 #5");
	EXPECT_EQ(got[1], "3 device laptop 1 #6");
	EXPECT_EQ(got[2], "5 licence SPB 10 #8 Microsoft 365 Business Premium");
}

TEST(UsageCounter, SubscriptionsTheTenantReportsAsLicences) {
	FakePatterns patterns;
	UsageCounter c(&patterns);
	RuleFilter backup;
	backup.products_pattern = patterns.Add("(backup)");
	int backups = c.AddRule(RuleMode::kSubscription, backup);
	c.AddGroup(1, 7, 6, backups);
	c.AddCaptureLine(7, 6, backups);
	Rec lic = Licence(1, 7, 5, "SPB", "Microsoft 365 Business Premium", 10);
	Rec sub;
	sub.u.id = 2;
	sub.u.account_id = 706;
	sub.u.client_id = 7;
	sub.u.integration_id = 6;
	sub.u.kind = UsageKind::kSubscription;
	sub.u.quantity = Quantity::FromInteger(10);
	sub.u.has_product = true;
	sub.u.product = "a1b2";
	sub.u.has_product_name = true;
	sub.u.product_name = "Microsoft 365 Business Premium";
	sub.product_name_lower = "microsoft 365 business premium";
	sub.u.has_display = true;
	sub.u.display_name = sub.u.product_name;
	sub.display_lower = sub.product_name_lower;
	Rec backup_sub = sub;
	backup_sub.u.id = 3;
	backup_sub.u.product = "c3";
	backup_sub.u.product_name = "Cloud Backup 1TB";
	backup_sub.product_name_lower = "cloud backup 1tb";
	backup_sub.u.display_name = backup_sub.u.product_name;
	backup_sub.display_lower = backup_sub.product_name_lower;
	backup_sub.u.quantity = Quantity::Parse("2.5");
	c.Add(Fix(lic));
	c.Add(Fix(sub));
	c.Add(Fix(backup_sub));
	CountResults r = c.Finish();
	EXPECT_EQ(Group(r, 1).quantity.ToString(), "2.5");
	// The licence is unaccounted (no line); the Pax8 subscription of the same
	// product is not: the licences speak for it.
	ASSERT_EQ(r.unaccounted.size(), 1u);
	EXPECT_EQ(r.unaccounted[0].kind, UsageKind::kLicence);
	EXPECT_EQ(r.seats[0].subscriptions.ToString(), "12.5");
}

TEST(UsageCounter, PatternsAreMatchedOncePerDistinctValue) {
	FakePatterns patterns;
	UsageCounter c(&patterns);
	RuleFilter win;
	win.os_pattern = patterns.Add("windows");
	int windows = c.AddRule(RuleMode::kAsset, win);
	c.AddGroup(1, 7, 3, windows);
	std::vector<Rec> recs;
	for (int i = 0; i < 100; ++i)
		recs.push_back(Device(i + 1, 7, 3, "desktop", i % 2 ? "Windows 11" : "Ubuntu", "PC", nullptr));
	for (Rec &r : recs)
		c.Add(Fix(r));
	CountResults r = c.Finish();
	EXPECT_EQ(Group(r, 1).quantity.ToString(), "50");
	EXPECT_EQ(patterns.calls, 2); // two distinct OS names
}
