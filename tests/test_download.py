"""Downloads (jgraph/data/download.py) against local copies (tests have no internet): file:// and a
loopback HTTP server with Range support, resume of a partial file, checksums given or recorded on
first download, and unpacking into the layout conf/data/ expects."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import threading
import zipfile
from pathlib import Path

import pytest

from jgraph.data.download import RECORD, DownloadError, download

SPLIT_TEXT = {s: "".join(f"/m/{s}{i}\t/r/{i % 3}\t/m/x{i}\n" for i in range(200))
              for s in ("train", "valid", "test")}
QUIET = {"log": lambda m: None}


def _zip(path: Path) -> Path:
    """An archive laid out like FB15K-237.2.zip (Release/{train,valid,test}.txt + other files)."""
    with zipfile.ZipFile(path, "w") as z:
        for split, text in SPLIT_TEXT.items():
            z.writestr(f"Release/{split}.txt", text)
        z.writestr("Release/text_emnlp.txt", "unrelated")
        z.writestr("Release/README.txt", "readme")
    return path


def _check_unpacked(folder: Path) -> None:
    for split, text in SPLIT_TEXT.items():
        assert gzip.decompress((folder / f"{split}.tsv.gz").read_bytes()).decode() == text


def test_file_url_with_given_checksum(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "FB15K-237.2.zip")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    files = download("fb15k237", str(tmp_path / "data"), url=archive.as_uri(), sha256=digest, **QUIET)
    assert [f.name for f in files] == ["train.tsv.gz", "valid.tsv.gz", "test.tsv.gz"]
    _check_unpacked(tmp_path / "data" / "FB15k-237")
    assert not (tmp_path / "data" / "FB15k-237" / "FB15K-237.2.zip").exists()


def test_wrong_checksum_keeps_nothing(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip")
    with pytest.raises(DownloadError, match="does not match"):
        download("fb15k237", str(tmp_path / "data"), url=archive.as_uri(), sha256="0" * 64, **QUIET)
    folder = tmp_path / "data" / "FB15k-237"
    assert not (folder / "train.tsv.gz").exists() and (folder / "a.zip.corrupt").exists()


def test_first_download_records_the_checksum_later_ones_must_match(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip")
    root = tmp_path / "data"
    download("fb15k237", str(root), url=archive.as_uri(), **QUIET)
    record = json.loads((root / RECORD).read_text())
    assert record[archive.as_uri()]["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    for f in (root / "FB15k-237").glob("*.tsv.gz"):
        f.unlink()
    with zipfile.ZipFile(archive, "a") as z:  # the file changed at the source
        z.writestr("Release/extra.txt", "tampered")
    with pytest.raises(DownloadError, match="recorded on first download"):
        download("fb15k237", str(root), url=archive.as_uri(), **QUIET)


def test_resume_a_partial_file(tmp_path: Path) -> None:
    data = gzip.compress(b"".join(b"%d\t%d\n" % (i, i + 1) for i in range(50_000)))
    src = tmp_path / "soc-LiveJournal1.txt.gz"
    src.write_bytes(data)
    folder = tmp_path / "data" / "LiveJournal"
    folder.mkdir(parents=True)
    (folder / "soc-LiveJournal1.txt.gz.part").write_bytes(data[:1000])
    logs: list[str] = []
    (out,) = download("livejournal", str(tmp_path / "data"), url=src.as_uri(), log=logs.append)
    assert out.read_bytes() == data
    assert any("resuming soc-LiveJournal1.txt.gz at 1,000 bytes" in m for m in logs)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    data = b""
    ranges: list = []
    fail_once = False

    def do_GET(self) -> None:  # noqa: N802
        rng = self.headers.get("Range")
        type(self).ranges.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = self.data[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if type(self).fail_once:  # send half, then drop the connection
            type(self).fail_once = False
            self.wfile.write(body[: len(body) // 2])
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_http_range_resume_after_a_dropped_connection(tmp_path: Path) -> None:
    buf = io.BytesIO()
    _zip(tmp_path / "x.zip")
    buf.write((tmp_path / "x.zip").read_bytes())
    _RangeHandler.data, _RangeHandler.ranges, _RangeHandler.fail_once = buf.getvalue(), [], True
    server = http.server.HTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/FB15K-237.2.zip"
        digest = hashlib.sha256(_RangeHandler.data).hexdigest()
        download("fb15k237", str(tmp_path / "data"), url=url, sha256=digest, retries=2, **QUIET)
    finally:
        server.shutdown()
        server.server_close()
    half = len(_RangeHandler.data) // 2
    assert _RangeHandler.ranges == [None, f"bytes={half}-"]
    _check_unpacked(tmp_path / "data" / "FB15k-237")


def test_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="known: fb15k, fb15k237, wn18rr, livejournal, freebase"):
        download("fb16k", str(tmp_path))
