"""Ops › Jobs (issue 18): queue figures, live workers, failed jobs with their error, and Requeue, against a
real Redis and a real `flask worker`."""
from __future__ import annotations

import subprocess

from rq.registry import FailedJobRegistry

from app.queues import enqueue, get_queue
from tests.factories import make_user
from tests.subprocess_env import flask_cmd, flask_env


def _work(app, tmp_path, queue="flows"):
    run = subprocess.run(flask_cmd("worker", queue, "--burst"), env=flask_env(app, tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_a_failed_job_is_listed_with_its_error_and_requeue_puts_it_back(app, db, client, login_as, tmp_path):
    make_user("agent")
    with app.app_context():
        enqueue("flows", "jobs.ops.ping", "unexpected-argument")  # ping takes none: TypeError in the worker
        enqueue("flows", "jobs.ops.ping")
    _work(app, tmp_path)
    login_as("admin")

    page = client.get("/ops/jobs/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "jobs.ops.ping(&#39;unexpected-argument&#39;)" in html and "TypeError" in html
    assert "Requeue all 1 of flows" in html

    with app.app_context():
        registry = FailedJobRegistry(queue=get_queue("flows"))
        [job_id] = registry.get_job_ids()
    token = client.get("/ops/jobs/").get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post("/ops/jobs/requeue", data={"csrf_token": token, "queue": "flows", "job_id": job_id})
    assert answer.status_code == 303
    with app.app_context():
        assert registry.count == 0 and get_queue("flows").get_job_ids() == [job_id]
    assert f"Job {job_id} is back on the flows queue." in client.get("/ops/jobs/").get_data(as_text=True)

    # Requeued again after it failed again: the whole queue's failed jobs at once; a stale id is a clear error.
    _work(app, tmp_path)
    again = client.post("/ops/jobs/requeue", data={"csrf_token": token, "queue": "flows"},
                        headers={"HX-Request": "true"})
    assert again.status_code == 200 and "1 failed job of the flows queue went back on it." in again.get_data(as_text=True)
    stale = client.post("/ops/jobs/requeue", data={"csrf_token": token, "queue": "flows", "job_id": "no-such-job"},
                        follow_redirects=True)
    assert "no longer among the failed jobs" in stale.get_data(as_text=True)
    junk = client.post("/ops/jobs/requeue", data={"csrf_token": token, "queue": "not-a-queue", "job_id": job_id},
                       follow_redirects=True)
    assert "no longer among the failed jobs" in junk.get_data(as_text=True)


def test_the_jobs_page_is_not_for_agents(app, db, client, login_as):
    login_as("agent")
    assert client.get("/ops/jobs/").status_code == 403
    assert client.post("/ops/jobs/requeue", data={"queue": "flows"}).status_code in (400, 403)


def test_the_jobs_page_says_when_redis_is_down(app, db, client, login_as):
    login_as("admin")
    assert "No failed jobs." in client.get("/ops/jobs/").get_data(as_text=True)
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    down = client.get("/ops/jobs/")
    assert down.status_code == 200 and "Redis did not answer" in down.get_data(as_text=True)
