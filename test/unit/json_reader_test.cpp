// json::Parse* and json::Object: exact numbers, malformed input, and error
// messages that name the endpoint, record, field, expectation and finding.
#include "json/reader.hpp"
#include "json/rapidjson_config.hpp"
#include "model/error.hpp"

#include <gtest/gtest.h>

#include <string>

using billrecon::Error;
using namespace billrecon::json;

namespace {

// Runs fn, expects a billrecon::Error, returns it.
template <typename Fn>
Error Catch(Fn &&fn) {
	try {
		fn();
	} catch (const Error &e) {
		return e;
	}
	ADD_FAILURE() << "no billrecon::Error thrown";
	return Error("00000", "none");
}

Where Here() {
	return Where{"GET /company/companies", "record id 250", ""};
}

} // namespace

TEST(JsonParse, NumbersKeepTheirLiteral) {
	Value v = ParseResponse(R"({"a": 19.99, "b": 1e2, "c": -0.50, "d": 123456789012345678901234567890.123456789,
	                            "e": 0, "f": 2.5E-3})",
	                        "test");
	ASSERT_TRUE(v.IsObject());
	EXPECT_TRUE(v.Find("a")->IsNumber());
	EXPECT_EQ(v.Find("a")->text(), "19.99");
	EXPECT_EQ(v.Find("b")->text(), "1e2");
	EXPECT_EQ(v.Find("d")->text(), "123456789012345678901234567890.123456789");
	Object o(v, Here());
	EXPECT_EQ(o.RequiredDecimal("a").str(), "19.99");
	EXPECT_EQ(o.RequiredDecimal("b").str(), "100");
	EXPECT_EQ(o.RequiredDecimal("c").str(), "-0.5");
	EXPECT_EQ(o.RequiredDecimal("d").str(), "123456789012345678901234567890.123456789");
	EXPECT_EQ(o.RequiredDecimal("e").str(), "0");
	EXPECT_EQ(o.RequiredDecimal("f").str(), "0.0025");
}

TEST(JsonParse, NumbersAndStringsStayDistinct) {
	Value v = ParseResponse(R"(["250", 250, true, null, {"k": []}])", "test");
	ASSERT_TRUE(v.IsArray());
	ASSERT_EQ(v.size(), 5u);
	EXPECT_TRUE(v.at(0).IsString());
	EXPECT_TRUE(v.at(1).IsNumber());
	EXPECT_TRUE(v.at(2).IsBool());
	EXPECT_TRUE(v.at(2).GetBool());
	EXPECT_TRUE(v.at(3).IsNull());
	EXPECT_TRUE(v.at(4).IsObject());
	EXPECT_EQ(v.at(4).key(0), "k");
	EXPECT_TRUE(v.at(4).Find("k")->IsArray());
	EXPECT_EQ(v.at(4).Find("missing"), nullptr);
	EXPECT_THROW(v.at(5), std::out_of_range);
}

TEST(JsonParse, StringsAreUnescapedUtf8) {
	Value v = ParseResponse(R"({"s": "Caf\u00e9 \"A\" \\ \n", "u": "Zürich"})", "test");
	EXPECT_EQ(v.Find("s")->text(), "Caf\xc3\xa9 \"A\" \\ \n");
	EXPECT_EQ(v.Find("u")->text(), "Zürich");
}

TEST(JsonParse, MalformedBodiesReportOffset) {
	Error e = Catch([] { ParseResponse(R"([{"id": 1,}])", "GET /company/companies page 2"); });
	EXPECT_EQ(e.sqlstate(), "22P02");
	EXPECT_EQ(e.message(), "malformed JSON in vendor response");
	EXPECT_NE(e.detail().find("GET /company/companies page 2: JSON parse error at offset 10 of 12 bytes"),
	          std::string::npos)
	    << e.detail();
	EXPECT_FALSE(e.hint().empty());
}

TEST(JsonParse, NulEscapeInAStringOrKeyIsRefused) {
	// PostgreSQL text cannot hold NUL: stored, the value would end at it.
	for (const char *body : {R"([{"name": "before\u0000after"}])", R"({"a\u0000b": 1})"}) {
		Error e = Catch([&] { ParseResponse(body, "GET /company/companies"); });
		EXPECT_EQ(e.sqlstate(), "22P02");
		EXPECT_NE(e.detail().find("\\u0000 (NUL)"), std::string::npos) << e.detail();
	}
	EXPECT_EQ(ParseResponse(R"(["a\u0001b"])", "x").at(0).text().size(), 3u);
}

