#!/usr/bin/env python3
"""sd_notify protocol of the real taskgroupd, received on a test-owned NOTIFY_SOCKET.

Usage: notify_test.py TASKGROUPD TGCTL

Proves, against the built binaries (no systemd involved):
  - READY=1 (with STATUS=) arrives only once the control socket accepts connections;
  - SIGHUP: RELOADING=1 with a plausible MONOTONIC_USEC, then READY=1; a broken config
    file gives RELOADING=1, READY=1 and a STATUS= naming the error, and the daemon keeps
    serving; fixing the file and reloading clears it;
  - WATCHDOG=1 every WATCHDOG_USEC/2 (400 ms -> ~200 ms), from the daemon's own pid
    (SO_PASSCRED), and on during a drain;
  - first SIGTERM: STOPPING=1 and a STATUS= saying draining; the daemon exits 0 after the
    drain, the running task recorded `interrupted`;
  - NOTIFY_SOCKET, LISTEN_* and WATCHDOG_* never reach a task's environment, even when the
    submitting client has them set;
  - a notify socket nobody reads (its queue full) never stalls the daemon.
Every wait is bounded; every process the test starts is killed on the way out.
"""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import ctypes

DAEMON, TGCTL = sys.argv[1], sys.argv[2]
WATCHDOG_USEC = 400_000
EXPECTED_PING_S = WATCHDOG_USEC / 2 / 1e6


class Fail(Exception):
    pass


def fail(msg):
    raise Fail(msg)


LATER = []  # Failures that do not stop the rest of the test; reported at the end.


def fail_later(msg):
    print(f"FAIL (continuing): {msg}", flush=True)
    LATER.append(msg)


def log(msg):
    print(f"[notify_test {time.monotonic():.3f}] {msg}", flush=True)


