"""`python -m jgraph.data.download NAME [--root DIR]`: fetch a public dataset, check it, unpack it
into the layout the configs in conf/data/ expect.

    python -m jgraph.data.download fb15k237            # -> $JGRAPH_DATA/FB15k-237/{train,valid,test}.tsv.gz
    python -m jgraph.data.download livejournal --root data
    python -m jgraph.data.download fb15k --url file:///mirror/fb15k.tgz --sha256 <hex>

Names: fb15k, fb15k237, wn18rr (archives, unpacked to {train,valid,test}.tsv.gz), livejournal and
freebase (one gzip file each, kept as is; convert Freebase with `python -m jgraph.data.freebase`).

Resume: the download goes to `<file>.part`; a later run continues it with an HTTP Range request
(file:// URLs seek), and retries (--retries) resume the same way. Checksums: sha256 of the whole
file. The hosts publish none for these files, and this code was written offline, so none is pinned
here: the first complete download records its sha256 and size in `<root>/.jgraph-downloads.json`
(trust on first use), and every later download of that URL must match the record; `--sha256`
pins a value you trust instead. A mismatch keeps nothing: the file is moved to `<file>.corrupt`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from jgraph.errors import command_parser

SPLITS = ("train", "valid", "test")
RECORD = ".jgraph-downloads.json"


@dataclass(frozen=True)
class Source:
    folder: str  # under the data root, as conf/data/<name>.yaml's `path`
    url: str
    sha256: str | None = None  # None: not known offline, recorded on first download
    unpack: bool = True  # archive -> {split}.tsv.gz; False: keep the downloaded file as is


SOURCES = {
    "fb15k": Source("FB15k", "https://dl.fbaipublicfiles.com/starspace/fb15k.tgz"),
    "fb15k237": Source("FB15k-237", "https://download.microsoft.com/download/8/7/0/"
                       "8700516A-AB3D-4850-B4BB-805C515AECE1/FB15K-237.2.zip"),
    "wn18rr": Source("WN18RR", "https://github.com/TimDettmers/ConvE/raw/master/WN18RR.tar.gz"),
    "livejournal": Source("LiveJournal", "https://snap.stanford.edu/data/soc-LiveJournal1.txt.gz",
                          unpack=False),
    "freebase": Source("freebase", "https://commondatastorage.googleapis.com/freebase-public/rdf/"
                       "freebase-rdf-latest.gz", unpack=False),
}


class DownloadError(RuntimeError):
    pass


def default_root() -> str:
    return os.environ.get("JGRAPH_DATA", "data")


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, dest: Path, retries: int = 3, chunk: int = 1 << 20, log=print) -> None:
    """Download `url` to `dest`, resuming `dest.part` (HTTP Range; file:// seeks)."""
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        start = part.stat().st_size if part.exists() else 0
        if start:
            log(f"resuming {dest.name} at {start:,} bytes")
        try:
            if url.startswith("file://"):
                src = Path(urllib.request.url2pathname(url[len("file://"):]))
                with open(src, "rb") as fin, open(part, "ab") as fout:
                    fin.seek(start)
                    shutil.copyfileobj(fin, fout, chunk)
            else:
                req = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
                try:
                    resp = urllib.request.urlopen(req, timeout=60)
                except urllib.error.HTTPError as e:
                    if e.code == 416 and start:  # nothing left past `start`: complete
                        break
                    raise
                with resp:
                    mode = "ab" if start and resp.status == 206 else "wb"  # 200: no range support
                    total = resp.headers.get("Content-Length")
                    with open(part, mode) as fout:
                        shutil.copyfileobj(resp, fout, chunk)
                    expect = (start if mode == "ab" else 0) + int(total) if total is not None else None
                    if expect is not None and part.stat().st_size != expect:
                        raise DownloadError(f"{url}: connection closed early")
            break
        except (OSError, urllib.error.URLError, DownloadError) as e:
            if attempt == retries:
                raise DownloadError(f"{url}: {e} (the partial file {part} is kept; run again to resume)"
                                    ) from e
            log(f"{url}: {e}; retrying ({attempt + 1}/{retries})")
            time.sleep(min(2 ** attempt, 30))
    os.replace(part, dest)


def verify(path: Path, url: str, root: Path, sha256: str | None, log=print) -> str:
    """Check the file's sha256 against `sha256` or the record of `url`; record it if new."""
    record_path = root / RECORD
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    digest = sha256_of(path)
    want = sha256 or record.get(url, {}).get("sha256")
    if want is not None and digest != want.lower():
        bad = path.with_name(path.name + ".corrupt")
        os.replace(path, bad)
        raise DownloadError(f"{path.name}: sha256 {digest} does not match {want.lower()} "
                            f"({'given' if sha256 else 'recorded on first download'}); moved to {bad}")
    if url not in record:
        log(f"{path.name}: sha256 {digest} recorded in {record_path} (first download)")
        record[url] = {"sha256": digest, "size": path.stat().st_size}
        record_path.write_text(json.dumps(record, indent=1))
    return digest


def _split_of(member: str) -> str | None:
    base = member.rsplit("/", 1)[-1]
    for split in SPLITS:
        if re.fullmatch(rf"(.*[-_])?{split}\.(txt|tsv)", base):
            return split
    return None


def unpack(archive: Path, folder: Path) -> list[Path]:
    """Write the archive's train/valid/test files as {split}.tsv.gz in `folder`."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            members = {n: (lambda n=n: z.open(n)) for n in z.namelist() if not n.endswith("/")}
            return _write_splits(members, archive, folder)
    with tarfile.open(archive) as t:
        members = {m.name: (lambda m=m: t.extractfile(m)) for m in t.getmembers() if m.isfile()}
        return _write_splits(members, archive, folder)


def _write_splits(members: dict, archive: Path, folder: Path) -> list[Path]:
    found: dict[str, list[str]] = {}
    for name in members:
        split = _split_of(name)
        if split:
            found.setdefault(split, []).append(name)
    out = []
    for split in SPLITS:
        names = found.get(split, [])
        if len(names) != 1:
            raise DownloadError(f"{archive.name}: expected one {split} file, found {names or 'none'}")
        dest = folder / f"{split}.tsv.gz"
        tmp = dest.with_name(dest.name + ".tmp")
        with members[names[0]]() as fin, gzip.open(tmp, "wb", compresslevel=6) as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        os.replace(tmp, dest)
        out.append(dest)
    return out


def download(name: str, root: str | None = None, url: str | None = None, sha256: str | None = None,
             retries: int = 3, keep_archive: bool = False, log=print) -> list[Path]:
    """Fetch, check and unpack dataset `name` under `root`; returns the files it leaves."""
    if name not in SOURCES:
        raise DownloadError(f"unknown dataset {name!r}; known: {', '.join(SOURCES)}")
    src = SOURCES[name]
    url = url or src.url
    base = Path(root or default_root())
    folder = base / src.folder
    folder.mkdir(parents=True, exist_ok=True)
    file_name = urllib.request.url2pathname(url.rsplit("/", 1)[-1].split("?")[0]) or f"{name}.download"
    target = folder / file_name
    if src.unpack and all((folder / f"{s}.tsv.gz").exists() for s in SPLITS) and not target.exists():
        log(f"{name}: {folder} is already unpacked")
        return [folder / f"{s}.tsv.gz" for s in SPLITS]
    if not target.exists():
        log(f"{name}: downloading {url} -> {target}")
        fetch(url, target, retries, log=log)
    verify(target, url, base, sha256 or src.sha256, log)
    if not src.unpack:
        log(f"{name}: {target} ({target.stat().st_size:,} bytes)")
        return [target]
    files = unpack(target, folder)
    if not keep_archive:
        target.unlink()
    log(f"{name}: " + ", ".join(str(f) for f in files))
    return files


def main(argv: list[str] | None = None) -> int:
    p = command_parser("python -m jgraph.data.download", __doc__)
    p.add_argument("name", choices=sorted(SOURCES))
    p.add_argument("--root", default=None, help="data root (default: $JGRAPH_DATA or ./data)")
    p.add_argument("--url", default=None, help="another location of the same file (mirror, file://)")
    p.add_argument("--sha256", default=None, help="the checksum to require")
    p.add_argument("--retries", type=int, default=3)
    p.add_argument("--keep-archive", action="store_true")
    a = p.parse_args(argv)
    try:
        download(a.name, a.root, a.url, a.sha256, a.retries, a.keep_archive)
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
