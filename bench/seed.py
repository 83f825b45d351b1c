"""A realistic clinic, written straight into a migrated database, for
`make bench` and `make soak`: the same rows on PostgreSQL and on SQLite.

- 10,000 patients, all screened eligible, so all ready to book:
  70% chronic pain (CRPS or neuropathic; in mental health treatment, so no
  evaluation letter is needed), 30% depression or anxiety with a verified
  provider referral and a current attestation.
- 8 rooms (the 4 the migrations seed and 4 more); a closure every 4 weeks.
- About 50,000 appointments. With 8 rooms the database allows at most
  8 rooms x 2 sessions x 130 clinic days = 2,080 active appointments in a
  26-week horizon, so most rows are what a busy clinic accumulates besides:
  the past 26 weeks 90% full of completed (with pain scores) and no-show
  visits, the next 26 weeks 25% booked, and cancelled bookings over both.
- Patients 9,001..10,000 hold no seeded appointment: load generators book
  for them and meet no patient-day conflict.

Ids are deterministic: patient n is `patient_id(n)`.
"""

import csv
import datetime as dt
import io
import os
import sqlite3
import subprocess
from zoneinfo import ZoneInfo

CLINIC_ZONE = ZoneInfo("America/New_York")
PATIENTS = 10_000
FREE_PATIENTS = range(9_001, 10_001)  # no seeded appointments
# BENCH_APPOINTMENTS: how many in all (the extra ones cancelled history),
# to see that a course plan's cost follows the horizon, not the table.
APPOINTMENTS = int(os.environ.get("BENCH_APPOINTMENTS", "50000"))
ROOMS = 8
SESSIONS = {"morning": dt.time(8, 0), "afternoon": dt.time(13, 0)}
GIVEN = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tony"]
FAMILY = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
          "Perlman", "Hoare", "Ritchie", "Kay", "Lamport", "Wirth", "Codd", "Backus", "Cerf",
          "Kahn", "Milner", "Hamming"]


def uid(kind: int, n: int) -> str:
    return f"00000000-0000-4000-{kind:04d}-{n:012d}"


def patient_id(n: int) -> str:
    return uid(8000, n)


def room_id(n: int) -> str:
    return f"019ac5a0-0000-7000-8000-{n:012d}"


def is_pain(n: int) -> bool:
    return n % 10 < 7


def clinic_today() -> dt.date:
    return dt.datetime.now(CLINIC_ZONE).date()


def clinic_days(first: dt.date, last: dt.date, closed: set) -> list:
    """Monday to Friday from `first` to `last`, closures left out."""
    days, d = [], first
    while d <= last:
        if d.isoweekday() < 6 and d not in closed:
            days.append(d)
        d += dt.timedelta(days=1)
    return days


def closures(today: dt.date) -> list:
    """A Wednesday every 4 weeks, 6 in the horizon."""
    first_wed = today + dt.timedelta(days=(2 - today.weekday()) % 7)
    return [first_wed + dt.timedelta(weeks=4 * k) for k in range(1, 7)]


def starts_at(date: dt.date, session: str) -> dt.datetime:
    local = dt.datetime.combine(date, SESSIONS[session], CLINIC_ZONE)
    return local.astimezone(dt.timezone.utc).replace(tzinfo=None)


