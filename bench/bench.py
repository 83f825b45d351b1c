#!/usr/bin/env python3
"""`make bench`: the API's throughput and latency on a seeded clinic, beside
PostgreSQL's own ceiling (pgbench) measured in the same run on the same
server, then the same scenarios on SQLite. Prints a table and writes
docs/BENCHMARKS.md.

Each PostgreSQL scenario runs interleaved with its ceilings -- pgbench
running the SQL the API issues for it (bench/pgbench/*.sql) -- in rounds:
ceiling, API, ceiling, API, ceiling, API, ceiling. A round's ratio is the
API's rate over the mean of the two ceiling runs around it; the report
gives the median of the rounds' ratios and their spread, so that the drift
of a shared machine falls on both sides alike. BENCH_QUICK=1 runs one round
(ceiling, API, ceiling), and one round of the other sections' comparisons.

Load: wrk (Debian's package; installed here when missing and root), 2
threads and 16 connections; pgbench with 16 clients. Everything -- the
load tool, the API and PostgreSQL -- shares this machine's cores, and the
report says so.
"""

import argparse
import base64
import collections
import datetime as dt
import hashlib
import hmac
import http.client
import http.server
import json
import os
import platform
import re
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import seed  # noqa: E402

BINARY = ROOT / "target" / "release" / "infusion-api"
SMART_BENCH = ROOT / "target" / "release" / "examples" / "smart_bench"
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
PG_DB = "infusion_bench"
PORT = 18080
THREADS, CONNECTIONS = 2, 16
# The API's defaults follow the cores: its workers, and SQLite's connections
# (config::default_pool_size).
CORES = len(os.sched_getaffinity(0))

# BENCH_QUICK=1: one round of each comparison, for a check of the harness
# (its report says so; the committed one comes from a full run).
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")

# pgbench's ceilings: name, what the report calls it, its short name, and
# pgbench's arguments.
CEILINGS = {
    "select-only": ("pgbench select-only (`-S`)", "pgbench -S", ["-S"]),
    **{kind: (f"bench/pgbench/{kind}.sql", f"pgbench {kind}.sql",
              ["-f", f"bench/pgbench/{kind}.sql"])
       for kind in ("patient", "appointments", "availability")},
    "booking": ("bench/pgbench/booking.sql (a booking and its cancel)", "pgbench booking.sql",
                ["-f", "bench/pgbench/booking.sql"]),
    "keyed": ("booking.sql with an Idempotency-Key's statements (keyed.sql, written from it)",
              "pgbench keyed.sql", ["-f", str(ROOT / "target" / "bench" / "keyed.sql")]),
    "course": ("bench/pgbench/course.sql (a 5-infusion course and its cancel)",
               "pgbench course.sql", ["-f", "bench/pgbench/course.sql"]),
}

# What an Idempotency-Key adds to each transaction of booking.sql, as the
# API issues it on PostgreSQL (read off the server's log): the key's lock
# (1503 is KEY_LOCKS in src/store/locks.rs) after BEGIN, and before COMMIT
# its answer, stored with a body of the size of the API's (an appointment,
# about 700 characters; pgbench would read the colons of the API's JSON as
# variables). keyed_sql() writes keyed.sql from booking.sql at each run, so
# that the two never drift apart.
KEY_LOCK = "SELECT pg_try_advisory_xact_lock(1503, :key_hash) AS locked;"
KEY_ANSWER = (
    'INSERT INTO "idempotency_keys" ("caller", "idempotency_key", "fingerprint", "status", '
    '"location", "body", "patient_ids", "records", "created_at", "expires_at") VALUES '
    "('admin-pgbench', gen_random_uuid()::text, repeat('f', 64), {status}, {location}, "
    "repeat('x', 700), '00000000-0000-4000-8000-' || lpad(:p::text, 12, '0'), "
    "'appointment/' || :aid::text, now(), now() + interval '24 hours') ON CONFLICT DO NOTHING;")

# A scenario: its wrk script, the ceilings it is held to with the target
# ratio to each (issue 17; PostgreSQL, 16 connections, median of the
# rounds; None: measured, held to no target), how many wrk requests make
# one unit of a ceiling (a booking and its cancel are two requests, one
# pgbench transaction), and the most its p99 may be, as a multiple of its
# ceiling's (writes).
# `keys`: every write sends an Idempotency-Key of its own (BENCH_KEYS=1).
Scenario = collections.namedtuple("Scenario", "name script ceilings per_unit p99_target keys",
                                  defaults=(False,))
SCENARIOS = [
    Scenario("GET /v1/patients/{id}", "patient.lua",
             (("select-only", 0.45), ("patient", 0.70)), 1, None),
    Scenario("GET /v1/appointments?patient_id=", "appointments.lua",
             (("appointments", 0.60),), 1, None),
    Scenario("GET /v1/availability (4 weeks)", "availability.lua",
             (("availability", 0.60),), 1, None),
    Scenario("POST /v1/appointments + cancel", "book_cancel.lua", (("booking", 0.70),), 2, 1.5),
    Scenario("POST /v1/appointments + cancel, Idempotency-Keys", "book_cancel.lua",
             (("booking", 0.70), ("keyed", None)), 2, 1.5, True),
    Scenario("POST /v1/courses/plan (10 infusions)", "plan.lua", (), 1, None),
    Scenario("POST /v1/courses (5 infusions) + cancel", "course_cancel.lua",
             (("booking", 0.50), ("course", None)), 2, 1.5),
]
PLAN_ONE = "POST /v1/courses/plan, 1 connection"
PLAN_P50_TARGET_MS = 2.0  # PostgreSQL, the median of the runs' p50, as seeded
SQLITE_BOOKING_P99_TARGET_MS = 20.0


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


def log(msg):
    print(f"[bench] {msg}", flush=True)


# --- tools and servers -------------------------------------------------------

