#include "model/records.hpp"

namespace billrecon::model {

const char *BillingCycleName(BillingCycle c) noexcept {
	switch (c) {
	case BillingCycle::kMonthly:
		return "monthly";
	case BillingCycle::kQuarterly:
		return "quarterly";
	case BillingCycle::kAnnual:
		return "annual";
	case BillingCycle::kOther:
		return "other";
	case BillingCycle::kUnknown:
		break;
	}
	return "unknown";
}

const char *UsageKindName(UsageKind k) noexcept {
	switch (k) {
	case UsageKind::kDevice:
		return "device";
	case UsageKind::kLicence:
		return "licence";
	case UsageKind::kUser:
		return "user";
	case UsageKind::kSubscription:
		return "subscription";
	}
	return "device";
}

const char *DeviceClassName(DeviceClass c) noexcept {
	switch (c) {
	case DeviceClass::kDesktop:
		return "desktop";
	case DeviceClass::kLaptop:
		return "laptop";
	case DeviceClass::kServer:
		return "server";
	case DeviceClass::kOther:
		return "other";
	}
	return "other";
}

} // namespace billrecon::model
