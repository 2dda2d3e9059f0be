"""almapy (PyPI) drives mock-alma through its public API, as a vendor would against Alma.

argv: the mock's /almaws/v1 URL, an accepted key, the 035 of a generated bib. Prints one JSON
object of what came back; the Rust test (tests/it/clients.rs) judges it.
"""

import asyncio
import json
import re
import sys

import niquests
from almapy import AlmaClient
from almapy.exceptions import APIClientError, MMSIdNotFoundError

API, KEY, OTHER = sys.argv[1], sys.argv[2], sys.argv[3]

BIB = """<bib><record_format>marc21</record_format><suppress_from_publishing>false</suppress_from_publishing>
<record><leader>00000nam a2200000 a 4500</leader>
<datafield tag="035" ind1=" " ind2=" "><subfield code="a">vendor-check-1</subfield></datafield>
<datafield tag="245" ind1="0" ind2="0"><subfield code="a">Created by almapy</subfield></datafield>
</record></bib>"""


def client(key, **kw):
    # The mock stands in for the regional gateway: almapy's own base-URL option is an
    # injected session carrying it.
    return AlmaClient(key, client=niquests.AsyncSession(base_url=API), **kw)


async def main():
    out = {}
    # A client set above the mock's threshold (10/s): almapy's own backoff must absorb the 429s.
    async with client(KEY, rate_limit=50, retry_attempts=10) as c:
        found = await c.execute("GET", "/bibs", parser="json", params={"other_system_id": OTHER})
        out["found"] = found["total_record_count"]
        mms = found["bib"][0]["mms_id"]
        out["get_bib_has_record"] = "<record>" in await c.bibs.get_bib(mms)
        created = await c.bibs.create_bib(BIB)
        new = re.search(r"<mms_id>(\d+)</mms_id>", created).group(1)
        changed = created.replace(
            "</record>",
            '<datafield tag="520" ind1=" " ind2=" "><subfield code="a">Edited by almapy</subfield></datafield></record>',
        )
        updated = await c.bibs.update_bib(new, changed)
        out["updated_has_520"] = "Edited by almapy" in updated
        rep = await c.bibs.representations.create_representation(
            new,
            {
                "is_remote": True,
                "library": {"value": "MAIN"},
                "usage_type": {"value": "PRESERVATION_MASTER"},
                "repository": {"value": "ROSETTA-OAIDC01"},
                "originating_record_id": "oai:d4I1-pubam:IE9999",
                "linking_parameter_1": "IE9999",
                "public_note": "Sent by almapy",
                "active": {"value": "true"},
            },
        )
        rep_id = rep["id"]
        listed = await c.bibs.representations.get_representations(
            new, originating_record_id="oai:d4I1-pubam:IE9999"
        )
        out["listed"] = listed["total_record_count"]
        got = await c.bibs.representations.get_representation(new, rep_id)
        out["public_note"] = got["public_note"]
        out["usage_type_desc"] = got["usage_type"].get("desc")
        got["public_note"] = "Changed by almapy"
        again = await c.bibs.representations.update_representation(new, rep_id, got)
        out["public_note_after_update"] = again["public_note"]
        out["active_after_update"] = again["active"]["value"]
        await c.bibs.representations.delete_representation(new, rep_id)
        await c.bibs.delete_bib(new)
        try:
            await c.bibs.get_bib(new)
            out["deleted_is_gone"] = False
        except MMSIdNotFoundError:
            out["deleted_is_gone"] = True
        # A burst above the per-second threshold completes through almapy's own retries.
        burst = await asyncio.gather(
            *[c.execute("GET", "/bibs", parser="json", params={"other_system_id": OTHER}) for _ in range(20)]
        )
        out["burst"] = sum(1 for b in burst if b["total_record_count"] == 1)
    async with client("not-a-key") as bad:
        try:
            await bad.bibs.get_bib(mms)
            out["bad_key"] = None
        except APIClientError as e:
            out["bad_key"] = e.code
    print(json.dumps(out))


asyncio.run(main())
