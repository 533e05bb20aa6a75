#include "pg/spi_util.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
}

namespace billrecon::pg {

void CheckSpi(int rc, int expected, const char *what) {
	if (rc != expected)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("billrecon: %s failed", what),
		                errdetail("SPI returned %s.", SPI_result_code_string(rc)),
		                errhint("This is a bug in billrecon; please report it.")));
}

Datum TextArray(int n, const char *const *values, int stride, int offset) {
	if (n <= 0)
		return PointerGetDatum(construct_empty_array(TEXTOID));
	Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * n));
	bool *nulls = static_cast<bool *>(palloc(sizeof(bool) * n));
	for (int i = 0; i < n; ++i) {
		const char *v = values[i * stride + offset];
		nulls[i] = v == nullptr;
		elems[i] = v ? CStringGetTextDatum(v) : (Datum)0;
	}
	int dims[1] = {n};
	int lbs[1] = {1};
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

} // namespace billrecon::pg
