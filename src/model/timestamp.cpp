#include "model/timestamp.hpp"

#include "model/decimal.hpp"
#include "model/error.hpp"

#include <cctype>
#include <cstdio>

namespace billrecon::model {

namespace {

[[noreturn]] void Bad(std::string_view what, std::string_view value) {
	throw Error(sqlstate::kInvalidText, "invalid " + std::string(what),
	            "The value \"" + std::string(value.substr(0, 64)) + "\" is not a valid " + std::string(what) + ".",
	            "Expected ISO 8601 (2024-06-01T12:00:00Z) or epoch seconds as the vendor documents.");
}

bool Digits(std::string_view s, size_t pos, size_t n, int &out) noexcept {
	if (pos + n > s.size())
		return false;
	int v = 0;
	for (size_t i = pos; i < pos + n; ++i) {
		if (!std::isdigit(static_cast<unsigned char>(s[i])))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	out = v;
	return true;
}

bool IsLeap(long y) noexcept {
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned DaysInMonth(long y, unsigned m) noexcept {
	static const unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

std::string Format(long days, long secs_of_day, const std::string &fraction) {
	long y;
	unsigned m, d;
	CivilFromDays(days, y, m, d);
	char buf[64];
	std::snprintf(buf, sizeof buf, "%04ld-%02u-%02uT%02ld:%02ld:%02ld", y, m, d, secs_of_day / 3600,
	              (secs_of_day / 60) % 60, secs_of_day % 60);
	std::string out(buf);
	if (!fraction.empty())
		out += "." + fraction;
	out += "Z";
	return out;
}

// Epoch value with `scale` fractional decimal digits per unit (0 for seconds,
// 3 for milliseconds) -> ISO.
std::string FromEpoch(std::string_view text, int scale, std::string_view what) {
	if (!Decimal::IsValid(text))
		Bad(what, text);
	std::string canon = Decimal::Parse(text).str();
	if (canon[0] == '-')
		Bad(what, text);
	std::string int_part = canon.substr(0, canon.find('.'));
	std::string frac = canon.find('.') == std::string::npos ? "" : canon.substr(canon.find('.') + 1);
	// Shift the point left by `scale` digits to get seconds.
	if (scale > 0) {
		if (int_part.size() <= static_cast<size_t>(scale))
			int_part.insert(0, static_cast<size_t>(scale) - int_part.size() + 1, '0');
		frac = int_part.substr(int_part.size() - static_cast<size_t>(scale)) + frac;
		int_part = int_part.substr(0, int_part.size() - static_cast<size_t>(scale));
	}
	if (int_part.size() > 12) // beyond year 30000: not a real timestamp
		Bad(what, text);
	long secs = std::stol(int_part);
	if (frac.size() > 6)
		frac = frac.substr(0, 6); // PostgreSQL keeps microseconds
	size_t last = frac.find_last_not_of('0');
	frac = last == std::string::npos ? "" : frac.substr(0, last + 1);
	return Format(secs / 86400, secs % 86400, frac);
}

} // namespace

long DaysFromCivil(long y, unsigned m, unsigned d) noexcept {
	y -= m <= 2;
	const long era = (y >= 0 ? y : y - 399) / 400;
	const unsigned long yoe = static_cast<unsigned long>(y - era * 400);
	const unsigned long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + static_cast<long>(doe) - 719468;
}

void CivilFromDays(long z, long &y, unsigned &m, unsigned &d) noexcept {
	// Howard Hinnant's algorithm.
	z += 719468;
	const long era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned long doe = static_cast<unsigned long>(z - era * 146097);
	const unsigned long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = static_cast<long>(yoe) + era * 400;
	const unsigned long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned long mp = (5 * doy + 2) / 153;
	d = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
	m = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
	y += (m <= 2);
}

std::string TimestampFromEpochSeconds(std::string_view decimal_seconds) {
	return FromEpoch(decimal_seconds, 0, "epoch timestamp");
}

std::string TimestampFromEpochMillis(std::string_view decimal_millis) {
	return FromEpoch(decimal_millis, 3, "epoch timestamp");
}

std::string NormalizeDate(std::string_view iso) {
	int y, m, d;
	if (!Digits(iso, 0, 4, y) || iso.size() < 10 || iso[4] != '-' || !Digits(iso, 5, 2, m) || iso[7] != '-' ||
	    !Digits(iso, 8, 2, d) || m < 1 || m > 12 || d < 1 || static_cast<unsigned>(d) > DaysInMonth(y, m))
		Bad("date", iso);
	if (iso.size() > 10 && iso[10] != 'T' && iso[10] != ' ')
		Bad("date", iso);
	if (iso.size() > 10)
		NormalizeTimestamp(iso); // validate the rest too
	char buf[40]; // room for any int, so -O2 -Werror sees no truncation
	std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
	return buf;
}

std::string NormalizeTimestamp(std::string_view s, bool assume_utc) {
	int y, mo, d, h = 0, mi = 0, se = 0;
	if (!Digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, mo) || s[7] != '-' ||
	    !Digits(s, 8, 2, d) || mo < 1 || mo > 12 || d < 1 || static_cast<unsigned>(d) > DaysInMonth(y, mo))
		Bad("timestamp", s);
	size_t i = 10;
	std::string fraction;
	long offset_secs = 0;
	bool zoned = false;
	if (i < s.size()) {
		if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
			Bad("timestamp", s);
		++i;
		if (!Digits(s, i, 2, h) || s.size() < i + 5 || s[i + 2] != ':' || !Digits(s, i + 3, 2, mi) || h > 23 ||
		    mi > 59)
			Bad("timestamp", s);
		i += 5;
		if (i < s.size() && s[i] == ':') {
			if (!Digits(s, i + 1, 2, se) || se > 60)
				Bad("timestamp", s);
			i += 3;
			if (se == 60)
				se = 59; // leap second: clamp
		}
		if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
			++i;
			size_t start = i;
			while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
				++i;
			if (i == start)
				Bad("timestamp", s);
			fraction = std::string(s.substr(start, i - start));
		}
		if (i < s.size()) {
			if (s[i] == 'Z' || s[i] == 'z') {
				zoned = true;
				++i;
			} else if (s[i] == '+' || s[i] == '-') {
				int oh, om = 0;
				int sign = s[i] == '-' ? -1 : 1;
				if (!Digits(s, i + 1, 2, oh) || oh > 18)
					Bad("timestamp", s);
				i += 3;
				if (i < s.size() && s[i] == ':')
					++i;
				if (i < s.size()) {
					if (!Digits(s, i, 2, om) || om > 59)
						Bad("timestamp", s);
					i += 2;
				}
				offset_secs = sign * (oh * 3600L + om * 60L);
				zoned = true;
			}
		}
		if (i != s.size())
			Bad("timestamp", s);
	} else {
		zoned = true; // a bare date is a calendar day; midnight UTC
	}
	if (!zoned && !assume_utc)
		Bad("timestamp", s);
	if (fraction.size() > 6)
		fraction = fraction.substr(0, 6);
	size_t last = fraction.find_last_not_of('0');
	fraction = last == std::string::npos ? "" : fraction.substr(0, last + 1);
	long total = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400L + h * 3600L +
	             mi * 60L + se - offset_secs;
	long days = total >= 0 ? total / 86400 : -((-total + 86399) / 86400);
	return Format(days, total - days * 86400, fraction);
}

} // namespace billrecon::model
