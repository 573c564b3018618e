"""Image sources: folders of PNG/JPEG files and image arrays in .npz files (via load_table)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nnrecipe.data import encode_labels, image_feature_names, load_table
from nnrecipe.errors import UserError


def pixels(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(folder, name: str, array: np.ndarray, **kwargs):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    Image.fromarray(array).save(path, **kwargs)
    return path


def flat(array: np.ndarray) -> np.ndarray:
    """[H, W] or [H, W, C] uint8 → the C, H, W row in [0, 1] that load_table should produce."""
    chw = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return chw.reshape(-1) / 255.0


def raises(source, *fragments, **kwargs) -> UserError:
    with pytest.raises(UserError) as info:
        load_table(str(source), **kwargs)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    assert info.value.fix
    return info.value


def test_folder_round_trip_gray_png(tmp_path):
    root = tmp_path / "shapes"
    imgs = {("b_dog", "2.png"): pixels(0, (4, 5)), ("b_dog", "10.PNG"): pixels(1, (4, 5)),
            ("a_cat", "x.png"): pixels(2, (4, 5))}
    for (cls, name), array in imgs.items():
        save(root / cls, name, array)
    (root / "a_cat" / "notes.txt").write_text("not an image")
    (root / "a_cat" / ".hidden.png").write_bytes(b"junk")  # hidden: ignored, not reported
    (root / "README.md").write_text("ignored")
    table = load_table(str(root))
    order = [("a_cat", "x.png"), ("b_dog", "10.PNG"), ("b_dog", "2.png")]  # sorted, per class
    assert table.row_names == [f"{c}/{n}" for c, n in order]
    assert table.y.tolist() == ["a_cat", "b_dog", "b_dog"]
    assert table.image_shape == (1, 4, 5) and table.X.shape == (3, 20)
    assert table.X.dtype == np.float64
    np.testing.assert_array_equal(table.X, np.stack([flat(imgs[key]) for key in order]))
    assert table.feature_names[0] == "c0_y0_x0" and table.feature_names[-1] == "c0_y3_x4"
    assert table.target_name == "label" and table.name == "shapes" and table.skipped == 0


def test_rgb_rows_are_channel_major_and_names_match():
    array = pixels(3, (3, 4, 3))
    names = image_feature_names((3, 3, 4))
    row = flat(array)
    assert len(names) == row.size == 36
    c, y, x = 2, 1, 3
    assert names.index(f"c{c}_y{y}_x{x}") == np.ravel_multi_index((c, y, x), (3, 3, 4))
    assert row[names.index(f"c{c}_y{y}_x{x}")] == array[y, x, c] / 255


def test_rgb_png_exact(tmp_path):
    a, b = pixels(4, (6, 3, 3)), pixels(5, (6, 3, 3))
    save(tmp_path / "one", "a.png", a)
    save(tmp_path / "two", "b.png", b)
    table = load_table(str(tmp_path))
    assert table.image_shape == (3, 6, 3)
    np.testing.assert_array_equal(table.X, np.stack([flat(a), flat(b)]))


def test_resize_to_image_size_matches_pillow_bilinear(tmp_path):
    big, small = pixels(6, (10, 12, 3)), pixels(7, (5, 6, 3))
    save(tmp_path / "a", "big.png", big)
    save(tmp_path / "b", "small.png", small)
    table = load_table(str(tmp_path), image_size=(3, 7))
    assert table.image_shape == (3, 3, 7)
    for row, array in zip(table.X, (big, small)):
        oracle = np.asarray(Image.fromarray(array).resize((7, 3), Image.BILINEAR))
        np.testing.assert_array_equal(row, flat(oracle))
    assert load_table(str(tmp_path), image_size=4).image_shape == (3, 4, 4)
    # no image_size: the first image (sorted) sets the size, the others are resized to it
    first = load_table(str(tmp_path))
    assert first.image_shape == (3, 10, 12)
    np.testing.assert_array_equal(first.X[0], flat(big))
    np.testing.assert_array_equal(
        first.X[1], flat(np.asarray(Image.fromarray(small).resize((12, 10), Image.BILINEAR))))


def test_jpeg_loads(tmp_path):
    smooth = np.linspace(0, 255, 8 * 8 * 3).reshape(8, 8, 3).astype(np.uint8)
    paths = [save(tmp_path / "a", "p.jpg", smooth, quality=90),
             save(tmp_path / "b", "q.JPEG", 255 - smooth, quality=90)]
    table = load_table(str(tmp_path))
    assert table.image_shape == (3, 8, 8) and table.row_names == ["a/p.jpg", "b/q.JPEG"]
    for row, path in zip(table.X, paths):  # oracle: Pillow's own decode of the file
        np.testing.assert_array_equal(row, flat(np.asarray(Image.open(path).convert("RGB"))))
    assert np.abs(table.X[0] - flat(smooth)).max() < 0.1  # and it is the image that was saved


def test_corrupt_images_named_or_skipped(tmp_path):
    save(tmp_path / "a", "good.png", pixels(8, (4, 4)))
    save(tmp_path / "b", "good.png", pixels(9, (4, 4)))
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    error = raises(tmp_path, "cannot read image 'b/broken.png'", "--skip-bad-images")
    assert error.where == str(tmp_path / "b" / "broken.png")
    table = load_table(str(tmp_path), skip_bad_images=True)
    assert table.skipped == 1 and table.row_names == ["a/good.png", "b/good.png"]


def test_truncated_png_is_reported(tmp_path):
    save(tmp_path / "a", "ok.png", pixels(10, (4, 4)))
    whole = save(tmp_path / "b", "cut.png", pixels(11, (64, 64, 3))).read_bytes()
    (tmp_path / "b" / "cut.png").write_bytes(whole[: len(whole) // 2])
    raises(tmp_path, "cannot read image 'b/cut.png'", "OSError")


def test_empty_class_folder_is_named(tmp_path):
    save(tmp_path / "cat", "1.png", pixels(12, (4, 4)))
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "list.txt").write_text("no images here")
    error = raises(tmp_path, "class folder 'dog' holds no .png/.jpg/.jpeg images")
    assert error.where == str(tmp_path / "dog")
    (tmp_path / "dog" / "bad.jpg").write_bytes(b"junk")
    raises(tmp_path, "class folder 'dog' has no readable images", skip_bad_images=True)


def test_mixed_modes_convert_to_rgb_or_forced_gray(tmp_path):
    gray, rgb = pixels(13, (5, 5)), pixels(14, (5, 5, 3))
    rgba = np.concatenate([pixels(15, (5, 5, 3)), np.full((5, 5, 1), 7, np.uint8)], axis=2)
    save(tmp_path / "a", "gray.png", gray)
    save(tmp_path / "b", "rgb.png", rgb)
    save(tmp_path / "b", "rgba.png", rgba)
    table = load_table(str(tmp_path))
    assert table.image_shape == (3, 5, 5)
    np.testing.assert_array_equal(table.X[0], flat(np.repeat(gray[:, :, None], 3, axis=2)))
    np.testing.assert_array_equal(table.X[1], flat(rgb))
    np.testing.assert_array_equal(table.X[2], flat(rgba[:, :, :3]))  # alpha dropped
    forced = load_table(str(tmp_path), channels=1)
    assert forced.image_shape == (1, 5, 5)
    np.testing.assert_array_equal(forced.X[0], flat(gray))
    np.testing.assert_array_equal(forced.X[1], flat(np.asarray(Image.fromarray(rgb).convert("L"))))
    only_gray = tmp_path / "g"
    save(only_gray / "a", "1.png", gray)
    save(only_gray / "b", "2.png", gray)
    assert load_table(str(only_gray)).image_shape == (1, 5, 5)
    assert load_table(str(only_gray), channels=3).image_shape == (3, 5, 5)


def test_16_bit_gray_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 1000]], dtype=np.uint16)
    save(tmp_path / "a", "deep.png", values)
    save(tmp_path / "b", "plain.png", pixels(16, (1, 4)))
    table = load_table(str(tmp_path))
    np.testing.assert_array_equal(table.X[0], np.rint(values[0] / 257) / 255)


def test_predict_time_flat_folder_and_class_folders(tmp_path):
    a, b = pixels(17, (4, 4)), pixels(18, (4, 4))
    save(tmp_path, "b.png", b)
    save(tmp_path, "a.png", a)
    raises(tmp_path, "holds 2 images but no class subfolders")  # fit time needs labels
    table = load_table(str(tmp_path), require_target=False)
    assert table.y is None and table.target_name is None
    assert table.row_names == ["a.png", "b.png"]
    np.testing.assert_array_equal(table.X, np.stack([flat(a), flat(b)]))
    save(tmp_path / "cat", "c.png", a)
    (tmp_path / "empty").mkdir()  # harmless without labels
    both = load_table(str(tmp_path), require_target=False)
    assert both.y is None and both.row_names == ["a.png", "b.png", "cat/c.png"]


def test_empty_folder_and_one_class(tmp_path):
    raises(tmp_path, "no class subfolders and no .png/.jpg images")
    raises(tmp_path, "holds no .png/.jpg/.jpeg images", require_target=False)
    save(tmp_path / "cat", "1.png", pixels(19, (4, 4)))
    table = load_table(str(tmp_path))
    with pytest.raises(UserError, match="only one class 'cat'"):  # what fitting does with y
        encode_labels(table.y)


def test_target_name_for_folders(tmp_path):
    save(tmp_path / "a", "1.png", pixels(20, (2, 2)))
    save(tmp_path / "b", "1.png", pixels(21, (2, 2)))
    assert load_table(str(tmp_path), target="label").target_name == "label"
    raises(tmp_path, "data.target='species' does not apply", target="species")


def npz(tmp_path, X, name="images.npz", **arrays):
    path = tmp_path / name
    np.savez(path, X=X, **arrays)
    return str(path)


@pytest.mark.parametrize("shape, nchw", [
    ((5, 3, 6, 7), (5, 3, 6, 7)),  # NCHW
    ((5, 6, 7, 3), (5, 3, 6, 7)),  # NHWC: only axis 3 has 1/3/4 entries
    ((5, 6, 7, 1), (5, 1, 6, 7)),
    ((5, 3, 7, 4), (5, 3, 7, 4)),  # both axes qualify → NCHW
    ((5, 2, 6, 7), (5, 2, 6, 7)),  # neither → NCHW
])
def test_npz_layout_detection(tmp_path, shape, nchw):
    X = np.random.default_rng(0).normal(size=shape) * 50  # values kept as given, not ÷ 255
    table = load_table(npz(tmp_path, X, y=np.arange(5) % 2))
    expected = X.transpose(0, 3, 1, 2) if shape != nchw else X
    assert table.image_shape == nchw[1:]
    np.testing.assert_array_equal(table.X, expected.reshape(5, -1))
    assert table.feature_names == image_feature_names(nchw[1:])


def test_npz_three_d_is_one_channel(tmp_path):
    X = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    table = load_table(npz(tmp_path, X), require_target=False)
    assert table.image_shape == (1, 3, 4) and table.y is None
    np.testing.assert_array_equal(table.X, X.reshape(2, 12).astype(np.float64))


def test_npz_image_errors(tmp_path):
    X = np.ones((3, 1, 2, 2))
    X[1, 0, 1, 0] = np.nan
    raises(npz(tmp_path, X, y=np.ones(3)), "column 'c0_y1_x0' has 1 row with NaN/Inf",
           "first at row 2")
    raises(npz(tmp_path, np.ones((3, 1, 0, 2)), "z.npz", y=np.ones(3)), "every axis")
    raises(npz(tmp_path, np.ones((3, 1, 2, 2, 1)), "f.npz", y=np.ones(3)), "shape (3, 1, 2, 2, 1)")
