"""Deliveries verified by the Standard Webhooks library (PyPI
`standardwebhooks`), not by our code: see .ci/webhook-check."""

import http.server
import json
import sys
import threading
import time
import urllib.request

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

BASE, TOKEN = sys.argv[1], sys.argv[2]
received = []


def call(method, path, body=None):
    req = urllib.request.Request(
        BASE + path, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"])).decode()
        received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def check(ok, what, detail=""):
    if not ok:
        print(f"FAILED: {what} {detail}")
        sys.exit(1)
    print(f"ok  {what}")


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/hooks"

endpoint = call("POST", "/v1/webhook-endpoints", {
    "url": url, "event_types": ["patient.created", "appointment.booked"]})
secret = endpoint["secret"]
check(secret.startswith("whsec_"), "the endpoint's secret is a whsec_ secret")
time.sleep(1.2)  # events from the endpoint's creation on

patient = call("POST", "/v1/patients", {
    "given_name": "Ada", "family_name": "Hook", "date_of_birth": "1985-12-10",
    "indications": [{"code": "chronic_pain", "subtype": "crps"}],
    "in_mental_health_treatment": True, "pain_referral_required": False})

deadline = time.time() + 20
while not received and time.time() < deadline:
    time.sleep(0.2)
check(len(received) == 1, "one delivery arrives", f"got {len(received)}")

headers, body = received[0]
lowered = {k.lower(): v for k, v in headers.items()}
try:
    payload = Webhook(secret).verify(body, lowered)
except WebhookVerificationError as e:
    check(False, "standardwebhooks verifies the delivery", repr(e))
check(True, "standardwebhooks verifies the delivery")
check(payload["type"] == "patient.created", "its type is patient.created", payload)
check(payload["data"]["resource_id"] == patient["id"], "it names the patient", payload)

events = call("GET", "/v1/events?types=patient.created")["events"]
check(lowered["webhook-id"] == events[-1]["id"], "webhook-id is the event's id",
      (lowered["webhook-id"], events[-1]["id"]))

try:
    Webhook(secret).verify(body.replace("patient", "patiant"), lowered)
    check(False, "a changed body fails verification")
except WebhookVerificationError:
    check(True, "a changed body fails verification")
try:
    Webhook("whsec_" + "A" * 32).verify(body, lowered)
    check(False, "another secret fails verification")
except WebhookVerificationError:
    check(True, "another secret fails verification")

listed = call("GET", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")["items"]
check([d["status"] for d in listed] == ["delivered"], "the delivery is listed as delivered", listed)
check(listed[0]["last_status"] == 204, "with the receiver's 204", listed)
