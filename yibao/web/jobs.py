"""Long jobs with progress (e.g. exporting every settlement to Excel), in background threads.

A job belongs to the user who started it; the console polls
``/console/jobs/{id}`` and shows a progress bar.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Job:
    id: str
    owner: str
    kind: str
    total: int = 0
    done: int = 0
    status: str = "running"  # running | done | failed
    error: str = ""
    filename: str = ""
    result: bytes = field(default=b"", repr=False)

    def as_dict(self) -> dict:
        pct = 100.0 if self.status == "done" else (100.0 * self.done / self.total if self.total else 0.0)
        return {
            "id": self.id,
            "kind": self.kind,
            "total": self.total,
            "done": self.done,
            "status": self.status,
            "error": self.error,
            "percent": round(min(pct, 100.0), 1),
            "filename": self.filename,
        }


class JobRunner:
    def __init__(self, keep: int = 50):
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self.keep = keep

    def start(self, owner: str, kind: str, total: int, filename: str, work: Callable[[Job], bytes]) -> Job:
        job = Job(secrets.token_hex(8), owner, kind, total=total, filename=filename)
        with self._lock:
            if len(self._jobs) >= self.keep:
                for k in [k for k, j in self._jobs.items() if j.status != "running"][: len(self._jobs) - self.keep + 1]:
                    del self._jobs[k]
            self._jobs[job.id] = job

        def run() -> None:
            try:
                job.result = work(job)
                job.done = job.total
                job.status = "done"
            except Exception as exc:  # noqa: BLE001 - reported to the user through the job
                job.status, job.error = "failed", str(exc)

        threading.Thread(target=run, name=f"yibao-job-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str, owner: str) -> Job | None:
        with self._lock:
            j = self._jobs.get(job_id)
        return j if j is not None and j.owner == owner else None