TEST(JsonParse, TruncatedEmptyHtmlAndTrailingGarbage) {
	ParseFailure f;
	Value v;
	EXPECT_FALSE(TryParse(R"([{"id": 1, "name": "Har)", v, f));
	EXPECT_EQ(f.offset, 23u); // the end of the text: truncated
	EXPECT_FALSE(TryParse("", v, f));
	EXPECT_EQ(f.reason, "The document is empty.");
	EXPECT_FALSE(TryParse("<html><body>Login</body></html>", v, f));
	EXPECT_EQ(f.offset, 0u);
	EXPECT_FALSE(TryParse("[] []", v, f));
	EXPECT_EQ(f.reason, "The document root must not be followed by other values.");
	EXPECT_FALSE(TryParse(std::string("[1]\0[2]", 7), v, f));
	EXPECT_EQ(f.offset, 3u);
	EXPECT_FALSE(TryParse("[1, 2", v, f));
	EXPECT_FALSE(TryParse("{\"a\": 1e400}", v, f)); // beyond any decimal we keep
	EXPECT_FALSE(TryParse("[\"\xff\"]", v, f));     // invalid UTF-8
	EXPECT_TRUE(TryParse("  [1]  ", v, f));
}

TEST(JsonParse, DeepNestingIsRefusedNotCrashing) {
	std::string deep(kMaxDepth + 1, '[');
	deep += std::string(kMaxDepth + 1, ']');
	ParseFailure f;
	Value v;
	EXPECT_FALSE(TryParse(deep, v, f));
	EXPECT_NE(f.reason.find("nested deeper than 256"), std::string::npos);
	std::string ok(kMaxDepth, '[');
	ok += std::string(kMaxDepth, ']');
	EXPECT_TRUE(TryParse(ok, v, f));
	// A megabyte of opening brackets: iterative parsing, no stack overflow.
	std::string huge(1 << 20, '[');
	EXPECT_FALSE(TryParse(huge, v, f));
}

TEST(JsonParse, LargeArray) {
	std::string body = "[";
	for (int i = 0; i < 20000; ++i)
		body += (i ? "," : "") + std::string(R"({"id":)") + std::to_string(i) + R"(,"q":"1.5"})";
	body += "]";
	Value v = ParseResponse(body, "test");
	ASSERT_EQ(v.size(), 20000u);
	EXPECT_EQ(v.at(19999).Find("id")->text(), "19999");
}

TEST(JsonObject, TypeMismatchNamesEndpointRecordFieldExpectedAndFound) {
	Value v = ParseResponse(R"({"id": 250, "name": 42})", "test");
	Object o(v, Where{"GET /company/companies", "", ""});
	o.SetRecordId("250");
	Error e = Catch([&] { o.RequiredString("name"); });
	EXPECT_EQ(e.sqlstate(), "22P02");
	EXPECT_EQ(e.message(), "unexpected value in vendor response");
	EXPECT_EQ(e.detail(), "GET /company/companies record id 250: field \"name\" should be a string, found number 42");
	EXPECT_FALSE(e.hint().empty());
}

TEST(JsonObject, RequiredMissingAndNull) {
	Value v = ParseResponse(R"({"id": 7, "name": null})", "test");
	Object o(v, Here());
	Error missing = Catch([&] { o.RequiredString("identifier"); });
	EXPECT_EQ(missing.sqlstate(), "22000");
	EXPECT_EQ(missing.message(), "missing field in vendor response");
	EXPECT_EQ(missing.detail(), "GET /company/companies record id 250: field \"identifier\" is missing");
	Error null = Catch([&] { o.RequiredString("name"); });
	EXPECT_EQ(null.sqlstate(), "22P02");
	EXPECT_EQ(null.detail(), "GET /company/companies record id 250: field \"name\" should be a string, found null");
}

TEST(JsonObject, OptionalNullIsAbsentUnknownIgnored) {
	Value v = ParseResponse(
	    R"({"a": null, "b": "x", "c": "", "d": true, "n": null, "extra": {"deep": [1, 2]}, "o": null})", "test");
	Object o(v, Here());
	EXPECT_FALSE(o.OptionalString("a").has_value());
	EXPECT_FALSE(o.OptionalString("zzz").has_value());
	EXPECT_EQ(o.OptionalString("b").value(), "x");
	EXPECT_EQ(o.OptionalString("c").value(), "");
	EXPECT_FALSE(o.OptionalNonEmptyString("c").has_value());
	EXPECT_EQ(o.OptionalBool("d").value(), true);
	EXPECT_FALSE(o.OptionalBool("n").has_value());
	EXPECT_FALSE(o.OptionalDecimal("n").has_value());
	EXPECT_FALSE(o.OptionalObject("o").has_value());
	EXPECT_FALSE(o.OptionalId("n").has_value());
	EXPECT_FALSE(o.OptionalTimestamp("n").has_value());
	EXPECT_EQ(o.Get("a"), nullptr);
	EXPECT_NE(o.Get("extra"), nullptr);
}

TEST(JsonObject, DecimalsFromNumbersAndNumericStrings) {
	Value v = ParseResponse(R"({"q": "42.50", "p": 19.99, "bad": "lots", "b": true, "e": "", "big": 1e-2000})",
	                        "test");
	Object o(v, Here());
	EXPECT_EQ(o.RequiredDecimal("q").str(), "42.5");
	EXPECT_EQ(o.OptionalDecimal("p")->str(), "19.99");
	Error bad = Catch([&] { o.RequiredDecimal("bad"); });
	EXPECT_EQ(bad.detail(),
	          "GET /company/companies record id 250: field \"bad\" should be a number, found string \"lots\"");
	Error b = Catch([&] { o.OptionalDecimal("b"); });
	EXPECT_EQ(b.detail(), "GET /company/companies record id 250: field \"b\" should be a number, found boolean");
	Error e = Catch([&] { o.OptionalDecimal("e"); });
	EXPECT_EQ(e.detail(), "GET /company/companies record id 250: field \"e\" should be a number, found string \"\"");
	EXPECT_THROW(o.OptionalDecimal("big"), Error);
	Error missing = Catch([&] { o.RequiredDecimal("quantity"); });
	EXPECT_EQ(missing.sqlstate(), "22000");
}

TEST(JsonObject, Ids) {
	Value v = ParseResponse(R"({"a": 250, "b": "abc-1", "c": 2.5e2, "d": 1.5, "e": "", "f": [1], "g": 1e-9999})",
	                        "test");
	Object o(v, Here());
	EXPECT_EQ(o.RequiredId("a"), "250");
	EXPECT_EQ(o.RequiredId("b"), "abc-1");
	EXPECT_EQ(o.RequiredId("c"), "250");
	Error d = Catch([&] { o.RequiredId("d"); });
	EXPECT_EQ(d.detail(), "GET /company/companies record id 250: field \"d\" should be an integer or a non-empty "
	                      "string id, found number 1.5");
	EXPECT_THROW(o.OptionalId("e"), Error);
	Error f = Catch([&] { o.OptionalId("f"); });
	EXPECT_NE(f.detail().find("found array"), std::string::npos);
	EXPECT_THROW(o.OptionalId("g"), Error);
}

TEST(JsonObject, NestedRefsCarryTheirPath) {
	Value v = ParseResponse(R"({"company": {"id": "x1", "name": 5}, "type": [1], "status": {"_info": {"a": 1}}})",
	                        "test");
	Object o(v, Where{"GET /finance/agreements", "page 1 item 3", ""});
	Object company = o.RequiredObject("company");
	EXPECT_EQ(company.RequiredId("id"), "x1");
	Error name = Catch([&] { company.OptionalString("name"); });
	EXPECT_EQ(name.detail(), "GET /finance/agreements page 1 item 3: field \"company.name\" should be a string, "
	                         "found number 5");
	Error missing = Catch([&] { o.RequiredObject("status").RequiredObject("_info").RequiredString("lastUpdated"); });
	EXPECT_EQ(missing.detail(), "GET /finance/agreements page 1 item 3: field \"status._info.lastUpdated\" is missing");
	Error type = Catch([&] { o.OptionalObject("type"); });
	EXPECT_EQ(type.detail(), "GET /finance/agreements page 1 item 3: field \"type\" should be an object, found array");
	Error absent = Catch([&] { o.RequiredObject("contact"); });
	EXPECT_EQ(absent.sqlstate(), "22000");
}

TEST(JsonObject, TimestampsDatesEpochs) {
	Value v = ParseResponse(R"({"t": "2024-05-03T14:22:10Z", "t2": "2024-05-03T16:22:10+02:00",
	    "d": "2024-01-01T00:00:00Z", "d2": "2024-02-29", "bad": "yesterday", "num": 5,
	    "e": 1718102312.514, "e2": "1718102300", "e3": -5, "e4": "soon"})",
	                        "test");
	Object o(v, Here());
	EXPECT_EQ(o.OptionalTimestamp("t").value(), "2024-05-03T14:22:10Z");
	EXPECT_EQ(o.OptionalTimestamp("t2").value(), "2024-05-03T14:22:10Z");
	EXPECT_EQ(o.OptionalDate("d").value(), "2024-01-01");
	EXPECT_EQ(o.OptionalDate("d2").value(), "2024-02-29");
	Error bad = Catch([&] { o.OptionalTimestamp("bad"); });
	EXPECT_EQ(bad.sqlstate(), "22P02");
	EXPECT_EQ(bad.detail(), "GET /company/companies record id 250: field \"bad\" should be an ISO 8601 timestamp, "
	                        "found string \"yesterday\"");
	Error num = Catch([&] { o.OptionalDate("num"); });
	EXPECT_EQ(num.detail(), "GET /company/companies record id 250: field \"num\" should be an ISO 8601 date string, "
	                        "found number 5");
	EXPECT_EQ(o.OptionalEpochSeconds("e").value(), "2024-06-11T10:38:32.514Z");
	EXPECT_EQ(o.OptionalEpochSeconds("e2").value(), "2024-06-11T10:38:20Z");
	EXPECT_THROW(o.OptionalEpochSeconds("e3"), Error);
	Error e4 = Catch([&] { o.OptionalEpochSeconds("e4"); });
	EXPECT_EQ(e4.detail(), "GET /company/companies record id 250: field \"e4\" should be seconds since the epoch, "
	                       "found string \"soon\"");
}

