// E-mail domains of PSA contacts (the rest of connector_util.hpp is defined
// in connector.cpp).
#include "connectors/connector_util.hpp"

#include <cctype>
#include <utility>
#include <vector>

namespace billrecon::connectors {

namespace {

// Providers whose name is the first label under any country suffix
// ("yahoo.com", "yahoo.co.uk", "gmx.de", "outlook.com.au").
constexpr std::string_view kFreeMailBrands[] = {
    "gmail", "googlemail", "yahoo", "ymail", "hotmail", "outlook", "aol", "gmx", "yandex", "protonmail",
};

// Other mailbox providers, exactly.
constexpr std::string_view kFreeMailDomains[] = {
    "live.com",        "live.co.uk",    "live.ca",       "live.de",         "live.fr",       "live.nl",
    "live.com.au",     "msn.com",       "passport.com",  "icloud.com",      "me.com",        "mac.com",
    "aim.com",         "proton.me",     "pm.me",         "web.de",          "t-online.de",   "freenet.de",
    "mail.com",        "email.com",     "zoho.com",      "zohomail.com",    "mail.ru",       "qq.com",
    "163.com",         "126.com",       "fastmail.com",  "fastmail.fm",     "hey.com",       "tutanota.com",
    "tuta.io",         "hushmail.com",  "inbox.com",     "lycos.com",       "rocketmail.com", "rediffmail.com",
    "mailinator.com",  "comcast.net",   "verizon.net",   "att.net",         "sbcglobal.net", "bellsouth.net",
    "cox.net",         "charter.net",   "earthlink.net", "juno.com",        "optonline.net", "frontier.com",
    "windstream.net",  "btinternet.com", "sky.com",      "virginmedia.com", "talktalk.net",  "shaw.ca",
    "rogers.com",      "sympatico.ca",  "bigpond.com",   "optusnet.com.au", "orange.fr",     "wanadoo.fr",
    "free.fr",         "laposte.net",   "sfr.fr",        "libero.it",       "virgilio.it",   "bluewin.ch",
    "online.de",       "arcor.de",      "seznam.cz",     "wp.pl",           "o2.pl",         "interia.pl",
};

// The dot-separated labels of a host name ("a..b" has an empty one).
std::vector<std::string_view> Labels(std::string_view host) {
	std::vector<std::string_view> out;
	size_t start = 0;
	for (;;) {
		size_t dot = host.find('.', start);
		if (dot == std::string_view::npos) {
			out.push_back(host.substr(start));
			return out;
		}
		out.push_back(host.substr(start, dot - start));
		start = dot + 1;
	}
}

bool IsAlpha(char c) {
	return std::isalpha(static_cast<unsigned char>(c)) != 0;
}

bool IsAlnum(char c) {
	return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

// A host name as EmailDomain accepts it (already lower-cased).
bool PlausibleDomain(std::string_view d) {
	if (d.empty() || d.size() > 253)
		return false;
	const std::vector<std::string_view> labels = Labels(d);
	if (labels.size() < 2)
		return false;
	for (std::string_view label : labels) {
		if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
			return false;
		for (char c : label)
			if (!IsAlnum(c) && c != '-')
				return false;
	}
	std::string_view top = labels.back();
	if (top.compare(0, 4, "xn--") == 0)
		return true;
	if (top.size() < 2)
		return false;
	for (char c : top)
		if (!IsAlpha(c))
			return false;
	return true;
}

} // namespace

std::optional<std::string> EmailDomain(std::string_view address) {
	std::string_view s = Trim(address);
	// "Jane Doe <jane@x.com>": the address between the angle brackets.
	if (!s.empty() && s.back() == '>') {
		size_t open = s.rfind('<');
		if (open == std::string_view::npos)
			return std::nullopt;
		s = Trim(s.substr(open + 1, s.size() - open - 2));
	}
	if (s.size() >= 7 && Lower(s.substr(0, 7)) == "mailto:")
		s.remove_prefix(7);
	for (char c : s)
		if (std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == ';' || c == '<' || c == '>' ||
		    static_cast<unsigned char>(c) < 0x20)
			return std::nullopt;
	size_t at = s.find('@');
	if (at == std::string_view::npos || at == 0 || s.find('@', at + 1) != std::string_view::npos)
		return std::nullopt;
	std::string domain = Lower(s.substr(at + 1));
	if (!domain.empty() && domain.back() == '.')
		domain.pop_back();
	if (!PlausibleDomain(domain))
		return std::nullopt;
	return domain;
}

bool IsFreeMailDomain(std::string_view domain) {
	for (std::string_view d : kFreeMailDomains)
		if (domain == d)
			return true;
	size_t dot = domain.find('.');
	if (dot == std::string_view::npos)
		return false;
	std::string_view first = domain.substr(0, dot);
	std::string_view suffix = domain.substr(dot + 1);
	bool brand = false;
	for (std::string_view b : kFreeMailBrands)
		brand = brand || first == b;
	if (!brand)
		return false;
	// One or two short labels after the brand: a country or generic suffix
	// ("com", "de", "co.uk", "com.au"), not "outlook.consulting".
	const std::vector<std::string_view> labels = Labels(suffix);
	if (labels.size() > 2)
		return false;
	for (std::string_view label : labels)
		if (label.empty() || label.size() > 3)
			return false;
	return true;
}

void AddDomain(std::vector<std::string> &domains, const std::string &domain) {
	for (const std::string &known : domains)
		if (known == domain)
			return;
	domains.push_back(domain);
}

bool ContactDomains::Add(const std::string &company_id, std::string_view address) {
	std::optional<std::string> domain = EmailDomain(address);
	if (!domain || IsFreeMailDomain(*domain))
		return false;
	AddDomain(by_company_[company_id], *domain);
	return true;
}

void ContactDomains::MergeInto(model::Company &company) const {
	auto it = by_company_.find(company.external_id);
	if (it == by_company_.end())
		return;
	for (const std::string &d : it->second)
		AddDomain(company.domains, d);
}

} // namespace billrecon::connectors
