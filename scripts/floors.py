#!/usr/bin/env python3
"""Run the test suite with every dependency at its declared lower bound.

Usage: python3 scripts/floors.py [--venv DIR] [--pin NAME==VERSION]... [-- PYTEST_ARGS...]
       (`make test-floors` runs it with no arguments)

The lower bounds are read from pyproject.toml (tomllib): `[project] dependencies` and the `test`
and `server` extras. Each one becomes a `name==floor` line of a constraints file; the package is
installed (editable, with those extras) under those constraints into its own virtualenv, default
`.venv-floors`, made with the oldest Python on this machine that `requires-python` allows (or
$FLOORS_PYTHON). Transitive dependencies resolve normally. Then `python -m pytest -q
-p no:cacheprovider` runs in the repository root (the whole suite unless PYTEST_ARGS are given).

The virtualenv is reused while pyproject.toml, the interpreter and this script are unchanged
(a stamp file records them); otherwise it is rebuilt from scratch. The pytest run is stopped after
$FLOORS_TIMEOUT seconds (default 1800), so a dependency that hangs fails the run instead of CI.
A requirement without a lower bound is an error: every dependency must have a tested floor.
`--pin NAME==VERSION` tries another floor for one dependency without editing pyproject.toml (to
find a true floor before raising it there).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11
    sys.exit("floors: needs Python 3.11 or newer to run (tomllib)")

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
#: The extras installed and pinned to their floors: the tests, and the local server's own dependencies.
EXTRAS = ("test", "server")
STAMP_NAME = ".floors-installed"
DEFAULT_TIMEOUT = 1800

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?$")


def log(message: str) -> None:
    print(f"floors: {message}", flush=True)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def same_release(a: str, b: str) -> bool:
    """13 == 13.0 == 13.0.0; compares the numeric release segments only."""
    def strip(parts: tuple[int, ...]) -> tuple[int, ...]:
        while parts and parts[-1] == 0:
            parts = parts[:-1]
        return parts
    return strip(tuple(int(p) for p in re.match(r"[\d.]*\d", a).group().split("."))) == strip(
        tuple(int(p) for p in re.match(r"[\d.]*\d", b).group().split(".")))


def floor_of(requirement: str) -> tuple[str, str, str]:
    """(name, lower bound, marker) of one PEP 508 requirement string."""
    match = _REQUIREMENT.match(requirement)
    if not match or "@" in requirement.split(";")[0]:
        raise SystemExit(f"floors: cannot read requirement {requirement!r}")
    name, specifiers, marker = match.group(1), match.group(2).strip("() "), (match.group(3) or "")
    floors = []
    for specifier in filter(None, (part.strip() for part in specifiers.split(","))):
        operator, version = re.match(r"(===|==|~=|>=|<=|!=|>|<)\s*(.*)", specifier).groups()
        if operator in (">=", "~=", "==", "===") and "*" not in version:
            floors.append(version)
        elif operator == ">":
            raise SystemExit(f"floors: {requirement!r}: '>' names no installable floor; use '>='")
    if not floors:
        raise SystemExit(f"floors: {requirement!r} has no lower bound; give it a tested '>=' floor")
    return name, max(floors, key=version_tuple), marker.strip()


def read_floors() -> tuple[str, list[tuple[str, str, str]]]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {})
    requirements = list(project.get("dependencies", [])) + [r for extra in EXTRAS for r in extras.get(extra, [])]
    floors = [floor_of(r) for r in requirements]
    # Other extras are not installed here; say so when one of them asks for less than is tested.
    tested = {normalize(name): floor for name, floor, _ in floors}
    for extra, others in sorted(extras.items()):
        if extra in EXTRAS:
            continue
        for requirement in others:
            name, floor, _ = floor_of(requirement)
            if normalize(name) not in tested:
                log(f"warning: [{extra}] {requirement!r} is not run at its floor by this script")
            elif version_tuple(floor) < version_tuple(tested[normalize(name)]):
                log(f"warning: [{extra}] {requirement!r} allows less than the tested floor {tested[normalize(name)]}")
    return project.get("requires-python", ""), floors


def allows(requires_python: str, version: tuple[int, ...]) -> bool:
    """Whether `version` satisfies a simple requires-python (>=, >, <=, <, ==, !=, ~=; X.Y[.Z][.*])."""
    for specifier in filter(None, (part.strip() for part in requires_python.split(","))):
        operator, bound = re.match(r"(~=|==|!=|>=|<=|>|<)\s*(.*)", specifier).groups()
        wildcard = bound.endswith(".*")
        wanted = version_tuple(bound)
        have = version[: len(wanted)] if wildcard or operator == "~=" else version + (0,) * (len(wanted) - len(version))
        if operator == "~=":
            ok = version >= wanted and version[: len(wanted) - 1] == wanted[:-1]
        else:
            ok = {
                "==": have == wanted, "!=": have != wanted, ">=": have >= wanted,
                "<=": have <= wanted, ">": have > wanted, "<": have < wanted,
            }[operator]
        if not ok:
            return False
    return True


def candidate_pythons() -> list[str]:
    """python3 and python3.N on PATH, pyenv's installed versions, and uv's managed ones."""
    names = set()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        names.update(glob.glob(os.path.join(directory, "python3")))
        names.update(glob.glob(os.path.join(directory, "python3.[0-9]*")))
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    names.update(glob.glob(os.path.join(pyenv_root, "versions", "*", "bin", "python3")))
    if shutil.which("uv"):
        found = subprocess.run(
            ["uv", "python", "list", "--only-installed", "--output-format", "json"],
            capture_output=True, text=True,
        )
        if found.returncode == 0:
            try:
                names.update(entry["path"] for entry in json.loads(found.stdout) if entry.get("path"))
            except (ValueError, TypeError, KeyError):
                pass
    return sorted(name for name in names if re.search(r"python3(\.\d+)?$", name) and os.access(name, os.X_OK))


PROBE = "import sys, venv, ensurepip; print(sys.executable); print('.'.join(map(str, sys.version_info[:3])))"


def probe(python: str) -> tuple[str, tuple[int, ...]] | None:
    try:
        result = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = result.stdout.split()
    if result.returncode != 0 or len(lines) != 2:
        return None
    return lines[0], version_tuple(lines[1])


def oldest_python(requires_python: str) -> tuple[str, tuple[int, ...]]:
    configured = os.environ.get("FLOORS_PYTHON")
    if configured:
        found = probe(configured)
        if not found:
            raise SystemExit(f"floors: FLOORS_PYTHON={configured} is not a Python with venv and ensurepip")
        if not allows(requires_python, found[1]):
            raise SystemExit(f"floors: FLOORS_PYTHON={configured} is Python {found[1]}, not {requires_python}")
        return found
    found = {}
    for python in candidate_pythons():
        result = probe(python)
        if result and allows(requires_python, result[1]):
            real = os.path.realpath(result[0])
            found.setdefault(real, (real, result[1]))
    if not found:
        raise SystemExit(f"floors: no Python with venv on this machine satisfies requires-python {requires_python!r}")
    return min(found.values(), key=lambda item: (item[1], item[0]))


def run(command: list[str], log_path: Path) -> None:
    """Run a setup command; its output goes to `log_path` and is shown only if it fails."""
    with open(log_path, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        noise = "is ignored: it is neither a file nor a directory"  # this machine's pip configuration
        print("\n".join([line for line in lines if noise not in line][-40:]), file=sys.stderr)
        raise SystemExit(f"floors: failed ({result.returncode}): {' '.join(command)} (full log: {log_path})")


def installed_versions(python: Path, names: list[str]) -> dict[str, str | None]:
    code = (
        "import json, sys\nfrom importlib import metadata\nout = {}\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    try:\n        out[name] = metadata.version(name)\n"
        "    except metadata.PackageNotFoundError:\n        out[name] = None\n"
        "print(json.dumps(out))"
    )
    result = subprocess.run([str(python), "-c", code, json.dumps(names)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def prepare(venv: Path, interpreter: str, version: tuple[int, ...], floors: list[tuple[str, str, str]]) -> Path:
    python = venv / "bin" / "python"
    constraints = "".join(f"{name}=={floor}{' ' + marker if marker else ''}\n" for name, floor, marker in floors)
    stamp_text = json.dumps(
        {
            "pyproject_sha256": hashlib.sha256(PYPROJECT.read_bytes()).hexdigest(),
            "script_sha256": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
            "constraints": constraints,
            "interpreter": interpreter,
            "version": list(version),
        },
        indent=1,
    )
    stamp = venv / STAMP_NAME
    if stamp.is_file() and stamp.read_text() == stamp_text and probe(str(python)):
        log(f"reusing {venv} (pyproject.toml, interpreter and script unchanged)")
        return python

    log(f"building {venv} from scratch with {interpreter} (Python {'.'.join(map(str, version))})")
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([interpreter, "-m", "venv", str(venv)], check=True)
    (venv / ".gitignore").write_text("*\n")  # as `python3.13 -m venv` does: never committed
    constraints_file = venv / "floors-constraints.txt"
    constraints_file.write_text(constraints)
    log("constraints (from pyproject.toml):\n" + "".join(f"    {line}\n" for line in constraints.splitlines()).rstrip())
    pip_log = venv / "floors-pip.log"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    run(pip + ["install", "--upgrade", "pip"], pip_log)
    run(pip + ["install", "-c", str(constraints_file), "-e", f".[{','.join(EXTRAS)}]"], pip_log)
    run(pip + ["check"], pip_log)

    versions = installed_versions(python, [name for name, _, _ in floors])
    wrong = [f"{name} {versions[name]} (wanted {floor})" for name, floor, marker in floors
             if not marker and (versions[name] is None or not same_release(versions[name], floor))]
    if wrong:
        raise SystemExit("floors: installed versions differ from the floors: " + ", ".join(wrong))
    stamp.write_text(stamp_text)
    return python


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default=".venv-floors", help="virtualenv to (re)use (default .venv-floors)")
    parser.add_argument("--pin", action="append", default=[], metavar="NAME==VERSION",
                        help="use this version instead of NAME's floor in pyproject.toml")
    parser.add_argument("pytest_args", nargs="*", help="after --: arguments for pytest (default: the whole suite)")
    args = parser.parse_args()
    venv = (REPO / args.venv).resolve() if not os.path.isabs(args.venv) else Path(args.venv)

    requires_python, floors = read_floors()
    for pin in args.pin:
        name, _, version = pin.partition("==")
        names = [normalize(n) for n, _, _ in floors]
        if normalize(name) not in names or not version:
            raise SystemExit(f"floors: --pin {pin!r}: not NAME==VERSION for a dependency in pyproject.toml")
        index = names.index(normalize(name))
        floors[index] = (floors[index][0], version, floors[index][2])
    interpreter, version = oldest_python(requires_python)
    python = prepare(venv, interpreter, version, floors)

    versions = installed_versions(python, [name for name, _, _ in floors])
    log(f"Python {'.'.join(map(str, version))} ({interpreter}); " + ", ".join(f"{n}=={versions[n]}" for n, _, _ in floors))

    timeout = float(os.environ.get("FLOORS_TIMEOUT", DEFAULT_TIMEOUT))
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # Hypothesis keeps its example database with this virtualenv: an older Hypothesis does not
    # share the newer one's (.hypothesis/ of `make test`).
    env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(venv / ".hypothesis")
    command = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.pytest_args]
    log("running " + " ".join(command[1:]) + f" (time limit {timeout:.0f} s)")
    started = time.monotonic()
    # Its own process group, so that a hang is ended together with any servers the tests started.
    process = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)

    def stop(signum=None, frame=None) -> None:
        for sig, grace in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        if signum is not None:
            sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"pytest still running after {timeout:.0f} s: stopping it (a dependency at its floor may hang)")
        stop()
        code = 124
    except KeyboardInterrupt:
        stop()
        raise
    try:  # anything the tests left running in pytest's process group
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if code != 0:  # (on success pytest's own summary stays the last line)
        log(f"pytest exited {code} after {time.monotonic() - started:.0f} s at the dependency floors")
    return code


if __name__ == "__main__":
    sys.exit(main())
