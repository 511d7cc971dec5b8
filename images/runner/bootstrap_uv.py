"""Install uv from a package index with nothing but the standard library, verified by its locked hash.

The cluster's Python base has python3 and no pip or venv, so the runner Dockerfile's build stage starts
here: find uv's wheel for this machine on the index (PEP 503 simple API), accept it only if its sha256 is
one uv.lock pins (requirements/tools.txt), and unpack its binary. Everything after that is installed by
uv with --require-hashes.

    python3 bootstrap_uv.py --index-url http://index/simple/ --requirements tools.txt --dest /usr/local/bin
"""

from __future__ import annotations

import argparse
import hashlib
import html.parser
import io
import platform
import re
import sys
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

PACKAGE = "uv"


class _Links(html.parser.HTMLParser):
    """The href of every anchor on a simple-API project page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def pinned_hashes(requirements: Path, package: str) -> set[str]:
    """The sha256 values a hashed requirements file allows for ``package``."""
    text = requirements.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if re.match(rf"{re.escape(package)}==", line.strip()):
            return set(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    raise SystemExit(f"bootstrap: {requirements} pins no {package}")


def fits_this_machine(filename: str) -> bool:
    """A manylinux wheel for this CPU (uv's wheels are py3-none-<platform>)."""
    machine = platform.machine()
    return filename.endswith(".whl") and "manylinux" in filename and machine in filename


def main(argv: list[str] | None = None) -> int:
    """Download, verify and unpack uv; exit non-zero with a message naming what failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-url", required=True)
    parser.add_argument("--requirements", type=Path, required=True)
    parser.add_argument("--dest", type=Path, required=True)
    args = parser.parse_args(argv)
    allowed = pinned_hashes(args.requirements, PACKAGE)
    page_url = args.index_url.rstrip("/") + f"/{PACKAGE}/"
    with urllib.request.urlopen(page_url, timeout=60) as response:  # noqa: S310  # the index URL is ours
        links = _Links()
        links.feed(response.read().decode())
    candidates = [
        urllib.parse.urljoin(page_url, href)
        for href in links.hrefs
        if fits_this_machine(urllib.parse.unquote(Path(urllib.parse.urlsplit(href).path).name))
    ]
    if not candidates:
        raise SystemExit(f"bootstrap: {page_url} offers no uv wheel for {platform.machine()} manylinux")
    for url in candidates:
        with urllib.request.urlopen(url.split("#")[0], timeout=300) as response:  # noqa: S310
            data = response.read()
        sha = hashlib.sha256(data).hexdigest()
        if sha not in allowed:
            continue
        args.dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(data)) as wheel:
            for member in wheel.namelist():
                if re.fullmatch(r"uv-[^/]+\.data/scripts/(uv|uvx)", member):
                    target = args.dest / Path(member).name
                    target.write_bytes(wheel.read(member))
                    target.chmod(0o755)
        print(f"bootstrap: installed uv from {url.split('#')[0]} (sha256 {sha})")
        return 0
    raise SystemExit(f"bootstrap: none of the uv wheels on {page_url} has a sha256 that {args.requirements} pins")


if __name__ == "__main__":
    sys.exit(main())
