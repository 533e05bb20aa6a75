#include "crypto/credential_box.hpp"

#include "model/error.hpp"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace billrecon::crypto {

namespace {

constexpr const char kSetting[] = "billrecon.credential_key_file";
constexpr const char kIdLabel[] = "billrecon credential key v1"; // hashed with its NUL
constexpr size_t kMaxKeyFileBytes = 4096;

[[noreturn]] void KeyFileError(const std::string &message, const std::string &detail, const std::string &hint) {
	throw Error(sqlstate::kConfigFile, message, detail, hint);
}

std::string Quoted(const std::string &s) {
	return "\"" + s + "\"";
}

std::string Hex(const unsigned char *p, size_t n) {
	static const char kDigits[] = "0123456789abcdef";
	std::string out;
	out.reserve(n * 2);
	for (size_t i = 0; i < n; ++i) {
		out.push_back(kDigits[p[i] >> 4]);
		out.push_back(kDigits[p[i] & 15]);
	}
	return out;
}

int HexValue(char c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool IsSpace(char c) {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

struct CipherCtxFree {
	void operator()(EVP_CIPHER_CTX *c) const noexcept {
		EVP_CIPHER_CTX_free(c);
	}
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

CipherCtx NewCipherCtx() {
	CipherCtx ctx(EVP_CIPHER_CTX_new());
	if (!ctx)
		throw std::bad_alloc();
	return ctx;
}

// A file descriptor closed on every path out.
class Fd {
public:
	explicit Fd(int fd) : fd_(fd) {
	}
	Fd(const Fd &) = delete;
	Fd &operator=(const Fd &) = delete;
	~Fd() {
		if (fd_ >= 0)
			close(fd_);
	}
	int get() const noexcept {
		return fd_;
	}

private:
	int fd_;
};

std::string RealPath(const std::string &path) {
	std::unique_ptr<char, decltype(&std::free)> resolved(realpath(path.c_str(), nullptr), &std::free);
	return resolved ? std::string(resolved.get()) : std::string();
}

void AppendBigEndian(std::string &out, int32_t v) {
	uint32_t u = static_cast<uint32_t>(v);
	for (int shift = 24; shift >= 0; shift -= 8)
		out.push_back(static_cast<char>((u >> shift) & 0xff));
}

std::string Aad(const std::string_view header, int32_t integration_id) {
	std::string aad(header);
	AppendBigEndian(aad, integration_id);
	return aad;
}

} // namespace

// ---------------------------------------------------------------- SecretString

SecretString::SecretString(SecretString &&other) noexcept : s_(std::move(other.s_)) {
	other.Wipe();
}

SecretString &SecretString::operator=(SecretString &&other) noexcept {
	if (this != &other) {
		Wipe();
		s_ = std::move(other.s_);
		other.Wipe();
	}
	return *this;
}

SecretString::~SecretString() {
	Wipe();
}

void SecretString::Wipe() noexcept {
	// Capacity, not size: a shrunk string keeps old bytes past its end.
	if (s_.capacity() > 0) {
		s_.resize(s_.capacity());
		OPENSSL_cleanse(s_.data(), s_.size());
	}
	s_.clear();
}

// ---------------------------------------------------------------- CredentialKey

CredentialKey::CredentialKey(CredentialKey &&other) noexcept : key_(other.key_), id_(other.id_) {
	OPENSSL_cleanse(other.key_.data(), other.key_.size());
}

CredentialKey::~CredentialKey() {
	OPENSSL_cleanse(key_.data(), key_.size());
}

void CredentialKey::ComputeId() {
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	std::string input(kIdLabel, sizeof kIdLabel); // with the NUL
	input.append(reinterpret_cast<const char *>(key_.data()), key_.size());
	int ok = EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(), nullptr);
	OPENSSL_cleanse(input.data(), input.size());
	if (ok != 1 || len < kKeyIdBytes)
		throw Error(sqlstate::kInternal, "could not compute the credential key id", "EVP_Digest(SHA-256) failed.",
		            "This is a bug in billrecon or a broken OpenSSL; please report it.");
	std::memcpy(id_.data(), digest, kKeyIdBytes);
}

std::string CredentialKey::id() const {
	return Hex(id_.data(), id_.size());
}

CredentialKey CredentialKey::FromHex(std::string_view text, const std::string &source) {
	size_t begin = 0, end = text.size();
	while (begin < end && IsSpace(text[begin]))
		++begin;
	while (end > begin && IsSpace(text[end - 1]))
		--end;
	size_t digits = end - begin;
	bool hex = digits == kKeyBytes * 2;
	for (size_t i = begin; hex && i < end; ++i)
		hex = HexValue(text[i]) >= 0;
	if (!hex)
		// Never the content: only its length, which a wrong file (a PEM key,
		// a passphrase) makes obvious enough.
		KeyFileError("credential key file " + Quoted(source) + " does not hold a 256-bit key",
		             "The file must hold exactly 64 hexadecimal digits (32 random bytes); it holds " +
		                 std::to_string(digits) + " character(s) besides surrounding white space, " +
		                 (digits == kKeyBytes * 2 ? "not all of them hexadecimal digits." : "not 64."),
		             "Make a key with: openssl rand -hex 32 > " + source + " (as the server's OS user, then "
		             "chmod 600).");
	CredentialKey key;
	for (size_t i = 0; i < kKeyBytes; ++i)
		key.key_[i] = static_cast<unsigned char>(HexValue(text[begin + 2 * i]) * 16 + HexValue(text[begin + 2 * i + 1]));
	key.ComputeId();
	return key;
}

CredentialKey CredentialKey::Load(const std::string &path, const std::string &data_dir) {
	const std::string hint_setting = std::string("Set ") + kSetting + " to the absolute path of a key file.";
	if (path.empty() || path[0] != '/')
		KeyFileError("credential key file " + Quoted(path) + " is not an absolute path",
		             std::string(kSetting) + " must name a file by its absolute path.", hint_setting);
	Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
	if (fd.get() < 0) {
		int err = errno;
		throw Error(err == EACCES ? sqlstate::kPrivilege : sqlstate::kUndefinedFile,
		            "could not open credential key file " + Quoted(path),
		            std::string("open() failed: ") + std::strerror(err) + ".",
		            "Check " + std::string(kSetting) + ": the file must exist and be readable by the database "
		            "server's OS user.");
	}
	struct stat st;
	if (fstat(fd.get(), &st) != 0) {
		int err = errno;
		throw Error(sqlstate::kUndefinedFile, "could not stat credential key file " + Quoted(path),
		            std::string("fstat() failed: ") + std::strerror(err) + ".", "Check the file and its directory.");
	}
	if (!S_ISREG(st.st_mode))
		KeyFileError("credential key file " + Quoted(path) + " is not a regular file",
		             "It is a directory, device or other special file.", hint_setting);
	// PostgreSQL's rule for ssl_key_file (be-secure-common.c).
	if (st.st_uid != geteuid() && st.st_uid != 0)
		KeyFileError("credential key file " + Quoted(path) + " must be owned by the database user or root",
		             "It is owned by OS user id " + std::to_string(st.st_uid) + "; the server runs as OS user id " +
		                 std::to_string(geteuid()) + ".",
		             "chown the file to the server's OS user (usually postgres) and chmod 600 it.");
	if ((st.st_uid == geteuid() && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) ||
	    (st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO)) != 0)) {
		char mode[8];
		std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
		KeyFileError("credential key file " + Quoted(path) + " has group or world access",
		             std::string("Its mode is ") + mode +
		                 "; a file owned by the database user must be u=rw (0600) or less, one owned by root "
		                 "u=rw,g=r (0640) or less.",
		             "chmod 600 " + path);
	}
	if (!data_dir.empty()) {
		std::string real = RealPath(path), real_dir = RealPath(data_dir);
		if (!real.empty() && !real_dir.empty() &&
		    (real == real_dir || real.compare(0, real_dir.size() + 1, real_dir + "/") == 0))
			KeyFileError("credential key file " + Quoted(path) + " is inside the data directory",
			             "The data directory goes into every base backup, next to the encrypted credentials; a key "
			             "kept there protects nothing.",
			             "Move the key to a directory outside the data directory (e.g. /etc/billrecon/) and set " +
			                 std::string(kSetting) + " to it.");
	}
	if (st.st_size > static_cast<off_t>(kMaxKeyFileBytes))
		KeyFileError("credential key file " + Quoted(path) + " does not hold a 256-bit key",
		             "The file must hold exactly 64 hexadecimal digits (32 random bytes); it is " +
		                 std::to_string(static_cast<long long>(st.st_size)) + " bytes long.",
		             "Make a key with: openssl rand -hex 32 > " + path + " (as the server's OS user, then chmod 600).");
	SecretString text;
	text.mutable_str().resize(kMaxKeyFileBytes + 1);
	size_t got = 0;
	while (got < text.str().size()) {
		ssize_t n = read(fd.get(), text.mutable_str().data() + got, text.str().size() - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			throw Error(sqlstate::kUndefinedFile, "could not read credential key file " + Quoted(path),
			            std::string("read() failed: ") + std::strerror(err) + ".", "Check the file.");
		}
		if (n == 0)
			break;
		got += static_cast<size_t>(n);
	}
	return FromHex(std::string_view(text.str().data(), got), path);
}

