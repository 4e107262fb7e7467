"""Fetch a corpus archive once: download into a cache, check its SHA-256 and every zip member's CRC.

``prepare --source https://...zip`` comes here; the cache is keyed by a hash
of the URL, and a file enters it only whole and checked, so a second run
makes no request and a damaged download is never used.
"""

import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile

from poetry_rnn.infra import files
from poetry_rnn.infra.errors import PoetryError

def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(sha256):
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise PoetryError(f"--sha256 must be 64 hex digits, got {sha256!r}")
    return sha256.lower() if sha256 else None


def _progress(done, total, stream):
    mb = 1 << 20
    if total:
        stream.write(f"\r  {done / mb:,.1f} of {total / mb:,.1f} MB ({100 * done // total}%)")
    else:
        stream.write(f"\r  {done / mb:,.1f} MB")
    stream.flush()


def download(url, cache_dir=None, sha256=None, progress=None):
    """Path of the zip at ``url`` in ``cache_dir``, downloading it only if not cached.

    The bytes go to a temporary file that is renamed into the cache only after
    the SHA-256 (if given) matches and zipfile has checked every member's CRC,
    so the cache never holds a half or damaged download and a second run
    makes no request. The cached name starts with a hash of the URL so two
    "master.zip" from different repositories do not collide.
    """
    sha256 = check_sha256(sha256)
    progress = progress or sys.stderr
    cache_dir = os.path.expanduser(cache_dir or files.CACHE_DIR)
    base = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(urllib.parse.urlparse(url).path)) or "download.zip"
    path = os.path.join(cache_dir, f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{base}")
    if os.path.isfile(path) and (sha256 is None or file_sha256(path) == sha256):
        return path
    print(f"downloading {url}", file=progress)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, files.atomic_write(path, "w+b") as handle:
            total = int(response.headers.get("Content-Length") or 0)
            digest = hashlib.sha256()
            done = 0
            while chunk := response.read(1 << 20):
                handle.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                _progress(done, total, progress)
            print(file=progress)
            if sha256 and digest.hexdigest() != sha256:
                raise PoetryError(f"{url}: SHA-256 is {digest.hexdigest()}, expected {sha256}")
            handle.seek(0)
            verify_zip(handle, url)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise PoetryError(f"cannot download {url} into {cache_dir}: {getattr(error, 'reason', error)}") from error
    return path


def verify_zip(handle, name):
    """Raise PoetryError unless ``handle`` is a zip whose members all pass their CRC."""
    try:
        with zipfile.ZipFile(handle) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile as error:
        raise PoetryError(f"{name} is not a valid zip: {error}") from error
    if bad is not None:
        raise PoetryError(f"{name} is damaged: member {bad} fails its CRC check")