def ensure_tools(need_wrk=True):
    if need_wrk and not shutil.which("wrk"):
        log("wrk is missing: installing Debian's package")
        if os.geteuid() != 0 or subprocess.run(["apt-get", "install", "-y", "-q", "wrk"]).returncode:
            sys.exit("install wrk first: apt-get install wrk")
    for tool in ("pgbench", "psql", "pg_isready"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: install PostgreSQL's client tools")


def ensure_postgres():
    if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode:
        log("PostgreSQL is down: starting it")
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"])
    for _ in range(30):
        if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode == 0:
            return
        time.sleep(1)
    sys.exit("PostgreSQL did not start")


def recreate_pg_database(name=PG_DB):
    run(["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{PG_SERVER}/postgres",
         "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", "-c", f"CREATE DATABASE {name}"])
    return f"{PG_SERVER}/{name}"


class Api:
    """The release binary serving one database, with the time it took to
    answer /readyz and its peak resident memory."""

    def __init__(self, database_url, workdir, port=PORT, secret=None):
        self.port = port
        # One admin token sends every request (~15k/s, 900k a minute): the
        # per-caller limit stays on, so its cost is measured, at its highest
        # quota, so it never refuses (make soak uses this class too).
        # The API's own signing key, for the access tokens of backend
        # clients (SMART Backend Services): the token endpoint is on.
        signing_key = Path(workdir) / "signing-key.pem"
        if not signing_key.exists():
            run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", str(signing_key)], capture_output=True)
        self.env = dict(os.environ, DATABASE_URL=database_url, BIND_ADDR=f"127.0.0.1:{port}",
                        JWT_SECRET=secret or secrets.token_hex(32), APP_ENV="production",
                        RATE_LIMIT_PER_MINUTE="10000000", SIGNING_KEY_FILE=str(signing_key),
                        PUBLIC_URL=f"http://127.0.0.1:{port}",
                        ACCESS_TOKEN_LIFETIME_SECONDS="3600",
                        # The webhook scenario's receiver is on loopback.
                        WEBHOOK_ALLOW_PRIVATE="true")
        self.env.pop("RUST_LOG", None)
        self.migrate()
        self.log = open(Path(workdir) / f"api-{port}.log", "w")
        self.token = run([str(BINARY), "token", "--role", "admin"], env=self.env,
                         capture_output=True).stdout.strip()

    def migrate(self):
        """`infusion-api migrate`: the schema, then what SQL alone cannot
        write (the name keys of patients the seed loads by SQL), so that
        serving starts with nothing left to write."""
        run([str(BINARY), "migrate"], env=self.env, stdout=subprocess.DEVNULL)

    def start(self):
        try:
            http.client.HTTPConnection("127.0.0.1", self.port, timeout=1).request("GET", "/")
            sys.exit(f"something already listens on port {self.port}: stop it first")
        except OSError:
            pass
        started = time.monotonic()
        self.proc = subprocess.Popen([str(BINARY), "serve"], env=self.env,
                                     stdout=self.log, stderr=self.log)
        while time.monotonic() - started < 30:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    self.ready_ms = (time.monotonic() - started) * 1000
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                sys.exit(f"the API exited: see {self.log.name}")
            time.sleep(0.002)
        sys.exit("the API was not ready within 30 s")

    def peak_rss_mb(self):
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024

    def post(self, path, body):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                     data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            return json.load(resp)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)

    def tidy(self):
        """Cancels, through the API, what a write run left booked: the
        bookings a wrk thread still had queued for cancelling when the run
        stopped (bench/wrk/common.lua). Left, each would hold its room, and
        its patient's next course would be refused (course_already_active)
        in every later run: cheap answers, counted as requests, more of
        them from run to run. Returns how many it cancelled."""
        first = seed.patient_id(seed.FREE_PATIENTS[0])
        queries = (("courses", "SELECT id FROM courses WHERE cancel_reason IS NULL "
                               f"AND patient_id >= '{first}'"),
                   ("appointments", "SELECT id FROM appointments WHERE status = 'scheduled' "
                                    f"AND course_id IS NULL AND patient_id >= '{first}'"))
        url = self.env["DATABASE_URL"]
        cancelled = 0
        time.sleep(0.5)  # the requests in flight when wrk stopped, answered
        for kind, query in queries:
            if url.startswith("postgres"):
                ids = run(["psql", "-At", url, "-c", query], capture_output=True).stdout.split()
            else:
                with sqlite3.connect(f"file:{url}?mode=ro", uri=True) as db:
                    ids = [row[0] for row in db.execute(query)]
            for id in ids:
                try:
                    self.post(f"/v1/{kind}/{id}/cancel", {"reason": "benchmark"})
                    cancelled += 1
                except urllib.error.HTTPError as refused:
                    if refused.code != 409:  # 409: cancelled meanwhile
                        raise
        return cancelled


def keyed_sql():
    """Writes the keyed writes' ceiling (see KEY_LOCK) from booking.sql."""
    answers = iter([("201", "'/v1/appointments/' || :aid::text"), ("200", "NULL")])
    out = ["-- Written by bench/bench.py (keyed_sql) from bench/pgbench/booking.sql.",
           "\\set key_hash random(-2147483648, 2147483647)"]
    for line in (ROOT / "bench" / "pgbench" / "booking.sql").read_text().splitlines():
        if line == "COMMIT;":
            status, location = next(answers)
            out.append(KEY_ANSWER.format(status=status, location=location))
        out.append(line)
        if line == "BEGIN;":
            out.append(KEY_LOCK)
    path = Path(CEILINGS["keyed"][2][1])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")


def build():
    log("building the release binary")
    run(["cargo", "build", "--release", "-q", "--bin", "infusion-api", "--example", "smart_bench"],
        cwd=ROOT)


# --- the clinic's calendar for the load scripts --------------------------------

def calendar(today):
    closed = set(seed.closures(today))
    horizon = today + dt.timedelta(weeks=26)
    days = seed.clinic_days(today + dt.timedelta(days=3), horizon - dt.timedelta(days=28), closed)
    mondays = [d for d in days if d.weekday() == 0]
    windows = [f"from={d}&to={d + dt.timedelta(days=27)}" for d in days[:60]]
    return days, mondays, windows


