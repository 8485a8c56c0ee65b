"""Guest stage of the kernel-tier harness (runs as root inside the VM; see vm.py).

    python -I -S guest_stage.py JOB_DIR

Reads JOB_DIR/job.json (argv, cwd, env, modules), prints the guest kernel release, loads
the modules, runs the command and exits with its exit code. Progress and timings go to
JOB_DIR/guest.json, which the host reads back (JOB_DIR is shared read-write).

Deliberately tiny: under TCG every imported module costs (Python's startup is ~1.5 s cold
over 9p, `import subprocess` alone pulls in threading/selectors), so this imports only
os, sys, json and time, and runs processes with fork/exec.
"""

import json
import os
import sys
import time

MARK = "netlab-vm:"


def _spawn(argv, cwd=None, env=None, quiet=False):
    """fork/exec argv; return its exit code (128+N for signal N, 127 if not runnable)."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            if quiet:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
            if cwd:
                os.chdir(cwd)
            if env is None:
                os.execvp(argv[0], argv)
            else:
                os.execvpe(argv[0], argv, env)
        except OSError as exc:
            os.write(2, f"{MARK} cannot run {argv[0]}: {exc}\n".encode())
        os._exit(127)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def main(job_dir):
    with open(os.path.join(job_dir, "job.json")) as fh:
        spec = json.load(fh)
    release = os.uname().release
    info = {"release": release}

    def save():
        tmp = os.path.join(job_dir, "guest.json.tmp")
        with open(tmp, "w") as fh:
            json.dump(info, fh)
        os.replace(tmp, os.path.join(job_dir, "guest.json"))

    try:
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        uptime = -1.0
    info["uptime_at_start"] = uptime
    print(f"{MARK} guest up (kernel {release}, uptime {uptime:.1f} s, {os.cpu_count()} CPUs)",
          flush=True)
    save()

    t0 = time.monotonic()
    modules = spec.get("modules") or []
    if modules:
        _spawn(["modprobe", "-a", *modules], quiet=True)
    missing = [m for m in modules if not os.path.isdir("/sys/module/" + m.replace("-", "_"))]
    info["modules_seconds"] = time.monotonic() - t0
    info["modules_missing"] = missing
    print(f"{MARK} modules loaded in {info['modules_seconds']:.1f} s"
          + (f"; NOT available: {', '.join(missing)}" if missing
             else f" ({len(modules)} requested, all present)"), flush=True)
    save()

    env = dict(spec["env"])
    home = env.get("HOME")
    if home:
        os.makedirs(home, exist_ok=True)
    t0 = time.monotonic()
    rc = _spawn(spec["argv"], cwd=spec["cwd"], env=env)
    info["command_seconds"] = time.monotonic() - t0
    info["returncode"] = rc
    save()
    print(f"{MARK} command exited {rc} after {info['command_seconds']:.1f} s", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