def tables(today: dt.date) -> dict:
    """Every table's columns and rows, in insertion order."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    out = {}
    out["rooms"] = (["id", "name", "active", "created_at", "updated_at"],
                    [(room_id(n), f"Room {n}", True, now, now) for n in range(5, ROOMS + 1)])
    closed = closures(today)
    out["closures"] = (["id", "date", "reason", "created_at"],
                       [(uid(8003, k), d, "Staff training", now) for k, d in enumerate(closed, 1)])

    patients, indications, screenings, referrals, attestations = [], [], [], [], []
    for n in range(1, PATIENTS + 1):
        given, family = GIVEN[n % 10], f"{FAMILY[(n // 10) % 20]}{n}"
        pid = patient_id(n)
        patients.append((pid, given, family, f"{given} {family}".lower(),
                         dt.date(1950, 1, 1) + dt.timedelta(days=(n * 37) % 18_000),
                         f"patient{n}@example.org", f"+1 555 {n % 10_000:04d}",
                         True, False, now, now))
        if is_pain(n):
            indications.append((pid, "chronic_pain", "crps" if n % 2 == 0 else "neuropathic"))
        else:
            indications.append((pid, "depression" if n % 2 == 0 else "anxiety", None))
            referrals.append((uid(8002, n), pid, "mental_health_provider", "Dr. Referrer",
                              "Bench Psychiatry", "+1 555 0100", None, None, "1234567893",
                              today - dt.timedelta(days=30), f"scan-{n}", "verified", None,
                              "bench-seed", now, "bench-seed", now, now))
            attestations.append((uid(8004, n), pid, "Dr. Therapist", "Bench Therapy", None, None,
                                 "therapist@example.org", None, today - dt.timedelta(days=30),
                                 "bench-seed", now))
        screenings.append((uid(8001, n), pid) + (False,) * 9 +
                          ("eligible", False, today - dt.timedelta(days=n % 20), "bench-seed", now))
    out["patients"] = (["id", "given_name", "family_name", "search_name", "date_of_birth", "email",
                        "phone", "in_mental_health_treatment", "pain_referral_required",
                        "created_at", "updated_at"], patients)
    out["patient_indications"] = (["patient_id", "code", "subtype"], indications)
    out["screenings"] = (["id", "patient_id", "active_substance_abuse", "history_of_psychosis",
                          "undiagnosed_mental_health_condition", "increased_intracranial_pressure",
                          "uncontrolled_hypertension", "unstable_cardiovascular_disease",
                          "previous_negative_ketamine_response", "ketamine_abuse_disorder",
                          "pregnant", "outcome", "lamotrigine", "screened_on", "screened_by",
                          "created_at"], screenings)
    out["referrals"] = (["id", "patient_id", "kind", "provider_name", "provider_practice",
                         "provider_phone", "provider_fax", "provider_email", "provider_npi",
                         "received_on", "document_reference", "status", "reject_reason",
                         "decided_by", "decided_at", "created_by", "created_at", "updated_at"],
                        referrals)
    out["treatment_attestations"] = (["id", "patient_id", "provider_name", "provider_practice",
                                      "provider_phone", "provider_fax", "provider_email",
                                      "provider_npi", "attested_on", "recorded_by", "created_at"],
                                     attestations)

    # Every session of the past and next 26 weeks (today left out).
    days = [d for d in clinic_days(today - dt.timedelta(days=182), today + dt.timedelta(days=182),
                                   set(closed)) if d != today]
    slots = [(d, s) for d in days for s in SESSIONS]
    appointments = []

    def appointment(aid, patient, room, date, session, status, pain=None, reason=None):
        done = status == "completed"
        visit = starts_at(date, session)
        appointments.append((aid, patient, room, date, session, visit, status,
                             "iv", pain[0] if pain else None, pain[1] if pain else None, reason,
                             "bench-seed" if reason else None,
                             visit + dt.timedelta(minutes=10) if done else None,
                             visit + dt.timedelta(hours=2) if done else None, now, now))

    for k, (date, session) in enumerate(slots, 1):
        for r in range(1, ROOMS + 1):
            n = k * ROOMS + r
            patient = patient_id(1 + n % 9_000)  # never twice in one day
            if date < today and (k * 7 + r) % 10 != 0:
                if (k + r) % 12 == 0:
                    appointment(uid(8005, n), patient, room_id(r), date, session, "no_show")
                else:
                    appointment(uid(8005, n), patient, room_id(r), date, session, "completed",
                                pain=(4 + (k + r) % 6, 1 + (k + r) % 4))
            elif date > today and (k * 7 + r * 3) % 20 < 5:
                appointment(uid(8005, n), patient, room_id(r), date, session, "scheduled")
    for i in range(1, APPOINTMENTS - len(appointments) + 1):
        date, session = slots[(i * 31) % len(slots)]
        appointment(uid(8006, i), patient_id(1 + (i * 7919) % PATIENTS), room_id(1 + i % ROOMS),
                    date, session, "cancelled", reason="patient asked to move it")
    out["appointments"] = (["id", "patient_id", "room_id", "date", "session", "starts_at", "status",
                            "route", "pain_before", "pain_after", "cancel_reason", "cancelled_by",
                            "checked_in_at", "completed_at", "created_at", "updated_at"],
                           appointments)
    return out


def load_postgres(url: str, today: dt.date) -> None:
    """COPY every table through psql, then ANALYZE."""
    for table, (columns, rows) in tables(today).items():
        buf = io.StringIO()
        writer = csv.writer(buf)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
        copy = f"\\copy {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", copy],
                       input=buf.getvalue(), text=True, check=True)
    # VACUUM as well: the visibility map a running database's autovacuum keeps
    # lets the planner answer session counts from the partial index alone.
    subprocess.run(["psql", "-q", url, "-c", "VACUUM ANALYZE"], check=True)


def load_sqlite(path: str, today: dt.date) -> None:
    """Insert every table in one transaction, in the formats diesel writes."""
    def cell(v):
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, dt.datetime):
            return v.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(v, dt.date):
            return v.isoformat()
        return v

    db = sqlite3.connect(path)
    with db:
        for table, (columns, rows) in tables(today).items():
            marks = ", ".join("?" * len(columns))
            db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                           ([cell(v) for v in row] for row in rows))
    # No ANALYZE, as the API never runs one: statistics taken while no
    # appointment belongs to a course tell SQLite that the course_id index
    # is useless, and course reads turn into scans of the whole table.
    db.close()
