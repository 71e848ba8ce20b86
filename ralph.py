#!/usr/bin/env python3
"""ralph: the loop. Run a campaign slice with a fresh seed, check, log,
repeat until something breaks (or the iterations or the time budget run out).

Each iteration runs `raft-driver campaign` (one slice of the matrix, a fresh
seed) and writes logs/iteration-N.log: the command, the campaign's own
output, every run's verdict, the timings and the campaign folder. On the
first invalid run it stops (unless --keep-going) and prints the commands
that replay the run and re-check its history.

Exit code (for gating releases): 1 if any run was invalid, 3 if none was but
some were unknown (or a campaign was cut short), 2 for bad usage, 0 if every
run was valid.

Python 3 standard library only. Options it does not know are passed to
`raft-driver campaign` unchanged, e.g.:

    python3 ralph.py --time-budget 3600 --slices 4 -- --nodes 3,5 --time-limit 60
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

EXIT_VALID, EXIT_INVALID, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3
HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="ralph.py",
        description="Iterate raft-driver campaigns until a run is invalid, "
        "the iterations or the time budget run out.",
        epilog="Unknown options (and everything after --) go to "
        "`raft-driver campaign`.",
    )
    p.add_argument("--iterations", type=int, help="stop after N iterations")
    p.add_argument(
        "--until-failure",
        action="store_true",
        help="iterate until a run is invalid (bounded by --iterations and "
        "--time-budget if given)",
    )
    p.add_argument(
        "--time-budget",
        type=float,
        help="seconds for the whole loop: no iteration starts that is not "
        "expected to fit, and a campaign still running at the end is stopped "
        "(its finished runs are kept)",
    )
    p.add_argument("--bug", help="switch on a deliberate defect in raft-node")
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="do not stop at the first invalid run",
    )
    p.add_argument(
        "--slices",
        type=int,
        default=1,
        help="split the campaign matrix into N slices; iteration i runs "
        "slice ((i-1) mod N)+1 (default 1: the whole matrix each time)",
    )
    p.add_argument(
        "--seed",
        type=int,
        help="seed of the seed sequence (default: random), for a "
        "reproducible loop",
    )
    p.add_argument(
        "--driver",
        default=os.path.join(HERE, "target", "release", "raft-driver"),
        help="the raft-driver binary (default: target/release/raft-driver)",
    )
    p.add_argument("--results", default="results", help="results folder")
    p.add_argument("--logs", default="logs", help="folder of iteration-N.log")
    args, rest = p.parse_known_args(argv)
    if rest and rest[0] == "--":
        rest = rest[1:]
    args.campaign_args = [a for a in rest if a != "--"]
    if args.iterations is not None and args.iterations < 1:
        p.error("--iterations must be at least 1")
    if args.time_budget is not None and not args.time_budget > 0:
        p.error("--time-budget must be a positive number of seconds")
    if args.slices < 1:
        p.error("--slices must be at least 1")
    for own in ("--seed", "--shard", "--results", "--bug"):
        if any(a == own or a.startswith(own + "=") for a in args.campaign_args):
            p.error(
                "%s is set by ralph for each iteration; pass it to ralph "
                "itself (--shard: use --slices)" % own
            )
    if not (os.path.isfile(args.driver) and os.access(args.driver, os.X_OK)):
        p.error(
            "raft-driver not found at %s (cargo build --release --workspace, "
            "or pass --driver PATH)" % args.driver
        )
    return args


def next_iteration_number(logs):
    """One more than the highest iteration-N.log in `logs` (1 if none)."""
    best = 0
    for name in os.listdir(logs):
        m = re.fullmatch(r"iteration-(\d+)\.log", name)
        if m:
            best = max(best, int(m.group(1)))
    return best + 1


def campaign_folder(output):
    """The campaign folder raft-driver announced, or None."""
    m = re.search(r"^raft-driver: campaign folder (.+?) \(", output, re.M)
    return m.group(1) if m else None


def read_summary(folder):
    try:
        with open(os.path.join(folder, "summary.json")) as f:
            return json.load(f)
    except (OSError, ValueError, TypeError):
        return None


class Budget:
    """The loop's time budget (None: unlimited)."""

    def __init__(self, seconds):
        self.start = time.monotonic()
        self.seconds = seconds

    def elapsed(self):
        return time.monotonic() - self.start

    def left(self):
        if self.seconds is None:
            return None
        return self.seconds - self.elapsed()


def run_campaign(cmd, log, timeout):
    """Runs `cmd`, copying its output to `log` and stderr; past `timeout`
    seconds it is asked to stop (SIGTERM: it kills its nodes and writes the
    summary of the runs that finished), then killed 60 s later. Returns
    (exit code, output text, stopped by the budget)."""
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    stopped = threading.Event()

    def stop():
        stopped.set()
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        except OSError:
            pass

    timer = None
    if timeout is not None:
        timer = threading.Timer(max(timeout, 0.0), stop)
        timer.daemon = True
        timer.start()
    chunks = []
    try:
        for line in proc.stdout:
            chunks.append(line)
            log.write(line)
            log.flush()
            sys.stderr.write(line)
        code = proc.wait()
    except KeyboardInterrupt:
        # ctrl-c reaches the campaign too; wait for it to clean up.
        code = proc.wait()
        raise
    finally:
        if timer is not None:
            timer.cancel()
    return code, "".join(chunks), stopped.is_set()


