#include "pg/boundary.hpp"

#include <cstring>

extern "C" {
#include "utils/errcodes.h"
}

namespace billrecon::pg {

namespace {

void CopyTruncated(char *dst, size_t size, const char *src) noexcept {
	if (!src)
		src = "";
	size_t n = std::strlen(src);
	if (n < size) {
		std::memcpy(dst, src, n + 1);
		return;
	}
	// Keep room for a marker so a reader knows the text was cut.
	static const char kCut[] = "...";
	size_t keep = size - sizeof kCut;
	std::memcpy(dst, src, keep);
	std::memcpy(dst + keep, kCut, sizeof kCut);
}

} // namespace

void CaptureException(CaughtError *out, const char *sqlstate, const char *message, const char *detail,
                      const char *hint) noexcept {
	CopyTruncated(out->sqlstate, sizeof out->sqlstate, sqlstate);
	if (std::strlen(out->sqlstate) != 5)
		CopyTruncated(out->sqlstate, sizeof out->sqlstate, "XX000");
	CopyTruncated(out->message, sizeof out->message, message);
	CopyTruncated(out->detail, sizeof out->detail, detail);
	CopyTruncated(out->hint, sizeof out->hint, hint);
	out->cancelled = false;
}

void RaiseCaught(const CaughtError *caught) {
	if (caught->cancelled) {
		// Let PostgreSQL raise its own cancel / terminate error; if the flag
		// was already consumed, fall back to the cancel SQLSTATE.
		CHECK_FOR_INTERRUPTS();
	}
	const char *s = caught->sqlstate;
	int code = MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
	ereport(ERROR, (errcode(code), errmsg("%s", caught->message),
	                caught->detail[0] ? errdetail("%s", caught->detail) : 0,
	                caught->hint[0] ? errhint("%s", caught->hint) : 0));
	pg_unreachable();
}

[[noreturn]] void ThrowPgError(ErrorData *edata) {
	char state[6];
	const char *unpacked = unpack_sql_state(edata->sqlerrcode);
	std::memcpy(state, unpacked, 6);
	std::string message = edata->message ? edata->message : "unknown error";
	std::string detail = edata->detail ? edata->detail : "";
	std::string hint = edata->hint ? edata->hint : "";
	FreeErrorData(edata);
	throw PgError(state, std::move(message), std::move(detail), std::move(hint));
}

bool InterruptRequested() noexcept {
	return InterruptPending && (QueryCancelPending || ProcDiePending);
}

} // namespace billrecon::pg