def seed_courses(api, mondays, count=100):
    """Courses booked through the API, on top of the seeded appointments."""
    booked = 0
    for k in range(count):
        patient = seed.patient_id(10 * k + 1)  # n % 10 == 1: chronic pain, with history
        try:
            api.post("/v1/courses", {"patient_id": patient, "protocol": "pain-5-day",
                                     "session": "morning" if k % 2 else "afternoon",
                                     "earliest_start": str(mondays[k % len(mondays)])})
            booked += 1
        except urllib.error.HTTPError:
            pass
    return booked


# --- measuring ---------------------------------------------------------------

def to_ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


# The scripts that book (and cancel what they booked): after each of their
# runs, `Api.tidy` cancels what was still queued for cancelling.
BOOKING_SCRIPTS = {"book_cancel.lua", "course_cancel.lua"}


def wrk(script, env, seconds, connections=CONNECTIONS, threads=THREADS, api=None):
    """One wrk run; a booking script's leaves nothing booked when `api` is
    given (`Api.tidy`)."""
    out = run(["wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
               "-s", f"bench/wrk/{script}", f"http://127.0.0.1:{PORT}"],
              env=env, capture_output=True, cwd=ROOT).stdout
    if api is not None and script in BOOKING_SCRIPTS:
        api.tidy()
    latency = dict(re.findall(r"^ +(50|99)% +(\S+) *$", out, re.M))
    if len(latency) != 2:
        sys.exit(f"wrk's output was not understood:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)$", out, re.M)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": to_ms(latency["50"]), "p99": to_ms(latency["99"]), "requests": total,
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": errors.group(1) if errors else ""}


def pgbench(url, args, seconds, workdir):
    prefix = Path(workdir) / f"pgbench-{time.monotonic_ns()}"
    done = subprocess.run(["pgbench", "-n", "-M", "prepared", "-c", str(CONNECTIONS),
                           "-j", str(THREADS), "-T", str(seconds), "-l",
                           f"--log-prefix={prefix}", *args, url],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        sys.exit(f"pgbench {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    out = done.stdout
    latencies = []
    for part in Path(workdir).glob(f"{prefix.name}*"):
        latencies += [int(line.split()[2]) / 1000 for line in part.read_text().splitlines()]
        part.unlink()
    latencies.sort()
    return {"rps": float(re.search(r"tps = ([\d.]+)", out).group(1)),
            "p50": statistics.median(latencies),
            "p99": latencies[int(len(latencies) * 0.99)], "requests": len(latencies),
            "failed": int(re.search(r"number of failed transactions: (\d+)", out).group(1))}


def measure(api, env, seconds):
    """One pass of each scenario (SQLite), after a 2 s warm-up."""
    results = {}
    for s in SCENARIOS:
        name, script, scenario_env = s.name, s.script, dict(env, BENCH_KEYS=str(int(s.keys)))
        wrk(script, scenario_env, 2, api=api)  # warm-up: caches, pools, the planner's data
        results[name] = wrk(script, scenario_env, seconds, api=api)
        log(f"{name}: {results[name]['rps']:.0f} req/s, p50 {results[name]['p50']:.2f} ms, "
            f"p99 {results[name]['p99']:.2f} ms, non-2xx {results[name]['non_2xx']}")
    plan = wrk("plan.lua", env, seconds, connections=1, threads=1)
    results[PLAN_ONE] = plan
    log(f"course plan, one connection: p50 {plan['p50']:.2f} ms")
    return results


def spread(values):
    return (min(values), max(values))


def summary(runs):
    """The median of each figure over `runs` (wrk's or pgbench's), the spread
    of the rates, and the non-2xx answers (or failed transactions) of all."""
    out = {key: statistics.median(r[key] for r in runs) for key in ("rps", "p50", "p99")}
    out["spread"] = spread([r["rps"] for r in runs])
    out["runs"] = runs
    for key in ("non_2xx", "failed"):
        if key in runs[0]:
            out[key] = sum(r[key] for r in runs)
    return out


def settle(url):
    """VACUUM ANALYZE: the database at rest, as autovacuum keeps a clinic's,
    so that one scenario's churn (the course scenario and its ceiling book
    and cancel tens of thousands of appointments) does not fall on the
    next one's figures."""
    run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", "VACUUM ANALYZE"])


def measure_pg(api, env, seconds, rounds, url, workdir, plan_one=True):
    """Each scenario with ceilings in `rounds` interleaved rounds (its
    ceilings, the API, its ceilings, ...: one more ceiling run than API
    runs), after a 2 s warm-up of the API. A round's ratio is the API's rate
    (per unit of the ceiling) over the mean of the ceiling runs just before
    and after it; its p99 ratio likewise, for the writes. The API stays up,
    idle, while pgbench runs; after each of its write runs, `api` cancels
    what the run left booked. First (`plan_one`), the course plan on one
    connection, on the database as seeded, before any scenario writes to it.
    Returns the scenarios' results and every ceiling run, by ceiling."""
    results, ceiling_runs = {}, collections.defaultdict(list)
    all_env = env
    if plan_one:
        # A request's own time, without queueing, with the seeded
        # appointments (issue 17's target), after a warm-up.
        settle(url)
        wrk("plan.lua", all_env, 2, connections=1, threads=1)
        plan = summary([wrk("plan.lua", all_env, seconds, connections=1, threads=1)
                        for _ in range(rounds)])
        plan["p50_spread"] = spread([r["p50"] for r in plan["runs"]])
        results[PLAN_ONE] = plan
        log(f"course plan, one connection: p50 {plan['p50']:.2f} ms (median of {rounds})")
    for s in SCENARIOS:
        env = dict(all_env, BENCH_KEYS=str(int(s.keys)))
        settle(url)
        wrk(s.script, env, 2, api=api)  # warm-up: caches, pools, the planner's data
        if not s.ceilings:
            results[s.name] = summary([wrk(s.script, env, seconds, api=api)])
            log(f"{s.name}: {results[s.name]['rps']:.0f} req/s")
            continue
        mine = {kind: [] for kind, _ in s.ceilings}
        api_runs = []
        for k in range(rounds + 1):
            for kind in mine:
                mine[kind].append(pgbench(url, CEILINGS[kind][2], seconds, workdir))
            if k < rounds:
                api_runs.append(wrk(s.script, env, seconds, api=api))
        r = summary(api_runs)
        r["ceilings"] = {}
        for kind, target in s.ceilings:
            ceiling = mine[kind]
            ceiling_runs[kind] += ceiling
            around = [(ceiling[i], ceiling[i + 1]) for i in range(rounds)]
            ratios = [a["rps"] / s.per_unit / ((b["rps"] + c["rps"]) / 2)
                      for a, (b, c) in zip(api_runs, around)]
            r["ceilings"][kind] = {"tps": statistics.median(c["rps"] for c in ceiling),
                                   "ratio": statistics.median(ratios), "spread": spread(ratios),
                                   "target": target}
            if s.p99_target and target is not None:
                # wrk's p99 is per request, pgbench's per transaction (a
                # booking and its cancel: two requests' work): the API's,
                # doubled, over pgbench's (see the report's note).
                p99s = [s.per_unit * a["p99"] / ((b["p99"] + c["p99"]) / 2)
                        for a, (b, c) in zip(api_runs, around)]
                r["p99_ratio"] = {"ceiling": kind, "ratio": statistics.median(p99s),
                                  "spread": spread(p99s), "target": s.p99_target,
                                  "pgbench_p99": statistics.median(c["p99"] for c in ceiling)}
        if len(s.ceilings) == 2 and s.ceilings[1][1] is None:
            # pgbench alone: the scenario's own SQL (second) over the SQL its
            # target names (first), run by run, the two run side by side.
            (held, target), (own, _) = s.ceilings
            alone = [o["rps"] / h["rps"] for h, o in zip(mine[held], mine[own])]
            r["own_sql"] = {"held": held, "own": own, "target": target,
                            "ratio": statistics.median(alone), "spread": spread(alone)}
        results[s.name] = r
        log(f"{s.name}: {r['rps']:.0f} req/s (median of {rounds}), p50 {r['p50']:.2f} ms, "
            f"p99 {r['p99']:.2f} ms, non-2xx {r['non_2xx']}; " + "; ".join(
                f"{c['ratio']:.0%} of {kind} ({c['spread'][0]:.0%}–{c['spread'][1]:.0%}, "
                f"{c['tps']:.0f} tps)" for kind, c in r["ceilings"].items()))
    return results, {kind: summary(runs) for kind, runs in ceiling_runs.items()}


class Client:
    """A backend client registered with the CLI, signing ES384 assertions
    with a key made here (bench/../examples/smart_bench.rs)."""

    def __init__(self, api, workdir):
        self.api, self.work = api, Path(workdir)
        self.key = self.work / f"client-{api.port}.pem"
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384",
             "-out", str(self.key)], capture_output=True)
        jwks = self.work / f"client-{api.port}.jwks.json"
        jwks.write_text(run([str(SMART_BENCH), "jwks", str(self.key), "bench-1"],
                            capture_output=True).stdout)
        self.id = run([str(BINARY), "client", "register", "--name", "make bench", "--jwks", str(jwks),
                       "--scope", "system/Patient.rs"], env=api.env, capture_output=True).stdout.strip()
        self.aud = f"http://127.0.0.1:{api.port}/oauth/token"

    def assertions(self, n, name):
        path = self.work / name
        path.write_text(run([str(SMART_BENCH), "assertions", str(self.key), "bench-1", self.id,
                             self.aud, str(n)], capture_output=True).stdout)
        return path

    def access_token(self):
        assertion = self.assertions(1, "one.jwt").read_text().strip()
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials", "scope": "system/Patient.rs",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}).encode()
        req = urllib.request.Request(self.aud, data=form, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req) as resp:
            return json.load(resp)["access_token"]


