"""Pytest plugin: the host tier and the kernel tier (ARCHITECTURE.md section 4).

A test declares the kernel features it needs::

    @pytest.mark.kernel("ip_vs", "openvswitch")
    def test_ipvs_proxy_mode(): ...

Feature names are those of `netlab.capabilities.KERNEL_FEATURES` (the same detection as
`netlab doctor`). An unknown name is a usage error.

On the host (``--kernel-tier=auto``, the default), a marked test whose features this kernel
cannot provide (or any marked test when not running as root) is not run on the host and
not skipped: it is moved to the kernel tier. After the host tests finish, the plugin boots
one VM with Debian's stock kernel (`tests.kernel.vm`) and runs exactly those tests there
(same pytest, same venv, node ids passed through), streaming the guest output. Their
results join the session (failures with tracebacks, the final counts, ``--junitxml``); the
session fails if anything failed or did not report in the VM. The terminal summary gives
one line per tier, e.g. ``host tier: 40 passed | kernel tier (VM, 6.1.0-28-amd64): 6 passed``.

Marked tests whose features the host has (built in, loaded, or loadable: the plugin loads
the modules first) just run on the host: a privileged CI runner needs no VM.

``--kernel-tier``:
  auto  host tests on the host, the deferred ones in one VM afterwards (default)
  off   no VM; deferred tests are reported as NOT RUN with a warning; the exit status
        stays that of the host tier unless ``--kernel-tier-strict`` (then non-zero)
  only  only the tests the host cannot run, in the VM (the others are deselected)
  all   the whole selection in the VM (``make test-kernel``)

Other options: ``--kernel-tier-strict``, ``--kernel-tier-timeout=SECONDS`` (whole VM run,
default $NETLAB_VM_TIMEOUT or 900). Environment: NETLAB_KERNEL_TIER (default mode),
NETLAB_KERNEL_TIER_STRICT=1, and the NETLAB_VM_* variables of `tests.kernel.vm`.

Inside the VM (environment NETLAB_KERNEL_TIER_GUEST=1, set by the harness) the plugin runs
tests normally: it loads the modules of declared features, fails (not skips) a test whose
features are missing even there, and writes every report to the job directory for the host.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from netlab import capabilities
from netlab.errors import CapabilityError

MARKER = "kernel"
GUEST_ENV = "NETLAB_KERNEL_TIER_GUEST"
JOB_DIR_ENV = "NETLAB_VM_JOB_DIR"
REPORTS_FILE = "reports.jsonl"
MODES = ("auto", "off", "only", "all")
_CATEGORIES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netlab-kernel-tier", "netlab kernel tier (tests/tiers.py)")
    env_mode = os.environ.get("NETLAB_KERNEL_TIER", "auto")
    group.addoption("--kernel-tier", choices=MODES, default=env_mode if env_mode in MODES
                    else "auto",
                    help="where tests marked @pytest.mark.kernel(...) that this kernel cannot "
                         "serve run: auto (a VM after the host tests; default), off (not at "
                         "all, reported), only (just those, in the VM), all (everything in "
                         "the VM)")
    group.addoption("--kernel-tier-strict", action="store_true",
                    default=os.environ.get("NETLAB_KERNEL_TIER_STRICT") == "1",
                    help="with --kernel-tier=off: fail the session if tests were not run")
    group.addoption("--kernel-tier-timeout", type=float, default=None, metavar="SECONDS",
                    help="kill the kernel-tier VM after this long (default "
                         "$NETLAB_VM_TIMEOUT or 900)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*features): kernel features the test needs, named as in "
        "netlab.capabilities.KERNEL_FEATURES (" + ", ".join(capabilities.KERNEL_FEATURES)
        + "). Where the host kernel lacks one, the test runs in the kernel tier (a VM with "
          "Debian's stock kernel) instead of the host.")
    if config.pluginmanager.has_plugin("netlab-kernel-tier-impl"):
        return
    guest = os.environ.get(GUEST_ENV) == "1"
    impl = GuestTier(config) if guest else HostTier(config)
    config.pluginmanager.register(impl, "netlab-kernel-tier-impl")


def features_of(item: pytest.Item) -> tuple[str, ...]:
    """The kernel features `item` declares (union of its `kernel` markers, in order)."""
    names: list[str] = []
    for mark in item.iter_markers(MARKER):
        for arg in mark.args:
            for name in ([arg] if isinstance(arg, str) else list(arg)):
                if name not in capabilities.KERNEL_FEATURES:
                    raise pytest.UsageError(
                        f"{item.nodeid}: @pytest.mark.{MARKER}({name!r}): unknown kernel "
                        f"feature; known: {', '.join(capabilities.KERNEL_FEATURES)}")
                if name not in names:
                    names.append(name)
    return tuple(names)


class _Tier:
    """What host and guest share: detection and loading of declared features."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._caps: capabilities.Capabilities | None = None

    @property
    def caps(self) -> capabilities.Capabilities:
        if self._caps is None:
            self._caps = capabilities.detect(versions=False)
        return self._caps

    def _ensure(self, item: pytest.Item) -> None:
        feats = features_of(item)
        if not feats:
            return
        try:
            self._caps = capabilities.ensure(feats, self.caps)
        except CapabilityError as exc:
            pytest.fail(f"kernel features {', '.join(feats)} not available: {exc}",
                        pytrace=False)


