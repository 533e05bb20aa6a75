// A calendar date without time or zone (proleptic Gregorian), as a count of
// days since 1970-01-01 plus its year, month and day. Billing cycles and
// proration count whole days, so they never need a clock or a time zone.
// Arithmetic: model::DaysFromCivil / CivilFromDays (Howard Hinnant's
// algorithms, src/model/timestamp.hpp); no C++20 <chrono> calendar.
#pragma once

#include <string>
#include <string_view>

namespace billrecon::reconcile {

bool IsLeapYear(long year) noexcept;

// 28..31; month is 1..12.
unsigned DaysInMonth(long year, unsigned month) noexcept;

class CivilDate {
public:
	// 1970-01-01.
	CivilDate() noexcept : CivilDate(0) {
	}

	// The date `days` days after 1970-01-01 (before it when negative).
	static CivilDate FromDays(long days) noexcept {
		return CivilDate(days);
	}

	// A valid date; throws billrecon::Error (22023) for month 13, April 31,
	// February 29 of a common year and the like.
	static CivilDate FromYmd(long year, unsigned month, unsigned day);

	// "YYYY-MM-DD" (four or more year digits; a leading '-' for astronomical
	// years before 1: "-0001-12-31" is 2 BC); throws billrecon::Error (22P02)
	// on anything else.
	static CivilDate Parse(std::string_view iso);

	// The date in month (year, month) on day-of-month `day`, or on that
	// month's last day when it is shorter (day 31 in April -> April 30). month
	// may lie outside 1..12 and rolls over into other years (month 14 of 2026
	// is February 2027, month 0 is December of the year before).
	static CivilDate Clamped(long year, long month, unsigned day) noexcept;

	long days() const noexcept {
		return days_;
	}
	long year() const noexcept {
		return year_;
	}
	unsigned month() const noexcept {
		return month_;
	}
	unsigned day() const noexcept {
		return day_;
	}

	CivilDate AddDays(long n) const noexcept {
		return CivilDate(days_ + n);
	}

	// "2026-02-15"; years beyond 9999 have more digits; years before 1 as
	// PostgreSQL writes them: astronomical year 0 is "0001-12-31 BC".
	std::string ToString() const;

	// Days from b to a: 2026-03-31 - 2026-03-01 = 30.
	friend long operator-(const CivilDate &a, const CivilDate &b) noexcept {
		return a.days_ - b.days_;
	}
	friend bool operator==(const CivilDate &a, const CivilDate &b) noexcept {
		return a.days_ == b.days_;
	}
	friend bool operator!=(const CivilDate &a, const CivilDate &b) noexcept {
		return a.days_ != b.days_;
	}
	friend bool operator<(const CivilDate &a, const CivilDate &b) noexcept {
		return a.days_ < b.days_;
	}
	friend bool operator<=(const CivilDate &a, const CivilDate &b) noexcept {
		return a.days_ <= b.days_;
	}
	friend bool operator>(const CivilDate &a, const CivilDate &b) noexcept {
		return a.days_ > b.days_;
	}
	friend bool operator>=(const CivilDate &a, const CivilDate &b) noexcept {
		return a.days_ >= b.days_;
	}

private:
	explicit CivilDate(long days) noexcept;

	long days_;
	long year_;
	unsigned month_;
	unsigned day_;
};

} // namespace billrecon::reconcile

#include "core_only.hpp"
