// SQL: at-rest encryption of integration credentials (docs/security.md).
//   billrecon._encrypt_credentials(integration_id, credentials) -> bytea or NULL
//   billrecon.credential_key_status() -> (configured, key_file, key_id, problem)
//   billrecon.rotate_credential_key(old_key_file) -> rows re-encrypted
//   billrecon.decrypt_credentials(key_file) -> rows stored in clear again
// The key is read from its file here, in C++, for each call; it never enters
// SQL, a Datum, a log line or an error. Plaintext credentials exist only in
// this process's memory, as they do for a sync.
#include "crypto/credential_box.hpp"
#include "model/error.hpp"

#include <map>
#include <optional>
#include <string>

#include "pg/boundary.hpp"
#include "pg/credential_key.hpp"
#include "pg/sync_store.hpp"

extern "C" {
#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/jsonb.h"
}

namespace billrecon::pg {
namespace {

// jsonb argument n as JSON text (the caller checked it is not NULL).
char *JsonbText(FunctionCallInfo fcinfo, int n) {
	Jsonb *jb = PG_GETARG_JSONB_P(n);
	return JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
}

void WipeCString(char *s) {
	if (s)
		memset(s, 0, strlen(s));
}

struct KeyStatusRow {
	bool configured;
	const char *key_file; // nullptr: NULL
	const char *key_id;
	const char *problem;
};

Datum KeyStatusTuple(FunctionCallInfo fcinfo, const KeyStatusRow *row) {
	TupleDesc desc;
	if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("billrecon: credential_key_status() must return a row"),
		                errdetail("The function was declared with another result type."),
		                errhint("This is a bug in billrecon; please report it.")));
	desc = BlessTupleDesc(desc);
	Datum values[4];
	bool nulls[4] = {false, false, false, false};
	values[0] = BoolGetDatum(row->configured);
	const char *texts[3] = {row->key_file, row->key_id, row->problem};
	for (int i = 0; i < 3; ++i) {
		nulls[i + 1] = texts[i] == nullptr;
		values[i + 1] = texts[i] ? CStringGetTextDatum(texts[i]) : (Datum)0;
	}
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

void Notice(const char *message, const char *detail, const char *hint) {
	ereport(NOTICE, (errmsg("%s", message), detail[0] ? errdetail("%s", detail) : 0, hint[0] ? errhint("%s", hint) : 0));
}

// Who may make billrecon read a key file named in the call: the rule of
// pg_read_file() and COPY FROM a file.
void RequireServerFileReader(const char *function) {
	if (!CallPg(MayReadServerFiles))
		throw Error(sqlstate::kPrivilege, std::string("permission denied to read a key file for ") + function,
		            "Reading a file named in a SQL call is for superusers and members of pg_read_server_files.",
		            "Ask a superuser to run it, or to GRANT pg_read_server_files to you for the rotation.");
}

std::string ArgPath(FunctionCallInfo fcinfo, const char *argname) {
	if (PG_ARGISNULL(0))
		throw Error(sqlstate::kInvalidParameter, std::string(argname) + " must not be null",
		            "The function needs the absolute path of a credential key file.",
		            "Pass the path, e.g. '/etc/billrecon/credential-2024.key'.");
	return CallPg(TextArg, fcinfo, 0);
}

} // namespace
} // namespace billrecon::pg

using namespace billrecon;

// The envelope of credentials for the integration, with the configured key;
// NULL when no key is configured (the trigger then stores them in clear).
BILLRECON_FUNCTION(billrecon_encrypt_credentials) {
	std::optional<crypto::CredentialKey> key = pg::ConfiguredKey();
	if (!key) {
		fcinfo->isnull = true;
		return (Datum)0;
	}
	int32 integration_id = PG_GETARG_INT32(0);
	char *json = CallPg(pg::JsonbText, fcinfo, 1);
	std::string sealed = crypto::Seal(*key, integration_id, json);
	CallPg(pg::WipeCString, json);
	return CallPg(pg::ByteaDatum, static_cast<const char *>(sealed.data()), static_cast<int32>(sealed.size()));
}

BILLRECON_FUNCTION(billrecon_credential_key_status) {
	std::string path = pg::CredentialKeyFile();
	std::string id, problem;
	if (!path.empty()) {
		try {
			id = pg::ConfiguredKey()->id();
		} catch (const Error &e) {
			problem = e.message() + ": " + e.detail();
		}
	}
	pg::KeyStatusRow row{!path.empty(), path.empty() ? nullptr : path.c_str(), id.empty() ? nullptr : id.c_str(),
	                     problem.empty() ? nullptr : problem.c_str()};
	return CallPg(pg::KeyStatusTuple, fcinfo, static_cast<const pg::KeyStatusRow *>(&row));
}

