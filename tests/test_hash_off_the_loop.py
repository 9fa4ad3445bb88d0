"""A password hash never stops a gevent worker: while one login's scrypt runs, the
worker's other greenlets (open event streams, other pages) keep running."""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    from gevent import monkey

    monkey.patch_all()

    import json
    import time

    import gevent
    from flask import Flask

    from linkmsg.services import passwords

    app = Flask("hash-check")
    app.config["PASSWORD_HASH_METHOD"] = "scrypt"  # the production setting
    with app.app_context():
        stored = passwords.hash_password("correct horse battery")
        gaps, last, running = [], [time.perf_counter()], [True]

        def another_greenlet():
            while running[0]:
                gevent.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last[0])
                last[0] = now

        ticker = gevent.spawn(another_greenlet)
        gevent.sleep(0.02)
        gaps.clear()
        start = time.perf_counter()
        right = passwords.matches(stored, "correct horse battery")
        wrong = passwords.matches(stored, "not the password")
        took = time.perf_counter() - start
        running[0] = False
        ticker.join()
        print(json.dumps({"right": right, "wrong": wrong, "took": took,
                          "ticks": len(gaps), "longest_gap": max(gaps)}))
    """
)


def test_a_password_check_lets_other_greenlets_run():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["right"] is True and result["wrong"] is False
    # Two scrypt checks take tens of milliseconds; the other greenlet ran all along:
    # many times, and never held up for more than a fraction of one check.
    assert result["took"] > 0.02, result
    assert result["ticks"] >= 10, result
    assert result["longest_gap"] < result["took"] / 4, result
