"""report.html of a real sandbox drill in headless Chromium: the screenshot shows the verdict band and the
timeline; the page loads nothing from the network; `livefire verify` accepts the evidence and names a change."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from livefire.evidence.markup import VERDICT_COLOURS
from livefire.evidence.timeline import FAIL_COLOUR, OK_COLOUR
from tests.conftest import MESH_DIR, sandbox_spec_document
from tests.html_offline import network_references

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1100, 2200


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    rows: list[Counter[tuple[int, int, int]]]  # per row: how many pixels of each RGB colour

    def count(self, colour: str, rows: range | None = None) -> int:
        """Pixels of exactly this colour (Chromium renders CSS colours exactly with an sRGB profile)."""
        want = (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))
        return sum(self.rows[y][want] for y in (rows or range(self.height)))


def _unfilter(kind: int, line: bytearray, prev: bytes, bpp: int) -> bytearray:
    if kind == 1:
        for i in range(bpp, len(line)):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:
        line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
    elif kind == 3:
        for i in range(len(line)):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(len(line)):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    return line


def read_png(data: bytes) -> Image:
    """An 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes), decoded without third-party code."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IHDR":
            header = data[pos + 8:pos + 8 + length]
        elif kind == b"IDAT":
            idat.append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0) and colour in (2, 6), (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    rows, prev = [], bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = bytes(_unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), prev, bpp))
        rows.append(Counter(zip(line[0::bpp], line[1::bpp], line[2::bpp], strict=True)))
        prev = line
    return Image(width, height, rows)


def screenshot(page: Path, out: Path, profile: Path) -> Image:
    if not CHROMIUM.is_file():
        pytest.fail(f"headless Chromium is needed at {CHROMIUM} to render report.html: install it with "
                    "`apt-get install -y chromium` (.ci/run does this)")
    result = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--hide-scrollbars", "--force-color-profile=srgb", f"--window-size={WIDTH},{HEIGHT}",
         f"--screenshot={out}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0 and out.is_file(), result.stdout + result.stderr
    return read_png(out.read_bytes())


def livefire(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livefire_local.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, check=False)


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The evidence folder of one real sandbox drill, run the way a user runs it."""
    work = tmp_path_factory.mktemp("render")
    (work / "mesh").symlink_to(MESH_DIR, target_is_directory=True)
    phases = {"baseline": "1s", "lead": "1s", "fault": "2s", "recovery": "2s"}  # enough to draw a failover
    (work / "drill.yaml").write_text(yaml.safe_dump(sandbox_spec_document(phases=phases), sort_keys=False))
    result = livefire("run", "drill.yaml", "--evidence-dir", "evidence", cwd=work)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    (folder,) = [p for p in (work / "evidence").iterdir() if not p.name.startswith(".")]  # not .chain
    return folder


def test_the_report_renders_in_chromium_with_the_verdict_band_and_the_timeline(
    evidence: Path, tmp_path: Path
) -> None:
    verdict = yaml.safe_load((evidence / "manifest.json").read_text())["verdict"]

    image = screenshot(evidence / "report.html", tmp_path / "report.png", tmp_path / "profile")

    assert (image.width, image.height) == (WIDTH, HEIGHT)
    colours = set().union(*image.rows)
    assert len(colours) > 50, "the screenshot is (nearly) blank"
    band = VERDICT_COLOURS[verdict]
    widths = {y: image.count(band, range(y, y + 1)) for y in range(300)}
    band_rows = [y for y, width in widths.items() if width > 300]
    assert len(band_rows) > 60, f"no {verdict} band ({band}) at the top of the page"
    full = max(widths.values())
    # Rows crossed by the (white) verdict text have visibly fewer band pixels; the rounded corners only a few.
    text_rows = [y for y in band_rows[8:-8] if widths[y] < full - 40]
    assert len(text_rows) > 30, "the verdict band carries no text"
    below = range(band_rows[-1] + 1, image.height)
    assert image.count(OK_COLOUR, below) > 5000, "no success band of the timeline is visible"
    assert image.count(FAIL_COLOUR, below) > 500, "the faulted endpoint's failure band is not visible"


def test_what_to_change_and_the_controls_evidenced_render_in_chromium(evidence: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (evidence / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )

    dom = result.stdout  # the document as Chromium parsed and laid it out
    assert result.returncode == 0, result.stderr
    change = dom[dom.index('<section id="what-to-change">'):]
    controls = dom[dom.index('<section id="controls">'):]
    assert change.startswith('<section id="what-to-change"><h2>What to change</h2><')
    assert controls.startswith('<section id="controls"><h2>Controls evidenced</h2><p>')
    table = controls[:controls.index("</table>")]
    assert table.count("<tr>") == 1 + 7, "a header and one row per shipped control"
    assert table.count('<span class="pill"') == 7 and "NIST SP 800-53 CP-4" in table


def test_the_report_loads_nothing_from_the_network(evidence: Path) -> None:
    html = (evidence / "report.html").read_text()

    assert network_references(html) == []
    assert "<svg" in html and "<script" not in html.lower()


def test_verify_accepts_the_drills_evidence_and_names_a_changed_report(evidence: Path, tmp_path: Path) -> None:
    intact = livefire("verify", str(evidence), cwd=tmp_path)
    copy = shutil.copytree(evidence, tmp_path / evidence.name)
    data = bytearray((copy / "report.html").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "report.html").write_bytes(bytes(data))

    tampered = livefire("verify", str(copy), cwd=tmp_path)

    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert tampered.returncode == 1
    assert tampered.stdout.startswith("TAMPERED: report.html: content changed")
