"""Suggested client matches on the generated MSP, checked against its ground
truth: no wrong confirmation at the recommended threshold (a wrong automatic
match is worse than none), most right ones found, rejected pairs never
suggested again."""

from e2e_lib import E2ETestCase, kind_built

# Ground-truth field of each vendor's account id.
TRUTH_FIELD = {"ninjaone": "ninja_org_id", "pax8": "pax8_company_id", "msgraph": "ms_tenant_id"}


class SuggestedMatches(E2ETestCase):

    def setUp(self):
        super().setUp()
        # A clean slate: suggestions run over every enabled integration of
        # the shared test database; put the flags back afterwards.
        self.saved = self.q("SELECT id, enabled, is_default_psa FROM billrecon.integrations")
        self.execute("UPDATE billrecon.integrations SET enabled = false, is_default_psa = false")

    def tearDown(self):
        self.execute("UPDATE billrecon.integrations SET enabled = false, is_default_psa = false")
        for r in self.saved:
            self.execute("UPDATE billrecon.integrations SET enabled = %s, is_default_psa = %s WHERE id = %s",
                         (r["enabled"], r["is_default_psa"], r["id"]))
        super().tearDown()

    def truth(self, kind):
        """vendor account id -> the PSA companies it truly belongs to (franchise
        branches share one Microsoft tenant or Pax8 company: any of them is right)."""
        field = TRUTH_FIELD[kind]
        pairs = {}
        for c in self.ds.ground_truth["clients"]:
            if c.get(field) is not None and c.get("psa_company_id") is not None:
                pairs.setdefault(str(c[field]).lower(), set()).add(str(c["psa_company_id"]))
        if kind == "ninjaone":
            for o in self.ds.ground_truth["internal_orgs"]:
                if o.get("psa_company_id") is not None:
                    pairs.setdefault(str(o["ninja_org_id"]), set()).add(str(o["psa_company_id"]))
        return pairs

    def test_confirmed_matches_are_never_wrong(self):
        psa, _ = self.add("connectwise")
        self.execute("UPDATE billrecon.integrations SET is_default_psa = true WHERE name = %s", (psa,))
        self.assert_succeeded(self.sync(psa, "full"))
        kinds = [k for k in ("ninjaone", "pax8", "msgraph") if kind_built(k)]
        names = {}
        for kind in kinds:
            names[kind], _ = self.add(kind)
            self.sync(names[kind], "full")   # msgraph may end with warnings; data is what counts
        suggested = self.scalar("SELECT billrecon.suggest_client_matches()")
        self.assertGreater(suggested, 0)
        rows = self.q("SELECT * FROM billrecon.client_match_suggestions")
        self.assertTrue(all(r["evidence"] for r in rows), "every suggestion explains itself")
        self.assertTrue(all(0 <= r["score"] <= 1 for r in rows))
        confirmed = self.scalar("SELECT billrecon.confirm_client_matches()")
        self.assertGreater(confirmed, 0)

        total_truth = total_found = 0
        for kind in kinds:
            truth = self.truth(kind)
            mapped = self.q("""SELECT va.external_id AS account, pc.external_id AS company
                                 FROM billrecon.client_mappings m
                                 JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id
                                 JOIN billrecon.integrations i ON i.id = va.integration_id
                                 JOIN billrecon.psa_companies pc ON pc.id = m.psa_company_id
                                WHERE i.name = %s AND m.source = 'suggestion'""", (names[kind],))
            for m in mapped:
                self.assertIn(m["company"], truth.get(m["account"].lower(), set()),
                              "%s account %s confirmed to PSA company %s" % (kind, m["account"], m["company"]))
            total_truth += len(truth)
            total_found += len(mapped)
        recall = total_found / total_truth
        print("\n    matching: %d of %d true pairs confirmed (recall %.1f %%), none wrong"
              % (total_found, total_truth, 100 * recall))
        self.assertGreaterEqual(recall, 0.8, "most true pairs are confirmed automatically")

    def test_rejected_pair_is_not_suggested_again(self):
        psa, _ = self.add("connectwise")
        self.execute("UPDATE billrecon.integrations SET is_default_psa = true WHERE name = %s", (psa,))
        self.assert_succeeded(self.sync(psa, "full"))
        ninja, _ = self.add("ninjaone")
        self.assert_succeeded(self.sync(ninja, "full"))
        self.scalar("SELECT billrecon.suggest_client_matches()")
        first = self.one("SELECT * FROM billrecon.client_match_suggestions WHERE integration = %s "
                         "ORDER BY score DESC, vendor_account_id LIMIT 1", (ninja,))
        self.execute("SELECT billrecon.reject_client_match(%s, %s, %s, 'not them')",
                     (ninja, first["vendor_account_id"], first["psa_company_id"]))
        self.scalar("SELECT billrecon.suggest_client_matches()")
        again = self.q("SELECT * FROM billrecon.client_match_suggestions WHERE integration = %s "
                       "AND vendor_account_id = %s AND psa_company_id = %s",
                       (ninja, first["vendor_account_id"], first["psa_company_id"]))
        self.assertEqual(again, [], "a rejected pair is never suggested again")

    def test_client_without_website_matched_by_contact_domains(self):
        """A PSA company without a website is matched to its Microsoft tenant
        through its contacts' e-mail domain."""
        if not kind_built("msgraph"):
            self.skipTest("msgraph is not built")
        companies = {c.id: c for c in self.ds.companies}
        cases = [c for c in self.ds.ground_truth["clients"]
                 if c.get("psa_company_id") is not None and c.get("ms_tenant_id")
                 and not companies[c["psa_company_id"]].website
                 and set(c.get("contact_domains") or ()) & set(c["domains"])]
        self.assertTrue(cases, "the dataset has a client without a website, with contacts at its own domain")
        psa, psa_id = self.add("connectwise")
        self.execute("UPDATE billrecon.integrations SET is_default_psa = true WHERE name = %s", (psa,))
        self.assert_succeeded(self.sync(psa, "full"))
        graph, _ = self.add("msgraph")
        self.sync(graph, "full")
        self.scalar("SELECT billrecon.suggest_client_matches()")
        for c in cases:
            stored = self.scalar("SELECT domains FROM billrecon.psa_companies WHERE integration_id = %s "
                                 "AND external_id = %s", (psa_id, str(c["psa_company_id"])))
            self.assertEqual(sorted(stored), sorted(c["contact_domains"]), "domains come from the contacts only")
            rows = self.q("SELECT * FROM billrecon.client_match_suggestions WHERE integration = %s "
                          "AND lower(vendor_account_id) = lower(%s)", (graph, c["ms_tenant_id"]))
            best = max(rows, key=lambda r: r["score"]) if rows else None
            self.assertIsNotNone(best, "tenant %s of %s is suggested" % (c["ms_tenant_id"], c["psa_name"]))
            self.assertEqual(best["psa_company_id"], str(c["psa_company_id"]))
            shared = set(c["contact_domains"]) & set(c["domains"])
            self.assertTrue(any("shared domain " + d in best["evidence"] for d in shared),
                            "evidence names the contacts' domain: %s" % best["evidence"])