def format_run(r, folder):
    d = os.path.join(folder, r["dir"]) if r.get("dir") else "?"
    line = "  %-8s %-28s nodes=%s seed=%s ops=%s p99=%s %.0fs %s" % (
        r["verdict"],
        r["nemesis"],
        r["nodes"],
        r["seed"],
        r.get("ops") if r.get("ops") is not None else "-",
        "%.1fms" % r["p99_ms"] if r.get("p99_ms") is not None else "-",
        r.get("elapsed_s", 0.0),
        d,
    )
    if r["verdict"] != "valid" and r.get("reason"):
        line += "\n           " + r["reason"].splitlines()[0]
    return line


def reproduce_commands(driver, folder, summary):
    """replay and check commands for every invalid run of a campaign."""
    out = []
    checker = os.path.join(os.path.dirname(driver), "raft-checker")
    for r in summary.get("runs", []):
        if r.get("verdict") == "invalid" and r.get("dir"):
            d = os.path.join(folder, r["dir"])
            out.append(
                "invalid run %s-n%s-seed%s: %s\n  replay: %s replay %s\n  check:  %s check %s"
                % (r["nemesis"], r["nodes"], r["seed"], d, driver, d, checker, d)
            )
    return out


def main(argv):
    args = parse_args(argv)
    os.makedirs(args.logs, exist_ok=True)
    budget = Budget(args.time_budget)
    rng = random.Random(args.seed) if args.seed is not None else random.SystemRandom()
    if args.iterations is None and args.time_budget is None and not args.until_failure:
        args.iterations = 1
    worst = EXIT_VALID
    done = 0
    last_duration = None
    first = next_iteration_number(args.logs)
    while True:
        if args.iterations is not None and done >= args.iterations:
            break
        left = budget.left()
        if left is not None:
            # Do not start what is not expected to fit (the first one always
            # starts: a nightly run that does nothing proves nothing).
            if left <= 0 or (last_duration is not None and last_duration > left):
                print("ralph: time budget spent after %d iterations" % done)
                break
        n = first + done
        seed = rng.randrange(1, 10**9)
        cmd = [args.driver, "campaign", "--seed", str(seed), "--results", args.results]
        if args.slices > 1:
            cmd += ["--shard", "%d/%d" % (done % args.slices + 1, args.slices)]
        if args.bug:
            cmd += ["--bug", args.bug]
        cmd += args.campaign_args
        log_path = os.path.join(args.logs, "iteration-%d.log" % n)
        started = time.time()
        t0 = time.monotonic()
        with open(log_path, "w") as log:
            log.write("# ralph iteration %d\n" % n)
            log.write("started: %s UTC\n" % time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)))
            log.write("seed: %d\n" % seed)
            log.write("command: %s\n\n" % " ".join(cmd))
            log.flush()
            try:
                code, output, stopped = run_campaign(cmd, log, budget.left())
            except KeyboardInterrupt:
                log.write("\ninterrupted (ctrl-c)\n")
                print("ralph: interrupted; see %s" % log_path)
                return EXIT_UNKNOWN
            duration = time.monotonic() - t0
            folder = campaign_folder(output)
            summary = read_summary(folder) if folder else None
            log.write("\n# result\n")
            log.write("exit code: %d\n" % code)
            log.write("duration: %.1f s\n" % duration)
            log.write("campaign folder: %s\n" % (folder or "(none)"))
            if stopped:
                log.write("stopped: the time budget ran out during this campaign\n")
            if summary:
                c = summary.get("counts", {})
                log.write(
                    "verdicts: %d runs of %d planned: %d valid, %d invalid, %d unknown\n"
                    % (
                        len(summary.get("runs", [])),
                        summary.get("planned", 0),
                        c.get("valid", 0),
                        c.get("invalid", 0),
                        c.get("unknown", 0),
                    )
                )
                for r in summary.get("runs", []):
                    log.write(format_run(r, folder) + "\n")
            repro = reproduce_commands(args.driver, folder, summary) if summary else []
            for line in repro:
                log.write(line + "\n")
        done += 1
        last_duration = duration
        if stopped and summary and code != EXIT_USAGE:
            # Cut by the budget: judge the runs that finished (the one cut
            # short is not counted by the campaign).
            c = summary.get("counts", {})
            code = EXIT_INVALID if c.get("invalid") else EXIT_UNKNOWN if c.get("unknown") else EXIT_VALID
        verdict = {0: "valid", 1: "INVALID", 2: "bad usage", 3: "unknown"}.get(code, "error %d" % code)
        print(
            "ralph: iteration %d: %s in %.0f s (seed %d) %s; log %s"
            % (n, verdict, duration, seed, folder or "", log_path)
        )
        if code == EXIT_USAGE:
            return EXIT_USAGE
        if code == EXIT_INVALID:
            worst = EXIT_INVALID
            for line in repro:
                print(line)
            if not args.keep_going:
                print("ralph: stopping at the first invalid run (--keep-going to go on)")
                break
        elif code != EXIT_VALID and worst == EXIT_VALID:
            worst = EXIT_UNKNOWN
        if stopped:
            print("ralph: time budget spent during iteration %d" % n)
            break
    print("ralph: %d iterations in %.0f s; exit %d" % (done, budget.elapsed(), worst))
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
