#include "reconcile/civil_date.hpp"

#include "model/error.hpp"
#include "model/timestamp.hpp"

#include <cctype>
#include <cstdio>

namespace billrecon::reconcile {

bool IsLeapYear(long year) noexcept {
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

unsigned DaysInMonth(long year, unsigned month) noexcept {
	static const unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

CivilDate::CivilDate(long days) noexcept : days_(days) {
	model::CivilFromDays(days, year_, month_, day_);
}

CivilDate CivilDate::FromYmd(long year, unsigned month, unsigned day) {
	if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) {
		char buf[80];
		std::snprintf(buf, sizeof buf, "%ld-%02u-%02u", year, month, day);
		throw Error(sqlstate::kInvalidParameter, "invalid date",
		            std::string("There is no day ") + buf + " in the calendar.",
		            "Months run from 1 to 12 and have 28 to 31 days.");
	}
	return CivilDate(model::DaysFromCivil(year, month, day));
}

CivilDate CivilDate::Parse(std::string_view iso) {
	auto bad = [&]() -> Error {
		return Error(sqlstate::kInvalidText, "invalid date",
		             "The value \"" + std::string(iso.substr(0, 64)) + "\" is not a date.",
		             "Write dates as YYYY-MM-DD, e.g. 2026-02-15.");
	};
	std::size_t i = 0;
	bool negative = false;
	if (i < iso.size() && iso[i] == '-') {
		negative = true;
		++i;
	}
	long year = 0;
	std::size_t start = i;
	while (i < iso.size() && std::isdigit(static_cast<unsigned char>(iso[i]))) {
		if (i - start >= 9)
			throw bad();
		year = year * 10 + (iso[i++] - '0');
	}
	if (i - start < 4 || iso.size() != i + 6 || iso[i] != '-' || iso[i + 3] != '-')
		throw bad();
	auto two = [&](std::size_t at) -> unsigned {
		if (!std::isdigit(static_cast<unsigned char>(iso[at])) || !std::isdigit(static_cast<unsigned char>(iso[at + 1])))
			throw bad();
		return static_cast<unsigned>((iso[at] - '0') * 10 + (iso[at + 1] - '0'));
	};
	unsigned month = two(i + 1), day = two(i + 4);
	return FromYmd(negative ? -year : year, month, day);
}

CivilDate CivilDate::Clamped(long year, long month, unsigned day) noexcept {
	// Month 1..12 of the right year: floor division, months before January included.
	long zero_based = month - 1;
	long year_shift = zero_based >= 0 ? zero_based / 12 : -((-zero_based + 11) / 12);
	year += year_shift;
	unsigned m = static_cast<unsigned>(zero_based - year_shift * 12 + 1);
	unsigned last = DaysInMonth(year, m);
	if (day < 1)
		day = 1;
	return CivilDate(model::DaysFromCivil(year, m, day < last ? day : last));
}

std::string CivilDate::ToString() const {
	char buf[64];
	if (year_ <= 0) // astronomical year 0 is 1 BC, as PostgreSQL writes it
		std::snprintf(buf, sizeof buf, "%04ld-%02u-%02u BC", 1 - year_, month_, day_);
	else
		std::snprintf(buf, sizeof buf, "%04ld-%02u-%02u", year_, month_, day_);
	return buf;
}

} // namespace billrecon::reconcile