class GuestTier(_Tier):
    """Inside the VM: run normally, report everything to the host."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__(config)
        job = os.environ.get(JOB_DIR_ENV)
        self._out = open(Path(job) / REPORTS_FILE, "a", buffering=1) if job else None

    def pytest_report_header(self, config: pytest.Config) -> str:
        return (f"kernel tier: inside the VM (kernel {os.uname().release}); "
                f"host gets reports via {os.environ.get(JOB_DIR_ENV) or 'nothing'}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self._ensure(item)

    def _write(self, report) -> None:
        if self._out is None:
            return
        data = self.config.hook.pytest_report_to_serializable(config=self.config,
                                                               report=report)
        if data is not None:
            self._out.write(json.dumps(data) + "\n")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._write(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._write(report)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


class HostTier(_Tier):
    """On the host: split the selection, run the deferred tests in one VM at the end."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__(config)
        self.mode: str = config.getoption("kernel_tier")
        self.deferred: list[tuple[pytest.Item, str]] = []
        self.marked_on_host = 0
        self.host_counts: dict[str, int] | None = None
        self.vm_counts: dict[str, int] = {}
        self.vm_result = None          # tests.kernel.vm.VMResult
        self.vm_error: str | None = None
        self.vm_problems: list[str] = []
        self.not_run_reason: str | None = None

    # -- collection ----------------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> str | None:
        caps = self.caps
        lacking = [n for n, f in caps.features.items() if not f.usable]
        return (f"kernel tier: --kernel-tier={self.mode}; host kernel {caps.kernel_release}"
                + (f" lacks {', '.join(lacking)}" if lacking else " has every feature"))

    @pytest.hookimpl(trylast=True)   # after -k/-m deselection: split the final selection
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        keep: list[pytest.Item] = []
        for item in items:
            feats = features_of(item)
            reason = None
            if self.mode == "all":
                reason = "--kernel-tier=all"
            elif feats:
                missing = self.caps.missing(feats)
                if missing:
                    reason = f"host kernel lacks {', '.join(missing)}"
                elif not self.caps.is_root:
                    reason = "needs root (the VM runs tests as root)"
            if reason:
                self.deferred.append((item, reason))
            else:
                if feats:
                    self.marked_on_host += 1
                keep.append(item)
        if self.mode in ("only", "all") and keep:
            config.hook.pytest_deselected(items=keep)
            keep = []
        items[:] = keep

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self._ensure(item)   # marked tests kept on the host: load loadable modules

    # -- the VM ----------------------------------------------------------------------------
    # The VM boots as the host tier starts and runs the deferred tests beside it (its guest
    # has its own kernel, /run, /tmp and an overlay of the checkout, so the two cannot meet);
    # its output is shown, and its reports merged, when the host tier is done.
    # NETLAB_KERNEL_TIER_SERIAL=1 runs it after the host tier instead, streaming live.
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        if (self.deferred and self.mode != "off" and not self.config.option.collectonly
                and os.environ.get("NETLAB_KERNEL_TIER_SERIAL") != "1"):
            self._start_vm()

    def _start_vm(self) -> None:
        from tests.kernel import vm

        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        self._job = Path(tempfile.mkdtemp(prefix="netlab-kt-"))
        self._vm_lines: list[str] = []
        self._vm_proc = None
        self._vm_cancelled = threading.Event()
        argv = self._guest_argv(tr)

        def started(proc) -> None:
            self._vm_proc = proc
            if self._vm_cancelled.is_set():  # stopped before the VM had a process to end
                vm.stop(proc)

        def body() -> None:
            try:
                self.vm_result = vm.run(
                    argv, cwd=self.config.rootpath, timeout=self.config.getoption("kernel_tier_timeout"),
                    job_dir=self._job, output=self._vm_lines.append,
                    log=lambda m: self._vm_lines.append(f"{vm.MARK} {m}\n"),
                    on_start=started)
            except vm.VMError as exc:
                self.vm_error = str(exc)
            except Exception as exc:  # shown as the VM's problem, never lost in a thread
                self.vm_error = f"{type(exc).__name__}: {exc}"

        self._vm_thread = threading.Thread(target=body, name="netlab-kernel-tier", daemon=True)
        self._vm_thread.start()

    def _stop_vm(self) -> None:
        from tests.kernel import vm

        self._vm_cancelled.set()  # before reading _vm_proc: `started` checks it after setting it
        if self._vm_proc is not None:
            vm.stop(self._vm_proc)
        self._vm_thread.join(timeout=60)
        shutil.rmtree(self._job, ignore_errors=True)

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        self.host_counts = _counts(tr.stats if tr else {})
        if not self.deferred or self.config.option.collectonly:
            return
        if self.mode == "off":
            self.not_run_reason = "--kernel-tier=off"
            if self.config.getoption("kernel_tier_strict") and session.exitstatus in (
                    pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        started = getattr(self, "_vm_thread", None) is not None
        if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR,
                          pytest.ExitCode.USAGE_ERROR) or session.shouldstop \
                or session.shouldfail:
            if started:
                self._stop_vm()
            self.not_run_reason = "the host tier stopped early"
            session.exitstatus = pytest.ExitCode.TESTS_FAILED if \
                session.exitstatus == pytest.ExitCode.OK else session.exitstatus
            return
        if started:
            self._finish_vm(session, tr)
        else:
            self._run_vm(session, tr)

    def _finish_vm(self, session: pytest.Session, tr) -> None:
        self._announce(tr)
        if tr is not None and self._vm_thread.is_alive():
            tr.write_line("(waiting for the VM, which started with the host tier)")
        try:
            self._vm_thread.join()
        except KeyboardInterrupt:
            self._stop_vm()
            raise
        for line in self._vm_lines:
            self._write(tr, line)
        try:
            self._merge(self._job, session, tr)
        finally:
            shutil.rmtree(self._job, ignore_errors=True)

    def _write(self, tr, text: str, **markup) -> None:
        if tr is not None:
            tr.write(text, flush=True, **markup)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    def _announce(self, tr) -> None:
        reasons: dict[str, int] = {}
        for _, reason in self.deferred:
            reasons[reason] = reasons.get(reason, 0) + 1
        if tr is not None:
            tr.ensure_newline()
            tr.write_sep("=", f"kernel tier: {len(self.deferred)} test(s) in a VM", bold=True)
        for reason, n in reasons.items():
            self._write(tr, f"{n} test(s): {reason}\n")
        if self.config.option.verbose > 0:
            for item, reason in self.deferred:
                self._write(tr, f"  {item.nodeid}  ({reason})\n")

    def _guest_argv(self, tr) -> list[str]:
        cfg = self.config
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                "--rootdir", str(cfg.rootpath), "--no-summary",
                f"--tb={cfg.option.tbstyle}", f"--capture={cfg.option.capture}",
                "--color=" + ("yes" if tr is not None and tr.hasmarkup else "no")]
        if cfg.inipath:
            argv += ["-c", str(cfg.inipath)]
        verbosity = cfg.option.verbose
        if verbosity > 0:
            argv.append("-" + "v" * verbosity)
        elif verbosity < 0:
            argv.append("-" + "q" * -verbosity)
        if cfg.option.maxfail:
            argv.append(f"--maxfail={cfg.option.maxfail}")
        argv.append("--")
        argv += [item.nodeid for item, _ in self.deferred]
        return argv

    def _run_vm(self, session: pytest.Session, tr) -> None:
        """The serial way: after the host tier, its output streamed live."""
        from tests.kernel import vm

        def write(text: str, **markup) -> None:
            self._write(tr, text, **markup)

        self._announce(tr)
        job = Path(tempfile.mkdtemp(prefix="netlab-kt-"))
        timeout = self.config.getoption("kernel_tier_timeout")
        try:
            self.vm_result = vm.run(
                self._guest_argv(tr), cwd=self.config.rootpath, timeout=timeout,
                job_dir=job, output=lambda line: write(line),
                log=lambda m: write(f"{vm.MARK} {m}\n", bold=True))
        except vm.VMError as exc:
            self.vm_error = str(exc)
        except KeyboardInterrupt:
            shutil.rmtree(job, ignore_errors=True)
            raise
        try:
            self._merge(job, session, tr)
        finally:
            shutil.rmtree(job, ignore_errors=True)

    def _merge(self, job: Path, session: pytest.Session, tr) -> None:
        """Fold the guest's reports into this session and set its exit status."""
        cfg = self.config
        reported: set[str] = set()
        counts = {c: 0 for c in _CATEGORIES}
        failed = False
        path = job / REPORTS_FILE
        lines = path.read_text().splitlines() if path.exists() else []
        # Other reporters (junitxml, the session's failure count, -x) see the guest's reports
        # through the usual hooks; the terminal reporter is left out (it would print
        # progress letters now) and gets them straight into its stats instead.
        quiet = [p for p in cfg.pluginmanager.get_plugins()
                 if p is tr or type(p).__name__ == "TerminalProgressPlugin"]
        log_test = cfg.pluginmanager.subset_hook_caller("pytest_runtest_logreport", quiet)
        log_collect = cfg.pluginmanager.subset_hook_caller("pytest_collectreport", quiet)
        res = self.vm_result
        where = f"kernel {res.guest_release}, {res.accel.upper()}" if res else "?"
        for line in lines:
            try:
                rep = cfg.hook.pytest_report_from_serializable(config=cfg, data=json.loads(line))
            except Exception:   # a truncated last line if the VM died mid-write
                continue
            if rep is None:
                continue
            category = cfg.hook.pytest_report_teststatus(report=rep, config=cfg)[0]
            if rep.when in ("call", "collect") or rep.failed or rep.skipped:
                reported.add(rep.nodeid)
            if rep.failed:
                failed = True
                rep.sections.append(("kernel tier", f"this ran in the VM ({where})"))
            if category:
                if category in counts:
                    counts[category] += 1
                if tr is not None:
                    tr.stats.setdefault(category, []).append(rep)
            if isinstance(rep, pytest.TestReport):
                log_test(report=rep)
            else:
                log_collect(report=rep)
        self.vm_counts = counts
        self.vm_problems = []
        if self.vm_error:
            self.vm_problems.append(f"the VM could not run: {self.vm_error}")
        if res is not None and res.timed_out:
            self.vm_problems.append(f"the VM was killed after {res.total_seconds:.0f} s "
                                    "(--kernel-tier-timeout)")
        if res is not None and res.modules_missing:
            self.vm_problems.append("modules not available in the VM: "
                                    + ", ".join(res.modules_missing))
        silent = [item for item, _ in self.deferred if item.nodeid not in reported]
        if silent:
            self.vm_problems.append(f"{len(silent)} test(s) did not report from the VM")
            why = "; ".join(self.vm_problems)
            tail = "\n".join(res.tail[-40:]) if res is not None and res.tail else "(none)"
            for item in silent:   # visible as failures, with the guest's last words
                rep = pytest.TestReport(
                    item.nodeid, item.location, {}, "failed",
                    f"did not run to completion in the kernel-tier VM: {why}\n"
                    f"last guest output:\n{tail}", "call")
                counts["failed"] += 1
                if tr is not None:
                    tr.stats.setdefault("failed", []).append(rep)
                log_test(report=rep)
        if res is not None and res.returncode not in (0, 1) and not res.timed_out:
            self.vm_problems.append(f"pytest in the VM exited {res.returncode}")
        if res is not None and res.returncode == 1 and not failed:
            self.vm_problems.append("pytest in the VM exited 1 without a failed report")
        if tr is not None and hasattr(tr, "_set_main_color"):
            tr._set_main_color()
        vm_failed = failed or bool(silent) or self.vm_error is not None or (
            res is not None and res.returncode != 0)
        if vm_failed:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        elif session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK

    # -- summary -----------------------------------------------------------------------
    def pytest_terminal_summary(self, terminalreporter, exitstatus: int,
                                config: pytest.Config) -> None:
        tr = terminalreporter
        if config.option.collectonly:
            if self.deferred:
                tr.write_line(f"kernel tier: {len(self.deferred)} test(s) would run in the VM")
            return
        host = _fmt_counts(self.host_counts or {}) or "no tests"
        if not self.deferred:
            kernel = "nothing to run in a VM"
            if self.marked_on_host:
                kernel += f" (host kernel has the features of {self.marked_on_host} marked test(s))"
            tr.write_line(f"host tier: {host} | kernel tier: {kernel}")
            return
        tr.write_sep("-", "kernel tier")
        if self.not_run_reason:
            lacking = sorted({r for _, r in self.deferred})
            strict = self.config.getoption("kernel_tier_strict") and self.mode == "off"
            tr.write_line(
                f"WARNING: {len(self.deferred)} test(s) NOT RUN ({self.not_run_reason}): "
                + "; ".join(lacking), yellow=not strict, red=strict, bold=True)
            if self.config.option.verbose > 0:
                for item, reason in self.deferred:
                    tr.write_line(f"  not run: {item.nodeid} ({reason})")
            tr.write_line(f"host tier: {host} | kernel tier: {len(self.deferred)} not run"
                          + (" (strict: session fails)" if strict else ""),
                          yellow=not strict, red=strict)
            return
        res = self.vm_result
        release = (res.guest_release or res.kernel_release or "?") if res is not None else "?"
        if res is not None:
            tr.write_line(f"VM: Debian stock kernel {release}; " + res.timing_line())
        for problem in self.vm_problems:
            tr.write_line(f"kernel tier problem: {problem}", red=True, bold=True)
        kernel = _fmt_counts(self.vm_counts) or "no results"
        bad = bool(self.vm_problems) or self.vm_counts.get("failed") or \
            self.vm_counts.get("error")
        tr.write_line(f"host tier: {host} | kernel tier (VM, {release}): {kernel}",
                      red=bool(bad), green=not bad, bold=True)


def _counts(stats) -> dict[str, int]:
    out = {}
    for cat in _CATEGORIES:
        reps = stats.get(cat, [])
        out[cat] = len([r for r in reps if getattr(r, "when", "call") != "collect"
                        or cat == "error"])
    return out


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {c}" for c, n in counts.items() if n)
