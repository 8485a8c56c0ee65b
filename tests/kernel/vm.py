"""Kernel-tier harness: run a command as root inside a VM booted from Debian's stock kernel.

    python -m tests.kernel.vm [options] [--] CMD [ARG...]
    python -m tests.kernel.vm -- python -m pytest tests/kernel -v

The VM is virtme-ng (``vng``) booting the cached stock kernel (`tests.kernel.cache`, fetched
on first use) with the host's root filesystem shared read-only over 9p (``--force-9p``).
Inside, as root, a small guest stage (``guest_stage.py``): prints the guest
kernel release, loads the modules the tests need (openvswitch, ip_vs + schedulers, ipvlan,
sch_netem, 8021q, ...; see `DEFAULT_MODULES`), then runs CMD in the working directory with
the same Python environment (the venv is on the shared filesystem) and exits with CMD's
exit code, which becomes this command's exit code. Guest output is streamed as it comes.

What the guest may write: /tmp, /var, /run are guest-private overlays/tmpfs; the repo
directory is an overlay (writable in the guest, writes are discarded); the job directory
(a host temp dir) is shared read-write: that is how results come back. The rest of the host
filesystem is read-only to the guest. The host's /lib/modules is never touched: virtme-ng
mounts a tmpfs over /lib/modules inside the guest and links <release> to the cache.

KVM is used when it really works here (``/dev/kvm`` opens, a VM can be created, and the
CPU advertises vmx/svm); otherwise TCG (``--disable-kvm``), ~10x slower but fine for
network tests. The whole VM run is killed (process group) after ``--timeout`` seconds.

Environment: NETLAB_VM_KVM=auto|0|1, NETLAB_VM_MEMORY (default 2G), NETLAB_VM_CPUS
(default: min(2, host CPUs)), NETLAB_VM_TIMEOUT (seconds, default 900), plus the kernel
cache variables of `tests.kernel.cache`. Guest-side env: NETLAB_KERNEL_TIER_GUEST=1 and
NETLAB_VM_JOB_DIR=<shared dir>.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
GUEST_STAGE = HERE.parent / "guest_stage.py"
GUEST_ENV = "NETLAB_KERNEL_TIER_GUEST"
JOB_DIR_ENV = "NETLAB_VM_JOB_DIR"
MARK = "netlab-vm:"

#: Modules loaded in the guest before the command: every kernel feature of
#: netlab.capabilities.KERNEL_FEATURES except br_netfilter (loading it makes bridges run
#: iptables on bridged frames, which changes what a lab's bridges do; tests that want it
#: declare the feature and the plugin loads it).
DEFAULT_MODULES: tuple[str, ...] = (
    "veth", "bridge", "dummy", "vxlan", "macvlan", "ipvlan", "8021q", "openvswitch",
    "ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "sch_netem", "nf_tables", "ip_tables",
    "nf_conntrack", "nf_nat", "ip_set",
)

#: Modules udev would load for the emulated q35 machine's devices (AHCI, CD-ROM, LPC,
#: SMBus, watchdog, PC speaker, KVM because `-cpu max` shows svm/vmx, CPU crypto drivers).
#: None is needed; under TCG loading them costs ~3 s of boot. The kernel command line
#: `modprobe.blacklist=` stops alias (udev) loading only: an explicit modprobe still works.
UDEV_BLACKLIST: tuple[str, ...] = (
    "kvm", "kvm_amd", "kvm_intel", "ccp", "irqbypass", "ahci", "libahci", "libata", "sr_mod",
    "cdrom", "sg", "scsi_mod", "iTCO_wdt", "iTCO_vendor_support", "intel_pmc_bxt", "lpc_ich",
    "i2c_i801", "i2c_smbus", "pcspkr", "psmouse", "serio_raw", "evdev", "i6300esb", "button",
    "aesni_intel", "crypto_simd", "cryptd", "sha512_ssse3", "sha256_ssse3", "sha1_ssse3",
    "ghash_clmulni_intel", "crc32_pclmul", "crct10dif_pclmul", "crc32c_intel", "powernow_k8",
    "qemu_fw_cfg",
)

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01


class VMError(RuntimeError):
    """The VM could not be started (missing prerequisite, no kernel)."""


@dataclass
class VMResult:
    returncode: int
    kernel_release: str | None = None      # the kernel booted (from the cache)
    guest_release: str | None = None       # uname -r reported from inside (None: never ran)
    accel: str = "tcg"
    boot_seconds: float | None = None      # host wall clock: vng start -> guest stage up
    modules_seconds: float | None = None   # guest: loading modules
    command_seconds: float | None = None   # guest: the command itself
    total_seconds: float = 0.0             # host wall clock, whole VM run
    timed_out: bool = False
    modules_missing: tuple[str, ...] = ()
    tail: list[str] = field(default_factory=list)   # last lines of guest output

    def timing_line(self) -> str:
        def f(x):
            return "?" if x is None else f"{x:.1f} s"
        return (f"boot {f(self.boot_seconds)}, modules {f(self.modules_seconds)}, "
                f"command {f(self.command_seconds)}, total {f(self.total_seconds)} "
                f"({self.accel.upper()})")


# ------------------------------------------------------------------------- host side
def kvm_usable() -> bool:
    """True if hardware virtualisation really works for a normal guest here.

    An openable /dev/kvm is not enough: some hosts expose a KVM that cannot run a stock
    kernel (e.g. a paravirtual `kvm-pvm` inside a VM without vmx/svm), where qemu starts and
    the guest hangs. So: /dev/kvm opens, API version 12, a VM can be created, and the CPU
    flags show vmx or svm.
    """
    setting = os.environ.get("NETLAB_VM_KVM", "auto").lower()
    if setting in ("0", "no", "off", "false"):
        return False
    if setting in ("1", "yes", "on", "true"):
        return True
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if fcntl.ioctl(fd, KVM_GET_API_VERSION) != 12:
            return False
        vm_fd = fcntl.ioctl(fd, KVM_CREATE_VM, 0)
        os.close(vm_fd)
    except OSError:
        return False
    finally:
        os.close(fd)
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(line.startswith("flags") and (" vmx" in line or " svm" in line)
               for line in flags.splitlines())


def _which(name: str, extra: Sequence[str] = ()) -> str | None:
    for d in extra:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/sbin", "/usr/lib/systemd", "/lib/systemd"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def find_vng() -> str:
    vng = _which("vng", [str(Path(sys.executable).parent)])
    if vng is None:
        raise VMError("vng not found: install the PyPI package virtme-ng into the venv "
                      "(`make setup`)")
    return vng


def check_prerequisites() -> list[str]:
    """Problems that would stop virtme-ng from booting and talking to the guest."""
    problems = []
    if _which("qemu-system-x86_64") is None:
        problems.append("qemu-system-x86_64 missing (apt-get install --no-install-recommends "
                        "qemu-system-x86)")
    if not any(_which(b) for b in ("busybox", "busybox-static", "busybox.static")):
        problems.append("busybox missing (apt-get install busybox-static): virtme-ng builds "
                        "the guest initramfs with it")
    if _which("systemd-udevd") is None and _which("udevd") is None:
        problems.append("udevd missing (apt-get install udev): without it the guest has no "
                        "/dev/virtio-ports names, and the command's output and exit code "
                        "are lost")
    return problems


def default_memory() -> str:
    return os.environ.get("NETLAB_VM_MEMORY", "2G")


def default_cpus() -> int:
    try:
        return int(os.environ["NETLAB_VM_CPUS"])
    except (KeyError, ValueError):
        return max(1, min(2, os.cpu_count() or 1))


def default_timeout() -> float:
    try:
        return float(os.environ["NETLAB_VM_TIMEOUT"])
    except (KeyError, ValueError):
        return 900.0


def guest_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the command in the guest (the guest starts with an almost empty one)."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{venv_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/tmp/netlab-vm-home",   # /root is read-only in the guest
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": os.environ.get("TERM", "dumb"),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        GUEST_ENV: "1",
    }
    if os.environ.get("VIRTUAL_ENV"):
        env["VIRTUAL_ENV"] = os.environ["VIRTUAL_ENV"]
    for key, value in os.environ.items():
        if key in ("PYTHONPATH", "NO_COLOR", "FORCE_COLOR", "PY_COLORS", "COLUMNS") or (
                key.startswith("NETLAB_") and not key.startswith("NETLAB_VM_")
                and key != GUEST_ENV):
            env[key] = value
    env.update(extra or {})
    return env


def run(cmd: Sequence[str], *, cwd: str | os.PathLike | None = None,
        env: Mapping[str, str] | None = None, timeout: float | None = None,
        memory: str | None = None, cpus: int | None = None, kvm: bool | None = None,
        modules: Sequence[str] = DEFAULT_MODULES,
        output: Callable[[str], None] | None = None, prefix: str = "",
        job_dir: str | os.PathLike | None = None, log: Callable[[str], None] | None = None,
        on_start: Callable[[subprocess.Popen], None] | None = None,
        ) -> VMResult:
    """Boot the VM, run `cmd` (argv) as root in `cwd`, stream output, return the result.

    `output` receives each guest output line (default: written to stdout with `prefix`).
    `job_dir`: the host directory shared read-write with the guest (default: a temp dir
    removed afterwards); the guest sees it at the same path and finds it in
    $NETLAB_VM_JOB_DIR. `on_start` receives the VM's process (its own process group) as
    soon as it runs, so that another thread can end it with `stop`. Raises `VMError` when
    the VM cannot be started at all.
    """
    from tests.kernel import cache

    if not cmd:
        raise VMError("no command to run in the VM")
    log = log or (lambda m: print(f"{MARK} {m}", file=sys.stderr, flush=True))
    if output is None:
        def output(line: str) -> None:
            sys.stdout.write(prefix + line)
            sys.stdout.flush()
    problems = check_prerequisites()
    if problems:
        raise VMError("cannot boot the kernel-tier VM: " + "; ".join(problems))
    vng = find_vng()
    try:
        kernel = cache.ensure(log=log)
    except cache.KernelCacheError as exc:
        raise VMError(str(exc)) from exc

    cwd = Path(cwd or os.getcwd()).resolve()
    timeout = default_timeout() if timeout is None else timeout
    use_kvm = kvm_usable() if kvm is None else kvm
    own_job_dir = job_dir is None
    job = Path(job_dir or tempfile.mkdtemp(prefix="netlab-vm-")).resolve()
    job.mkdir(parents=True, exist_ok=True)
    result = VMResult(returncode=1, kernel_release=kernel.release,
                      accel="kvm" if use_kvm else "tcg")
    try:
        spec = {
            "argv": list(cmd),
            "cwd": str(cwd),
            "env": guest_env({JOB_DIR_ENV: str(job), **(env or {})}),
            "modules": list(modules),
        }
        (job / "job.json").write_text(json.dumps(spec, indent=1))
        guest_cmd = shlex.join([sys.executable, "-I", "-S", str(GUEST_STAGE), str(job)])
        argv = [vng, "--run", str(kernel.vmlinuz), "--user", "root", "--force-9p",
                "--memory", memory or default_memory(), "--cpus", str(cpus or default_cpus()),
                "--name", "netlab-kernel-tier", "--rwdir", str(job), "--cwd", str(cwd),
                "--append", "modprobe.blacklist=" + ",".join(UDEV_BLACKLIST)]
        if _overlay_ok(cwd):
            argv += ["--overlay-rwdir", str(cwd)]
        if not use_kvm:
            argv.append("--disable-kvm")
        argv += ["--exec", guest_cmd]
        log(f"booting {kernel.release} ({'KVM' if use_kvm else 'TCG, no KVM'}, "
            f"{memory or default_memory()}, {cpus or default_cpus()} CPUs, "
            f"timeout {timeout:.0f} s): {shlex.join(cmd)}")
        result = _run_vng(argv, timeout, output, result, on_start)
        _collect(job, result)
        if result.timed_out:
            log(f"VM killed after {timeout:.0f} s (timeout)")
            result.returncode = 124
        elif result.guest_release is None:
            log("the guest never started the command (boot failure?); last output:\n  "
                + "\n  ".join(result.tail[-30:] or ["(none)"]))
            if result.returncode == 0:
                result.returncode = 1
        log(f"guest {result.guest_release or '?'}: exit {result.returncode}; "
            + result.timing_line())
        return result
    finally:
        if own_job_dir:
            shutil.rmtree(job, ignore_errors=True)


def _overlay_ok(cwd: Path) -> bool:
    """Overlay the working directory when it is a project directory, not / or a system dir."""
    return len(cwd.parts) > 2 and not str(cwd).startswith(("/proc", "/sys", "/dev"))


def stop(proc: subprocess.Popen) -> None:
    """End a VM that `run` started (from another thread): its whole process group."""
    if proc.poll() is None:
        _kill_group(proc)


def _run_vng(argv: list[str], timeout: float, output: Callable[[str], None],
             result: VMResult, on_start: Callable[[subprocess.Popen], None] | None = None) -> VMResult:
    start = time.monotonic()
    # Own session/process group: on timeout or Ctrl-C we kill exactly the processes we
    # started (vng, virtme-run, qemu), by process-group id.
    # vng runs virtme-run through PATH, and virtme-run looks for qemu, busybox, udevd:
    # put the venv's bin and the sbin directories on it.
    env = dict(os.environ)
    path = [str(Path(argv[0]).parent), *env.get("PATH", "").split(":"),
            "/usr/local/sbin", "/usr/sbin", "/sbin"]
    env["PATH"] = ":".join(dict.fromkeys(p for p in path if p))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, env=env)
    assert proc.stdout is not None
    if on_start is not None:
        on_start(proc)
    tail: list[str] = []

    def reader() -> None:
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            if line.startswith(MARK) and " guest up " in line and result.boot_seconds is None:
                result.boot_seconds = time.monotonic() - start
            tail.append(line.rstrip("\n"))
            del tail[:-200]
            try:
                output(line if line.endswith("\n") else line + "\n")
            except Exception:
                pass

    t = threading.Thread(target=reader, name="netlab-vm-output", daemon=True)
    t.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        result.timed_out = True
        _kill_group(proc)
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        t.join(timeout=10)
        result.total_seconds = time.monotonic() - start
        result.tail = tail
    result.returncode = proc.returncode if proc.returncode is not None else 1
    return result


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _collect(job: Path, result: VMResult) -> None:
    try:
        info = json.loads((job / "guest.json").read_text())
    except (OSError, ValueError):
        return
    result.guest_release = info.get("release")
    result.modules_seconds = info.get("modules_seconds")
    result.command_seconds = info.get("command_seconds")
    result.modules_missing = tuple(info.get("modules_missing", ()))
    if "returncode" in info and not result.timed_out:
        result.returncode = int(info["returncode"])


# ------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(
        prog="python -m tests.kernel.vm",
        description="Run CMD as root in a VM booted from Debian's stock kernel "
                    "(virtme-ng; modules for OVS, IPVS, ipvlan, netem, 802.1Q loaded).",
        epilog="Example: python -m tests.kernel.vm -- python -m pytest tests/kernel -v")
    ap.add_argument("--timeout", type=float, default=None,
                    help="kill the VM after this many seconds (default $NETLAB_VM_TIMEOUT "
                         "or 900)")
    ap.add_argument("--memory", default=None, help="guest memory (default 2G)")
    ap.add_argument("--cpus", type=int, default=None, help="guest CPUs (default min(2, host))")
    ap.add_argument("--kvm", choices=("auto", "on", "off"), default="auto",
                    help="hardware acceleration (default: auto-detect, TCG otherwise)")
    ap.add_argument("--cwd", default=None, help="working directory in the guest "
                    "(default: current directory)")
    ap.add_argument("--module", action="append", default=[],
                    help="load this module too (repeatable)")
    ap.add_argument("--no-default-modules", action="store_true",
                    help="load only --module modules")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="command and arguments")
    args = ap.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        cmd = ["sh", "-c", "uname -r"]
    if cmd[0] in ("python", "python3"):
        cmd = [sys.executable, *cmd[1:]]   # the venv's interpreter, as on the host
    modules = ([] if args.no_default_modules else list(DEFAULT_MODULES)) + args.module
    kvm = None if args.kvm == "auto" else args.kvm == "on"
    if str(REPO) not in os.environ.get("PYTHONPATH", "").split(":"):
        # so that `tests.kernel` imports in-process below and in the guest
        sys.path.insert(0, str(REPO))
    try:
        result = run(cmd, cwd=args.cwd, timeout=args.timeout, memory=args.memory,
                     cpus=args.cpus, kvm=kvm, modules=modules)
    except VMError as exc:
        print(f"{MARK} error: {exc}", file=sys.stderr)
        return 2
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
