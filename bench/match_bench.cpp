// Accuracy and speed of client matching (issue 4).
//
//   billrecon_match_bench LABELLED.json [LARGE.json] [--runs N] [--verbose] [--threshold T]
//
// LABELLED.json and LARGE.json come from test/mock_api/matching_set.py. For
// each file: SuggestMatches over all vendor accounts and PSA companies,
// precision and recall of the suggestions at kRecommendedThreshold against
// the file's ground truth, a table over other thresholds, and the run time
// (min / median / max of N runs, default 3). Targets: precision 100 %,
// recall >= 95 %, 5,000 x 5,000 in under 2 s. The exit status is 0 unless a
// file cannot be read; missing a target is reported, never fatal (time
// depends on the machine). --verbose lists every wrong and missed pair;
// --threshold evaluates another threshold instead of the recommended one.
#include "json/rapidjson_config.hpp"
#include "match/matcher.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using billrecon::match::MatchCandidate;
using billrecon::match::MatchSuggestion;

namespace {

struct LabelledSet {
	std::string path;
	long seed = 0;
	std::vector<MatchCandidate> psa;
	std::vector<MatchCandidate> vendor;
	std::map<std::string, std::string> vendor_note;
	std::set<std::pair<std::string, std::string>> truth; // (vendor id, psa id)
};

bool ReadCandidates(const rapidjson::Value &array, std::vector<MatchCandidate> &out,
                    std::map<std::string, std::string> *notes) {
	if (!array.IsArray())
		return false;
	for (const auto &item : array.GetArray()) {
		if (!item.IsObject())
			return false;
		auto id = item.FindMember("id");
		auto name = item.FindMember("name");
		auto domains = item.FindMember("domains");
		if (id == item.MemberEnd() || !id->value.IsString() || name == item.MemberEnd() || !name->value.IsString())
			return false;
		MatchCandidate c;
		c.id = id->value.GetString();
		c.name = name->value.GetString();
		if (domains != item.MemberEnd() && domains->value.IsArray())
			for (const auto &d : domains->value.GetArray())
				if (d.IsString())
					c.domains.emplace_back(d.GetString());
		auto note = item.FindMember("note");
		if (notes && note != item.MemberEnd() && note->value.IsString())
			(*notes)[c.id] = note->value.GetString();
		out.push_back(std::move(c));
	}
	return true;
}

bool Load(const std::string &path, LabelledSet &set) {
	std::ifstream in(path, std::ios::binary);
	if (!in) {
		std::fprintf(stderr, "match bench: cannot open %s\n", path.c_str());
		return false;
	}
	std::stringstream buf;
	buf << in.rdbuf();
	std::string text = buf.str();
	rapidjson::Document doc;
	doc.Parse(text.c_str(), text.size());
	if (doc.HasParseError() || !doc.IsObject()) {
		std::fprintf(stderr, "match bench: %s is not a JSON object (offset %zu: %s)\n", path.c_str(),
		             doc.GetErrorOffset(), rapidjson::GetParseError_En(doc.GetParseError()));
		return false;
	}
	set.path = path;
	auto seed = doc.FindMember("seed");
	if (seed != doc.MemberEnd() && seed->value.IsInt64())
		set.seed = static_cast<long>(seed->value.GetInt64());
	auto psa = doc.FindMember("psa");
	auto vendor = doc.FindMember("vendor");
	auto truth = doc.FindMember("truth");
	if (psa == doc.MemberEnd() || vendor == doc.MemberEnd() || truth == doc.MemberEnd() ||
	    !ReadCandidates(psa->value, set.psa, nullptr) || !ReadCandidates(vendor->value, set.vendor, &set.vendor_note) ||
	    !truth->value.IsArray()) {
		std::fprintf(stderr, "match bench: %s lacks psa / vendor / truth arrays of the expected shape\n", path.c_str());
		return false;
	}
	for (const auto &t : truth->value.GetArray()) {
		auto v = t.FindMember("vendor_id");
		auto p = t.FindMember("psa_id");
		if (!t.IsObject() || v == t.MemberEnd() || p == t.MemberEnd() || !v->value.IsString() || !p->value.IsString()) {
			std::fprintf(stderr, "match bench: %s has a malformed truth entry\n", path.c_str());
			return false;
		}
		set.truth.emplace(v->value.GetString(), p->value.GetString());
	}
	return true;
}

struct Counts {
	size_t confirmed = 0;
	size_t right = 0;
	double precision() const {
		return confirmed == 0 ? 1.0 : static_cast<double>(right) / static_cast<double>(confirmed);
	}
};

Counts CountAt(const std::vector<MatchSuggestion> &suggestions, const LabelledSet &set, double threshold) {
	Counts c;
	for (const MatchSuggestion &s : suggestions) {
		if (s.score + 1e-9 < threshold)
			continue;
		++c.confirmed;
		if (set.truth.count({s.vendor_id, s.psa_id}))
			++c.right;
	}
	return c;
}

// Rounded down to 0.1 %, so that 99.96 % never shows as 100.0 %.
double Percent(double share) {
	return std::floor(share * 1000.0 + 1e-9) / 10.0;
}

double Seconds(std::chrono::steady_clock::duration d) {
	return std::chrono::duration<double>(d).count();
}

std::vector<MatchSuggestion> Timed(const LabelledSet &set, int runs, std::vector<double> &times) {
	std::vector<MatchSuggestion> result;
	for (int r = 0; r < runs; ++r) {
		auto t0 = std::chrono::steady_clock::now();
		result = billrecon::match::SuggestMatches(set.vendor, set.psa);
		times.push_back(Seconds(std::chrono::steady_clock::now() - t0));
	}
	std::sort(times.begin(), times.end());
	return result;
}

double g_threshold = billrecon::match::kRecommendedThreshold;

void Report(const LabelledSet &set, int runs, bool verbose, bool is_large) {
	const double threshold = g_threshold;
	std::vector<double> times;
	std::vector<MatchSuggestion> sugg = Timed(set, runs, times);
	const double truth = static_cast<double>(set.truth.size());
	Counts at = CountAt(sugg, set, threshold);
	double recall = truth == 0 ? 1.0 : static_cast<double>(at.right) / truth;

	std::printf("\n%s (seed %ld): %zu PSA companies x %zu vendor accounts, %zu true pairs\n", set.path.c_str(),
	            set.seed, set.psa.size(), set.vendor.size(), set.truth.size());
	std::printf("  at the %s threshold %.3f:\n",
	            threshold == billrecon::match::kRecommendedThreshold ? "recommended" : "chosen", threshold);
	std::printf("    precision %5.1f %%  (target 100 %%)%s\n", Percent(at.precision()),
	            at.right == at.confirmed ? "" : "   <-- MISSED");
	std::printf("    recall    %5.1f %%  (target >= 95 %%)%s\n", Percent(recall),
	            recall >= 0.95 ? "" : "   <-- MISSED");
	std::printf("    %zu suggestions, %zu confirmed, %zu wrong, %zu true pairs not confirmed\n", sugg.size(),
	            at.confirmed, at.confirmed - at.right, set.truth.size() - at.right);

	// Lowest threshold (on the 0.005 grid) without a wrong confirmation.
	double safe = 1.0;
	for (double t = 1.0; t >= 0.3 - 1e-9; t -= 0.005) {
		Counts c = CountAt(sugg, set, t);
		if (c.right != c.confirmed)
			break;
		safe = t;
	}
	std::printf("    lowest threshold with precision 100 %%: %.3f\n", safe);

	std::printf("  threshold  confirmed  wrong  precision  recall\n");
	std::vector<double> grid = {0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.92, 0.95, 0.98};
	for (double t : {threshold, billrecon::match::kRecommendedThreshold})
		if (std::find(grid.begin(), grid.end(), t) == grid.end())
			grid.push_back(t);
	std::sort(grid.begin(), grid.end());
	for (double t : grid) {
		Counts c = CountAt(sugg, set, t);
		std::printf("  %9.3f  %9zu  %5zu  %8.1f %%  %5.1f %%%s\n", t, c.confirmed, c.confirmed - c.right,
		            Percent(c.precision()), truth == 0 ? 100.0 : Percent(static_cast<double>(c.right) / truth),
		            t == billrecon::match::kRecommendedThreshold ? "   <- recommended" : "");
	}
	const double median = times[times.size() / 2];
	if (is_large)
		std::printf("  %zux%zu: %.2f s (target < 2 s)%s\n", set.vendor.size(), set.psa.size(), median,
		            median < 2.0 ? "" : "   <-- MISSED");
	std::printf("  time, min / median / max of %d runs: %.3f / %.3f / %.3f s\n", runs, times.front(), median,
	            times.back());

	if (verbose) {
		std::map<std::string, const MatchCandidate *> vendor_by_id, psa_by_id;
		for (const auto &c : set.vendor)
			vendor_by_id[c.id] = &c;
		for (const auto &c : set.psa)
			psa_by_id[c.id] = &c;
		std::set<std::pair<std::string, std::string>> confirmed;
		std::map<std::string, const MatchSuggestion *> by_vendor;
		for (const MatchSuggestion &s : sugg) {
			by_vendor[s.vendor_id] = &s;
			if (s.score + 1e-9 >= threshold)
				confirmed.emplace(s.vendor_id, s.psa_id);
			if (s.score + 1e-9 >= threshold && !set.truth.count({s.vendor_id, s.psa_id}))
				std::printf("  WRONG %.3f  %s \"%s\" [%s] -> %s \"%s\": %s\n", s.score, s.vendor_id.c_str(),
				            vendor_by_id[s.vendor_id]->name.c_str(), set.vendor_note.at(s.vendor_id).c_str(),
				            s.psa_id.c_str(), psa_by_id[s.psa_id]->name.c_str(), s.evidence.c_str());
		}
		for (const auto &[vid, pid] : set.truth) {
			if (confirmed.count({vid, pid}))
				continue;
			auto it = by_vendor.find(vid);
			std::printf("  MISSED %s \"%s\" [%s] %s -> %s \"%s\" %s | got: %s\n", vid.c_str(),
			            vendor_by_id[vid]->name.c_str(), set.vendor_note.at(vid).c_str(),
			            vendor_by_id[vid]->domains.empty() ? "" : vendor_by_id[vid]->domains.front().c_str(),
			            pid.c_str(), psa_by_id[pid]->name.c_str(),
			            psa_by_id[pid]->domains.empty() ? "" : psa_by_id[pid]->domains.front().c_str(),
			            it == by_vendor.end() ? "nothing"
			                                  : (it->second->psa_id + " " + std::to_string(it->second->score) + " " +
			                                     it->second->evidence)
			                                        .c_str());
		}
	}
}

} // namespace

