"""load_table: bundled sets, CSV and .npz files, and every bad-input error."""

from __future__ import annotations

import numpy as np
import pytest

from nnrecipe.data import BUNDLED, load_table
from nnrecipe.errors import UserError

SHAPES = {"digits": (1797, 64), "breast_cancer": (569, 30), "wine": (178, 13),
          "iris": (150, 4), "diabetes": (442, 10)}


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_shapes(name):
    table = load_table(name)
    assert table.X.shape == SHAPES[name] and table.X.dtype == np.float64
    assert table.y.shape == (SHAPES[name][0],)
    assert len(table.feature_names) == SHAPES[name][1]
    assert table.target_name == "target" and table.name == name


def test_bundled_labels():
    assert load_table("digits").y.dtype.kind == "i"
    assert load_table("digits").feature_names[:2] == ["pixel_0_0", "pixel_0_1"]
    assert set(load_table("iris").y) == {"setosa", "versicolor", "virginica"}
    assert set(load_table("breast_cancer").y) == {"malignant", "benign"}
    assert load_table("diabetes").y.dtype == np.float64


def test_digits_are_images_other_sources_are_vectors(tmp_path):
    digits = load_table("digits")
    assert digits.image_shape == (1, 8, 8) and digits.X.max() == 16.0
    assert load_table("digits", require_target=False).image_shape == (1, 8, 8)
    path = write(tmp_path, "a,y\n1,0\n2,1\n")
    for table in (load_table("iris"), load_table(path)):
        assert table.image_shape is None and table.row_names is None and table.skipped == 0


def test_bundled_at_predict_time_has_no_target():
    table = load_table("iris", require_target=False)
    assert table.y is None and table.X.shape == (150, 4)


def test_csv_string_labels_default_last_column(tmp_path):
    path = write(tmp_path, "a,b,label\n1,2.5,cat\n3,-4,dog\n\n5,6e1, cat \n")
    table = load_table(path)
    assert table.X.tolist() == [[1, 2.5], [3, -4], [5, 60]]
    assert table.y.tolist() == ["cat", "dog", "cat"]
    assert table.feature_names == ["a", "b"] and table.target_name == "label"
    assert table.name == "data"


def test_csv_named_numeric_target(tmp_path):
    path = write(tmp_path, "\ufeffprice,rooms,area\n100.5,3,70\n200,4,90\n")
    table = load_table(path, target="price")
    assert table.y.dtype == np.float64 and table.y.tolist() == [100.5, 200.0]
    assert table.feature_names == ["rooms", "area"]


def test_csv_predict_time(tmp_path):
    path = write(tmp_path, "a,b,y\n1,2,0\n3,4,1\n")
    dropped = load_table(path, target="y", require_target=False)
    assert dropped.y is None and dropped.feature_names == ["a", "b"]
    everything = load_table(path, require_target=False)
    assert everything.y is None and everything.feature_names == ["a", "b", "y"]
    absent = load_table(write(tmp_path, "a,b\n1,2\n", "new.csv"), target="y",
                        require_target=False)
    assert absent.X.shape == (1, 2)


