"""The built-in scenarios ship inside the package: `netlab plan` with no FILE works from an
installed wheel, not only from a checkout."""

import json
import os
import subprocess
import sys

from tests.helpers import REPO


def test_default_scenario_works_from_an_installed_wheel(tmp_path):
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True, timeout=300)
    [wheel] = list(wheels.glob("netlab-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    env = dict(os.environ, PYTHONPATH=str(site))
    where = subprocess.run([sys.executable, "-c", "import netlab; print(netlab.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site))
    done = subprocess.run([sys.executable, "-m", "netlab", "plan"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "ip netns add nl-overview.vpc" in done.stdout
    listed = subprocess.run([sys.executable, "-c", "from netlab.scenario import loader; print(loader.builtin_names())"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert "services" in listed and "vpc-basic" in listed
    course = subprocess.run([sys.executable, "-m", "netlab", "course", "list", "--json"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert course.returncode == 0, course.stderr
    ids = [row["id"] for row in json.loads(course.stdout)]
    assert len(ids) >= 12 and ids[0] == "01-vpc-route"  # every exercise's files ship in the wheel
