// CSV usage import: RFC 4180 splitting and strict row validation.
#include "connectors/csv_usage.hpp"
#include "model/error.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace billrecon;
using namespace billrecon::connectors;

namespace {

const std::string kHeader = std::string(kCsvUsageHeader) + "\n";

std::string DetailOf(const std::string &csv) {
	try {
		ParseCsvUsage(csv);
	} catch (const Error &e) {
		EXPECT_EQ(e.sqlstate(), "22P02");
		EXPECT_EQ(std::string(e.what()), "invalid CSV usage data");
		return e.detail();
	}
	ADD_FAILURE() << "no error for: " << csv;
	return {};
}

} // namespace

TEST(CsvSplit, QuotesCommasNewlinesAndCrlf) {
	std::vector<size_t> lines;
	auto records = SplitCsv("a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"multi\nline\",x,\r\n\nlast", lines);
	ASSERT_EQ(records.size(), 3u);
	EXPECT_EQ(records[0], (std::vector<std::string>{"a", "b,c", "say \"hi\""}));
	EXPECT_EQ(records[1], (std::vector<std::string>{"multi\nline", "x", ""}));
	EXPECT_EQ(records[2], (std::vector<std::string>{"last"}));
	EXPECT_EQ(lines, (std::vector<size_t>{1, 2, 5}));
}

// Found by fuzz_csv_usage: a lone CR (old Mac line ends) ended a record
// without counting a line, so every later error named the wrong line.
TEST(CsvSplit, LoneCarriageReturnsCountLines) {
	std::vector<size_t> lines;
	auto records = SplitCsv("header\rA1,X\rA1,Y\r\nA1,Z\nlast", lines);
	ASSERT_EQ(records.size(), 5u);
	EXPECT_EQ(lines, (std::vector<size_t>{1, 2, 3, 4, 5}));
}

TEST(CsvSplit, UnterminatedQuoteNamesItsLine) {
	std::vector<size_t> lines;
	try {
		SplitCsv("a,b\nc,\"open\n", lines);
		FAIL();
	} catch (const Error &e) {
		EXPECT_NE(e.detail().find("line 2"), std::string::npos) << e.detail();
	}
}

TEST(CsvUsage, ParsesEveryKind) {
	CsvUsage u = ParseCsvUsage(
	    "\xEF\xBB\xBF" + kHeader +
	    "A1,Harbor Dental,device,,,laptop,Windows 11 Pro,HD-LT-01,2026-11-01T08:00:00Z\n"
	    "A1,Harbor Dental,licence,SPB,12,,,,\n"
	    "A1,Harbor Dental,license,SPB,3.5,,,,\n"
	    "A2,\"Smith, Jones & Co\",user,,,,,alice@smith.example,2026-10-01\n"
	    "A2,\"Smith, Jones & Co\",subscription,Backup 1TB,2,,,,\n");
	ASSERT_EQ(u.accounts.size(), 2u);
	EXPECT_EQ(u.accounts[1].external_id, "A2");
	EXPECT_EQ(u.accounts[1].name, "Smith, Jones & Co");
	ASSERT_EQ(u.usage.size(), 5u);
	EXPECT_EQ(u.usage[0].kind, model::UsageKind::kDevice);
	EXPECT_EQ(u.usage[0].quantity.str(), "1");
	EXPECT_EQ(*u.usage[0].device_class, model::DeviceClass::kLaptop);
	EXPECT_EQ(*u.usage[0].device_name, "HD-LT-01");
	EXPECT_EQ(*u.usage[0].last_active_at, "2026-11-01T08:00:00Z");
	EXPECT_EQ(u.usage[1].quantity.str(), "12");
	EXPECT_EQ(u.usage[1].external_id, "A1|licence|SPB|");
	EXPECT_EQ(u.usage[2].kind, model::UsageKind::kLicence);
	EXPECT_EQ(u.usage[2].quantity.str(), "3.5");
	EXPECT_EQ(u.usage[2].external_id, "A1|licence|SPB|#2");
	EXPECT_EQ(u.usage[3].kind, model::UsageKind::kUser);
	EXPECT_EQ(*u.usage[3].last_active_at, "2026-10-01T00:00:00Z");
	EXPECT_EQ(u.usage[4].kind, model::UsageKind::kSubscription);
	EXPECT_EQ(*u.usage[4].product, "Backup 1TB");
}

TEST(CsvUsage, HeaderOnlyIsEmpty) {
	CsvUsage u = ParseCsvUsage(kHeader);
	EXPECT_TRUE(u.accounts.empty());
	EXPECT_TRUE(u.usage.empty());
}

TEST(CsvUsage, StrictErrorsWithLineNumbers) {
	EXPECT_NE(DetailOf("").find("line 1: the text is empty"), std::string::npos);
	EXPECT_NE(DetailOf("account,name\n").find("line 1: the header is"), std::string::npos);
	EXPECT_NE(DetailOf(kHeader + "A1,X,device,,,,,,\nA1,X,device\n").find("line 3: expected 9 fields, found 3"),
	          std::string::npos);
	EXPECT_NE(DetailOf(kHeader + ",X,device,,,,,,\n").find("line 2: account_id is empty"), std::string::npos);
	EXPECT_NE(DetailOf(kHeader + "A1,,device,,,,,,\n").find("line 2: account_name is empty"), std::string::npos);
	EXPECT_NE(DetailOf(kHeader + "A1,X,seat,,,,,,\n").find("line 2: kind \"seat\""), std::string::npos);
	EXPECT_NE(DetailOf(kHeader + "A1,X,licence,,5,,,,\n").find("line 2: product is required"), std::string::npos);
	EXPECT_NE(DetailOf(kHeader + "A1,X,licence,SPB,,,,,\n").find("line 2: quantity is required"), std::string::npos);
	EXPECT_NE(DetailOf(kHeader + "A1,X,licence,SPB,ten,,,,\n").find("line 2: quantity \"ten\" is not a decimal"),
	          std::string::npos);
	EXPECT_NE(DetailOf(kHeader + "A1,X,licence,SPB,-1,,,,\n").find("line 2: quantity \"-1\" is negative"),
	          std::string::npos);
	EXPECT_NE(DetailOf(kHeader + "A1,X,device,,,tablet,,,\n").find("line 2: device_class \"tablet\""),
	          std::string::npos);
	EXPECT_NE(DetailOf(kHeader + "A1,X,user,,,laptop,,,\n").find("line 2: device_class is only for kind device"),
	          std::string::npos);
	EXPECT_NE(DetailOf(kHeader + "A1,X,device,,,,,,yesterday\n").find("line 2: last_active_at \"yesterday\""),
	          std::string::npos);
	EXPECT_NE(DetailOf(kHeader + "A1,X,device,,,,,,\nA1,Y,device,,,,,,\n").find("line 3: account \"A1\" is named"),
	          std::string::npos);
	// A quoted field spanning lines shifts the numbers of later rows.
	EXPECT_NE(DetailOf(kHeader + "A1,\"X\nY\",device,,,,,,\nA2,Z,bad,,,,,,\n").find("line 4:"), std::string::npos);
}
