"""Cell Ranger multi folders built in tmp_path from the real files: found from any level,
used through the sample sheet, clear errors where a file is missing."""

import shutil

import pytest

from cartrack.design import InputError
from cartrack.io import read_gex
from cartrack.multi import find_multi_files, is_multi_folder, resolve
from cartrack.sheet import load_sheet
from cartrack.tcr import read_tcr

LIAO = "scirpy/liao-2019-covid19/"
LIAO_TCR = LIAO + "GSM4385993_C144_filtered_contig_annotations.csv.gz"
LIAO_GEX = LIAO + "GSM4339772_C144_filtered_feature_bc_matrix.h5"
MTX = "scanpy/10x_data/3.0.0/filtered_feature_bc_matrix"
DJVDJ_BCR = "djvdj/splen/BL6_BCR/filtered_contig_annotations.csv.gz"
HEADER = "sample\tpatient\tday\ttissue\tgex\tbcr\ttcr\n"


def make_multi(run, real, sample="C144", *, vdj_b=True, vdj_t=True, mtx=False):
    """A `cellranger multi` run folder: <run>/outs/per_sample_outs/<sample>/..."""
    folder = run / "outs" / "per_sample_outs" / sample
    (folder / "count").mkdir(parents=True)
    if mtx:
        shutil.copytree(real / MTX, folder / "count" / "sample_filtered_feature_bc_matrix")
    else:
        shutil.copy(real / LIAO_GEX, folder / "count" / "sample_filtered_feature_bc_matrix.h5")
    if vdj_t:
        (folder / "vdj_t").mkdir()
        shutil.copy(real / LIAO_TCR, folder / "vdj_t" / "filtered_contig_annotations.csv.gz")
    if vdj_b:
        (folder / "vdj_b").mkdir()
        shutil.copy(real / DJVDJ_BCR, folder / "vdj_b" / "filtered_contig_annotations.csv.gz")
    return folder


def test_found_from_every_level(real, tmp_path):
    folder = make_multi(tmp_path / "run", real)
    for level in (folder, folder.parent, folder.parent.parent, tmp_path / "run"):
        assert is_multi_folder(level)
        files = find_multi_files(level, sample="C144")
        assert files.folder == folder
        assert files.gex.name == "sample_filtered_feature_bc_matrix.h5"
        assert files.tcr.parent.name == "vdj_t" and files.bcr.parent.name == "vdj_b"
    assert not is_multi_folder(tmp_path / "nothing")


def test_sheet_with_a_multi_folder_reads_gex_and_tcr(real, tmp_path):
    make_multi(tmp_path / "run", real, vdj_b=False)
    sheet_path = tmp_path / "samples.tsv"
    sheet_path.write_text(HEADER + "C144\tP1\t0\tproduct\trun\t\t\n")
    sheet = load_sheet(sheet_path)
    row = sheet.loc["C144"]
    assert row["gex"].endswith("count/sample_filtered_feature_bc_matrix.h5")
    assert row["tcr"].endswith("vdj_t/filtered_contig_annotations.csv.gz")
    assert row["bcr"] == ""  # the folder has no vdj_b: left empty, not an error
    gex, _ = read_gex(row["gex"], sample="C144")
    tcr = read_tcr(row["tcr"], sample="C144", cells_only=True, productive_only=True)
    assert tcr.obs_names.isin(gex.obs_names).sum() == 132


def test_mtx_count_folder(real, tmp_path):
    folder = make_multi(tmp_path / "run", real, mtx=True)
    gex_path = resolve(folder, "gex", sample="C144")
    assert gex_path.is_dir()
    gex, _ = read_gex(gex_path, sample="C144")
    assert gex.n_obs == 1107


def test_missing_file_names_sample_folder_and_file(real, tmp_path):
    folder = make_multi(tmp_path / "run", real, vdj_t=False)
    with pytest.raises(InputError) as err:
        resolve(tmp_path / "run", "tcr", sample="C144")
    message = str(err.value)
    assert "C144" in message and str(folder) in message and "vdj_t/filtered_contig" in message
    sheet_path = tmp_path / "samples.tsv"
    sheet_path.write_text(HEADER + "C144\tP1\t0\tPB\trun\t\trun\n")
    with pytest.raises(InputError, match=r"column 'tcr'.*no T-cell V\(D\)J file"):
        load_sheet(sheet_path)


def test_several_samples_need_the_sheet_name(real, tmp_path):
    make_multi(tmp_path / "run", real, sample="A")
    make_multi(tmp_path / "run", real, sample="B", vdj_b=False)
    assert find_multi_files(tmp_path / "run", sample="B").bcr is None
    assert find_multi_files(tmp_path / "run", sample="A").bcr is not None
    with pytest.raises(InputError, match="several samples \\(A, B\\)"):
        find_multi_files(tmp_path / "run", sample="C")


def test_not_a_multi_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a Cell Ranger multi output folder"):
        find_multi_files(tmp_path / "empty", sample="S")
