"""Copy the console's browser libraries out of their npm packages (``make vendor``).

Reads ``service/web/vendor.json``; for each package, ``npm pack name@version`` (from the
npm registry, through npm as configured on the machine), checks the tarball against
the pinned integrity, copies the listed files (licence included) into
``service/web/static/vendor/<name>@<version>/`` and records each file's sha256 in the
manifest. Only this script needs npm; the service and its tests use the copies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

WEB = Path(__file__).parents[1] / "service" / "web"
MANIFEST = WEB / "vendor.json"
VENDOR = WEB / "static" / "vendor"


def folder(package: dict) -> Path:
    return VENDOR / f"{package['name'].replace('/', '__')}@{package['version']}"


def vendor(package: dict, work: Path) -> dict[str, str]:
    spec = f"{package['name']}@{package['version']}"
    npm = subprocess.run(["npm", "pack", spec, "--json"], cwd=work, check=True, capture_output=True)
    packed = json.loads(npm.stdout)
    tarball = work / packed[0]["filename"]
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if f"sha512-{digest}" != package["integrity"]:
        raise SystemExit(f"{spec}: the tarball does not match the pinned integrity")
    unpacked = work / spec.replace("/", "__")
    with tarfile.open(tarball) as archive:
        archive.extractall(unpacked, filter="data")
    target = folder(package)
    shutil.rmtree(target, ignore_errors=True)
    hashes = {}
    for name in package["files"]:
        source, copy = unpacked / "package" / name, target / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, copy)
        hashes[name] = hashlib.sha256(copy.read_bytes()).hexdigest()
    return hashes


def main() -> None:
    manifest = json.loads(MANIFEST.read_text())
    with tempfile.TemporaryDirectory() as work:
        for package in manifest["packages"]:
            package["sha256"] = vendor(package, Path(work))
    kept = {folder(package).name for package in manifest["packages"]}
    for stale in VENDOR.iterdir():
        if stale.name not in kept:
            shutil.rmtree(stale)
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
