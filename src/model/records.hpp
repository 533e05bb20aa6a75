// The plain records connectors produce and sinks store. One struct per table
// of product.md's "What is stored"; every record carries the external id the
// source system uses. Optional fields are std::optional: "absent" and "zero"
// are different facts for a billing tool.
#pragma once

#include "model/decimal.hpp"

#include <optional>
#include <string>
#include <vector>

namespace billrecon::model {

// ---- PSA side -------------------------------------------------------------

struct Company {
	std::string external_id;
	std::string name;
	std::optional<std::string> identifier;  // short code (ConnectWise "identifier")
	std::optional<std::string> status;      // as the PSA names it ("Active", ...)
	std::optional<std::string> website;     // for domain evidence in matching
	std::vector<std::string> domains;       // e-mail / web domains known for the company
	bool deleted = false;
	std::optional<std::string> source_updated_at; // ISO UTC
};

enum class BillingCycle { kMonthly, kQuarterly, kAnnual, kOther, kUnknown };

const char *BillingCycleName(BillingCycle c) noexcept; // "monthly", ..., "unknown"

struct Agreement {
	std::string external_id;
	std::string company_external_id;
	std::string name;
	std::optional<std::string> type;
	BillingCycle billing_cycle = BillingCycle::kUnknown;
	std::optional<std::string> billing_cycle_label; // the PSA's own name ("Monthly")
	std::optional<std::string> start_date;          // YYYY-MM-DD
	std::optional<std::string> end_date;            // YYYY-MM-DD
	std::optional<bool> prorate;
	std::optional<std::string> status;              // PSA status text ("Active", "Cancelled")
	bool cancelled = false;
	std::optional<std::string> cancelled_date;      // YYYY-MM-DD
	std::optional<std::string> source_updated_at;
};

struct LineItem {
	std::string external_id;
	std::string agreement_external_id;
	std::string company_external_id;
	std::optional<std::string> product_code;   // catalog identifier / SKU-like key
	std::optional<std::string> product_name;
	std::optional<std::string> description;
	Decimal quantity;
	std::optional<Decimal> unit_price;
	std::optional<Decimal> unit_cost;
	std::optional<std::string> billing_type;   // "Billable", "DoNotBill", ...
	std::optional<std::string> quantity_source; // how the PSA derives quantity, when it says
	std::optional<std::string> effective_date; // YYYY-MM-DD
	std::optional<std::string> cancel_date;    // YYYY-MM-DD
	std::optional<std::string> parent_external_id; // adjustment / credit line -> its parent
	std::optional<std::string> source_updated_at;
};

// ---- Vendor side ----------------------------------------------------------

struct VendorAccount {
	std::string external_id;
	std::string name;
	std::vector<std::string> domains;
	std::optional<std::string> status;
	std::optional<std::string> source_updated_at;
};

enum class UsageKind { kDevice, kLicence, kUser, kSubscription };

const char *UsageKindName(UsageKind k) noexcept; // "device", "licence", "user", "subscription"

enum class DeviceClass { kDesktop, kLaptop, kServer, kOther };

const char *DeviceClassName(DeviceClass c) noexcept; // "desktop", "laptop", "server", "other"

struct UsageRecord {
	std::string external_id;
	std::string account_external_id;
	UsageKind kind = UsageKind::kDevice;
	std::optional<std::string> product;      // SKU / product id or name; device: the vendor's node class
	std::optional<std::string> product_name;
	Decimal quantity;                         // 1 for a device or a user
	std::optional<DeviceClass> device_class;
	std::optional<std::string> os_name;
	std::optional<std::string> device_name;
	std::optional<std::string> serial_number;
	std::optional<bool> licensed;
	std::optional<bool> enabled;
	std::optional<bool> online;
	std::optional<std::string> last_active_at;   // ISO UTC
	std::optional<Decimal> unit_cost;            // vendor cost per unit where the vendor reports it
	std::optional<Decimal> purchased_quantity;   // licences: units bought (prepaid), beside quantity = assigned
	std::optional<std::string> status;           // the vendor's own status word (Active, Suspended, ...)
	std::optional<std::string> billing_term;     // subscriptions: the vendor's billing term (Monthly, annual, ...)
	std::optional<std::string> term_end_date;    // subscriptions: commitment / term end, YYYY-MM-DD
	std::optional<std::string> user_name;        // users: sign-in name (UPN)
	std::optional<std::string> source_updated_at;
};

} // namespace billrecon::model

#include "core_only.hpp"
