"""almapipy (PyPI) drives the calls clients make around a bib: a bib's holdings, the
institution's libraries (the Configuration API), unlinking a bib from the Network Zone.

argv: the mock's base URL (before /almaws/v1), an accepted key, an MMS ID linked to the Network
Zone, one that is not. Prints one JSON object on its last line (almapipy prints URLs itself).
"""

import json
import sys
import xml.etree.ElementTree as ET

from almapipy import AlmaCnxn, utils
from almapipy.bibs import SubClientBibs
from almapipy.conf import SubClientConfiguration

BASE, KEY, LINKED, PLAIN = sys.argv[1:5]

alma = AlmaCnxn(KEY, data_format="json")
# almapipy has no base-URL option: its sub-clients are built from the connection's parameters,
# so they are built again (its public classes) with the mock as the regional gateway.
params = dict(alma.cnxn_params)
params["base_uri"] = BASE
bibs = SubClientBibs(params)
conf = SubClientConfiguration(params)

out = {}
out["holdings"] = bibs.catalog.get_holdings(PLAIN)["total_record_count"]
out["libraries"] = [l["code"] for l in conf.units.get_libaries()["library"]]
out["main_name"] = conf.units.get_libaries("MAIN")["name"]
try:
    conf.units.get_libaries("NOWHERE")
    out["unknown_library"] = None
except utils.AlmaError as e:
    out["unknown_library"] = str(e)
unlink = {"apikey": KEY, "op": "unlink_from_nz", "format": "xml"}
bib = bibs.catalog.create(
    bibs.cnxn_params["api_uri_full"] + "/" + LINKED, ET.Element("bib"), dict(unlink), "bib"
)
out["unlinked_has_link"] = bib.find("linked_record_id") is not None
out["unlinked_mms"] = bib.findtext("mms_id")
try:
    bibs.catalog.create(bibs.cnxn_params["api_uri_full"] + "/" + PLAIN, ET.Element("bib"), dict(unlink), "bib")
    out["not_linked"] = None
except utils.AlmaError as e:
    out["not_linked"] = str(e)
print(json.dumps(out))