def token_scenarios(rounds):
    return [f"GET /v1/patients/{{id}}, HS256 token, median of {rounds}",
            f"GET /v1/patients/{{id}}, ES256 token, median of {rounds}",
            "POST /oauth/token (ES384 assertion)"]


def measure_tokens(api, env, seconds, workdir, rounds=3):
    """The token endpoint, and a patient read with an ES256 access token
    (the same script as the HS256 row, another token)."""
    client = Client(api, workdir)
    results = {}
    token_env = dict(env, BENCH_TOKEN=client.access_token())
    wrk("patient.lua", token_env, 2)
    # The same read with each token, interleaved three times (HS256, ES256,
    # HS256, ...): the medians, so that the run's drift (a busy neighbour,
    # tables grown by the write scenarios) falls on both alike.
    medians = interleaved({"HS256": ("patient.lua", env), "ES256": ("patient.lua", token_env)},
                          seconds, rounds)
    for kind, median in medians.items():
        results[f"GET /v1/patients/{{id}}, {kind} token, median of {rounds}"] = median
    # Enough assertions for the fastest rate seen on this kind of machine,
    # several times over; the warm-up has its own.
    warm = dict(env, BENCH_THREADS=str(THREADS),
                BENCH_ASSERTIONS=str(client.assertions(10_000, "warm.jwt")))
    wrk("token.lua", warm, 2)
    timed = dict(env, BENCH_THREADS=str(THREADS),
                 BENCH_ASSERTIONS=str(client.assertions(2_500 * (seconds + 2), "timed.jwt")))
    results["POST /oauth/token (ES384 assertion)"] = wrk("token.lua", timed, seconds)
    for name, r in results.items():
        log(f"{name}: {r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, "
            f"non-2xx {r['non_2xx']}")
    return results


