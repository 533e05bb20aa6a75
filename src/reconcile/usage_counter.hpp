// The counting pass of reconcile(): every usage record of the mapped clients
// streamed once, tested against the rules of its client and integration, and
// summed into
//   - group counts: what each reconciled group of lines (client x rule)
//     counts (quantity, and distinct machines for asset rules),
//   - unaccounted usage: records no line of their client captures, after the
//     second-system checks of docs/reconciliation.md,
//   - seats per client.
// It is the C++ form of the SQL in sql/install/120_unmapped.sql
// (_filter_captures, _filter_quantity) and 135_reconcile.sql (steps 4 and 6);
// the regression tests hold both to the same numbers. Pure C++: the caller
// (src/pg/sql_functions/count_usage.cpp) loads the rules and streams the
// records; patterns are matched by a PatternMatcher the caller provides, so
// they mean exactly what PostgreSQL's ~* means.
#pragma once

#include "reconcile/quantity.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace billrecon::reconcile {

enum class UsageKind : std::uint8_t { kDevice, kLicence, kUser, kSubscription };
enum class RuleMode : std::uint8_t { kAsset, kLicence, kUser, kSubscription, kManual, kCustomSql, kOther };

// "device" -> kDevice ...; false for an unknown text.
bool ParseUsageKind(std::string_view text, UsageKind *out) noexcept;
RuleMode ParseRuleMode(std::string_view text) noexcept;
const char *UsageKindName(UsageKind kind) noexcept;

// Case-insensitive pattern matching with PostgreSQL's semantics (~*).
class PatternMatcher {
public:
	virtual ~PatternMatcher() = default;
	// Registers a pattern; returns its id.
	virtual int Add(std::string_view pattern) = 0;
	virtual bool Matches(int pattern_id, std::string_view value) = 0;
};

// A rule's filters, unpacked (the C++ twin of billrecon.rule_filter).
struct RuleFilter {
	bool has_classes = false;         // device_class given: only these classes
	std::vector<std::string> classes; // asset
	int os_pattern = -1;              // asset: pattern id on the OS name, -1 for none
	int name_pattern = -1;            // asset: pattern id on the device name
	bool has_skus = false;
	std::vector<std::string> skus; // licence: upper case
	int products_pattern = -1;     // subscription
	bool users_enabled = false;    // user: {"users": "enabled"}
	bool count_purchased = false;  // licence: {"count": "purchased"}
};

// Tri-state booleans of usage records (null = not reported).
enum class Flag : std::int8_t { kNull = -1, kFalse = 0, kTrue = 1 };

// One usage record of a mapped client, as streamed (views into the caller's
// buffers, valid during Add only). Optional texts: has_x false = SQL null.
struct UsageRecord {
	std::int64_t id = 0;
	std::int64_t account_id = 0;
	std::int64_t client_id = 0;
	std::int32_t integration_id = 0;
	UsageKind kind = UsageKind::kDevice;
	Quantity quantity;
	bool has_purchased = false;
	Quantity purchased;
	Flag enabled = Flag::kNull;
	Flag licensed = Flag::kNull;
	bool has_device_class = false;
	std::string_view device_class;
	bool has_os_name = false;
	std::string_view os_name;
	bool has_device_name = false;
	std::string_view device_name;       // as reported
	std::string_view device_name_lower; // lower(device_name) by PostgreSQL
	bool has_product = false;
	std::string_view product;
	bool has_product_name = false;
	std::string_view product_name;
	std::string_view product_upper;      // upper(coalesce(product, ''))
	std::string_view product_name_upper; // upper(coalesce(product_name, ''))
	std::string_view product_name_lower; // lower(product_name) when has_product_name
	bool has_serial = false;
	std::string_view serial_upper; // upper(serial_number)
	bool has_display = false;
	std::string_view display_name;  // _usage_display_name(u)
	std::string_view display_lower; // its lower()
	bool excluded = false;          // an excluded vendor product of its integration
	bool integration_enabled = true;
};

// billrecon._serial_key: whitespace removed, placeholders are no identity.
// Takes upper(serial) (PostgreSQL's upper); false when there is no key.
bool SerialKey(std::string_view serial_upper, std::string *key);
// billrecon._host_key from the name and its lower(); false when none.
bool HostKey(std::string_view name, std::string_view name_lower, std::string *key);

struct GroupCount {
	std::int64_t group_id;
	Quantity quantity;     // sum of what the rule counts per record
	std::int64_t machines; // asset: distinct machines (serial number, else record)
};

// Unaccounted usage, summed per client, integration, kind, product, display
// name and vendor account (SQL sums these into one row per product).
struct UnaccountedPart {
	std::int64_t client_id;
	std::int32_t integration_id;
	UsageKind kind;
	std::string product;
	bool has_display;
	std::string display_name;
	std::int64_t account_id;
	Quantity quantity;
	std::int64_t min_usage_id;
};

struct ClientSeats {
	std::int64_t client_id;
	Quantity total, devices, users, licences, subscriptions;
};

struct CountResults {
	std::vector<GroupCount> groups;
	std::vector<UnaccountedPart> unaccounted;
	std::vector<ClientSeats> seats;
	std::int64_t records = 0;
};

class UsageCounter {
public:
	// Serial keys are bucketed by a 64-bit hash (FNV-1a) and told apart by
	// their text when hashes are equal; serial_hash replaces the hash (the
	// unit tests make every serial collide).
	using SerialHash = std::uint64_t (*)(std::string_view serial_key);
	explicit UsageCounter(PatternMatcher *matcher, SerialHash serial_hash = nullptr);
	~UsageCounter();
	UsageCounter(const UsageCounter &) = delete;
	UsageCounter &operator=(const UsageCounter &) = delete;

	// A distinct rule (mode and filters); returns its index.
	int AddRule(RuleMode mode, RuleFilter filter);
	// A reconciled group of lines: counts the client's usage on integration.
	void AddGroup(std::int64_t group_id, std::int64_t client_id, std::int32_t integration_id, int rule);
	// A line of the client whose rule captures usage on integration (states
	// reconciled, ignored, custom_sql and unmapped): what it captures is not
	// unaccounted. A custom_sql rule captures all of it.
	void AddCaptureLine(std::int64_t client_id, std::int32_t integration_id, int rule);
	// lower(coalesce(product_name, '')) of a line of the client: licences and
	// subscriptions whose display name it contains are billed by name.
	void AddLineName(std::int64_t client_id, std::string product_name_lower);
	// A client whose devices more than one system reports: only there can a
	// device be seen twice, so only there are devices indexed for it.
	void AddMultiSystemClient(std::int64_t client_id);

	void Add(const UsageRecord &u);
	// The same for a batch, with what each record needs asked of the memory
	// a few records ahead (the fast way: records of clients interleave).
	void Add(const UsageRecord *records, std::size_t count);
	CountResults Finish();

	bool Captures(int rule, const UsageRecord &u);

private:
	struct Impl;
	std::unique_ptr<Impl> impl_;
};

} // namespace billrecon::reconcile