TEST(JsonObject, BooleansAreStrict) {
	Value v = ParseResponse(R"({"t": true, "f": false, "s": "true", "n": 1})", "test");
	Object o(v, Here());
	EXPECT_TRUE(o.RequiredBool("t"));
	EXPECT_FALSE(o.RequiredBool("f"));
	Error s = Catch([&] { o.OptionalBool("s"); });
	EXPECT_EQ(s.detail(), "GET /company/companies record id 250: field \"s\" should be a boolean, found string \"true\"");
	EXPECT_THROW(o.RequiredBool("n"), Error);
	EXPECT_THROW(o.RequiredBool("x"), Error);
}

TEST(JsonObject, ItemsBeforeTheIdIsKnownAndNonObjects) {
	Value v = ParseResponse(R"([{"id": 1}, "oops", {"name": "x"}])", "test");
	Where page{"GET /company/companies", "page 2", ""};
	Error e = Catch([&] { Object::Item(v, 1, page); });
	EXPECT_EQ(e.detail(), "GET /company/companies page 2 item 2: record should be an object, found string");
	Object third = Object::Item(v, 2, page);
	Error id = Catch([&] { third.RequiredId("id"); });
	EXPECT_EQ(id.detail(), "GET /company/companies page 2 item 3: field \"id\" is missing");
	Value obj = ParseResponse("{}", "test");
	Error arr = Catch([&] { ExpectArray(obj, page); });
	EXPECT_EQ(arr.detail(), "GET /company/companies page 2: response should be an array, found object");
}

