#include "match/matcher.hpp"

#include "match/normalize.hpp"
#include "match/similarity.hpp"
#include "model/error.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <unordered_map>
#include <unordered_set>

namespace billrecon::match {

namespace {

// Domain evidence (combined with name evidence as independent signals:
// score = 1 - (1 - name)(1 - domain)(1 - label)).
constexpr double kUniqueDomainEvidence = 0.92; // a domain only this PSA company carries
constexpr double kSharedDomainEvidence = 0.5;  // a domain two PSA companies carry (a franchise)
constexpr size_t kMaxDomainSharers = 2;        // more companies than this: the domain proves nothing
constexpr size_t kMaxDomainAccounts = 3;       // more vendor accounts than this: the domain proves nothing
constexpr double kLabelEvidence = 0.4;         // onmicrosoft / domain label equal to the other's name or label
constexpr double kDomainMismatchPenalty = 0.05;
constexpr size_t kMinLabelLength = 4;

// Scored pairs below this are dropped before assignment (and cannot make a
// suggestion ambiguous).
constexpr double kKeepFloor = 0.3;

// Candidate generation.
constexpr double kTokenCoverage = 0.7; // index words of a name until this share of its weight
constexpr size_t kRareTrigrams = 3;    // plus the postings of its rarest trigrams
constexpr size_t kTrigramCutoff = 20;  // trigrams in more PSA names than this are not used

constexpr const char *kOnMicrosoftSuffix = ".onmicrosoft.com";

bool EndsWith(const std::string &s, const char *suffix) {
	size_t n = std::char_traits<char>::length(suffix);
	return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

std::string StripTrailingDigits(std::string s) {
	while (!s.empty() && s.back() >= '0' && s.back() <= '9')
		s.pop_back();
	return s;
}

// At most `max` bytes of UTF-8 text, not cutting a character, for messages.
std::string Clip(const std::string &text, size_t max = 80) {
	if (text.size() <= max)
		return text;
	size_t end = max;
	while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
		--end;
	return text.substr(0, end) + "...";
}

std::string Fixed3(double v) {
	char buf[32];
	std::snprintf(buf, sizeof buf, "%.3f", v);
	return buf;
}

void SortUnique(std::vector<std::string> &v) {
	std::sort(v.begin(), v.end());
	v.erase(std::unique(v.begin(), v.end()), v.end());
}

bool Contains(const std::vector<std::string> &sorted, const std::string &s) {
	return std::binary_search(sorted.begin(), sorted.end(), s);
}

// One vendor account or PSA company, prepared.
struct Entry {
	const MatchCandidate *src = nullptr;
	NormalizedName norm;
	PreparedName prep;
	std::string compact;
	std::vector<std::string> domains;      // registrable, non-generic, sorted (incl. x.onmicrosoft.com)
	std::vector<std::string> real_domains; // the same without *.onmicrosoft.com
	std::vector<std::string> label_keys;   // domain and tenant labels, raw and cut into words, sorted
};

// Words a domain label may be cut into: every word of the input's names in
// every spelling, and the words of the name rules.
class Vocabulary {
public:
	void AddName(const NormalizedName &name) {
		for (const std::string &t : name.tokens)
			for (std::string &sp : SpellingsOf(t))
				words_.insert(std::move(sp));
	}
	void AddRuleWords() {
		for (std::string &w : RuleWords())
			words_.insert(std::move(w));
	}
	// "harbor-dental-group" -> harbor dental group (after CleanWords: "harbor dental group").
	std::vector<std::string> Split(std::string_view label) const {
		std::vector<std::string> words;
		size_t start = 0;
		while (start <= label.size()) {
			size_t dash = label.find('-', start);
			if (dash == std::string_view::npos)
				dash = label.size();
			if (dash > start)
				for (std::string &w : SegmentWords(label.substr(start, dash - start), [this](std::string_view w) {
					     return words_.count(std::string(w)) > 0;
				     }))
					words.push_back(std::move(w));
			start = dash + 1;
		}
		return CleanWords(std::move(words));
	}

private:
	std::unordered_set<std::string> words_;
};

std::string Joined(const std::vector<std::string> &words) {
	std::string out;
	for (const std::string &w : words)
		out += w;
	return out;
}

// Phase 1: the name and the domains.
Entry MakeEntry(const MatchCandidate &c, const std::unordered_set<std::string> &extra_generic) {
	Entry e;
	e.src = &c;
	e.norm = NormalizeName(c.name);
	auto add_domain = [&](const std::string &registrable) {
		if (registrable.empty() || IsGenericDomain(registrable) || extra_generic.count(registrable))
			return;
		e.domains.push_back(registrable);
		if (!EndsWith(registrable, kOnMicrosoftSuffix))
			e.real_domains.push_back(registrable);
	};
	for (const std::string &raw : c.domains) {
		std::string tenant = OnMicrosoftLabel(raw);
		if (!tenant.empty())
			add_domain(tenant + kOnMicrosoftSuffix);
		else
			add_domain(NormalizeDomain(raw));
	}
	if (e.norm.from_domain)
		add_domain(e.norm.domain);
	SortUnique(e.domains);
	SortUnique(e.real_domains);
	return e;
}

// Phase 2, once the vocabulary is known: a name that is a domain is cut into
// words; domain and tenant labels become keys for label evidence (raw and
// cut into words, joined: "harbordentalllc" -> "harbordental").
void FinishEntry(Entry &e, const Vocabulary &vocabulary, TokenStats &stats) {
	if (e.norm.from_domain) {
		std::string label = e.norm.domain.substr(0, e.norm.domain.find('.'));
		if (EndsWith(e.norm.domain, kOnMicrosoftSuffix))
			label = StripTrailingDigits(label);
		e.norm.tokens = vocabulary.Split(label);
		e.norm.branch.clear();
	}
	e.compact = e.norm.Compact();
	e.prep = Prepare(e.norm, stats);
	stats.CountName(e.prep.ids);
	for (const std::string &d : e.domains) {
		std::string label = d.substr(0, d.find('.'));
		if (EndsWith(d, kOnMicrosoftSuffix))
			label = StripTrailingDigits(label);
		std::string flat;
		for (char ch : label)
			if (ch != '-')
				flat += ch;
		if (flat.size() >= kMinLabelLength)
			e.label_keys.push_back(flat);
		std::string words = Joined(vocabulary.Split(label));
		if (words.size() >= kMinLabelLength)
			e.label_keys.push_back(words);
	}
	SortUnique(e.label_keys);
}

// How often each domain occurs on each side: a domain on many records (the
// MSP's own, a parent company's) says nothing about any one of them.
struct DomainCounts {
	std::unordered_map<std::string, std::vector<uint32_t>> psa; // domain -> PSA companies carrying it
	std::unordered_map<std::string, size_t> vendor;             // domain -> vendor accounts carrying it

	size_t Companies(const std::string &d) const {
		auto it = psa.find(d);
		return it == psa.end() ? 0 : it->second.size();
	}
	size_t Accounts(const std::string &d) const {
		auto it = vendor.find(d);
		return it == vendor.end() ? 0 : it->second;
	}
	// Evidence of a domain both records carry: strong when only this company
	// has it, weak for two (branches of a franchise), none beyond.
	double Evidence(const std::string &d) const {
		if (Accounts(d) > kMaxDomainAccounts)
			return 0;
		size_t k = Companies(d);
		if (k == 0 || k > kMaxDomainSharers)
			return 0;
		return k == 1 ? kUniqueDomainEvidence : kSharedDomainEvidence;
	}
};

struct Scored {
	uint32_t v;
	uint32_t p;
	double score;
	double strength;    // name + domain + label evidence, not saturated: orders pairs of equal score
	bool unique_domain; // shares a domain no other PSA company carries
	bool filler_only;   // the names differ only by filler words
};

// `a` is clearly better evidence than `b`: a score higher by the ambiguity
// margin, or a score as high within the margin plus a domain `b` lacks.
bool ClearlyBetter(const Scored &a, const Scored &b) {
	return a.score >= b.score + kAmbiguityMargin ||
	       (a.unique_domain && !b.unique_domain && a.score >= b.score - kAmbiguityMargin);
}

// Assignment order, best first: the score, where a domain only this company
// carries counts as much as the ambiguity margin ("Sierra Dental" with the
// domain of "Sierra Dental Associates" goes there, not to "Sierra Dental"),
// then the unsaturated strength, then ids.
double OrderKey(const Scored &s) {
	return s.score + (s.unique_domain ? kAmbiguityMargin : 0.0);
}

// Label evidence: the account's domain or tenant label spells the company's
// name or domain label ("harbordental.net" / "Harbor Dental"), or the
// company's domain label spells the account's name.
struct Labels {
	const std::string *account_label = nullptr;
	bool company_label = false;
};

Labels CompareLabels(const Entry &v, const Entry &p) {
	Labels out;
	for (const std::string &key : v.label_keys) {
		if (key == p.compact || Contains(p.label_keys, key)) {
			out.account_label = &key;
			break;
		}
	}
	out.company_label = v.compact.size() >= kMinLabelLength && Contains(p.label_keys, v.compact);
	return out;
}

// Both sides name real domains, none in common, and the account's labels do
// not spell the company either.
bool DomainMismatch(const Entry &v, const Entry &p, bool shared_any, const Labels &labels) {
	return !shared_any && !labels.account_label && !v.real_domains.empty() && !p.real_domains.empty();
}

std::string Describe(const Entry &v, const Entry &p, const TokenStats &stats, const DomainCounts &counts) {
	NameDetails details;
	NameScore ns = CompareNames(v.prep, p.prep, stats, &details);
	std::string out = DescribeNames(ns, details, v.norm.Text(), p.norm.Text());
	std::vector<std::string> shared;
	std::set_intersection(v.domains.begin(), v.domains.end(), p.domains.begin(), p.domains.end(),
	                      std::back_inserter(shared));
	bool domain_evidence = false;
	for (const std::string &d : shared) {
		size_t k = counts.Companies(d);
		if (counts.Evidence(d) == kUniqueDomainEvidence) {
			out += "; shared domain " + d;
			domain_evidence = true;
		} else if (counts.Evidence(d) > 0) {
			out += "; shared domain " + d + " (also on " + std::to_string(k - 1) + " other company)";
			domain_evidence = true;
		} else if (k > kMaxDomainSharers) {
			out += "; domain " + d + " ignored (on " + std::to_string(k) + " companies)";
		} else {
			out += "; domain " + d + " ignored (on " + std::to_string(counts.Accounts(d)) + " accounts)";
		}
	}
	Labels labels = CompareLabels(v, p);
	if (!domain_evidence && !ns.exact) {
		if (labels.account_label)
			out += "; the account's domain label " + *labels.account_label + " spells the company's " +
			       (*labels.account_label == p.compact ? "name" : "domain");
		else if (labels.company_label)
			out += "; the company's domain label " + v.compact + " spells the account's name";
	}
	if (DomainMismatch(v, p, !shared.empty(), labels))
		out += "; no shared domain (" + v.real_domains.front() + " / " + p.real_domains.front() + ")";
	return out;
}

} // namespace

std::vector<MatchSuggestion> SuggestMatches(const std::vector<MatchCandidate> &vendor_accounts,
                                            const std::vector<MatchCandidate> &psa_companies,
                                            const MatchOptions &options) {
	if (!(options.min_score >= 0.0 && options.min_score <= 1.0))
		throw Error(sqlstate::kInvalidParameter, "invalid minimum score for client matching",
		            "min_score is " + Fixed3(options.min_score) + ".", "Pass a score between 0 and 1.");
	auto check_ids = [](const std::vector<MatchCandidate> &list, const char *what,
	                    std::unordered_map<std::string, uint32_t> &index) {
		for (size_t i = 0; i < list.size(); ++i) {
			const MatchCandidate &c = list[i];
			if (c.id.empty())
				throw Error(sqlstate::kInvalidParameter, std::string(what) + " without an id in client matching",
				            "Record " + std::to_string(i + 1) + " (name \"" + Clip(c.name) + "\") has an empty id.",
				            "Pass the external id the source system uses for every record.");
			if (!index.emplace(c.id, static_cast<uint32_t>(i)).second)
				throw Error(sqlstate::kInvalidParameter, std::string("duplicate ") + what + " id in client matching",
				            "The id \"" + Clip(c.id) + "\" appears more than once.",
				            std::string("Pass each ") + what + " once.");
		}
	};
	std::unordered_map<std::string, uint32_t> vendor_index, psa_index;
	check_ids(vendor_accounts, "vendor account", vendor_index);
	check_ids(psa_companies, "PSA company", psa_index);

	std::unordered_set<std::string> extra_generic;
	for (const std::string &d : options.generic_domains) {
		std::string r = NormalizeDomain(d);
		if (!r.empty())
			extra_generic.insert(r);
	}

	// Prepare both sides; word rarity comes from both.
	std::vector<Entry> vendors, psas;
	vendors.reserve(vendor_accounts.size());
	psas.reserve(psa_companies.size());
	for (const MatchCandidate &c : vendor_accounts)
		vendors.push_back(MakeEntry(c, extra_generic));
	for (const MatchCandidate &c : psa_companies)
		psas.push_back(MakeEntry(c, extra_generic));
	Vocabulary vocabulary;
	vocabulary.AddRuleWords();
	for (const std::vector<Entry> *side : {&vendors, &psas})
		for (const Entry &e : *side)
			if (!e.norm.from_domain)
				vocabulary.AddName(e.norm);
	TokenStats stats;
	for (std::vector<Entry> *side : {&vendors, &psas})
		for (Entry &e : *side)
			FinishEntry(e, vocabulary, stats);
	stats.Finish();

	// PSA-side indexes.
	const uint32_t np = static_cast<uint32_t>(psas.size());
	std::vector<std::vector<uint32_t>> postings(stats.size());
	DomainCounts counts;
	std::unordered_map<std::string, std::vector<uint32_t>> psa_by_key;
	std::unordered_map<uint32_t, std::vector<uint32_t>> psa_by_trigram;
	for (uint32_t p = 0; p < np; ++p) {
		const Entry &e = psas[p];
		std::vector<uint32_t> ids = e.prep.ids;
		std::sort(ids.begin(), ids.end());
		ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
		for (uint32_t id : ids)
			postings[id].push_back(p);
		for (const std::string &d : e.domains)
			counts.psa[d].push_back(p);
		std::vector<std::string> keys = e.label_keys;
		if (e.compact.size() >= kMinLabelLength)
			keys.push_back(e.compact);
		SortUnique(keys);
		for (const std::string &k : keys)
			psa_by_key[k].push_back(p);
		for (uint32_t t : e.prep.trigrams)
			psa_by_trigram[t].push_back(p);
	}
	for (const Entry &e : vendors)
		for (const std::string &d : e.domains)
			++counts.vendor[d];
	const size_t trigram_cutoff = kTrigramCutoff;
	const double keep_floor = std::min(kKeepFloor, options.min_score);

	// Score candidate pairs.
	std::vector<Scored> scored;
	std::vector<uint32_t> stamp(np, UINT32_MAX);
	std::vector<uint32_t> candidates;
	std::vector<std::pair<double, uint32_t>> by_weight;
	std::vector<std::pair<size_t, uint32_t>> rare;
	for (uint32_t v = 0; v < vendors.size(); ++v) {
		const Entry &ve = vendors[v];
		candidates.clear();
		auto add = [&](const std::vector<uint32_t> &list) {
			for (uint32_t p : list) {
				if (stamp[p] != v) {
					stamp[p] = v;
					candidates.push_back(p);
				}
			}
		};
		for (const std::string &d : ve.domains)
			if (counts.Evidence(d) > 0)
				add(counts.psa.at(d));
		for (const std::string &k : ve.label_keys) {
			auto it = psa_by_key.find(k);
			if (it != psa_by_key.end())
				add(it->second);
		}
		if (ve.compact.size() >= kMinLabelLength) {
			auto it = psa_by_key.find(ve.compact);
			if (it != psa_by_key.end())
				add(it->second);
		}
		// The name's heaviest words (and their typos and abbreviations).
		by_weight.clear();
		double total = 0;
		for (uint32_t id : ve.prep.ids) {
			by_weight.emplace_back(stats.Weight(id), id);
			total += stats.Weight(id);
		}
		std::sort(by_weight.begin(), by_weight.end(), [&](const auto &x, const auto &y) {
			return x.first != y.first ? x.first > y.first : stats.Text(x.second) < stats.Text(y.second);
		});
		double covered = 0;
		for (const auto &[w, id] : by_weight) {
			if (covered >= kTokenCoverage * total && covered > 0)
				break;
			covered += w;
			add(postings[id]);
			for (const TokenStats::Related &r : stats.RelatedTokens(id))
				add(postings[r.id]);
		}
		// The rarest trigrams of the joined name: words written together or apart, typos in short names.
		rare.clear();
		for (uint32_t t : ve.prep.trigrams) {
			auto it = psa_by_trigram.find(t);
			if (it != psa_by_trigram.end() && it->second.size() <= trigram_cutoff)
				rare.emplace_back(it->second.size(), t);
		}
		std::sort(rare.begin(), rare.end());
		for (size_t k = 0; k < rare.size() && k < kRareTrigrams; ++k)
			add(psa_by_trigram[rare[k].second]);

		for (uint32_t p : candidates) {
			const Entry &pe = psas[p];
			NameScore ns = CompareNames(ve.prep, pe.prep, stats);
			double domain = 0;
			bool shared_any = false;
			bool unique_domain = false;
			for (const std::string &d : ve.domains) {
				if (!Contains(pe.domains, d))
					continue;
				shared_any = true;
				double evidence = counts.Evidence(d);
				domain = std::max(domain, evidence);
				unique_domain = unique_domain || evidence == kUniqueDomainEvidence;
			}
			Labels labels = CompareLabels(ve, pe);
			double label = domain == 0 && (labels.account_label || labels.company_label) ? kLabelEvidence : 0;
			double s = 1.0 - (1.0 - ns.score) * (1.0 - domain) * (1.0 - label);
			if (DomainMismatch(ve, pe, shared_any, labels))
				s -= kDomainMismatchPenalty;
			if (ns.branch_conflict)
				s = std::min(s, kBranchConflictCap);
			if (ns.different_words)
				s = std::min(s, kDifferentWordsCap);
			s = std::clamp(s, 0.0, 1.0);
			if (s >= keep_floor)
				scored.push_back({v, p, s, ns.score + domain + label, unique_domain, ns.filler_only});
		}
	}

	// Rejected pairs never take part; mapped accounts get no suggestion.
	std::unordered_set<uint64_t> rejected;
	for (const auto &[vid, pid] : options.rejected) {
		auto vi = vendor_index.find(vid);
		auto pi = psa_index.find(pid);
		if (vi != vendor_index.end() && pi != psa_index.end())
			rejected.insert((static_cast<uint64_t>(vi->second) << 32) | pi->second);
	}
	std::vector<bool> vendor_mapped(vendors.size(), false), psa_mapped(np, false);
	for (const auto &[vid, pid] : options.mapped) {
		auto vi = vendor_index.find(vid);
		if (vi != vendor_index.end())
			vendor_mapped[vi->second] = true;
		auto pi = psa_index.find(pid);
		if (pi != psa_index.end())
			psa_mapped[pi->second] = true;
	}
	scored.erase(std::remove_if(scored.begin(), scored.end(),
	                            [&](const Scored &s) {
		                            return vendor_mapped[s.v] ||
		                                   rejected.count((static_cast<uint64_t>(s.v) << 32) | s.p) > 0;
	                            }),
	             scored.end());

	// One to one, best first.
	std::sort(scored.begin(), scored.end(), [&](const Scored &x, const Scored &y) {
		if (OrderKey(x) != OrderKey(y))
			return OrderKey(x) > OrderKey(y);
		if (x.strength != y.strength)
			return x.strength > y.strength;
		const std::string &xv = vendors[x.v].src->id, &yv = vendors[y.v].src->id;
		if (xv != yv)
			return xv < yv;
		return psas[x.p].src->id < psas[y.p].src->id;
	});
	std::vector<int64_t> vendor_pick(vendors.size(), -1); // index into scored
	std::vector<std::vector<size_t>> psa_owners(np);
	for (size_t k = 0; k < scored.size(); ++k) {
		const Scored &s = scored[k];
		if (s.score < options.min_score)
			continue;
		if (vendor_pick[s.v] >= 0)
			continue;
		const std::vector<size_t> &owners = psa_owners[s.p];
		bool free = owners.empty() && !psa_mapped[s.p];
		bool co_claim = s.unique_domain &&
		                std::all_of(owners.begin(), owners.end(), [&](size_t o) { return scored[o].unique_domain; });
		if (!free && !co_claim)
			continue;
		vendor_pick[s.v] = static_cast<int64_t>(k);
		psa_owners[s.p].push_back(k);
	}

	// Near ties.
	std::vector<std::vector<size_t>> by_vendor(vendors.size()), by_psa(np);
	for (size_t k = 0; k < scored.size(); ++k) {
		by_vendor[scored[k].v].push_back(k);
		by_psa[scored[k].p].push_back(k);
	}
	// Whether a company is clearly better explained by its owner than by pair o.
	auto owned_clearly = [&](const Scored &o) {
		return std::any_of(psa_owners[o.p].begin(), psa_owners[o.p].end(),
		                   [&](size_t q) { return ClearlyBetter(scored[q], o); });
	};
	// Whether pair o competes with the suggestion `pick`: about as good, or
	// its names differ only by filler words, and no domain tells them apart.
	auto competes = [&](const Scored &pick, const Scored &o) {
		if (pick.unique_domain && !o.unique_domain)
			return false;
		return o.score >= pick.score - kAmbiguityMargin || o.filler_only;
	};

	std::vector<MatchSuggestion> out;
	for (uint32_t v = 0; v < vendors.size(); ++v) {
		if (vendor_pick[v] < 0)
			continue;
		const Scored &pick = scored[static_cast<size_t>(vendor_pick[v])];
		const Entry *rival = nullptr;
		double rival_score = -1;
		// Other companies this account is as close to, unless their owners are clearly closer.
		for (size_t k : by_vendor[v]) {
			const Scored &o = scored[k];
			if (o.p == pick.p || !competes(pick, o) || psa_mapped[o.p] || owned_clearly(o))
				continue;
			if (o.score > rival_score) {
				rival = &psas[o.p];
				rival_score = o.score;
			}
		}
		// Other accounts as close to this company, unless placed as well elsewhere.
		for (size_t k : by_psa[pick.p]) {
			const Scored &o = scored[k];
			if (o.v == v || !competes(pick, o) || vendor_mapped[o.v])
				continue;
			if (vendor_pick[o.v] >= 0 && (scored[static_cast<size_t>(vendor_pick[o.v])].p == pick.p ||
			                              scored[static_cast<size_t>(vendor_pick[o.v])].score >= o.score))
				continue;
			if (o.score > rival_score) {
				rival = &vendors[o.v];
				rival_score = o.score;
			}
		}

		MatchSuggestion s;
		s.vendor_id = vendors[v].src->id;
		s.psa_id = psas[pick.p].src->id;
		double score = pick.score;
		s.evidence = Describe(vendors[v], psas[pick.p], stats, counts);
		for (size_t o : psa_owners[pick.p]) {
			if (scored[o].v != v) {
				s.evidence += "; company also suggested for \"" + vendors[scored[o].v].src->name + "\" (same domain)";
				break;
			}
		}
		if (psa_mapped[pick.p])
			s.evidence += "; company already mapped to another account (same domain)";
		if (rival) {
			score = std::min(score, kRecommendedThreshold - kAmbiguityPenalty);
			s.evidence += "; ambiguous: also close to \"" + rival->src->name + "\" (" + Fixed3(rival_score) + ")";
		}
		s.score = std::round(score * 1000.0) / 1000.0;
		out.push_back(std::move(s));
	}
	std::sort(out.begin(), out.end(), [](const MatchSuggestion &x, const MatchSuggestion &y) {
		if (x.score != y.score)
			return x.score > y.score;
		if (x.vendor_id != y.vendor_id)
			return x.vendor_id < y.vendor_id;
		return x.psa_id < y.psa_id;
	});
	return out;
}

} // namespace billrecon::match
