"""The kernel-tier harness and plugin, exercised without booting a VM.

A fake ``vng`` runs the guest command on the host (``sh -c``), so the whole path is real
except the VM itself: job file, guest stage, output streaming, exit codes, the timeout
kill, and the plugin's split / merge / summary / exit status. The real VM path is what
``tests/kernel/test_kernel_features.py`` exercises on a kernel without those features.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

from netlab import capabilities
from netlab.capabilities import KERNEL_FEATURES, Capabilities, Feature, Status
from tests.kernel import cache, vm

pytest_plugins = ["pytester"]

FAKE_VNG = """\
#!{python}
# Stand-in for virtme-ng: run the --exec command on the host, like a guest would.
import os, subprocess, sys
args = sys.argv[1:]
cmd = args[args.index("--exec") + 1]
with open(os.environ["FAKE_VNG_LOG"], "a") as fh:
    fh.write(repr(args) + "\\n")
sys.exit(subprocess.call(["sh", "-c", cmd]))
"""


@pytest.fixture
def fake_vm(tmp_path, monkeypatch):
    """vm.run with a fake vng, no prerequisites, a fake cached kernel."""
    vng = tmp_path / "vng"
    vng.write_text(FAKE_VNG.format(python=sys.executable))
    vng.chmod(vng.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "vng.log"
    monkeypatch.setenv("FAKE_VNG_LOG", str(log))
    monkeypatch.setattr(vm, "find_vng", lambda: str(vng))
    monkeypatch.setattr(vm, "check_prerequisites", lambda: [])
    monkeypatch.setattr(vm, "kvm_usable", lambda: False)
    real_guest_env = vm.guest_env   # the fake guest is this host: keep its HOME in tmp_path
    monkeypatch.setattr(vm, "guest_env", lambda extra=None: {
        **real_guest_env(extra), "HOME": str(tmp_path / "guest-home")})
    kernel = cache.CachedKernel("6.1.0-fake-amd64", tmp_path / "kroot", "linux-image-x", "1")
    monkeypatch.setattr(cache, "ensure", lambda **kw: kernel)
    return log


# ------------------------------------------------------------------------- cache
APT_META = """\
Package: linux-image-amd64
Source: linux-signed-amd64 (6.1.119+1)
Version: 6.1.119-1
Depends: linux-image-6.1.0-28-amd64 (= 6.1.119-1)
Description: Linux for 64-bit PCs (meta-package)
 This package depends on the latest Linux kernel.

