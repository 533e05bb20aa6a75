// At-rest encryption of credentials: key files (format and the ssl_key_file
// permission rule), key ids, envelopes (round trip, wrong key, tampering,
// moving an envelope to another integration) and messages that never carry
// the key or the plaintext.
#include "crypto/credential_box.hpp"
#include "model/error.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <vector>
#include <fstream>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

using namespace billrecon;
using namespace billrecon::crypto;

namespace {

const char kHexA[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const char kHexB[] = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
const char kPlain[] = R"({"client_id":"cid","client_secret":"s3cr3t-PLAINTEXT-tag"})";

std::string AllOf(const Error &e) {
	return e.message() + "\n" + e.detail() + "\n" + e.hint();
}

// A temporary directory with files of chosen modes; removed afterwards.
class KeyDir : public ::testing::Test {
protected:
	void SetUp() override {
		char tmpl[] = "/tmp/billrecon-key-test-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir_ = tmpl;
	}
	void TearDown() override {
		for (const std::string &f : files_)
			std::remove(f.c_str());
		for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it)
			rmdir(it->c_str());
		rmdir(dir_.c_str());
	}
	std::string Write(const std::string &name, const std::string &content, mode_t mode) {
		std::string path = dir_ + "/" + name;
		std::ofstream(path) << content;
		chmod(path.c_str(), mode);
		files_.push_back(path);
		return path;
	}
	std::string Subdir(const std::string &name) {
		std::string path = dir_ + "/" + name;
		mkdir(path.c_str(), 0700);
		dirs_.push_back(path);
		return path;
	}
	std::string dir_;
	std::vector<std::string> files_;
	std::vector<std::string> dirs_;
};

Error CatchError(const std::function<void()> &fn) {
	try {
		fn();
	} catch (const Error &e) {
		return e;
	}
	ADD_FAILURE() << "no error thrown";
	return Error("", "");
}

} // namespace

