// ParseRetryAfter and ParseLinkHeader (declared in http/client.hpp): the two
// response headers the client and the connectors interpret.
#include "http/client.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>

namespace billrecon::http {

namespace {

bool IsSpace(char c) {
	return c == ' ' || c == '\t';
}

std::string_view Trim(std::string_view s) {
	while (!s.empty() && (IsSpace(s.front()) || s.front() == '\r' || s.front() == '\n'))
		s.remove_prefix(1);
	while (!s.empty() && (IsSpace(s.back()) || s.back() == '\r' || s.back() == '\n'))
		s.remove_suffix(1);
	return s;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const auto yoe = static_cast<unsigned>(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// A tiny cursor over an HTTP-date.
class DateCursor {
public:
	explicit DateCursor(std::string_view s) : s_(s) {
	}
	bool AtEnd() const {
		return i_ >= s_.size();
	}
	void SkipSpaces() {
		while (i_ < s_.size() && IsSpace(s_[i_]))
			++i_;
	}
	bool Expect(char c) {
		if (i_ < s_.size() && s_[i_] == c) {
			++i_;
			return true;
		}
		return false;
	}
	// Letters only (a day or month name, a zone).
	std::string_view Word() {
		const size_t start = i_;
		while (i_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[i_])))
			++i_;
		return s_.substr(start, i_ - start);
	}
	bool Number(size_t min_digits, size_t max_digits, int &out) {
		size_t n = 0;
		int v = 0;
		while (i_ < s_.size() && n < max_digits && std::isdigit(static_cast<unsigned char>(s_[i_]))) {
			v = v * 10 + (s_[i_] - '0');
			++i_;
			++n;
		}
		if (n < min_digits)
			return false;
		out = v;
		return true;
	}
	// HH:MM:SS
	bool Time(int &h, int &m, int &sec) {
		return Number(2, 2, h) && Expect(':') && Number(2, 2, m) && Expect(':') && Number(2, 2, sec);
	}

private:
	std::string_view s_;
	size_t i_ = 0;
};

int MonthIndex(std::string_view name) {
	static constexpr const char *kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
	                                          "jul", "aug", "sep", "oct", "nov", "dec"};
	if (name.size() != 3)
		return 0;
	for (int i = 0; i < 12; ++i) {
		if (IEquals(name, kMonths[i]))
			return i + 1;
	}
	return 0;
}

bool IsUtcZone(std::string_view zone) {
	return IEquals(zone, "GMT") || IEquals(zone, "UTC") || IEquals(zone, "UT") || IEquals(zone, "Z");
}

// IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94
// 08:49:37 GMT" or asctime "Sun Nov  6 08:49:37 1994" -> seconds since the epoch.
std::optional<int64_t> ParseHttpDate(std::string_view text) {
	DateCursor c(text);
	int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
	if (c.Word().empty())
		return std::nullopt;
	if (c.Expect(',')) {
		c.SkipSpaces();
		if (!c.Number(1, 2, day))
			return std::nullopt;
		if (c.Expect('-')) { // RFC 850
			month = MonthIndex(c.Word());
			if (!c.Expect('-') || !c.Number(2, 4, year))
				return std::nullopt;
			if (year < 100)
				year += year < 70 ? 2000 : 1900;
		} else { // IMF-fixdate
			c.SkipSpaces();
			month = MonthIndex(c.Word());
			c.SkipSpaces();
			if (!c.Number(4, 4, year))
				return std::nullopt;
		}
		c.SkipSpaces();
		if (!c.Time(hour, minute, second))
			return std::nullopt;
		c.SkipSpaces();
		if (!IsUtcZone(c.Word()))
			return std::nullopt;
	} else { // asctime
		c.SkipSpaces();
		month = MonthIndex(c.Word());
		c.SkipSpaces();
		if (!c.Number(1, 2, day))
			return std::nullopt;
		c.SkipSpaces();
		if (!c.Time(hour, minute, second))
			return std::nullopt;
		c.SkipSpaces();
		if (!c.Number(4, 4, year))
			return std::nullopt;
	}
	c.SkipSpaces();
	if (!c.AtEnd() || month == 0 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
		return std::nullopt;
	return DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 + hour * 3600 +
	       minute * 60 + second;
}

} // namespace

std::optional<long> ParseRetryAfter(std::string_view value, std::chrono::system_clock::time_point now) {
	constexpr long kMaxSeconds = 1000L * 1000 * 1000; // far beyond any cap the client applies
	value = Trim(value);
	if (value.empty())
		return std::nullopt;
	if (std::isdigit(static_cast<unsigned char>(value.front()))) {
		// delta-seconds; a fraction ("1.5"), which some servers send, is accepted too.
		long seconds = 0;
		size_t i = 0;
		for (; i < value.size() && std::isdigit(static_cast<unsigned char>(value[i])); ++i) {
			if (seconds < kMaxSeconds)
				seconds = seconds * 10 + (value[i] - '0');
		}
		seconds = std::min(seconds, kMaxSeconds);
		long ms = seconds * 1000;
		if (i < value.size() && value[i] == '.') {
			long scale = 100;
			for (++i; i < value.size() && std::isdigit(static_cast<unsigned char>(value[i])); ++i) {
				ms += (value[i] - '0') * scale;
				scale /= 10;
			}
		}
		if (i != value.size())
			return std::nullopt;
		return ms;
	}
	const std::optional<int64_t> epoch = ParseHttpDate(value);
	if (!epoch)
		return std::nullopt;
	const auto at = std::chrono::system_clock::time_point(std::chrono::seconds(*epoch));
	const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(at - now).count();
	if (ms <= 0)
		return 0;
	return static_cast<long>(std::min<int64_t>(ms, kMaxSeconds * 1000));
}

std::vector<std::pair<std::string, std::string>> ParseLinkHeader(std::string_view v) {
	std::vector<std::pair<std::string, std::string>> links;
	size_t i = 0;
	const size_t n = v.size();
	auto skip_ws = [&] {
		while (i < n && (IsSpace(v[i]) || v[i] == '\r' || v[i] == '\n'))
			++i;
	};
	while (i < n) {
		skip_ws();
		if (i < n && v[i] == ',') {
			++i;
			continue;
		}
		if (i >= n)
			break;
		if (v[i] != '<') { // not a link-value: skip to the next one
			while (i < n && v[i] != ',')
				++i;
			continue;
		}
		const size_t close = v.find('>', i + 1);
		if (close == std::string_view::npos)
			break;
		const std::string url(Trim(v.substr(i + 1, close - i - 1)));
		i = close + 1;
		std::vector<std::string> rels;
		bool have_rel = false;
		while (i < n) {
			skip_ws();
			if (i >= n || v[i] == ',')
				break;
			if (v[i] != ';') {
				++i; // stray character
				continue;
			}
			++i;
			skip_ws();
			const size_t name_start = i;
			while (i < n && v[i] != '=' && v[i] != ';' && v[i] != ',' && !IsSpace(v[i]))
				++i;
			const std::string_view name = v.substr(name_start, i - name_start);
			skip_ws();
			std::string value;
			if (i < n && v[i] == '=') {
				++i;
				skip_ws();
				if (i < n && v[i] == '"') {
					for (++i; i < n && v[i] != '"'; ++i) {
						if (v[i] == '\\' && i + 1 < n)
							++i;
						value += v[i];
					}
					if (i < n)
						++i; // closing quote
				} else {
					while (i < n && v[i] != ';' && v[i] != ',' && !IsSpace(v[i]))
						value += v[i++];
				}
			}
			// RFC 8288 3.3: only the first rel parameter counts.
			if (IEquals(name, "rel") && !have_rel) {
				have_rel = true;
				size_t p = 0;
				while (p < value.size()) {
					while (p < value.size() && std::isspace(static_cast<unsigned char>(value[p])))
						++p;
					size_t q = p;
					while (q < value.size() && !std::isspace(static_cast<unsigned char>(value[q])))
						++q;
					if (q > p) {
						std::string rel = value.substr(p, q - p);
						for (char &ch : rel)
							ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
						rels.push_back(std::move(rel));
					}
					p = q;
				}
			}
		}
		for (std::string &rel : rels)
			links.emplace_back(std::move(rel), url);
	}
	return links;
}

} // namespace billrecon::http