class HookReceiver:
    """A webhook receiver on loopback, answering 204. For each delivery it
    keeps its `webhook-id`, how long after the event's time (set in the
    change's transaction) it arrived, and, once `secret` is set, whether its
    signature verified (Standard Webhooks, with the standard library's HMAC).
    `make bench` reads the latencies, `make soak` the ids and signatures."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ids = collections.Counter()
        self.latencies = []
        self.bad_signatures = 0
        self.secret = None
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            # Connections kept open, as a receiver behind a load balancer does.
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                arrived = dt.datetime.now(dt.timezone.utc)
                occurred = dt.datetime.fromisoformat(
                    json.loads(body)["timestamp"].replace("Z", "+00:00"))
                msg_id = self.headers["webhook-id"]
                good = receiver.verifies(msg_id, self.headers["webhook-timestamp"], body,
                                         self.headers["webhook-signature"])
                with receiver.lock:
                    receiver.ids[msg_id] += 1
                    receiver.latencies.append((arrived - occurred).total_seconds() * 1000)
                    receiver.bad_signatures += not good
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verifies(self, msg_id, timestamp, body, signatures):
        """Whether one of `signatures` is the secret's over id.timestamp.body
        (true while no secret is set)."""
        if self.secret is None:
            return True
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{msg_id}.{timestamp}.".encode() + body
        expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        return expected in signatures.split(" ")


def pending_deliveries(url):
    query = "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"
    return int(run(["psql", "-At", url, "-c", query], capture_output=True).stdout)


def measure_webhooks(api, env, seconds, url, rounds=2):
    """Booking + cancel without an endpoint and with one taking every event,
    interleaved (off, on, off, on): the medians, and the delivery latency from
    the change to its receipt, every delivery of the "on" rounds waited for
    before the endpoint is disabled."""
    receiver = HookReceiver()
    endpoint = api.post("/v1/webhook-endpoints", {"url": receiver.url})
    toggle = lambda action: api.post(f"/v1/webhook-endpoints/{endpoint['id']}/{action}", {})  # noqa: E731
    toggle("disable")
    runs = {"off": [], "on": []}
    for _ in range(rounds):
        runs["off"].append(wrk("book_cancel.lua", env, seconds, api=api))
        toggle("enable")
        runs["on"].append(wrk("book_cancel.lua", env, seconds, api=api))
        waited = time.monotonic()
        time.sleep(1.5)  # the last events dispatched
        while pending_deliveries(url) and time.monotonic() - waited < 120:
            time.sleep(0.5)
        log(f"webhooks: backlog delivered {time.monotonic() - waited:.1f} s after the load ended")
        toggle("disable")
    latencies = sorted(receiver.latencies)
    result = {kind: {"rps": statistics.median(r["rps"] for r in rs),
                     "spread": (min(r["rps"] for r in rs), max(r["rps"] for r in rs))}
              for kind, rs in runs.items()}
    result["rounds"] = rounds
    result["deliveries"] = len(latencies)
    result["undelivered"] = pending_deliveries(url)
    result["p50"] = latencies[len(latencies) // 2] if latencies else float("nan")
    result["p99"] = latencies[int(len(latencies) * 0.99)] if latencies else float("nan")
    log(f"webhooks: booking {result['off']['rps']:.0f} req/s off, {result['on']['rps']:.0f} on; "
        f"{len(latencies)} deliveries, p50 {result['p50']:.0f} ms, p99 {result['p99']:.0f} ms")
    return result


def interleaved(scenarios, seconds, rounds=3):
    """Each of `scenarios` ({name: (script, env)}) run in turn, `rounds`
    times: the median run of each, with the spread of its rates."""
    runs = {name: [] for name in scenarios}
    for _ in range(rounds):
        for name, (script, env) in scenarios.items():
            runs[name].append(wrk(script, env, seconds))
    medians = {}
    for name, rs in runs.items():
        median = sorted(rs, key=lambda r: r["rps"])[len(rs) // 2]
        median["spread"] = (min(r["rps"] for r in rs), max(r["rps"] for r in rs))
        medians[name] = median
    return medians


def measure_fhir(env, seconds, rounds=3):
    """The FHIR facade's Patient read beside /v1's, interleaved `rounds`
    times (/v1, FHIR, /v1, ...): the medians and their spreads."""
    wrk("fhir_patient.lua", env, 2)
    result = interleaved({"v1": ("patient.lua", env), "fhir": ("fhir_patient.lua", env)},
                         seconds, rounds)
    result["rounds"] = rounds
    log(f"FHIR Patient read {result['fhir']['rps']:.0f} req/s, /v1 {result['v1']['rps']:.0f} "
        f"({result['fhir']['rps'] / result['v1']['rps']:.0%})")
    return result


def verify_cost(env):
    """Microseconds per verification, without the verified-token cache."""
    return json.loads(run([str(SMART_BENCH), "verify-cost", "20000"], env=env,
                          capture_output=True).stdout)


def counts(url):
    query = ("SELECT (SELECT count(*) FROM patients), (SELECT count(*) FROM rooms), "
             "(SELECT count(*) FROM appointments), (SELECT count(*) FROM courses), "
             "(SELECT count(*) FROM closures)")
    return run(["psql", "-At", "-F", " ", url, "-c", query], capture_output=True).stdout.split()


# --- the report --------------------------------------------------------------

def machine():
    cpu = re.search(r"model name\s+: (.*)", Path("/proc/cpuinfo").read_text())
    mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    pg = run(["psql", "-At", f"{PG_SERVER}/postgres", "-c", "SHOW server_version"],
             capture_output=True).stdout.strip()
    # The server's settings that bear on the figures (this machine's CI
    # configuration turns autovacuum off: each scenario starts on a
    # vacuumed database, `settle`).
    settings = ", ".join(run(["psql", "-At", "-F", " ", f"{PG_SERVER}/postgres", "-c",
                              "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
                              "('autovacuum', 'fsync', 'synchronous_commit', 'shared_buffers') "
                              "ORDER BY name"], capture_output=True).stdout.split("\n")[:-1])
    rustc = run(["rustc", "--version"], capture_output=True).stdout.strip()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("[")[0]
    commit = run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, cwd=ROOT).stdout.strip()
    return (f"{os.cpu_count()} cores ({cpu.group(1) if cpu else 'unknown CPU'}), "
            f"{mem / 1024 / 1024:.0f} GiB, Linux {platform.release()}; PostgreSQL {pg} "
            f"({settings}); {rustc}; {wrk_version.strip()}; commit {commit}")


def targets(pg, sqlite):
    """Issue 17's targets: (what, figure, met), PostgreSQL's from the medians
    of the rounds."""
    out = []
    for s in SCENARIOS:
        r = pg[s.name]
        for kind, target in s.ceilings:
            if target is None:
                continue
            c = r["ceilings"][kind]
            out.append((f"PostgreSQL {s.name} ≥ {target:.0%} of {CEILINGS[kind][1]}:",
                        f"{c['ratio']:.0%} ({c['spread'][0]:.0%}–{c['spread'][1]:.0%})",
                        c["ratio"] >= target))
        if s.p99_target:
            q = r["p99_ratio"]
            out.append((f"PostgreSQL {s.name} p99, 2 × per request ÷ "
                        f"{CEILINGS[q['ceiling']][1]}'s per transaction ≤ {q['target']:g}:",
                        f"{q['ratio']:.2f} ({q['spread'][0]:.2f}–{q['spread'][1]:.2f})",
                        q["ratio"] <= q["target"]))
    plan = pg[PLAN_ONE]
    out.append((f"PostgreSQL {PLAN_ONE}, median ≤ {PLAN_P50_TARGET_MS:g} ms:",
                f"{plan['p50']:.2f} ms ({plan['p50_spread'][0]:.2f}–{plan['p50_spread'][1]:.2f})",
                plan["p50"] <= PLAN_P50_TARGET_MS))
    booking = sqlite[SCENARIOS[3].name]
    out.append((f"SQLite {SCENARIOS[3].name} p99 ≤ {SQLITE_BOOKING_P99_TARGET_MS:g} ms:",
                f"{booking['p99']:.2f} ms", booking["p99"] <= SQLITE_BOOKING_P99_TARGET_MS))
    return out


def mark(met):
    return "✓" if met else "✗"


def report(pg, sqlite, ceilings, startup, rss, seeded, seconds, rounds, verification, hooks,
           fhir):
    def percent(lo_hi):
        return f"{lo_hi[0]:.0%}–{lo_hi[1]:.0%}"

    def rate_spread(r):
        return f"{r['spread'][0]:,.0f}–{r['spread'][1]:,.0f}"

    if rounds == 1:
        method = (f"PostgreSQL's figures come from one round (ceiling, API, ceiling), each run "
                  f"{seconds} s.")
    else:
        method = (f"PostgreSQL's figures are the medians of {rounds} interleaved rounds (ceiling, "
                  f"API, ceiling, …: {rounds + 1} ceiling runs, {rounds} of the API), each run "
                  f"{seconds} s; every ratio is the median of the rounds' ratios, with their "
                  "spread (lowest–highest).")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC). "
        f"{method} Run it again to compare a change.",
        "",
    ]
    if QUICK:
        lines += ["**A quick run (`BENCH_QUICK=1`): one round of each comparison, for checking the "
                  "harness. Its figures do not hold; the committed report comes from a full run.**",
                  ""]
    lines += [
        f"**Machine:** {machine()}. The load tool, the API and PostgreSQL share these cores, "
        "so every figure includes the load tool's own CPU.",
        "",
        "**Data:** " + ", ".join(f"{n} {what}" for n, what in zip(
            seeded, ["patients", "rooms", "appointments", "courses", "closures"])) +
        " (bench/seed.py: all patients ready; the horizon 25% booked; the rest history and "
        "cancellations).",
        "",
        f"**Load:** wrk, {THREADS} threads, {CONNECTIONS} connections, {seconds} s per run after "
        "a 2 s warm-up of each scenario; the API on its defaults (database connections: 8 on "
        f"PostgreSQL, {min(CORES + 1, 8)} on SQLite; {CORES} workers; request log on). pgbench: "
        "16 clients, 2 threads, prepared statements, on the "
        f"same database, {seconds} s per run, while the API is up and idle.",
        "",
        "## PostgreSQL: the API against pgbench",
        "",
        "Each scenario's ceiling is pgbench running the SQL the API issues for it, read off the "
        "server's log (`bench/pgbench/*.sql`; each file says what it leaves out and why that makes "
        "the ceiling no lower); the patient read is held to pgbench's select-only as well. A "
        "round's ratio is the API's rate over the mean of the two ceiling runs around it. "
        "Each scenario starts on a vacuumed database (`VACUUM ANALYZE`), so that no scenario "
        "pays for the dead rows of the writes before it.",
        "",
        "| scenario | requests/s | p50 ms | p99 ms | non-2xx | against | ceiling tps | ratio | "
        "spread | target |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for s in SCENARIOS:
        r = pg[s.name]
        api_cells = (f"{r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['non_2xx']}")
        if not s.ceilings:
            lines.append(f"| {s.name} | {api_cells} | — | — | — | — | — |")
        for i, (kind, target) in enumerate(s.ceilings):
            c = r["ceilings"][kind]
            first = f"{s.name} | {api_cells}" if i == 0 else " | | | | "
            held = "—" if target is None else f"≥ {target:.0%} {mark(c['ratio'] >= target)}"
            lines.append(f"| {first} | {CEILINGS[kind][1]} | {c['tps']:,.0f} | {c['ratio']:.0%} | "
                         f"{percent(c['spread'])} | {held} |")
    plan = pg[PLAN_ONE]
    lines.append(f"| {PLAN_ONE} | {plan['rps']:,.0f} | {plan['p50']:.2f} | {plan['p99']:.2f} | "
                 f"{plan['non_2xx']} | — | — | — | p50 {plan['p50_spread'][0]:.2f}–"
                 f"{plan['p50_spread'][1]:.2f} | median ≤ {PLAN_P50_TARGET_MS:g} ms "
                 f"{mark(plan['p50'] <= PLAN_P50_TARGET_MS)} |")
    alone = [(s.name, pg[s.name]["own_sql"]) for s in SCENARIOS
             if "own_sql" in pg.get(s.name, {})]
    lines += [
        "",
        "A booking + cancel row counts both requests; its ratio compares pairs per second "
        "with pgbench's transactions, each of which is one booking and its cancel. The course "
        "row likewise: a 5-infusion course booked and cancelled, held to the same pgbench "
        "figure, and measured against pgbench running the course's own SQL (course.sql), "
        "which says how much of the gap is the API's and how much the course's five "
        "infusions' own work. Non-2xx answers under booking load are conflicts (409) the "
        "clinic's rules produce, such as a session already full on the day drawn (slot_full) or "
        "two courses racing for a session's last room (no_capacity_for_series); the column "
        "counts them over all of a scenario's runs. Each write run cancels its bookings in the "
        "order they were made, and what is still booked when it stops is cancelled before the "
        "next run, so no run inherits another's. The course plan has no ceiling: on 16 connections "
        "it runs once; on one connection, a request's own time without queueing, it runs "
        f"{rounds} times before any other scenario, on the database as seeded (the target "
        "names the seeded appointments: the write scenarios add about 190,000 booked and "
        "cancelled ones), and its median is the median of the runs' p50. The Idempotency-Keys "
        "row is the "
        "same booking and cancel with everything on: each write also sends a key of its own, "
        "whose answer is kept in the write's transaction (the audit record and the change "
        "event are always written); its ceiling is the same booking.sql, without the keys' "
        "statements, so the ceiling is no lower. It is measured against booking.sql with "
        "the keys' statements as well (keyed.sql, which bench.py writes from booking.sql: "
        "the key's lock after each BEGIN, and before each COMMIT its answer, stored with a "
        "body of the size of the API's).",
        *(f"\n**{name}, without the API.** In the same rounds, pgbench running "
          f"{o['own']}.sql reached {o['ratio']:.0%} ({percent(o['spread'])}) of the rate of "
          f"{o['held']}.sql: the scenario's own SQL alone, against the {o['target']:.0%} the "
          "API is held to."
          for name, o in alone),
        "",
        "**Write latency.** wrk's p99 is per request and pgbench's per transaction, here a "
        "booking and its cancel, two requests' work, so the ratio held to its target is twice "
        "the API's per-request p99 over pgbench's per-transaction p99 in the same round, which "
        "leans towards pgbench: the API's p99 mixes the bookings with their cancels, which do "
        "less, and counts that tail twice.",
        "",
        "| scenario | API p99 ms (per request) | pgbench p99 ms (per transaction) | "
        "2 × API ÷ pgbench | spread | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for s in SCENARIOS:
        if s.p99_target:
            r, q = pg[s.name], pg[s.name]["p99_ratio"]
            lines.append(f"| {s.name} | {r['p99']:.2f} | {q['pgbench_p99']:.2f} | {q['ratio']:.2f} | "
                         f"{q['spread'][0]:.2f}–{q['spread'][1]:.2f} | ≤ {q['target']:g} "
                         f"{mark(q['ratio'] <= q['target'])} |")
    lines += [
        "",
        "The ceilings, over all their runs (the booking script serves both write scenarios):",
        "",
        "| pgbench | runs | tps | spread | p50 ms | p99 ms | failed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, (label, *_) in CEILINGS.items():
        c = ceilings[kind]
        lines.append(f"| {label} | {len(c['runs'])} | {c['rps']:,.0f} | {rate_spread(c)} | "
                     f"{c['p50']:.2f} | {c['p99']:.2f} | {c['failed']} |")
    booking = sqlite[SCENARIOS[3].name]
    lines += [
        "",
        "## SQLite",
        "",
        f"One run of each scenario, {seconds} s after a 2 s warm-up; no ceiling.",
        "",
        "| scenario | requests/s | p50 ms | p99 ms | non-2xx | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for s in SCENARIOS:
        r = sqlite[s.name]
        goal = (f"p99 ≤ {SQLITE_BOOKING_P99_TARGET_MS:g} ms "
                f"{mark(booking['p99'] <= SQLITE_BOOKING_P99_TARGET_MS)}" if r is booking else "—")
        lines.append(f"| {s.name} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                     f"{r['non_2xx']} | {goal} |")
    r = sqlite[PLAN_ONE]
    lines.append(f"| {PLAN_ONE} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                 f"{r['non_2xx']} | — |")
    lines += [
        "",
        "## Start-up and memory",
        "",
        "| backend | start to ready | peak RSS after the run |",
        "|---|---:|---:|",
        f"| PostgreSQL | {startup['pg']:.0f} ms | {rss['pg']:.1f} MB |",
        f"| SQLite | {startup['sqlite']:.0f} ms | {rss['sqlite']:.1f} MB |",
        "",
        "Start to ready: from spawning the release binary on a migrated, seeded database to its "
        "first 200 from `/readyz` (the pool opens all its connections first).",
        "",
    ]
    lines += [
        "## Backend clients' tokens",
        "",
        "| backend | scenario | requests/s | spread | p50 ms | p99 ms | non-2xx |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for backend, results in (("PostgreSQL", pg), ("SQLite", sqlite)):
        for name in token_scenarios(rounds):
            r = results[name]
            spread_cell = rate_spread(r) if "spread" in r else "—"
            lines.append(f"| {backend} | {name} | {r['rps']:,.0f} | {spread_cell} | {r['p50']:.2f} | "
                         f"{r['p99']:.2f} | {r['non_2xx']} |")
    lines += [
        "",
        f"Verifying a token without the verified-token cache (what the first request with a "
        f"token costs; {verification['n']:,} verifications each, one core, release build): "
        f"HS256 {verification['hs256_us']:.1f} µs, ES256 access token "
        f"{verification['es256_us']:.1f} µs; a cached token {verification['cached_us']:.2f} µs. "
        "A client sends the same token for its five minutes, so a patient read pays the "
        "ES256 verification once per token. Each token request verifies the client's ES384 assertion, takes its "
        "`jti` in the database, writes its audit record and signs an ES256 token, in one "
        "transaction.",
        "",
    ]
    off, on = hooks["off"], hooks["on"]
    lines += [
        "## Webhooks (PostgreSQL)",
        "",
        f"| scenario | requests/s (median of {hooks['rounds']}) | spread |",
        "|---|---:|---:|",
        f"| POST /v1/appointments + cancel, no endpoint | {off['rps']:,.0f} | "
        f"{off['spread'][0]:,.0f}–{off['spread'][1]:,.0f} |",
        f"| the same, an endpoint taking every event | {on['rps']:,.0f} | "
        f"{on['spread'][0]:,.0f}–{on['spread'][1]:,.0f} |",
        "",
        f"With webhooks on, booking runs at {on['rps'] / off['rps']:.0%} of its rate without "
        f"(interleaved rounds: {', '.join(['off, on'] * hooks['rounds'])}). "
        f"{hooks['deliveries']:,} deliveries reached a "
        f"receiver on loopback, from the change's time (in its transaction) to receipt: "
        f"p50 {hooks['p50']:.0f} ms, p99 {hooks['p99']:.0f} ms; {hooks['undelivered']} left "
        "undelivered. A request's write wakes its process's worker, which gathers 20 ms of "
        "writes into a pass and sends the pass's deliveries 16 at a time on kept-alive "
        "connections; other processes' writes it finds within a second.",
        "",
    ]
    v1, read = fhir["v1"], fhir["fhir"]
    lines += [
        "## FHIR (PostgreSQL)",
        "",
        f"| scenario | requests/s (median of {fhir['rounds']}) | spread | p50 ms | p99 ms | "
        "non-2xx |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in (("GET /v1/patients/{id}", v1), ("GET /fhir/R4/Patient/{id}", read)):
        lines.append(f"| {name} | {r['rps']:,.0f} | {r['spread'][0]:,.0f}–{r['spread'][1]:,.0f} | "
                     f"{r['p50']:.2f} | {r['p99']:.2f} | {r['non_2xx']} |")
    lines += [
        "",
        f"The FHIR read runs at {read['rps'] / v1['rps']:.0%} of the /v1 read (target ≥ 80%; "
        f"interleaved rounds: {', '.join(['/v1, FHIR'] * fhir['rounds'])}). Both read the "
        "patient with "
        "the same store function and audit it alike; the FHIR answer is the Patient resource.",
        "",
    ]
    text = "\n".join(lines)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "BENCHMARKS.md").write_text(text)
    print("\n" + text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="measurement per run")
    parser.add_argument("--rounds", type=int, default=1 if QUICK else 3,
                        help="interleaved rounds per comparison (BENCH_QUICK=1: 1)")
    parser.add_argument("--only", metavar="TEXT",
                        help="only the PostgreSQL scenarios whose name contains TEXT (and the "
                             "one-connection plan if TEXT is in it), no report written: for "
                             "measuring one change")
    args = parser.parse_args()
    if args.only:
        SCENARIOS[:] = [s for s in SCENARIOS if args.only in s.name]
    started = time.monotonic()
    hook_rounds = min(args.rounds, 2)

    ensure_tools()
    ensure_postgres()
    build()
    keyed_sql()
    today = seed.clinic_today()
    days, mondays, windows = calendar(today)
    startup, rss = {}, {}

    with tempfile.TemporaryDirectory(prefix="infusion-bench-") as work:
        log("PostgreSQL: migrating and seeding")
        url = recreate_pg_database()
        api = Api(url, work)
        seed.load_postgres(url, today)
        api.migrate()
        run(["pgbench", "-i", "-q", "-s", "1", url], capture_output=True)
        api.start()
        startup["pg"] = api.ready_ms
        log(f"ready in {api.ready_ms:.0f} ms; booked {seed_courses(api, mondays)} courses")
        env = dict(os.environ, BENCH_TOKEN=api.token, BENCH_DAYS=",".join(map(str, days)),
                   BENCH_MONDAYS=",".join(map(str, mondays)), BENCH_WINDOWS=",".join(windows))
        seeded = counts(url)
        pg, ceilings = measure_pg(api, env, args.seconds, args.rounds, url, work,
                                  plan_one=not args.only or args.only in PLAN_ONE)
        if args.only:
            api.stop()
            log(f"done in {(time.monotonic() - started) / 60:.1f} min (--only: no report)")
            return
        pg.update(measure_tokens(api, env, args.seconds, work, args.rounds))
        hooks = measure_webhooks(api, env, args.seconds, url, hook_rounds)
        fhir = measure_fhir(env, args.seconds, args.rounds)
        verification = verify_cost(api.env)
        log(f"verifying a token, uncached: HS256 {verification['hs256_us']:.1f} µs, "
            f"ES256 {verification['es256_us']:.1f} µs; cached {verification['cached_us']:.2f} µs")
        rss["pg"] = api.peak_rss_mb()
        api.stop()

        log("SQLite: migrating and seeding")
        path = str(Path(work) / "bench.db")
        api = Api(path, work)
        seed.load_sqlite(path, today)
        api.migrate()
        api.start()
        startup["sqlite"] = api.ready_ms
        log(f"ready in {api.ready_ms:.0f} ms; booked {seed_courses(api, mondays)} courses")
        env["BENCH_TOKEN"] = api.token
        sqlite = measure(api, env, args.seconds)
        sqlite.update(measure_tokens(api, env, args.seconds, work, args.rounds))
        rss["sqlite"] = api.peak_rss_mb()
        api.stop()

    report(pg, sqlite, ceilings, startup, rss, seeded, args.seconds, args.rounds, verification,
           hooks, fhir)
    print()
    for what, figure, met in targets(pg, sqlite):
        print(f"target: {what} {figure} {mark(met)}")
    log(f"done in {(time.monotonic() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
