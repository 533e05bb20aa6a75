#include "reconcile/usage_counter.hpp"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <tuple>
#include <utility>

namespace billrecon::reconcile {

bool ParseUsageKind(std::string_view text, UsageKind *out) noexcept {
	if (text == "device")
		*out = UsageKind::kDevice;
	else if (text == "licence")
		*out = UsageKind::kLicence;
	else if (text == "user")
		*out = UsageKind::kUser;
	else if (text == "subscription")
		*out = UsageKind::kSubscription;
	else
		return false;
	return true;
}

RuleMode ParseRuleMode(std::string_view text) noexcept {
	if (text == "asset")
		return RuleMode::kAsset;
	if (text == "licence")
		return RuleMode::kLicence;
	if (text == "user")
		return RuleMode::kUser;
	if (text == "subscription")
		return RuleMode::kSubscription;
	if (text == "manual")
		return RuleMode::kManual;
	if (text == "custom_sql")
		return RuleMode::kCustomSql;
	return RuleMode::kOther;
}

const char *UsageKindName(UsageKind kind) noexcept {
	switch (kind) {
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

namespace {

bool IsSpace(char c) {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool IsHostChar(char c) {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// ^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$
bool IsDottedHostName(std::string_view s) {
	bool dot = false;
	std::size_t run = 0;
	for (char c : s) {
		if (c == '.') {
			if (run == 0)
				return false;
			dot = true;
			run = 0;
		} else if (IsHostChar(c)) {
			++run;
		} else {
			return false;
		}
	}
	return dot && run > 0;
}

bool Contains(const std::vector<std::string> &list, std::string_view value) {
	for (const std::string &s : list)
		if (s == value)
			return true;
	return false;
}

// The quantity a record stands for without a rule (_usage_quantity).
Quantity UsageQuantity(const UsageRecord &u) {
	if (u.kind == UsageKind::kUser && u.enabled == Flag::kFalse)
		return Quantity();
	return u.quantity;
}

// What a manual line compared with an integration counts (_compare_quantity).
Quantity CompareQuantity(const UsageRecord &u) {
	switch (u.kind) {
	case UsageKind::kLicence:
		return Quantity();
	case UsageKind::kUser:
		return u.enabled != Flag::kFalse && u.licensed != Flag::kFalse ? u.quantity : Quantity();
	default:
		return u.quantity;
	}
}

struct SlotKey {
	std::int64_t client;
	std::int32_t integration;
	bool operator==(const SlotKey &o) const {
		return client == o.client && integration == o.integration;
	}
};
struct SlotKeyHash {
	std::size_t operator()(const SlotKey &k) const {
		return std::hash<std::int64_t>()(k.client * 1000003 + k.integration);
	}
};

} // namespace

bool SerialKey(std::string_view serial_upper, std::string *key) {
	key->clear();
	for (char c : serial_upper)
		if (!IsSpace(c))
			key->push_back(c);
	static const char *const kPlaceholders[] = {"",
	                                            "0",
	                                            "NONE",
	                                            "N/A",
	                                            "NA",
	                                            "DEFAULTSTRING",
	                                            "SYSTEMSERIALNUMBER",
	                                            "TOBEFILLEDBYO.E.M.",
	                                            "0123456789",
	                                            "123456789",
	                                            "CHASSISSERIALNUMBER",
	                                            "NOTAPPLICABLE"};
	for (const char *p : kPlaceholders)
		if (*key == p)
			return false;
	return true;
}

bool HostKey(std::string_view name, std::string_view name_lower, std::string *key) {
	auto trim = [](std::string_view s) {
		std::size_t b = 0, e = s.size();
		while (b < e && s[b] == ' ')
			++b;
		while (e > b && s[e - 1] == ' ')
			--e;
		return s.substr(b, e - b);
	};
	if (trim(name).empty())
		return false;
	if (IsDottedHostName(name)) // ASCII only: lower() kept every byte in place
		key->assign(name_lower.substr(0, name_lower.find('.')));
	else
		key->assign(trim(name_lower));
	return true;
}

struct UsageCounter::Impl {
	Impl(PatternMatcher *m, UsageCounter::SerialHash h) : matcher(m), serial_hash_fn(h ? h : &HashKey) {
	}

	struct Rule {
		RuleMode mode;
		RuleFilter filter;
	};
	struct Group {
		std::int64_t id;
		int rule;
		std::uint32_t index; // dense, in order of AddGroup: MachineRef::group
		Quantity quantity;
		std::int64_t without_serial = 0; // asset: captured records without a serial key
	};
	// A machine an asset group captured: its serial key (kept once per record
	// in serial_arena) and the key's hash. Appended in stream order — records
	// of thousands of clients interleave, and a flat append touches no
	// per-client structure — and counted per group in Finish.
	struct MachineRef {
		std::uint64_t hash;
		std::uint32_t group;
		std::uint32_t serial; // index into serials
	};
	struct SerialText {
		std::size_t offset;
		std::uint32_t length;
	};
	struct Slot {
		std::vector<Group> groups; // inline: a record's groups are one contiguous block
		std::vector<int> capture_rules;
		bool capture_all = false;
	};
	struct Device {
		std::int32_t integration;
		bool has_serial;
	};
	struct Client {
		std::vector<std::string> line_names;
		std::unordered_set<std::string> licence_names;
		std::unordered_map<std::string, std::vector<std::int32_t>> captured_serials;
		std::unordered_map<std::string, std::vector<Device>> captured_hosts;
		bool has_seats = false;
		bool multi_system = false;
		ClientSeats seats{};
	};
	struct Candidate {
		std::int64_t client;
		std::int32_t integration;
		UsageKind kind;
		std::string product;
		bool has_display;
		std::string display;
		std::int64_t account;
		Quantity quantity;
		std::int64_t id;
		bool has_serial, has_host;
		std::string serial, host;
		bool has_product_name;
		std::string product_name_lower;
	};
	// Memoized pattern results per pattern id: value -> match.
	struct Memo {
		std::unordered_map<std::string_view, bool> results;
		std::deque<std::string> keys;
	};
	static constexpr std::size_t kMemoLimit = 100000;

	PatternMatcher *matcher;
	UsageCounter::SerialHash serial_hash_fn;
	std::vector<Rule> rules;
	std::vector<std::uint64_t> stamp; // per rule: record number of the cached result
	std::vector<bool> cached;
	std::uint64_t record_no = 0;
	std::unordered_map<SlotKey, Slot, SlotKeyHash> slots;
	std::unordered_map<std::int64_t, Client> clients;
	// A record's client and slot, found in one probe of a small flat table
	// (open addressing, a few thousand entries that stay in cache): vendors
	// list records by their own ids, so a client's records interleave with
	// every other client's and the previous record's client is rarely the
	// next one's. The node maps above are touched once per client.
	struct Place {
		SlotKey key;
		bool used = false;
		Client *client = nullptr;
		Slot *slot = nullptr; // nullptr: no line of the client counts this integration
		// The slot's blocks, so that Prefetch needs no load of the slot itself.
		Group *groups = nullptr;
		std::size_t group_count = 0;
		const int *capture_rules = nullptr;
		std::size_t capture_count = 0;
	};
	std::vector<Place> places = std::vector<Place>(64);
	std::size_t places_used = 0;

	static std::size_t Spread(const SlotKey &key) {
		return static_cast<std::size_t>((SlotKeyHash()(key) * 0x9E3779B97F4A7C15ULL) >> 29);
	}
	void ForgetPlaces() { // the slots changed (setup): look them up again
		places.assign(64, Place());
		places_used = 0;
	}
	Place &PlaceOf(std::int64_t client_id, std::int32_t integration_id) {
		const SlotKey key{client_id, integration_id};
		std::size_t mask = places.size() - 1;
		std::size_t i = Spread(key) & mask;
		while (places[i].used) {
			if (places[i].key == key)
				return places[i];
			i = (i + 1) & mask;
		}
		if ((places_used + 1) * 2 > places.size()) { // keep it at most half full
			std::vector<Place> old(places.size() * 2);
			old.swap(places);
			places_used = 0;
			for (const Place &p : old)
				if (p.used)
					Insert(p);
			return PlaceOf(client_id, integration_id);
		}
		Place p;
		p.key = key;
		p.used = true;
		p.client = &clients[client_id];
		auto it = slots.find(key);
		p.slot = it == slots.end() ? nullptr : &it->second;
		if (p.slot) {
			p.groups = p.slot->groups.data();
			p.group_count = p.slot->groups.size();
			p.capture_rules = p.slot->capture_rules.data();
			p.capture_count = p.slot->capture_rules.size();
		}
		return Insert(p);
	}
	Place &Insert(const Place &p) {
		std::size_t mask = places.size() - 1;
		std::size_t i = Spread(p.key) & mask;
		while (places[i].used)
			i = (i + 1) & mask;
		places[i] = p;
		++places_used;
		return places[i];
	}
	std::unordered_set<std::int64_t> accounts_with_licences;
	std::vector<Candidate> candidates;
	std::vector<Memo> memos;
	std::int64_t records = 0;
	std::uint32_t group_count = 0;
	std::vector<MachineRef> machine_refs;
	std::string serial_arena;
	std::vector<SerialText> serials;

	std::string_view SerialAt(std::uint32_t i) const {
		return std::string_view(serial_arena).substr(serials[i].offset, serials[i].length);
	}

	// FNV-1a: a spread for sorting; equal hashes are told apart by the text.
	static std::uint64_t HashKey(std::string_view key) {
		std::uint64_t h = 14695981039346656037ULL;
		for (char c : key) {
			h ^= static_cast<unsigned char>(c);
			h *= 1099511628211ULL;
		}
		return h;
	}

	// Distinct machines per group (by index): the references bucketed by group
	// (a counting sort), each bucket sorted by hash, then text.
	std::vector<std::int64_t> DistinctMachines() {
		std::vector<std::uint32_t> start(static_cast<std::size_t>(group_count) + 1, 0);
		for (const MachineRef &m : machine_refs)
			++start[m.group + 1];
		for (std::size_t i = 1; i < start.size(); ++i)
			start[i] += start[i - 1];
		std::vector<MachineRef> sorted(machine_refs.size());
		{
			std::vector<std::uint32_t> next(start.begin(), start.end() - 1);
			for (const MachineRef &m : machine_refs)
				sorted[next[m.group]++] = m;
		}
		std::vector<MachineRef>().swap(machine_refs);
		std::vector<std::int64_t> distinct(group_count, 0);
		auto less = [this](const MachineRef &a, const MachineRef &b) {
			if (a.hash != b.hash)
				return a.hash < b.hash;
			return a.serial != b.serial && SerialAt(a.serial) < SerialAt(b.serial);
		};
		for (std::uint32_t g = 0; g < group_count; ++g) {
			auto first = sorted.begin() + start[g], last = sorted.begin() + start[g + 1];
			std::sort(first, last, less);
			for (auto it = first; it != last; ++it)
				if (it == first || it[-1].hash != it->hash ||
				    (it[-1].serial != it->serial && SerialAt(it[-1].serial) != SerialAt(it->serial)))
					++distinct[g];
		}
		return distinct;
	}

	// memoize: false for values that rarely repeat (device names).
	bool Match(int pattern, std::string_view value, bool memoize = true) {
		if (static_cast<std::size_t>(pattern) >= memos.size())
			memos.resize(pattern + 1);
		Memo &m = memos[pattern];
		if (!memoize)
			return matcher->Matches(pattern, value);
		auto it = m.results.find(value);
		if (it != m.results.end())
			return it->second;
		bool r = matcher->Matches(pattern, value);
		if (m.results.size() < kMemoLimit) {
			m.keys.emplace_back(value);
			m.results.emplace(std::string_view(m.keys.back()), r);
		}
		return r;
	}

	bool Evaluate(const Rule &r, const UsageRecord &u) {
		const RuleFilter &f = r.filter;
		switch (r.mode) {
		case RuleMode::kAsset:
			return u.kind == UsageKind::kDevice &&
			       (!f.has_classes || (u.has_device_class && Contains(f.classes, u.device_class))) &&
			       (f.os_pattern < 0 || Match(f.os_pattern, u.has_os_name ? u.os_name : std::string_view())) &&
			       (f.name_pattern < 0 ||
			        Match(f.name_pattern, u.has_device_name ? u.device_name : std::string_view(), false));
		case RuleMode::kLicence:
			return u.kind == UsageKind::kLicence &&
			       (!f.has_skus || Contains(f.skus, u.product_upper) || Contains(f.skus, u.product_name_upper));
		case RuleMode::kUser:
			return u.kind == UsageKind::kUser;
		case RuleMode::kSubscription:
			return u.kind == UsageKind::kSubscription &&
			       (f.products_pattern < 0 ||
			        Match(f.products_pattern, u.has_product ? u.product : std::string_view()) ||
			        Match(f.products_pattern, u.has_product_name ? u.product_name : std::string_view()));
		default:
			return false;
		}
	}

	bool Captures(int rule, const UsageRecord &u) {
		if (stamp[rule] == record_no)
			return cached[rule];
		bool r = Evaluate(rules[rule], u);
		stamp[rule] = record_no;
		cached[rule] = r;
		return r;
	}

	// What the rule counts of a record it captures (_filter_quantity).
	Quantity RuleQuantity(const Rule &r, const UsageRecord &u) {
		if (r.mode == RuleMode::kUser)
			return u.enabled != Flag::kFalse && (r.filter.users_enabled || u.licensed != Flag::kFalse) ? u.quantity
			                                                                                           : Quantity();
		if (r.mode == RuleMode::kLicence && r.filter.count_purchased)
			return u.has_purchased ? u.purchased : Quantity();
		return u.quantity;
	}

	// Asks the memory for what Add(u) will touch (its client's seats, its
	// groups and capture rules) while earlier records are counted: in an
	// interleaved stream each is elsewhere in memory.
	void Prefetch(const UsageRecord &u) {
		const Place &place = PlaceOf(u.client_id, u.integration_id);
		__builtin_prefetch(&place.client->seats, 1);
		for (std::size_t i = 0; i < place.group_count; i += 2) // 2 groups per cache line or more
			__builtin_prefetch(place.groups + i, 1);
		if (place.capture_count > 0)
			__builtin_prefetch(place.capture_rules);
	}

	void Add(const UsageRecord &u) {
		++records;
		++record_no;
		const Place &place = PlaceOf(u.client_id, u.integration_id);
		Client &c = *place.client;
		if (u.kind == UsageKind::kLicence) {
			if (u.has_display)
				c.licence_names.emplace(u.display_lower);
			if (!u.excluded)
				accounts_with_licences.insert(u.account_id);
		}
		if (u.integration_enabled && !u.excluded) {
			Quantity q = UsageQuantity(u);
			c.has_seats = true;
			c.seats.client_id = u.client_id;
			c.seats.total += q;
			switch (u.kind) {
			case UsageKind::kDevice:
				c.seats.devices += q;
				break;
			case UsageKind::kUser:
				c.seats.users += q;
				break;
			case UsageKind::kLicence:
				c.seats.licences += q;
				break;
			case UsageKind::kSubscription:
				c.seats.subscriptions += q;
				break;
			}
		}

		// Keys of a device: its serial (machines of asset rules, the second
		// system check) and host name (the second-system check only, so only
		// for clients that more than one system reports).
		std::string serial, host;
		bool has_serial = false, has_host = false;
		if (u.kind == UsageKind::kDevice) {
			has_serial = u.has_serial && SerialKey(u.serial_upper, &serial);
			has_host = c.multi_system && u.has_device_name && HostKey(u.device_name, u.device_name_lower, &host);
		}
		std::int64_t serial_ref = -1; // the serial's place in serials, stored once per record
		std::uint64_t serial_hash = 0;

		Slot *slot = place.slot;
		if (slot && !u.excluded) {
			for (Group *gp = place.groups, *end = place.groups + place.group_count; gp != end; ++gp) {
				Group &g = *gp;
				const Rule &r = rules[g.rule];
				if (r.mode == RuleMode::kManual) {
					g.quantity += CompareQuantity(u);
					continue;
				}
				if (!Captures(g.rule, u))
					continue;
				g.quantity += RuleQuantity(r, u);
				if (r.mode == RuleMode::kAsset) {
					if (has_serial) {
						if (serial_ref < 0) {
							serial_ref = static_cast<std::int64_t>(serials.size());
							serials.push_back(SerialText{serial_arena.size(), static_cast<std::uint32_t>(serial.size())});
							serial_arena.append(serial);
							serial_hash = serial_hash_fn(serial);
						}
						machine_refs.push_back(MachineRef{serial_hash, g.index, static_cast<std::uint32_t>(serial_ref)});
					} else {
						++g.without_serial;
					}
				}
			}
		}
		bool captured = false;
		if (slot) {
			captured = slot->capture_all;
			for (std::size_t i = 0; !captured && i < place.capture_count; ++i)
				captured = Captures(place.capture_rules[i], u);
		}
		if (u.kind == UsageKind::kDevice && captured && c.multi_system) {
			if (has_serial)
				c.captured_serials[serial].push_back(u.integration_id);
			if (has_host)
				c.captured_hosts[host].push_back(Device{u.integration_id, has_serial});
		}
		if (captured || !u.integration_enabled || u.excluded)
			return;
		if (u.kind == UsageKind::kUser && u.licensed == Flag::kFalse)
			return;
		bool named = u.kind == UsageKind::kLicence || u.kind == UsageKind::kSubscription;
		if (named && u.has_display) {
			for (const std::string &line : c.line_names)
				if (line.find(u.display_lower) != std::string::npos)
					return; // a line of the client bills it by name
		}
		Candidate k;
		k.client = u.client_id;
		k.integration = u.integration_id;
		k.kind = u.kind;
		switch (u.kind) {
		case UsageKind::kDevice:
			k.product = u.has_device_class ? std::string(u.device_class)
			            : u.has_product    ? std::string(u.product)
			                               : std::string("other");
			break;
		case UsageKind::kUser:
			k.product = "licensed users";
			break;
		default:
			k.product = u.has_product ? std::string(u.product)
			            : u.has_product_name ? std::string(u.product_name)
			                                 : std::string();
		}
		k.has_display = named && u.has_display;
		if (k.has_display)
			k.display.assign(u.display_name);
		k.account = u.account_id;
		k.quantity = UsageQuantity(u);
		k.id = u.id;
		k.has_serial = has_serial && c.multi_system; // only needed to find the device elsewhere
		k.has_host = has_host;
		if (k.has_serial)
			k.serial = std::move(serial);
		if (has_host)
			k.host = std::move(host);
		k.has_product_name = u.kind == UsageKind::kSubscription && u.has_product_name;
		if (k.has_product_name)
			k.product_name_lower.assign(u.product_name_lower);
		candidates.push_back(std::move(k));
	}

	// A device another system of the client reports (same serial number, or
	// same host name where a serial is missing) and a line there counts.
	bool SeenElsewhere(const Client &c, const Candidate &k) const {
		if (k.has_serial) {
			auto it = c.captured_serials.find(k.serial);
			if (it != c.captured_serials.end())
				for (std::int32_t integration : it->second)
					if (integration != k.integration)
						return true;
		}
		if (k.has_host) {
			auto it = c.captured_hosts.find(k.host);
			if (it != c.captured_hosts.end())
				for (const Device &d : it->second)
					if (d.integration != k.integration && (!d.has_serial || !k.has_serial))
						return true;
		}
		return false;
	}

	CountResults Finish() {
		CountResults out;
		out.records = records;
		std::vector<std::int64_t> distinct = DistinctMachines();
		for (auto &entry : slots)
			for (Group &g : entry.second.groups)
				out.groups.push_back(GroupCount{g.id, g.quantity, distinct[g.index] + g.without_serial});
		using PartKey = std::tuple<std::int64_t, std::int32_t, int, std::string, bool, std::string, std::int64_t>;
		std::map<PartKey, std::size_t> parts;
		for (Candidate &k : candidates) {
			const Client &c = clients[k.client];
			if (k.kind == UsageKind::kUser && accounts_with_licences.count(k.account))
				continue; // the tenant reports licences: they are what is billed
			if (k.kind == UsageKind::kDevice && SeenElsewhere(c, k))
				continue;
			if (k.kind == UsageKind::kSubscription && k.has_product_name &&
			    c.licence_names.count(k.product_name_lower))
				continue; // the tenant's licences speak for the distributor's subscription
			PartKey key{k.client, k.integration, static_cast<int>(k.kind), k.product, k.has_display, k.display,
			            k.account};
			auto ins = parts.emplace(std::move(key), out.unaccounted.size());
			if (ins.second) {
				out.unaccounted.push_back(UnaccountedPart{k.client, k.integration, k.kind, k.product, k.has_display,
				                                          k.display, k.account, k.quantity, k.id});
			} else {
				UnaccountedPart &p = out.unaccounted[ins.first->second];
				p.quantity += k.quantity;
				p.min_usage_id = std::min(p.min_usage_id, k.id);
			}
		}
		for (auto &entry : clients)
			if (entry.second.has_seats)
				out.seats.push_back(entry.second.seats);
		std::sort(out.seats.begin(), out.seats.end(),
		          [](const ClientSeats &a, const ClientSeats &b) { return a.client_id < b.client_id; });
		return out;
	}
};

UsageCounter::UsageCounter(PatternMatcher *matcher, SerialHash serial_hash)
    : impl_(std::make_unique<Impl>(matcher, serial_hash)) {
}
UsageCounter::~UsageCounter() = default;

int UsageCounter::AddRule(RuleMode mode, RuleFilter filter) {
	impl_->rules.push_back(Impl::Rule{mode, std::move(filter)});
	impl_->stamp.push_back(0);
	impl_->cached.push_back(false);
	return static_cast<int>(impl_->rules.size()) - 1;
}

void UsageCounter::AddGroup(std::int64_t group_id, std::int64_t client_id, std::int32_t integration_id, int rule) {
	impl_->ForgetPlaces();
	impl_->slots[SlotKey{client_id, integration_id}].groups.push_back(
	    Impl::Group{group_id, rule, impl_->group_count++, Quantity(), 0});
}

void UsageCounter::AddCaptureLine(std::int64_t client_id, std::int32_t integration_id, int rule) {
	impl_->ForgetPlaces();
	Impl::Slot &slot = impl_->slots[SlotKey{client_id, integration_id}];
	if (impl_->rules[rule].mode == RuleMode::kCustomSql)
		slot.capture_all = true;
	else if (std::find(slot.capture_rules.begin(), slot.capture_rules.end(), rule) == slot.capture_rules.end())
		slot.capture_rules.push_back(rule);
}

void UsageCounter::AddLineName(std::int64_t client_id, std::string product_name_lower) {
	impl_->clients[client_id].line_names.push_back(std::move(product_name_lower));
}

void UsageCounter::AddMultiSystemClient(std::int64_t client_id) {
	impl_->clients[client_id].multi_system = true;
}

void UsageCounter::Add(const UsageRecord &u) {
	impl_->Add(u);
}

void UsageCounter::Add(const UsageRecord *records, std::size_t count) {
	constexpr std::size_t kAhead = 6; // records in flight: enough to cover a miss to memory
	for (std::size_t i = 0; i < count && i < kAhead; ++i)
		impl_->Prefetch(records[i]);
	for (std::size_t i = 0; i < count; ++i) {
		if (i + kAhead < count)
			impl_->Prefetch(records[i + kAhead]);
		impl_->Add(records[i]);
	}
}

CountResults UsageCounter::Finish() {
	return impl_->Finish();
}

bool UsageCounter::Captures(int rule, const UsageRecord &u) {
	++impl_->record_no;
	return impl_->Captures(rule, u);
}

} // namespace billrecon::reconcile