Package: linux-image-amd64
Version: 6.1.112-1
"""


def test_apt_show_parsing():
    info = cache.parse_apt_show(APT_META)
    assert info["Version"] == "6.1.119-1"
    assert cache.image_dependency(info["Depends"]) == "linux-image-6.1.0-28-amd64"
    assert "latest Linux kernel" in info["Description"]
    assert cache.image_dependency("kmod, linux-base (>= 4.3~)") is None


def test_cache_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.setenv("NETLAB_KERNEL_CACHE", str(tmp_path))
    monkeypatch.delenv("NETLAB_VM_KERNEL", raising=False)
    monkeypatch.setattr(cache, "resolve", lambda meta=None: ("linux-image-9.9.9-1-amd64",
                                                             "9.9.9-1", "9.9.9-1-amd64"))
    fetched = []

    def fake_fetch(base, package, version, release):
        fetched.append(package)
        root = base / release
        (root / "boot").mkdir(parents=True)
        (root / "boot" / f"vmlinuz-{release}").write_text("kernel")
        (root / cache.STAMP).write_text(json.dumps(
            {"package": package, "version": version, "release": release}))

    monkeypatch.setattr(cache, "_fetch", fake_fetch)
    k1 = cache.ensure(log=lambda m: None)
    k2 = cache.ensure(log=lambda m: None)
    assert fetched == ["linux-image-9.9.9-1-amd64"]
    assert k1 == k2 and k1.vmlinuz.is_file()
    assert cache.current() == k1
    assert (tmp_path / "current").resolve() == k1.root


def test_kernel_override(tmp_path, monkeypatch):
    img = tmp_path / "boot" / "vmlinuz-6.9.0-x"
    img.parent.mkdir()
    img.write_text("k")
    monkeypatch.setenv("NETLAB_VM_KERNEL", str(img))
    k = cache.ensure(log=lambda m: None)
    assert k.release == "6.9.0-x" and k.root == tmp_path and k.vmlinuz == img


# ------------------------------------------------------------------------- vm
def test_kvm_setting_overrides_detection(monkeypatch):
    monkeypatch.setenv("NETLAB_VM_KVM", "0")
    assert vm.kvm_usable() is False
    monkeypatch.setenv("NETLAB_VM_KVM", "1")
    assert vm.kvm_usable() is True


def test_guest_env(monkeypatch):
    monkeypatch.setenv("NETLAB_SOMETHING", "x")
    monkeypatch.setenv("NETLAB_VM_TIMEOUT", "5")
    env = vm.guest_env({"EXTRA": "1"})
    assert env[vm.GUEST_ENV] == "1"
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["NETLAB_SOMETHING"] == "x" and "NETLAB_VM_TIMEOUT" not in env
    assert env["EXTRA"] == "1" and env["HOME"] == "/tmp/netlab-vm-home"


def test_run_streams_output_and_propagates_exit_code(fake_vm, tmp_path):
    lines = []
    res = vm.run(["sh", "-c", "echo hello from guest; echo oops >&2; exit 7"],
                 cwd=tmp_path, modules=[], output=lines.append, log=lambda m: None)
    assert res.returncode == 7
    assert res.guest_release == os.uname().release    # the fake guest is this host
    assert res.kernel_release == "6.1.0-fake-amd64"
    assert "hello from guest\n" in lines and "oops\n" in lines
    assert any("guest up" in line for line in lines)
    assert res.boot_seconds is not None and res.command_seconds is not None
    args = fake_vm.read_text()
    assert "'--disable-kvm'" in args and "'--force-9p'" in args and "'root'" in args
    assert "modprobe.blacklist=" in args


def test_run_passes_argv_without_a_shell(fake_vm, tmp_path):
    weird = "$(touch pwned); 'quoted' \"x\" `y`"
    out = tmp_path / "argv.json"
    script = f"import json, sys; json.dump(sys.argv[1:], open({str(out)!r}, 'w'))"
    res = vm.run([sys.executable, "-c", script, weird, "two words"], cwd=tmp_path,
                 modules=[], output=lambda l: None, log=lambda m: None)
    assert res.returncode == 0
    assert json.loads(out.read_text()) == [weird, "two words"]
    assert not (tmp_path / "pwned").exists()


def test_run_timeout_kills_the_whole_vm(fake_vm, tmp_path):
    pidfile = tmp_path / "sleeper.pid"
    # long enough for the fake chain (two Python start-ups) to start the sleeper, also
    # when this suite itself runs in the VM under TCG
    limit = 30 if os.environ.get(vm.GUEST_ENV) == "1" else 5
    res = vm.run(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 600"], cwd=tmp_path,
                 modules=[], timeout=limit, output=lambda l: None, log=lambda m: None)
    assert res.timed_out and res.returncode == 124
    pid = int(pidfile.read_text())
    assert _dead(pid), f"guest command {pid} survived the timeout"


def _dead(pid: int, wait: float = 10.0) -> bool:
    """Gone, or a zombie (killed; its dead parent's adopter has not reaped it yet)."""
    import time
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


# ------------------------------------------------------------------------- plugin
def _caps(missing: set[str]) -> Capabilities:
    feats = {n: Feature(n, Status.MISSING if n in missing else Status.BUILTIN, "test")
             for n in KERNEL_FEATURES}
    return Capabilities(kernel_release="9.9-host", is_root=True, **feats)


INNER_TESTS = """
import pytest

def test_on_host():
    pass

@pytest.mark.kernel("ip_vs")
def test_needs_ipvs():
    print("ran where", __import__("os").environ.get("NETLAB_KERNEL_TIER_GUEST"))

@pytest.mark.kernel("openvswitch", "netns")
def test_needs_ovs_and_fails():
    assert False, "boom in the guest"
"""

# In the fake guest (a subprocess on this host), do not insist on the features.
INNER_CONFTEST = """
import os
pytest_plugins = ["tests.tiers"]
if os.environ.get("NETLAB_KERNEL_TIER_GUEST") == "1":
    import tests.tiers
    tests.tiers._Tier._ensure = lambda self, item: None
"""


@pytest.fixture
def host_role(monkeypatch):
    """Inner sessions play the host, even when this suite itself runs inside the VM."""
    monkeypatch.delenv(vm.GUEST_ENV, raising=False)
    monkeypatch.delenv(vm.JOB_DIR_ENV, raising=False)


@pytest.fixture
def inner(pytester, monkeypatch, fake_vm, host_role):
    monkeypatch.setattr(capabilities, "detect",
                        lambda **kw: _caps({"ip_vs", "openvswitch"}))
    repo = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    return pytester


def test_plugin_defers_missing_features_to_the_vm_and_merges_results(inner):
    result = inner.runpytest("-p", "no:cacheprovider", "-rA")
    result.stdout.fnmatch_lines([
        "*kernel tier: 2 test(s) in a VM*",
        "*1 test(s): host kernel lacks ip_vs*",
        "*boom in the guest*",
        "*this ran in the VM*",
        "host tier: 1 passed | kernel tier (VM, *): 1 passed, 1 failed",
        "*1 failed, 2 passed*",
    ])
    assert result.ret == 1
    assert "ran where 1" in result.stdout.str()   # the deferred test ran in the "guest"


def test_plugin_all_mode_runs_everything_in_the_vm(inner):
    result = inner.runpytest("-p", "no:cacheprovider", "--kernel-tier=all", "-k",
                             "not fails")
    result.stdout.fnmatch_lines(["host tier: no tests | kernel tier (VM, *): 2 passed",
                                 "*2 passed, 1 deselected*"])
    assert result.ret == 0


def test_plugin_only_mode_deselects_host_tests(inner):
    result = inner.runpytest("-p", "no:cacheprovider", "--kernel-tier=only", "-k", "ipvs")
    result.stdout.fnmatch_lines(["*kernel tier (VM, *): 1 passed*", "*1 passed, 2 deselected*"])
    assert result.ret == 0


def test_plugin_off_mode_reports_not_run(inner, fake_vm):
    result = inner.runpytest("-p", "no:cacheprovider", "--kernel-tier=off")
    result.stdout.fnmatch_lines(["*WARNING: 2 test(s) NOT RUN (--kernel-tier=off)*",
                                 "host tier: 1 passed | kernel tier: 2 not run"])
    assert result.ret == 0
    assert not fake_vm.exists()   # no VM was started
    strict = inner.runpytest("-p", "no:cacheprovider", "--kernel-tier=off",
                             "--kernel-tier-strict")
    assert strict.ret == 1


def test_plugin_vm_that_cannot_boot_fails_the_session(inner, monkeypatch):
    monkeypatch.setattr(vm, "check_prerequisites", lambda: ["qemu-system-x86_64 missing"])
    result = inner.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*kernel tier problem: the VM could not run*qemu*"])
    assert result.ret == 1


def test_plugin_rejects_unknown_feature(pytester, monkeypatch, host_role):
    repo = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", repo)
    pytester.makeconftest('pytest_plugins = ["tests.tiers"]')
    pytester.makepyfile(textwrap.dedent("""
        import pytest
        @pytest.mark.kernel("ipvs")
        def test_x():
            pass
    """))
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown kernel feature*ip_vs*"])


def test_plugin_host_tier_stopping_early_stops_the_vm_beside_it(inner):
    """The VM starts with the host tier; `-x` on a host failure ends it, not waits for it."""
    inner.makepyfile(test_slow="""
import os, time
import pytest

def test_host_fails():
    assert False, "host boom"

@pytest.mark.kernel("ip_vs")
def test_slow_in_the_guest():
    time.sleep(300)
""")
    start = time.monotonic()
    result = inner.runpytest("-p", "no:cacheprovider", "-x", "test_slow.py")
    assert time.monotonic() - start < 60
    result.stdout.fnmatch_lines(["*1 test(s) NOT RUN (the host tier stopped early)*"])
    assert result.ret == 1
    guests = [p for p in Path("/proc").glob("[0-9]*")
              if b"test_slow_in_the_guest" in _cmdline(p)]
    assert not guests, "the VM's guest outlived the session"


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""
