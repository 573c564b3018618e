"""Captioned images from files (captions.csv folders, COCO captions JSON) and the cap:digits canvases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from nnrecipe.data.caption_canvas import WORDS, caption_task, captions_of
from nnrecipe.data.captions import read_captions, read_images
from nnrecipe.errors import UserError
from testutil import write_csv


def _image(path, value: int, size=(6, 4), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 0, 0)).save(path)
    return path


def test_a_captions_folder_groups_the_rows_of_each_image(tmp_path):
    _image(tmp_path / "a.png", 255)
    _image(tmp_path / "sub" / "b.png", 51, size=(3, 2))  # resized to the first image's size
    write_csv(tmp_path / "captions.csv", ["file", "caption"],
              [["a.png", "A white box."], ["sub/b.png", "a dark box"], ["a.png", "white"]])
    data = read_captions(str(tmp_path))
    assert data.files == ["a.png", "sub/b.png"] and data.captions == [["A white box.", "white"], ["a dark box"]]
    assert data.images.shape == (2, 1, 4, 6) and data.images.dtype == np.float32
    assert np.allclose(data.images[0], 1.0) and np.allclose(data.images[1], 0.2)


def test_a_coco_file_reads_the_images_beside_it(tmp_path):
    _image(tmp_path / "img" / "1.jpg", 10, mode="RGB")
    _image(tmp_path / "img" / "2.jpg", 200, mode="RGB")
    _image(tmp_path / "img" / "3.jpg", 90, mode="RGB")
    coco = {"images": [{"id": 7, "file_name": "img/1.jpg"}, {"id": 9, "file_name": "img/2.jpg"},
                       {"id": 4, "file_name": "img/3.jpg"}],
            "annotations": [{"image_id": 9, "caption": "two"}, {"image_id": 7, "caption": "one"},
                            {"image_id": 9, "caption": "second"}]}
    (tmp_path / "captions.json").write_text(json.dumps(coco))
    data = read_captions(str(tmp_path / "captions.json"), image_size=8)
    assert data.files == ["img/1.jpg", "img/2.jpg"]  # the image without a caption is left out
    assert data.captions == [["one"], ["two", "second"]] and data.images.shape == (2, 3, 8, 8)


def test_images_without_captions_for_predict(tmp_path):
    _image(tmp_path / "b.png", 0)
    _image(tmp_path / "a.png", 255)
    (tmp_path / "notes.txt").write_text("not an image")
    folder = read_images(str(tmp_path), image_size=(4, 6), channels=3)
    assert folder.files == ["a.png", "b.png"] and folder.images.shape == (2, 3, 4, 6)
    one = read_images(str(tmp_path / "b.png"), image_size=(4, 6), channels=1)
    assert one.files == ["b.png"] and one.captions == [[]]


@pytest.mark.parametrize("case, message", [
    ("no_csv", "no captions.csv"), ("missing_file", "image 'gone.png' not found"),
    ("empty_caption", "row 3 has an empty caption"), ("bad_header", "not file and caption"),
    ("bad_json", "invalid JSON"), ("not_coco", "not a COCO captions file"),
    ("unknown_image", "image_id 5, which is not in 'images'"), ("missing", "captions source not found"),
    ("corrupt", "cannot read image 'a.png'")])
def test_bad_input_is_a_user_error(tmp_path, case, message):
    _image(tmp_path / "a.png", 255)
    source = str(tmp_path)
    if case == "missing_file":
        write_csv(tmp_path / "captions.csv", ["file", "caption"], [["gone.png", "x"]])
    elif case == "empty_caption":
        write_csv(tmp_path / "captions.csv", ["file", "caption"], [["a.png", "x"], ["a.png", " "]])
    elif case == "bad_header":
        write_csv(tmp_path / "captions.csv", ["image", "text"], [["a.png", "x"]])
    elif case in ("bad_json", "not_coco", "unknown_image"):
        text = {"bad_json": '{"images": [', "not_coco": "[1, 2]",
                "unknown_image": json.dumps({"images": [{"id": 1, "file_name": "a.png"}],
                                             "annotations": [{"image_id": 5, "caption": "x"}]})}[case]
        (tmp_path / "c.json").write_text(text)
        source = str(tmp_path / "c.json")
    elif case == "missing":
        source = str(tmp_path / "nowhere")
    elif case == "corrupt":
        (tmp_path / "a.png").write_bytes(b"not a png")
        write_csv(tmp_path / "captions.csv", ["file", "caption"], [["a.png", "x"]])
    with pytest.raises(UserError, match=message):
        read_captions(source)


def test_digit_canvases_are_captioned_from_both_ends():
    assert captions_of([3, 7]) == ["three left of seven", "seven right of three"]
    splits = caption_task("cap:digits", seed=1, size=40)
    assert {k: len(v.files) for k, v in splits.items()} == {"train": 40, "val": 10, "test": 20}
    for split in splits.values():
        assert split.images.shape[1:] == (1, 8, 24) and 0 <= split.images.min() and split.images.max() <= 1
        for (left, right), image in zip(split.captions, split.images):
            words = left.split(" left of ")
            assert 2 <= len(words) <= 3 and set(words) <= set(WORDS)
            assert right == " right of ".join(reversed(words))
            ink = image[0].sum(axis=0) > 0  # per column
            assert ink.sum() <= 8 * len(words)  # k digits of 8 columns each, the rest blank
            if len(words) == 3:  # three digits fill the canvas: ink in every 8-column slot
                assert all(ink[x:x + 8].any() for x in (0, 8, 16))


def test_digit_canvases_are_reproducible_and_test_never_reuses_a_training_digit():
    a, b = caption_task("cap:digits", seed=3, size=60), caption_task("cap:digits", seed=3, size=60)
    assert all(np.array_equal(a[k].images, b[k].images) and a[k].captions == b[k].captions for k in a)
    assert not np.array_equal(a["train"].images, caption_task("cap:digits", seed=4, size=60)["train"].images)

    def patches(split):  # every 8×8 block at any column offset: the digit images a canvas holds
        return {image[0, :, x:x + 8].tobytes() for image in split.images for x in range(17)
                if image[0, :, x].any() and image[0, :, x:x + 8].any(axis=0).sum() >= 5}
    shared = patches(a["train"]) & patches(a["test"])
    assert not {p for p in shared if np.frombuffer(p, dtype=np.float32).sum() > 8}  # only blank-ish overlaps
    with pytest.raises(UserError, match="unknown captioning task"):
        caption_task("cap:letters", seed=0)
