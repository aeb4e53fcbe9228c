"""Driven by test/clients/python-reconnect.python.test.ts: RewardClient's reconnect against live servers.

    python3 native_reconnect.py ws://127.0.0.1:PORT   -> JSON lines on stdout; "go" lines on stdin

The test serves replica A on PORT. Here: hello, reset, one step; print "stepped", wait for "go" (A's
model is slowed); send a step that stays in flight; print "pending", wait for "go" (A has drained
and replica B listens on PORT); then the step's error, the reconnect, the lost episode, and a new
episode on B, printed as the last line.
"""
import json
import sys
import time

import numpy as np

from stageward_client import RewardClient, StagewardError

VIEWS = ["front", "side", "wrist"]


def say(obj) -> None:
    print(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)), flush=True)


def wait_go() -> None:
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected go")


def error_of(call) -> dict:
    try:
        call()
    except StagewardError as e:
        return {"code": e.code, "message": e.message, "close_code": e.close_code}
    return {"code": None}


def main() -> None:
    rng = np.random.default_rng(0)
    frames = lambda: {v: rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for v in VIEWS}  # noqa: E731
    readies = []
    out = {"event": "done"}
    with RewardClient(sys.argv[1], timeout_s=20, reconnect_attempts=60, reconnect_backoff_s=0.02,
                      reconnect_max_backoff_s=0.1, reconnect_jitter=0.0, on_reconnect=readies.append) as client:
        out["first_ready"] = client.hello("pick_place", VIEWS, gamma=0.99, progress="sarm")
        client.reset()
        out["first_step"] = client.step(frames())
        say({"event": "stepped"})
        wait_go()
        pending = client.step_nowait(frames(), reward=0.0)
        say({"event": "pending"})
        out["pending_error"] = error_of(lambda: pending.result(20))
        wait_go()
        t0 = time.monotonic()
        while client.reconnects == 0 and time.monotonic() - t0 < 10:
            time.sleep(0.01)
        out["reconnects"] = client.reconnects
        out["readies"] = readies
        out["ready_is_latest"] = client.ready is readies[-1] if readies else False
        out["lost_step"] = error_of(lambda: client.step(frames(), reward=0.0))
        out["lost_end"] = error_of(lambda: client.end())
        out["episode"] = client.reset()
        out["steps"] = [client.step(frames()), client.step(frames(), reward=0.0)]
        out["summary"] = client.end(success=True)
    say(out)


if __name__ == "__main__":
    main()