def test_npz(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(path, X=np.arange(6.0).reshape(3, 2), y=np.array(["a", "b", "a"]))
    table = load_table(str(path))
    assert table.X.shape == (3, 2) and table.y.tolist() == ["a", "b", "a"]
    assert table.feature_names == ["x0", "x1"] and table.name == "arrays"


def raises(source, *fragments, **kwargs):
    with pytest.raises(UserError) as info:
        load_table(source, **kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert info.value.fix
    return info.value


def test_unknown_bundled_name_suggests_closest():
    error = raises("digit", "unknown data set 'digit'", "did you mean 'digits'")
    assert all(name in error.fix for name in BUNDLED)
    raises("mnist", "unknown data set 'mnist'")


def test_missing_file_directory_extension_empty(tmp_path):
    raises(str(tmp_path / "nope.csv"), "file not found", "nope.csv")
    raises(str(tmp_path), "no class subfolders and no .png/.jpg images")  # a folder of images
    raises(write(tmp_path, "a,b\n1,2\n", "data.txt"), "unknown file type '.txt'")
    raises(write(tmp_path, ""), "is empty")
    raises(write(tmp_path, "\n\n"), "has no rows")
    raises(write(tmp_path, "a,b,y\n"), "header row but no data rows")


def test_ragged_row_names_line(tmp_path):
    error = raises(write(tmp_path, "a,b,y\n1,2,3\n\n4,5\n6,7,8,9\n"), "line 4 has 2 fields",
                   "header has 3", "2 such rows")
    assert "data.csv" in error.where


def test_header_problems(tmp_path):
    raises(write(tmp_path, ",a,y\n0,1,2\n"), "header column 1 has no name")
    raises(write(tmp_path, "a,a,y\n0,1,2\n"), "duplicate column names", "'a'")


def test_non_numeric_features_listed_with_count(tmp_path):
    header = ",".join(f"s{i}" for i in range(7)) + ",num,y"
    row = ",".join("txt" for _ in range(7)) + ",1,0"
    error = raises(write(tmp_path, f"{header}\n{row}\n"), "7 feature columns are not numeric",
                   "'s0' (e.g. 'txt')", "'s4'", "and 2 more")
    assert "s5" not in error.what
    raises(write(tmp_path, "city,y\nParis,1\n"), "1 feature column is not numeric", "'city'")


@pytest.mark.parametrize("bad", ["", "nan", "inf", "-Inf", "NaN"])
def test_nan_inf_empty_features(tmp_path, bad):
    path = write(tmp_path, f"age,h,y\n1,2,0\n{bad},3,1\n{bad},4,1\n7,{bad},0\n")
    error = raises(path, "column 'age' has 2 rows with NaN/Inf or empty values",
                   "first on line 3", "so do 'h'")
    assert error.fix == "clean or impute them before training"
    assert str(error).endswith("(" + path + ", clean or impute them before training)")


@pytest.mark.parametrize("bad", ["", "nan", "inf", "-Infinity"])
def test_nan_inf_empty_target(tmp_path, bad):
    raises(write(tmp_path, f"a,label\n1,x\n2,{bad}\n"), "column 'label' has 1 row with NaN/Inf")
    raises(write(tmp_path, f"a,label\n1,0.5\n2,{bad}\n"), "column 'label' has 1 row")


def test_unknown_target_lists_columns_closest_first(tmp_path):
    path = write(tmp_path, "age,height,weight,label\n1,2,3,4\n")
    error = raises(path, "no column 'lable'", "did you mean 'label'", target="lable")
    assert error.fix.startswith("set data.target to one of 'label'")
    assert all(f"'{c}'" in error.fix for c in ("age", "height", "weight"))


def test_only_target_column(tmp_path):
    raises(write(tmp_path, "y\n1\n2\n"), "only the target column 'y'")


def test_target_on_bundled_or_npz_is_rejected(tmp_path):
    raises("iris", "data.target='species' does not apply", target="species")
    assert load_table("iris", target="species", require_target=False).y is None


def test_npz_errors(tmp_path):
    def npz(name, **arrays):
        path = tmp_path / name
        np.savez(path, **arrays)
        return str(path)

    raises(npz("a.npz", features=np.ones((2, 2))), "no array 'X'", "features")
    raises(npz("b.npz", X=np.ones((2, 2))), "no array 'y'")
    assert load_table(npz("c.npz", X=np.ones((2, 2))), require_target=False).y is None
    raises(npz("d.npz", X=np.ones(4), y=np.ones(4)), "array X has shape (4,)")
    raises(npz("e.npz", X=np.ones((4, 2)), y=np.ones((4, 1))), "array y has shape (4, 1)")
    raises(npz("f.npz", X=np.ones((4, 2)), y=np.ones(3)), "X has 4 rows")
    raises(npz("g.npz", X=np.array([["a", "b"]]), y=np.ones(1)), "dtype <U1")
    X = np.ones((4, 3))
    X[1:3, 2] = np.nan
    raises(npz("h.npz", X=X, y=np.ones(4)), "column 'x2' has 2 rows with NaN/Inf", "first at row 2")
    raises(npz("i.npz", X=np.ones((2, 2)), y=np.array([1.0, np.inf])), "column 'y' has 1 row")
    raises(write(tmp_path, "not a zip", "junk.npz"), "junk.npz")
