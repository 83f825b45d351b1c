#!/usr/bin/env python3
"""`make soak`: two API processes on one PostgreSQL database, many
concurrent single and course bookings (and cancels) at scarce capacity for
a bounded time, then SQL checks of the invariants; then the same with one
process killed with SIGKILL in the middle of course bookings.

Invariants checked after each phase:
- no room holds two active appointments in one session;
- no patient holds two active appointments on one day;
- every course has all its appointments or none, all in one status;
- every booking the API acknowledged (201) is in the database, whole;
- every change stored during the phase (a booking, a course, a cancel) has
  its audit record, which commits in the change's own transaction: also for
  the changes of the process killed with SIGKILL.
Then webhooks: a receiver on loopback takes every event type; once the
phases are over, every event committed after its endpoint was added has
reached it at least once, correctly signed (Standard Webhooks, checked
here with the standard library's HMAC), the killed process's included.
Prints the counts; exits non-zero on any violation or any 5xx answer.
"""

import argparse
import collections
import datetime as dt
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import seed  # noqa: E402

DB = "infusion_soak"
PORTS = (18081, 18082)
WINDOW_DAYS = 21  # bookable days: every clinic day after them is closed
ACTIVE = "('scheduled', 'checked_in', 'completed')"


def psql(url, sql):
    # On standard input: the id lists of a long phase outgrow a command line.
    return bench.run(["psql", "-At", "-q", "-v", "ON_ERROR_STOP=1", url], input=sql,
                     capture_output=True).stdout.strip()


def make_capacity_scarce(url, today):
    """Cancels the seeded bookings after the window and closes those days, so
    every booking competes for the window's rooms."""
    last = today + dt.timedelta(days=WINDOW_DAYS)
    days = seed.clinic_days(last + dt.timedelta(days=1), today + dt.timedelta(weeks=27), set())
    psql(url, f"UPDATE appointments SET status = 'cancelled', cancel_reason = 'soak: window only', "
              f"cancelled_by = 'soak' WHERE date > '{last}' AND status IN {ACTIVE}")
    values = ", ".join(f"('{seed.uid(8007, k)}', '{d}', 'Soak: closed', now())"
                       for k, d in enumerate(days, 1))
    psql(url, f"DELETE FROM closures WHERE date > '{last}'; "
              f"INSERT INTO closures (id, date, reason, created_at) VALUES {values}")
    days = seed.clinic_days(today + dt.timedelta(days=1), last, set(seed.closures(today)))
    booked = int(psql(url, f"SELECT count(*) FROM appointments WHERE status IN {ACTIVE} "
                           f"AND date > '{today}'"))
    return days, seed.ROOMS * 2 * len(days) - booked


def free_window_again(url):
    """Cancels what the last phase booked (seeded ids start with zeros), so
    the next phase starts with the same scarce capacity."""
    psql(url, "UPDATE courses SET cancel_reason = 'soak: reset', cancelled_by = 'soak' "
              "WHERE cancel_reason IS NULL; "
              "UPDATE appointments SET status = 'cancelled', cancel_reason = 'soak: reset', "
              "cancelled_by = 'soak' WHERE status = 'scheduled' AND id NOT LIKE '00000000-%'")


