"""schemathesis hooks for `.ci/fuzz` (see README, "API fuzzing").

The contract (openapi/openapi.json) states every rule JSON Schema can state.
A few rules it cannot: they depend on today's date, relate two parameters,
or need a check digit. Here the generator is taught those, and only those,
so that a schema-valid request the server refuses is still a finding.

Only *positive* cases are touched, and only to move a value to another one
the schema allows: after `before_call` schemathesis validates the case again
against the schema, so a case stays what it claims to be. Negative cases go
out exactly as generated.

Rules that depend on stored data (which patients exist, the calendar,
closures, the protocols' parameters) cannot be taught without the server's
state; schemathesis.toml names the operations they touch.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import MutableMapping

import schemathesis
from hypothesis import strategies as st

# The server's "today" is clinic-local; ours may be a day off, so every
# moved date keeps this many days away from the edge of its window.
MARGIN = dt.timedelta(days=2)
FIRST = dt.date(1900, 1, 1)
LAST = dt.date(9999, 12, 31)


def npi(first_nine: str) -> str:
    """An NPI: nine digits and their Luhn check digit, computed over the
    issuer prefix 80840 followed by the nine (as src/domain/referral.rs)."""
    digits = [int(c) for c in "80840" + first_nine]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return first_nine + str((10 - total % 10) % 10)


# `format: npi` in the contract: 10 digits whose last is a check digit.
schemathesis.openapi.format("npi", st.from_regex(r"\A[0-9]{9}\Z").map(npi))


def _date(value: object) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _within(drawn: dt.date, first: dt.date, last: dt.date) -> dt.date:
    """`drawn` if it lies in [first, last], else a date in there that still
    depends on what was drawn (so the seed keeps its variety)."""
    first, last = max(first, FIRST), min(last, LAST)
    if first <= drawn <= last:
        return drawn
    return first + dt.timedelta(days=drawn.toordinal() % ((last - first).days + 1))


def _move(container: object, field: str, first: dt.date, last: dt.date) -> None:
    if not isinstance(container, dict):
        return
    drawn = _date(container.get(field))
    if drawn is not None:
        container[field] = _within(drawn, first, last).isoformat()


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _birth(body: object, today: dt.date) -> None:
    # In the past, at most 120 years ago (PatientDetails::check).
    _move(body, "date_of_birth", _years_before(today, 120) + MARGIN, today - MARGIN)


def _not_after_today(field: str):
    # Letters, attestations and consults cannot be dated in the future.
    def rule(body: object, today: dt.date) -> None:
        _move(body, field, FIRST, today - MARGIN)

    return rule


def _closure(body: object, today: dt.date) -> None:
    # A closure is for today or later.
    _move(body, "date", today + MARGIN, LAST)


def _range(max_days: int | None):
    """`to` not before `from` (both optional); with `max_days`, `to` at most
    that many days after `from`, which defaults to today."""

    def rule(query: object, today: dt.date) -> None:
        if not isinstance(query, dict):
            return
        start, end = _date(query.get("from")), _date(query.get("to"))
        if end is None:
            return
        if start is None and max_days is None:
            return
        if start is None:
            low, high = today + MARGIN, today + dt.timedelta(days=max_days) - MARGIN
        else:
            high = LAST if max_days is None else start + dt.timedelta(days=max_days)
            low = start
        query["to"] = _within(end, low, high).isoformat()

    return rule


def _superbill_period(query: object, today: dt.date) -> None:
    """A superbill's period ends on the clinic's today when `to` is absent:
    `from` is then moved before it (a margin away, as the clinic's zone may
    be a day behind this machine's); with both, they are put in order."""
    _range(None)(query, today)
    if isinstance(query, MutableMapping) and query.get("to") is None:
        _move(query, "from", FIRST, today - MARGIN)


def _instant_range(query: object, today: dt.date) -> None:
    """`to` not before `from`, both RFC 3339 instants (the audit trail's
    filters): when both parse and `to` is earlier, they swap."""
    if not isinstance(query, dict):
        return

    def instant(value: object) -> dt.datetime | None:
        if not isinstance(value, str):
            return None
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None

    start, end = instant(query.get("from")), instant(query.get("to"))
    if start is not None and end is not None and start.tzinfo and end.tzinfo and end < start:
        query["from"], query["to"] = query["to"], query["from"]


BODY_RULES = {
    ("POST", "/v1/patients"): [_birth],
    ("PATCH", "/v1/patients/{id}"): [_birth],
    ("POST", "/v1/patients/{id}/referrals"): [_not_after_today("received_on")],
    ("POST", "/v1/patients/{id}/treatment-attestations"): [_not_after_today("attested_on")],
    ("POST", "/v1/patients/{id}/prescriber-consults"): [_not_after_today("consulted_on")],
    ("POST", "/v1/closures"): [_closure],
    ("POST", "/v1/patients/{id}/charges"): [_not_after_today("date_of_service")],
    ("POST", "/v1/patients/{id}/payments"): [_not_after_today("received_on")],
}

QUERY_RULES = {
    # src/http/availability.rs: MAX_RANGE_DAYS.
    ("GET", "/v1/availability"): [_range(93)],
    ("GET", "/v1/appointments"): [_range(None)],
    ("GET", "/v1/closures"): [_range(None)],
    ("GET", "/v1/patients/{id}/charges"): [_range(None)],
    ("GET", "/v1/patients/{id}/payments"): [_range(None)],
    ("GET", "/v1/patients/{id}/superbill"): [_superbill_period],
    ("GET", "/v1/audit-events"): [_instant_range],
}


def _headers(headers: object) -> None:
    """An `Idempotency-Key` names one request: a new one per case, since a
    key the generator draws again for another body is rightly 422
    `idempotency_key_reused` (the server's store decides, not the schema).
    `If-Match` must name the record's current version, which only the
    server knows: `*`, any version, keeps the write conditional on the
    record existing."""
    if not isinstance(headers, MutableMapping):
        return
    for name in list(headers):
        if name.lower() == "idempotency-key":
            headers[name] = f"fuzz-{uuid.uuid4()}"
        elif name.lower() == "if-match":
            headers[name] = "*"


@schemathesis.hook
def before_call(context, case, **kwargs):
    meta = getattr(case, "meta", None)
    mode = getattr(getattr(meta, "generation", None), "mode", None)
    if mode is None or not mode.is_positive:
        return
    key = (case.operation.method.upper(), case.operation.path)
    _headers(case.headers)
    today = dt.date.today()
    for rule in BODY_RULES.get(key, []):
        rule(case.body, today)
    for rule in QUERY_RULES.get(key, []):
        rule(case.query, today)
