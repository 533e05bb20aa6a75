// The boundary between PostgreSQL (longjmp) and C++ (exceptions).
//
//   CallCore(body, fcinfo)  runs C++ from a C entry point: any exception is
//                           caught, copied, and re-raised with ereport(ERROR)
//                           only after the catch block is left.
//   CallPg(fn, args...)     runs a pg helper from C++: a PostgreSQL ERROR is
//                           caught with PG_TRY, copied, flushed, and thrown as
//                           billrecon::PgError.
//
// fn passed to CallPg must be a pg helper (namespace billrecon::pg): C-style,
// trivially destructible locals only, so the longjmp skips no destructor.
#pragma once

#include "model/error.hpp"

#include <string>
#include <type_traits>
#include <utility>

#include "pg/pg_prelude.hpp"

namespace billrecon {

// A PostgreSQL error caught by CallPg. It keeps the original SQLSTATE,
// message, detail and hint, so rethrowing it through CallCore reports the
// same error the user would have seen without us in between.
class PgError : public Error {
public:
	using Error::Error;
};

namespace pg {

// Converts the caught ErrorData into a PgError (frees it) and throws.
[[noreturn]] void ThrowPgError(ErrorData *edata);

// True when a query cancel or termination is pending. Reads PostgreSQL's
// interrupt flags only; never raises, so core may call it from anywhere on
// the main thread (curl progress callbacks included).
bool InterruptRequested() noexcept;

// Reports a caught C++ failure as a PostgreSQL ERROR (never returns).
// Called by CallCore outside any catch block.
struct CaughtError {
	char sqlstate[6];
	char message[1024];
	char detail[2048];
	char hint[1024];
	bool cancelled;
};
[[noreturn]] void RaiseCaught(const CaughtError *caught);
void CaptureException(CaughtError *out, const char *sqlstate, const char *message, const char *detail,
                      const char *hint) noexcept;

} // namespace pg

template <typename Fn, typename... Args>
auto CallPg(Fn fn, Args... args) -> decltype(fn(args...)) {
	static_assert((std::is_trivially_destructible_v<Args> && ...),
	              "CallPg arguments must be trivially destructible (pass pointers, not C++ objects)");
	using Result = decltype(fn(args...));
	MemoryContext ctx = CurrentMemoryContext;
	ErrorData *volatile edata = nullptr; // written in PG_CATCH, read after the longjmp
	if constexpr (std::is_void_v<Result>) {
		PG_TRY();
		{
			fn(args...);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(ctx);
			edata = CopyErrorData();
			FlushErrorState();
		}
		PG_END_TRY();
		if (edata)
			pg::ThrowPgError(edata);
	} else {
		static_assert(std::is_scalar_v<Result>, "CallPg results must be scalars or pointers");
		volatile Result result{};
		PG_TRY();
		{
			result = fn(args...);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(ctx);
			edata = CopyErrorData();
			FlushErrorState();
		}
		PG_END_TRY();
		if (edata)
			pg::ThrowPgError(edata);
		return result;
	}
}

namespace pg {

// Runs body(fcinfo) and turns any exception into an ERROR after the catch.
// This frame holds no object with a destructor.
template <typename Body>
Datum CallCore(Body body, FunctionCallInfo fcinfo) {
	CaughtError caught;
	bool failed = false;
	Datum result = (Datum)0;
	sigjmp_buf *saved_exception_stack = PG_exception_stack;
	ErrorContextCallback *saved_context_stack = error_context_stack;
	try {
		result = body(fcinfo);
	} catch (const Cancelled &) {
		CaptureException(&caught, sqlstate::kCanceled, "canceling statement due to user request", "", "");
		caught.cancelled = true;
		failed = true;
	} catch (const Error &e) {
		CaptureException(&caught, e.sqlstate().c_str(), e.what(), e.detail().c_str(), e.hint().c_str());
		failed = true;
	} catch (const std::bad_alloc &) {
		CaptureException(&caught, "53200", "out of memory", "A C++ allocation failed inside billrecon.", "");
		failed = true;
	} catch (const std::exception &e) {
		CaptureException(&caught, sqlstate::kInternal, "internal error in billrecon", e.what(),
		                 "This is a bug in billrecon; please report it with the statement that caused it.");
		failed = true;
	} catch (...) {
		CaptureException(&caught, sqlstate::kInternal, "internal error in billrecon", "unknown exception",
		                 "This is a bug in billrecon; please report it with the statement that caused it.");
		failed = true;
	}
	if (failed) {
		PG_exception_stack = saved_exception_stack;
		error_context_stack = saved_context_stack;
		RaiseCaught(&caught);
	}
	return result;
}

} // namespace pg
} // namespace billrecon

// Declares a SQL-callable C function whose body is C++ run inside CallCore:
//   BILLRECON_FUNCTION(billrecon_version) { return CStringGetTextDatum(...); }
#define BILLRECON_FUNCTION(name)                                                                                   \
	static Datum name##_body(FunctionCallInfo fcinfo);                                                            \
	extern "C" {                                                                                                  \
	PGDLLEXPORT Datum name(PG_FUNCTION_ARGS);                                                                     \
	PG_FUNCTION_INFO_V1(name);                                                                                    \
	}                                                                                                             \
	extern "C" Datum name(PG_FUNCTION_ARGS) {                                                                     \
		return billrecon::pg::CallCore(name##_body, fcinfo);                                                        \
	}                                                                                                             \
	static Datum name##_body([[maybe_unused]] FunctionCallInfo fcinfo)