TEST(JsonObject, LongStringsAreShortenedOnCharacterBoundaries) {
	std::string s(59, 'a');
	s += "\xc3\xa9zzzzzzzzzzzz"; // "é" straddles the cut
	Value v = ParseResponse("{\"q\": \"" + s + "\"}", "test");
	Object o(v, Here());
	Error e = Catch([&] { o.RequiredDecimal("q"); });
	EXPECT_NE(e.detail().find("found string \"" + std::string(59, 'a') + "...\""), std::string::npos) << e.detail();
}

TEST(JsonConfig, ObjectsOnlyAndNoValuesInMessages) {
	Value ok = ParseConfigObject(R"({"private_key": "s3cret", "n": 5})", "credentials");
	EXPECT_EQ(ok.Find("private_key")->text(), "s3cret");
	Error malformed = Catch([] { ParseConfigObject(R"({"private_key": "s3cret)", "credentials"); });
	EXPECT_EQ(malformed.sqlstate(), "22023");
	EXPECT_EQ(malformed.message(), "invalid JSON in credentials");
	EXPECT_EQ(malformed.detail().find("s3cret"), std::string::npos);
	EXPECT_NE(malformed.detail().find("offset"), std::string::npos);
	Error array = Catch([] { ParseConfigObject(R"(["s3cret"])", "credentials"); });
	EXPECT_EQ(array.sqlstate(), "22023");
	EXPECT_EQ(array.message(), "credentials must be a JSON object");
	EXPECT_EQ(array.detail(), "The credentials value is a JSON array.");
}

TEST(JsonQuote, Escapes) {
	std::string out;
	AppendQuoted(out, std::string("a\"b\\c\n\x01", 7));
	EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001\"");
}

TEST(RapidJsonConfig, AssertThrowsInsteadOfAborting) {
	rapidjson::Document d;
	d.Parse("[1]");
	ASSERT_TRUE(d.IsArray());
	EXPECT_THROW(d.GetObject(), AssertError); // wrong type: would abort() with the default assert
	EXPECT_THROW(d["missing"], AssertError);
}
