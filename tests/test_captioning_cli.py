"""Image captioning end to end: which data is captioning, the loss with its attention penalty, BLEU
equal to sacreBLEU's, `nnrecipe fit` / `predict` / `evaluate` on cap:digits and a captions folder
(split by image), the API, the report, the one-line errors, and (slow) the defaults' BLEU-4."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import sacrebleu
import torch
from PIL import Image

import nnrecipe
from nnrecipe.caption_data import load_splits, normalized
from nnrecipe.captioning import caption_scores, make_forward, make_loss
from nnrecipe.cli import main
from nnrecipe.config import resolve_config
from nnrecipe.models import build_model
from nnrecipe.tasks import task_name
from testutil import set_args, write_csv

TINY = ["caption.task_size=100", "model.channels=[8,16]", "model.rnn_hidden=32", "model.embed_dim=16",
        "caption.attention_dim=16", "train.batch_size=32", "train.epochs=2", "caption.samples=2"]


def test_which_data_is_captioning(tmp_path):
    for overrides, name in ((["data.source=cap:digits"], "captioning"), (["model.name=captioner"], "captioning"),
                            (["data.source=cap:digits", "model.name=cnn"], "captioning"),
                            (["data.source=digits", "model.name=cnn"], "tabular")):
        assert task_name(resolve_config(overrides=overrides)) == name, overrides
    cfg = resolve_config(overrides=["data.source=cap:digits"])
    assert cfg.model.name == "captioner" and cfg.optimizer.weight_decay == 0.0  # the captioner's defaults
    assert resolve_config(overrides=["model.name=captioner"]).data.source == "cap:digits"


def test_the_loss_is_xu_et_al_per_word_with_the_doubly_stochastic_penalty():
    torch.manual_seed(0)
    model = build_model({"name": "captioner", "in_channels": 1, "image_size": [8, 24], "vocab_size": 9,
                         "channels": [4, 8], "embed_dim": 4, "hidden": 8, "attention_dim": 4})
    images = torch.randn(3, 1, 8, 24)
    tgt_in = torch.tensor([[2, 5, 6, 7], [2, 8, 0, 0], [2, 4, 5, 0]])
    targets = torch.tensor([[5, 6, 7, 3, 0], [8, 3, 0, 0, 0], [4, 5, 3, 0, 0]])
    index = torch.tensor([2, 0, 1])
    out = make_forward(images, teacher_forcing=1.0)(model, (index, tgt_in))
    logits, alpha = model(images[index], tgt_in)
    expected = 0.0
    for b in range(3):
        steps = int((targets[b] != 0).sum())
        nll = -logits[b, :steps].log_softmax(-1)[torch.arange(steps), targets[b, :steps]].sum()
        expected = expected + nll + 0.7 * ((1 - alpha[b, :steps].sum(0)) ** 2).sum()
    loss = make_loss(attention_reg=0.7, label_smoothing=0.0)(out, targets)
    assert out.shape == (3, 5, 9) and torch.allclose(loss, expected / (targets != 0).sum(), atol=1e-6)


def test_bleu_and_exact_match_against_every_reference_equal_sacrebleu():
    hyps = ["three left of seven", "one right of two", "nine left of nine left of one", "two"]
    refs = [["Three left of SEVEN", "seven right of three."], ["two left of one", "one right of two"],
            ["nine left of one left of nine", "nine right of one right of nine"], ["two left of six", "six right of two"]]
    scores = caption_scores(hyps, refs)
    streams = [[normalized(r[k]) for r in refs] for k in range(2)]
    for n in (1, 2, 3, 4):
        oracle = sacrebleu.metrics.BLEU(max_ngram_order=n).corpus_score(hyps, streams).score
        assert scores[f"bleu_{n}"] == pytest.approx(oracle, abs=1e-9)
    assert scores["exact_match"] == 0.5


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cap") / "run"
    assert main(["fit", "--data", "cap:digits", "--model", "captioner", "--out", str(out), *set_args(TINY)]) == 0
    return out


def test_fit_writes_a_captioning_run_with_its_report(digits_run, capsys):
    metrics = json.loads((digits_run / "metrics.json").read_text())
    test = metrics["test"]
    assert metrics["task"] == "captioning" and test["images"] == 25 and test["references"] == 50
    assert all(0 <= test[f"bleu_{n}"] <= 100 for n in (1, 2, 3, 4)) and test["decoding"] == "beam 3"
    assert metrics["split_sizes"] == {"train": 100, "val": 12, "test": 25} and metrics["grid"] == [2, 6]
    sample = metrics["samples"][0]
    assert len(sample["attention"]) == len(sample["words"]) and np.array(sample["attention"]).shape[1:] == (2, 6)
    assert np.allclose(np.array(sample["attention"]).sum(axis=(1, 2)), 1, atol=1e-3)
    assert (digits_run / "plots" / "captions.png").is_file()
    html = (digits_run / "report.html").read_text()
    assert "Captions and attention" in html and "bleu_4" in html and html.count("data:image/png") >= 2
    info = json.loads((digits_run / "model.json").read_text())
    assert info["task"] == "captioning" and info["captioning"]["image_shape"] == [1, 8, 24]


def test_predict_writes_one_caption_per_image_and_evaluate_reproduces_fit(digits_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["predict", str(digits_run), "--data", "cap:digits", "--out", str(tmp_path / "p.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    metrics = json.loads((digits_run / "metrics.json").read_text())
    assert len(rows) == 25 and rows[0]["file"] == "test/0000"
    assert [r["caption"] for r in rows[:8]] == [e["caption"] for e in metrics["test"]["examples"]]
    assert main(["evaluate", str(digits_run), "--data", "cap:digits", "--out", str(tmp_path / "e.json")]) == 0
    again = json.loads((tmp_path / "e.json").read_text())
    keys = ("bleu_1", "bleu_4", "exact_match", "images", "references")
    assert {k: again[k] for k in keys} == {k: metrics["test"][k] for k in keys}


def _captions_folder(tmp_path, n: int = 30):
    """n images, two captions each: a bright square on the left or the right."""
    rows = []
    for i in range(n):
        pixels = np.zeros((12, 12), dtype=np.uint8)
        side = "left" if i % 2 else "right"
        pixels[4:8, 1:5] = 255 if side == "left" else 0
        pixels[4:8, 7:11] = 255 if side == "right" else 0
        Image.fromarray(pixels).save(tmp_path / f"{i:02d}.png")
        rows += [[f"{i:02d}.png", f"a square on the {side}"], [f"{i:02d}.png", f"the {side} side is lit"]]
    write_csv(tmp_path / "captions.csv", ["file", "caption"], rows)
    return tmp_path


def test_a_captions_folder_splits_by_image_and_predicts_a_plain_folder(tmp_path):
    (tmp_path / "data").mkdir()
    data = _captions_folder(tmp_path / "data")
    run = nnrecipe.fit(str(data), model="captioner", overrides=[*TINY, "caption.beam=1"], out=tmp_path / "run")
    sizes = run.metrics["split_sizes"]
    assert sum(sizes.values()) == 30 and sizes["test"] == 6  # images, not captions, are split
    assert run.metrics["test"]["references"] == 12 and run.metrics["test"]["decoding"] == "greedy"
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("03.png", "04.png"):
        (plain / name).write_bytes((data / name).read_bytes())
    text = nnrecipe.predict(nnrecipe.load(run.dir), str(plain))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["file", "caption"] and [r[0] for r in rows[1:]] == ["03.png", "04.png"]


def test_a_coco_captions_file_trains_predicts_and_evaluates(tmp_path):
    folder = _captions_folder(tmp_path, n=20)
    rows = list(csv.DictReader((folder / "captions.csv").open()))
    files = sorted({r["file"] for r in rows})
    coco = {"images": [{"id": 100 + i, "file_name": f} for i, f in enumerate(files)],
            "annotations": [{"image_id": 100 + files.index(r["file"]), "caption": r["caption"]} for r in rows]}
    (folder / "captions.csv").unlink()  # the JSON alone describes the data
    (tmp_path / "captions.json").write_text(json.dumps(coco))
    assert main(["fit", "--data", str(tmp_path / "captions.json"), "--model", "captioner", "--quiet",
                 "--out", str(tmp_path / "run"), *set_args([*TINY, "caption.samples=0"])]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert sum(metrics["split_sizes"].values()) == 20
    assert not (tmp_path / "run" / "plots" / "captions.png").exists()
    run = nnrecipe.load(tmp_path / "run")
    predicted = list(csv.reader(io.StringIO(nnrecipe.predict(run, str(tmp_path / "captions.json")))))
    assert len(predicted) == 21 and sorted(r[0] for r in predicted[1:]) == files
    scores = nnrecipe.evaluate(run, str(tmp_path / "captions.json"))
    assert scores["images"] == 20 and scores["references"] == 40


def test_splits_never_share_an_image(tmp_path):
    data = _captions_folder(tmp_path)
    _, splits = load_splits(resolve_config(overrides=[f"data.source={data}", "model.name=captioner"]))
    files = [set(s.files) for s in splits.values()]
    assert sum(map(len, files)) == 30 and not (files[0] & files[1] or files[0] & files[2] or files[1] & files[2])
    assert all(len(c) == 2 for s in splits.values() for c in s.captions)


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_errors_are_one_line_and_leave_no_run(digits_run, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "bad.json").write_text("{not json")
    gone = tmp_path / "gone"
    gone.mkdir()
    Image.new("L", (4, 4)).save(gone / "a.png")
    write_csv(gone / "captions.csv", ["file", "caption"], [["a.png", "x"], ["b.png", "y"]])
    blank = tmp_path / "blank"
    blank.mkdir()
    Image.new("L", (4, 4)).save(blank / "a.png")
    write_csv(blank / "captions.csv", ["file", "caption"], [["a.png", ""]])
    cases = [(str(empty), "no captions.csv"), (str(tmp_path / "bad.json"), "invalid JSON"),
             (str(gone), "image 'b.png' not found"), (str(blank), "row 2 has an empty caption")]
    for i, (source, message) in enumerate(cases):
        out = tmp_path / f"r{i}"
        assert main(["fit", "--data", source, "--model", "captioner", "--out", str(out)]) == 2
        assert message in _error(capsys) and not out.exists()
    assert main(["fit", "--data", "cap:digits", "--model", "cnn", "--out", str(tmp_path / "r9")]) == 2
    assert "does not caption" in _error(capsys) and not (tmp_path / "r9").exists()
    assert main(["compress", str(digits_run)]) == 2
    assert "image captioner" in _error(capsys)
    assert main(["predict", str(digits_run), "--data", str(tmp_path / "nowhere")]) == 2
    assert "not found" in _error(capsys)


@pytest.mark.slow
def test_the_defaults_caption_digit_canvases(tmp_path, capsys):
    """`nnrecipe fit --data cap:digits --model captioner` with its defaults, 12 of its 20 epochs
    (README Captioning: the full default run reaches BLEU-4 ≈ 95)."""
    assert main(["fit", "--data", "cap:digits", "--model", "captioner", "--epochs", "12",
                 "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    test = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    assert "BLEU-4" in printed and test["bleu_4"] > 70 and test["exact_match"] > 0.4