class Tally:
    """What the load saw, shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.outcomes = collections.Counter()
        self.appointments = {}  # acknowledged single bookings: id -> still ours to cancel
        self.courses = {}  # acknowledged courses: id -> infusions
        self.server_errors = []

    def add(self, key):
        with self.lock:
            self.outcomes[key] += 1


class Client(threading.Thread):
    """One connection's worth of load: books singles and courses, cancels
    some of its own bookings, until the deadline. Moves to the other API
    when its own stops answering."""

    def __init__(self, n, ports, token, days, mondays, tally, deadline, courses_only):
        super().__init__(daemon=True)
        self.rng = random.Random(n)
        self.ports = list(ports)
        self.port = self.ports[n % len(self.ports)]
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.days, self.mondays = days, mondays
        self.tally, self.deadline, self.courses_only = tally, deadline, courses_only
        self.mine = []  # (kind, id) this client may cancel
        self.conn = None

    def send(self, path, body):
        for _ in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.request("POST", path, json.dumps(body), self.headers)
                resp = self.conn.getresponse()
                return resp.status, json.loads(resp.read() or b"{}")
            except (OSError, http.client.HTTPException):
                # The process is gone (the kill phase): the request may or
                # may not have committed; it is not counted as acknowledged.
                self.tally.add("connection lost")
                self.conn = None
                if len(self.ports) > 1 and not self.alive(self.port):
                    self.ports.remove(self.port)
                    self.port = self.ports[0]
        return None, {}

    @staticmethod
    def alive(port):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/healthz")
            return c.getresponse().status == 200
        except OSError:
            return False

    def record(self, what, status, body):
        if status is None:
            return
        if status >= 500:
            self.tally.server_errors.append((what, status, body.get("code")))
        key = f"{what}: {status} {body.get('code', '')}".rstrip()
        self.tally.add(key)

    def run(self):
        while time.monotonic() < self.deadline:
            roll = self.rng.random()
            if self.mine and roll < 0.2:
                kind, ident = self.mine.pop(self.rng.randrange(len(self.mine)))
                path = f"/v1/{kind}/{ident}/cancel"
                status, body = self.send(path, {"reason": "soak"})
                self.record(f"cancel {kind}", status, body)
            elif self.courses_only or roll < 0.6:
                patient = seed.patient_id(10 * self.rng.randrange(1000) + 1 + self.rng.randrange(6))
                status, body = self.send("/v1/courses", {
                    "patient_id": patient, "protocol": "pain-5-day",
                    "session": self.rng.choice(["morning", "afternoon"]),
                    "earliest_start": str(self.rng.choice(self.mondays))})
                self.record("book course", status, body)
                if status == 201:
                    with self.tally.lock:
                        self.tally.courses[body["id"]] = len(body["appointments"])
                    self.mine.append(("courses", body["id"]))
            else:
                patient = seed.patient_id(self.rng.randrange(1, seed.PATIENTS + 1))
                status, body = self.send("/v1/appointments", {
                    "patient_id": patient, "date": str(self.rng.choice(self.days)),
                    "session": self.rng.choice(["morning", "afternoon"])})
                self.record("book appointment", status, body)
                if status == 201:
                    with self.tally.lock:
                        self.tally.appointments[body["id"]] = True
                    self.mine.append(("appointments", body["id"]))


def unaudited(url, since):
    """Changes stored since `since` (the database's clock) without their
    audit record: bookings without `book_appointment`/`book_course`, and
    cancelled appointments without `cancel_appointment`/`cancel_course`."""
    audited = collections.defaultdict(set)
    rows = psql(url, f"SELECT operation, records FROM audit_events WHERE status < 300 "
                     f"AND occurred_at >= '{since}'")
    for line in rows.splitlines():
        operation, records = line.split("|", 1)
        audited[operation].update(records.split())
    booked = psql(url, f"SELECT id, course_id IS NOT NULL FROM appointments "
                       f"WHERE created_at >= '{since}'").splitlines()
    courses = psql(url, f"SELECT id FROM courses WHERE created_at >= '{since}'").split()
    cancelled = psql(url, f"SELECT id FROM appointments WHERE status = 'cancelled' "
                          f"AND updated_at >= '{since}'").split()
    missing = {"bookings": 0, "courses": 0, "cancels": 0}
    for line in booked:
        ident, in_course = line.split("|")
        operation = "book_course" if in_course == "t" else "book_appointment"
        missing["bookings"] += f"appointment/{ident}" not in audited[operation]
    missing["courses"] = sum(f"course/{c}" not in audited["book_course"] for c in courses)
    cancels = audited["cancel_appointment"] | audited["cancel_course"]
    missing["cancels"] = sum(f"appointment/{a}" not in cancels for a in cancelled)
    return missing


def violations(url, tally, since):
    """The invariants, counted by SQL."""
    checks = {
        "rooms holding two active appointments in one session": f"""
            SELECT count(*) FROM (SELECT 1 FROM appointments WHERE status IN {ACTIVE}
            GROUP BY room_id, date, session HAVING count(*) > 1) x""",
        "patients holding two active appointments on one day": f"""
            SELECT count(*) FROM (SELECT 1 FROM appointments WHERE status IN {ACTIVE}
            GROUP BY patient_id, date HAVING count(*) > 1) x""",
        "courses with some of their appointments, or in mixed statuses": """
            SELECT count(*) FROM (SELECT c.id FROM courses c
            LEFT JOIN appointments a ON a.course_id = c.id GROUP BY c.id, c.infusions
            HAVING count(a.id) <> c.infusions OR count(DISTINCT a.status) > 1) x""",
    }
    found = {name: int(psql(url, sql)) for name, sql in checks.items()}
    ids = lambda xs: ",".join(f"'{x}'" for x in xs) or "''"  # noqa: E731
    with tally.lock:
        appointments, courses = list(tally.appointments), dict(tally.courses)
    stored = int(psql(url, f"SELECT count(*) FROM appointments WHERE id IN ({ids(appointments)})"))
    found["acknowledged appointments missing"] = len(appointments) - stored
    whole = int(psql(url, f"""SELECT count(*) FROM (SELECT c.id FROM courses c
        JOIN appointments a ON a.course_id = c.id WHERE c.id IN ({ids(courses)})
        GROUP BY c.id, c.infusions HAVING count(a.id) = c.infusions) x"""))
    found["acknowledged courses missing or partial"] = len(courses) - whole
    for what, count in unaudited(url, since).items():
        found[f"{what} stored without their audit record"] = count
    return found


def phase(name, apis, token, days, mondays, seconds, clients, url, kill=None):
    tally = Tally()
    since = psql(url, "SELECT (now() AT TIME ZONE 'UTC')::timestamp(6)")
    deadline = time.monotonic() + seconds
    threads = [Client(n, [a.port for a in apis], token, days, mondays, tally, deadline,
                      courses_only=kill is not None) for n in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    if kill is not None:
        time.sleep(seconds / 2)
        kill.proc.send_signal(signal.SIGKILL)
        kill.proc.wait()
        bench.log(f"{name}: killed the API on port {kill.port} with SIGKILL "
                  f"after {time.monotonic() - started:.1f} s")
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    found = violations(url, tally, since)
    attempts = sum(v for k, v in tally.outcomes.items() if k != "connection lost")
    successes = sum(v for k, v in tally.outcomes.items() if ": 20" in k)
    conflicts = sum(v for k, v in tally.outcomes.items() if ": 409" in k)
    print(f"\n== {name} ({elapsed:.0f} s, {clients} concurrent clients, {len(apis)} API processes)")
    print(f"attempts {attempts}, successes {successes}, conflicts {conflicts}, "
          f"5xx {len(tally.server_errors)}, connection lost {tally.outcomes['connection lost']}")
    for key, count in sorted(tally.outcomes.items()):
        print(f"  {key}: {count}")
    for check, count in found.items():
        print(f"  violations, {check}: {count}")
    total = sum(found.values())
    print(f"violations: {total}")
    return total, len(tally.server_errors)


def webhooks_delivered(url, receiver, since, seconds=150):
    """Waits (the killed process's leases end after 60 s) until every event
    committed since `since` has reached the receiver; the counts."""
    deadline = time.monotonic() + seconds
    while True:
        committed = set(psql(url, f"SELECT id FROM events WHERE occurred_at > '{since}'").split())
        with receiver.lock:
            got = dict(receiver.ids)
            bad = receiver.bad_signatures
        lost = committed - set(got)
        if not lost or time.monotonic() > deadline:
            break
        time.sleep(1)
    duplicates = sum(n - 1 for n in got.values())
    print(f"\n== webhooks: {len(committed)} events committed, {len(committed) - len(lost)} delivered "
          f"at least once, {len(lost)} lost, {duplicates} delivered more than once, "
          f"{bad} with a bad signature")
    return len(lost) + bad


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=40, help="length of each phase")
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections")
    args = parser.parse_args()

    bench.ensure_tools(need_wrk=False)
    bench.ensure_postgres()
    bench.build()
    today = seed.clinic_today()
    with tempfile.TemporaryDirectory(prefix="infusion-soak-") as work:
        url = bench.recreate_pg_database(DB)
        secret = os.urandom(32).hex()
        apis = [bench.Api(url, work, port=port, secret=secret) for port in PORTS]
        receiver = bench.HookReceiver()
        for api in apis:
            api.env["WEBHOOK_ALLOW_PRIVATE"] = "true"
        seed.load_postgres(url, today)
        apis[0].migrate()
        days, free = make_capacity_scarce(url, today)
        mondays = [d for d in days if d.weekday() == 0] or days[:1]
        bench.log(f"{len(days)} bookable days, {free} free room-sessions in them")
        try:
            for api in apis:
                api.start()
            token = apis[0].token
            endpoint = apis[1].post("/v1/webhook-endpoints", {"url": receiver.url})
            receiver.secret = endpoint["secret"]
            hooked_since = psql(url, "SELECT (now() AT TIME ZONE 'UTC')::timestamp(6)")
            results = [phase("phase 1: bookings and cancels on two processes", apis, token,
                             days, mondays, args.seconds, args.clients, url)]
            free_window_again(url)
            results.append(phase("phase 2: course bookings, one process killed with SIGKILL "
                                 "midway", apis, token, days, mondays, args.seconds,
                                 args.clients, url, kill=apis[0]))
            results.append((webhooks_delivered(url, receiver, hooked_since), 0))
        finally:
            for api in apis:
                if getattr(api, "proc", None) and api.proc.poll() is None:
                    api.stop()
    bad = sum(v for v, _ in results)
    errors = sum(e for _, e in results)
    print(f"\nsoak: violations {bad}, 5xx answers {errors}")
    sys.exit(1 if bad or errors else 0)


if __name__ == "__main__":
    main()
