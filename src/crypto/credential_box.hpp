// At-rest encryption of integration credentials (docs/security.md).
//
// The key: 32 random bytes, written as 64 hexadecimal digits in a file
// outside the data directory (billrecon.credential_key_file), owned by the
// server's OS user with no group or world access (or by root, group-readable
// at most), the rule PostgreSQL applies to ssl_key_file. It is read for each
// use and wiped from memory afterwards; it never enters SQL.
//
// The envelope (bytea column integration_credentials.encrypted_credentials):
//
//   "BRC1" | key id (8 bytes) | nonce (12) | AES-256-GCM ciphertext | tag (16)
//
// The key id is the first 8 bytes of SHA-256("billrecon credential key v1",
// NUL, key): it names the key without revealing it, so a wrong key is
// reported as such instead of as damaged data. The additional authenticated
// data is the header (magic and key id) and the integration id, so an
// envelope copied to another integration's row does not open.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace billrecon::crypto {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kKeyIdBytes = 8;
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;
inline constexpr char kMagic[4] = {'B', 'R', 'C', '1'};
inline constexpr size_t kHeaderBytes = sizeof kMagic + kKeyIdBytes;
inline constexpr size_t kMinEnvelopeBytes = kHeaderBytes + kNonceBytes + kTagBytes;

// A string whose bytes are overwritten when it goes away (plaintext
// credentials, key file contents). Copies would escape the wipe: move only.
class SecretString {
public:
	SecretString() = default;
	explicit SecretString(std::string s) : s_(std::move(s)) {
	}
	SecretString(SecretString &&other) noexcept;
	SecretString &operator=(SecretString &&other) noexcept;
	SecretString(const SecretString &) = delete;
	SecretString &operator=(const SecretString &) = delete;
	~SecretString();

	const std::string &str() const noexcept {
		return s_;
	}
	std::string &mutable_str() noexcept {
		return s_;
	}

private:
	void Wipe() noexcept;
	std::string s_;
};

// A 256-bit key, wiped on destruction; move only.
class CredentialKey {
public:
	// From the text of a key file: 64 hexadecimal digits, surrounding white
	// space ignored. Errors (F0000) never repeat the text. `source` names
	// where it came from in messages (the file's path).
	static CredentialKey FromHex(std::string_view text, const std::string &source);

	// Reads and checks a key file: an absolute path; a regular file; owned by
	// this process's user with no group or world access, or by root with
	// group read at most; not inside data_dir (when given). F0000 for a file
	// that breaks a rule, 58P01 when it cannot be opened.
	static CredentialKey Load(const std::string &path, const std::string &data_dir);

	CredentialKey(CredentialKey &&other) noexcept;
	CredentialKey &operator=(CredentialKey &&) = delete;
	CredentialKey(const CredentialKey &) = delete;
	CredentialKey &operator=(const CredentialKey &) = delete;
	~CredentialKey();

	// 16 lower-case hex digits: the key id every envelope it sealed carries.
	std::string id() const;
	const std::array<unsigned char, kKeyIdBytes> &raw_id() const noexcept {
		return id_;
	}
	const unsigned char *bytes() const noexcept {
		return key_.data();
	}

private:
	CredentialKey() = default;
	void ComputeId();
	std::array<unsigned char, kKeyBytes> key_{};
	std::array<unsigned char, kKeyIdBytes> id_{};
};

// Encrypts plaintext (the credentials' JSON text) for one integration.
std::string Seal(const CredentialKey &key, int32_t integration_id, std::string_view plaintext);

// The key id an envelope names (16 hex digits), or "" when it is not an
// envelope of this format.
std::string EnvelopeKeyId(std::string_view envelope);

// Decrypts an envelope of integration_id. `what` names the row in messages
// (e.g. integration "cw"). Throws 55000 when the envelope was sealed with
// another key (DETAIL: both key ids), XX001 when it is malformed or fails
// authentication (altered, truncated, or moved from another integration).
SecretString Open(const CredentialKey &key, int32_t integration_id, std::string_view envelope,
                  const std::string &what);

} // namespace billrecon::crypto

#include "core_only.hpp"
