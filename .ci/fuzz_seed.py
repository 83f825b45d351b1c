"""Seed the API that `.ci/fuzz` starts with records schemathesis cannot make
on its own, and write their ids where schemathesis.toml reads them.

A random UUID names nothing, and a booking needs a patient who is ready, so
without these the operations on an appointment, a course, a referral or a
screening would only ever answer 404. With them, schemathesis draws a real
id for about half of the cases (see the dictionaries in schemathesis.toml).

Usage: fuzz_seed.py BASE_URL TOKEN DICTIONARY_DIR
"""

from __future__ import annotations

import datetime as dt
import pathlib
import sys

import requests

SEEDED_ROOMS = [f"019ac5a0-0000-7000-8000-00000000000{n}" for n in range(1, 5)]
PROTOCOLS = ["pain-5-day", "pain-8-10-day", "mental-health", "maintenance"]
CRITERIA = [
    "active_substance_abuse",
    "history_of_psychosis",
    "undiagnosed_mental_health_condition",
    "increased_intracranial_pressure",
    "uncontrolled_hypertension",
    "unstable_cardiovascular_disease",
    "previous_negative_ketamine_response",
    "ketamine_abuse_disorder",
    "pregnant",
]


def main(base: str, token: str, out: pathlib.Path) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def post(path: str, body: dict) -> dict:
        response = session.post(base + path, json=body, timeout=30)
        if response.status_code != 201:
            sys.exit(f"seeding: POST {path} answered {response.status_code}: {response.text}")
        return response.json()

    def ready_patient(n: int, medications: list[str]) -> tuple[str, str]:
        # Chronic pain without a required pain referral, screened eligible:
        # nothing open on the readiness checklist.
        patient = post("/v1/patients", {
            "given_name": f"Fuzz {n}", "family_name": "Seed", "date_of_birth": "1980-05-01",
            "phone": "+1 555 010 2030", "indications": [{"code": "chronic_pain", "subtype": "crps"}],
            "in_mental_health_treatment": True, "pain_referral_required": False,
        })["id"]
        screening = post(f"/v1/patients/{patient}/screenings", {
            "criteria": {c: False for c in CRITERIA},
            "medications": [{"name": m} for m in medications],
        })["id"]
        return patient, screening

    # The next clinic days (Monday to Friday, the default), a few days out
    # so that no session has begun yet.
    day = dt.date.today() + dt.timedelta(days=3)
    weekdays = []
    while len(weekdays) < 15:
        if day.weekday() < 5:
            weekdays.append(day)
        day += dt.timedelta(days=1)

    (p1, s1), (p2, s2) = ready_patient(1, []), ready_patient(2, [])
    # On lamotrigine: books, but its first check-in waits for a prescriber consult.
    p3, _ = ready_patient(3, ["Lamictal XR 100 mg"])
    appointments = [
        post("/v1/appointments", {"patient_id": p1, "date": str(weekdays[0]), "session": "morning"})["id"],
        post("/v1/appointments", {"patient_id": p1, "date": str(weekdays[1]), "session": "afternoon"})["id"],
        post("/v1/appointments", {"patient_id": p3, "date": str(weekdays[0]), "session": "afternoon"})["id"],
    ]
    course = post("/v1/courses", {
        "patient_id": p2, "protocol": "pain-5-day", "session": "morning",
        "earliest_start": str(weekdays[5]),
    })["id"]
    provider = {"name": "Dr. Jane Doe", "practice": "Riverside", "phone": "+1 555 010 3000",
                "npi": "1234567893"}
    referrals = [
        post(f"/v1/patients/{p}/referrals", {
            "kind": "pain_management", "provider": provider,
            "received_on": str(dt.date.today() - dt.timedelta(days=10)),
            "document_reference": f"ehr://fuzz/{p}",
        })["id"]
        for p in (p1, p3)
    ]
    closure = post("/v1/closures", {"date": str(weekdays[-1] + dt.timedelta(days=60)),
                                    "reason": "Seeded closure"})["id"]

    out.mkdir(parents=True, exist_ok=True)
    for kind, ids in {
        "patients": [p1, p2, p3],
        "screenings": [s1, s2],
        "appointments": appointments,
        "courses": [course],
        "referrals": referrals,
        "closures": [closure],
        "rooms": SEEDED_ROOMS,
        "protocols": PROTOCOLS,
    }.items():
        write(out / f"{kind}.dict", ids)


def write(path: pathlib.Path, values: list[str]) -> None:
    path.write_text("".join(f'"{v}"\n' for v in values))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3]))
