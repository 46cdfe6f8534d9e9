#!/usr/bin/env python3
"""taskgroupd benchmarks against xargs -P, GNU parallel and task-spooler (issue 8).

Run through bench/run.sh, which builds the binaries first. Every workload starts its own
taskgroupd (own socket and state directory, durable store: the default) and, for the peers,
its own task-spooler server. Timed runs of the tools are interleaved (A B C A B C ...), each
figure is the median of the rounds, and the ratio to `xargs -P` is taken round by round
(tool / xargs of the same round) and its median reported.

Raw results (every sample) go to OUT/results.json; the table to OUT/table.md and stdout.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
TRIVIAL = "exit 0"  # Every tool runs each line as `/bin/sh -c LINE`.
TOOLS = ("xargs", "parallel", "tsp", "taskgroupd")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, *, env=None, stdin=None, stdout=subprocess.DEVNULL, check=True):
    """Runs cmd; returns (seconds, CompletedProcess). Fails loudly on a non-zero exit."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                       text=True)
    dt = time.perf_counter() - t0
    if check and p.returncode != 0:
        raise RuntimeError(f"{cmd} exited {p.returncode}: {p.stderr.strip()[:500]}")
    return dt, p


def write_lines(path, line, n):
    path.write_text((line + "\n") * n)
    return path


def percentile(samples, q):
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(samples)
    k = max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))
    return s[k]


def proc_status(pid, key):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def proc_cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


# ---------------------------------------------------------------------------------------------
# taskgroupd


class Daemon:
    """One taskgroupd with its own socket and state directory, removed on stop()."""

    def __init__(self, ctx, name, max_running, bindir=None, tgctl_dir=None, config_text=""):
        self.ctx = ctx
        tgctl_dir = tgctl_dir or bindir
        self.tgctl_bin = str(Path(tgctl_dir) / "tgctl") if tgctl_dir else ctx.tgctl
        daemon_bin = str(Path(bindir) / "taskgroupd") if bindir else ctx.taskgroupd
        self.dir = ctx.scratch(name)
        (self.dir / "state").mkdir()
        self.socket = str(self.dir / "control.sock")
        config = self.dir / "empty.toml"
        config.write_text(config_text)  # No /etc or $XDG config leaks in.
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
                                 "LISTEN_FDS", "LISTEN_PID")}
        self.env["TASKGROUPD_SOCKET"] = self.socket
        self.stderr = open(ctx.out / f"daemon-{self.dir.name}.log", "w")
        self.proc = subprocess.Popen(
            [daemon_bin, "--config", str(config), "--socket", self.socket,
             "--state-dir", str(self.dir / "state"), "--max-running", str(max_running)],
            env=self.env, stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr)
        for _ in range(200):
            if Path(self.socket).exists() and self.tgctl("status", check=False)[1].returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"taskgroupd did not start; see {self.stderr.name}")

    @property
    def pid(self):
        return self.proc.pid

    def tgctl(self, *args, stdin=None, stdout=subprocess.DEVNULL, check=True):
        return run([self.tgctl_bin, *args], env=self.env, stdin=stdin, stdout=stdout, check=check)

    def status(self):
        _, p = self.tgctl("status", "--json", stdout=subprocess.PIPE)
        return json.loads(p.stdout)

    def rss_kib(self):
        return proc_status(self.pid, "VmRSS")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