int main(int argc, char **argv) {
	std::vector<std::string> files;
	int runs = 3;
	bool verbose = false;
	for (int i = 1; i < argc; ++i) {
		std::string a = argv[i];
		if (a == "--runs" && i + 1 < argc)
			runs = std::max(1, std::atoi(argv[++i]));
		else if (a == "--verbose")
			verbose = true;
		else if (a == "--threshold" && i + 1 < argc)
			g_threshold = std::atof(argv[++i]);
		else if (!a.empty() && a[0] == '-') {
			std::fprintf(stderr, "usage: %s LABELLED.json [LARGE.json] [--runs N] [--verbose] [--threshold T]\n",
			             argv[0]);
			return 2;
		} else
			files.push_back(a);
	}
	if (files.empty() || files.size() > 2) {
		std::fprintf(stderr, "usage: %s LABELLED.json [LARGE.json] [--runs N] [--verbose] [--threshold T]\n", argv[0]);
		return 2;
	}
	std::printf("billrecon client matching benchmark (recommended threshold %.3f)\n",
	            billrecon::match::kRecommendedThreshold);
	for (size_t f = 0; f < files.size(); ++f) {
		LabelledSet set;
		if (!Load(files[f], set))
			return 1;
		try {
			Report(set, runs, verbose, f == 1);
		} catch (const std::exception &e) {
			std::fprintf(stderr, "match bench: %s\n", e.what());
			return 1;
		}
	}
	return 0;
}
