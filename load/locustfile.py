"""Load test of the Panoptes control API: the traffic of a site's operators, integrations and
dashboards at once. The scenario and its weights are explained in load/README.md.

Run with load/locust.sh (it starts its own engine and database); against another engine:
    PANOPTES_API_KEY=... locust -f load/locustfile.py --host http://engine:8080
"""

import os
import random
import time
import uuid
from pathlib import Path

from locust import HttpUser, between, events, task

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "tests" / "data" / "photos"
# Selfie-sized real photos (made by load/locust.sh from the test photos): one face each.
ENROLL_PHOTOS = [p.read_bytes() for p in sorted((ROOT / ".local" / "load").glob("selfie-*.jpg"))] or [
    (PHOTOS / "obama.jpg").read_bytes()
]
IDENTIFY_PHOTOS = [(PHOTOS / n).read_bytes() for n in ("obama2.jpg", "biden.jpg") if (PHOTOS / n).exists()]
KEY = os.environ.get("PANOPTES_API_KEY", "")
SSE_SECONDS = float(os.environ.get("PANOPTES_SSE_SECONDS", "20"))


def get_listed(client, url, name):
    """GET a resource just seen in a list: another user may have deleted it meanwhile (installers and
    integrations delete what they added), so 404 is a right answer here, not a failure."""
    with client.get(url, name=name, catch_response=True) as r:
        if r.status_code == 404:
            r.success()


class PanoptesUser(HttpUser):
    """Every simulated user presents the key (when one is given), as a real client would."""

    abstract = True

    def on_start(self):
        if KEY:
            self.client.headers.update({"Authorization": f"Bearer {KEY}"})


class Operator(PanoptesUser):
    """A person at a console or a dashboard: reads cameras and detections, looks people up."""

    weight = 12
    wait_time = between(1, 3)

    @task(5)
    def list_cameras(self):
        self.client.get("/api/v1/cameras", name="GET /cameras")

    @task(3)
    def camera_status(self):
        r = self.client.get("/api/v1/cameras", name="GET /cameras")
        cams = r.json().get("items", []) if r.ok else []
        if cams:
            cid = random.choice(cams)["id"]
            get_listed(self.client, f"/api/v1/cameras/{cid}", "GET /cameras/{id}")

    @task(4)
    def recent_detections(self):
        self.client.get("/api/v1/detections?limit=50", name="GET /detections")

    @task(2)
    def page_through_detections(self):
        """Three pages back in time, following the opaque cursor as a UI would."""
        url = "/api/v1/detections?limit=50"
        for _ in range(3):
            r = self.client.get(url, name="GET /detections?cursor")
            if not r.ok:
                return
            cursor = r.json().get("next_cursor")
            if not cursor:
                return
            url = f"/api/v1/detections?limit=50&cursor={cursor}"

    @task(2)
    def search_persons(self):
        r = self.client.get("/api/v1/persons?limit=20", name="GET /persons")
        people = r.json().get("items", []) if r.ok else []
        if people:
            pid = random.choice(people)["id"]
            get_listed(self.client, f"/api/v1/persons/{pid}", "GET /persons/{id}")


class Integration(PanoptesUser):
    """A door-access or visitor system: identifies faces, enrolls and removes people."""

    weight = 3
    wait_time = between(2, 6)

    @task(4)
    def identify(self):
        photo = random.choice(IDENTIFY_PHOTOS)
        self.client.post("/api/v1/identify", files={"photo": ("face.jpg", photo, "image/jpeg")}, name="POST /identify")

    @task(1)
    def enroll_then_remove(self):
        photo = random.choice(ENROLL_PHOTOS)
        r = self.client.post(
            "/api/v1/persons",
            data={"name": f"visitor {uuid.uuid4().hex[:8]}"},
            files={"photos": ("selfie.jpg", photo, "image/jpeg")},
            name="POST /persons (enroll)",
        )
        if r.status_code == 201:
            pid = r.json()["person"]["id"]
            self.client.delete(f"/api/v1/persons/{pid}", name="DELETE /persons/{id}")


class Installer(PanoptesUser):
    """Someone setting up cameras: adds one, changes it, removes it."""

    weight = 1
    wait_time = between(3, 8)

    @task
    def add_change_remove_camera(self):
        name = f"load-{uuid.uuid4().hex[:10]}"
        body = {"name": name, "url": "rtsp://viewer:secret@192.0.2.10:554/stream1", "enabled": False}
        r = self.client.post("/api/v1/cameras", json=body, name="POST /cameras")
        if r.status_code != 201:
            return
        cid = r.json()["id"]
        self.client.patch(f"/api/v1/cameras/{cid}", json={"analysis_fps": 3}, name="PATCH /cameras/{id}")
        self.client.delete(f"/api/v1/cameras/{cid}", name="DELETE /cameras/{id}")


class AlertScreen(PanoptesUser):
    """A wall screen listening to live alerts over SSE, reconnecting every PANOPTES_SSE_SECONDS."""

    weight = 1
    wait_time = between(0.5, 1)

    @task
    def listen(self):
        start = time.perf_counter()
        received, error = 0, None
        try:
            with self.client.get(
                "/api/v1/events", stream=True, timeout=SSE_SECONDS + 10, name="GET /events (SSE)", catch_response=True
            ) as r:
                if r.status_code != 200:
                    r.failure(f"status {r.status_code}")
                    return
                r.success()
                deadline = start + SSE_SECONDS
                for line in r.iter_lines():
                    if line.startswith(b"data:"):
                        received += 1
                    if time.perf_counter() > deadline:
                        break
        except Exception as e:  # a dropped stream is a failure, reported like any request
            error = e
        events.request.fire(
            request_type="SSE",
            name="events received per stream",
            response_time=(time.perf_counter() - start) * 1000,
            response_length=received,
            exception=error,
            context={},
        )
