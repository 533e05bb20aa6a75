// The one exception type core code throws. It carries everything a PostgreSQL
// error report needs, so the boundary (src/pg/boundary.hpp) can turn it into
// ereport(ERROR) with errcode, message, DETAIL and HINT after leaving the catch.
#pragma once

#include <stdexcept>
#include <string>

namespace billrecon {

// SQLSTATEs we use (docs/errors.md lists when).
namespace sqlstate {
inline constexpr const char *kInvalidParameter = "22023";    // invalid_parameter_value
inline constexpr const char *kInvalidText = "22P02";         // invalid_text_representation
inline constexpr const char *kDataException = "22000";       // data_exception
inline constexpr const char *kFeatureNotSupported = "0A000"; // feature_not_supported
inline constexpr const char *kPrerequisite = "55000";        // object_not_in_prerequisite_state
inline constexpr const char *kLockNotAvailable = "55P03";    // lock_not_available
inline constexpr const char *kPrivilege = "42501";           // insufficient_privilege
inline constexpr const char *kUndefinedObject = "42704";     // undefined_object
inline constexpr const char *kUniqueViolation = "23505";     // unique_violation
inline constexpr const char *kCanceled = "57014";            // query_canceled
inline constexpr const char *kConnectionFailure = "08006";   // connection_failure
inline constexpr const char *kUnableToConnect = "08001";     // sqlclient_unable_to_establish_sqlconnection
inline constexpr const char *kInvalidAuthorization = "28000"; // invalid_authorization_specification
inline constexpr const char *kProgramLimit = "54000";        // program_limit_exceeded
inline constexpr const char *kConfigFile = "F0000";          // config_file_error (credential key file)
inline constexpr const char *kUndefinedFile = "58P01";       // undefined_file
inline constexpr const char *kDataCorrupted = "XX001";       // data_corrupted (encrypted credentials altered)
inline constexpr const char *kInternal = "XX000";            // internal_error: our bugs only
} // namespace sqlstate

class Error : public std::runtime_error {
public:
	Error(std::string sqlstate, std::string message, std::string detail = {}, std::string hint = {})
	    : std::runtime_error(message), sqlstate_(std::move(sqlstate)), detail_(std::move(detail)),
	      hint_(std::move(hint)) {
	}

	const std::string &sqlstate() const noexcept {
		return sqlstate_;
	}
	std::string message() const {
		return what();
	}
	const std::string &detail() const noexcept {
		return detail_;
	}
	const std::string &hint() const noexcept {
		return hint_;
	}

private:
	std::string sqlstate_;
	std::string detail_;
	std::string hint_;
};

// Thrown by core when its cancel predicate reports a pending query cancel or
// termination; the boundary then lets PostgreSQL raise its own error.
class Cancelled : public Error {
public:
	Cancelled() : Error(sqlstate::kCanceled, "canceling statement due to user request") {
	}
};

} // namespace billrecon

#include "core_only.hpp"