def set_pdeathsig():
    # A killed test must not leave a daemon behind (survives the exec of the sh wrapper).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Notifications:
    """The datagram socket systemd would own; each message as (time, sender pid, fields)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.all = []  # Everything received, for the failure report.

    def recv(self, deadline):
        """Next message, or None at the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        self.sock.settimeout(left)
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, _, _ = struct.unpack("iII", payload[:12])
        fields = {}
        for line in data.decode().split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                fields[k] = v
        msg = (time.monotonic(), pid, fields)
        self.all.append(msg)
        return msg

    def wait_for(self, key, timeout, what, pings=None):
        """Receives until a message has `key`; WATCHDOG=1-only messages go to `pings`."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(deadline)
            if msg is None:
                fail(f"no {what} ({key}=...) within {timeout}s")
            if key in msg[2]:
                return msg
            if pings is not None and msg[2].get("WATCHDOG") == "1":
                pings.append(msg[0])


def run(cmd, env=None, timeout=10, check=True):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        fail(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()}")
    return p


def show(tg, task):
    """The task object of `tgctl show ID --json` (the result is {"task": {...}})."""
    return json.loads(run(tg + ["show", task, "--json"]).stdout)["task"]


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    fail(f"timed out after {timeout}s waiting for {what}")


def check_spacing(pings, what):
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    if len(gaps) < 2:
        fail(f"{what}: only {len(pings)} WATCHDOG=1 pings")
    mid = sorted(gaps)[len(gaps) // 2]
    log(f"{what}: {len(pings)} pings, gaps " + ", ".join(f"{g * 1000:.0f}ms" for g in gaps))
    # Half of WATCHDOG_USEC is the contract; a gap of WATCHDOG_USEC would get us killed.
    if not 0.5 * EXPECTED_PING_S <= mid <= 1.5 * EXPECTED_PING_S:
        fail(f"{what}: median WATCHDOG=1 gap {mid * 1000:.0f}ms, expected ~{EXPECTED_PING_S * 1000:.0f}ms")
    if max(gaps) >= WATCHDOG_USEC / 1e6:
        fail(f"{what}: a WATCHDOG=1 gap of {max(gaps) * 1000:.0f}ms reaches WATCHDOG_USEC: systemd would kill us")


def main(tmp):
    notify_path = os.path.join(tmp, "notify.sock")
    control = os.path.join(tmp, "control.sock")
    config = os.path.join(tmp, "taskgroupd.toml")
    daemon_log = os.path.join(tmp, "daemon.log")
    good_config = 'drain_timeout = "1s"\nkill_grace = "2s"\n'
    with open(config, "w") as f:
        f.write(good_config)

    notes = Notifications(notify_path)
    env = {k: v for k, v in os.environ.items()
           if k not in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "JOURNAL_STREAM")}
    env.update(NOTIFY_SOCKET=notify_path, WATCHDOG_USEC=str(WATCHDOG_USEC))
    # WATCHDOG_PID must be the daemon's own pid: the shell knows its pid and execs the daemon.
    cmd = ["sh", "-c", 'export WATCHDOG_PID=$$; exec "$0" "$@"', DAEMON, "--config", config,
           "--socket", control, "--state-dir", os.path.join(tmp, "state")]
    logf = open(daemon_log, "w")
    daemon = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                              preexec_fn=set_pdeathsig)
    task_pidfile = os.path.join(tmp, "task.pid")
    try:
        body(daemon, notes, control, config, good_config, task_pidfile, tmp)
    except BaseException:
        log(f"received: {[(round(t, 3), p, f) for t, p, f in notes.all]}")
        with open(daemon_log) as f:
            sys.stdout.write("--- daemon log ---\n" + f.read()[-8000:] + "------------------\n")
        raise
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(5)
        kill_task(task_pidfile)
        logf.close()


def kill_task(pidfile):
    try:
        pid = int(open(pidfile).read())
        if b"sleep" in open(f"/proc/{pid}/cmdline", "rb").read():
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass  # Never started, or already gone: nothing to clean up.


def body(daemon, notes, control, config, good_config, task_pidfile, tmp):
    pid = daemon.pid

    # --- READY=1 only when the socket accepts connections.
    ready = notes.wait_for("READY", 10, "READY=1 at startup")
    if ready[2]["READY"] != "1":
        fail(f"READY={ready[2]['READY']}")
    if "STATUS" not in ready[2] or not ready[2]["STATUS"]:
        fail(f"READY=1 came without a STATUS= line: {ready[2]}")
    if ready[1] != pid:
        fail(f"READY=1 sent by pid {ready[1]}, the daemon is {pid}")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(control)  # No retry: after READY=1 it must accept at once.
    except OSError as e:
        fail(f"READY=1 was sent but {control} refuses connections: {e}")
    finally:
        probe.close()
    log(f"READY=1 STATUS='{ready[2]['STATUS']}' from pid {ready[1]}")

    tg = [TGCTL, "--socket", control]

    # --- Nobody reads the notify socket for a while (a busy manager): its queue (10 datagrams
    # by default) fills with pings, and the daemon must go on serving, not block in a send.
    stall_until = time.monotonic() + 15 * EXPECTED_PING_S
    served = 0
    while time.monotonic() < stall_until:
        run(tg + ["status"], timeout=5)
        served += 1
    while notes.recv(time.monotonic() + 0.1) is not None:  # Drain what piled up.
        pass
    log(f"{served} status calls served while the notify queue was full")

    # --- A task never sees NOTIFY_SOCKET / LISTEN_* / WATCHDOG_*, even when the client has them.
    client_env = dict(os.environ, NOTIFY_SOCKET=notes.sock.getsockname(), LISTEN_FDS="1",
                      LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="control",
                      WATCHDOG_USEC="400000", WATCHDOG_PID=str(os.getpid()),
                      TG_NOTIFY_TEST_MARKER="passed-through")
    task = run(tg + ["submit", "--", "env"], env=client_env).stdout.strip()
    run(tg + ["wait", "--task", task], timeout=15)
    task_env = run(tg + ["logs", task]).stdout.splitlines()
    if "TG_NOTIFY_TEST_MARKER=passed-through" not in task_env:
        fail(f"the client's environment did not reach task {task} at all: {task_env}")
    leaked = [l for l in task_env
              if l.split("=", 1)[0] == "NOTIFY_SOCKET" or l.startswith(("LISTEN_", "WATCHDOG_"))]
    if leaked:
        fail(f"task {task} inherited systemd variables: {leaked}")
    log(f"task {task} environment: no NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*")

    # --- SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
    pings = []
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    daemon.send_signal(signal.SIGHUP)
    reloading = notes.wait_for("RELOADING", 5, "RELOADING=1 after SIGHUP", pings)
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    usec = reloading[2].get("MONOTONIC_USEC")
    if reloading[2]["RELOADING"] != "1" or usec is None or not usec.isdigit():
        fail(f"RELOADING=1 must come with MONOTONIC_USEC=<usec>: {reloading[2]}")
    if not before <= int(usec) <= after:
        fail(f"MONOTONIC_USEC={usec} is not CLOCK_MONOTONIC of the reload ({before}..{after})")
    ready = notes.wait_for("READY", 5, "READY=1 after the reload", pings)
    if "error" in ready[2].get("STATUS", ""):
        fail(f"a good reload reported an error: {ready[2]}")
    log(f"SIGHUP: RELOADING=1 MONOTONIC_USEC={usec}, then READY=1 STATUS='{ready[2].get('STATUS')}'")

    # --- A broken config: RELOADING=1, READY=1 with the error in STATUS=, still serving.
    with open(config, "w") as f:
        f.write("drain_timeout = [broken\n")
    daemon.send_signal(signal.SIGHUP)
    notes.wait_for("RELOADING", 5, "RELOADING=1 after a SIGHUP with a broken config", pings)
    ready = notes.wait_for("READY", 5, "READY=1 after a refused reload", pings)
    if "config" not in ready[2].get("STATUS", "") or "taskgroupd.toml" not in ready[2]["STATUS"]:
        fail(f"a refused reload must say why in STATUS=: {ready[2]}")
    run(tg + ["status"])
    log(f"broken config: READY=1 STATUS='{ready[2]['STATUS']}'")
    # The error stays in STATUS= while tasks come and go, until a good reload.
    counted = run(tg + ["submit", "--", "true"]).stdout.strip()
    run(tg + ["wait", "--task", counted], timeout=15)
    deadline = time.monotonic() + 5
    while True:
        msg = notes.recv(deadline)
        if msg is None:
            fail(f"no STATUS= after task {counted} ran with a refused config in place")
        if "STATUS" in msg[2] and "running" in msg[2]["STATUS"] and "READY" not in msg[2]:
            break
    if "config error" not in msg[2]["STATUS"]:
        fail(f"a task's start or exit dropped the config error from STATUS=: {msg[2]}")
    # An error that quotes a newline (here in a TOML key) cannot add a line of its own.
    with open(config, "w") as f:
        f.write('"x\\nSTATUS=forged" = 1\n')
    daemon.send_signal(signal.SIGHUP)
    notes.wait_for("RELOADING", 5, "RELOADING=1 after a SIGHUP with a newline key", pings)
    ready = notes.wait_for("READY", 5, "READY=1 after refusing the newline key", pings)
    if ready[2].get("STATUS") == "forged" or "config error" not in ready[2].get("STATUS", ""):
        fail(f"a newline in the config error forged a STATUS= line: {ready[2]}")
    log(f"newline in the error stays in one line: STATUS='{ready[2]['STATUS']}'")
    with open(config, "w") as f:
        f.write(good_config)
    daemon.send_signal(signal.SIGHUP)
    notes.wait_for("RELOADING", 5, "RELOADING=1 after fixing the config", pings)
    ready = notes.wait_for("READY", 5, "READY=1 after fixing the config", pings)
    if "error" in ready[2].get("STATUS", ""):
        fail(f"the config error stayed in STATUS= after a good reload: {ready[2]}")

    # --- WATCHDOG=1 at WATCHDOG_USEC/2, from the daemon itself.
    pings.clear()
    deadline = time.monotonic() + 3
    while len(pings) < 5:
        msg = notes.recv(deadline)
        if msg is None:
            fail(f"only {len(pings)} WATCHDOG=1 pings in 3s (WATCHDOG_USEC={WATCHDOG_USEC})")
        if msg[2].get("WATCHDOG") == "1":
            if msg[1] != pid:
                fail(f"WATCHDOG=1 sent by pid {msg[1]}, the daemon is {pid}")
            pings.append(msg[0])
    check_spacing(pings, "idle")

    # --- SIGTERM with a running task: STOPPING=1, pings during the drain, exit 0.
    long_task = run(tg + ["submit", "--shell", "--", f"echo $$ > {task_pidfile}; exec sleep 30"],
                    env=os.environ).stdout.strip()
    wait_until(lambda: show(tg, long_task)["state"] == "running" and os.path.exists(task_pidfile) and os.path.getsize(task_pidfile) > 0,
               10, f"task {long_task} to run")
    daemon.send_signal(signal.SIGTERM)
    stopping = notes.wait_for("STOPPING", 5, "STOPPING=1 after SIGTERM")
    if stopping[2]["STOPPING"] != "1":
        fail(f"STOPPING={stopping[2]['STOPPING']}")
    drain_pings, statuses = [stopping[0]], []
    deadline = time.monotonic() + 15
    while daemon.poll() is None:  # drain_timeout 1s: the task gets TERM after ~1s.
        msg = notes.recv(min(deadline, time.monotonic() + 0.05))
        if msg is not None:
            if msg[2].get("WATCHDOG") == "1":
                drain_pings.append(msg[0])
            if "STATUS" in msg[2]:
                statuses.append(msg[2]["STATUS"])
        if time.monotonic() > deadline:
            fail("the daemon did not finish its drain within 15s of SIGTERM")
    while (msg := notes.recv(time.monotonic() + 0.01)) is not None:  # Sent before exiting.
        if "STATUS" in msg[2]:
            statuses.append(msg[2]["STATUS"])
    if not any("draining" in s for s in statuses + [stopping[2].get("STATUS", "")]):
        fail_later(f"no STATUS= said 'draining' during the drain: {statuses}")
    if daemon.returncode != 0:
        fail(f"the daemon exited {daemon.returncode} after the drain, not 0")
    log(f"SIGTERM: STOPPING=1, drain took {time.monotonic() - stopping[0]:.2f}s, exit 0")
    check_spacing(drain_pings[1:], "during the drain")  # From the first ping: STOPPING isn't one.

    # The store says what happened to the task: restart on the same state dir and look.
    check_interrupted(control, tmp, long_task, task_pidfile)


def check_interrupted(control, tmp, task, task_pidfile):
    kill_task(task_pidfile)
    logf = open(os.path.join(tmp, "daemon2.log"), "w")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NOTIFY_", "LISTEN_", "WATCHDOG_"))}
    d = subprocess.Popen([DAEMON, "--config", os.path.join(tmp, "taskgroupd.toml"), "--socket", control,
                          "--state-dir", os.path.join(tmp, "state")], env=env,
                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, preexec_fn=set_pdeathsig)
    try:
        def up():
            return run([TGCTL, "--socket", control, "status"], check=False).returncode == 0
        wait_until(up, 10, "the restarted daemon to answer")
        shown = show([TGCTL, "--socket", control], task)
        if shown["state"] != "interrupted":
            fail(f"task {task} running at SIGTERM ended '{shown['state']}', not interrupted: {shown}")
        log(f"task {task}: {shown['state']} ({shown.get('reason')})")
        d.send_signal(signal.SIGTERM)
        if d.wait(10) != 0:
            fail(f"the restarted daemon exited {d.returncode}")
    finally:
        if d.poll() is None:
            d.kill()
            d.wait(5)
        logf.close()


if __name__ == "__main__":
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tg-notify-", dir="/tmp") as tmp:
        try:
            main(tmp)
            if LATER:
                raise Fail("; ".join(LATER))
        except Fail as e:
            print(f"FAIL: {e}", flush=True)
            sys.exit(1)
    print(f"PASS: notify_test ({time.monotonic() - started:.1f}s)", flush=True)