// Re-encrypts with the configured key every row encrypted with the old key.
BILLRECON_FUNCTION(billrecon_rotate_credential_key) {
	std::string old_path = pg::ArgPath(fcinfo, "old_key_file");
	pg::RequireServerFileReader("billrecon.rotate_credential_key()");
	crypto::CredentialKey new_key =
	    pg::RequireConfiguredKey("it must name the new key, the one credentials are re-encrypted with.");
	crypto::CredentialKey old_key = crypto::CredentialKey::Load(old_path, DataDir ? DataDir : "");
	if (old_key.id() == new_key.id())
		throw Error(sqlstate::kInvalidParameter, "the old key is the configured key",
		            "Both " + old_path + " and billrecon.credential_key_file hold the key with id " + new_key.id() + ".",
		            "Configure the new key in billrecon.credential_key_file (and reload) first, then pass the old "
		            "key file here.");
	CallPg(pg::SpiConnect);
	pg::EncryptedRows *rows = CallPg(pg::LoadEncryptedRows);
	int64 rotated = 0;
	std::map<std::string, std::string> others; // key id -> integrations still under it
	for (int i = 0; i < rows->count; ++i) {
		std::string_view envelope(rows->envelopes[i], static_cast<size_t>(rows->lengths[i]));
		std::string id = crypto::EnvelopeKeyId(envelope);
		if (id == new_key.id())
			continue;
		if (id != old_key.id()) {
			std::string &list = others[id.empty() ? "(malformed)" : id];
			list += (list.empty() ? "" : ", ") + std::string(rows->names[i]);
			continue;
		}
		std::string what = "integration \"" + std::string(rows->names[i]) + "\"";
		crypto::SecretString plain = crypto::Open(old_key, rows->ids[i], envelope, what);
		std::string sealed = crypto::Seal(new_key, rows->ids[i], plain.str());
		CallPg(pg::StoreEnvelope, rows->ids[i], static_cast<const char *>(sealed.data()),
		       static_cast<int32>(sealed.size()));
		++rotated;
	}
	CallPg(pg::SpiFinish);
	if (!others.empty()) {
		std::string detail;
		for (const auto &[id, names] : others)
			detail += (detail.empty() ? "" : "; ") + std::string("key id ") + id + ": " + names;
		std::string message = "some credentials are encrypted with a third key and were left as they are";
		std::string hint = "Run billrecon.rotate_credential_key() again with the key file of each key id listed.";
		CallPg(pg::Notice, message.c_str(), detail.c_str(), hint.c_str());
	}
	PG_RETURN_INT32(static_cast<int32>(rotated));
}

// Stores every encrypted row in clear again, decrypted with the key file
// given (the way back; billrecon.credential_key_file must be empty, or the
// trigger would encrypt them again at once).
BILLRECON_FUNCTION(billrecon_decrypt_credentials) {
	std::string path = pg::ArgPath(fcinfo, "key_file");
	pg::RequireServerFileReader("billrecon.decrypt_credentials()");
	if (!pg::CredentialKeyFile().empty())
		throw Error(sqlstate::kPrerequisite, "billrecon.credential_key_file is set",
		            "With a key configured, credentials stored in clear are encrypted again at once.",
		            "Turn encryption off first: ALTER SYSTEM RESET billrecon.credential_key_file; SELECT "
		            "pg_reload_conf(); then pass the key file to this function.");
	crypto::CredentialKey key = crypto::CredentialKey::Load(path, DataDir ? DataDir : "");
	CallPg(pg::SpiConnect);
	pg::EncryptedRows *rows = CallPg(pg::LoadEncryptedRows);
	// A row under another key (or altered) fails the call, and the
	// transaction leaves every row as it was.
	int64 done = 0;
	for (int i = 0; i < rows->count; ++i) {
		std::string_view envelope(rows->envelopes[i], static_cast<size_t>(rows->lengths[i]));
		std::string what = "integration \"" + std::string(rows->names[i]) + "\"";
		crypto::SecretString plain = crypto::Open(key, rows->ids[i], envelope, what);
		CallPg(pg::StorePlainCredentials, rows->ids[i], plain.str().c_str());
		++done;
	}
	CallPg(pg::SpiFinish);
	PG_RETURN_INT32(static_cast<int32>(done));
}