// ---------------------------------------------------------------- envelopes

std::string Seal(const CredentialKey &key, int32_t integration_id, std::string_view plaintext) {
	if (plaintext.size() > static_cast<size_t>(INT_MAX / 2))
		throw Error(sqlstate::kProgramLimit, "credentials too large to encrypt",
		            "They are " + std::to_string(plaintext.size()) + " bytes long.", "Store smaller credentials.");
	std::string out(kMagic, sizeof kMagic);
	out.append(reinterpret_cast<const char *>(key.raw_id().data()), kKeyIdBytes);
	const std::string aad = Aad(out, integration_id);
	unsigned char nonce[kNonceBytes];
	if (RAND_bytes(nonce, sizeof nonce) != 1)
		throw Error(sqlstate::kInternal, "could not make a nonce for the credentials",
		            "OpenSSL's RAND_bytes() failed.", "Check the system's random number source; then try again.");
	out.append(reinterpret_cast<const char *>(nonce), sizeof nonce);

	CipherCtx ctx = NewCipherCtx();
	int len = 0;
	size_t ct_at = out.size();
	out.resize(ct_at + plaintext.size() + kTagBytes);
	auto *ct = reinterpret_cast<unsigned char *>(out.data() + ct_at);
	bool ok = EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
	          EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
	          EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.bytes(), nonce) == 1 &&
	          EVP_EncryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char *>(aad.data()),
	                            static_cast<int>(aad.size())) == 1 &&
	          EVP_EncryptUpdate(ctx.get(), ct, &len, reinterpret_cast<const unsigned char *>(plaintext.data()),
	                            static_cast<int>(plaintext.size())) == 1;
	int tail = 0;
	ok = ok && EVP_EncryptFinal_ex(ctx.get(), ct + len, &tail) == 1 &&
	     static_cast<size_t>(len + tail) == plaintext.size() &&
	     EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, ct + plaintext.size()) == 1;
	if (!ok)
		throw Error(sqlstate::kInternal, "could not encrypt the credentials", "OpenSSL's AES-256-GCM failed.",
		            "This is a bug in billrecon or a broken OpenSSL; please report it.");
	return out;
}

