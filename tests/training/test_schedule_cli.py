import csv
import math

from nnrecipe.cli import main
from nnrecipe.training.preview import preview_schedule


def test_schedule_preview_csv_and_plot(tmp_path, capsys):
    out_csv, out_png = tmp_path / "lr.csv", tmp_path / "lr.png"
    code = main(["schedule", "cosine", "--steps", "200", "--lr", "0.1", "--set", "schedule.warmup.steps=20",
                 "--csv", str(out_csv), "--plot", str(out_png)])
    assert code == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [int(r["step"]) for r in rows] == list(range(200))
    lrs = [float(r["lr"]) for r in rows]
    # warm-up from 0 to the peak over 20 steps, then cosine over the remaining 180
    assert lrs[0] == 0.0 and math.isclose(lrs[10], 0.05)
    for t in (0, 45, 90, 179):
        assert math.isclose(lrs[20 + t], 0.05 * (1 + math.cos(math.pi * t / 180)), rel_tol=1e-12)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "0.1" in printed and "wrote" in printed


def test_schedule_preview_matches_fit_numbers(tmp_path):
    a = preview_schedule("one_cycle", steps=50, lr=0.01)
    b = preview_schedule("one_cycle", steps=50, lr=0.01)
    assert a == b and max(a) <= 0.01 + 1e-15


def test_schedule_unknown_name(capsys):
    assert main(["schedule", "cosin", "--steps", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "cosine" in err and err.count("\n") == 1