TEST(CredentialKey, FromHexAcceptsSurroundingWhiteSpaceAndEitherCase) {
	CredentialKey a = CredentialKey::FromHex(std::string("  ") + kHexA + "\n", "k");
	std::string upper(kHexA);
	for (char &c : upper)
		c = static_cast<char>(toupper(c));
	CredentialKey b = CredentialKey::FromHex(upper, "k");
	EXPECT_EQ(a.id(), b.id());
	EXPECT_EQ(a.id().size(), 16u);
	EXPECT_EQ(a.id().find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(CredentialKey, IdIsAStableFingerprintThatDiffersPerKey) {
	CredentialKey a = CredentialKey::FromHex(kHexA, "k");
	CredentialKey b = CredentialKey::FromHex(kHexB, "k");
	EXPECT_NE(a.id(), b.id());
	// SHA-256("billrecon credential key v1\0" || key), first 8 bytes: a format
	// promise (stored rows name their key by it), so pinned here.
	EXPECT_EQ(a.id(), CredentialKey::FromHex(kHexA, "other").id());
	EXPECT_EQ(a.id(), "35a5db49adeeb3a5") << "the key id derivation changed: stored envelopes would no longer match";
}

TEST(CredentialKey, FromHexRefusesOtherTextWithoutRepeatingIt) {
	const std::string secretish = "my-passphrase-that-is-not-hex-XYZZY";
	for (const std::string &text : {secretish, std::string(kHexA).substr(0, 62), std::string(kHexA) + "00",
	                                std::string(kHexA).replace(10, 1, "g"), std::string()}) {
		Error e = CatchError([&] { CredentialKey::FromHex(text, "/etc/billrecon/credential.key"); });
		EXPECT_EQ(e.sqlstate(), "F0000");
		EXPECT_NE(e.message().find("does not hold a 256-bit key"), std::string::npos) << e.message();
		EXPECT_NE(e.hint().find("openssl rand -hex 32"), std::string::npos);
		if (!text.empty()) {
			EXPECT_EQ(AllOf(e).find(text), std::string::npos) << AllOf(e);
			EXPECT_EQ(AllOf(e).find("XYZZY"), std::string::npos) << AllOf(e);
		}
	}
}

TEST(Envelope, RoundTripAndFormat) {
	CredentialKey key = CredentialKey::FromHex(kHexA, "k");
	std::string sealed = Seal(key, 42, kPlain);
	EXPECT_EQ(sealed.size(), kMinEnvelopeBytes + std::strlen(kPlain));
	EXPECT_EQ(sealed.substr(0, 4), "BRC1");
	EXPECT_EQ(EnvelopeKeyId(sealed), key.id());
	EXPECT_EQ(sealed.find("s3cr3t"), std::string::npos);
	EXPECT_EQ(sealed.find("client_id"), std::string::npos);
	EXPECT_EQ(Open(key, 42, sealed, "integration \"x\"").str(), kPlain);
	// A fresh nonce each time: the same credentials never give the same bytes.
	EXPECT_NE(Seal(key, 42, kPlain), sealed);
	EXPECT_EQ(Open(key, 42, Seal(key, 42, ""), "x").str(), "");
}

TEST(Envelope, WrongKeyIsReportedAsSuchWithBothKeyIds) {
	CredentialKey a = CredentialKey::FromHex(kHexA, "k");
	CredentialKey b = CredentialKey::FromHex(kHexB, "k");
	std::string sealed = Seal(a, 7, kPlain);
	Error e = CatchError([&] { Open(b, 7, sealed, "integration \"cw\""); });
	EXPECT_EQ(e.sqlstate(), "55000");
	EXPECT_EQ(e.message(), "credentials of integration \"cw\" are encrypted with another key");
	EXPECT_NE(e.detail().find(a.id()), std::string::npos);
	EXPECT_NE(e.detail().find(b.id()), std::string::npos);
	EXPECT_NE(e.hint().find("billrecon.credential_key_file"), std::string::npos);
	EXPECT_NE(e.hint().find("rotate_credential_key"), std::string::npos);
	EXPECT_EQ(AllOf(e).find("s3cr3t"), std::string::npos);
}

TEST(Envelope, TamperingAndMovingToAnotherIntegrationFailAuthentication) {
	CredentialKey key = CredentialKey::FromHex(kHexA, "k");
	std::string sealed = Seal(key, 7, kPlain);
	// Another integration's row: the id is authenticated data.
	Error moved = CatchError([&] { Open(key, 8, sealed, "integration \"other\""); });
	EXPECT_EQ(moved.sqlstate(), "XX001");
	EXPECT_NE(moved.message().find("fail authentication"), std::string::npos);
	// Every single byte after the header matters (nonce, ciphertext, tag).
	for (size_t i = kHeaderBytes; i < sealed.size(); ++i) {
		std::string bad = sealed;
		bad[i] = static_cast<char>(bad[i] ^ 0x01);
		Error e = CatchError([&] { Open(key, 7, bad, "x"); });
		EXPECT_EQ(e.sqlstate(), "XX001") << "byte " << i;
	}
	// Truncated: no longer an envelope, or a wrong tag.
	for (size_t n : {size_t(0), size_t(3), kMinEnvelopeBytes - 1, sealed.size() - 1}) {
		Error e = CatchError([&] { Open(key, 7, sealed.substr(0, n), "x"); });
		EXPECT_EQ(e.sqlstate(), "XX001") << "length " << n;
	}
	Error notours = CatchError([&] { Open(key, 7, std::string(60, 'x'), "integration \"x\""); });
	EXPECT_EQ(notours.message(), "encrypted credentials of integration \"x\" are malformed");
	EXPECT_EQ(EnvelopeKeyId(std::string(60, 'x')), "");
}

TEST(SecretString, MovesAndWipes) {
	SecretString a{std::string(kPlain)};
	SecretString b(std::move(a));
	EXPECT_EQ(b.str(), kPlain);
	EXPECT_TRUE(a.str().empty()); // NOLINT(bugprone-use-after-move): wiped on purpose
	SecretString c;
	c = std::move(b);
	EXPECT_EQ(c.str(), kPlain);
	EXPECT_TRUE(b.str().empty()); // NOLINT(bugprone-use-after-move)
}

TEST_F(KeyDir, LoadsAnOwnerOnlyKeyFile) {
	std::string path = Write("good.key", std::string(kHexA) + "\n", 0600);
	CredentialKey key = CredentialKey::Load(path, "");
	EXPECT_EQ(key.id(), CredentialKey::FromHex(kHexA, "k").id());
	std::string ro = Write("readonly.key", kHexA, 0400);
	EXPECT_EQ(CredentialKey::Load(ro, "/nonexistent-data-dir").id(), key.id());
}

TEST_F(KeyDir, RefusesGroupOrWorldAccess) {
	// The file is owned by this process's user (root included: PostgreSQL
	// applies the owner rule first), so any group or world bit is refused.
	// (The root-owned variant, where group read is allowed, needs the server
	// to run as another user than the file owner: not tested here.)
	for (mode_t mode : {0640, 0604, 0660, 0644, 0700 | 0040}) {
		std::string path = Write("open.key", kHexA, mode);
		Error e = CatchError([&] { CredentialKey::Load(path, ""); });
		EXPECT_EQ(e.sqlstate(), "F0000") << std::oct << mode;
		EXPECT_NE(e.message().find("has group or world access"), std::string::npos) << e.message();
		EXPECT_NE(e.hint().find("chmod 600"), std::string::npos);
		EXPECT_EQ(AllOf(e).find(kHexA), std::string::npos);
	}
}

TEST_F(KeyDir, RefusesAKeyInsideTheDataDirectory) {
	std::string data = Subdir("data");
	std::string path = data + "/credential.key";
	std::ofstream(path) << kHexA;
	chmod(path.c_str(), 0600);
	files_.push_back(path);
	Error e = CatchError([&] { CredentialKey::Load(path, data); });
	EXPECT_EQ(e.sqlstate(), "F0000");
	EXPECT_NE(e.message().find("is inside the data directory"), std::string::npos) << e.message();
	// Also through a path that only resolves there (.. segments).
	Subdir("data/sub");
	Error e2 = CatchError([&] { CredentialKey::Load(data + "/sub/../credential.key", data + "/"); });
	EXPECT_EQ(e2.sqlstate(), "F0000");
	// A sibling whose name starts like the data directory is outside it.
	std::string sibling_dir = Subdir("data2");
	std::string sibling = sibling_dir + "/k";
	std::ofstream(sibling) << kHexA;
	chmod(sibling.c_str(), 0600);
	files_.push_back(sibling);
	EXPECT_NO_THROW(CredentialKey::Load(sibling, data));
}

TEST_F(KeyDir, MissingRelativeSpecialAndMalformedFiles) {
	Error missing = CatchError([&] { CredentialKey::Load(dir_ + "/none.key", ""); });
	EXPECT_EQ(missing.sqlstate(), "58P01");
	EXPECT_NE(missing.message().find("could not open credential key file"), std::string::npos);
	Error relative = CatchError([&] { CredentialKey::Load("credential.key", ""); });
	EXPECT_EQ(relative.sqlstate(), "F0000");
	EXPECT_NE(relative.message().find("is not an absolute path"), std::string::npos);
	Error dir = CatchError([&] { CredentialKey::Load(dir_, ""); });
	EXPECT_EQ(dir.sqlstate(), "F0000");
	EXPECT_NE(dir.message().find("is not a regular file"), std::string::npos);
	std::string pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC-secret-body\n";
	Error bad = CatchError([&] { CredentialKey::Load(Write("pem.key", pem, 0600), ""); });
	EXPECT_EQ(bad.sqlstate(), "F0000");
	EXPECT_EQ(AllOf(bad).find("secret-body"), std::string::npos) << AllOf(bad);
	Error big = CatchError([&] { CredentialKey::Load(Write("big.key", std::string(10000, 'a'), 0600), ""); });
	EXPECT_EQ(big.sqlstate(), "F0000");
}