std::string EnvelopeKeyId(std::string_view envelope) {
	if (envelope.size() < kMinEnvelopeBytes || envelope.compare(0, sizeof kMagic, kMagic, sizeof kMagic) != 0)
		return {};
	return Hex(reinterpret_cast<const unsigned char *>(envelope.data()) + sizeof kMagic, kKeyIdBytes);
}

SecretString Open(const CredentialKey &key, int32_t integration_id, std::string_view envelope,
                  const std::string &what) {
	const std::string hint_damaged =
	    "Set the credentials again with billrecon.update_integration(name, credentials => ...); they are "
	    "encrypted anew.";
	std::string envelope_id = EnvelopeKeyId(envelope);
	if (envelope_id.empty())
		throw Error(sqlstate::kDataCorrupted, "encrypted credentials of " + what + " are malformed",
		            "They are " + std::to_string(envelope.size()) + " bytes long and do not start like an envelope "
		            "of billrecon's format 1 (\"BRC1\", key id, nonce, ciphertext, tag).",
		            hint_damaged);
	if (envelope_id != key.id())
		throw Error(sqlstate::kPrerequisite, "credentials of " + what + " are encrypted with another key",
		            "They were encrypted with key id " + envelope_id + "; " + kSetting + " names a key with id " +
		                key.id() + ".",
		            std::string("Set ") + kSetting + " to the key file they were encrypted with, or re-encrypt "
		            "them with SELECT billrecon.rotate_credential_key('/path/to/old.key') while the new key is "
		            "configured.");
	const std::string aad = Aad(envelope.substr(0, kHeaderBytes), integration_id);
	const auto *nonce = reinterpret_cast<const unsigned char *>(envelope.data()) + kHeaderBytes;
	const auto *ct = nonce + kNonceBytes;
	size_t ct_len = envelope.size() - kMinEnvelopeBytes;
	unsigned char tag[kTagBytes];
	std::memcpy(tag, ct + ct_len, kTagBytes);

	SecretString plain;
	plain.mutable_str().resize(ct_len);
	CipherCtx ctx = NewCipherCtx();
	int len = 0, tail = 0;
	bool ok = EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
	          EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
	          EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.bytes(), nonce) == 1 &&
	          EVP_DecryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char *>(aad.data()),
	                            static_cast<int>(aad.size())) == 1 &&
	          EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char *>(plain.mutable_str().data()), &len, ct,
	                            static_cast<int>(ct_len)) == 1 &&
	          EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag) == 1;
	ok = ok && EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char *>(plain.mutable_str().data()) + len,
	                               &tail) == 1;
	if (!ok || static_cast<size_t>(len + tail) != ct_len)
		throw Error(sqlstate::kDataCorrupted, "encrypted credentials of " + what + " fail authentication",
		            "The key id matches (" + envelope_id + "), but the ciphertext, its tag or the integration id it "
		            "was sealed for does not: the stored bytes were altered, truncated or copied from another "
		            "integration's row.",
		            hint_damaged);
	return plain;
}

} // namespace billrecon::crypto