class RpcClient:
    """A minimal JSON-RPC client on one persistent connection (docs/protocol.md)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.next_id = 1

    def send(self, method, params):
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.next_id += 1
        self.sock.sendall(json.dumps(msg, separators=(",", ":")).encode() + b"\n")

    def reply(self):
        line = self.file.readline()
        msg = json.loads(line)
        if "error" in msg:
            raise RuntimeError(f"rpc error: {msg['error']}")
        return msg["result"]

    def call(self, method, params):
        self.send(method, params)
        return self.reply()

    def close(self):
        self.file.close()
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# The tools. setup(P) once per concurrency, run(file, n, P) -> seconds per round, teardown().


class Xargs:
    name = "xargs"

    def setup(self, ctx, p):
        pass

    def run(self, ctx, file, n, p):
        with open(file) as f:
            dt, _ = run(["xargs", "-d", "\n", "-n1", f"-P{p}", "/bin/sh", "-c"], stdin=f)
        return dt

    def teardown(self):
        pass


class Parallel:
    name = "parallel"

    def setup(self, ctx, p):
        self.env = dict(os.environ, PARALLEL_SHELL="/bin/sh", TMPDIR=str(ctx.tmp))

    def run(self, ctx, file, n, p):
        with open(file) as f:
            dt, _ = run(["parallel", "--will-cite", "-j", str(p)], stdin=f, env=self.env)
        return dt

    def teardown(self):
        pass


class Tsp:
    """task-spooler: each queued job is a waiting client process; the server accepts at most
    ~1000 connections (TS_MAXCONN, capped at 1000 at compile time), so past ~994 queued jobs the
    enqueuing `tsp` blocks until a queued job has finished. We feed it with `xargs tsp` (one
    client per line, the cheapest way to enqueue) and wait for all with a last job queued with
    `-N P` (it starts only when all P slots are free, i.e. every earlier job has ended), then
    `tsp -w` on it. Job output goes to files in TMPDIR (tsp's default, like taskgroupd's logs)."""

    name = "tsp"

    def setup(self, ctx, p):
        self.dir = ctx.scratch(f"tsp-p{p}")
        self.env = dict(os.environ, TS_SOCKET=str(self.dir / "socket"), TMPDIR=str(self.dir),
                        TS_SLOTS=str(p))
        for attempt in range(3):  # Starts the server, which may be slow to come up under load.
            _, r = run(["tsp", "-S", str(p)], env=self.env, check=False)
            if r.returncode == 0:
                break
            log(f"tsp -S {p}: {r.stderr.strip()}; retrying")
            time.sleep(1)
        else:
            raise RuntimeError("the tsp server did not come up")

    def run(self, ctx, file, n, p):
        t0 = time.perf_counter()
        with open(file) as f:
            run(["xargs", "-d", "\n", "-n1", "tsp", "/bin/sh", "-c"], stdin=f, env=self.env)
        _, last = run(["tsp", "-N", str(p), "true"], env=self.env, stdout=subprocess.PIPE)
        run(["tsp", "-w", last.stdout.strip()], env=self.env)
        dt = time.perf_counter() - t0
        run(["tsp", "-C"], env=self.env)  # Output files stay until the end (see Context.scratch).
        return dt

    def teardown(self):
        run(["tsp", "-K"], env=self.env, check=False)
        time.sleep(0.2)


class Taskgroupd:
    """`tgctl submit -g G --batch FILE` then `tgctl wait G`; a fresh group name per round.
    With a bindir: another build (--baseline-bin), to compare two versions interleaved."""

    name = "taskgroupd"

    def __init__(self, name="taskgroupd", bindir=None):
        self.name = name
        self.bindir = bindir

    def setup(self, ctx, p):
        self.daemon = Daemon(ctx, f"{self.name}-p{p}", p, self.bindir)
        self.round = 0
        self.cpu = []  # Daemon CPU seconds per task, one entry per round.

    def run(self, ctx, file, n, p):
        self.round += 1
        group = f"b{self.round}"
        cpu0 = proc_cpu_seconds(self.daemon.pid)
        t0 = time.perf_counter()
        self.daemon.tgctl("submit", "-g", group, "--batch", str(file))
        self.daemon.tgctl("wait", group)  # Exit 0 only if every task succeeded.
        dt = time.perf_counter() - t0
        self.cpu.append((proc_cpu_seconds(self.daemon.pid) - cpu0) / n)
        return dt

    def teardown(self):
        self.daemon.stop()


def available_tools(ctx):
    tools = []
    for cls in (Xargs, Parallel, Tsp, Taskgroupd):
        if cls.name not in ctx.tools:
            continue
        binary = {"xargs": "xargs", "parallel": "parallel", "tsp": "tsp"}.get(cls.name)
        if binary and shutil.which(binary) is None:
            log(f"SKIP {cls.name}: '{binary}' not installed (apt-get install "
                f"{'task-spooler' if binary == 'tsp' else binary})")
            ctx.skipped.append(cls.name)
            continue
        tools.append(cls())
    if ctx.baseline_bin and "taskgroupd" in ctx.tools:
        tools.append(Taskgroupd("taskgroupd@baseline", ctx.baseline_bin))
    return tools


# ---------------------------------------------------------------------------------------------
# Workloads. Each appends rows to ctx.rows: (tool, workload, value, unit, ratio-to-xargs, note).


def interleaved(ctx, workload, line, n, p, ideal=None, skip=()):
    tools = [t for t in available_tools(ctx) if t.name not in skip]
    file = write_lines(ctx.tmp / f"cmds-{n}-{line.replace(' ', '_')}", line, n)
    for t in tools:
        t.setup(ctx, p)
    times = {t.name: [] for t in tools}
    try:
        for r in range(ctx.reps):
            for t in tools:
                dt = t.run(ctx, file, n, p)
                times[t.name].append(dt)
                log(f"{workload} round {r + 1}/{ctx.reps} {t.name}: {dt:.3f} s")
    finally:
        for t in tools:
            t.teardown()
    base = times.get("xargs")
    for t in tools:
        s = times[t.name]
        ratio = statistics.median(a / b for a, b in zip(s, base)) if base else None
        note = ""
        if isinstance(t, Taskgroupd):
            note = f"daemon CPU {statistics.median(t.cpu) * 1e3:.2f} ms/task"
        if isinstance(t, Tsp) and n > 990:
            note = "queue capped ~1000: enqueue blocks"
        if ideal:
            note = (note + "; " if note else "") + \
                f"{statistics.median(s) / ideal:.2f}x ideal {ideal:.3f} s"
        ctx.add(t.name, workload, statistics.median(s), "s", ratio, note, samples=s)


def w_trivial(ctx):
    for n in ctx.ns:
        for p in ctx.ps:
            skip = []
            if n > 2000 and not ctx.slow:
                # Measured on the reference machine: GNU parallel costs 3-15 ms per job (10 000
                # jobs x 3 rounds x 3 P: up to ~15 minutes alone) and tsp at P = 1 4-8 ms per
                # job (up to ~4 minutes). --skip-slow-peers leaves them out for a quicker look.
                if "parallel" in ctx.tools:
                    skip.append("parallel")
                    ctx.notes.append(f"parallel skipped at N={n} (all P): 3-15 ms per job here, "
                                     f"up to 15 minutes for these rows (--skip-slow-peers)")
                if p == 1 and "tsp" in ctx.tools:
                    skip.append("tsp")
                    ctx.notes.append(f"tsp skipped at N={n}, P=1: 4-8 ms per job here (each "
                                     f"enqueue waits for a free connection), up to 4 minutes "
                                     f"(--skip-slow-peers)")
            interleaved(ctx, f"{n} x exit 0, P={p}", TRIVIAL, n, p, skip=skip)


def w_sleep(ctx):
    n, p = 200, 16
    interleaved(ctx, f"{n} x sleep 0.05, P={p}", "sleep 0.05", n, p, ideal=n / p * 0.05)


def w_queue(ctx):
    """Batch submit of N into a paused group (tgctl start to exit = committed), RSS with N
    queued, then cancel of the group (tgctl cancel start to exit). A fresh daemon per round;
    with --baseline-bin, the baseline build runs in the same rounds, interleaved."""
    n = ctx.queue_n
    file = write_lines(ctx.tmp / f"cmds-{n}-exit", TRIVIAL, n)
    variants = [("taskgroupd", None)]
    if ctx.baseline_bin:
        variants.append(("taskgroupd@baseline", ctx.baseline_bin))
    res = {name: {"submit": [], "rss": [], "cancel": [], "idle_rss": []} for name, _ in variants}
    for r in range(ctx.reps):
        for name, bindir in variants:
            m = res[name]
            d = Daemon(ctx, "queue", 4, bindir)
            try:
                m["idle_rss"].append(d.rss_kib())
                d.tgctl("pause", "q")
                dt, _ = d.tgctl("submit", "-g", "q", "--batch", str(file))
                m["submit"].append(dt)
                st = d.status()
                assert st["queued"] == n, st
                m["rss"].append(d.rss_kib())
                dt, _ = d.tgctl("cancel", "q")
                m["cancel"].append(dt)
                assert d.status()["queued"] == 0
                log(f"queue round {r + 1} {name}: submit {m['submit'][-1]:.3f} s, rss "
                    f"{m['rss'][-1] / 1024:.1f} MiB, cancel {m['cancel'][-1]:.3f} s")
            finally:
                d.stop()
    for name, _ in variants:
        m = res[name]
        ctx.add(name, f"batch submit {n} (paused group)", statistics.median(m["submit"]), "s",
                None, "tgctl start to exit, committed", samples=m["submit"])
        ctx.add(name, f"cancel paused group of {n} queued", statistics.median(m["cancel"]), "s",
                None, "tgctl cancel start to exit", samples=m["cancel"])
        ctx.add(name, "RSS, idle daemon at start", statistics.median(m["idle_rss"]) / 1024, "MiB",
                None, "VmRSS", samples=m["idle_rss"])
        ctx.add(name, f"RSS, {n} queued", statistics.median(m["rss"]) / 1024, "MiB", None,
                "VmRSS", samples=m["rss"])


def w_rss_million(ctx):
    """1 000 000 queued in one paused group, submitted as 10 batches of 100 000; then a cancel
    of them all. One fresh daemon per round; medians over the rounds."""
    n, batches = 100_000, 10
    file = write_lines(ctx.tmp / f"cmds-{n}-exit", TRIVIAL, n)
    rsss, hwms, dbs, lasts, cancels, all_times = [], [], [], [], [], []
    for r in range(ctx.reps):
        d = Daemon(ctx, f"million-{r}", 4)
        try:
            d.tgctl("pause", "m")
            times = []
            for _ in range(batches):
                dt, _ = d.tgctl("submit", "-g", "m", "--batch", str(file))
                times.append(dt)
            assert d.status()["queued"] == n * batches
            rsss.append(d.rss_kib())
            hwms.append(proc_status(d.pid, "VmHWM"))
            dbs.append(sum(f.stat().st_size for f in (d.dir / "state").glob("*.db*")))
            log(f"1M queued, round {r + 1}/{ctx.reps}: rss {rsss[-1] / 1024:.1f} MiB, "
                f"batches {[round(t, 2) for t in times]}")
            t0 = time.perf_counter()
            d.tgctl("cancel", "m")
            cancels.append(time.perf_counter() - t0)
            lasts.append(times[-1])
            all_times += times
        finally:
            d.stop()
    ctx.add("taskgroupd", f"RSS, {n * batches} queued", statistics.median(rsss) / 1024, "MiB",
            None, f"peak {statistics.median(hwms) / 1024:.0f} MiB; store "
            f"{statistics.median(dbs) / 2**20:.0f} MiB on disk", samples=rsss)
    ctx.add("taskgroupd", f"batch submit of 100000 #10 (900000 already queued)",
            statistics.median(lasts), "s", None,
            f"all batches: {min(all_times):.2f}-{max(all_times):.2f} s", samples=lasts)
    ctx.add("taskgroupd", f"cancel paused group of {n * batches} queued",
            statistics.median(cancels), "s", None, "", samples=cancels)


def w_latency(ctx):
    """Submit round trips over one persistent connection, one request at a time, to a paused
    group (nothing runs). The client sends the same fields tgctl sends: argv, cwd and env."""
    n = ctx.latency_n
    p50s, p99s, maxes, all_samples = [], [], [], []
    for r in range(ctx.reps):
        d = Daemon(ctx, "latency", 4)
        try:
            d.tgctl("pause", "lat")
            c = RpcClient(d.socket)
            params = {"group": "lat", "argv": ["/bin/sh", "-c", TRIVIAL], "cwd": os.getcwd(),
                      "env": dict(os.environ)}
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                res = c.call("submit", params)
                samples.append((time.perf_counter() - t0) * 1e3)
                assert len(res["ids"]) == 1
            c.close()
        finally:
            d.stop()
        p50s.append(percentile(samples, 50))
        p99s.append(percentile(samples, 99))
        maxes.append(max(samples))
        all_samples.append(samples)
        log(f"latency round {r + 1}: p50 {p50s[-1]:.2f} ms p99 {p99s[-1]:.2f} ms "
            f"max {maxes[-1]:.2f} ms")
    ctx.add("taskgroupd", f"submit round trip p50 ({n} per round)", statistics.median(p50s), "ms",
            None, "durable; persistent connection", samples=p50s)
    ctx.add("taskgroupd", f"submit round trip p99 ({n} per round)", statistics.median(p99s), "ms",
            None, f"max of rounds {max(maxes):.1f} ms", samples=p99s)
    ctx.raw["latency_samples_ms"] = all_samples


def fsync_latency(path, n=200):
    """p50 / p99 in ms of a 4 KiB write + fdatasync on the state directory's file system, the
    floor under a durable commit (SQLite in WAL mode with synchronous=FULL syncs the WAL once per
    commit). Two patterns: overwriting the same 64 KiB (a WAL that is reused), and appending
    (a WAL that grows: the size change makes ext4 commit its journal too)."""
    out = {}
    for pattern in ("overwrite", "append"):
        f = path / "fsync-probe"
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        samples = []
        try:
            for i in range(n):
                os.pwrite(fd, b"x" * 4096, (i % 16 if pattern == "overwrite" else i) * 4096)
                t0 = time.perf_counter()
                os.fdatasync(fd)
                samples.append((time.perf_counter() - t0) * 1e3)
        finally:
            os.close(fd)
            f.unlink()
        out[pattern] = (round(percentile(samples, 50), 3), round(percentile(samples, 99), 3))
    return out


def w_wait(ctx):
    """Latency from the last task's exit to the waiting client's return.

    The task is `sleep 0.3; exec date +%s%N > FILE`: after `exec`, date is the task's leader,
    so the time it writes is taken just before the task exits (its write + exit follow).
    Two clients are measured, in separate samples:
      - tgctl: `tgctl wait G` started while the task sleeps; the end is taken when the harness
        has reaped tgctl (includes tgctl's reply handling and process exit);
      - rpc: the protocol's `wait` over a socket; the end is taken when the reply line is read.
    Both ends are CLOCK_REALTIME like `date +%s%N`."""
    d = Daemon(ctx, "wait", 4)
    results = {"tgctl": [], "rpc": []}
    try:
        for i in range(ctx.wait_n * 2):
            kind = "tgctl" if i % 2 == 0 else "rpc"
            group = f"w{i}"
            stamp = d.dir / f"exit-{i}"
            d.tgctl("submit", "-g", group, "--", "/bin/sh", "-c",
                    f"sleep 0.3; exec date +%s%N > {stamp}")
            if kind == "tgctl":
                d.tgctl("wait", group)
                end = time.time_ns()
            else:
                c = RpcClient(d.socket)
                c.call("wait", {"group": group})
                end = time.time_ns()
                c.close()
            exit_ns = int(stamp.read_text())
            results[kind].append((end - exit_ns) / 1e6)
        rounded = {k: [round(x, 2) for x in v] for k, v in results.items()}
        log(f"wait latency ms: {json.dumps(rounded)}")
        idle_after = idle_wakeups(ctx, d, "after work")
    finally:
        d.stop()
    for kind, s in results.items():
        ctx.add("taskgroupd", f"wait: last exit to {kind} return, p50", statistics.median(s), "ms",
                None, f"{len(s)} samples, max {max(s):.2f} ms", samples=s)
    ctx.rows.extend(idle_after)


def idle_wakeups(ctx, d, label):
    """Context switches of the daemon's thread(s) over ctx.idle_s seconds with no client and no
    task (every wakeup from epoll_wait is a context switch), plus epoll_wait entries counted by
    perf when the tracepoint is available."""
    time.sleep(1)
    pid = d.pid

    def switches():
        return sum(proc_status(pid, k) for k in ("voluntary_ctxt_switches",
                                                 "nonvoluntary_ctxt_switches"))

    perf = None
    if ctx.perf_tracepoints:
        perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "syscalls:sys_enter_epoll_wait",
                                 "-p", str(pid), "--", "sleep", str(ctx.idle_s)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    s0 = switches()
    time.sleep(ctx.idle_s)
    s1 = switches()
    note = f"ctx switches over {ctx.idle_s} s: {s1 - s0}"
    if perf:
        _, err = perf.communicate()
        count = next((l.split(",")[0] for l in err.splitlines() if "epoll_wait" in l), "?")
        if count == "<not counted>":
            count = "0 (never scheduled)"  # perf counts a task's events only while it runs.
        note += f"; epoll_wait calls (perf): {count}"
    rows = [("taskgroupd", f"idle wakeups/s ({label})", (s1 - s0) / ctx.idle_s, "1/s", None,
             note, [s1 - s0])]
    log(f"idle ({label}): {note}")
    return rows


def w_idle(ctx):
    d = Daemon(ctx, "idle", 4)
    try:
        rows = idle_wakeups(ctx, d, "fresh daemon")
    finally:
        d.stop()
    ctx.rows.extend(rows)


def w_profile(ctx):
    """Where the daemon's time goes for N trivial tasks at P = 4 (N = 2000; --n overrides).

    Three runs on one daemon, each a fresh group:
      1. no profiler: the baseline time;
      2. `perf trace -s`: every system call of the daemon's thread with its time, which shows
         time spent blocked inside a call (off-CPU), not only CPU;
      3. `perf record --call-graph dwarf --no-inherit`: the daemon's on-CPU profile (children
         not included), reported with and without children's share.
    Without perf, falls back to valgrind --tool=callgrind with N = 200 (which cannot work with
    valgrind 3.19, Debian 12's: it lacks pidfd_open, so tasks fail to start; it says so)."""
    n = ctx.ns[0] if ctx.n_given else 2000
    file = write_lines(ctx.tmp / f"cmds-{n}-exit", TRIVIAL, n)
    if not ctx.perf:
        return profile_callgrind(ctx)
    d = Daemon(ctx, "profile", 4)
    out = ctx.out
    try:
        def batch(group):
            cpu0 = proc_cpu_seconds(d.pid)
            t0 = time.perf_counter()
            d.tgctl("submit", "-g", group, "--batch", str(file))
            d.tgctl("wait", group)
            return time.perf_counter() - t0, proc_cpu_seconds(d.pid) - cpu0

        base, base_cpu = batch("plain")
        with open(out / "xargs-time.txt", "w") as f:
            xt, _ = run(["xargs", "-d", "\n", "-n1", "-P4", "/bin/sh", "-c"], stdin=open(file))
            f.write(f"{xt:.3f}\n")
        tracer = subprocess.Popen(["perf", "trace", "-s", "-p", str(d.pid), "-o",
                                   str(out / "profile-syscalls.txt")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        traced, _ = batch("traced")
        tracer.send_signal(signal.SIGINT)
        tracer.wait()
        rec = subprocess.Popen(["perf", "record", "-o", str(out / "perf.data"), "--no-inherit",
                                "-F", "4999", "--call-graph", "dwarf,16384", "-p", str(d.pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        recorded, _ = batch("recorded")
        rec.send_signal(signal.SIGINT)
        rec.wait()
        # Submit round trips (paused group, one connection) under `perf trace -s`: how much of
        # a durable submit is the fsync.
        d.tgctl("pause", "lat")
        tracer = subprocess.Popen(["perf", "trace", "-s", "-p", str(d.pid), "-o",
                                   str(out / "profile-submit-syscalls.txt")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        c = RpcClient(d.socket)
        lat = []
        for _ in range(500):
            t0 = time.perf_counter()
            c.call("submit", {"group": "lat", "argv": ["/bin/sh", "-c", TRIVIAL],
                              "cwd": os.getcwd(), "env": dict(os.environ)})
            lat.append((time.perf_counter() - t0) * 1e3)
        c.close()
        tracer.send_signal(signal.SIGINT)
        tracer.wait()
    finally:
        d.stop()
    for name, args in (("children", ["--children"]), ("self", ["--no-children"])):
        with open(out / f"profile-{name}.txt", "w") as f:
            subprocess.run(["perf", "report", "-i", str(out / "perf.data"), *args, "--sort", "sym",
                            "--stdio", "-g", "none", "--percent-limit", "0.5"],
                           stdout=f, stderr=subprocess.DEVNULL)
    with open(out / "profile-callers.txt", "w") as f:
        subprocess.run(["perf", "report", "-i", str(out / "perf.data"), "--children", "--sort",
                        "sym", "--stdio", "-g", "caller,0.5,callee,function,percent",
                        "--percent-limit", "3"], stdout=f, stderr=subprocess.DEVNULL)
    summary = (f"N={n} P=4: {base:.3f} s without profiler (xargs -P4 {xt:.3f} s), daemon CPU "
               f"{base_cpu / n * 1e3:.3f} ms/task; {traced:.3f} s under perf trace; "
               f"{recorded:.3f} s under perf record")
    (out / "profile-summary.txt").write_text(summary + "\n")
    log(summary)
    print(summary)
    print((out / "profile-syscalls.txt").read_text())
    print(f"500 submits under perf trace: p50 {percentile(lat, 50):.2f} ms, "
          f"p99 {percentile(lat, 99):.2f} ms")
    print((out / "profile-submit-syscalls.txt").read_text())
    top = [l for l in (out / "profile-children.txt").read_text().splitlines()
           if l.strip() and not l.startswith("#")]
    print("\n".join(top[:45]))
    ctx.add("taskgroupd", f"profile run {n} x exit 0, P=4 (no profiler)", base, "s", base / xt,
            f"daemon CPU {base_cpu / n * 1e3:.3f} ms/task; reports in {out}", samples=[base])


def profile_callgrind(ctx):
    n = 200
    file = write_lines(ctx.tmp / f"cmds-{n}-exit", TRIVIAL, n)
    if shutil.which("valgrind") is None:
        log("SKIP profile: neither perf nor valgrind works here")
        return
    # The daemon under valgrind: started by hand, as Daemon starts the binary directly.
    real = ctx.taskgroupd
    wrapper = ctx.tmp / "taskgroupd-callgrind"
    wrapper.write_text(f"#!/bin/sh\nexec valgrind --tool=callgrind "
                       f"--callgrind-out-file={ctx.out}/callgrind.out {real} \"$@\"\n")
    wrapper.chmod(0o755)
    ctx.taskgroupd = str(wrapper)
    try:
        d = Daemon(ctx, "callgrind", 4)
        try:
            d.tgctl("submit", "-g", "cg", "--batch", str(file))
            _, waited = d.tgctl("wait", "cg", check=False)
        finally:
            d.stop()
    finally:
        ctx.taskgroupd = real
    if waited.returncode != 0:
        # Valgrind 3.19 (Debian 12) does not implement pidfd_open (syscall 434): every task
        # fails to start under it, so there is nothing to profile.
        log(f"SKIP profile: tasks failed under valgrind (see {d.stderr.name}; valgrind 3.19 "
            f"lacks pidfd_open); install perf (linux-perf) instead")
        return
    with open(ctx.out / "profile-callgrind.txt", "w") as f:
        subprocess.run(["callgrind_annotate", "--inclusive=yes", str(ctx.out / "callgrind.out")],
                       stdout=f, stderr=subprocess.DEVNULL)
    print((ctx.out / "profile-callgrind.txt").read_text()[:6000])


def w_listload(ctx):
    """`status` round trips while 4 clients each `tgctl list` every task of a store of 100 000
    (queued in a paused group: fast to set up, and a list does the same work for any state).
    Per round and variant a fresh daemon: batch submit, VmHWM reset (clear_refs 5), then the 4
    lists start together while one persistent connection sends a `status` every 5 ms; the figures
    are that latency from when each status was due (p50/p99/max), the peak RSS during the lists
    (VmHWM) and VmRSS after them.
    With --baseline-bin: the baseline daemon with its own tgctl, and this daemon with the
    baseline's tgctl (an old client: one list request without a cursor), interleaved."""
    n, clients, period = ctx.queue_n, 4, 0.005
    file = write_lines(ctx.tmp / f"cmds-{n}-exit", TRIVIAL, n)
    variants = [("taskgroupd", None, None)]
    if ctx.baseline_bin:
        variants += [("taskgroupd@baseline", ctx.baseline_bin, None),
                     ("taskgroupd, baseline tgctl", None, ctx.baseline_bin)]
    keys = ("p50", "p99", "max", "hwm", "rss_after", "list_s")
    res = {name: {k: [] for k in keys} for name, _, _ in variants}
    for r in range(ctx.reps):
        for name, bindir, tgctl_dir in variants:
            m = res[name]
            d = Daemon(ctx, "listload", 4, bindir, tgctl_dir)
            try:
                d.tgctl("pause", "l")
                d.tgctl("submit", "-g", "l", "--batch", str(file))
                assert d.status()["queued"] == n
                Path(f"/proc/{d.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS.
                samples, done = [], threading.Event()

                def sample():
                    # A status is due every `period`; each one's latency counts from when it was
                    # due, so a stall counts once for every request it held up (a fixed-rate
                    # client, without coordinated omission).
                    c = RpcClient(d.socket)
                    due = time.perf_counter()
                    while not done.is_set():
                        time.sleep(max(0.0, due - time.perf_counter()))
                        c.call("status", {})
                        end = time.perf_counter()
                        while due <= end:
                            samples.append((end - due) * 1e3)
                            due += period
                    c.close()

                sampler = threading.Thread(target=sample)
                sampler.start()
                outs = [ctx.tmp / f"list-{i}.txt" for i in range(clients)]
                t0 = time.perf_counter()
                procs = [subprocess.Popen([d.tgctl_bin, "list"], env=d.env, stdout=open(o, "w"),
                                          stderr=subprocess.PIPE, text=True) for o in outs]
                codes = [p.wait() for p in procs]
                m["list_s"].append(time.perf_counter() - t0)
                done.set()
                sampler.join()
                assert codes == [0] * clients, [p.stderr.read() for p in procs]
                for o in outs:
                    with open(o) as f:
                        lines = sum(1 for _ in f)
                    assert lines == n + 1, f"{o}: {lines} lines"  # The header and n rows.
                    o.unlink()
                m["p50"].append(percentile(samples, 50))
                m["p99"].append(percentile(samples, 99))
                m["max"].append(max(samples))
                m["hwm"].append(proc_status(d.pid, "VmHWM"))
                m["rss_after"].append(d.rss_kib())
                log(f"listload round {r + 1} {name}: status p50 {m['p50'][-1]:.2f} ms p99 "
                    f"{m['p99'][-1]:.2f} ms max {m['max'][-1]:.1f} ms ({len(samples)} samples); "
                    f"peak RSS {m['hwm'][-1] / 1024:.1f} MiB, after {m['rss_after'][-1] / 1024:.1f}"
                    f" MiB; lists {m['list_s'][-1]:.2f} s")
            finally:
                d.stop()
    for name, _, _ in variants:
        m = res[name]
        w = f"{clients} x list of {n}:"
        ctx.add(name, f"{w} status p50", statistics.median(m["p50"]), "ms", None,
                "a status due every 5 ms, latency from when due", samples=m["p50"])
        ctx.add(name, f"{w} status p99", statistics.median(m["p99"]), "ms", None,
                f"max of rounds {max(m['max']):.1f} ms", samples=m["p99"])
        ctx.add(name, f"{w} peak RSS", statistics.median(m["hwm"]) / 1024, "MiB", None,
                "VmHWM, reset after the submit", samples=m["hwm"])
        ctx.add(name, f"{w} RSS after", statistics.median(m["rss_after"]) / 1024, "MiB", None,
                "VmRSS once the lists ended", samples=m["rss_after"])
        ctx.add(name, f"{w} wall time", statistics.median(m["list_s"]), "s", None,
                "all 4 tgctl, start to exit", samples=m["list_s"])


def w_workflow(ctx):
    """Dependencies at scale (issue 13): N tasks as a chain (each `after` the one before), as a
    fan-in (N tasks, then one task `after_group` them), and as N independent tasks, each set at
    max_running 1 so that all three run the same N processes one after another. Each set is
    submitted into a paused group (not timed; durable = false to make that quick), then the
    group is resumed; the figure is the time from the resume to the last end, per task. If a
    dependency costs O(1), the three kinds cost the same per task, at N = 1000 and 10 000."""
    ns = [1000, 3000] if ctx.quick else [1000, 10000]
    kinds = ("independent", "chain", "fan-in")
    window = 500  # Requests in flight on the connection: replies must not fill the socket.
    res = {(n, k): [] for n in ns for k in kinds}
    for n in ns:
        for r in range(ctx.reps):
            for kind in kinds:
                d = Daemon(ctx, f"workflow-{kind}", 1, config_text="durable = false\n")
                c = RpcClient(d.socket)
                try:
                    c.call("pause", {"group": "w"})
                    if kind == "chain":
                        first = c.call("submit", {"group": "w", "argv": ["true"]})["ids"][0]
                        for start in range(1, n, window):
                            count = min(window, n - start)
                            for i in range(start, start + count):
                                c.send("submit", {"group": "w", "argv": ["true"],
                                                  "after": [first + i - 1]})
                            for i in range(start, start + count):
                                assert c.reply()["ids"] == [first + i]
                        wait = {"group": "w"}
                    else:
                        c.call("submit", {"group": "w", "tasks": [{"argv": ["true"]}] * n})
                        wait = {"group": "w"}
                        if kind == "fan-in":
                            sink = c.call("submit", {"group": "sink", "argv": ["true"],
                                                     "after_group": "w"})["ids"][0]
                            wait = {"ids": [sink]}
                    t0 = time.perf_counter()
                    c.call("resume", {"group": "w"})
                    got = c.call("wait", wait)
                    dt = time.perf_counter() - t0
                    assert got["all_succeeded"], got
                    res[(n, kind)].append(dt / n * 1e3)
                    log(f"workflow N={n} {kind} round {r + 1}: {dt:.2f} s, "
                        f"{dt / n * 1e3:.3f} ms/task")
                finally:
                    c.close()
                    d.stop()
    for n in ns:
        base = statistics.median(res[(n, "independent")])
        for kind in kinds:
            s = res[(n, kind)]
            ctx.add("taskgroupd", f"{n} tasks at P=1, {kind}: per task", statistics.median(s),
                    "ms", None, f"{statistics.median(s) / base:.2f}x independent", samples=s)


WORKLOADS = {
    "trivial": w_trivial,
    "sleep": w_sleep,
    "queue": w_queue,
    "million": w_rss_million,
    "latency": w_latency,
    "wait": w_wait,
    "idle": w_idle,
    "listload": w_listload,
    "workflow": w_workflow,
    "profile": w_profile,  # Not in the default set: run with --only profile.
}
DEFAULT_WORKLOADS = [w for w in WORKLOADS if w != "profile"]


# ---------------------------------------------------------------------------------------------


class Context:
    def __init__(self, args):
        # Absolute paths: tsp's server chdirs to / before it binds TS_SOCKET.
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(args.tmp).resolve() if args.tmp else self.out / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.taskgroupd = str(Path(args.bin).resolve() / "taskgroupd")
        self.tgctl = str(Path(args.bin).resolve() / "tgctl")
        self.tools = args.tools.split(",")
        self.reps = args.reps
        quick = self.quick = args.quick
        self.ns = [int(x) for x in args.n.split(",")] if args.n else \
            ([2000] if quick else [2000, 10000])
        self.ps = [int(x) for x in args.p.split(",")] if args.p else \
            ([4] if quick else [1, 4, 64])
        self.queue_n = 100_000
        self.latency_n = 500 if quick else 2000
        self.wait_n = 5 if quick else 10
        self.idle_s = 5 if quick else 10
        self.n_given = bool(args.n)
        self.perf = works(["perf", "stat", "-e", "instructions", "true"])
        self.perf_tracepoints = works(["perf", "stat", "-e", "syscalls:sys_enter_epoll_wait",
                                       "true"])
        self.slow = not args.skip_slow_peers
        self.baseline_bin = args.baseline_bin
        self.seq = 0
        self.rows = []
        self.notes = []
        self.skipped = []
        self.raw = {}

    def scratch(self, name):
        """A new directory for one daemon or tsp server. Nothing is deleted before the end of the
        run: on ext4 without a journal (this machine), creating a file costs a scan past every
        inode deleted in the last seconds to minutes (ext4 recently_deleted()), so deleting one
        round's logs would slow the next round's log creation, a cost xargs never pays."""
        self.seq += 1
        d = self.tmp / f"{self.seq:03d}-{name}"
        d.mkdir(parents=True)
        return d

    def add(self, tool, workload, value, unit, ratio, note, samples):
        self.rows.append((tool, workload, value, unit, ratio, note, samples))


def works(cmd):
    if shutil.which(cmd[0]) is None:
        return False
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    mem = proc_status_file("/proc/meminfo", "MemTotal")
    load = open("/proc/loadavg").read().split()[:3]
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_mib": mem // 1024,
            "kernel": os.uname().release, "loadavg_at_start": load}


def filesystem(path):
    """(device, type) of the mount holding path."""
    best = ("?", "?", "")
    path = str(path.resolve())
    for line in open("/proc/mounts"):
        dev, mnt, fstype = line.split()[:3]
        if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[2]):
            best = (dev, fstype, mnt)
    return f"{best[0]} ({best[1]}) on {best[2]}"


def proc_status_file(path, key):
    for line in open(path):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def fmt(v):
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def table(ctx):
    lines = ["| tool | workload | median | ratio to xargs -P (same rounds) | note |",
             "|---|---|---|---|---|"]
    for tool, workload, value, unit, ratio, note, _ in ctx.rows:
        r = "" if ratio is None else f"{ratio:.2f}x"
        lines.append(f"| {tool} | {workload} | {fmt(value)} {unit} | {r} | {note} |")
    for s in sorted(set(ctx.skipped)):
        lines.append(f"| {s} | (all) | skipped: not installed | | |")
    lines += [""] + [f"- {n}" for n in dict.fromkeys(ctx.notes)]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="directory with taskgroupd and tgctl")
    ap.add_argument("--out", required=True, help="directory for raw results")
    ap.add_argument("--tmp", help="scratch directory (state dirs, command files)")
    ap.add_argument("--only", default=",".join(DEFAULT_WORKLOADS),
                    help=f"comma list of workloads (default: all but profile): "
                         f"{','.join(WORKLOADS)}")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma list of tools")
    ap.add_argument("--reps", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--n", help="trivial workload: comma list of N (default 2000,10000)")
    ap.add_argument("--p", help="trivial workload: comma list of P (default 1,4,64)")
    ap.add_argument("--baseline-bin", help="another build's bin dir, run as one more tool in "
                    "the interleaved workloads (trivial, sleep) to compare two versions")
    ap.add_argument("--skip-slow-peers", action="store_true",
                    help="skip GNU parallel at N=10000 and tsp at N=10000, P=1 "
                         "(saves up to ~20 minutes; not for documented figures)")
    ap.add_argument("--quick", action="store_true",
                    help="N=2000 P=4 only, fewer latency samples, no 1M RSS")
    args = ap.parse_args()
    if args.reps < 3 and not args.quick:
        ap.error("--reps must be at least 3 (a median of fewer rounds is not a figure); "
                 "use --quick for a rough look")
    ctx = Context(args)
    only = args.only.split(",")
    if args.quick and args.only == ",".join(DEFAULT_WORKLOADS):
        only.remove("million")
    for w in only:
        if w not in WORKLOADS:
            sys.exit(f"unknown workload '{w}'; known: {', '.join(WORKLOADS)}")
    info = machine()
    info["state_fs"] = filesystem(ctx.tmp)
    repo = Path(__file__).resolve().parent.parent
    git = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    info["git"] = git.stdout.strip() or "?"
    info["binaries"] = {b: time.strftime("%Y-%m-%d %H:%M", time.localtime(Path(b).stat().st_mtime))
                        for b in (ctx.taskgroupd, ctx.tgctl)}
    info["fsync_p50_p99_ms"] = fsync_latency(ctx.tmp)
    log(f"machine: {info}")
    started = time.time()
    try:
        for w in only:
            log(f"workload {w}")
            WORKLOADS[w](ctx)
    finally:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    info["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    info["duration_s"] = round(time.time() - started)
    info["args"] = vars(args)
    t = table(ctx)
    (ctx.out / "table.md").write_text(t + "\n")
    (ctx.out / "results.json").write_text(json.dumps(
        {"machine": info, "rows": [dict(zip(("tool", "workload", "value", "unit", "ratio",
                                             "note", "samples"), r)) for r in ctx.rows],
         **ctx.raw}, indent=1))
    print(f"\ncommit {info['git']}; binaries built {info['binaries']}")
    print(f"machine: {info['nproc']} x {info['cpu']}, {info['mem_mib']} MiB, kernel "
          f"{info['kernel']}; state on {info['state_fs']}; 4 KiB write+fdatasync p50/p99 ms "
          f"{info['fsync_p50_p99_ms']}; load average {' '.join(info['loadavg_at_start'])} -> "
          f"{' '.join(info['loadavg_at_end'])}; {info['duration_s']} s; {ctx.reps} rounds\n")
    print(t)
    print(f"\nraw results: {ctx.out}/results.json")


if __name__ == "__main__":
    main()
